"""One trajectory tensor per layer, `<layer>/trajectory`: every snapshot step's rows in one common basis.

Built from a run's snapshot tensors (read from its checkpoint), once its training has ended: each step's rows are
centred and turned (orthogonal Procrustes, in the layer's full width) onto the previous step's turned rows, since
each snapshot of a wide layer is its own PCA with its own axes; then all steps' rows share one PCA of
`TRAJECTORY_DIMS` columns. Row `j·n + i` is sample i at the j-th step; the metadata says which (`sample`, `step`,
the class column) and links each row to the same sample's row at the next step (`__seq_next__`, -1 at the last:
no such row), so the PROJECTOR draws every sample's path. When samples × steps exceeds the PROJECTOR's 100,000
points, a stratified subset of the samples is kept (the same share of each class), and the bookmarks say so.

Its bookmarks: one PCA state of all rows, then one per step selecting that step's rows (they carry no coordinates
of their own, so the points stay where the first state or the PROJECTOR's own PCA put them).

The exporter refuses a name exported again with another shape (a running TensorBoard caches tensors by name), so
a trajectory is built once, when the training has ended; a run that gains snapshots later keeps its trajectory,
and `build_trajectories` says so.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from projector_export import bookmarks as bm
from projector_export import checkpoint
from projector_export import config as config_lib
from projector_export.metadata import ASSETS_DIRNAME, PROJECTOR_MAX_POINTS
from projector_export.naming import CLASS_EMBEDDING_NAME, parse_snapshot_name, trajectory_name
from projector_export.reduction import pca

TRAJECTORY_DIMS = 50  # the PROJECTOR's t-SNE and UMAP need 50 columns or more unless "Spherize data" is ticked
SEQUENCE_COLUMN = "__seq_next__"
END_OF_SEQUENCE = "-1"  # no row there: the path ends (the column stays numeric)


@dataclass(frozen=True)
class Trajectory:
    """A trajectory tensor ready to export: rows, metadata columns, thumbnails (or None), its bookmark states."""

    name: str
    rows: np.ndarray
    metadata: dict[str, list[str]]
    images: np.ndarray | None
    states: list[dict]
    note: str | None


def build_trajectories(logdir: str | os.PathLike, run: str | None = None) -> dict[str, str]:
    """Exports `<layer>/trajectory` (with its bookmarks) for every layer of the run with two or more snapshot steps
    that has none yet. Returns {tensor: what happened} ("written", or why not)."""
    from projector_export.exporter import export_embeddings, publish_bookmarks
    from projector_export.run_layouts import metadata_columns, run_directory

    run_dir = run_directory(logdir, run)
    config = config_lib.read_config(run_dir)
    held = {e.tensor_name: int(e.tensor_shape[0]) for e in config.embeddings}
    outcome = {}
    for layer, steps in _layers(config).items():
        name, last = trajectory_name(layer), steps[max(steps)]
        columns = metadata_columns(run_dir, last)
        if len(steps) < 2:
            continue
        if name in held:
            n = min(int(e.tensor_shape[0]) for e in steps.values())
            rows = len(_samples(columns, n, len(steps))) * len(steps)
            outcome[name] = ("kept as it is" if held[name] == rows else
                             f"kept with {held[name]:,} rows (the run now gives {rows:,}): a running TensorBoard "
                             "caches tensors by name, so a name is never exported again with another shape")
            continue
        reader = checkpoint.reader(checkpoint.current_prefix(run_dir, config.model_checkpoint_path))
        rows_by_step = {step: np.asarray(reader.get_tensor(entry.tensor_name)) for step, entry in steps.items()}
        trajectory = make_trajectory(layer, rows_by_step, columns, _thumbnails(run_dir, last))
        export_embeddings(logdir, {name: trajectory.rows}, run=run, images=trajectory.images,
                          metadata=trajectory.metadata, reduce="none")
        publish_bookmarks(logdir, {name: bm.encode_states(trajectory.states)}, run=run)
        outcome[name] = "written" + (f" ({trajectory.note})" if trajectory.note else "")
    return outcome


def make_trajectory(layer: str, steps: Mapping[int, np.ndarray], columns: Mapping[str, list[str]],
                    thumbnails: np.ndarray | None = None) -> Trajectory:
    """The trajectory of `layer` from its snapshot rows by step (N×D_s each, the same N samples in the same order),
    the metadata columns of those samples (for the class) and their thumbnails (or None)."""
    order = sorted(steps)
    n = min(len(steps[s]) for s in order)
    class_name = bm.class_column(columns)
    classes = list(columns[class_name][:n]) if class_name else ["" for _ in range(n)]
    samples = _samples(columns, n, len(order))
    note = (f"a stratified subset of {len(samples):,} of {n:,} samples ({len(order)} steps, at most "
            f"{PROJECTOR_MAX_POINTS:,} points)" if len(samples) < n else None)
    rows = common_basis([np.asarray(steps[s], np.float32)[samples] for s in order])
    m = len(samples)
    index = np.arange(m * len(order))
    following = np.where(index + m < len(index), index + m, -1)
    metadata = {**({class_name: [classes[i] for i in samples] * len(order)} if class_name else {}),
                "sample": [str(i) for i in samples] * len(order),
                "step": [str(s) for s in order for _ in range(m)],
                SEQUENCE_COLUMN: [str(i) if i >= 0 else END_OF_SEQUENCE for i in following]}
    images = None if thumbnails is None else np.tile(thumbnails[samples], (len(order),) + (1,) * (thumbnails.ndim - 1))
    states = _states(trajectory_name(layer), layer, order, rows, class_name, note)
    return Trajectory(trajectory_name(layer), rows, metadata, images, states, note)


def _samples(columns: Mapping[str, list[str]], n: int, steps: int) -> np.ndarray:
    """The samples a trajectory of `steps` steps keeps of `n` (`stratified_samples` by the class column)."""
    class_name = bm.class_column(columns)
    classes = list(columns[class_name][:n]) if class_name else ["" for _ in range(n)]
    return stratified_samples(classes[:PROJECTOR_MAX_POINTS], PROJECTOR_MAX_POINTS // steps)


def stratified_samples(classes: list[str], limit: int) -> np.ndarray:
    """All sample indices when there are at most `limit`; else about `limit` of them, the same share of every class
    (the first ones of each class, in index order), sorted."""
    n = len(classes)
    if n <= limit:
        return np.arange(n)
    labels = np.asarray(classes)
    kept = []
    for value in dict.fromkeys(classes):
        members = np.flatnonzero(labels == value)
        kept.append(members[: int(len(members) * limit // n)])
    return np.sort(np.concatenate(kept))


def common_basis(steps: list[np.ndarray]) -> np.ndarray:
    """The rows of every step (same samples, same order) stacked in one basis: each step centred and turned onto
    the previous one's turned rows (orthogonal Procrustes over the widest step's columns, narrower ones padded with
    zeros), then one PCA of all of them (`TRAJECTORY_DIMS` columns at most). float32, steps one after another."""
    width = max(x.shape[1] for x in steps)
    turned = []
    for x in steps:
        x = np.nan_to_num(np.pad(x, ((0, 0), (0, width - x.shape[1]))).astype(np.float64))
        x -= x.mean(axis=0)
        if turned:
            u, _, vt = np.linalg.svd(x.T @ turned[-1], full_matrices=False)
            x = x @ (u @ vt)
        turned.append(x)
    stacked = np.concatenate(turned).astype(np.float32)
    return pca(stacked, min(TRAJECTORY_DIMS, *stacked.shape)).coordinates


def _states(name: str, layer: str, order: list[int], rows: np.ndarray, class_name: str | None,
            note: str | None) -> list[dict]:
    """One PCA state of every row, then one per step selecting that step's rows (without coordinates of its own)."""
    m = len(rows) // len(order)
    coordinates = np.zeros((len(rows), 3), np.float32)
    coordinates[:, : min(3, rows.shape[1])] = rows[:, :3]
    span = f"steps {order[0]:,} to {order[-1]:,}"
    layouts = [bm.LayoutState("pca", coordinates, note=note,
                              label=f"Paths of {layer}: PCA 3-D of {span} in one basis, {m:,} samples × "
                                    f"{len(order)} steps" + (f", {note}" if note else ""))]
    layouts += [bm.LayoutState("pca", coordinates, selected=tuple(range(j * m, (j + 1) * m)),
                               label=f"Paths of {layer}: step {step:,} selected ({m:,} of {len(rows):,} points; "
                                     "click the first bookmark first)") for j, step in enumerate(order)]
    states = []
    for item, step in zip(layouts, [None, *order], strict=True):
        (state,) = bm.make_states(name, layer, step, [item], pca=coordinates, tensor_shape=rows.shape,
                                  class_column=class_name)
        if step is not None:
            state["projections"] = []  # the points stay where they are (each state would otherwise repeat them)
            state[bm.MARKER]["coordinates"] = "first state"
        states.append(state)
    return states


def _layers(config) -> dict[str, dict[int, object]]:
    """{layer: {step: entry}} of the run's snapshot tensors (not the class embedding)."""
    layers: dict[str, dict[int, object]] = {}
    for entry in config.embeddings:
        parsed = parse_snapshot_name(entry.tensor_name)
        if parsed and parsed[0] != CLASS_EMBEDDING_NAME:
            layers.setdefault(parsed[0], {})[parsed[1]] = entry
    return layers


def _thumbnails(run_dir: str, entry) -> np.ndarray | None:
    """The snapshot's thumbnails, cut back out of its sprite (cell i = row i, row-major), or None."""
    if not entry.sprite.image_path:
        return None
    from PIL import Image

    with open(os.path.join(run_dir, ASSETS_DIRNAME, entry.sprite.image_path), "rb") as f:
        sheet = np.asarray(Image.open(io.BytesIO(f.read())))
    width, height = entry.sprite.single_image_dim
    side = sheet.shape[1] // width
    n = int(entry.tensor_shape[0])
    cells = sheet[: side * height].reshape(side, height, side, width, *sheet.shape[2:]).swapaxes(1, 2)
    return cells.reshape(side * side, height, width, *sheet.shape[2:])[:n]
