"""Named points of the write path where a test can make the exporting process kill itself.

With `PROJECTOR_EXPORT_KILL_AT=<point>` in its environment, a process sends itself SIGKILL when
an export reaches that point: the crash tests use it to prove that whatever a kill leaves is a
complete old or a complete new export, and that the next export removes every leftover. Without
the variable (always, outside those tests) each point is one dictionary lookup. A variable naming no
point of `KILL_POINTS` raises `ValueError` at the first point reached: a mistyped point would
otherwise never be reached, and its crash test would pass without a kill.
"""

from __future__ import annotations

import os
import signal

ENV_VAR = "PROJECTOR_EXPORT_KILL_AT"

# In the order an export reaches them.
KILL_POINTS = (
    "assets-written",           # sprite and metadata written, not yet referred to
    "bundle-staged",            # the new tensors saved alone into a staging folder
    "bundle-written",           # the new generation's bundle complete, unreferenced
    "events-written",           # the event file (and any reduction summary) written
    "config-staged",            # the new config, its portable copy and the state file written to temporary files
    "config-written",           # the config names the new bundle (the commit); the state file not yet
    "state-flipped",            # the state file names the new bundle
    "generations-deleted",      # older bundles and leftovers deleted; unreferenced sprites/metadata not yet
)


def reached(point: str) -> None:
    """Kills this process (SIGKILL, no clean-up of any kind) if the environment asks for `point`."""
    wanted = os.environ.get(ENV_VAR)
    if wanted is None:
        return
    if wanted not in KILL_POINTS:
        raise ValueError(f"Unknown kill point {wanted!r} in ${ENV_VAR}. Expected one of: {', '.join(KILL_POINTS)}.")
    if wanted == point:
        os.kill(os.getpid(), signal.SIGKILL)
