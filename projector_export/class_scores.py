"""A model's class scores: which layer computes them, whether they are logits or probabilities, and the softmax.

Snapshots (error-case metadata, the class embedding) and pictures (confusion matrix, misclassified, Grad-CAM's
class) all ask this module, so "are these scores logits" and "whose weights are the classes" have one answer each,
and the softmax is computed in one place.
"""

from __future__ import annotations

import keras
import numpy as np

from .keras_internals import has_layer_graph, layers_to_output
from .model_layers import named_layers, resolve_layer

SCORE_PRESERVING_TYPES = (keras.layers.Softmax, keras.layers.Activation)
"""Layers that may follow the class-score layer: they map each row of C scores to C scores (e.g. a softmax)."""

_PROBABILITY_TOLERANCE = 1e-4


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """log softmax of each row of N×C logits, in float64 (shifted by the row maximum: no overflow)."""
    scores = np.asarray(scores, dtype=np.float64)
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def log_probabilities(scores: np.ndarray, *, from_logits: bool) -> np.ndarray:
    """log p of N×C class scores: their log softmax when they are logits, else their log (0 clipped to tiny)."""
    if from_logits:
        return log_softmax(scores)
    return np.log(np.clip(np.asarray(scores, dtype=np.float64), np.finfo(np.float64).tiny, None))


def output_layer(model: keras.Model) -> keras.layers.Layer | None:
    """The layer that computes the model's (first) output, looking inside nested models; None when unknown
    (a subclassed model)."""
    return next(layers_to_output(model), None)


def class_score_layer(model: keras.Model, name: str | None = None) -> keras.layers.Dense | None:
    """The dense layer that computes the model's class scores, or None when no dense layer does.

    Read from the model's graph: the output layer when it is dense, else the dense layer right before the
    output's softmax or activation layers (`SCORE_PRESERVING_TYPES`). A subclassed model has no graph to read:
    `name` names its class-score layer (None: unknown, so no layer is taken for it). For a model with a graph,
    `name` must name the layer the graph gives.

    Raises:
        ValueError: `name` is not a dense layer of the model, or not the one its graph computes the scores with.
    """
    found = None
    for layer in layers_to_output(model):
        if isinstance(layer, keras.layers.Dense):
            found = layer
        if not isinstance(layer, SCORE_PRESERVING_TYPES):
            break
    if name is None:
        return found
    full = resolve_layer(model, name)
    named = named_layers(model)[full]
    if not isinstance(named, keras.layers.Dense):
        raise ValueError(f"Invalid value for argument `class_layer`: {full!r} is a {type(named).__name__}, expected "
                         f"the Dense layer that computes model {model.name!r}'s class scores.")
    if has_layer_graph(model) and named is not found:
        actual = "no Dense layer" if found is None else f"layer {found.name!r}"
        raise ValueError(f"Invalid value for argument `class_layer`: model {model.name!r} computes its class scores "
                         f"with {actual} (read from its graph), not {full!r}. Drop `class_layer` for such a model.")
    return named


def ends_in_softmax(model: keras.Model) -> bool | None:
    """True when the layer computing the model's output is a softmax (a `Softmax` layer, or any layer with a
    softmax activation: its outputs are probabilities), False when it is not, None when the model has no graph."""
    last = output_layer(model)
    if last is None:
        return None
    if isinstance(last, keras.layers.Softmax):
        return True
    return getattr(getattr(last, "activation", None), "__name__", "") == "softmax"


def scores_are_probabilities(model: keras.Model, scores: np.ndarray) -> bool:
    """Whether the model's N×C class scores are probabilities (else logits).

    Decided by the model's last layer (`ends_in_softmax`); for a model without a layer graph (subclassed), by
    the scores themselves: probabilities are >= 0 and each row sums to 1.
    """
    decided = ends_in_softmax(model)
    if decided is not None:
        return decided
    scores = np.asarray(scores, dtype=np.float64)
    return bool(scores.size) and scores.min() >= 0 and np.allclose(scores.sum(axis=-1), 1, atol=_PROBABILITY_TOLERANCE)


def class_probabilities(model: keras.Model, scores: np.ndarray) -> np.ndarray:
    """The model's N×C class scores as probabilities: themselves when the model ends in a softmax, else softmax."""
    probabilities = scores_are_probabilities(model, scores)
    return np.asarray(scores, dtype=np.float64) if probabilities else np.exp(log_softmax(scores))


def class_embedding(model: keras.Model, num_classes: int, class_layer: str | None = None) -> np.ndarray | None:
    """The class-score layer's kernel transposed, ``num_classes x D`` (one point per class), or None when no dense
    layer computes the class scores (`class_score_layer`, with `class_layer` for a subclassed model) or it does
    not have one unit per class: a layer's weights are never shown as the classes unless it computes them."""
    dense = class_score_layer(model, class_layer)
    if dense is None or dense.units != num_classes:
        return None
    return np.asarray(keras.ops.convert_to_numpy(dense.kernel), dtype=np.float32).T
