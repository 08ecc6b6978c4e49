"""Keras callbacks of `projector-train`: TensorBoard scalars of one run, and stopping at an exact step."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

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

    Train scalars are the means over the batches since the previous point (every `log_every` steps), not
    Keras' running mean since the start of the epoch: each batch's value is recovered from two consecutive
    running means (all batches have the same size). Test scalars are Keras' validation results (`val_loss`,
    `val_accuracy`), written at the end of every epoch that evaluated.

    Args:
        writer: a `tf.summary` writer of the run directory (one writer per run, shared with other callbacks).
        log_every: write the train scalars every this many optimizer steps.

    Example:
        writer = tf.summary.create_file_writer("logs/my-run")
        model.fit(..., validation_data=test, callbacks=[TensorBoardScalars(writer, log_every=100)])
    """

    def __init__(self, writer: tf.summary.SummaryWriter, log_every: int = 100):
        super().__init__()
        if not isinstance(log_every, int) or log_every < 1:
            raise ValueError(f"log_every must be a positive integer. Received: log_every={log_every!r}.")
        self._writer = writer
        self._log_every = log_every
        self._step = 0
        self._previous: dict[str, float] = {}  # key -> running mean after the previous batch of this epoch
        self._sums: dict[str, float] = {}  # key -> sum of the batch values since the last written point
        self._batches = 0

    def on_train_begin(self, logs=None):
        self._step = int(self.model.optimizer.iterations.numpy())
        self._sums, self._batches = {}, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._previous = {}

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        self._batches += 1
        for key in _KERAS_KEYS:
            if logs and key in logs:
                mean = float(logs[key])
                value = (batch + 1) * mean - batch * self._previous.get(key, 0.0)
                self._previous[key] = mean
                self._sums[key] = self._sums.get(key, 0.0) + value
        if self._step % self._log_every == 0:
            self._write_train()

    def on_epoch_end(self, epoch, logs=None):
        test = {tags[1]: logs[f"val_{key}"] for key, tags in _KERAS_KEYS.items() if f"val_{key}" in (logs or {})}
        with self._writer.as_default(step=self._step):
            for tag, value in test.items():
                tf.summary.scalar(tag, float(value))
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._batches:
            self._write_train()
        self._writer.flush()

    def _write_train(self) -> None:
        with self._writer.as_default(step=self._step):
            for key, (train_tag, _) in _KERAS_KEYS.items():
                if key in self._sums:
                    tf.summary.scalar(train_tag, self._sums[key] / self._batches)
            tf.summary.scalar(LEARNING_RATE, _learning_rate(self.model.optimizer))
        self._sums, self._batches = {}, 0


class StopAtStep(keras.callbacks.Callback):
    """Stops `fit` after exactly `steps` optimizer steps (Keras still runs that epoch's validation).

    With a repeating data set, `fit(epochs=ceil(steps / steps_per_epoch))` would overshoot when `steps` is
    not a multiple of `steps_per_epoch`; this callback ends the last epoch early instead.
    """

    def __init__(self, steps: int):
        super().__init__()
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer. Received: steps={steps!r}.")
        self._steps = steps
        self._done = 0

    def on_train_begin(self, logs=None):
        self._done = 0

    def on_train_batch_end(self, batch, logs=None):
        self._done += 1
        if self._done >= self._steps:
            self.model.stop_training = True


def _learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    return float(np.asarray(keras.ops.convert_to_numpy(optimizer.learning_rate)))
