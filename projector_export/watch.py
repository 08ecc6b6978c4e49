"""Follow a folder of checkpoints that a training writes, and export each one once: a sidecar process.

Like Keras' `SidecarEvaluator`, the sidecar runs beside any training that saves `step_<N>.keras` files into
`<logdir>/<run>/checkpoints/` (saved elsewhere and renamed, so a listed file is complete), in step order, while the
training runs and after it. `snapshot_checkpoints` exports each one as the snapshots during training would; which
steps are already exported is read back from the run (`exported_steps`, asking the `SnapshotPlan` what a snapshot
writes), so a restarted sidecar neither loses nor repeats a step. A checkpoint Keras cannot load is reported and
skipped until its file changes; a run replaced by a new training (its identity in `run_claim`'s claim file, or a
checkpoint rewritten) is exported anew. Each exported step is fed to a layout worker (`layout_worker.LayoutFeed`), as
the snapshots during training do, so the sidecar's snapshots get their layouts and trajectories too.

Example:
    probe = check_probe(x_test[:1000], y_test[:1000], layers=["conv2", "fc1"])
    snapshot_checkpoints("logs", "run-1", probe, finished=lambda: os.path.exists("logs/run-1/model.keras"))
"""

from __future__ import annotations

import glob
import os
import re
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from projector_export.config import read_config
from projector_export.layouts import DEFAULT_METHOD
from projector_export.metadata import EVENT_FILE_GLOB
from projector_export.naming import STEP_PREFIX, parse_snapshot_name, parse_step_name, step_name
from projector_export.run_layouts import check_method

if TYPE_CHECKING:
    from projector_export.probe import Probe

CHECKPOINTS_DIRNAME = "checkpoints"
"""The folder of a run that holds its checkpoints."""
CHECKPOINT_SUFFIX = ".keras"
# `step_000100.keras`; temporary files start with "." and never match.
_CHECKPOINT_NAME = re.compile(r"^" + re.escape(STEP_PREFIX) + r"(\d+)" + re.escape(CHECKPOINT_SUFFIX) + "$")


def checkpoints_dir(logdir: str | os.PathLike, run: str | None) -> Path:
    """`<logdir>/<run>/checkpoints`: where a training saves the checkpoints a sidecar follows."""
    return Path(logdir, run or "", CHECKPOINTS_DIRNAME)


def checkpoint_path(directory: str | os.PathLike, step: int, total_steps: int | None = None) -> Path:
    """`<directory>/step_<N>.keras`, the step zero-padded as snapshot names are (`naming.step_name`)."""
    return Path(directory, step_name(step, total_steps) + CHECKPOINT_SUFFIX)


def checkpoint_steps(directory: str | os.PathLike) -> dict[int, Path]:
    """The complete checkpoints in `directory` as {step: path}; empty when the folder does not exist (yet)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return {}
    found = {}
    for name in names:
        match = _CHECKPOINT_NAME.match(name)
        if match:
            found[int(match.group(1))] = Path(directory) / name
    return found


def exported_steps(
    logdir: str | os.PathLike, run: str, names: Iterable[str], scalar_tags: Iterable[str] = ()
) -> set[int]:
    """The steps at which the run holds a `<name>/step_<N>` tensor for every one of `names` in its projector
    config, and, at step N, a scalar for every one of `scalar_tags` in its event files.

    The exporter writes the config after the tensors, and an export's scalars come after its config: a step found
    here was exported completely, one missing was not (or only in part, and exporting it again replaces it).
    """
    run_dir = os.path.join(os.fspath(logdir), run)
    steps_of: dict[str, set[int]] = {name: set() for name in names}
    for embedding in read_config(run_dir).embeddings:
        parsed = parse_snapshot_name(embedding.tensor_name)
        if parsed and parsed[0] in steps_of:
            steps_of[parsed[0]].add(parsed[1])
    tags = {tag: set() for tag in scalar_tags}
    if tags:
        for event in _events(run_dir):
            for value in event.summary.value:
                if value.tag in tags:
                    tags[value.tag].add(event.step)
    found = [*steps_of.values(), *tags.values()]
    return set.intersection(*found) if found else set()


def _events(run_dir: str):
    """Every event of every event file of `run_dir` (several writers may share a run: the training, a sidecar)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    for path in sorted(glob.glob(os.path.join(glob.escape(run_dir), EVENT_FILE_GLOB))):
        yield from EventFileLoader(path).Load()


def _print_now(line: str) -> None:
    print(line, flush=True)


class UnreadableCheckpoint(ValueError):
    """A checkpoint Keras cannot load (truncated, corrupt): skipped, and tried again only once its file changes."""


def follow_checkpoints(
    directory: str | os.PathLike,
    export: Callable[[int, Path], str | None],
    *,
    done: Callable[[int], bool] = lambda step: False,
    finished: Callable[[], bool] = lambda: False,
    until_step: int | None = None,
    poll_seconds: float = 5.0,
    run_identity: Callable[[], str | None] = lambda: None,
    replaced: Callable[[], None] = lambda: None,
    report: Callable[[str], None] = _print_now,
    exported: list[int] | None = None,
) -> list[int]:
    """Calls `export(step, path)` for every checkpoint of `directory` not `done`, in step order, as they appear;
    the line `export` returns, if any, is reported once the step is counted as exported.

    Returns the exported steps (appended to `exported` as they are, when given) once a checkpoint at or after
    `until_step` was listed, or once `finished()` (e.g. the training's final model exists) was true before a pass
    over the folder found nothing left to do. A checkpoint deleted before it was read (the training keeps only its
    newest ones) is skipped; one `done` or `export` find `UnreadableCheckpoint` is reported and skipped until its
    file changes (another inode, size or time). When `run_identity()` names another training than before, or a
    checkpoint handled before changes, the run was replaced (`projector-train --overwrite`): `replaced()` is called
    and every checkpoint is looked at again.
    """
    exported = [] if exported is None else exported
    handled: dict[int, tuple[tuple, bool]] = {}  # step -> (its file's signature, whether it was unreadable)
    identity = run_identity()
    while True:
        was_finished = finished()  # asked before listing: a training writes its last checkpoint before that
        now = run_identity()
        if now is not None and now != identity:
            if identity is not None or handled:  # not the first training seen
                handled.clear()
                replaced()
            identity = now
        listed = checkpoint_steps(directory)
        for step, path in sorted(listed.items()):
            signature = _signature(path)
            if (until_step is not None and step > until_step) or signature is None:
                continue
            if step in handled and handled[step][0] != signature and not handled[step][1]:
                handled.clear()  # a checkpoint rewritten: the run was replaced
                replaced()
            if handled.get(step, (None,))[0] == signature:
                continue
            handled[step] = (signature, False)
            try:
                if not done(step):
                    line = export(step, path)
                    exported.append(step)
                    if line:
                        report(line)
            except FileNotFoundError:
                continue
            except UnreadableCheckpoint as error:
                handled[step] = (signature, True)
                report(f"Skipped {path}: {error}; it is tried again if the file changes")
        if was_finished or (until_step is not None and any(step >= until_step for step in listed)):
            return exported
        time.sleep(poll_seconds)


def _signature(path: Path) -> tuple | None:
    """What tells a file from the one that was at `path` before: inode, size, modification time (None: gone)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def load_checkpoint(path: Path):
    """The Keras model saved at `path`; `UnreadableCheckpoint` says why Keras cannot load it."""
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001  (whatever Keras raises for a file it cannot read)
        if not zipfile.is_zipfile(path):
            raise UnreadableCheckpoint("not a complete .keras archive (truncated or corrupt)") from error
        raise UnreadableCheckpoint(f"Keras cannot load it ({type(error).__name__}: "
                                   f"{' '.join(str(error).split())[:300]})") from error


def snapshot_checkpoints(
    logdir: str | os.PathLike,
    run: str,
    probe: Probe,
    *,
    finished: Callable[[], bool] = lambda: False,
    until_step: int | None = None,
    poll_seconds: float = 5.0,
    report: Callable[[str], None] = _print_now,
    exported: list[int] | None = None,
    layouts: str | None = DEFAULT_METHOD,
) -> list[int]:
    """Exports every checkpoint of `<logdir>/<run>/checkpoints/` not exported yet, as `follow_checkpoints` lists
    them: `probe` through each checkpoint's model, written into the run exactly as `EmbeddingSnapshots` would at
    that step (tensors padded like the checkpoint's name, metadata, class embedding, separability scalars), with
    the same `layouts` (a worker lays out each exported step; None: none). When it returns or is stopped, `report`
    receives where the layouts stand (`run_layouts.LayoutStatus.message`) if a step was exported.

    Steps the run holds completely (every tensor and scalar its `SnapshotPlan` names) are skipped. A checkpoint
    Keras cannot load is reported and skipped (tried again if it changes); a run replaced by a new training (its
    identity, `run_claim`) is exported anew. `report` receives a line when the sidecar starts watching, one per
    exported step and one per skipped checkpoint. Returns the steps exported by this call (appended to `exported`
    as they are, when given: what a caller reports after an interruption).
    """
    from projector_export.events import summary_writer
    from projector_export.layout_worker import LayoutFeed
    from projector_export.run_claim import training_identity
    from projector_export.snapshotter import LayerSnapshotter

    run_dir = os.path.join(os.fspath(logdir), run)
    directory = checkpoints_dir(logdir, run)
    if layouts is not None:
        check_method(layouts)
    state: dict = {"loaded": {}, "exported_before": None, "writer": None,
                   "feed": None if layouts is None else LayoutFeed(logdir, run, method=layouts)}

    def snapshotter(path: Path) -> LayerSnapshotter:
        loaded = state["loaded"]  # the snapshotter of the last checkpoint loaded
        if path not in loaded:
            loaded.clear()
            loaded[path] = LayerSnapshotter(load_checkpoint(path), probe, logdir, run=run)
        return loaded[path]

    def done(step: int) -> bool:
        path = checkpoint_steps(directory).get(step)
        if state["exported_before"] is None and path is not None:  # what a snapshot writes, found in the run
            plan = snapshotter(path).plan
            state["exported_before"] = exported_steps(logdir, run, plan.tensor_bases(), plan.scalar_tags())
            if state["exported_before"]:
                report(f"Already exported: steps {', '.join(map(str, sorted(state['exported_before'])))}")
        return step in (state["exported_before"] or ())

    def export(step: int, path: Path) -> str:
        if not path.exists():
            raise FileNotFoundError(path)
        chosen = snapshotter(path)
        state["writer"] = state["writer"] or summary_writer(run_dir)
        record = chosen.snapshot(step, digits=parse_step_name(path.stem)[1], writer=state["writer"])
        if state["feed"] is not None and probe.inputs is not None:
            state["feed"].snapshot_written()
        values = "  ".join(f"{tensor} {value:.4f}" for tensor, value in record.separability.items())
        return (f"step {step}: exported {', '.join(chosen.plan.layers)} in {record.seconds:.1f} s; "
                f"separability {values}")

    def replaced() -> None:
        report(f"{run_dir} was replaced by a new training: exporting its checkpoints")
        _close(state)
        state.update(loaded={}, exported_before=None)

    report(f"Watching {directory} (every {poll_seconds:g} s)")
    try:
        return follow_checkpoints(
            directory, export, done=done, finished=finished, until_step=until_step, poll_seconds=poll_seconds,
            run_identity=lambda: getattr(training_identity(run_dir), "id", None), replaced=replaced, report=report,
            exported=exported)
    finally:
        _close(state)
        feed = state["feed"]
        if feed is not None and feed.process is not None:
            report(feed.training_ended().message())


def _close(state: dict) -> None:
    writer, state["writer"] = state["writer"], None
    if writer is not None:
        writer.close()
