"""The same export as a folder for the standalone Embedding Projector web app (projector.tensorflow.org).

The folder holds `projector_config.json` (`{"embeddings": [{tensorName, tensorShape,
tensorPath, metadataPath, sprite: {imagePath, singleImageDim}}]}`), each tensor as raw
little-endian float32 bytes (`.bytes`), and the sprite and metadata files.

The web app fetches the config's paths relative to its own page, not to the config: with
relative paths (the default) the app page must be served from this same folder. With
`base_url`, the URL the folder will be served at, the paths are absolute URLs and the app can
live anywhere (the data host must then allow the app's origin with CORS headers; see
docs/standalone.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from projector_export.assets import write_assets
from projector_export.atomic import write_atomic
from projector_export.inputs import ExportedTensor, check_inputs
from projector_export.locking import run_lock
from projector_export.metadata import STANDALONE_CONFIG_FILENAME
from projector_export.reduction import DEFAULT_PCA_COMPONENTS
from projector_export.safe_paths import make_logdir
from projector_export.validation import check_logdir

_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class StandaloneResult:
    """What `export_standalone` wrote: the folder, its config file and the tensors."""

    out_dir: str
    config_path: str
    tensors: tuple[ExportedTensor, ...]
    files_written: tuple[str, ...]


def export_standalone(
    out_dir: str | os.PathLike,
    embeddings: Mapping[str, np.ndarray],
    *,
    images: np.ndarray | None = None,
    metadata: object = None,
    reduce: str | None = "auto",
    pca_components: int = DEFAULT_PCA_COMPONENTS,
    dark_on_white: bool = False,
    base_url: str | None = None,
) -> StandaloneResult:
    """Writes embeddings (same arguments as `export_embeddings`) for the standalone web app.

    An existing `projector_config.json` in `out_dir` is updated: an entry of the same
    tensor name is replaced, others are kept. Exports into one folder take turns (a file lock,
    as exports into one run do), so concurrent ones keep each other's entries.

    `base_url`: where `out_dir` will be served (e.g. "https://host/data/"); the config's
    tensor, metadata and sprite paths become URLs under it. Without it they are file names,
    which the web app resolves against its own page.

    Raises:
      TypeError, ValueError: for invalid input, before anything is written.
    """
    out_dir = check_logdir(out_dir)
    prefix = check_base_url(base_url)
    inputs = check_inputs(embeddings, images=images, metadata=metadata, reduce=reduce, pca_components=pca_components)
    config_path = os.path.join(out_dir, STANDALONE_CONFIG_FILENAME)
    read_standalone_config(config_path)  # an unreadable config is refused before anything is written
    arrays, described = inputs.reduced()
    make_logdir(out_dir)
    with run_lock(out_dir):
        existing = read_standalone_config(config_path)  # read again under the lock: another export may have added to it
        assets = write_assets(out_dir, "", inputs, dark_on_white=dark_on_white)
        written = list(assets.written)
        entries = []
        for tensor in described:
            tensor_file = _tensor_filename(tensor.name)
            path = os.path.join(out_dir, tensor_file)
            write_atomic(path, arrays[tensor.name].astype("<f4", copy=False).tobytes())
            written.append(path)
            entry = {"tensorName": tensor.name, "tensorShape": list(tensor.shape), "tensorPath": prefix + tensor_file}
            if assets.metadata_path:
                entry["metadataPath"] = prefix + assets.metadata_path
            if assets.sprite_path:
                entry["sprite"] = {"imagePath": prefix + assets.sprite_path,
                                   "singleImageDim": list(assets.sprite_cell_size)}
            entries.append(entry)
        new_names = {e["tensorName"] for e in entries}
        kept = [e for e in existing.get("embeddings", []) if e.get("tensorName") not in new_names]
        config = {**existing, "embeddings": kept + entries}
        write_atomic(config_path, json.dumps(config, indent=2, ensure_ascii=False))
    written.append(config_path)
    return StandaloneResult(out_dir=out_dir, config_path=config_path, tensors=tuple(described),
                            files_written=tuple(written))


def check_base_url(base_url: str | None) -> str:
    """The prefix for the config's paths: "" without `base_url`, else the URL ending in "/"."""
    if base_url is None:
        return ""
    if not isinstance(base_url, str):
        raise TypeError(f"Invalid base_url: expected a str URL, received {type(base_url).__name__}.")
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"Invalid base_url {base_url!r}: expected the http(s) URL the folder is served at, "
                         "e.g. 'https://example.org/embeddings/'.")
    return base_url if base_url.endswith("/") else base_url + "/"


def _tensor_filename(name: str) -> str:
    # Readable, and unique: names that map to the same readable part differ in the hash.
    readable = _UNSAFE_FILE_CHARS.sub("_", name).strip("._") or "tensor"
    return f"{readable}-{hashlib.blake2b(name.encode('utf-8'), digest_size=4).hexdigest()}.bytes"


def read_standalone_config(path: str) -> dict:
    """The standalone projector config at `path` ({} when there is none); ValueError when it cannot be updated."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"Cannot update {path!r}: it is not a readable JSON projector config ({e}). "
                         "Delete it or choose another folder.") from None
    if not isinstance(config, dict) or not isinstance(config.get("embeddings", []), list):
        raise ValueError(f"Cannot update {path!r}: expected a JSON object with an 'embeddings' list.")
    return config
