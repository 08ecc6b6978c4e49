"""Keras callbacks of `projector-train`: TensorBoard scalars of one run, stopping at an exact step, checkpoints.

Each is a `PeriodicCallback` (the library's one base): same clock (the optimizer's step), same moments, and the
scalars are written into a run as every callback writes (`logdir` + `run`, or the run's shared writer).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from projector_export import PeriodicCallback, check_int, optimizer_step
from projector_export.safe_paths import make_folder, make_staging_folder
from projector_export.watch import checkpoint_path, checkpoint_steps, checkpoints_dir

# Scalar tags of a run (the run layout contract): one constant each, shared with tests and readers.
TRAIN_LOSS = "train/loss"
TRAIN_ACCURACY = "train/accuracy"
TEST_LOSS = "test/loss"
TEST_ACCURACY = "test/accuracy"
LEARNING_RATE = "learning_rate"
# Keras' log keys for the compiled loss and the `accuracy` metric; validation ones get the `val_` prefix.
_KERAS_KEYS = {"loss": (TRAIN_LOSS, TEST_LOSS), "accuracy": (TRAIN_ACCURACY, TEST_ACCURACY)}


class TensorBoardScalars(PeriodicCallback):
    """Writes train/test loss and accuracy and the learning rate with `tf.summary`, step = optimizer step.

    Train scalars are the means over the batches since the previous point (due every `log_every` optimizer
    steps), not Keras' running mean since the start of the epoch: the sum of the batch values since the previous
    batch end is recovered from two consecutive running means (all batches have the same size), also when
    `steps_per_execution` reports only every k-th batch. Test scalars are Keras' validation results
    (`val_loss`, `val_accuracy`), written at the end of every epoch that evaluated.

    Args:
        logdir: the TensorBoard log directory.
        log_every: write the train scalars every this many optimizer steps.
        run: the run directory's name inside `logdir` (None: `logdir` itself).
        writer: the run's `tf.summary` writer, shared with other callbacks (default: one of its own).

    Example:
        model.fit(..., validation_data=test, callbacks=[TensorBoardScalars("logs", log_every=100, run="my-run")])
    """

    def __init__(self, logdir: str | os.PathLike, log_every: int = 100, *, run: str | None = None,
                 writer: tf.summary.SummaryWriter | None = None):
        super().__init__(check_int("log_every", log_every), at_start=False, logdir=logdir, run=run, writer=writer)
        self._totals: dict[str, float] = {}  # key -> running mean × batches, after the previous batch of this epoch
        self._sums: dict[str, float] = {}  # key -> sum of the batch values since the last written point
        self._batches = 0  # batches in `_sums`
        self._epoch_batches = 0  # batches of this epoch reported so far

    def on_begin(self, step: int) -> None:
        self._sums, self._batches = {}, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._totals, self._epoch_batches = {}, 0

    def on_train_batch_end(self, batch, logs=None):
        count = batch + 1  # `batch` is the last batch run, also with steps_per_execution
        for key in _KERAS_KEYS:
            if logs and key in logs:
                total = count * float(logs[key])
                self._sums[key] = self._sums.get(key, 0.0) + total - self._totals.get(key, 0.0)
                self._totals[key] = total
        self._batches += count - self._epoch_batches
        self._epoch_batches = count
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        test = {tags[1]: logs[f"val_{key}"] for key, tags in _KERAS_KEYS.items() if f"val_{key}" in (logs or {})}
        with self.writer.as_default(step=optimizer_step(self.model)):
            for tag, value in test.items():
                tf.summary.scalar(tag, float(value))
        self.writer.flush()

    def on_step(self, step: int, logs: dict | None) -> None:
        """The train scalars: means over the batches since the last point."""
        if not self._batches:
            return
        with self.writer.as_default(step=step):
            for key, (train_tag, _) in _KERAS_KEYS.items():
                if key in self._sums:
                    tf.summary.scalar(train_tag, self._sums[key] / self._batches)
            tf.summary.scalar(LEARNING_RATE, _learning_rate(self.model.optimizer))
        self._sums, self._batches = {}, 0


class StopAtStep(PeriodicCallback):
    """Stops `fit` once the optimizer step reaches `steps` (Keras still runs that epoch's validation).

    With a repeating data set, `fit(epochs=ceil(steps / steps_per_epoch))` would overshoot when `steps` is
    not a multiple of `steps_per_epoch`; this callback ends the last epoch early instead. The step is the
    optimizer's, so a second `fit` of the same model continues up to the same total, and a `fit` started at or
    past `steps` stops after its first batch.
    """

    def __init__(self, steps: int):
        steps = check_int("steps", steps)
        super().__init__(steps, at_start=False, at_end=False)
        self.steps = steps

    def due(self, step: int) -> bool:
        return step >= self.steps

    def on_step(self, step: int, logs: dict | None) -> None:
        self.model.stop_training = True


class PeriodicCheckpoints(PeriodicCallback):
    """Saves the model as `<logdir>/<run>/checkpoints/step_<NNNNNN>.keras` every `every` optimizer steps and after
    the last one, for a sidecar (`projector-watch`, `projector_export.watch`).

    Names are zero-padded like snapshot names (`projector_export.naming`), so they sort by step.
    Each file is saved by `save_model` (in a private staging folder, then renamed), so a reader listing
    `step_*.keras` never sees a half-written file. `keep` bounds how many stay (the oldest go; 0: all stay).
    """

    def __init__(self, logdir: str | os.PathLike, every: int, *, run: str | None = None, keep: int = 0,
                 total_steps: int | None = None):
        super().__init__(check_int("every", every), at_start=False, logdir=logdir, run=run)
        self.directory = checkpoints_dir(self.logdir, self.run)
        self._keep = check_int("keep", keep, minimum=0, hint="(0: keep all)")
        self._total_steps = total_steps

    def on_step(self, step: int, logs: dict | None) -> None:
        make_folder(str(self.directory))  # in the run, which the callback claimed (and so made) before this
        save_model(self.model, checkpoint_path(self.directory, step, self._total_steps))
        if self._keep:
            for old in self.saved()[:-self._keep]:
                old.unlink()

    def on_finish(self, step: int) -> None:
        if not self.saved():  # e.g. a `fit` that took no step: its model is still saved
            self._work(step, None)

    def saved(self) -> list[Path]:
        """The checkpoints in the directory, in step order."""
        return [path for _, path in sorted(checkpoint_steps(self.directory).items())]


def save_model(model: keras.Model, path: Path) -> None:
    """Saves `model` as `path` (a `.keras` file) so that no reader sees half of it and no link redirects it: Keras
    writes into a new private staging folder beside `path` (a full disk or an interruption leaves nothing behind),
    and the finished file is renamed to `path` (a rename replaces a link there instead of writing through it)."""
    staging = make_staging_folder(str(path.parent))
    try:
        temporary = os.path.join(staging, path.name)  # Keras requires the .keras suffix
        model.save(temporary)
        os.replace(temporary, path)
    except OSError as error:
        if error.filename is None:
            error.filename = str(path)  # Keras' failed writes (a full disk) do not say which file
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    return float(np.asarray(keras.ops.convert_to_numpy(optimizer.learning_rate)))
