"""A run's terminal output is ours: TensorFlow's C++ start-up lines are hidden unless asked for.

TensorFlow prints INFO lines when it loads (oneDNN is on, which CPU instructions it could use), some of them
twice and some whatever `TF_CPP_MIN_LOG_LEVEL` says, because they are written before its logging starts.
`import_tensorflow_quietly` imports it with those lines dropped; every other line it prints still shows.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

LOG_LEVEL_VAR = "TF_CPP_MIN_LOG_LEVEL"
# absl's INFO lines ("I0000 00:00:... port.cc:153] ..."), its notice that logging is not initialised yet, and the
# continuation line of the CPU-feature notice.
_START_UP_LINE = re.compile(
    r"^(I\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.]+:\d+\] |WARNING: All log messages before absl::InitializeLog\(\)"
    r"|To enable the following instructions: )"
)


def import_tensorflow_quietly(verbose: bool = False) -> None:
    """Imports TensorFlow and Keras, dropping TensorFlow's start-up INFO lines from stderr.

    Nothing is dropped with `verbose`, when the user set `TF_CPP_MIN_LOG_LEVEL` (their choice is kept), or when
    TensorFlow is already imported. Otherwise `TF_CPP_MIN_LOG_LEVEL` is set to 1 (warnings and errors show).
    """
    if verbose or LOG_LEVEL_VAR in os.environ or "tensorflow" in sys.modules:
        return
    os.environ[LOG_LEVEL_VAR] = "1"
    sys.stderr.flush()
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401  (its TensorFlow backend loads TensorFlow)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        for line in captured.read().decode(errors="replace").splitlines(keepends=True):
            if not _START_UP_LINE.match(line):
                sys.stderr.write(line)
