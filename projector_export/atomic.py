"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import secrets

from projector_export import kill_points

# Temporary files start with this, so leftovers of a killed process can be recognised.
TEMP_PREFIX = ".tmp-"


def write_atomic(path: str, data: bytes | str) -> None:
    """Writes `data` to `path` through a temporary file in the same folder and a rename.

    `os.replace` is atomic on POSIX and Windows when source and target share a file
    system, which a sibling temporary file guarantees. The file gets the mode an ordinary
    `open` gives (0o666 less the umask: 0644 under the usual 022), so a TensorBoard running
    as another user can read it (`tempfile.mkstemp` would make it 0600).
    """
    folder = os.path.dirname(path) or "."
    name = os.path.basename(path)
    tmp_path = os.path.join(folder, f"{TEMP_PREFIX}{secrets.token_hex(8)}-{name}")
    try:
        write_new(tmp_path, data)
        kill_points.reached(f"{name}:temp-written")
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise


def write_new(path: str, data: bytes | str) -> None:
    """Writes `data` to `path`, replacing any file there, with the mode an ordinary `open` gives."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
    with os.fdopen(fd, "wb") as f:
        f.write(raw)


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
