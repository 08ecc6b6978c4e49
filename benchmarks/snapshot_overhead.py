"""What layer snapshots add to a training: the same `projector-train` training with snapshots at the defaults and
with snapshots off, side by side in one process (alternating, median of `--repeats`).

Prints the training-time ratio (target: snapshots add at most 5%), each snapshot's seconds (and how many training
steps that is), and the bytes and files each snapshot writes (constant: a snapshot never rewrites earlier ones).

    MNIST_DATA_DIR=/work/shared/data/mnist python benchmarks/snapshot_overhead.py --model tutorial --steps 2000
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import keras

from projector_export.snapshots import DEFAULT_PROBE_SIZE, DEFAULT_SNAPSHOT_EVERY, EmbeddingSnapshots, take_probe
from training.mnist import load_mnist
from training.train import TrainConfig, train_and_evaluate

_DEFAULT_TRAINING_STEPS = TrainConfig().steps  # projector-train's default length, for the projected overhead


class _WrittenPerSnapshot(keras.callbacks.Callback):
    """Bytes and files each snapshot wrote into the run directory (runs right after the snapshot callback).

    A file counts as written when its inode is new or its mtime/size changed (hard-linked checkpoint shards of
    earlier snapshots do not count: they are not rewritten); event files count only their appended bytes.
    """

    def __init__(self, run_dir: Path, every: int, steps: int):
        super().__init__()
        self.run_dir, self.every, self.steps = run_dir, every, steps
        self.written: list[tuple[int, int]] = []  # (bytes, files) per snapshot
        self._seen: dict[int, tuple[int, int]] = {}
        self._step = 0

    def on_train_begin(self, logs=None):
        self._record()

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step % self.every == 0 and self._step < self.steps:
            self._record()

    def on_train_end(self, logs=None):
        self._record()

    def _record(self):
        size = files = 0
        now = {}
        for root, _, names in os.walk(self.run_dir):
            for name in names:
                stat = os.stat(os.path.join(root, name))
                if stat.st_ino in now:  # another name (hard link) of a file already counted in this pass
                    continue
                now[stat.st_ino] = (stat.st_mtime_ns, stat.st_size)
                before = self._seen.get(stat.st_ino)
                if before != now[stat.st_ino]:
                    appended = name.startswith("events.out.tfevents") and before is not None
                    size += stat.st_size - before[1] if appended else stat.st_size
                    files += 1
        self._seen = now
        self.written.append((size, files))


def _train(data, model: str, steps: int, snapshots: bool, logdir: str, run: str):
    """One training; returns (wall seconds of fit + evaluation + save, snapshot callback or None, watcher)."""
    config = TrainConfig(model=model, steps=steps, seed=0, logdir=logdir, run=run, verbose=0, snapshot_every=0)
    extra = []
    snapshot = watcher = None
    if snapshots:  # exactly what projector-train's defaults add (built here to read its per-snapshot records)
        images, labels = take_probe(data.test_images, data.test_labels, DEFAULT_PROBE_SIZE)
        snapshot = EmbeddingSnapshots(images, labels, logdir, run=run, every=DEFAULT_SNAPSHOT_EVERY,
                                      class_names=data.class_names, total_steps=steps, verbose=False)
        watcher = _WrittenPerSnapshot(Path(logdir) / run, DEFAULT_SNAPSHOT_EVERY, steps)
        extra = [snapshot, watcher]
    start = time.perf_counter()
    train_and_evaluate(config, data=data, extra_callbacks=extra)
    return time.perf_counter() - start, snapshot, watcher


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
          f"{DEFAULT_PROBE_SIZE} test images, layers {', '.join(snapshot.snapshotter.layers)}; "
          f"median of {args.repeats} pair(s), {os.cpu_count()} CPU cores\n")
    print("| training | seconds | ratio |\n|---|---:|---:|")
    print(f"| snapshots off | {t_off:.1f} | 1.000 |")
    print(f"| snapshots at the defaults ({len(records)} snapshots) | {t_on:.1f} | {t_on / t_off:.3f} |\n")
    print("| snapshot at step | seconds | = training steps | bytes written | files written |\n|---:|---:|---:|---:|---:|")
    for record, (size, files) in zip(records, watcher.written):
        print(f"| {record.step} | {record.seconds:.2f} | {record.seconds / step_seconds:.0f} | {size:,} | {files} |")
    print(f"\nprojected overhead of a default {_DEFAULT_TRAINING_STEPS}-step training "
          f"({_DEFAULT_TRAINING_STEPS // DEFAULT_SNAPSHOT_EVERY + 1} snapshots): {projected:.1%}")
    print("\n" + snapshot.snapshotter.table())


if __name__ == "__main__":
    main()
