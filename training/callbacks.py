"""Keras callbacks of `projector-train`: TensorBoard scalars of one run, stopping at an exact step, checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from projector_export.naming import STEP_PREFIX, snapshot_name
from projector_export.schedule import is_due, optimizer_step
from projector_export.validation import check_int
from projector_export.watch import CHECKPOINT_SUFFIX

# Scalar tags of a run (the run layout contract): one constant each, shared with tests and readers.
TRAIN_LOSS = "train/loss"
TRAIN_ACCURACY = "train/accuracy"
TEST_LOSS = "test/loss"
TEST_ACCURACY = "test/accuracy"
LEARNING_RATE = "learning_rate"
# Keras' log keys for the compiled loss and the `accuracy` metric; validation ones get the `val_` prefix.
_KERAS_KEYS = {"loss": (TRAIN_LOSS, TEST_LOSS), "accuracy": (TRAIN_ACCURACY, TEST_ACCURACY)}


class TensorBoardScalars(keras.callbacks.Callback):
    """Writes train/test loss and accuracy and the learning rate with `tf.summary`, step = optimizer step.

    Train scalars are the means over the batches since the previous point (due every `log_every` optimizer
    steps, `projector_export.schedule`), not Keras' running mean since the start of the epoch: the sum of the
    batch values since the previous batch end is recovered from two consecutive running means (all batches
    have the same size), also when `steps_per_execution` reports only every k-th batch. Test scalars are
    Keras' validation results (`val_loss`, `val_accuracy`), written at the end of every epoch that evaluated.

    Args:
        writer: a `tf.summary` writer of the run directory (one writer per run, shared with other callbacks).
        log_every: write the train scalars every this many optimizer steps.

    Example:
        writer = tf.summary.create_file_writer("logs/my-run")
        model.fit(..., validation_data=test, callbacks=[TensorBoardScalars(writer, log_every=100)])
    """

    def __init__(self, writer: tf.summary.SummaryWriter, log_every: int = 100):
        super().__init__()
        self._writer = writer
        self._log_every = check_int("log_every", log_every)
        self._last: int | None = None  # optimizer step of the last written point (or of the start of `fit`)
        self._totals: dict[str, float] = {}  # key -> running mean × batches, after the previous batch of this epoch
        self._sums: dict[str, float] = {}  # key -> sum of the batch values since the last written point
        self._batches = 0  # batches in `_sums`
        self._epoch_batches = 0  # batches of this epoch reported so far

    def on_train_begin(self, logs=None):
        self._last = optimizer_step(self.model)
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
        step = optimizer_step(self.model)
        if is_due(step, self._last, self._log_every):
            self._write_train(step)

    def on_epoch_end(self, epoch, logs=None):
        test = {tags[1]: logs[f"val_{key}"] for key, tags in _KERAS_KEYS.items() if f"val_{key}" in (logs or {})}
        with self._writer.as_default(step=optimizer_step(self.model)):
            for tag, value in test.items():
                tf.summary.scalar(tag, float(value))
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._batches:
            self._write_train(optimizer_step(self.model))
        self._writer.flush()

    def _write_train(self, step: int) -> None:
        with self._writer.as_default(step=step):
            for key, (train_tag, _) in _KERAS_KEYS.items():
                if key in self._sums:
                    tf.summary.scalar(train_tag, self._sums[key] / self._batches)
            tf.summary.scalar(LEARNING_RATE, _learning_rate(self.model.optimizer))
        self._sums, self._batches, self._last = {}, 0, step


class StopAtStep(keras.callbacks.Callback):
    """Stops `fit` once the optimizer step reaches `steps` (Keras still runs that epoch's validation).

    With a repeating data set, `fit(epochs=ceil(steps / steps_per_epoch))` would overshoot when `steps` is
    not a multiple of `steps_per_epoch`; this callback ends the last epoch early instead. The step is the
    optimizer's (`projector_export.schedule.optimizer_step`), so a second `fit` of the same model continues
    up to the same total, and a `fit` started at or past `steps` stops after its first batch.
    """

    def __init__(self, steps: int):
        super().__init__()
        self._steps = check_int("steps", steps)

    def on_train_batch_end(self, batch, logs=None):
        if optimizer_step(self.model) >= self._steps:
            self.model.stop_training = True


class PeriodicCheckpoints(keras.callbacks.Callback):
    """Saves the model as `<directory>/step_<NNNNNN>.keras` every `every` optimizer steps and after the last one.

    Names are zero-padded like snapshot names (`projector_export.snapshots.snapshot_name`), so they sort by step.
    Each file is written under a temporary name starting with "." and renamed, so a reader listing
    `step_*.keras` never sees a half-written file. `keep` bounds how many stay (the oldest go; 0: all stay).
    """

    def __init__(self, directory: str | os.PathLike, every: int, *, keep: int = 0, total_steps: int | None = None):
        super().__init__()
        self.directory = Path(directory)
        self._every = check_int("every", every)
        self._keep = check_int("keep", keep, minimum=0, hint="(0: keep all)")
        self._total_steps = total_steps
        self._last: int | None = None

    def on_train_begin(self, logs=None):
        self._last = optimizer_step(self.model)

    def on_train_batch_end(self, batch, logs=None):
        step = optimizer_step(self.model)
        if is_due(step, self._last, self._every):
            self._save(step)

    def on_train_end(self, logs=None):
        step = optimizer_step(self.model)
        if step != self._last or not self.saved():
            self._save(step)

    def saved(self) -> list[Path]:
        """The checkpoints in the directory, in step order."""
        return sorted(self.directory.glob(f"{STEP_PREFIX}*{CHECKPOINT_SUFFIX}"))

    def _save(self, step: int) -> None:
        name = Path(snapshot_name(self.directory.name, step, self._total_steps)).name  # step_<NNNNNN>
        path = self.directory / f"{name}{CHECKPOINT_SUFFIX}"
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.stem}.tmp{CHECKPOINT_SUFFIX}")  # Keras requires the .keras suffix
        self.model.save(temporary)
        os.replace(temporary, path)
        self._last = step
        if self._keep:
            for old in self.saved()[:-self._keep]:
                old.unlink()


def _learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    return float(np.asarray(keras.ops.convert_to_numpy(optimizer.learning_rate)))
