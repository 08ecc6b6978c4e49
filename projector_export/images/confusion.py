"""Confusion matrix and the worst misclassified examples, from predicted class probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """``classes×classes`` counts: row = true class, column = predicted class."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels and predictions differ in shape: {labels.shape} vs {predictions.shape}.")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= classes):
            raise ValueError(
                f"{name} must lie in [0, {classes}); received values from {values.min()} to {values.max()}."
            )
    return np.bincount(labels * classes + predictions, minlength=classes * classes).reshape(classes, classes)


def worst_misclassified(probabilities: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of up to ``count`` misclassified examples, most confidently wrong first."""
    predictions = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predictions != labels)
    confidence = probabilities[wrong, predictions[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:count]]


def markdown_table(matrix: np.ndarray, class_names: Sequence[str]) -> str:
    """The confusion matrix as a Markdown table (TensorBoard's TEXT tab renders it), with totals above."""
    total = int(matrix.sum())
    correct = int(np.trace(matrix))
    accuracy = correct / total if total else 0.0
    lines = [
        f"{total} test images, {correct} correct ({accuracy:.2%}). Rows: true class; columns: predicted class.",
        "",
        "| true \\\\ predicted | " + " | ".join(str(name) for name in class_names) + " |",
        "|---" * (len(class_names) + 1) + "|",
    ]
    for name, row in zip(class_names, matrix, strict=True):
        lines.append(f"| **{name}** | " + " | ".join(str(int(v)) for v in row) + " |")
    return "\n".join(lines)
