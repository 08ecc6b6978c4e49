"""Training throughput of `projector-train --strategy default|mirrored|multi-worker`, and the sidecar's lag.

Each configuration is a real `projector-train` process (two for `multi-worker`, on 127.0.0.1) with snapshots and
pictures off; images/s is measured from the wall times TensorBoard records with the `train/loss` points, between
the first point and the last (no start-up, no tracing, no evaluation inside). The configurations alternate over
`--repeats` rounds; the median is printed. Then one training with `--checkpoint-every` runs beside a
`projector-watch`, and for each checkpoint the lag is the time from the checkpoint's rename to the moment a
real TensorBoard lists its tensor.

    MNIST_DATA_DIR=/work/shared/data/mnist PYTHONPATH=. python benchmarks/distributed.py --steps 120 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the TensorBoard server helper

from _tensorboard_server import TensorBoardServer  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator  # noqa: E402


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    return {**env, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _flags(args, logdir: Path, run: str) -> list[str]:
    return [sys.executable, "-m", "training.train", "--model", args.model, "--steps", str(args.steps),
            "--batch-size", str(args.batch_size), "--eval-every", str(args.steps), "--log-every", str(args.log_every),
            "--snapshot-every", "0", "--images-every", "0", "--logdir", str(logdir), "--run", run, "--seed", "0"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _images_per_second(run_dir: Path, batch_size: int) -> float:
    accumulator = EventAccumulator(str(run_dir), size_guidance={TENSORS: 0})
    accumulator.Reload()
    points = accumulator.Tensors("train/loss")
    first, last = points[0], points[-1]
    return (last.step - first.step) * batch_size / (last.wall_time - first.wall_time)


def _train(args, logdir: Path, run: str, strategy: str) -> float:
    command = _flags(args, logdir, run) + ["--strategy", strategy]
    if strategy == "mirrored":
        processes = [subprocess.Popen(command + ["--cpu-replicas", "2"], env=_env(), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)]
    elif strategy == "multi-worker":
        workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
        processes = [
            subprocess.Popen(command, env=_env(TF_CONFIG=json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for index in range(2)
        ]
    else:
        processes = [subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    codes = [process.wait(timeout=1800) for process in processes]
    if any(codes):
        raise RuntimeError(f"{strategy}: exit codes {codes}")
    return _images_per_second(logdir / run, args.batch_size)


def _sidecar_lag(args, logdir: Path) -> list[float]:
    run_dir = logdir / "sidecar"
    training = subprocess.Popen(
        _flags(args, logdir, "sidecar") + ["--checkpoint-every", str(args.checkpoint_every)],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    watcher = subprocess.Popen(
        [sys.executable, "-m", "training.watch", "--logdir", str(logdir), "--run", "sidecar", "--layers", "conv2,fc1",
         "--probe-size", str(args.probe_size), "--poll-seconds", "0.5"],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    written: dict[int, float] = {}
    served: dict[int, float] = {}
    try:
        with TensorBoardServer(logdir) as board:
            while watcher.poll() is None or len(served) < len(written):
                for path in (run_dir / "checkpoints").glob("step_*.keras"):
                    written.setdefault(int(path.stem[5:]), path.stat().st_mtime)
                if "sidecar" in board.get_json("/data/plugin/projector/runs"):
                    info = board.get_json("/data/plugin/projector/info", run="sidecar")
                    now = time.time()
                    for entry in info["embeddings"]:
                        if entry["tensorName"].startswith("fc1/step_"):
                            served.setdefault(int(entry["tensorName"].split("_")[-1]), now)
                if watcher.poll() is not None and time.time() - max(written.values(), default=time.time()) > 60:
                    break
                time.sleep(0.25)
    finally:
        for process in (watcher, training):
            if process.poll() is None:
                process.kill()
            process.wait()
    return [served[step] - written[step] for step in sorted(written) if step in served]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tutorial")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--checkpoint-every", type=int, default=40)
    parser.add_argument("--probe-size", type=int, default=1000)
    args = parser.parse_args()
    strategies = ("default", "mirrored", "multi-worker")
    rates: dict[str, list[float]] = {name: [] for name in strategies}
    with tempfile.TemporaryDirectory() as tmp:
        logdir = Path(tmp) / "logs"
        for repeat in range(args.repeats):
            for name in strategies:
                rates[name].append(_train(args, logdir, f"{name}-{repeat}", name))
                print(f"round {repeat + 1}: {name}: {rates[name][-1]:.0f} images/s", flush=True)
        lags = _sidecar_lag(args, logdir)
    print(f"\n{args.model}, batch {args.batch_size}, {args.steps} steps, median of {args.repeats} round(s):")
    base = statistics.median(rates["default"])
    for name in strategies:
        median = statistics.median(rates[name])
        print(f"  {name:13s} {median:8.0f} images/s  ({median / base:.2f}x default)")
    if lags:
        print(f"sidecar lag (checkpoint renamed -> TensorBoard lists its fc1 tensor), probe {args.probe_size}, "
              f"{len(lags)} checkpoints: median {statistics.median(lags):.1f} s, max {max(lags):.1f} s")
    else:
        print("sidecar lag: no checkpoint was served")


if __name__ == "__main__":
    main()
