"""Error-case metadata for the PROJECTOR (which example, which class, right or wrong, how sure), and what the
class embedding (one point per class: `class_scores.class_embedding`) shows beside its points.

With these columns the PROJECTOR answers seed 004's questions directly: colour by `correct`, search `4→9` in the
`error` column to highlight exactly the 4s taken for 9s, or sort by `loss` to find the worst examples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .class_scores import log_probabilities

COLUMNS = ("index", "label", "prediction", "correct", "confidence", "loss", "error")
ERROR_ARROW = "→"
_YES, _NO = "yes", "no"


def error_metadata(
    outputs: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    from_logits: bool = True,
) -> dict[str, list[str]]:
    """The `COLUMNS` for each row of ``outputs`` (N x classes logits, or probabilities if not `from_logits`).

    `confidence` is the top softmax probability, `loss` the example's cross-entropy, `error` is
    ``"<label>→<prediction>"`` on wrong rows and empty on right ones.
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
    return {
        "index": [str(i) for i in range(len(labels))],
        "label": [names[i] for i in labels],
        "prediction": [names[i] for i in predictions],
        "correct": [_YES if ok else _NO for ok in right],
        "confidence": [f"{value:.4f}" for value in confidence],
        "loss": [f"{value:.4f}" for value in loss],
        "error": ["" if ok else f"{names[a]}{ERROR_ARROW}{names[p]}"
                  for ok, a, p in zip(right, labels, predictions, strict=True)],
    }


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
    """Metadata of the class embedding: one `label` per row."""
    return {"label": [str(name) for name in class_names]}
