"""What each layer snapshot wrote into a run directory, seen from the file system (used by tests and benchmarks).

One watcher for `tests/test_snapshots_mnist.py` and `benchmarks/snapshot_overhead.py`, so that a fix to how bytes
are counted is made once.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

EVENT_FILE_PREFIX = "events.out.tfevents"


class RunDirWatcher(keras.callbacks.Callback):
    """After each snapshot (it runs after the snapshot callback), the bytes and files the snapshot wrote.

    Snapshots are expected before training, every `every` steps and after the last of `steps` steps. Files are
    written whole (temporary file + rename) except event files, which writers append to: for those only the
    appended bytes count. Hard-linked checkpoint shards keep their inode and mtime, so they count as untouched,
    which is the point: a snapshot must not rewrite what earlier ones wrote; a file with several names (hard
    links) counts once.

    Attributes:
        per_snapshot: (bytes written, paths written relative to the run directory) per snapshot, in order.
    """

    def __init__(self, run_dir: str | os.PathLike, every: int, steps: int):
        super().__init__()
        self.run_dir, self.every, self.steps = Path(run_dir), every, steps
        self.per_snapshot: list[tuple[int, list[str]]] = []
        self._seen: dict[int, tuple[int, int]] = {}  # inode -> (mtime, size)
        self._step = 0

    def on_train_begin(self, logs=None):
        self._record()

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step % self.every == 0 and self._step < self.steps:
            self._record()

    def on_train_end(self, logs=None):
        self._record()

    def _record(self) -> None:
        written, names, now = 0, [], {}
        for root, _, files in os.walk(self.run_dir):
            for name in files:
                path = os.path.join(root, name)
                stat = os.stat(path)
                if stat.st_ino in now:  # another name (hard link) of a file already seen in this pass
                    continue
                now[stat.st_ino] = (stat.st_mtime_ns, stat.st_size)
                before = self._seen.get(stat.st_ino)
                if before == now[stat.st_ino]:
                    continue
                appended = name.startswith(EVENT_FILE_PREFIX) and before is not None
                written += stat.st_size - before[1] if appended else stat.st_size
                names.append(os.path.relpath(path, self.run_dir))
        self._seen = now
        self.per_snapshot.append((written, names))
