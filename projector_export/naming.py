"""The names a layer snapshot gives what it writes, in one place, importable without Keras.

Tensors are ``<layer>/step_<zero-padded step>`` (so the PROJECTOR's tensor menu reads in step order), the class
embedding is the layer ``class_weights``, each layer's trajectory over training is ``<layer>/trajectory``, and the
separability scalars are ``separability/<layer>``. Writers (the snapshots, the sidecar, the checkpoints' file
names) and readers (the sidecar's restart, the layouts, the dashboard) all ask this module.
"""

from __future__ import annotations

import re

CLASS_EMBEDDING_NAME = "class_weights"
SEPARABILITY_TAG = "separability"
STEP_PREFIX = "step_"
MIN_STEP_DIGITS = 6
TRAJECTORY_NAME = "trajectory"

_SNAPSHOT_NAME = re.compile(r"^(.+)/" + re.escape(STEP_PREFIX) + r"(\d+)$")
_STEP_NAME = re.compile(r"^" + re.escape(STEP_PREFIX) + r"(\d+)$")


def step_digits(total_steps: int | None) -> int:
    """How many digits a step is zero-padded to: those of `total_steps`, at least `MIN_STEP_DIGITS`."""
    return max(MIN_STEP_DIGITS, len(str(total_steps or 0)))


def step_name(step: int, total_steps: int | None = None, *, digits: int | None = None) -> str:
    """``step_004000``: the step zero-padded to the digits of `total_steps` (at least 6), or to exactly `digits`
    (e.g. those of a checkpoint's name, `parse_step_name`)."""
    return f"{STEP_PREFIX}{step:0{digits or step_digits(total_steps)}d}"


def parse_step_name(name: str) -> tuple[int, int] | None:
    """``(4000, 6)``, the step and its digits, for ``step_004000``; None for a name that is not a step's."""
    match = _STEP_NAME.match(name)
    return (int(match.group(1)), len(match.group(1))) if match else None


def snapshot_name(layer: str, step: int | None, total_steps: int | None = None, *, digits: int | None = None) -> str:
    """``conv2/step_004000``: the tensor of `layer` at `step` (see `step_name`); no step: ``conv2``."""
    if step is None:
        return layer
    return f"{layer}/{step_name(step, total_steps, digits=digits)}"


def parse_snapshot_name(name: str) -> tuple[str, int] | None:
    """``("conv2", 4000)`` for ``conv2/step_004000``; None for a name that is not a snapshot tensor's."""
    match = _SNAPSHOT_NAME.match(name)
    return (match.group(1), int(match.group(2))) if match else None


def trajectory_name(layer: str) -> str:
    """``fc1/trajectory``: every snapshot step's rows of `layer` in one tensor."""
    return f"{layer}/{TRAJECTORY_NAME}"


def separability_tag(layer: str) -> str:
    """``separability/fc1``: the scalar of `layer`'s k-NN separability."""
    return f"{SEPARABILITY_TAG}/{layer}"
