"""`projector-train --strategy`: the flags' errors, mirrored over 2 logical CPUs, and 2 multi-worker processes.

Logical CPU devices can be configured only before TensorFlow initialises its devices, and a multi-worker
cluster is several processes: the trainings run as `python -m training.train` subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _projector_client import ProjectorClient
from _tensorboard_server import TensorBoardServer

from training.distribute import TF_CONFIG, check_strategy
from training.train import main

ROOT = Path(__file__).resolve().parents[1]
STEPS, EVERY = 40, 20
SNAPSHOT_STEPS = [0, 20, 40]
FLAGS = ["--model", "tutorial", "--steps", str(STEPS), "--batch-size", "32", "--eval-every", str(EVERY),
         "--log-every", "10", "--snapshot-every", str(EVERY), "--probe-size", "100", "--images-every", str(EVERY),
         "--images-samples", "3", "--seed", "0"]
ACCURACY = re.compile(r"Final test accuracy after (\d+) steps: (\d+\.\d\d)%")


@pytest.mark.parametrize("strategy, cpu_replicas, tf_config, message", [
    ("default", 2, None, r"--cpu-replicas 2 needs --strategy mirrored .* Fix: add --strategy mirrored"),
    ("multi-worker", 2, None, r"--cpu-replicas 2 needs --strategy mirrored"),
    ("multi-worker", 0, None, r"needs the environment variable TF_CONFIG .* Fix: set it on every worker"),
    ("multi-worker", 0, "{cluster: 1}", r"TF_CONFIG is not valid JSON .* Fix: set TF_CONFIG to JSON such as"),
    ("multi-worker", 0, '{"cluster": {"worker": ["a:1"]}}', r"\"task\" must name a type of its cluster"),
    ("multi-worker", 0, '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
     r"task index 1 is not one of the 1 'worker' addresses"),
    ("multi-worker", 0, '{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}',
     r"no \"cluster\" mapping task types to lists of \"host:port\""),
])
def test_bad_strategy_settings_are_one_line_before_anything_is_written(
    strategy, cpu_replicas, tf_config, message, tmp_path, monkeypatch, capsys
):
    environ = {} if tf_config is None else {TF_CONFIG: tf_config}
    with pytest.raises(ValueError, match=message):
        check_strategy(strategy, cpu_replicas, environ)
    monkeypatch.delenv(TF_CONFIG, raising=False)
    if tf_config is not None:
        monkeypatch.setenv(TF_CONFIG, tf_config)
    with pytest.raises(SystemExit) as exit_info:
        main(["--strategy", strategy, "--cpu-replicas", str(cpu_replicas), "--logdir", str(tmp_path / "logs"),
              "--run", "r"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and re.search(message, err) and err.count("\n") == 1
    assert not (tmp_path / "logs").exists()


def test_the_chief_is_the_chief_task_or_worker_0():
    two = {"worker": ["a:1", "b:1"]}
    for cluster, task, chief in (
        (two, {"type": "worker", "index": 0}, True),
        (two, {"type": "worker", "index": 1}, False),
        ({"chief": ["c:1"], **two}, {"type": "worker", "index": 0}, False),
        ({"chief": ["c:1"], **two}, {"type": "chief", "index": 0}, True),
    ):
        place = check_strategy("multi-worker", 0, {TF_CONFIG: json.dumps({"cluster": cluster, "task": task})})
        assert place.is_chief is chief
    assert check_strategy("mirrored", 2, {}).is_chief


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != TF_CONFIG}
    return {**env, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _train(args: list[str], log: Path, cwd: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "training.train", *FLAGS, *args], cwd=cwd, env=_env(**env),
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def _finish(processes: list[subprocess.Popen], logs: list[Path], timeout: float = 600) -> list[str]:
    try:
        codes = [process.wait(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    outputs = [log.read_text() for log in logs]
    for code, output in zip(codes, outputs, strict=True):
        assert code == 0, output[-3000:]
    return outputs


def _accuracy(output: str) -> float:
    steps, accuracy = ACCURACY.search(output).groups()
    assert int(steps) == STEPS
    return float(accuracy) / 100


def _contents(run_dir: Path) -> list[str]:
    """The run's top-level entries, with the event file's host/time/pid name reduced to its prefix."""
    return sorted("events.out.tfevents" if name.startswith("events.out.tfevents.") else name
                  for name in os.listdir(run_dir))


@pytest.mark.integration
def test_mirrored_on_two_cpus_matches_a_one_device_run(tmp_path, mnist_dir):
    logdir, data = tmp_path / "logs", ["--data-dir", str(mnist_dir)]
    logs = [tmp_path / "default.log", tmp_path / "mirrored.log"]
    default, mirrored = _finish([
        _train(["--logdir", str(logdir), "--run", "default", *data], logs[0], tmp_path),
        _train(["--logdir", str(logdir), "--run", "mirrored", "--strategy", "mirrored", "--cpu-replicas", "2", *data],
               logs[1], tmp_path),
    ], logs)
    assert "MirroredStrategy: 2 replica(s) in sync, global batch 32 = 16 per replica" in mirrored
    # The same steps on the same batches, the gradient averaged over 2 halves instead of 1 whole: within noise.
    assert abs(_accuracy(mirrored) - _accuracy(default)) < 0.05
    assert _contents(logdir / "mirrored") == _contents(logdir / "default")
    client = ProjectorClient(logdir)
    tags = {run: client.multiplexer.Runs()[run]["tensors"] for run in ("default", "mirrored")}
    assert sorted(tags["mirrored"]) == sorted(tags["default"])
    assert sorted(client.scalars("mirrored")["train/loss"]) == [10, 20, 30, 40]
    names = {run: sorted(entry["tensorName"] for entry in client.info(run)["embeddings"]) for run in tags}
    assert names["mirrored"] == names["default"]
    assert f"fc1/step_{STEPS:06d}" in names["mirrored"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.integration
def test_two_multi_worker_processes_write_one_run_from_the_chief(tmp_path, mnist_dir):
    logdir = tmp_path / "logs"
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    cwds = [tmp_path / "worker0", tmp_path / "worker1"]
    logs = [tmp_path / "worker0.log", tmp_path / "worker1.log"]
    processes = []
    for index, cwd in enumerate(cwds):
        cwd.mkdir()
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        processes.append(_train(
            ["--strategy", "multi-worker", "--logdir", str(logdir), "--run", "mw", "--data-dir", str(mnist_dir),
             "--checkpoint-every", str(EVERY)],
            logs[index], cwd, TF_CONFIG=tf_config,
        ))
    chief, worker = _finish(processes, logs)
    assert "2 replica(s) in sync, global batch 32 = 16 per replica" in chief
    assert _accuracy(chief) == _accuracy(worker) > 0.1  # one model: both report the same evaluation
    # Only the chief's run, holding what a run holds; no worker leftovers anywhere.
    assert os.listdir(logdir) == ["mw"]
    assert _contents(logdir / "mw") == sorted(
        ["checkpoint", "checkpoints", "events.out.tfevents", "model.keras", "plugins", "projector_config.pbtxt"])
    assert sorted(os.listdir(logdir / "mw" / "checkpoints")) == ["step_000020.keras", "step_000040.keras"]
    assert [os.listdir(cwd) for cwd in cwds] == [[], []]
    assert "Separability" in chief and "Separability" not in worker  # the snapshots were computed once
    assert "Saved " in chief and "This worker wrote nothing: the chief writes" in worker

    with TensorBoardServer(logdir) as board:
        served_names: list[str] = []
        for _ in range(120):
            if "mw" in board.get_json("/data/plugin/projector/runs"):
                served_names = [e["tensorName"] for e in board.get_json("/data/plugin/projector/info", run="mw")
                                  ["embeddings"]]
                break
            time.sleep(1)
        for step in SNAPSHOT_STEPS:
            for layer in ("conv1", "conv2", "fc1", "logits", "class_weights"):
                assert f"{layer}/step_{step:06d}" in served_names
        scalars = ProjectorClient(logdir).scalars("mw")
        assert sorted(scalars["separability/fc1"]) == SNAPSHOT_STEPS
        assert sorted(scalars["train/loss"]) == [10, 20, 30, 40]
        assert sorted(scalars["test/accuracy"]) == [20, 40]
