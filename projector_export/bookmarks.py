"""TensorBoard bookmark states holding precomputed layouts: written for the PROJECTOR, read back by our own code.

A snapshot tensor's bookmarks file (`EmbeddingInfo.bookmarks_path`, a content-addressed
`bookmarks-<16 hex>.json` in the run's plugin-assets folder) is a JSON array of the PROJECTOR's `State` objects
(vz_projector `data.ts`). Clicking one in the Bookmarks tray calls `loadState`, which copies `projections[i]`
onto point i and draws the chosen projection with the saved camera, colour-by and label-by columns.

Format (docs/layouts.md; the dashboard plugin relies on it):
  * `projections[i]` holds row i's coordinates, rounded to `DECIMALS`, as `"<key>-<d>"`; every state also holds
    its tensor's PCA (`pca-0..2`), so that the PROJECTOR's own PCA tab still draws after any state was clicked.
  * `MARKER` (`"projectorExport"`), a key TensorBoard ignores, says what the state shows: `format`, `tensor`,
    `layer`, `step`, `layout` (pca, tsne, umap), `key` (the projections' key prefix), `dims`, `rows`, `continues`
    (the step whose layout this one started from and is aligned to, or null), and `note`.
  * A t-SNE layout is saved in the UMAP slot (`key` "umap"): restoring a `tsne` state restarts the browser's own
    t-SNE from the saved positions, which moves them, while a `umap` state is drawn exactly as saved. Its name
    says so.
  * Required by `loadState` (it throws without them): `pcaComponentDimensions`, `tSNEPerplexity`,
    `tSNELearningRate`, `tSNEIteration`, `selectedPoints`, `customXLeftText`... . `filteredPoints` stays null
    (any list isolates points) and `shuffledDataIndices` is left out (a partial list would reorder the data).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from projector_export.metadata_tsv import COLOR_BY_MAX_VALUES, is_js_number

MARKER = "projectorExport"
FORMAT_VERSION = 1
DECIMALS = 4
BOOKMARKS_PREFIX = "bookmarks-"
# Projection slot (the key prefix of `projections`) and the name a person reads, per layout.
SLOTS = {"pca": "pca", "tsne": "umap", "umap": "umap"}
DISPLAY_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
# The PROJECTOR's own starting cameras (scatterPlot.ts START_CAMERA_POS_2D/3D): one per layout kind, shared by
# every step of a layer, so that clicking the same bookmark on the next step keeps the view.
CAMERAS = {
    2: {"orthographic": True, "position": [0, 0, 4], "target": [0, 0, 0], "zoom": 1},
    3: {"orthographic": False, "position": [0.45, 0.9, 1.6], "target": [0, 0, 0], "zoom": 1},
}
# The PROJECTOR's t-SNE and UMAP defaults, shown in its panels after a state is restored.
_PANEL_DEFAULTS = {"tSNEPerplexity": 30, "tSNELearningRate": 10, "tSNEIteration": 0, "umapNeighbors": 15,
                   "umapMinDist": 0.1}


@dataclass(frozen=True)
class LayoutState:
    """One layout of one tensor, as a bookmark shows it.

    Attributes:
      layout: "pca", "tsne" or "umap".
      coordinates: rows × dims (2 or 3), row i = tensor row i.
      continues: the step of the same layer this layout started from and is aligned to (None: the first).
      note: why a layout is missing or changed (e.g. "too few rows for UMAP"), shown in the state's name.
      selected: rows the state selects (a trajectory's step), or empty.
      label: the state's name, instead of the one `state_label` makes.
    """

    layout: str
    coordinates: np.ndarray
    continues: int | None = None
    note: str | None = None
    selected: tuple[int, ...] = ()
    label: str | None = None


def make_states(tensor: str, layer: str, step: int | None, layouts: Sequence[LayoutState], *,
                pca: np.ndarray, tensor_shape: Sequence[int], class_column: str | None,
                extra: Mapping[str, object] | None = None) -> list[dict]:
    """The PROJECTOR `State` of each layout of `tensor` (rows = len(pca) = len of every layout's coordinates).

    `pca` (rows × 3) is written into every state (see the module doc); `class_column` colours and labels the
    points; `extra` adds fields to every marker.
    """
    rows = len(pca)
    pca_keys = _keyed("pca", _rounded(pca))
    states = []
    for item in layouts:
        if item.layout not in SLOTS:
            raise ValueError(f"Unknown layout {item.layout!r}; expected one of {', '.join(SLOTS)}.")
        coordinates = np.asarray(item.coordinates)
        if coordinates.ndim != 2 or len(coordinates) != rows or coordinates.shape[1] not in CAMERAS:
            raise ValueError(f"Layout {item.layout!r} of {tensor!r} has shape {coordinates.shape}; expected "
                             f"{rows}×2 or {rows}×3 (one row per tensor row).")
        slot, dims = SLOTS[item.layout], coordinates.shape[1]
        points = pca_keys if slot == "pca" else [
            {**own, **base} for own, base in zip(_keyed(slot, _rounded(coordinates)), pca_keys, strict=True)]
        marker = {"format": FORMAT_VERSION, "tensor": tensor, "layer": layer, "step": step, "layout": item.layout,
                  "key": slot, "dims": dims, "rows": rows, "continues": item.continues, "note": item.note,
                  **(extra or {})}
        state = {
            "label": item.label or state_label(item, rows, step), "isSelected": False, "selectedProjection": slot,
            "dataSetDimensions": [int(tensor_shape[0]), int(tensor_shape[1])],
            **_PANEL_DEFAULTS, "tSNEis3d": slot == "tsne" and dims == 3, "umapIs3d": slot == "umap" and dims == 3,
            "pcaComponentDimensions": [0, 1, 2] if slot != "pca" or dims == 3 else [0, 1],
            "customSelectedSearchByMetadataOption": class_column or "", "customXLeftText": "",
            "customXLeftRegex": False, "customXRightText": "", "customXRightRegex": False, "customYUpText": "",
            "customYUpRegex": False, "customYDownText": "", "customYDownRegex": False,
            "projections": points, "filteredPoints": None, "selectedPoints": [int(i) for i in item.selected],
            "cameraDef": CAMERAS[dims], "selectedColorOptionName": class_column or "No color map",
            "forceCategoricalColoring": False, "selectedLabelOption": class_column or "",
            MARKER: marker,
        }
        states.append(state)
    return states


def state_label(item: LayoutState, rows: int, step: int | None) -> str:
    """The name a person reads in the Bookmarks tray, e.g. "UMAP, all 5,000 points of step 1,500, continues step
    1,000"."""
    dims = np.asarray(item.coordinates).shape[1]
    name = f"{DISPLAY_NAMES[item.layout]} {dims}-D"
    if item.layout == "tsne":
        name += " (precomputed, drawn in the UMAP tab so that it stays as computed)"
    points = f"{len(item.selected):,} of {rows:,} points" if item.selected else f"all {rows:,} points"
    where = f"{points} of step {step:,}" if step is not None else points
    parts = [name, where]
    if item.continues is not None:
        parts.append(f"continues step {item.continues:,}")
    if item.note:
        parts.append(item.note)
    return ", ".join(parts)


def encode_states(states: Sequence[dict]) -> bytes:
    """The bookmarks file's bytes: compact JSON (no spaces), UTF-8."""
    return json.dumps(list(states), separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def bookmarks_filename(data: bytes) -> str:
    """`bookmarks-<16 hex>.json`, named by a hash of its bytes (content-addressed, like the sprites)."""
    return f"{BOOKMARKS_PREFIX}{hashlib.blake2b(data, digest_size=8).hexdigest()}.json"


def tensor_digest(rows: np.ndarray) -> str:
    """A short hash of a tensor's rows as float32: which rows a layout was computed from."""
    array = np.ascontiguousarray(rows, dtype=np.float32)
    h = hashlib.blake2b(str(array.shape).encode(), digest_size=8)
    h.update(array.data)
    return h.hexdigest()


def decode_states(data: bytes | str) -> list[dict]:
    """The states of a bookmarks file; raises ValueError when it is not a JSON array of objects."""
    try:
        states = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"Not a bookmarks file (JSON array of PROJECTOR states): {e}") from None
    if not isinstance(states, list) or not all(isinstance(s, dict) for s in states):
        raise ValueError("Not a bookmarks file: expected a JSON array of PROJECTOR states (objects).")
    return states


def read_states(path: str | os.PathLike) -> list[dict]:
    """The states of the bookmarks file at `path` (see `decode_states`)."""
    with open(path, "rb") as f:
        return decode_states(f.read())


def marker(state: Mapping) -> dict | None:
    """Our marker of `state` (what it shows), or None for a state this package did not write."""
    found = state.get(MARKER)
    return found if isinstance(found, dict) and found.get("format") == FORMAT_VERSION else None


def state_coordinates(state: Mapping) -> np.ndarray:
    """The coordinates a state of ours holds: float32 rows × dims, row i = tensor row i.

    Raises ValueError for a state without our marker or with missing coordinates (a trajectory's per-step states
    hold none: theirs are the first state's).
    """
    found = marker(state)
    if found is None:
        raise ValueError(f"State {state.get('label')!r} was not written by projector_export (no {MARKER!r} marker).")
    key, dims, rows = found["key"], int(found["dims"]), int(found["rows"])
    points = state.get("projections") or []
    if found.get("coordinates") == "first state":
        raise ValueError(f"State {state.get('label')!r} selects rows and holds no coordinates of its own: they are "
                         "those of its file's first state.")
    if len(points) != rows:
        raise ValueError(f"State {state.get('label')!r} holds {len(points)} points; its marker says {rows}.")
    names = [f"{key}-{d}" for d in range(dims)]
    try:
        return np.array([[point[name] for name in names] for point in points], dtype=np.float32).reshape(rows, dims)
    except (KeyError, TypeError) as e:
        raise ValueError(f"State {state.get('label')!r} lacks coordinate {e} of a point.") from None


def class_column(columns: Mapping[str, Sequence[str]]) -> str | None:
    """The column to colour and label by: `class`; else `label` (older snapshots: the true class); else the
    first non-numeric column (where the PROJECTOR's Label by starts); else the first one with at most 50 values
    (a column with more is not offered by Color by); None for no columns."""
    if "class" in columns:
        return "class"
    if "label" in columns:
        return "label"
    for name, values in columns.items():
        if not all(is_js_number(v) for v in values if v != ""):
            return name
    return next((name for name, values in columns.items() if len(set(values)) <= COLOR_BY_MAX_VALUES), None)


def parse_metadata(text: str) -> dict[str, list[str]]:
    """Columns of a metadata TSV as the PROJECTOR reads it: a header when the first line has a tab, else one
    column called `label`; blank lines skipped."""
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return {}
    if "\t" not in lines[0]:
        return {"label": lines}
    header = lines[0].split("\t")
    cells = [line.split("\t") for line in lines[1:]]
    return {name: [row[i] if i < len(row) else "" for row in cells] for i, name in enumerate(header)}


def _rounded(coordinates: np.ndarray) -> list[list[float]]:
    values = np.round(np.asarray(coordinates, dtype=np.float64), DECIMALS)
    values[values == 0] = 0.0  # no "-0.0"
    return values.tolist()


def _keyed(slot: str, rows: list[list[float]]) -> list[dict[str, float]]:
    if not rows:
        return []
    names = [f"{slot}-{d}" for d in range(len(rows[0]))]
    return [dict(zip(names, row, strict=True)) for row in rows]
