"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile

# Temporary files start with this, so leftovers of a killed process can be recognised.
TEMP_PREFIX = ".tmp-"


def write_atomic(path: str, data: bytes | str) -> None:
    """Writes `data` to `path` through a temporary file in the same folder and a rename.

    `os.replace` is atomic on POSIX and Windows when source and target share a file
    system, which a sibling temporary file guarantees.
    """
    folder = os.path.dirname(path) or "."
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        raise


def write_once(path: str, data_factory) -> bool:
    """Writes the bytes from `data_factory()` to `path` unless the file already exists.

    Meant for content-addressed files: the name is derived from the content, so an
    existing file already holds the right bytes and the (possibly costly) encoding is
    skipped. Returns whether the file was written.
    """
    if os.path.isfile(path):
        return False
    write_atomic(path, data_factory())
    return True
