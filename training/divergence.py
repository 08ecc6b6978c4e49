"""A training that diverges stops at once, with one line that says so, instead of feeding NaN to every callback."""

from __future__ import annotations

import math

import keras


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the message names the step and the fix."""


class StopOnDivergence(keras.callbacks.Callback):
    """Raises `TrainingDiverged` after the first batch whose loss is not finite, as Keras' `TerminateOnNaN` stops.

    Raising (rather than setting `stop_training`) ends `fit` before the callbacks after this one see the batch
    and before their end-of-training work: snapshots and pictures of NaN weights would only fail or mislead.
    Put it first in the callback list.
    """

    def __init__(self, learning_rate: float | None = None):
        super().__init__()
        self.learning_rate = learning_rate
        self._step = 0

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            hint = "" if self.learning_rate is None else f" (now {self.learning_rate:g})"
            raise TrainingDiverged(
                f"The training diverged: the loss is {float(loss)} after step {self._step}. "
                f"Fix: lower --learning-rate{hint}, e.g. by a factor of 10."
            )
