"""Bookmark files of layouts, written per the layout data format of the team plan (test helper).

Stands in for the layouts' own writer until it lands: a JSON array of TensorBoard `State` objects, one per
layout, each carrying the `projectorExport` marker, named content-addressed in the plugin-assets folder and
set as `bookmarks_path` in the run's config and its portable copy (renamed into place, so a reader never
sees half a file).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping

import numpy as np
from google.protobuf import text_format
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

from projector_export.atomic import write_atomic
from projector_export.config import FALLBACK_MARKER, config_path, fallback_path
from projector_export.metadata import ASSETS_DIRNAME
from projector_export.naming import parse_snapshot_name

KEYS = {"pca": "pca", "tsne": "tsne", "umap": "umap"}
NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


def states(tensor: str, layouts: Mapping[str, np.ndarray], *, color_by: str = "label",
           continues: int | None = None) -> list[dict]:
    """The bookmark states of `tensor`: one per layout kind, coordinates rounded to 4 decimals."""
    layer, step = parse_snapshot_name(tensor) or (tensor, None)
    out = []
    for kind, coordinates in layouts.items():
        rows, dims = coordinates.shape
        key = KEYS[kind]
        projections = [{f"{key}-{d}": round(float(v), 4) for d, v in enumerate(row)} for row in coordinates]
        out.append({
            "label": f"{NAMES[kind]}, all {rows:,} points", "projections": projections,
            "selectedProjection": kind, "selectedColorOptionName": color_by, "selectedLabelOption": color_by,
            "pcaComponentDimensions": [0, 1, 2], "tSNEPerplexity": 30, "tSNELearningRate": 10,
            "tSNEIteration": 1 if kind == "tsne" else 0, "tSNEis3d": dims == 3, "umapIs3d": dims == 3,
            "selectedPoints": [], "filteredPoints": None, "customXLeftText": "", "customXRightText": "",
            "customYUpText": "", "customYDownText": "",
            "projectorExport": {"format": 1, "tensor": tensor, "layer": layer, "step": step, "layout": kind,
                                "key": key, "dims": dims, "rows": rows, "continues": continues},
        })
    return out


def write_layouts(run_dir: str | os.PathLike, layouts: Mapping[str, Mapping[str, np.ndarray]],
                  **options) -> dict[str, str]:
    """Writes a bookmarks file for each tensor of `layouts` ({tensor: {kind: rows×dims}}) and names it in the
    run's config and portable copy; returns tensor -> the file's path."""
    run_dir = os.fspath(run_dir)
    names = {}
    for tensor, kinds in layouts.items():
        text = json.dumps(states(tensor, kinds, **options), separators=(",", ":"))
        name = f"bookmarks-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
        write_atomic(os.path.join(run_dir, ASSETS_DIRNAME, name), text)
        names[tensor] = name
    for path, prefix, header in ((config_path(run_dir), "", ""),
                                 (fallback_path(run_dir), ASSETS_DIRNAME + "/", FALLBACK_MARKER + "\n")):
        config = text_format.Parse(open(path, encoding="utf-8").read(), ProjectorConfig())
        for entry in config.embeddings:
            if entry.tensor_name in names:
                entry.bookmarks_path = prefix + names[entry.tensor_name]
        write_atomic(path, header + text_format.MessageToString(config))
    return {tensor: os.path.join(run_dir, ASSETS_DIRNAME, name) for tensor, name in names.items()}


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
