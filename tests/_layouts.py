"""Layouts written into a run with the layouts' own writer, and read back independently (test helper).

`write_layouts` publishes given coordinates as bookmark states (`bookmarks.make_states`, `publish_bookmarks`);
`compute_layouts_of_run` lays out every snapshot tensor of a run, each layer's steps in order, each continuing
the previous one (`layouts.compute_layouts`), as the layouts' command does for a run; `read_bookmarks` reads a
bookmarks file the way the format says, without the package's reader.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from google.protobuf import text_format
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

from projector_export import checkpoint
from projector_export.bookmarks import LayoutState, encode_states, make_states
from projector_export.config import config_path
from projector_export.exporter import publish_bookmarks
from projector_export.layouts import compute_layouts
from projector_export.naming import CLASS_EMBEDDING_NAME, parse_snapshot_name


def write_layouts(run_dir: str | os.PathLike, layouts: Mapping[str, Mapping[str, np.ndarray]], *,
                  class_column: str = "label") -> dict[str, str]:
    """Publishes {tensor: {kind: rows×dims}} (each with a rows×3 "pca") as the tensors' bookmarks; returns tensor
    -> its bookmarks file."""
    run_dir = Path(run_dir)
    files = {}
    for tensor, kinds in layouts.items():
        layer, step = parse_snapshot_name(tensor)
        states = [LayoutState(kind, coordinates) for kind, coordinates in kinds.items()]
        pca = kinds["pca"]
        files[tensor] = encode_states(make_states(tensor, layer, step, states, pca=pca, tensor_shape=pca.shape,
                                                  class_column=class_column))
    published = publish_bookmarks(run_dir.parent, files, run=run_dir.name)
    assert not published.skipped, published.skipped
    return dict(published.published)


def compute_layouts_of_run(run_dir: str | os.PathLike, method: str | None = "umap") -> dict[str, str]:
    """Every snapshot tensor's layouts (the class embedding's aside), computed from its rows in the run's bundle,
    each layer's steps in order, and published; returns tensor -> its bookmarks file."""
    config = text_format.Parse(Path(config_path(run_dir)).read_text(), ProjectorConfig())
    reader = checkpoint.reader(config.model_checkpoint_path)
    names = [e.tensor_name for e in config.embeddings if parse_snapshot_name(e.tensor_name)
             and parse_snapshot_name(e.tensor_name)[0] != CLASS_EMBEDDING_NAME]
    layouts, previous = {}, {}
    for name in sorted(names, key=lambda n: parse_snapshot_name(n)[::-1]):
        layer, step = parse_snapshot_name(name)
        before = previous.get(layer)
        _, computed = compute_layouts(reader.get_tensor(name), before and before[1], method=method,
                                      continues=before and before[0])
        layouts[name] = {item.layout: item.coordinates for item in computed}
        previous[layer] = (step, layouts[name])
    return write_layouts(run_dir, layouts)


def read_bookmarks(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Layout kind -> rows×dims coordinates of a bookmarks file's marked states, read as the format says."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for state in json.load(f):
            marker = state.get("projectorExport")
            if marker:
                columns = [f"{marker['key']}-{d}" for d in range(marker["dims"])]
                out[marker["layout"]] = np.array([[p[c] for c in columns] for p in state["projections"]],
                                                 dtype=np.float32)
    return out
