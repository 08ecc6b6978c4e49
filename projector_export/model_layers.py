"""The one way to find a layer of a Keras model: by name (nested models too) or by type.

Snapshots, pictures, Grad-CAM and filter patterns all ask this module, so "which layer is `conv2`" and "which
layers are convolutions" have one answer each. Reading their outputs: `layer_outputs`; the class scores:
`class_scores`; Keras' private structures: `keras_internals`.

Layer names: a layer of a nested model (a functional or Sequential model used as a layer) is named
``<outer>/<inner>`` (e.g. ``encoder/dense_1``); its plain name works too when no other layer has it.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

FEATURE_LAYER_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense)
"""The layers snapshotted by default: their outputs are what a network has learnt to compute."""

POOLING_2D_TYPES = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)

PATH_SEPARATOR = "/"


def named_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """Every layer of `model` by its full name, in model order, nested models' layers as ``<outer>/<inner>``."""
    found: dict[str, keras.layers.Layer] = {}
    for layer in model.layers:
        found[layer.name] = layer
        if isinstance(layer, keras.Model):
            found.update({f"{layer.name}{PATH_SEPARATOR}{name}": inner for name, inner in named_layers(layer).items()})
    return found


def resolve_layers(model: keras.Model, names: Sequence[str] | None) -> list[str]:
    """The full names of `names` (None: `default_layers`), duplicates dropped, in the order given.

    A plain name matches a layer at any depth when exactly one layer has it.

    Raises:
        TypeError: a single string instead of a sequence of names.
        ValueError: a name that is missing or ambiguous (the message lists the valid names), or no layer chosen.
    """
    if isinstance(names, str):
        raise TypeError(f"`layers` must be a sequence of layer names, received the string {names!r}; "
                        f"split it first, e.g. {names.split(',')!r}.")
    if names is None:
        chosen = default_layers(model)
        if not chosen:
            raise ValueError(
                f"No layer to snapshot: `layers` is None and model {model.name!r} has no convolution or dense "
                f"layer. Pass layer names from: {', '.join(named_layers(model))}."
            )
        return chosen
    known = named_layers(model)
    unknown = [name for name in names if not _matches(known, name)]
    if unknown:
        raise ValueError(f"Unknown layer name(s) {', '.join(map(repr, unknown))} for model {model.name!r}. "
                         f"Expected names from its layers: {', '.join(known)}.")
    resolved = [resolve_layer(model, name) for name in names]
    if not resolved:
        raise ValueError(f"No layer to snapshot: `layers` is empty. Pass layer names from: {', '.join(known)}.")
    return list(dict.fromkeys(resolved))


def resolve_layer(model: keras.Model, name: str) -> str:
    """The full name of the one layer called `name` (full or plain); ValueError listing the valid names."""
    known = named_layers(model)
    matches = _matches(known, name)
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"Ambiguous layer name {name!r} in model {model.name!r}: it names {', '.join(matches)}. "
                         f"Pass one of these full names.")
    raise ValueError(f"Unknown layer name(s) {name!r} for model {model.name!r}. Expected names from its layers: "
                     f"{', '.join(known)}.")


def _matches(known: dict[str, keras.layers.Layer], name: str) -> list[str]:
    """The full names `name` stands for: itself if it is one, else every layer whose own name it is."""
    if name in known:
        return [name]
    return [full for full in known if full.rsplit(PATH_SEPARATOR, 1)[-1] == name]


def default_layers(model: keras.Model) -> list[str]:
    """Every convolution and dense layer, input to output, nested ones included: conv1, conv2, ..., fc1, logits."""
    return [name for name, layer in named_layers(model).items() if isinstance(layer, FEATURE_LAYER_TYPES)]


def layers_of_type(
    model: keras.Model, types: type | tuple[type, ...], *, nested: bool = True
) -> list[keras.layers.Layer]:
    """The layers of `model` that are instances of `types`, in model order; `nested`: also inside nested models
    (else only the model's own layers, whose `output` and `input` are tensors of the model's graph)."""
    layers = named_layers(model).values() if nested else model.layers
    return [layer for layer in layers if isinstance(layer, types)]


def conv_layers(model: keras.Model) -> list[keras.layers.Conv2D]:
    """The model's own ``Conv2D`` layers, in model order (the pictures read their `input`/`output` directly)."""
    return layers_of_type(model, keras.layers.Conv2D, nested=False)


def feature_map_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's own ``Conv2D`` and 2-D pooling layers (their outputs are ``h×w×c`` maps), in model order."""
    return layers_of_type(model, (keras.layers.Conv2D, *POOLING_2D_TYPES), nested=False)


def last_conv_layer(model: keras.Model) -> keras.layers.Conv2D:
    """The last ``Conv2D`` layer (Grad-CAM's default); ``ValueError`` when the model has none."""
    layers = conv_layers(model)
    if not layers:
        raise ValueError(
            f"Model {model.name!r} has no Conv2D layer; Grad-CAM and filter pictures need one. "
            f"Received layers: {list(named_layers(model))}."
        )
    return layers[-1]
