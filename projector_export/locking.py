"""One export at a time per run: an advisory file lock, released when the process ends."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from projector_export.safe_paths import open_file

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here; one writer per run is then the caller's job.
    fcntl = None

# Lock file inside the run's assets folder.
LOCK_FILENAME = ".lock"


@contextlib.contextmanager
def run_lock(folder: str) -> Iterator[None]:
    """Holds an exclusive lock on `folder` (checked by `safe_paths`, existing) for the block; a second exporter
    waits for it.

    `flock` locks are released by the kernel when their process dies, so an export killed
    half-way never leaves the run locked. The lock file is opened without following a link, and
    must be a regular file of a trusted user (`safe_paths.check_file`).
    """
    if fcntl is None:
        yield
        return
    fd = open_file(os.path.join(folder, LOCK_FILENAME), os.O_RDWR | os.O_CREAT)
    with os.fdopen(fd, "rb"):
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
