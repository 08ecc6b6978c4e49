"""This install's console scripts, run as a user runs them (test helper)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def program(name: str) -> str:
    """The path of console script `name` of this install (beside the running Python)."""
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        raise RuntimeError(f"console script {name!r} not found: install the project with pip install -e '.[test]'")
    return path


def run(argv: list[str], timeout: float = 900) -> str:
    """Runs `argv` and returns its standard output; RuntimeError with the end of its output when it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout
