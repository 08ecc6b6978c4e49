"""The five seed networks as Keras functional models with stable layer names.

Every model takes raw uint8 images (N×H×W or N×H×W×C, the shape derived from the data), rescales them to
[0, 1] inside the model, and outputs logits (train with sparse softmax cross-entropy `from_logits=True`).
Layer names are stable so that snapshots, images and the projector can address them: `conv1`, `pool1`,
`conv2`, `pool2`, `conv3`, `flatten`, `fc1`, `dropout`, `logits`, with the input layer called `images`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

INPUT_NAME = "images"
LOGITS_NAME = "logits"
_KERNEL = 5  # all seed convolutions are 5x5


# Keras (seconds to import) is imported when a model is built, so that `MODEL_NAMES` (projector-train --help)
# is known without it.
def _conv(filters: int, name: str) -> keras.layers.Layer:
    import keras

    return keras.layers.Conv2D(filters, _KERNEL, padding="same", activation="relu", name=name)


def _pool(name: str) -> keras.layers.Layer:
    import keras

    return keras.layers.MaxPooling2D(2, padding="same", name=name)


def _dense(units: int, name: str) -> keras.layers.Layer:
    import keras

    return keras.layers.Dense(units, activation="relu", name=name)


def _flatten() -> keras.layers.Layer:
    import keras

    return keras.layers.Flatten(name="flatten")


def _conv_stack(*layers: keras.layers.Layer, fc: int, dropout: float | None) -> list[keras.layers.Layer]:
    """Convolution/pooling layers, then flatten, the hidden dense layer `fc1` and optional dropout."""
    import keras

    head = [_flatten(), _dense(fc, "fc1")]
    if dropout is not None:
        head.append(keras.layers.Dropout(dropout, name="dropout"))
    return [*layers, *head]


# name -> a builder of the hidden layers between the input and `logits` (fresh layers on every call).
_ARCHITECTURES: dict[str, Callable[[], list[keras.layers.Layer]]] = {
    # seed 001 (TensorFlow tutorial 02), trained with batch 64 and Adam 1e-4 (projector-train's defaults)
    "tutorial": lambda: _conv_stack(
        _conv(16, "conv1"), _pool("pool1"), _conv(36, "conv2"), _pool("pool2"), fc=128, dropout=None
    ),
    # seed 002 (LeNet-style "Deep MNIST for experts")
    "lenet": lambda: _conv_stack(
        _conv(32, "conv1"), _pool("pool1"), _conv(64, "conv2"), _pool("pool2"), fc=1024, dropout=0.5
    ),
    # seed 000
    "three_conv": lambda: _conv_stack(
        _conv(32, "conv1"), _pool("pool1"), _conv(48, "conv2"), _conv(64, "conv3"), _pool("pool2"),
        fc=1024, dropout=0.5,
    ),
    # seed 003
    "small": lambda: _conv_stack(
        _conv(16, "conv1"), _pool("pool1"), _conv(32, "conv2"), _pool("pool2"), fc=512, dropout=0.5
    ),
    # seed 004: the fully-connected network
    "mlp": lambda: [_flatten(), _dense(500, "fc1")],
}
MODEL_NAMES: tuple[str, ...] = tuple(_ARCHITECTURES)


def build_model(name: str, input_shape: Sequence[int], num_classes: int) -> keras.Model:
    """Builds the seed network `name` (uncompiled) for images of `input_shape` (H×W or H×W×C).

    Example:
        model = build_model("tutorial", data.image_shape, data.num_classes)
    """
    import keras

    if name not in _ARCHITECTURES:
        raise ValueError(f"Unknown model {name!r}. Expected one of: {', '.join(MODEL_NAMES)}.")
    input_shape = tuple(int(size) for size in input_shape)
    if len(input_shape) not in (2, 3) or min(input_shape) < 1:
        raise ValueError(
            f"input_shape must be H×W or H×W×C with positive sizes. Received: input_shape={input_shape}."
        )
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2. Received: num_classes={num_classes}.")

    inputs = keras.Input(shape=input_shape, name=INPUT_NAME)
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    if len(input_shape) == 2 and name != "mlp":
        x = keras.layers.Reshape((*input_shape, 1), name="channels")(x)
    for layer in _ARCHITECTURES[name]():
        x = layer(x)
    logits = keras.layers.Dense(num_classes, name=LOGITS_NAME)(x)
    return keras.Model(inputs, logits, name=name)


def compile_model(model: keras.Model, learning_rate: float) -> keras.Model:
    """Adam and sparse softmax cross-entropy on the logits, with an `accuracy` metric (as the seeds)."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model
