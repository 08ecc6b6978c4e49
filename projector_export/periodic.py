"""`PeriodicCallback`: the one base of every periodic callback of the library and the app.

Snapshots, pictures, scalars, checkpoints, stopping at a step and stopping on divergence all work on the same clock
(`schedule`: the optimizer's step, `every=0` off) at the same moments (the training's first step, every `every`
steps, after its last step) and, when they write summaries, into a run the same way (`logdir` + `run`, a
`tf.summary` writer made when first needed and closed once, or the run's writer shared), and claim the run before
they first write there (`run_claim`: a second training of the same run is refused). Each subclass says only what it
does at a step.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import keras

from .events import summary_writer
from .run_claim import RunClaim, claim_run
from .schedule import is_due, optimizer_step
from .validation import check_int, check_logdir, check_run_name

if TYPE_CHECKING:
    import tensorflow as tf


class PeriodicCallback(keras.callbacks.Callback):
    """Work before the first training step, every `every` optimizer steps, and after the last step.

    Subclasses implement `on_step(step, logs)`, the work itself, and may override `on_begin(step)` (checks and
    set-up when training begins, before any work), `on_finish(step)` (once after the last step's work, before the
    writer is closed) and `due(step)` (whether the work is due after a batch; default `schedule.is_due`).
    Nothing at all happens when `every` is 0.

    Args:
        every: optimizer steps between two runs of the work; 0: off.
        at_start: also work when training begins (at the step it begins at).
        at_end: also work after the last step, unless the work just ran at that step.
        logdir: the TensorBoard log directory, for a callback that writes summaries.
        run: the run directory's name inside `logdir` (None: `logdir` itself is the run).
        writer: the run's `tf.summary` writer, to share one event file with other callbacks (flushed, never
            closed here); None: one of its own in `<logdir>/<run>`, created when first needed (no event file
            unless something is written) and closed when training ends.

    A callback given a `logdir` claims the run (`run_claim.claim_run`) before it first writes there and lets go of
    it when training ends: another process's training of the same run is refused (`RunInUseError`). The callbacks
    of one process share the claim. A `fit` that raised keeps it until the process ends or a later `fit` ends.

    Example:
        class PrintStep(PeriodicCallback):
            def on_step(self, step, logs):
                print("optimizer step", step)

        model.fit(x, y, callbacks=[PrintStep(every=100)])
    """

    def __init__(
        self,
        every: int,
        *,
        at_start: bool = True,
        at_end: bool = True,
        logdir: str | os.PathLike | None = None,
        run: str | None = None,
        writer: tf.summary.SummaryWriter | None = None,
    ):
        super().__init__()
        self.every = check_int("every", every, minimum=0, hint="(0: off)")
        self.at_start, self.at_end = at_start, at_end
        self.logdir = None if logdir is None else check_logdir(logdir)
        self.run = None if run is None else check_run_name(run)
        if writer is not None and not hasattr(writer, "as_default"):
            raise TypeError(f"Invalid value for argument `writer`: expected a tf.summary.SummaryWriter or None, "
                            f"received {type(writer).__name__}.")
        self._writer, self._own_writer = writer, writer is None
        self._claim: RunClaim | None = None
        self.last_step: int | None = None
        """The optimizer step of the last work (or the step training began at, before any work)."""

    @property
    def run_dir(self) -> str:
        """`<logdir>/<run>`, where this callback writes."""
        if self.logdir is None:
            raise RuntimeError(f"{type(self).__name__} was given no `logdir` to write into.")
        return os.path.join(self.logdir, self.run) if self.run is not None else self.logdir

    @property
    def writer(self) -> tf.summary.SummaryWriter:
        """The run's `tf.summary` writer: the shared one, or one of its own made now (as Keras' TensorBoard callback
        does, "to avoid creating event files when not needed")."""
        self._claim_run()
        if self._writer is None:
            self._writer = summary_writer(self.run_dir)
        return self._writer

    # The work of a subclass ------------------------------------------------------------------------------------

    def on_begin(self, step: int) -> None:
        """Checks and set-up when training begins at `step`, before any work."""

    def on_step(self, step: int, logs: dict | None) -> None:
        """The periodic work at optimizer `step` (`logs`: Keras' logs of the batch, or of the training's begin or
        end)."""
        raise NotImplementedError

    def on_finish(self, step: int) -> None:
        """Once after the last step's work, before the writer is closed."""

    def due(self, step: int) -> bool:
        """Whether the work is due at `step`, after a batch."""
        return is_due(step, self.last_step, self.every)

    # Keras' hooks ----------------------------------------------------------------------------------------------

    def on_train_begin(self, logs=None) -> None:
        if not self.every:
            return
        step = optimizer_step(self.model)
        self.last_step = step
        self.on_begin(step)
        if self.at_start:
            self._work(step, logs)

    def on_train_batch_end(self, batch, logs=None) -> None:
        if self.every:
            step = optimizer_step(self.model)
            if self.due(step):
                self._work(step, logs)

    def on_train_end(self, logs=None) -> None:
        if not self.every:
            return
        step = optimizer_step(self.model)
        if self.at_end and step != self.last_step:
            self._work(step, logs)
        self.on_finish(step)
        self._release_writer()
        if self._claim is not None:
            self._claim.release()
            self._claim = None

    def _work(self, step: int, logs: dict | None) -> None:
        self._claim_run()
        self.on_step(step, logs)
        self.last_step = step

    def _claim_run(self) -> None:
        """Claims the run before the first write (a callback without `logdir` writes nothing and claims nothing)."""
        if self.logdir is not None and (self._claim is None or not self._claim.active):
            self._claim = claim_run(self.logdir, self.run)

    def _release_writer(self) -> None:
        """Closes a writer of its own (a later `fit` makes a new one) or flushes a shared one."""
        if self._writer is None:
            return
        if self._own_writer:
            self._writer.close()
            self._writer = None
        else:
            self._writer.flush()
