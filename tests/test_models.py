"""The seed networks: stable layer names, layer shapes, logits output, shapes derived from the input."""

from __future__ import annotations

import numpy as np
import pytest

from training.models import INPUT_NAME, LOGITS_NAME, MODEL_NAMES, build_model, compile_model

_COMMON = [INPUT_NAME, "rescale"]
EXPECTED = {
    # name -> [(layer name, output shape without the batch axis)] for 28×28 images and 10 classes
    "tutorial": [("channels", (28, 28, 1)), ("conv1", (28, 28, 16)), ("pool1", (14, 14, 16)),
                 ("conv2", (14, 14, 36)), ("pool2", (7, 7, 36)), ("flatten", (7 * 7 * 36,)), ("fc1", (128,))],
    "lenet": [("channels", (28, 28, 1)), ("conv1", (28, 28, 32)), ("pool1", (14, 14, 32)),
              ("conv2", (14, 14, 64)), ("pool2", (7, 7, 64)), ("flatten", (7 * 7 * 64,)), ("fc1", (1024,)),
              ("dropout", (1024,))],
    "three_conv": [("channels", (28, 28, 1)), ("conv1", (28, 28, 32)), ("pool1", (14, 14, 32)),
                   ("conv2", (14, 14, 48)), ("conv3", (14, 14, 64)), ("pool2", (7, 7, 64)),
                   ("flatten", (7 * 7 * 64,)), ("fc1", (1024,)), ("dropout", (1024,))],
    "small": [("channels", (28, 28, 1)), ("conv1", (28, 28, 16)), ("pool1", (14, 14, 16)),
              ("conv2", (14, 14, 32)), ("pool2", (7, 7, 32)), ("flatten", (7 * 7 * 32,)), ("fc1", (512,)),
              ("dropout", (512,))],
    "mlp": [("flatten", (28 * 28,)), ("fc1", (500,))],
}


def test_names_listed():
    assert set(MODEL_NAMES) == set(EXPECTED)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_layers_and_shapes(name):
    model = build_model(name, (28, 28), 10)
    expected = [*_COMMON, *(layer for layer, _ in EXPECTED[name]), LOGITS_NAME]
    assert [layer.name for layer in model.layers] == expected
    for layer, shape in EXPECTED[name]:
        assert tuple(model.get_layer(layer).output.shape[1:]) == shape, layer
    assert tuple(model.output.shape) == (None, 10)
    assert model.get_layer(LOGITS_NAME).activation.__name__ == "linear"  # logits, no softmax
    for layer in model.layers:
        if layer.name.startswith(("conv", "fc")):
            assert layer.activation.__name__ == "relu", layer.name
        if layer.name.startswith(("conv", "pool")):
            assert layer.padding == "same", layer.name
            if layer.name.startswith("conv"):
                assert layer.kernel_size == (5, 5)


def test_dropout_rate():
    assert build_model("lenet", (28, 28), 10).get_layer("dropout").rate == 0.5


@pytest.mark.parametrize("name", ["tutorial", "mlp"])
def test_shape_derived_from_input(name):
    model = build_model(name, (32, 20, 3), 4)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 20, 3), dtype=np.uint8)
    assert model.predict(images, verbose=0).shape == (2, 4)
    if name == "tutorial":
        assert tuple(model.get_layer("pool2").output.shape[1:]) == (8, 5, 36)


def test_compiled_model_trains_on_logits():
    model = compile_model(build_model("tutorial", (8, 8), 3), learning_rate=1e-3)
    images = np.full((6, 8, 8), 255, dtype=np.uint8)
    history = model.fit(images, np.arange(6) % 3, epochs=1, verbose=0)
    assert model.loss.get_config()["from_logits"] is True
    assert set(history.history) == {"loss", "accuracy"}


def test_unknown_name_lists_choices():
    expected = r"Unknown model 'resnet'\. Expected one of: tutorial, lenet, three_conv, small, mlp"
    with pytest.raises(ValueError, match=expected):
        build_model("resnet", (28, 28), 10)


@pytest.mark.parametrize("shape", [(28,), (28, 28, 1, 1), (0, 28)])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match="input_shape must be H×W or H×W×C"):
        build_model("tutorial", shape, 10)


def test_bad_num_classes():
    with pytest.raises(ValueError, match="num_classes must be at least 2"):
        build_model("tutorial", (28, 28), 1)
