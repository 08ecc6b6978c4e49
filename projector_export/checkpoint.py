"""The run's tensors as one TensorFlow V2 checkpoint bundle, appended to incrementally.

TensorBoard's projector reads the bundle named by the run directory's `checkpoint` state
file (`tf.train.latest_checkpoint(run_dir)`) and re-reads its config whenever that path
changes. Every export writes a new generation `<run>/projector/embeddings-<gen>`:

* its new tensors are saved alone (`SaveV2`) into a staging folder, the previous bundle's
  files are hard-linked beside them, and `MergeV2Checkpoints` merges the two by renaming
  data shards (the links) and writing a new index: no earlier tensor is copied, so the cost
  does not grow with what earlier exports wrote, and the previous bundle stays intact;
* only when a name is exported again are the kept tensors read and rewritten (a replace);
* the state file flips to the new generation atomically once the bundle (and the config
  naming its tensors) is complete; then every other generation but the previous one is
  deleted (the previous one is kept for a reader that read the old state a moment ago; its
  shards are the same hard-linked files, so keeping it costs no space).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping

import numpy as np

from projector_export.atomic import TEMP_PREFIX, write_atomic
from projector_export.metadata import ASSETS_DIRNAME, BUNDLE_BASENAME, STATE_FILENAME

_STAGING_PREFIX = ".staging-"
_BUNDLE_RE = re.compile(re.escape(BUNDLE_BASENAME) + r"-(\d+)\.(index|data-\d+-of-\d+)$")


def current_prefix(run_dir: str) -> str | None:
    """Returns the absolute prefix of the run's current bundle, or None if there is none.

    Raises ValueError when the state file names a checkpoint that this exporter did not
    write: overwriting it would hide that checkpoint from its owner.
    """
    import tensorflow as tf

    state_path = os.path.join(run_dir, STATE_FILENAME)
    if not os.path.exists(state_path):
        return None
    state = tf.train.get_checkpoint_state(run_dir)
    if state is None or not state.model_checkpoint_path:
        return None
    prefix = os.path.abspath(state.model_checkpoint_path)
    expected_dir = os.path.abspath(os.path.join(run_dir, ASSETS_DIRNAME))
    if os.path.dirname(prefix) != expected_dir or _generation(os.path.basename(prefix) + ".index") is None:
        raise ValueError(
            f"The run directory {run_dir!r} already holds a TensorFlow checkpoint state file naming "
            f"{state.model_checkpoint_path!r}, which projector_export did not write; TensorBoard's PROJECTOR "
            "reads only one checkpoint per run. Export into another run (run=...) or move that checkpoint."
        )
    if not os.path.exists(prefix + ".index"):
        return None
    return prefix


def tensor_names(prefix: str | None) -> set[str]:
    """Names of the tensors stored in the bundle at `prefix` (empty set for None)."""
    if prefix is None:
        return set()
    import tensorflow as tf

    return set(tf.train.load_checkpoint(prefix).get_variable_to_shape_map())


def write_generation(run_dir: str, tensors: Mapping[str, np.ndarray], previous: str | None) -> tuple[str, set[str]]:
    """Writes a new bundle = `previous` bundle's tensors updated with `tensors`.

    Returns the new bundle's prefix and the names of all tensors it holds.

    Does not touch the state file: call `publish` once everything that refers to the new
    bundle is in place.
    """
    import tensorflow as tf

    assets_dir = os.path.join(run_dir, ASSETS_DIRNAME)
    os.makedirs(assets_dir, exist_ok=True)
    generation = _next_generation(assets_dir)
    prefix = os.path.abspath(os.path.join(assets_dir, f"{BUNDLE_BASENAME}-{generation:06d}"))
    existing = tensor_names(previous)
    replaced = existing & set(tensors)
    if previous is None:
        _save(prefix, tensors)
    elif replaced:
        # A name is exported again: rewrite the kept tensors with the new ones (the only
        # case whose cost grows with earlier exports).
        reader = tf.train.load_checkpoint(previous)
        kept = {name: reader.get_tensor(name) for name in sorted(existing - replaced)}
        _save(prefix, {**kept, **tensors})
    else:
        staging = tempfile.mkdtemp(dir=assets_dir, prefix=_STAGING_PREFIX)
        try:
            new_prefix = os.path.join(staging, "new")
            linked_prefix = os.path.join(staging, "previous")
            _save(new_prefix, tensors)
            _link_bundle(previous, linked_prefix)
            tf.raw_ops.MergeV2Checkpoints(
                checkpoint_prefixes=[linked_prefix, new_prefix],
                destination_prefix=prefix,
                delete_old_dirs=True,
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return prefix, existing | set(tensors)


def publish(run_dir: str, prefix: str, previous: str | None) -> None:
    """Points the run's state file at `prefix` (atomic), then deletes every other bundle but `previous`.

    Bundles of exports that died before publishing are deleted too.
    """
    # Relative to the run directory (TensorFlow resolves it so), so the log dir can be moved.
    relative = f"{ASSETS_DIRNAME}/{os.path.basename(prefix)}"
    # The text form of TensorFlow's CheckpointState proto; `relative` is our own ASCII name,
    # so it needs no escaping.
    state = f'model_checkpoint_path: "{relative}"\nall_model_checkpoint_paths: "{relative}"\n'
    write_atomic(os.path.join(run_dir, STATE_FILENAME), state)
    keep = {os.path.basename(p) for p in (prefix, previous) if p}
    _delete_other_generations(os.path.dirname(prefix), keep)
    _delete_leftovers(os.path.dirname(prefix))


def _save(prefix: str, tensors: Mapping[str, np.ndarray]) -> None:
    import tensorflow as tf

    names = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tensors[name] for name in names],
    )


def _link_bundle(source_prefix: str, target_prefix: str) -> None:
    """Hard-links (or, where links are unsupported, copies) every file of a bundle to a new prefix."""
    folder, base = os.path.split(source_prefix)
    for entry in os.listdir(folder):
        if entry.startswith(base + "."):
            source = os.path.join(folder, entry)
            target = target_prefix + entry[len(base):]
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)


def _generation(filename: str) -> int | None:
    match = _BUNDLE_RE.match(filename)
    return int(match.group(1)) if match else None


def _next_generation(assets_dir: str) -> int:
    generations = [g for g in map(_generation, os.listdir(assets_dir)) if g is not None]
    return max(generations, default=0) + 1


def _delete_leftovers(assets_dir: str) -> None:
    """Removes staging folders and temporary files that a killed export left behind."""
    for entry in os.listdir(assets_dir):
        path = os.path.join(assets_dir, entry)
        if entry.startswith(_STAGING_PREFIX):
            shutil.rmtree(path, ignore_errors=True)
        elif entry.startswith(TEMP_PREFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _delete_other_generations(assets_dir: str, keep: set[str]) -> None:
    for entry in os.listdir(assets_dir):
        if _generation(entry) is not None and entry.split(".", 1)[0] not in keep:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(assets_dir, entry))
