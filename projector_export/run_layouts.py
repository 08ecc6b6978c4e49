"""The layouts of a run: which tensors lack them, computing them in step order per layer, publishing their bookmarks.

A tensor lacks layouts while its config entry has no `bookmarks_path` (an export, also of a name exported
again, writes the entry without one). `compute_run_layouts` lays out every such tensor of a run, the steps of each
layer in order, so that each step continues the previous one's layouts (read back from its bookmarks), and
publishes the bookmarks of each step's tensors together (`exporter.publish_bookmarks`: a new generation, atomic,
under the run's lock). The class embedding (`class_weights/step_N`, one point per class) gets a PCA only, and
`<layer>/trajectory` tensors get theirs when they are built (`trajectories.py`).

One process computes a run's layouts at a time: it holds the run's layouts lock (`LOCK_FILENAME`, an advisory
`flock` the kernel releases when the process dies) and keeps `STATUS_FILENAME` (who, since when, what is left, the
last error) up to date, so that `layout_status` can say which tensors are still being computed, by which process,
and how to wait for them. Everything is computed in memory and published atomically: a process interrupted or
killed at any point leaves the run as it was before its last publication.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import os
import shlex
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from tensorboard.plugins.projector.projector_config_pb2 import EmbeddingInfo, ProjectorConfig

from projector_export import bookmarks as bm
from projector_export import checkpoint
from projector_export import config as config_lib
from projector_export.atomic import write_atomic
from projector_export.layouts import DEFAULT_METHOD, METHODS, SEED, compute_layouts
from projector_export.metadata import ASSETS_DIRNAME, PROJECTOR_MAX_POINTS
from projector_export.naming import CLASS_EMBEDDING_NAME, TRAJECTORY_NAME, parse_snapshot_name
from projector_export.safe_paths import open_file, read_file
from projector_export.validation import check_logdir, check_run_name

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one layouts process per run is then the user's job
    fcntl = None

COMMAND = "projector-layouts"
LOCK_FILENAME = ".layouts.lock"
STATUS_FILENAME = "layouts-status.json"


class LayoutsBusy(RuntimeError):
    """Another process is computing the run's layouts (the message names it and how to wait)."""


@dataclass(frozen=True)
class LayoutStatus:
    """Where a run's layouts stand.

    Attributes:
      run_dir: the run.
      tensors: how many tensors the run holds that get layouts.
      pending: the ones without layouts yet, in the order they will be computed.
      worker: "pid <N> on <host> (<command>, since <time>)" of the process computing them, or None.
      error: the last layouts process's failure, if it failed.
      wait_command: the command that waits for them (computing what is left when no process is).
    """

    run_dir: str
    tensors: int
    pending: tuple[str, ...]
    worker: str | None
    error: str | None
    wait_command: str

    def message(self) -> str:
        """One paragraph for a person: done, or what is left, who computes it and how to wait."""
        if not self.pending:
            return f"Layouts: all {self.tensors} tensors of {self.run_dir} have their layouts (bookmarks)."
        names = ", ".join(self.pending[:4]) + (", ..." if len(self.pending) > 4 else "")
        head = f"Layouts: {len(self.pending)} of {self.tensors} tensors of {self.run_dir} have none yet ({names})"
        if self.worker:
            return f"{head}; being computed by {self.worker}. To wait for them: {self.wait_command}"
        failed = f"; the last layouts process failed: {self.error}" if self.error else ""
        return f"{head}{failed}. To compute them: {self.wait_command}"


@dataclass
class LayoutReport:
    """What `compute_run_layouts` did: tensors laid out (with their notes), skipped (and why), seconds taken."""

    computed: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def run_directory(logdir: str | os.PathLike, run: str | None) -> str:
    """The run directory, as `export_embeddings` names it (the log dir itself for run=None)."""
    logdir = check_logdir(logdir)
    return logdir if run is None else os.path.join(logdir, check_run_name(run))


def wait_command(logdir: str | os.PathLike, run: str | None) -> str:
    run_flag = [] if run is None else ["--run", run]
    return shlex.join([COMMAND, "--logdir", os.path.abspath(os.fspath(logdir)), *run_flag, "--wait"])


def pending_tensors(config: ProjectorConfig, *, recompute: bool = False) -> list[EmbeddingInfo]:
    """The entries that need layouts, in the order they are computed: by step (tensors without one first), then
    by name; every step of a layer after the ones before it. `recompute`: every entry that gets layouts."""
    entries = [e for e in config.embeddings if not _is_trajectory(e.tensor_name)]
    return sorted((e for e in entries if recompute or not e.bookmarks_path), key=_order)


def layout_status(logdir: str | os.PathLike, run: str | None = None) -> LayoutStatus:
    """Where the layouts of a run stand (see `LayoutStatus`); reads the config and the status file only."""
    run_dir = run_directory(logdir, run)
    assets_dir = os.path.join(run_dir, ASSETS_DIRNAME)
    config = config_lib.read_config(run_dir)
    pending = tuple(e.tensor_name for e in pending_tensors(config))
    tensors = sum(1 for e in config.embeddings if not _is_trajectory(e.tensor_name))
    status = _read_status(assets_dir)
    worker = None
    if _is_locked(assets_dir) and status.get("pid"):
        worker = (f"pid {status['pid']} on {status.get('host', '?')} ({status.get('command', '?')}, since "
                  f"{status.get('started', '?')})")
    return LayoutStatus(run_dir, tensors, pending, worker, status.get("error"), wait_command(logdir, run))


def compute_run_layouts(
    logdir: str | os.PathLike,
    run: str | None = None,
    *,
    method: str = DEFAULT_METHOD,
    recompute: bool = False,
    wait: bool = True,
    progress: Callable[[str], None] | None = None,
    command: str = "compute_run_layouts",
) -> LayoutReport:
    """Computes and publishes the layouts of every tensor of a run that lacks them (all with `recompute`).

    Args:
      logdir, run: the run, as for `export_embeddings`.
      method: the non-linear layout, "umap" or "tsne" (`layouts.compute_layouts`).
      recompute: lay out every tensor again (e.g. with another method), in step order.
      wait: when another process computes this run's layouts, wait for it (then do what is left); False: raise
        `LayoutsBusy` naming it.
      progress: called with one line per step published.
      command: how this process is named in the status ("which process").

    Returns:
      A `LayoutReport`.
    """
    run_dir = _existing_run(logdir, run)
    check_method(method)
    with _holding_lock(logdir, run, run_dir, wait, command) as status:
        return _compute(logdir, run, run_dir, method, recompute, status, progress)


def follow(logdir: str | os.PathLike, run: str | None, lines: Iterable[str], *, method: str = DEFAULT_METHOD,
           trajectories: bool = True, command: str = "layout worker",
           progress: Callable[[str], None] | None = None) -> None:
    """The worker's loop: holds the run's layouts lock for its whole life and computes what is pending now and after
    each of `lines` (one per snapshot written); when `lines` ends (the training ended, or its process died), a
    last pass, then the trajectories (`trajectories.build_trajectories`)."""
    run_dir = _existing_run(logdir, run)
    check_method(method)
    with _holding_lock(logdir, run, run_dir, True, command) as status:
        for _ in itertools.chain([None], lines, [None]):  # now, after each line, and once more at the end
            _compute(logdir, run, run_dir, method, False, status, progress)
        if trajectories:
            from projector_export.trajectories import build_trajectories

            for name, outcome in build_trajectories(logdir, run).items():
                (progress or (lambda line: None))(f"{name}: {outcome}")


def check_method(method: str) -> None:
    """Raises ValueError for an unknown layout method, or one whose library is not installed."""
    if method not in METHODS:
        raise ValueError(f"Unknown layout method {method!r}; expected one of {', '.join(METHODS)}.")
    module = {"umap": "umap", "tsne": "openTSNE"}[method]
    if importlib.util.find_spec(module) is None:
        extra = "" if method == DEFAULT_METHOD else "[tsne]"
        raise ValueError(f"The {method} layout needs {module}, which is not installed: pip install "
                         f"'projector-export{extra}' (or {module}).")


def _existing_run(logdir: str | os.PathLike, run: str | None) -> str:
    run_dir = run_directory(logdir, run)
    if not os.path.isdir(os.path.join(run_dir, ASSETS_DIRNAME)):
        raise ValueError(f"No PROJECTOR export in {run_dir!r} (no {ASSETS_DIRNAME} folder): nothing to lay out. "
                         "Check the log dir and the run.")
    return run_dir


@contextlib.contextmanager
def _holding_lock(logdir, run, run_dir: str, wait: bool, command: str) -> Iterator[dict]:
    """Holds the run's layouts lock and keeps the status file: who holds it, and the error it fails with."""
    assets_dir = os.path.join(run_dir, ASSETS_DIRNAME)
    with layouts_lock(assets_dir, wait=wait, busy=lambda: layout_status(logdir, run)):
        status = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                  "started": time.strftime("%Y-%m-%d %H:%M:%S"), "error": None}
        _write_status(assets_dir, status)
        try:
            yield status
        except Exception as e:
            _write_status(assets_dir, {**status, "error": f"{type(e).__name__}: {e}"})
            raise


def _compute(logdir, run, run_dir: str, method: str, recompute: bool, status: dict,
             progress: Callable[[str], None] | None) -> LayoutReport:
    """Lays out the pending tensors one step at a time (all layers of a step, then the next), publishing each step."""
    from projector_export.exporter import publish_bookmarks

    start = time.perf_counter()
    report = LayoutReport()
    assets_dir = os.path.join(run_dir, ASSETS_DIRNAME)
    done: set[str] = set()
    latest: dict[str, tuple[int, dict[str, np.ndarray]]] = {}  # layer -> (step, layouts) computed in this call
    while True:
        config = config_lib.read_config(run_dir)
        todo = [e for e in pending_tensors(config, recompute=recompute) if e.tensor_name not in done]
        _write_status(assets_dir, {**status, "pending": [e.tensor_name for e in todo]})
        if not todo:
            report.seconds = time.perf_counter() - start
            return report
        step = _order(todo[0])[0]
        group = [e for e in todo if _order(e)[0] == step]
        done.update(e.tensor_name for e in group)
        reader = checkpoint.reader(checkpoint.current_prefix(run_dir, config.model_checkpoint_path))
        files, sources = {}, {}
        for entry in group:
            rows = np.asarray(reader.get_tensor(entry.tensor_name))
            sources[entry.tensor_name] = bm.tensor_digest(rows)
            states, layouts = _states(run_dir, config, entry, rows, method, latest)
            files[entry.tensor_name] = bm.encode_states(states)
            layer, step_of = _layer_and_step(entry.tensor_name)
            if step_of is not None:
                latest[layer] = (step_of, layouts)
            notes = [s[bm.MARKER]["note"] for s in states if s[bm.MARKER]["note"]]
            if notes:
                report.notes[entry.tensor_name] = "; ".join(notes)
        published = publish_bookmarks(logdir, files, run=run, sources=sources)
        report.computed += list(published.published)
        report.skipped.update(published.skipped)
        (progress or (lambda line: None))(f"layouts of {', '.join(published.published) or 'nothing'} published"
                 + (f"; skipped {published.skipped}" if published.skipped else ""))


def _states(run_dir: str, config: ProjectorConfig, entry: EmbeddingInfo, rows: np.ndarray, method: str,
            latest: dict[str, tuple[int, dict[str, np.ndarray]]]) -> tuple[list[dict], dict[str, np.ndarray]]:
    """The bookmark states of one tensor and its layouts by kind (the start of the layer's next step)."""
    layer, step = _layer_and_step(entry.tensor_name)
    total = len(rows)
    rows = rows[:PROJECTOR_MAX_POINTS]
    continues, previous = _previous_layouts(run_dir, config, layer, step, latest)
    pca, layouts = compute_layouts(rows, previous, method=None if layer == CLASS_EMBEDDING_NAME else method,
                                   continues=continues, seed=SEED)
    if total > len(rows):
        cut = f"the first {len(rows):,} of {total:,} rows (the PROJECTOR shows no more)"
        layouts = [_with_note(item, cut) for item in layouts]
    columns = metadata_columns(run_dir, entry)
    states = bm.make_states(entry.tensor_name, layer, step, layouts, pca=pca, tensor_shape=(total, rows.shape[1]),
                            class_column=bm.class_column(columns),
                            extra={"source": bm.tensor_digest(rows), "seed": SEED})
    return states, {item.layout: item.coordinates for item in layouts}


def _previous_layouts(run_dir: str, config: ProjectorConfig, layer: str, step: int | None,
                      latest: dict[str, tuple[int, dict[str, np.ndarray]]]):
    """(step, {kind: coordinates}) of the layer's step just before `step`, or (None, None)."""
    if step is None:
        return None, None
    steps = {s: e for e in config.embeddings for lay, s in [_layer_and_step(e.tensor_name)]
             if lay == layer and s is not None and s < step}
    if not steps:
        return None, None
    before = max(steps)
    if layer in latest and latest[layer][0] == before:
        return before, latest[layer][1]
    path = steps[before].bookmarks_path
    if not path:
        return None, None
    try:
        states = bm.read_states(os.path.join(run_dir, ASSETS_DIRNAME, path))
        layouts = {bm.marker(s)["layout"]: bm.state_coordinates(s) for s in states if bm.marker(s)}
    except (OSError, ValueError):  # a file of another writer or version: start afresh
        return None, None
    return before, layouts


def metadata_columns(run_dir: str, entry: EmbeddingInfo) -> dict[str, list[str]]:
    """The metadata columns of a config entry, as the PROJECTOR reads them ({} without metadata)."""
    if not entry.metadata_path:
        return {}
    with open(os.path.join(run_dir, ASSETS_DIRNAME, entry.metadata_path), encoding="utf-8") as f:
        return bm.parse_metadata(f.read())


def _with_note(item: bm.LayoutState, note: str) -> bm.LayoutState:
    from dataclasses import replace

    return replace(item, note=f"{item.note}; {note}" if item.note else note)


def _layer_and_step(name: str) -> tuple[str, int | None]:
    parsed = parse_snapshot_name(name)
    return parsed if parsed else (name, None)


def _order(entry: EmbeddingInfo) -> tuple[int, str]:
    _, step = _layer_and_step(entry.tensor_name)
    return (-1 if step is None else step, entry.tensor_name)


def _is_trajectory(name: str) -> bool:
    return name.endswith("/" + TRAJECTORY_NAME)


@contextlib.contextmanager
def layouts_lock(assets_dir: str, *, wait: bool, busy: Callable[[], LayoutStatus]) -> Iterator[None]:
    """Holds the run's layouts lock for the block; another holder: wait for it, or raise `LayoutsBusy`."""
    if fcntl is None:
        yield
        return
    fd = open_file(os.path.join(assets_dir, LOCK_FILENAME), os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise LayoutsBusy(busy().message()) from None
        yield
    finally:
        os.close(fd)


def _is_locked(assets_dir: str) -> bool:
    """Whether a process holds the run's layouts lock now."""
    if fcntl is None:
        return False
    try:
        fd = open_file(os.path.join(assets_dir, LOCK_FILENAME))
    except OSError:  # none there (no process ever took it), or not a file we trust: nobody we know holds it
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _read_status(assets_dir: str) -> dict:
    try:
        status = json.loads(read_file(os.path.join(assets_dir, STATUS_FILENAME)) or b"{}")
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


def _write_status(assets_dir: str, status: dict) -> None:
    write_atomic(os.path.join(assets_dir, STATUS_FILENAME), json.dumps(status, indent=1))
