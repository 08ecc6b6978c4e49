"""Which layers of a Keras model the pictures are drawn for, found by type rather than by name."""

from __future__ import annotations

import keras

POOLING_TYPES = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def conv_layers(model: keras.Model) -> list[keras.layers.Conv2D]:
    """The model's ``Conv2D`` layers, in model order."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def feature_map_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's ``Conv2D`` and 2-D pooling layers (their outputs are ``h×w×c`` maps), in model order."""
    return [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, *POOLING_TYPES))]


def last_conv_layer(model: keras.Model) -> keras.layers.Conv2D:
    """The last ``Conv2D`` layer (Grad-CAM's default); ``ValueError`` when the model has none."""
    layers = conv_layers(model)
    if not layers:
        raise ValueError(
            f"Model {model.name!r} has no Conv2D layer; Grad-CAM and filter pictures need one. "
            f"Received layers: {[layer.name for layer in model.layers]}."
        )
    return layers[-1]


def outputs_model(model: keras.Model, tensors) -> keras.Model:
    """A model from ``model``'s inputs to ``tensors`` (one or a list of its symbolic layer outputs), sharing weights."""
    if not model.inputs:
        raise ValueError(f"Model {model.name!r} has no symbolic inputs; build it on a keras.Input first.")
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # same structure the caller feeds
    return keras.Model(inputs, tensors)
