"""What layer snapshots add to a training: the same `projector-train` training with snapshots at the defaults and
with snapshots off, side by side in one process (alternating, median of `--repeats`).

Prints the training-time ratio (target: snapshots add at most 5%), each snapshot's seconds (and how many training
steps that is), and the bytes and files each snapshot writes (constant: a snapshot never rewrites earlier ones).

    MNIST_DATA_DIR=/work/shared/data/mnist python -m benchmarks.snapshot_overhead --model tutorial --steps 2000

(from the repository root: the training app and the tests' run-directory watcher are imported from the clone).
The trainings are `train_and_evaluate` itself, with the snapshot callback projector-train builds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from projector_export import DEFAULT_PROBE_SIZE, DEFAULT_SNAPSHOT_EVERY, EmbeddingSnapshots
from tests._run_dir_watcher import RunDirWatcher
from training.mnist import load_mnist
from training.train import TrainConfig, train_and_evaluate

_DEFAULT_TRAINING_STEPS = TrainConfig().steps  # projector-train's default length, for the projected overhead


def _train(data, model: str, steps: int, snapshots: bool, logdir: str, run: str):
    """One `projector-train` training (snapshots at the defaults, or off); returns (wall seconds of fit +
    evaluation + save, the run's snapshot callback or None, the watcher of what each snapshot wrote)."""
    every = DEFAULT_SNAPSHOT_EVERY if snapshots else 0
    config = TrainConfig(model=model, steps=steps, seed=0, logdir=logdir, run=run, verbose=0, snapshot_every=every)
    watcher = RunDirWatcher(Path(logdir) / run, DEFAULT_SNAPSHOT_EVERY, steps)
    start = time.perf_counter()
    result = train_and_evaluate(config, data=data, extra_callbacks=[watcher] if snapshots else [])
    seconds = time.perf_counter() - start
    (snapshot,) = [c for c in result.callbacks if isinstance(c, EmbeddingSnapshots)] or [None]
    return seconds, snapshot, watcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=TrainConfig().model)
    parser.add_argument("--steps", type=int, default=2 * DEFAULT_SNAPSHOT_EVERY,
                        help="training steps per run (default: two snapshot intervals)")
    parser.add_argument("--repeats", type=int, default=1, help="pairs of trainings (off, on), alternating")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    data = load_mnist(args.data_dir)
    logdir = tempfile.mkdtemp(prefix="snapshot_overhead-")
    try:
        _train(data, args.model, 20, True, logdir, "warm-up")  # compile everything once, outside the timings
        off, on, last = [], [], None
        for repeat in range(args.repeats):
            off.append(_train(data, args.model, args.steps, False, logdir, f"off-{repeat}")[0])
            seconds, snapshot, watcher = _train(data, args.model, args.steps, True, logdir, f"on-{repeat}")
            on.append(seconds)
            last = (snapshot, watcher)
    finally:
        shutil.rmtree(logdir, ignore_errors=True)

    snapshot, watcher = last
    records = snapshot.snapshotter.records
    t_off, t_on = statistics.median(off), statistics.median(on)
    step_seconds = t_off / args.steps
    per_snapshot = statistics.median(r.seconds for r in records)
    projected = (_DEFAULT_TRAINING_STEPS // DEFAULT_SNAPSHOT_EVERY + 1) * per_snapshot / (
        _DEFAULT_TRAINING_STEPS * step_seconds)

    print(f"model {args.model}, {args.steps} steps, snapshots every {DEFAULT_SNAPSHOT_EVERY} steps of "
          f"{DEFAULT_PROBE_SIZE} test images, layers {', '.join(snapshot.snapshotter.plan.layers)}; "
          f"median of {args.repeats} pair(s), {os.cpu_count()} CPU cores\n")
    print("| training | seconds | ratio |\n|---|---:|---:|")
    print(f"| snapshots off | {t_off:.1f} | 1.000 |")
    print(f"| snapshots at the defaults ({len(records)} snapshots) | {t_on:.1f} | {t_on / t_off:.3f} |\n")
    print("| snapshot at step | seconds | = training steps | bytes written | files written |")
    print("|---:|---:|---:|---:|---:|")
    for record, (size, files) in zip(records, watcher.per_snapshot, strict=True):
        print(f"| {record.step} | {record.seconds:.2f} | {record.seconds / step_seconds:.0f} | {size:,} "
              f"| {len(files)} |")
    print(f"\nprojected overhead of a default {_DEFAULT_TRAINING_STEPS}-step training "
          f"({_DEFAULT_TRAINING_STEPS // DEFAULT_SNAPSHOT_EVERY + 1} snapshots): {projected:.1%}")
    print("\n" + snapshot.snapshotter.table())


if __name__ == "__main__":
    main()
