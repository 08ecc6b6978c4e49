"""Rendering and confusion-matrix helpers of projector_export.images, on tiny arrays."""

import re

import numpy as np
import pytest

from projector_export.images import confusion_matrix, render
from projector_export.images.confusion import markdown_table, worst_misclassified


def test_diverging_is_symmetric_blue_white_red():
    values = np.array([[-2.0, -1.0, 0.0, 1.0, 2.0, 5.0]])
    rgb = render.diverging(values, limit=2.0)[0]
    assert rgb[0].tolist() == [0, 0, 255]  # -limit: full blue
    assert rgb[2].tolist() == [255, 255, 255]  # zero: white
    assert rgb[4].tolist() == [255, 0, 0]  # +limit: full red
    assert rgb[5].tolist() == [255, 0, 0]  # beyond the limit: clipped
    assert rgb[1].tolist() == [128, 128, 255] and rgb[3].tolist() == [255, 128, 128]  # half way, both sides alike


def test_gray_scales_to_range_and_constant_tile_is_black():
    assert render.gray(np.array([[1.0, 2.0, 3.0]]))[0, :, 0].tolist() == [0, 128, 255]
    assert render.gray(np.array([[0.0, 10.0]]), 0, 20)[0, :, 0].tolist() == [0, 128]
    assert render.gray(np.full((2, 2), 7.0)).max() == 0


def test_upscale_is_nearest_neighbour_blocks():
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    big = render.upscale(image, 4)
    assert big.shape == (8, 12)
    for i in range(2):
        for j in range(3):
            assert (big[4 * i : 4 * i + 4, 4 * j : 4 * j + 4] == image[i, j]).all()


@pytest.mark.parametrize("side, factor", [(5, 10), (7, 7), (14, 4), (28, 2), (48, 1), (100, 1)])
def test_upscale_factor_reaches_min_tile(side, factor):
    assert render.upscale_factor(side, side) == factor
    assert side * factor >= render.MIN_TILE


def test_grid_places_tiles_row_by_row():
    tiles = np.stack([np.full((3, 4, 3), 10 * (i + 1), dtype=np.uint8) for i in range(5)])
    image = render.grid(tiles)  # 5 tiles -> 3 columns, 2 rows
    pad = render.PAD
    assert image.shape == (pad + 2 * (3 + pad), pad + 3 * (4 + pad), 3)
    for i in range(5):
        top, left = pad + (i // 3) * (3 + pad), pad + (i % 3) * (4 + pad)
        assert (image[top : top + 3, left : left + 4] == 10 * (i + 1)).all()
    assert (image[0, 0] == render.BACKGROUND).all()
    with pytest.raises(ValueError, match="n×h×w×3"):
        render.grid(np.zeros((2, 4, 4)))


def test_captioned_keeps_image_and_widens_for_text():
    tile = np.full((10, 10, 3), 200, dtype=np.uint8)
    (out,) = render.captioned([tile], [["True: 7, Pred: 2", "confidence 97%"]])
    assert (out[:10, :10] == 200).all()
    assert out.shape[1] == max(render.text_width("True: 7, Pred: 2"), render.text_width("confidence 97%")) + 4 > 10
    assert out.shape[0] == 10 + 2 * render.LINE_HEIGHT + 2
    assert out[10:].max() == 255  # white text drawn under the image
    with pytest.raises(ValueError, match="one caption per tile"):
        render.captioned([tile], [])


def test_overlay_keeps_cold_pixels_and_colours_hot_ones():
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    heat = np.array([[0.0, 1.0], [0.0, 0.5]])
    out = render.overlay_heatmap(image, heat)
    assert (out[0, 0] == 100).all()
    assert out[0, 1, 0] > out[0, 1, 2]  # heat 1 is red


def test_confusion_matrix_counts_and_rejects_bad_labels():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predictions = np.array([0, 1, 1, 2, 0, 2])
    matrix = confusion_matrix(labels, predictions, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert matrix.sum() == len(labels) and np.trace(matrix) == (labels == predictions).sum()
    with pytest.raises(ValueError, match=r"predictions must lie in \[0, 3\)"):
        confusion_matrix(labels, predictions + 1, 3)
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(labels, predictions[:2], 3)


def test_worst_misclassified_orders_by_wrong_confidence():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.05, 0.95], [0.7, 0.3]])
    labels = np.array([0, 0, 0, 1, 1])
    assert worst_misclassified(probabilities, labels, 10).tolist() == [1, 4, 2]
    assert worst_misclassified(probabilities, labels, 2).tolist() == [1, 4]


def test_markdown_table_parses_back():
    matrix = np.array([[5, 1], [2, 7]])
    text = markdown_table(matrix, ["cat", "dog"])
    assert text.startswith("15 test images, 12 correct (80.00%).")
    rows = [line for line in text.splitlines() if line.startswith("| **")]
    parsed = [[int(v) for v in re.findall(r"\| (\d+)", row)] for row in rows]
    assert parsed == matrix.tolist()


def test_confusion_image_has_a_cell_per_pair_and_readable_size():
    matrix = np.diag([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    image = render.confusion_matrix_image(matrix, [str(i) for i in range(10)])
    cell = max(28, render.text_width("1135") + 8)
    assert image.shape[0] >= 10 * cell and image.shape[1] >= 10 * cell
    assert image.shape[0] < 600 and image.shape[1] < 600  # fits a TensorBoard card without zooming
