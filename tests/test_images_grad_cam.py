"""Grad-CAM and filter patterns on tiny Keras models with known answers (no training)."""

import keras
import numpy as np
import pytest

from projector_export.images import filter_patterns, grad_cam
from projector_export.images.filter_patterns import LEAK
from projector_export.keras_internals import extractor


def _identity_cam_model():
    """conv = relu(x) (1×1 kernel of 1), logits = (mean(conv), -mean(conv)): known Grad-CAM answers."""
    inputs = keras.Input((6, 5, 1))
    conv = keras.layers.Conv2D(1, 1, activation="relu", use_bias=False, name="conv")
    pooled = keras.layers.GlobalAveragePooling2D()(conv(inputs))
    dense = keras.layers.Dense(2, name="logits")
    model = keras.Model(inputs, dense(pooled))
    conv.set_weights([np.ones((1, 1, 1, 1), np.float32)])
    dense.set_weights([np.array([[1.0, -1.0]], np.float32), np.zeros(2, np.float32)])
    return model


def test_grad_cam_known_answer_for_each_class():
    model = _identity_cam_model()
    images = np.random.default_rng(0).uniform(0.1, 1.0, (3, 6, 5, 1)).astype(np.float32)
    expected = images[..., 0] / images.max(axis=(1, 2, 3))[:, None, None]  # positive weight: the map itself
    np.testing.assert_allclose(grad_cam(model, images, np.zeros(3)), expected, atol=1e-5)
    np.testing.assert_allclose(grad_cam(model, images), expected, atol=1e-5)  # predicted class is 0
    assert grad_cam(model, images, np.ones(3)).max() == 0  # only negative evidence: an empty map


def _two_conv_model(input_shape=(10, 10)):
    inputs = keras.Input(input_shape)
    x = keras.layers.Reshape((*input_shape, 1))(inputs)
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))


def test_grad_cam_uses_last_conv_and_returns_input_sized_maps():
    keras.utils.set_random_seed(1)
    model = _two_conv_model()
    images = np.random.default_rng(1).uniform(0, 1, (4, 10, 10)).astype(np.float32)
    heat = grad_cam(model, images)
    assert heat.shape == (4, 10, 10) and heat.min() >= 0 and heat.max() <= 1
    np.testing.assert_allclose(heat, grad_cam(model, images, layer=model.get_layer("conv2")))
    assert not np.allclose(heat, grad_cam(model, images, layer=model.get_layer("conv1")))


def test_grad_cam_errors():
    dense_only = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no Conv2D layer"):
        grad_cam(dense_only, np.zeros((1, 4, 4, 1)))
    with pytest.raises(ValueError, match="one class per image"):
        grad_cam(_two_conv_model(), np.zeros((2, 10, 10)), np.zeros(3))


def test_filter_patterns_start_from_seeded_noise_and_raise_every_filter():
    keras.utils.set_random_seed(2)
    model = _two_conv_model()
    for name in ("conv1", "conv2"):
        layer = model.get_layer(name)
        start = filter_patterns(model, layer, steps=0, value_range=(0, 255))
        np.testing.assert_array_equal(start, filter_patterns(model, layer, steps=0, value_range=(0, 255)))
        assert start.shape == (layer.filters, 10, 10) and 0 <= start.min() and start.max() <= 255
        patterns = filter_patterns(model, layer, steps=10, value_range=(0, 255))
        assert 0 <= patterns.min() and patterns.max() <= 255
        before, after = _own_filter_means(model, layer, start), _own_filter_means(model, layer, patterns)
        # Random weights may leave a filter that no input can switch on (ReLU output 0 for all inputs), but the
        # objective climbed (activation + LEAK × pre-activation) must rise for all, and no activation may fall.
        objective = {k: v["post"] + LEAK * v["pre"] for k, v in (("before", before), ("after", after))}
        assert (objective["after"] > objective["before"]).all(), (name, before, after)
        assert (after["post"] >= before["post"]).all() and (after["post"] > before["post"]).sum() >= layer.filters - 1


def _own_filter_means(model, layer, patterns):
    """Mean pre-activation and activation of filter i on pattern i."""
    inputs = keras.ops.convert_to_numpy(extractor(model, layer.input)(patterns))
    pre = keras.ops.convert_to_numpy(layer.convolution_op(inputs, layer.kernel) + layer.bias)
    post = keras.ops.convert_to_numpy(layer(inputs))
    filters = np.arange(layer.filters)
    return {name: values.mean(axis=(1, 2))[filters, filters] for name, values in (("pre", pre), ("post", post))}


def test_filter_patterns_errors():
    model = _two_conv_model()
    with pytest.raises(TypeError, match="needs a Conv2D layer"):
        filter_patterns(model, model.get_layer("pool1"))
    with pytest.raises(ValueError, match="high > low"):
        filter_patterns(model, model.get_layer("conv1"), value_range=(1, 1))
    with pytest.raises(ValueError, match="Received: steps=-1. Expected an int >= 0"):
        filter_patterns(model, model.get_layer("conv1"), steps=-1)
    with pytest.raises(TypeError, match="Received: chunk=1.5"):
        filter_patterns(model, model.get_layer("conv1"), chunk=1.5)
