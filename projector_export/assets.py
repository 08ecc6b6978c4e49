"""Sprite PNG and metadata TSV files, content-addressed so that each is written only once.

The name holds a short hash of what the file is made from (`sprite-<hash>.png`,
`metadata-<hash>.tsv`): snapshots of the same probe examples share one sprite and one
metadata file, and a file that already exists is not even encoded again.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

import numpy as np

from projector_export.atomic import write_once
from projector_export.inputs import Inputs
from projector_export.sprite import cell_size, make_sprite

# Bumped when the sprite/metadata encoding changes, so content-addressed names change too.
_FORMAT_VERSION = b"2"
# Content-addressed files of a run's assets folder: sprites, metadata, and layouts' bookmarks (`bookmarks.py`).
ASSET_NAME_RE = re.compile(r"(sprite-[0-9a-f]{16}\.png|metadata-[0-9a-f]{16}\.tsv|bookmarks-[0-9a-f]{16}\.json)$")


@dataclass(frozen=True)
class Assets:
    """Paths (relative to the folder they were written for) of one export's sprite and metadata."""

    sprite_path: str | None
    sprite_cell_size: tuple[int, int] | None
    metadata_path: str | None
    written: tuple[str, ...]


def write_assets(base_dir: str, subdir: str, inputs: Inputs, *, dark_on_white: bool) -> Assets:
    """Writes the sprite and metadata of `inputs` into `base_dir/subdir` unless already there."""
    written = []
    sprite_rel = cell = metadata_rel = None
    if inputs.images is not None:
        images = inputs.images
        sprite_rel = _join(subdir, f"sprite-{_digest(_image_key(images, dark_on_white), images)}.png")
        path = os.path.join(base_dir, sprite_rel)
        if write_once(path, lambda: make_sprite(images, dark_on_white=dark_on_white).to_png()):
            written.append(path)
        cell = cell_size(images.shape)
    tsv = inputs.metadata_tsv()
    if tsv is not None:
        metadata_rel = _join(subdir, f"metadata-{_digest(b'', tsv)}.tsv")
        path = os.path.join(base_dir, metadata_rel)
        if write_once(path, lambda: tsv):
            written.append(path)
    return Assets(sprite_rel, cell, metadata_rel, tuple(written))


def _join(subdir: str, name: str) -> str:
    # Config paths use '/' on every system (TensorBoard and browsers accept it).
    return f"{subdir}/{name}" if subdir else name


def _image_key(images: np.ndarray, dark_on_white: bool) -> bytes:
    return f"{images.dtype.str}{images.shape}{dark_on_white}".encode()


def _digest(key: bytes, data) -> str:
    h = hashlib.blake2b(digest_size=8)
    h.update(_FORMAT_VERSION)
    h.update(key)
    h.update(np.ascontiguousarray(data).data if isinstance(data, np.ndarray) else data)
    return h.hexdigest()
