"""The library's own exception for a full disk, whichever step of an export ran out of space."""

from __future__ import annotations

import errno
import re
import shutil
import sys

# What a file system says when it is full, as errno values and as TensorFlow's messages spell them.
_NO_SPACE_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NO_SPACE_TEXT = re.compile(r"(?:(\S+); )?(No space left on device|Disk quota exceeded)")


class NoSpaceError(OSError):
    """No space left (or a quota reached) on the file system of a log dir; the export was not written.

    Raised instead of the `OSError` (ENOSPC) or TensorFlow's `ResourceExhaustedError` of whichever step ran out of
    space. `filename` is the file being written, `folder` the folder exported into. Earlier exports are intact,
    and the failed export's files were removed.
    """

    def __init__(self, filename: str, folder: str):
        super().__init__(errno.ENOSPC, "No space left on device", filename)
        self.folder = folder

    def __str__(self) -> str:
        try:
            free = f" ({shutil.disk_usage(self.folder).free:,} bytes free)"
        except OSError:
            free = ""
        return (f"No space left on the device of {self.folder!r}{free} while writing {self.filename!r}: the export "
                "was not written (earlier exports are intact, this one's files were removed). Free some space "
                "there, or export into a log dir on another disk, and export again.")


def no_space_error(error: BaseException, folder: str) -> NoSpaceError | None:
    """`error` as a NoSpaceError if it says that the disk of `folder` is full (an OSError or a TensorFlow error),
    else None."""
    if isinstance(error, NoSpaceError):
        return error
    if isinstance(error, OSError) and error.errno in _NO_SPACE_ERRNOS:
        return NoSpaceError(str(error.filename or folder), folder)
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(error, tf.errors.ResourceExhaustedError):
        match = _NO_SPACE_TEXT.search(error.message)
        if match:
            return NoSpaceError(match.group(1) or folder, folder)
    return None
