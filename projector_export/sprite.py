"""The sprite: all N thumbnails tiled into one PNG, cell i = image i, row-major, in a square grid.

The grid is always n×n cells, n = ceil(sqrt(N)), the last cells left empty: TensorBoard's
PROJECTOR finds cell i of the scatter plot's texture at column `i mod columns` and row
`floor(i / rows)` (its point shader divides by the row count), and its inspector scales the
sprite by the column count in both directions, so any grid with fewer rows than columns draws
other images' thumbnails.
"""

from __future__ import annotations

import io
import math
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from projector_export.metadata import MAX_SPRITE_SIZE_PX

# zlib settings for the PNG: level 1 with the run-length strategy is faster than Pillow's
# default (level 6) and, on sprites (large uniform backgrounds), about as small
# (docs/benchmarks.md).
_PNG_COMPRESS_LEVEL = 1
_PNG_COMPRESS_TYPE = zlib.Z_RLE
_CHANNELS_TO_MODE = {1: "L", 3: "RGB"}


@dataclass(frozen=True)
class Sprite:
    """A sprite sheet ready to save.

    Attributes:
      pixels: uint8 array (n*cell_h, n*cell_w[, 3]) holding the tiled thumbnails, n = `grid_side(N)`.
      cell_size: (width, height) of one cell in pixels, TensorBoard's `single_image_dim`.
    """

    pixels: np.ndarray
    cell_size: tuple[int, int]

    def to_png(self) -> bytes:
        """Encodes the sprite as PNG bytes with Pillow."""
        buffer = io.BytesIO()
        Image.fromarray(self.pixels).save(buffer, format="PNG", compress_level=_PNG_COMPRESS_LEVEL,
                                          compress_type=_PNG_COMPRESS_TYPE)
        return buffer.getvalue()


def check_images(images: object, n_rows: int | None, what: str = "images") -> np.ndarray:
    """Checks images (N×H×W or N×H×W×C, C in {1, 3}; uint8, or float in [0, 1]) and returns them.

    Raises TypeError for a non-array or a wrong dtype, ValueError for a wrong rank, channel
    count, value range, or an N that differs from the embeddings' `n_rows`. Messages name the
    argument `what` (e.g. "thumbnails").
    """
    if not (isinstance(images, np.ndarray) or hasattr(images, "__array__")):
        raise TypeError(
            f"Invalid {what}: expected a numpy array N×H×W or N×H×W×C, received {type(images).__name__}."
        )
    array = np.asarray(images)
    if array.ndim not in (3, 4):
        raise ValueError(
            f"Invalid {what}: expected rank 3 (N×H×W) or 4 (N×H×W×C), received shape {array.shape}. "
            "For a single-channel batch of shape N×H×W×1 or N×H×W both work."
        )
    if array.ndim == 4 and array.shape[3] not in _CHANNELS_TO_MODE:
        raise ValueError(
            f"Invalid {what}: expected 1 (grayscale) or 3 (RGB) channels in the last axis, received shape "
            f"{array.shape}. Use channels-last layout (N×H×W×C)."
        )
    if min(array.shape[1:3]) == 0:
        raise ValueError(f"Invalid {what}: expected H ≥ 1 and W ≥ 1, received shape {array.shape}.")
    if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
        raise TypeError(
            f"Invalid {what}: expected dtype uint8 (0..255) or float in [0, 1], received dtype {array.dtype}. "
            "Convert with images.astype(np.uint8) or images / 255.0."
        )
    if np.issubdtype(array.dtype, np.floating) and array.size:
        low, high = float(np.min(array)), float(np.max(array))
        if not (0.0 <= low and high <= 1.0):  # also catches NaN
            raise ValueError(
                f"Invalid {what}: float images must lie in [0, 1], received values in [{low}, {high}]. "
                "Divide by 255 or clip first."
            )
    if n_rows is not None and array.shape[0] != n_rows:
        raise ValueError(
            f"Invalid {what}: received {array.shape[0]} {what} for {n_rows} embedding rows; "
            "image i must show example i, so both need the same N."
        )
    return array


def make_sprite(images: np.ndarray, *, dark_on_white: bool = False) -> Sprite:
    """Tiles checked `images` into an n×n grid (n = `grid_side(N)`), image i at row i // n, column i % n.

    The cell is the image size unless the grid would exceed `MAX_SPRITE_SIZE_PX` per side; then
    every thumbnail is scaled down by the same factor (with a warning). `dark_on_white` inverts
    the values, so white-on-black digits (MNIST) are drawn as dark strokes on white.
    """
    pixels = _to_uint8(images)
    if pixels.ndim == 4 and pixels.shape[3] == 1:
        pixels = pixels[..., 0]
    n, height, width = pixels.shape[:3]
    rows = cols = grid_side(n)
    padded = np.zeros((rows * cols,) + pixels.shape[1:], dtype=np.uint8)
    padded[:n] = pixels
    # (rows*cols, h, w[, c]) -> (rows, h, cols, w[, c]) -> (rows*h, cols*w[, c]) in one reshape.
    grid = padded.reshape((rows, cols) + pixels.shape[1:]).swapaxes(1, 2)
    sheet = grid.reshape((rows * height, cols * width) + pixels.shape[3:])
    if dark_on_white:
        sheet = np.subtract(255, sheet, dtype=np.uint8)
    cell = cell_size(pixels.shape)
    if cell != (width, height):
        warnings.warn(
            f"{n} images of {width}×{height} px would make a {cols * width}×{rows * height} px sprite, above "
            f"TensorBoard's {MAX_SPRITE_SIZE_PX}×{MAX_SPRITE_SIZE_PX} px limit; thumbnails are scaled down "
            f"to {cell[0]}×{cell[1]} px.",
            stacklevel=3,
        )
        # A box filter over the whole sheet maps every cell exactly onto its smaller cell
        # (the output size is a multiple of the cell), so no pixel bleeds between cells.
        resized = Image.fromarray(sheet).resize((cols * cell[0], rows * cell[1]), Image.Resampling.BOX)
        sheet = np.asarray(resized)
    return Sprite(pixels=sheet, cell_size=cell)


def grid_side(n: int) -> int:
    """ceil(sqrt(n)): the columns (and, in a sprite, also the rows) of the grid holding `n` cells."""
    side = math.isqrt(n)
    return side + (side * side < n)


def cell_size(images_shape: tuple[int, ...]) -> tuple[int, int]:
    """(width, height) of one sprite cell for images of this shape: the image size, scaled
    down (keeping its aspect ratio) when the n×n grid would exceed `MAX_SPRITE_SIZE_PX` per side."""
    n, height, width = images_shape[:3]
    side = grid_side(n)
    scale = min(1.0, MAX_SPRITE_SIZE_PX / (side * width), MAX_SPRITE_SIZE_PX / (side * height))
    if scale >= 1.0:
        return width, height
    return max(1, int(width * scale)), max(1, int(height * scale))


def _to_uint8(images: np.ndarray) -> np.ndarray:
    if images.dtype == np.uint8:
        return images
    return np.rint(images * 255.0).astype(np.uint8)
