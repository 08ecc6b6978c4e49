"""Follow a folder of checkpoints that a training writes, and export each one once: a sidecar process.

Like Keras' `SidecarEvaluator`, the sidecar runs beside any training that saves `step_<N>.keras` files into
`<logdir>/<run>/checkpoints/` (written under a temporary name and renamed, so a listed file is complete), in step
order, while the training runs and after it. `snapshot_checkpoints` exports each one as the snapshots during
training would; which steps are already exported is read back from the run (`exported_steps`, asking the
`SnapshotPlan` what a snapshot writes), so a restarted sidecar neither loses nor repeats a step.

Example:
    probe = check_probe(x_test[:1000], y_test[:1000], layers=["conv2", "fc1"])
    snapshot_checkpoints("logs", "run-1", probe, finished=lambda: os.path.exists("logs/run-1/model.keras"))
"""

from __future__ import annotations

import glob
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from projector_export.config import read_config
from projector_export.metadata import EVENT_FILE_GLOB
from projector_export.naming import STEP_PREFIX, parse_snapshot_name, parse_step_name, step_name

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


def follow_checkpoints(
    directory: str | os.PathLike,
    export: Callable[[int, Path], None],
    *,
    done: Callable[[int], bool] = lambda step: False,
    finished: Callable[[], bool] = lambda: False,
    until_step: int | None = None,
    poll_seconds: float = 5.0,
) -> list[int]:
    """Calls `export(step, path)` for every checkpoint of `directory` not `done`, in step order, as they appear.

    Returns the exported steps once a checkpoint at or after `until_step` was listed, or once `finished()`
    (e.g. the training's final model exists) was true before a pass over the folder found nothing left to do.
    A checkpoint deleted before it was read (the training keeps only its newest ones) is skipped.
    """
    exported: list[int] = []
    handled: set[int] = set()
    while True:
        was_finished = finished()  # asked before listing: a training writes its last checkpoint before that
        listed = checkpoint_steps(directory)
        for step, path in sorted(listed.items()):
            if step in handled or (until_step is not None and step > until_step):
                continue
            handled.add(step)
            if done(step):
                continue
            try:
                export(step, path)
            except FileNotFoundError:
                continue
            exported.append(step)
        if was_finished or (until_step is not None and any(step >= until_step for step in listed)):
            return exported
        time.sleep(poll_seconds)


def _print_now(line: str) -> None:
    print(line, flush=True)


def snapshot_checkpoints(
    logdir: str | os.PathLike,
    run: str,
    probe: Probe,
    *,
    finished: Callable[[], bool] = lambda: False,
    until_step: int | None = None,
    poll_seconds: float = 5.0,
    report: Callable[[str], None] = _print_now,
) -> list[int]:
    """Exports every checkpoint of `<logdir>/<run>/checkpoints/` not exported yet, as `follow_checkpoints` lists
    them: `probe` through each checkpoint's model, written into the run exactly as `EmbeddingSnapshots` would at
    that step (tensors padded like the checkpoint's name, metadata, class embedding, separability scalars).

    Steps the run holds completely (every tensor and scalar its `SnapshotPlan` names) are skipped. `report`
    receives a line when the sidecar starts watching and one per exported step. Returns the steps exported by this call.
    """
    import keras
    import tensorflow as tf

    from projector_export.snapshotter import LayerSnapshotter

    directory = checkpoints_dir(logdir, run)
    loaded: dict[Path, LayerSnapshotter] = {}  # the snapshotter of the last checkpoint loaded
    exported_before: set[int] | None = None
    writer = None

    def snapshotter(path: Path) -> LayerSnapshotter:
        if path not in loaded:
            loaded.clear()
            loaded[path] = LayerSnapshotter(keras.models.load_model(path, compile=False), probe, logdir, run=run)
        return loaded[path]

    def done(step: int) -> bool:
        nonlocal exported_before
        path = checkpoint_steps(directory).get(step)
        if exported_before is None and path is not None:  # what a snapshot of this model writes, found in the run
            plan = snapshotter(path).plan
            exported_before = exported_steps(logdir, run, plan.tensor_bases(), plan.scalar_tags())
            if exported_before:
                report(f"Already exported: steps {', '.join(map(str, sorted(exported_before)))}")
        return step in (exported_before or ())

    def export(step: int, path: Path) -> None:
        nonlocal writer
        if not path.exists():
            raise FileNotFoundError(path)
        chosen = snapshotter(path)
        writer = writer or tf.summary.create_file_writer(os.path.join(os.fspath(logdir), run))
        record = chosen.snapshot(step, digits=parse_step_name(path.stem)[1], writer=writer)
        values = "  ".join(f"{tensor} {value:.4f}" for tensor, value in record.separability.items())
        report(f"step {step}: exported {', '.join(chosen.plan.layers)} in {record.seconds:.1f} s; "
               f"separability {values}")

    report(f"Watching {directory} (every {poll_seconds:g} s)")
    try:
        return follow_checkpoints(directory, export, done=done, finished=finished, until_step=until_step,
                                  poll_seconds=poll_seconds)
    finally:
        if writer is not None:
            writer.close()
