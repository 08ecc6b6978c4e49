"""Every place where the library reads Keras' private structures, in one small module.

Keras 3 has no public way to ask "is this a functional model", "which layer computes this tensor" or "what did a
nested model's call receive". These functions answer those questions from Keras' own attributes:

- `keras.src.models.functional.Functional` (the class of functional models),
- `KerasTensor._keras_history` (the operation, node index and tensor index that produced a symbolic tensor),
- `Layer._inbound_nodes` and `Node.input_tensors` / `Node.arguments.args` (what a call of a layer received).

Checked against Keras 3.15.1 (installed). When Keras changes any of them, this is the one module to adapt: the
tests of `model_layers`, `class_scores` and `layer_outputs` read nested, multi-input and Sequential models
through every function here.
"""

from __future__ import annotations

from collections.abc import Iterator

import keras
import numpy as np
from keras.src.models.functional import Functional


def has_layer_graph(model: keras.Model) -> bool:
    """True for functional and Sequential models (their layers' outputs can be read); False for subclassed ones."""
    return isinstance(model, (Functional, keras.Sequential))


def is_functional(model: keras.Model) -> bool:
    """True for a functional model (not a Sequential one, not a subclassed one)."""
    return isinstance(model, Functional)


def layers_to_output(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """The layers computing `model`'s (first) output, from the output backwards, as long as each one has a single
    input: e.g. ``Softmax``, then the ``Dense`` before it, then ... A nested model at the end is entered (its own
    layers, from its output backwards) and the walk ends there. Nothing for a subclassed model."""
    if isinstance(model, keras.Sequential):
        for layer in reversed(model.layers):  # a chain: each layer's input is the previous layer's output
            if isinstance(layer, keras.Model):
                yield from layers_to_output(layer)
                return
            yield layer
        return
    if not isinstance(model, Functional):
        return
    tensor = model.outputs[0]
    while True:
        operation, node_index, _ = tensor._keras_history
        if isinstance(operation, keras.Model):
            yield from layers_to_output(operation)
            return
        yield operation
        inputs = operation._inbound_nodes[node_index].input_tensors
        if len(inputs) != 1:
            return
        tensor = inputs[0]


def nested_output(model: keras.Model, head: str, inner_output):
    """`inner_output`, a tensor of the nested model `head`'s own graph, as a tensor of `model`'s graph: the part
    of the nested model up to that tensor applied to what `model` feeds the nested model."""
    layer = model.get_layer(head)
    if len(layer._inbound_nodes) != 1:
        raise ValueError(f"Layer {head!r} cannot be read inside: the nested model {head!r} is called "
                         f"{len(layer._inbound_nodes)} times in model {model.name!r}, expected once.")
    node = layer._inbound_nodes[0]
    return extractor(layer, inner_output)(*node.arguments.args)


def extractor(model: keras.Model, outputs) -> keras.Model:
    """A model from `model`'s inputs (same structure the caller feeds) to `outputs`, sharing its weights."""
    try:  # a Sequential's `input` is that of its first call (an outer model's tensor when nested), not its own
        inputs = model.inputs[0] if isinstance(model, keras.Sequential) else model.input
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"Model {model.name!r} has no symbolic inputs ({error}); build it on a keras.Input first "
            f"(or call it on data once)."
        ) from error
    return keras.Model(inputs, outputs, name=f"{model.name}_outputs")


def build_sequential(model: keras.Sequential, inputs) -> None:
    """Builds a Sequential model given no `keras.Input` on the shape of `inputs` (as its first call would), so that
    its layers have outputs to read; `fit` builds it only at its first step."""
    try:
        model.inputs  # noqa: B018 (raises while the model has no inputs yet)
    except (AttributeError, ValueError):
        model.build((None, *np.shape(inputs)[1:]))

