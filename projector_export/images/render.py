"""Pictures as uint8 RGB arrays, drawn with numpy and Pillow only.

Everything returns ``H×W×3`` uint8 arrays that ``tf.summary.image`` takes as they are. Small tiles are
enlarged by an integer factor with nearest-neighbour repetition so a 5×5 filter or a 7×7 feature map is
readable in TensorBoard without zooming, and pixel boundaries stay sharp.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PAD = 2
"""Pixels between tiles of a grid and around it."""
BACKGROUND = (64, 64, 64)
"""Grid background: mid-dark grey, distinct from black (zero) and white (maximum) tiles."""
MIN_TILE = 48
"""Smallest displayed tile side in pixels (tiles are enlarged by an integer factor up to at least this)."""
FONT_SIZE = 11
LINE_HEIGHT = FONT_SIZE + 3

# Diverging map for signed values (seed 001 used matplotlib's 'seismic'): blue < 0 < red, white at 0.
_NEGATIVE = np.array([0.0, 0.0, 1.0])
_POSITIVE = np.array([1.0, 0.0, 0.0])
# "jet"-like map for Grad-CAM heat in [0, 1], as in the Keras Grad-CAM example.
_JET = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.5, 0.0, 0.0]])


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=FONT_SIZE)


def text_width(text: str) -> int:
    """Width in pixels of ``text`` in the font the captions use."""
    left, _, right, _ = _font().getbbox(text)
    return int(math.ceil(right - left))


def upscale_factor(height: int, width: int, min_size: int = MIN_TILE) -> int:
    """The integer factor that makes the larger side of a ``height×width`` tile at least ``min_size``."""
    return max(1, math.ceil(min_size / max(height, width, 1)))


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge ``H×W[×C]`` by an integer ``factor`` with nearest-neighbour repetition."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def gray(values: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Map ``H×W`` values linearly to grey RGB (``low`` black, ``high`` white; default: the values' own range).

    A constant tile (``high == low``) is drawn black rather than divided by zero.
    """
    values = np.asarray(values, dtype=np.float64)
    low = float(values.min()) if low is None else float(low)
    high = float(values.max()) if high is None else float(high)
    span = high - low
    scaled = np.zeros_like(values) if span <= 0 else np.clip((values - low) / span, 0.0, 1.0)
    level = np.round(scaled * 255).astype(np.uint8)
    return np.repeat(level[..., None], 3, axis=-1)


def diverging(values: np.ndarray, limit: float) -> np.ndarray:
    """Map signed ``H×W`` values to RGB on the symmetric scale ``[-limit, limit]``: blue, white at 0, red."""
    values = np.asarray(values, dtype=np.float64)
    t = np.zeros_like(values) if limit <= 0 else np.clip(values / limit, -1.0, 1.0)
    magnitude = np.abs(t)[..., None]
    colour = np.where((t >= 0)[..., None], _POSITIVE, _NEGATIVE)
    rgb = (1.0 - magnitude) * 1.0 + magnitude * colour
    return np.round(rgb * 255).astype(np.uint8)


def jet(heat: np.ndarray) -> np.ndarray:
    """Map ``heat`` in [0, 1] to RGB floats in [0, 1] along a jet-like colour map."""
    position = np.clip(np.asarray(heat, dtype=np.float64), 0.0, 1.0) * (len(_JET) - 1)
    lower = np.minimum(np.floor(position).astype(int), len(_JET) - 2)
    fraction = (position - lower)[..., None]
    return (1.0 - fraction) * _JET[lower] + fraction * _JET[lower + 1]


def overlay_heatmap(image_rgb: np.ndarray, heat: np.ndarray, max_alpha: float = 0.6) -> np.ndarray:
    """Blend a jet-coloured ``heat`` (``H×W`` in [0, 1]) over ``image_rgb``; cold areas stay see-through."""
    alpha = (np.clip(heat, 0.0, 1.0) * max_alpha)[..., None]
    blended = (1.0 - alpha) * (image_rgb.astype(np.float64) / 255.0) + alpha * jet(heat)
    return np.round(blended * 255).astype(np.uint8)


def grid(tiles: Sequence[np.ndarray] | np.ndarray, columns: int | None = None) -> np.ndarray:
    """Lay equal-sized ``h×w×3`` uint8 tiles out row by row, ``PAD`` pixels apart and around.

    ``columns`` defaults to ``ceil(sqrt(n))``, which keeps the grid about square. Tile ``i`` has its top-left
    corner at ``(PAD + (i // columns) * (h + PAD), PAD + (i % columns) * (w + PAD))``.
    """
    tiles = np.asarray(tiles)
    if tiles.ndim != 4 or tiles.shape[-1] != 3 or len(tiles) == 0:
        raise ValueError(f"grid() expects a non-empty n×h×w×3 array of tiles; received shape {tiles.shape}.")
    count, height, width, _ = tiles.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    canvas = np.empty((PAD + rows * (height + PAD), PAD + columns * (width + PAD), 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    for index, tile in enumerate(tiles):
        top = PAD + (index // columns) * (height + PAD)
        left = PAD + (index % columns) * (width + PAD)
        canvas[top : top + height, left : left + width] = tile
    return canvas


def captioned(tiles: Sequence[np.ndarray], captions: Sequence[Sequence[str]]) -> np.ndarray:
    """Put lines of text under each ``h×w×3`` tile; returns ``n×H×W×3`` tiles of one common size.

    Each image keeps its top-left corner at (0, 0) of its tile; the tile is widened (black on the right) when a
    caption is wider than the image.
    """
    if len(tiles) != len(captions):
        raise ValueError(
            f"captioned() needs one caption per tile; received {len(tiles)} tiles and {len(captions)} captions."
        )
    height, width, _ = np.shape(tiles[0])
    lines = max((len(c) for c in captions), default=0)
    text_w = max((text_width(line) for c in captions for line in c), default=0)
    out_w = max(width, text_w + 4)
    out_h = height + lines * LINE_HEIGHT + 2
    font = _font()
    result = []
    for tile, caption in zip(tiles, captions, strict=True):
        canvas = Image.new("RGB", (out_w, out_h), (0, 0, 0))
        canvas.paste(Image.fromarray(np.asarray(tile, dtype=np.uint8)), (0, 0))
        draw = ImageDraw.Draw(canvas)
        for row, line in enumerate(caption):
            draw.text((2, height + 1 + row * LINE_HEIGHT), line, fill=(255, 255, 255), font=font)
        result.append(np.asarray(canvas))
    return np.stack(result)


def confusion_matrix_image(matrix: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """Draw a confusion matrix (rows: true class, columns: predicted) with each count written in its cell.

    Cell shade is the count as a fraction of its row (the true class), so errors stand out even when one
    class is much more frequent; text is white on dark cells and black on light ones.
    """
    matrix = np.asarray(matrix)
    classes = len(matrix)
    widest = max([text_width(str(int(matrix.max())))] + [text_width(str(name)) for name in class_names])
    cell = max(28, widest + 8)
    margin_left = max(text_width("true"), widest) + 12
    margin_top = 2 * LINE_HEIGHT + 4
    size = (margin_left + classes * cell + PAD, margin_top + classes * cell + PAD)
    canvas = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = _font()
    draw.text((margin_left, 2), "predicted", fill=(0, 0, 0), font=font)
    draw.text((2, 2), "true", fill=(0, 0, 0), font=font)
    row_sums = np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    shade = matrix / row_sums
    for j, name in enumerate(class_names):
        draw.text((margin_left + j * cell + 4, LINE_HEIGHT + 2), str(name), fill=(0, 0, 0), font=font)
    for i, name in enumerate(class_names):
        top = margin_top + i * cell
        draw.text((4, top + cell // 2 - FONT_SIZE // 2), str(name), fill=(0, 0, 0), font=font)
        for j in range(classes):
            left = margin_left + j * cell
            level = shade[i, j]
            fill = tuple(int(round(255 * (1.0 - level * (1.0 - c)))) for c in (0.12, 0.35, 0.75))
            draw.rectangle((left, top, left + cell - 1, top + cell - 1), fill=fill, outline=(200, 200, 200))
            text = str(int(matrix[i, j]))
            colour = (255, 255, 255) if level > 0.5 else (0, 0, 0)
            position = (left + (cell - text_width(text)) // 2, top + cell // 2 - FONT_SIZE // 2)
            draw.text(position, text, fill=colour, font=font)
    return np.asarray(canvas)
