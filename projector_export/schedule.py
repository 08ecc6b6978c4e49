"""The one clock of periodic work in a training: the optimizer's step, and when work is due.

Every periodic callback (snapshots, pictures, checkpoints, scalars) asks these two functions,
so "step" means the same number everywhere: the optimizer's `iterations`, which counts the
updates applied (also across several `fit` calls, with `steps_per_execution`, and on every
replica of a `tf.distribute` strategy alike), and `every=0` means the same everywhere: off.
"""

from __future__ import annotations

import keras


def optimizer_step(model: keras.Model) -> int:
    """The current optimizer step of `model`: the number of updates applied so far."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def is_due(step: int, last: int | None, every: int) -> bool:
    """Whether periodic work with period `every` is due at `step`, last done at `last` (None: never).

    Due when a multiple of `every` was reached since `last`, so a step skipped by
    `steps_per_execution` still triggers the work once. `every=0` is off: never due.
    """
    if not every:
        return False
    return last is None or step // every > last // every
