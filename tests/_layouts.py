"""Layouts written into a run with the layouts' own writer, and read back independently (test helper).

`write_layouts` publishes given coordinates as bookmark states (`bookmarks.make_states`, `publish_bookmarks`);
`read_bookmarks` reads a bookmarks file the way the format says, without the package's reader.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from projector_export.bookmarks import LayoutState, encode_states, make_states
from projector_export.exporter import publish_bookmarks
from projector_export.naming import parse_snapshot_name


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


def expected_dynamics(correct_by_step: Mapping[int, list[str]]) -> dict[int, dict[str, list[str]]]:
    """`first_correct_step` and `forgotten` at each step, computed here from each step's exported `correct` column
    ({step: ["yes" | "no", ...]}), the way the metadata format defines them."""
    expected, first, forgotten, before = {}, None, None, None
    for step in sorted(correct_by_step):
        right = [value == "yes" for value in correct_by_step[step]]
        first = first or [None] * len(right)
        forgotten = forgotten or [0] * len(right)
        for i, ok in enumerate(right):
            if ok and first[i] is None:
                first[i] = step
            if before is not None and before[i] and not ok:
                forgotten[i] += 1
        before = right
        expected[step] = {"first_correct_step": ["never" if s is None else str(s) for s in first],
                          "forgotten": [str(n) for n in forgotten]}
    return expected
