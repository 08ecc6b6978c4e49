"""The layouts a tensor's bookmarks file holds: TensorBoard `State` objects that carry our marker.

The file is a JSON array of states; a state written by projector_export carries
``"projectorExport": {"format": 1, "tensor", "layer", "step", "layout", "key", "dims", "rows", "continues"}``
and its coordinates are ``projections[i][f"{key}-{d}"]`` for d < dims (row i = tensor row i = metadata row i).
States without the marker (bookmarks a person saved) are skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

MARKER = "projectorExport"
FORMAT = 1


@dataclass(frozen=True)
class Layout:
    """One layout of one tensor: its kind, where it continues from, and its rows×dims coordinates."""

    layout: str  # "pca", "tsne" or "umap"
    label: str  # the bookmark's name, as the PROJECTOR's Bookmarks tray shows it
    step: int | None
    continues: int | None  # the step whose layout this one started from
    color_by: str | None  # the metadata column the state colours by (the class column)
    coordinates: np.ndarray  # rows × dims, float32

    @property
    def dims(self) -> int:
        return self.coordinates.shape[1]

    @property
    def rows(self) -> int:
        return self.coordinates.shape[0]


def read_layouts(path: str) -> list[Layout]:
    """The marked states of the bookmarks file at `path`, in file order; ValueError naming the file and the
    problem when it is not a JSON array of states or a marked state's coordinates do not match its marker."""
    with open(path, "rb") as f:
        try:
            states = json.loads(f.read())
        except ValueError as e:
            raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(states, list):
        raise ValueError(f"{path}: expected a JSON array of bookmark states, found {type(states).__name__}")
    return [_layout(path, i, state) for i, state in enumerate(states)
            if isinstance(state, dict) and isinstance(state.get(MARKER), dict)]


def _layout(path: str, index: int, state: dict) -> Layout:
    marker = state[MARKER]
    where = f"{path}, state {index}"
    if marker.get("format") != FORMAT:
        raise ValueError(f"{where}: marker format {marker.get('format')!r}, this reader knows {FORMAT}")
    key, dims, rows = marker.get("key"), marker.get("dims"), marker.get("rows")
    projections = state.get("projections")
    if not isinstance(projections, list) or len(projections) != rows:
        count = len(projections) if isinstance(projections, list) else None
        raise ValueError(f"{where}: marker says {rows!r} rows, the state has {count} projections")
    try:
        columns = [f"{key}-{d}" for d in range(dims)]
        coordinates = np.array([[point[c] for c in columns] for point in projections], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{where}: coordinates {key!r}-0..{dims!r} not readable ({e!r})") from None
    return Layout(layout=str(marker.get("layout")), label=str(state.get("label", "")), step=marker.get("step"),
                  continues=marker.get("continues"), color_by=state.get("selectedColorOptionName"),
                  coordinates=coordinates.reshape(rows, dims))
