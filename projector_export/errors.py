"""The library's own exceptions: a full disk (whichever step ran out of space), a run another training holds."""

from __future__ import annotations

import errno
import re
import shutil
import sys

# What a file system says when it is full, as errno values and as TensorFlow's messages spell them.
_NO_SPACE_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NO_SPACE_TEXT = re.compile(r"(?:(\S+); )?(No space left on device|Disk quota exceeded)")
EXPORT_NOT_WRITTEN = ("the export was not written (earlier exports are intact, this one's files were removed). Free "
                      "some space there, or export into a log dir on another disk, and export again.")


class NoSpaceError(OSError):
    """No space left (or a quota reached) on the file system of a log dir; the export was not written.

    Raised instead of the `OSError` (ENOSPC) or TensorFlow's `ResourceExhaustedError` of whichever step ran out of
    space. `filename` is the file being written, `folder` the folder exported into. Earlier exports are intact,
    and the failed export's files were removed. `outcome` says so (a training says what it stopped).
    """

    def __init__(self, filename: str, folder: str, outcome: str = EXPORT_NOT_WRITTEN):
        super().__init__(errno.ENOSPC, "No space left on device", filename)
        self.folder, self.outcome = folder, outcome

    def __str__(self) -> str:
        try:
            free = f" ({shutil.disk_usage(self.folder).free:,} bytes free)"
        except OSError:
            free = ""
        return f"No space left on the device of {self.folder!r}{free} while writing {self.filename!r}: {self.outcome}"


def no_space_error(error: BaseException, folder: str, outcome: str = EXPORT_NOT_WRITTEN) -> NoSpaceError | None:
    """`error` as a NoSpaceError (saying `outcome`) if it says that the disk of `folder` is full (an OSError, e.g.
    Keras' `model.save`, or a TensorFlow error, e.g. a `tf.summary` writer's), else None."""
    if isinstance(error, NoSpaceError):
        return NoSpaceError(error.filename, error.folder, outcome)
    if isinstance(error, OSError) and error.errno in _NO_SPACE_ERRNOS:
        return NoSpaceError(str(error.filename or folder), folder, outcome)
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(error, tf.errors.ResourceExhaustedError):
        match = _NO_SPACE_TEXT.search(error.message)
        if match:
            return NoSpaceError(match.group(1) or folder, folder, outcome)
    return None


class RunInUseError(OSError):
    """Another training holds the run (`run_claim`): two trainings never write one run.

    `holder` describes that training (process, host, start time), `run_dir` is the run.
    """

    def __init__(self, run_dir: str, holder: str):
        super().__init__(errno.EBUSY, "Run in use by another training", run_dir)
        self.run_dir, self.holder = run_dir, holder

    def __str__(self) -> str:
        return (f"Run directory {self.run_dir!r} is being written by another training: {self.holder}. Two trainings "
                "never write one run. Fix: wait until it ends (or stop it), or train into another run.")
