"""Sprite layout: cell i = image i, row-major, in a square grid; the 8192 px limit; grayscale and RGB."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from projector_export.metadata import MAX_SPRITE_SIZE_PX
from projector_export.sprite import cell_size, grid_side, make_sprite


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_cells_are_images_in_row_major_order_and_padding_is_background():
    images = np.arange(5 * 2 * 3, dtype=np.uint8).reshape(5, 2, 3) * 3
    sprite = make_sprite(images)
    assert sprite.cell_size == (3, 2)
    pixels = decode(sprite.to_png())
    # 5 images: 3 columns and 3 rows (TensorBoard needs as many rows as columns), 4 empty cells.
    assert pixels.shape == (3 * 2, 3 * 3)
    for i in range(5):
        row, col = divmod(i, 3)
        np.testing.assert_array_equal(pixels[row * 2:(row + 1) * 2, col * 3:(col + 1) * 3], images[i])
    assert not pixels[2:4, 6:].any() and not pixels[4:, :].any()


def test_rgb_images_keep_their_channels():
    images = np.random.default_rng(0).integers(0, 256, (4, 3, 3, 3), dtype=np.uint8)
    pixels = decode(make_sprite(images).to_png())
    assert pixels.shape == (6, 6, 3)
    np.testing.assert_array_equal(pixels[3:6, 3:6], images[3])


def test_grid_is_square_with_ceil_sqrt_n_cells_per_side():
    assert [grid_side(n) for n in (1, 2, 4, 5, 10, 500, 10_000, 10_001)] == [1, 2, 2, 3, 4, 23, 100, 101]
    assert grid_side(10**16 + 1) == 10**8 + 1  # exact for large n (no float rounding)


def test_non_square_n_gets_as_many_rows_as_columns():
    # 10 images (the class embedding): 4×4 cells, not 4 columns × 3 rows.
    images = np.arange(1, 11, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), dtype=np.uint8)
    pixels = decode(make_sprite(images).to_png())
    assert pixels.shape == (8, 8)
    assert pixels[::2, ::2].tolist() == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 0, 0], [0, 0, 0, 0]]


def test_a_tall_grid_is_scaled_by_its_rows_too():
    # 5 images of 10×3000 px: 3 rows of 3000 px would exceed 8192 px, so every cell is scaled by 8192/9000.
    with pytest.warns(UserWarning, match="scaled down to 9×2730"):
        sprite = make_sprite(np.zeros((5, 3000, 10), dtype=np.uint8))
    assert sprite.cell_size == (9, 2730) and sprite.pixels.shape == (3 * 2730, 3 * 9)


def test_too_many_cells_are_scaled_down_with_a_warning():
    # 100 images of 1000×1000 px would need 10,000 px per side.
    n, side = 100, 1000
    images = np.zeros((n, side, side), dtype=np.uint8)
    images[:, :, : side // 2] = np.arange(n, dtype=np.uint8)[:, None, None] + 1  # left half: the index
    expected = r"above TensorBoard's 8192×8192 px limit; thumbnails are scaled down to 819×819"
    with pytest.warns(UserWarning, match=expected):
        sprite = make_sprite(images)
    assert sprite.cell_size == (819, 819) == cell_size(images.shape)
    height, width = sprite.pixels.shape
    assert width <= MAX_SPRITE_SIZE_PX and height <= MAX_SPRITE_SIZE_PX
    # Every scaled cell still shows its own image: left half = index + 1, right half = 0.
    for i in (0, 37, 99):
        row, col = divmod(i, 10)
        cell = sprite.pixels[row * 819:(row + 1) * 819, col * 819:(col + 1) * 819]
        assert cell[:, :400].min() == cell[:, :400].max() == i + 1
        assert cell[:, 420:].max() == 0


def test_sizes_within_the_limit_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_sprite(np.zeros((10_000, 28, 28), dtype=np.uint8))
