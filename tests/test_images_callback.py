"""ImageLogger on a tiny model and random data, read back through TensorBoard's data provider."""

import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from _tensorboard_reader import Served

from projector_export.images import ImageLogger, grad_cam, render
from projector_export.images.callback import CAPTIONED_TILE

RUN = "tiny"
EVERY = 5
STEPS = 12  # 96 examples, batch 8: logs at steps 0, 5, 10 and 12 (the end)
N_TEST = 40


def _tiny_model():
    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (96 + N_TEST, 12, 12, 1)).astype(np.float32)
    y = rng.integers(0, 3, len(x))
    model = _tiny_model()
    logdir = tmp_path_factory.mktemp("logs")
    logger = ImageLogger(x[96:], y[96:], logdir, run=RUN, every=EVERY, feature_map_images=2, grad_cam_images=4,
                         misclassified=9, input_channel=2, pattern_steps=5, class_names=["a", "b", "c"])
    model.fit(x[:96], y[:96], batch_size=8, epochs=1, verbose=0, callbacks=[logger])
    return dict(model=model, x=x[96:], y=y[96:], served=Served(logdir))


def _grid_shape(count, tile_h, tile_w):
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    return (render.PAD + rows * (tile_h + render.PAD), render.PAD + columns * (tile_w + render.PAD), 3)


def test_tags_at_logged_steps(run):
    tags = run["served"].image_tags(RUN)
    periodic = ["filters/conv1", "filters/conv2", "feature_maps/conv1", "feature_maps/pool1", "feature_maps/conv2",
                "confusion_matrix", "misclassified", "grad_cam"]
    assert tags == {**{tag: [0, 5, 10, 12] for tag in periodic},
                    "filter_patterns/conv1": [12], "filter_patterns/conv2": [12]}
    assert sorted(run["served"].texts[RUN]["confusion_matrix/table"]) == [0, 5, 10, 12]


def test_image_sizes(run):
    served = run["served"]
    # 3×3 kernels -> ×16 = 48 px tiles; 12×12 maps -> ×4; 6×6 maps -> ×8.
    expected = {
        "filters/conv1": (1, _grid_shape(4, 48, 48)),
        "filters/conv2": (1, _grid_shape(6, 48, 48)),
        "feature_maps/conv1": (2, _grid_shape(4, 48, 48)),
        "feature_maps/pool1": (2, _grid_shape(4, 48, 48)),
        "feature_maps/conv2": (2, _grid_shape(6, 48, 48)),
        "filter_patterns/conv1": (1, _grid_shape(4, 48, 48)),
        "filter_patterns/conv2": (1, _grid_shape(6, 48, 48)),
    }
    for tag, (count, shape) in expected.items():
        images = served.images(RUN, tag, 12)
        assert len(images) == count and all(image.shape == shape for image in images), tag
    (cam,) = served.images(RUN, "grad_cam", 12)  # 4 tiles, 2×2: 12 px images ×7 = 84 px, two caption lines
    tile_h = 84 + 2 * render.LINE_HEIGHT + 2
    assert cam.shape[0] == render.PAD + 2 * (tile_h + render.PAD)
    tile_w = (cam.shape[1] - render.PAD) / 2 - render.PAD
    assert tile_w == int(tile_w) and 84 <= tile_w <= 2 * 84


def test_grad_cam_tiles_overlay_the_heat_of_the_predicted_class(run):
    (cam,) = run["served"].images(RUN, "grad_cam", 12)
    tile_w = (cam.shape[1] - render.PAD) // 2 - render.PAD
    tile_h = 84 + 2 * render.LINE_HEIGHT + 2
    heat = grad_cam(run["model"], run["x"][:4])  # default: the predicted class
    low, high = run["x"].min(), run["x"].max()
    for i in range(4):
        top = render.PAD + (i // 2) * (tile_h + render.PAD)
        left = render.PAD + (i % 2) * (tile_w + render.PAD)
        digit = render.upscale(render.gray(run["x"][i, ..., 0], low, high), 7)
        expected = render.overlay_heatmap(digit, render.upscale(heat[i], 7))
        np.testing.assert_allclose(cam[top : top + 84, left : left + 84], expected, atol=1.01)


def test_filters_show_the_kernel_on_one_symmetric_scale(run):
    for name, channel in (("conv1", 0), ("conv2", 2)):  # input_channel=2 for layers after the first
        kernel = run["model"].get_layer(name).kernel.numpy()
        limit = np.abs(kernel).max()
        (image,) = run["served"].images(RUN, f"filters/{name}", 12)
        for f in range(kernel.shape[3]):
            columns = math.ceil(math.sqrt(kernel.shape[3]))
            top = render.PAD + (f // columns) * (48 + render.PAD)
            left = render.PAD + (f % columns) * (48 + render.PAD)
            shown = image[top : top + 48 : 16, left : left + 48 : 16].astype(float)  # one pixel per weight
            w = kernel[:, :, channel, f] / limit
            red = np.where(w >= 0, 255, 255 * (1 + w))
            blue = np.where(w <= 0, 255, 255 * (1 - w))
            np.testing.assert_allclose(shown[..., 0], red, atol=1)
            np.testing.assert_allclose(shown[..., 1], 255 * (1 - np.abs(w)), atol=1)
            np.testing.assert_allclose(shown[..., 2], blue, atol=1)


def test_feature_maps_are_the_layer_outputs_scaled_per_tile(run):
    model = run["model"]
    layer = model.get_layer("conv2")
    outputs = keras.Model(model.inputs[0], layer.output)(run["x"][:2]).numpy()
    for image, maps in zip(run["served"].images(RUN, "feature_maps/conv2", 12), outputs, strict=True):
        for c in range(maps.shape[-1]):
            top = render.PAD + (c // 3) * (48 + render.PAD)
            left = render.PAD + (c % 3) * (48 + render.PAD)
            shown = image[top : top + 48 : 8, left : left + 48 : 8, 0].astype(float)
            m = maps[..., c]
            span = m.max() - m.min()
            expected = np.zeros_like(m) if span == 0 else 255 * (m - m.min()) / span
            np.testing.assert_allclose(shown, expected, atol=1.01)


def test_confusion_table_sums_to_test_count_and_diagonal_is_correct_count(run):
    text = run["served"].texts[RUN]["confusion_matrix/table"][12]
    rows = [line for line in text.splitlines() if line.startswith("| **")]
    matrix = np.array([[int(v) for v in re.findall(r"\| (\d+)", row)] for row in rows])
    predictions = run["model"].predict(run["x"], verbose=0).argmax(axis=1)
    assert matrix.shape == (3, 3)
    assert matrix.sum() == N_TEST
    assert np.trace(matrix) == (predictions == run["y"]).sum()
    np.testing.assert_array_equal(matrix, np.bincount(run["y"] * 3 + predictions, minlength=9).reshape(3, 3))


def test_misclassified_tiles_are_misclassified_worst_first(run):
    (image,) = run["served"].images(RUN, "misclassified", 12)
    probabilities = keras.ops.softmax(run["model"].predict(run["x"], verbose=0)).numpy()
    predictions = probabilities.argmax(axis=1)
    wrong = (predictions != run["y"]).sum()
    count = min(9, wrong)
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    tile_h = (image.shape[0] - render.PAD) // rows - render.PAD
    tile_w = (image.shape[1] - render.PAD) // columns - render.PAD
    factor = render.upscale_factor(12, 12, min_size=CAPTIONED_TILE)
    low, high = run["x"].min(), run["x"].max()
    shown_test = np.round(255 * (run["x"][..., 0] - low) / (high - low)).astype(np.uint8)
    confidences = []
    for i in range(count):
        top = render.PAD + (i // columns) * (tile_h + render.PAD)
        left = render.PAD + (i % columns) * (tile_w + render.PAD)
        digit = image[top : top + 12 * factor : factor, left : left + 12 * factor : factor, 0]
        (index,) = np.flatnonzero((shown_test == digit).all(axis=(1, 2)))  # exactly one test image matches
        assert predictions[index] != run["y"][index]
        confidences.append(probabilities[index, predictions[index]])
    assert confidences == sorted(confidences, reverse=True)


def test_shared_writer_is_used_and_left_open(tmp_path):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).uniform(0, 1, (16, 12, 12, 1)).astype(np.float32)
    y = np.arange(16) % 3
    writer = tf.summary.create_file_writer(str(tmp_path / "shared"))
    logger = ImageLogger(x, y, tmp_path, run="shared", writer=writer, every=100, pattern_steps=0)
    _tiny_model().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[logger])
    with writer.as_default(step=99):  # still open: the run's other callbacks keep writing to it
        tf.summary.scalar("after", 1.0)
    writer.close()
    assert len(list((tmp_path / "shared").iterdir())) == 1  # one event file for the run
    tags = Served(tmp_path).image_tags("shared")
    assert tags["grad_cam"] == [0, 2] and not any(tag.startswith("filter_patterns") for tag in tags)


def test_a_period_longer_than_the_training_logs_only_at_the_start_and_the_end(tmp_path):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(2).uniform(0, 1, (24, 12, 12, 1)).astype(np.float32)
    y = np.arange(24) % 3
    logger = ImageLogger(x, y, tmp_path, run="long", every=1000, pattern_steps=0)
    _tiny_model().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[logger])  # 3 steps
    assert Served(tmp_path).image_tags("long")["grad_cam"] == [0, 3]


def test_every_zero_is_off(tmp_path):
    x = np.random.default_rng(2).uniform(0, 1, (24, 12, 12, 1)).astype(np.float32)
    logger = ImageLogger(x, np.arange(24) % 3, tmp_path, run="off", every=0)
    _tiny_model().fit(x, np.arange(24) % 3, batch_size=8, epochs=1, verbose=0, callbacks=[logger])
    assert not (tmp_path / "off").exists()


def test_probabilities_of_a_model_ending_in_a_softmax_layer_are_its_own_outputs(tmp_path):
    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Conv2D(1, 3, padding="same", name="conv1", kernel_initializer="zeros")(inputs)
    x = keras.layers.Flatten()(x)
    bias = keras.initializers.Constant([0.0, np.log(3.0)])
    logits = keras.layers.Dense(2, kernel_initializer="zeros", bias_initializer=bias)(x)
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    x = np.zeros((4, 12, 12, 1), np.float32)
    logger = ImageLogger(x, np.zeros(4, np.int64), tmp_path, pattern_steps=0)
    logger.set_model(model)
    # The model says 0.25 / 0.75; a second softmax would say 0.3775 / 0.6225.
    np.testing.assert_allclose(logger._probabilities(), [[0.25, 0.75]] * 4, rtol=1e-6)


def test_bad_arguments_fail_before_any_file_is_written(tmp_path):
    x = np.zeros((10, 12, 12, 1), np.float32)
    y = np.zeros(10, np.int64)
    with pytest.raises(ValueError, match="same non-zero length"):
        ImageLogger(x, y[:5], tmp_path)
    with pytest.raises(ValueError, match="one-hot"):
        ImageLogger(x, np.eye(10), tmp_path)
    with pytest.raises(ValueError, match="Received: every=-1"):
        ImageLogger(x, y, tmp_path, every=-1)
    with pytest.raises(TypeError, match="Received: every=2.5"):
        ImageLogger(x, y, tmp_path, every=2.5)
    with pytest.raises(ValueError, match="misclassified=-1"):
        ImageLogger(x, y, tmp_path, misclassified=-1)
    with pytest.raises(TypeError, match="`writer`: expected a tf.summary.SummaryWriter or None, received int"):
        ImageLogger(x, y, tmp_path, writer=3)
    cases = [
        (ImageLogger(x[:, :10, :10], y, tmp_path, run="a"), "takes \\(12, 12, 1\\)"),
        (ImageLogger(x, y + 3, tmp_path, run="b"), r"labels must lie in \[0, 3\)"),
        (ImageLogger(x, y, tmp_path, run="c", input_channel=4), "conv2' has 4 input channels"),
        (ImageLogger(x, y, tmp_path, run="d", class_names=["a", "b"]), "predicts 3 classes"),
    ]
    for logger, message in cases:
        with pytest.raises(ValueError, match=message):
            _tiny_model().fit(x, y, batch_size=5, epochs=1, verbose=0, callbacks=[logger])
    assert list(tmp_path.iterdir()) == []
