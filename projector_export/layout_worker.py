"""The layout worker: a process at the lowest CPU priority that lays out a training's snapshots as they are written.

The training side holds a `LayoutFeed`: `snapshot_written()` after each snapshot's export (the first call starts
the worker, later ones wake it) and `training_ended()` once at the end, which returns where the layouts stand
(`run_layouts.LayoutStatus`: what is left, which process computes it, the command that waits for it). The training
never waits for a layout. The worker (`projector-layouts --follow`) runs in its own process group, so it finishes
the layouts and builds the trajectories after the training's process has returned (or died: its end of the pipe
closing is the same signal), then exits. It stays in the training's session: Linux's scheduler autogroups give
each session an equal share of the CPU, so a worker in a session of its own would take half the CPU from the
training whatever its priority.

Ctrl-C, SIGTERM or a kill of the worker leave the run as it was after its last publication; the next worker or
`projector-layouts` computes the rest.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

from projector_export.layouts import DEFAULT_METHOD
from projector_export.run_layouts import LayoutStatus, follow, layout_status, run_directory


class LayoutFeed:
    """Feeds a run's snapshots to a layout worker process (started at the first snapshot).

    Args:
      logdir, run: the training's run, as for `export_embeddings`.
      method: the non-linear layout, "umap" or "tsne".
      trajectories: build each layer's `<layer>/trajectory` when the training has ended.

    Example:
        feed = LayoutFeed("logs", "lenet")
        ...  # after each snapshot's export:
        feed.snapshot_written()
        ...  # after the last one:
        print(feed.training_ended().message())
    """

    def __init__(self, logdir: str | os.PathLike, run: str | None = None, *, method: str = DEFAULT_METHOD,
                 trajectories: bool = True):
        self.logdir, self.run = os.fspath(logdir), run
        run_directory(self.logdir, run)  # checks the names now
        self.method, self.trajectories = method, trajectories
        self.process: subprocess.Popen | None = None

    def snapshot_written(self) -> None:
        """Tells the worker that a snapshot was exported (starts it at the first call)."""
        if self.process is None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "projector_export.layouts_cli", "--follow", "--logdir", self.logdir,
                 *(["--run", self.run] if self.run is not None else []), "--method", self.method,
                 *([] if self.trajectories else ["--no-trajectories"])],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                process_group=0,  # outlives the training; Ctrl-C in the training's terminal does not reach it
            )
            return
        with contextlib.suppress(BrokenPipeError, ValueError):  # a worker that died: the status says so
            self.process.stdin.write(b"snapshot\n")
            self.process.stdin.flush()

    def training_ended(self, timeout: float = 10.0) -> LayoutStatus:
        """Tells the worker no snapshot follows (it finishes, builds the trajectories and exits) and returns where
        the layouts stand. Waits at most `timeout` seconds for a worker just started to take the run's lock."""
        if self.process is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.process.stdin.close()
            deadline = time.monotonic() + timeout
            while self.process.poll() is None and time.monotonic() < deadline:
                if layout_status(self.logdir, self.run).worker:
                    break
                time.sleep(0.05)
        return layout_status(self.logdir, self.run)

    def wait(self, timeout: float | None = None) -> LayoutStatus:
        """Waits until the worker has exited (after `training_ended`); returns where the layouts stand."""
        if self.process is not None:
            self.process.wait(timeout)
        return layout_status(self.logdir, self.run)


def lower_priority() -> None:
    """This process (and the threads it starts later) runs only when a CPU is idle: SCHED_IDLE on Linux, else the
    lowest nice value."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(AttributeError, OSError):
            os.nice(19)


def run_worker(logdir: str, run: str | None, *, method: str, trajectories: bool) -> int:
    """The worker process's main: lowest priority and one BLAS thread (a background job: threads that spin while
    they wait would only take CPU from the training), then `run_layouts.follow` over stdin's lines."""
    from threadpoolctl import threadpool_limits

    lower_priority()
    with threadpool_limits(limits=1):
        follow(logdir, run, sys.stdin, method=method, trajectories=trajectories,
               command=f"layout worker of process {os.getppid()}", progress=lambda line: None)
    return 0
