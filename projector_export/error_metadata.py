"""Error-case metadata for the PROJECTOR (which example, which class, right or wrong and how, how sure, since when),
and what the class embedding (one point per class: `class_scores.class_embedding`) shows beside its points. The one
home of the snapshots' column names.

The columns are ordered for TensorBoard's own defaults: `index` is numeric, so `class` (the true class's name,
never a number: "class 7" for a class named "7") is the first non-numeric column, where Label by and search By
start; `outcome` (`right`, or `wrong→<prediction>`) has at most 50 values, so Color by offers it. With these the
PROJECTOR answers seed 004's questions directly: colour by `outcome`, search `4→9` in the `error` column to
highlight exactly the 4s taken for 9s, sort by `loss` for the worst examples, or colour by `forgotten` (the
training dynamics columns, `dynamics_columns`) for the examples the network keeps unlearning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .class_scores import log_probabilities
from .metadata_tsv import COLOR_BY_MAX_VALUES, is_js_number

CLASS_COLUMN = "class"
"""The column the layouts' bookmarks colour and label by: the true class's readable name."""
COLUMNS = ("index", CLASS_COLUMN, "label", "outcome", "prediction", "correct", "confidence", "loss", "error")
"""The columns of `error_metadata`, in order."""
LABEL_COLUMNS = ("index", CLASS_COLUMN, "label")
"""The columns of a probe with labels but no class scores."""
DYNAMICS_COLUMNS = ("first_correct_step", "forgotten")
"""The training dynamics columns of a snapshot at a step (`dynamics_columns`), after `COLUMNS`."""
RESERVED_COLUMNS = tuple(dict.fromkeys((*COLUMNS, *LABEL_COLUMNS, *DYNAMICS_COLUMNS)))
"""Every column name the snapshots write themselves (a user's metadata may not take one)."""
ERROR_ARROW = "→"
NEVER = "never"
"""`first_correct_step` of an example never predicted right."""
_YES, _NO = "yes", "no"
_RIGHT, _WRONG = "right", "wrong"

DynamicsState = tuple[int, np.ndarray, np.ndarray, np.ndarray]
"""After a snapshot: its step, whether each row was right, the first step each row was right at (-1: never), and
each row's right→wrong transitions so far."""


def error_metadata(
    outputs: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    from_logits: bool = True,
) -> dict[str, list[str]]:
    """The `COLUMNS` for each row of ``outputs`` (N x classes logits, or probabilities if not `from_logits`).

    `class` is the label's `readable_class_names` name; `outcome` is `right` or ``"wrong→<prediction>"`` (just
    `wrong` with more classes than Color by can show); `confidence` is the top softmax probability, `loss` the
    example's cross-entropy, `error` is ``"<label>→<prediction>"`` on wrong rows and empty on right ones.
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    labels = np.asarray(labels)
    if outputs.ndim != 2 or outputs.shape[1] != len(class_names):
        raise ValueError(
            f"Expected model outputs of shape N x {len(class_names)} (one score per class name), received "
            f"{outputs.shape}. Pass `class_names` matching the model's output units."
        )
    if labels.shape != (len(outputs),):
        raise ValueError(f"Expected {len(outputs)} labels (one per output row), received shape {labels.shape}.")
    log_probs = log_probabilities(outputs, from_logits=from_logits)
    predictions = log_probs.argmax(axis=1)
    confidence = np.exp(log_probs.max(axis=1))
    loss = -log_probs[np.arange(len(labels)), labels]
    names = [str(name) for name in class_names]
    right = predictions == labels
    wrong_how = len(names) < COLOR_BY_MAX_VALUES  # `right` and one `wrong→p` per class: Color by offers them all
    return {
        **label_metadata(labels, names),
        "outcome": [_RIGHT if ok else f"{_WRONG}{ERROR_ARROW}{names[p]}" if wrong_how else _WRONG
                    for ok, p in zip(right, predictions, strict=True)],
        "prediction": [names[i] for i in predictions],
        "correct": [_YES if ok else _NO for ok in right],
        "confidence": [f"{value:.4f}" for value in confidence],
        "loss": [f"{value:.4f}" for value in loss],
        "error": ["" if ok else f"{names[a]}{ERROR_ARROW}{names[p]}"
                  for ok, a, p in zip(right, labels, predictions, strict=True)],
    }


def label_metadata(labels: np.ndarray, class_names: Sequence[str]) -> dict[str, list[str]]:
    """The `LABEL_COLUMNS` of each row: its index, its class's readable name and its class's name."""
    readable = readable_class_names(class_names)
    return {"index": [str(i) for i in range(len(labels))], CLASS_COLUMN: [readable[i] for i in labels],
            "label": [str(class_names[i]) for i in labels]}


def readable_class_names(class_names: Sequence[str]) -> list[str]:
    """Class names a person reads and the PROJECTOR takes as text: "class 3" for a name that is a number (e.g.
    MNIST's "3"), which would make the column numeric (not where Label by starts, coloured as a scale)."""
    return [f"class {name}" if is_js_number(str(name)) else str(name) for name in class_names]


def dynamics_columns(step: int, columns: Mapping[str, Sequence[str]], before: DynamicsState | None
                     ) -> tuple[dict[str, list[str]], DynamicsState]:
    """The `DYNAMICS_COLUMNS` at snapshot `step`, from this snapshot's `error_metadata` columns (its `correct`) and
    the state after the previous snapshot (None, or one of other rows: this is the first). Returns the columns and
    the state after this step."""
    correct = np.array([value == _YES for value in columns["correct"]])
    if before is None or len(before[1]) != len(correct):
        first, forgotten = np.full(len(correct), -1, dtype=np.int64), np.zeros(len(correct), dtype=np.int64)
    else:
        _, was_correct, first, forgotten = before
        forgotten = forgotten + (was_correct & ~correct)
    first = np.where((first < 0) & correct, step, first)
    columns = {"first_correct_step": [NEVER if s < 0 else str(s) for s in first],
               "forgotten": [str(count) for count in forgotten]}
    return columns, (step, correct, first, forgotten)


def dynamics_state(step: int, columns: Mapping[str, Sequence[str]]) -> DynamicsState | None:
    """The state `dynamics_columns` left after the snapshot at `step`, read back from that snapshot's metadata
    columns; None when they do not hold it (no labels, or written by another version)."""
    if any(name not in columns for name in ("correct", *DYNAMICS_COLUMNS)):
        return None
    try:
        first = np.array([-1 if s == NEVER else int(s) for s in columns["first_correct_step"]], dtype=np.int64)
        forgotten = np.array([int(s) for s in columns["forgotten"]], dtype=np.int64)
    except ValueError:
        return None
    correct = np.array([value == _YES for value in columns["correct"]])
    return step, correct, first, forgotten


def class_mean_images(images: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """The mean image of each class (a sprite thumbnail per class point), zeros for a class with no example.

    Same dtype convention as the input: uint8 stays uint8 (rounded), floats in [0, 1] stay float32.
    """
    images = np.asarray(images)
    means = np.zeros((num_classes, *images.shape[1:]), dtype=np.float32)
    for label in range(num_classes):
        members = images[labels == label]
        if len(members):
            means[label] = members.mean(axis=0, dtype=np.float32)
    return np.rint(means).astype(np.uint8) if images.dtype == np.uint8 else means


def class_metadata(class_names: Sequence[str]) -> Mapping[str, list[str]]:
    """Metadata of the class embedding: one row per class, its readable name (`class`) and its name (`label`)."""
    return {CLASS_COLUMN: readable_class_names(class_names), "label": [str(name) for name in class_names]}
