"""Which layers to look at, and their outputs on a set of images in one batched forward pass."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

_FEATURE_LAYER_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense)
_BATCH_SIZE = 500


def default_layers(model: keras.Model) -> list[str]:
    """Every convolution and dense layer, input to output: the seeds' conv1, conv2, ..., fc1, logits."""
    return [layer.name for layer in model.layers if isinstance(layer, _FEATURE_LAYER_TYPES)]


def resolve_layers(model: keras.Model, names: Sequence[str] | None) -> list[str]:
    """Checks that every name is a layer of `model` (None: `default_layers`); returns them, duplicates dropped.

    Raises:
        ValueError: an unknown name (the message lists the model's layers), or no layer chosen.
    """
    if isinstance(names, str):
        raise TypeError(f"`layers` must be a sequence of layer names, received the string {names!r}; "
                        f"split it first, e.g. {names.split(',')!r}.")
    chosen = default_layers(model) if names is None else list(dict.fromkeys(names))
    known = [layer.name for layer in model.layers]
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise ValueError(
            f"Unknown layer name(s) {', '.join(map(repr, unknown))} for model {model.name!r}. "
            f"Expected names from its layers: {', '.join(known)}."
        )
    if not chosen:
        raise ValueError(
            f"No layer to snapshot: `layers` is empty and model {model.name!r} has no convolution or dense "
            f"layer. Pass layer names from: {', '.join(known)}."
        )
    return chosen


class LayerOutputs:
    """The outputs of chosen layers and of the model itself, flattened to ``N x D``, in one forward pass.

    The multi-output model is built once (so its compiled predict function is reused by every call) and run
    batched in inference mode (dropout off, batch-norm statistics frozen).

    Args:
        model: a built Keras model with symbolic inputs (functional, or a Sequential given an `Input`).
        layers: names of its layers, already checked by `resolve_layers`.

    Example:
        outputs = LayerOutputs(model, ["conv1", "fc1"])
        features, model_output = outputs(images)   # {"conv1": N x D1, "fc1": N x D2}, N x classes
    """

    def __init__(self, model: keras.Model, layers: Sequence[str]):
        try:
            inputs, final = model.inputs, model.outputs
        except (AttributeError, ValueError) as error:
            raise ValueError(
                f"Model {model.name!r} has no symbolic inputs/outputs ({error}); layer outputs can only be read "
                f"from a functional model or a Sequential model that starts with keras.Input(shape=...)."
            ) from error
        if len(final) != 1:
            raise ValueError(f"Expected a model with one output (the class scores), received {len(final)}.")
        self.layers = list(layers)
        tensors = [model.get_layer(name).output for name in self.layers]
        self._model_output_index = next((i for i, t in enumerate(tensors) if t is final[0]), len(tensors))
        if self._model_output_index == len(tensors):
            tensors.append(final[0])
        self._extractor = keras.Model(inputs, tensors, name=f"{model.name}_layer_outputs")

    def __call__(self, images: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Returns ``({layer: N x D float32}, model output N x classes)`` for ``images`` (N first).

        Batches go through the compiled predict step and straight into preallocated arrays: conv outputs are
        hundreds of MB for thousands of images, and `predict`'s list-then-concatenate would copy them twice.
        """
        n = len(images)
        flat: list[np.ndarray] = []
        for start in range(0, n, _BATCH_SIZE):
            results = self._extractor.predict_on_batch(images[start : start + _BATCH_SIZE])
            results = results if isinstance(results, (list, tuple)) else [results]
            if not flat:
                flat = [np.empty((n, int(np.prod(r.shape[1:]))), dtype=np.float32) for r in results]
            for out, result in zip(flat, results, strict=True):
                out[start : start + len(result)] = np.asarray(result).reshape(len(result), -1)
        return dict(zip(self.layers, flat, strict=False)), flat[self._model_output_index]
