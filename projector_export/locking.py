"""One export at a time per run: an advisory file lock, released when the process ends."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here; one writer per run is then the caller's job.
    fcntl = None

# Lock file inside the run's assets folder.
LOCK_FILENAME = ".lock"


@contextlib.contextmanager
def run_lock(assets_dir: str) -> Iterator[None]:
    """Holds an exclusive lock on `assets_dir` for the block; a second exporter waits for it.

    `flock` locks are released by the kernel when their process dies, so an export killed
    half-way never leaves the run locked.
    """
    if fcntl is None:
        yield
        return
    os.makedirs(assets_dir, exist_ok=True)
    with open(os.path.join(assets_dir, LOCK_FILENAME), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
