"""A training that diverges stops at once, with one line that says so, instead of feeding NaN to every callback."""

from __future__ import annotations

import math

from projector_export import PeriodicCallback


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the message names the step and the fix."""


class StopOnDivergence(PeriodicCallback):
    """Raises `TrainingDiverged` after the first batch whose loss is not finite, as Keras' `TerminateOnNaN` stops.

    Raising (rather than setting `stop_training`) ends `fit` before the callbacks after this one see the batch
    and before their end-of-training work: snapshots and pictures of NaN weights would only fail or mislead.
    Put it first in the callback list. The step it names is the optimizer's, as everywhere in a run.
    """

    def __init__(self, learning_rate: float | None = None):
        super().__init__(1, at_start=False, at_end=False)
        self.learning_rate = learning_rate

    def due(self, step: int) -> bool:
        return True  # after every batch Keras reports, even one whose update an optimizer skipped

    def on_step(self, step: int, logs: dict | None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            hint = "" if self.learning_rate is None else f" (now {self.learning_rate:g})"
            raise TrainingDiverged(
                f"The training diverged: the loss is {float(loss)} after step {step}. "
                f"Fix: lower --learning-rate{hint}, e.g. by a factor of 10."
            )
