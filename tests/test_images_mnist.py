"""Images of a short real training on real MNIST (`projector-train`'s code path), through TensorBoard."""

import dataclasses
import math
import re

import keras
import numpy as np
import pytest
from _tensorboard_reader import Served

from projector_export.images import filter_patterns, grad_cam, render
from projector_export.images.callback import CAPTIONED_TILE
from projector_export.keras_internals import extractor
from projector_export.model_layers import conv_layers
from training.train import TrainConfig, train_and_evaluate

pytestmark = pytest.mark.integration

RUN = "images"
STEPS = 300
EVERY = 100
N_TEST = 1000  # the confusion matrix covers these; the whole test set is the default in projector-train
STROKE = 128  # pixels at least this bright are strokes
DILATE = 2  # the stroke mask grows by this many pixels each way (Grad-CAM's map is 14×14 for 28×28 digits)


@pytest.fixture(scope="module")
def trained(mnist, tmp_path_factory):
    logdir = tmp_path_factory.mktemp("logs")
    data = dataclasses.replace(mnist, test_images=mnist.test_images[:N_TEST], test_labels=mnist.test_labels[:N_TEST])
    config = TrainConfig(
        model="tutorial", steps=STEPS, learning_rate=1e-3, eval_every=STEPS, seed=0, logdir=str(logdir), run=RUN,
        verbose=0, snapshot_every=0, images_every=EVERY, images_samples=9,
    )
    result = train_and_evaluate(config, data=data)
    return dict(model=result.model, data=data, served=Served(logdir), accuracy=result.test_accuracy)


def _grid_shape(count, tile):
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    return (render.PAD + rows * (tile + render.PAD), render.PAD + columns * (tile + render.PAD), 3)


def test_tags_steps_and_sizes(trained):
    served = trained["served"]
    steps = list(range(0, STEPS + 1, EVERY))
    layers = ["conv1", "pool1", "conv2", "pool2"]
    expected_tags = {
        **{f"filters/{name}": steps for name in ("conv1", "conv2")},
        **{f"feature_maps/{name}": steps for name in layers},
        "confusion_matrix": steps, "misclassified": steps, "grad_cam": steps,
        "filter_patterns/conv1": [STEPS], "filter_patterns/conv2": [STEPS],
    }
    assert served.image_tags(RUN) == expected_tags
    # tutorial CNN: 16 then 36 filters of 5×5 (×10 = 50 px); maps 28×28 (×2), 14×14 (×4), 7×7 (×7).
    sizes = {
        "filters/conv1": (1, _grid_shape(16, 50)), "filters/conv2": (1, _grid_shape(36, 50)),
        "feature_maps/conv1": (2, _grid_shape(16, 56)), "feature_maps/pool1": (2, _grid_shape(16, 56)),
        "feature_maps/conv2": (2, _grid_shape(36, 56)), "feature_maps/pool2": (2, _grid_shape(36, 49)),
        "filter_patterns/conv1": (1, _grid_shape(16, 56)), "filter_patterns/conv2": (1, _grid_shape(36, 56)),
    }
    for tag, (count, shape) in sizes.items():
        images = served.images(RUN, tag, STEPS)
        assert [image.shape for image in images] == [shape] * count, tag
    for tag in ("confusion_matrix", "misclassified", "grad_cam"):
        (image,) = served.images(RUN, tag, STEPS)
        assert 250 <= max(image.shape[:2]) <= 600, (tag, image.shape)  # readable without zooming, fits a card


def test_confusion_table_matches_the_trained_model(trained):
    texts = trained["served"].texts[RUN]["confusion_matrix/table"]
    assert sorted(texts) == list(range(0, STEPS + 1, EVERY))
    rows = [line for line in texts[STEPS].splitlines() if line.startswith("| **")]
    matrix = np.array([[int(v) for v in re.findall(r"\| (\d+)", row)] for row in rows])
    data = trained["data"]
    predictions = trained["model"].predict(data.test_images, verbose=0).argmax(axis=1)
    assert matrix.shape == (10, 10) and matrix.sum() == N_TEST
    assert np.trace(matrix) == (predictions == data.test_labels).sum()
    assert np.trace(matrix) / N_TEST == pytest.approx(trained["accuracy"], abs=1e-6)


def test_misclassified_tiles_are_really_misclassified(trained):
    data = trained["data"]
    (image,) = trained["served"].images(RUN, "misclassified", STEPS)
    probabilities = keras.ops.softmax(trained["model"].predict(data.test_images, verbose=0)).numpy()
    predictions = probabilities.argmax(axis=1)
    count = min(9, int((predictions != data.test_labels).sum()))
    assert count == 9
    factor = render.upscale_factor(28, 28, min_size=CAPTIONED_TILE)
    tile_h = (image.shape[0] - render.PAD) // 3 - render.PAD
    tile_w = (image.shape[1] - render.PAD) // 3 - render.PAD
    confidences = []
    for i in range(count):
        top = render.PAD + (i // 3) * (tile_h + render.PAD)
        left = render.PAD + (i % 3) * (tile_w + render.PAD)
        digit = image[top : top + 28 * factor : factor, left : left + 28 * factor : factor, 0]
        matches = np.flatnonzero((data.test_images == digit).all(axis=(1, 2)))  # 0..255 shown as they are
        assert len(matches) >= 1
        index = matches[0]
        assert predictions[index] != data.test_labels[index]
        confidences.append(probabilities[index, predictions[index]])
    assert confidences == sorted(confidences, reverse=True)


def _dilated_strokes(images):
    mask = images >= STROKE
    grown = mask.copy()
    for dy in range(-DILATE, DILATE + 1):
        for dx in range(-DILATE, DILATE + 1):
            shifted = np.zeros_like(mask)
            shifted[:, max(dy, 0) : mask.shape[1] + min(dy, 0), max(dx, 0) : mask.shape[2] + min(dx, 0)] = (
                mask[:, max(-dy, 0) : mask.shape[1] + min(-dy, 0), max(-dx, 0) : mask.shape[2] + min(-dx, 0)]
            )
            grown |= shifted
    return grown


def test_grad_cam_heat_lies_on_the_strokes(trained):
    images = trained["data"].test_images[:100]
    heat = grad_cam(trained["model"], images)
    mask = _dilated_strokes(images)
    inside = (heat * mask).sum(axis=(1, 2))
    outside = (heat * ~mask).sum(axis=(1, 2))
    on_strokes = inside > outside
    share = inside / np.maximum(inside + outside, 1e-12)
    # Controls: a flat map would put the mask's area fraction inside; the same maps against the next digit's
    # strokes show how much of the share comes from digits being centred rather than from this digit.
    coverage = mask.mean(axis=(1, 2))
    share_other = (heat * np.roll(mask, 1, axis=0)).sum(axis=(1, 2)) / np.maximum(inside + outside, 1e-12)
    print(f"\nmask covers {coverage.mean():.0%} of the pixels; heat mostly inside for {on_strokes.mean():.0%} of "
          f"the digits; mean share inside {share.mean():.2f} (next digit's mask: {share_other.mean():.2f})")
    assert on_strokes.mean() > 0.5
    assert share.mean() > coverage.mean() + 0.1
    assert share.mean() > share_other.mean()


def test_filter_patterns_raise_their_filters_well_above_the_noise(trained):
    model = trained["model"]
    for layer in conv_layers(model):
        activation = extractor(model, layer.output)
        filters = np.arange(layer.filters)

        def own_means(x, activation=activation, filters=filters):  # this layer's, bound now
            return keras.ops.convert_to_numpy(activation(x)).mean(axis=(1, 2))[filters, filters]

        noise = np.stack([own_means(filter_patterns(model, layer, steps=0, value_range=(0, 255), seed=s))
                          for s in range(5)])
        start = noise[0]
        after = own_means(filter_patterns(model, layer, steps=30, value_range=(0, 255), seed=0))
        spread = noise.std(axis=0)
        print(f"\n{layer.name}: min ratio after/start {np.min(after / np.maximum(start, 1e-6)):.2f}, "
              f"min (after - start) / noise std {np.min((after - start) / np.maximum(spread, 1e-6)):.0f}")
        assert (after >= 1.5 * start).all() and (after - start > 10 * spread + 1e-3).all()
