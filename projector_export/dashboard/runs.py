"""What the dashboard shows of a run: its snapshot tensors by layer and step, read through the run's config.

The config is the one TensorBoard's projector serves (`config.served_config`: the plugin-assets config, or the
portable copy of a moved log dir), so the dashboard and the PROJECTOR read the same files; nothing is copied.
A run is re-read only when its `checkpoint` state file or a config changes (every export and every layout
publication flips the state file), and a tensor's decoded layouts are kept per (run, tensor) for as long as
the run's config names the same bookmarks file.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from projector_export import config as config_lib
from projector_export.bookmarks import marker, read_states, state_coordinates
from projector_export.metadata import STATE_FILENAME
from projector_export.naming import CLASS_EMBEDDING_NAME, parse_snapshot_name


@dataclass(frozen=True)
class Layout:
    """One layout of a tensor as the page needs it: what its bookmark's marker says, and its coordinates."""

    layout: str  # "pca", "tsne" or "umap"
    label: str  # the bookmark's name in the PROJECTOR's Bookmarks tray
    step: int | None
    continues: int | None  # the step whose layout this one started from and is aligned to
    color_by: str | None  # the metadata column the state colours by (the class column)
    coordinates: np.ndarray  # rows × dims, float32

    @property
    def dims(self) -> int:
        return self.coordinates.shape[1]

    @property
    def rows(self) -> int:
        return self.coordinates.shape[0]


def read_layouts(path: str) -> list[Layout]:
    """The layouts of the bookmarks file at `path`: its states with our marker (`bookmarks.py`), in file order;
    ValueError naming the file when it or a state is unreadable."""
    try:
        return [Layout(layout=found["layout"], label=str(state.get("label", "")), step=found.get("step"),
                       continues=found.get("continues"), coordinates=state_coordinates(state),
                       color_by=state.get("selectedColorOptionName") if state.get("selectedLabelOption") else None)
                for state in read_states(path) if (found := marker(state)) is not None]
    except ValueError as e:
        raise ValueError(f"{os.path.basename(path)}: {e}") from None


@dataclass(frozen=True)
class SnapshotTensor:
    """One `<layer>/step_<N>` tensor of a run, with the absolute paths of the files its config entry names."""

    name: str
    layer: str
    step: int
    rows: int
    bookmarks: str | None
    metadata: str | None
    sprite: str | None
    sprite_cell: tuple[int, int] | None


@dataclass(frozen=True)
class RunSnapshots:
    """The snapshot tensors of one run as its config lists them when read (`identity`: its files' stat)."""

    run: str
    run_dir: str
    identity: tuple
    tensors: dict[str, SnapshotTensor] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def has_layouts(self) -> bool:
        return any(t.bookmarks for t in self.tensors.values())

    @property
    def generation(self) -> str:
        """A short token that changes whenever the run is re-read with other files."""
        return hashlib.sha256(repr(self.identity).encode()).hexdigest()[:16]

    def layers(self) -> dict[str, dict[int, SnapshotTensor]]:
        """Layer -> step -> tensor, layers in the config's order, steps ascending."""
        out: dict[str, dict[int, SnapshotTensor]] = {}
        for tensor in self.tensors.values():
            out.setdefault(tensor.layer, {})[tensor.step] = tensor
        return {layer: dict(sorted(steps.items())) for layer, steps in out.items()}


class RunIndex:
    """Runs read through their configs, and their tensors' decoded layouts, cached; safe across threads."""

    def __init__(self, cache_bytes: int):
        self._lock = threading.Lock()
        self._runs: dict[str, RunSnapshots] = {}
        self._layouts: OrderedDict[tuple[str, str], tuple[str, list[Layout], int]] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._bytes = 0

    def snapshots(self, run: str, run_dir: str) -> RunSnapshots:
        """The run as its current files say (re-read only when the state file or a config changed)."""
        identity = _identity(run_dir)
        with self._lock:
            known = self._runs.get(run)
        if known is not None and known.identity == identity and known.run_dir == run_dir:
            return known
        fresh = _read_run(run, run_dir, identity)
        with self._lock:
            self._runs[run] = fresh
        return fresh

    def layouts(self, run: str, tensor: SnapshotTensor) -> list[Layout]:
        """The tensor's layouts (ValueError for an unreadable bookmarks file, [] without one)."""
        if tensor.bookmarks is None:
            return []
        key = (run, tensor.name)
        with self._lock:
            cached = self._layouts.get(key)
            if cached is not None and cached[0] == tensor.bookmarks:
                self._layouts.move_to_end(key)
                return cached[1]
        layouts = read_layouts(tensor.bookmarks)
        size = sum(layout.coordinates.nbytes for layout in layouts)
        with self._lock:
            old = self._layouts.pop(key, None)
            self._bytes += size - (old[2] if old else 0)
            self._layouts[key] = (tensor.bookmarks, layouts, size)
            while self._bytes > self._cache_bytes and len(self._layouts) > 1:
                _, (_, _, dropped) = self._layouts.popitem(last=False)
                self._bytes -= dropped
        return layouts


def _identity(run_dir: str) -> tuple:
    """Stat of the files whose change means the run must be re-read: the state file and both configs."""
    out = []
    for path in (os.path.join(run_dir, STATE_FILENAME), config_lib.config_path(run_dir),
                 config_lib.fallback_path(run_dir)):
        try:
            stat = os.stat(path)
        except OSError:
            out.append(None)
        else:
            out.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(out)


def _read_run(run: str, run_dir: str, identity: tuple) -> RunSnapshots:
    try:
        served = config_lib.served_config(run_dir)
    except (OSError, ValueError) as e:
        return RunSnapshots(run, run_dir, identity, problems=(str(e),))
    if served is None:
        return RunSnapshots(run, run_dir, identity)
    config, folder = served
    tensors, problems = {}, []
    for entry in config.embeddings:
        parsed = parse_snapshot_name(entry.tensor_name)
        if parsed is None or parsed[0] == CLASS_EMBEDDING_NAME:
            continue
        paths = {}
        for what, relative in (("bookmarks", entry.bookmarks_path), ("metadata", entry.metadata_path),
                               ("sprite", entry.sprite.image_path)):
            paths[what] = _inside(folder, relative) if relative else None
            if relative and paths[what] is None:
                problems.append(f"{entry.tensor_name}: {what} path {relative!r} leads out of {folder}")
        cell = tuple(entry.sprite.single_image_dim) if len(entry.sprite.single_image_dim) == 2 else None
        tensors[entry.tensor_name] = SnapshotTensor(
            name=entry.tensor_name, layer=parsed[0], step=parsed[1],
            rows=int(entry.tensor_shape[0]) if entry.tensor_shape else 0, sprite_cell=cell, **paths)
    return RunSnapshots(run, run_dir, identity, tensors, tuple(problems))


def _inside(folder: str, relative: str) -> str | None:
    """`relative` resolved against `folder`, or None when it leads out of it (as TensorBoard's projector refuses)."""
    base = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(base, os.path.expanduser(relative)))
    return path if os.path.commonpath([base, path]) == base else None
