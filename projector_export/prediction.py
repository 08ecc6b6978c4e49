"""A model's first output on in-memory inputs, batch by batch, and handing it from one callback to the next.

Inputs are what the model takes: an array, or a dict/list of arrays (multi-input) that all have N rows.
"""

from __future__ import annotations

import keras
import numpy as np

BATCH_SIZE = 500
"""Rows per forward pass of the snapshots' and pictures' predictions."""


def num_rows(inputs) -> int:
    """N of a model input: an array, or a dict/list of arrays (multi-input) that all have N rows."""
    leaves = keras.tree.flatten(inputs)
    if not leaves:
        raise ValueError("Invalid inputs: received an empty structure, expected an array or a dict/list of arrays.")
    sizes = {len(leaf) for leaf in leaves}
    if len(sizes) != 1:
        raise ValueError(f"Invalid inputs: the model inputs have different numbers of rows {sorted(sizes)}; "
                         f"each input needs one row per example.")
    return sizes.pop()


def rows(inputs, start: int, stop: int):
    """Rows `start:stop` of every array of `inputs`."""
    return keras.tree.map_structure(lambda leaf: leaf[start:stop], inputs)


def predict_scores(model: keras.Model, inputs, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """The model's first output on `inputs`, batched in inference mode.

    Batch by batch through `predict_on_batch` (the compiled predict step `predict` runs too): `predict` builds a
    `tf.data` pipeline around it whose thread pool, beside a training's, sometimes ran the whole forward pass on
    one core. A model of a strategy with several replicas goes through `predict`, which splits each batch
    between them (`predict_on_batch` gives every replica the whole batch).
    """
    strategy = getattr(model, "distribute_strategy", None)
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        batches = [model.predict(inputs, batch_size=batch_size, verbose=0)]
    else:
        starts = range(0, num_rows(inputs), batch_size)
        batches = (model.predict_on_batch(rows(inputs, start, start + batch_size)) for start in starts)
    parts = []
    for scores in batches:
        if isinstance(scores, dict):
            scores = next(iter(scores.values()))
        elif isinstance(scores, (list, tuple)):
            scores = scores[0]
        parts.append(np.asarray(scores))
    return np.concatenate(parts)


class SharedScores:
    """The model's first output on fixed inputs at one optimizer step, handed from the callback that ran the
    forward pass to the next one that needs it on the same step, so the two run it once.

    Snapshots `put` the class scores of their probe; the pictures `take` those of their test images and predict
    only the rows the probe does not cover (the probe is the first rows of the test images in `projector-train`).
    Scores of another step, or of inputs that are not the first rows of the images asked for, are never handed
    out.

    Example:
        shared = SharedScores()
        callbacks = [EmbeddingSnapshots(x_test[:5000], ..., shared_scores=shared),
                     ImageLogger(x_test, y_test, "logs", run="r", shared_scores=shared)]
    """

    def __init__(self):
        self._step: int | None = None
        self._inputs: np.ndarray | None = None
        self._scores: np.ndarray | None = None

    def put(self, step: int, inputs, scores: np.ndarray) -> None:
        """Keeps `scores` (N×C, row i = input row i) of the array `inputs` at optimizer `step`."""
        if isinstance(inputs, np.ndarray) and len(scores) == len(inputs):
            self._step, self._inputs, self._scores = step, inputs, scores
        else:
            self.clear()

    def take(self, step: int, images: np.ndarray) -> np.ndarray | None:
        """The kept scores when they are of `step` and their inputs equal the first rows of `images`, else None."""
        inputs = self._inputs
        if self._step != step or inputs is None or len(inputs) > len(images):
            return None
        head = images[: len(inputs)]
        if head.shape != inputs.shape or not np.array_equal(head, inputs):
            return None
        return self._scores

    def clear(self) -> None:
        self._step = self._inputs = self._scores = None


def check_shared_scores(shared_scores: object) -> SharedScores | None:
    """`shared_scores` if it is a `SharedScores` or None; TypeError otherwise."""
    if shared_scores is not None and not isinstance(shared_scores, SharedScores):
        raise TypeError(f"Invalid value for argument `shared_scores`: expected a SharedScores or None, "
                        f"received {type(shared_scores).__name__}.")
    return shared_scores
