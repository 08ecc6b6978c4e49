"""Atomic file writes that no other user can redirect: a reader sees the old file or the new one, never half of one.

Every file is created under a new unpredictable name, exclusively (`O_CREAT | O_EXCL`) and without following a
link (`O_NOFOLLOW`), then renamed: a rename replaces a link planted at the final name instead of writing through it.
The folder must have passed `safe_paths`' checks.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets

from projector_export.safe_paths import FILE_MODE, check_file

# Temporary files start with this, so leftovers of a killed process can be recognised.
TEMP_PREFIX = ".tmp-"
_CREATE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
                 | getattr(os, "O_BINARY", 0))


def create_new(path: str, data: bytes | str) -> None:
    """Creates the file `path` holding `data`; fails (FileExistsError) if anything, a link included, is there.

    A write that fails half-way (a full disk) removes the file.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(path, _CREATE_FLAGS, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(path)
        if isinstance(error, OSError) and error.filename is None:
            error.filename = path  # a failed write does not say which file
        raise


def stage(folder: str, name: str, data: bytes | str) -> str:
    """Writes `data` to a new file `<TEMP_PREFIX><random>-<name>` in `folder`; returns its path (for a rename)."""
    for _ in range(100):
        path = os.path.join(folder, f"{TEMP_PREFIX}{secrets.token_hex(8)}-{name}")
        try:
            create_new(path, data)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"No free temporary name for {name!r}", folder)


def write_atomic(path: str, data: bytes | str) -> None:
    """Writes `data` to `path` through a new temporary file in the same folder and a rename.

    `os.replace` is atomic on POSIX and Windows when source and target share a file system,
    which a sibling temporary file guarantees.
    """
    tmp_path = stage(os.path.dirname(path) or ".", os.path.basename(path), data)
    try:
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise


def move_new(source: str, target: str) -> None:
    """Renames `source` to `target` in the same file system, failing (FileExistsError) if anything is at `target`.

    A hard link and an unlink, so nothing at `target` is ever replaced; where hard links are not supported, a
    rename after checking that the name is free (in a checked folder no other user can take it meanwhile).
    """
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), target) from None
        os.rename(source, target)
        return
    os.unlink(source)


def write_once(path: str, data_factory) -> bool:
    """Writes the bytes from `data_factory()` to `path` unless the file already exists.

    Meant for content-addressed files: the name is derived from the content, so an
    existing file already holds the right bytes and the (possibly costly) encoding is
    skipped. Returns whether the file was written.
    """
    if check_file(path):
        return False
    write_atomic(path, data_factory())
    return True
