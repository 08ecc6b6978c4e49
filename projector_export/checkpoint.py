"""The run's tensors as TensorFlow V2 checkpoint bundles, one generation per export.

Every export writes a new generation `<run>/<ASSETS_DIRNAME>/embeddings-<gen>`; the run's config
names the one TensorBoard serves (see `config.py`), and the `checkpoint` state file names it too
(relative to the run directory), because TensorBoard's projector re-reads a run's config only when
the path that file names changes, and pairs it with the run's portable config after a move.

* The new tensors are saved alone (`SaveV2`) into a staging folder, the previous bundle's files
  are hard-linked beside them, and `MergeV2Checkpoints` merges the two by renaming data shards (the
  links) and writing a new index: no earlier tensor is copied, and the previous bundle stays intact.
  TensorFlow writes only into that new private folder (it follows links); the new bundle's files are
  then moved to names that must be free.
* Each such merge adds one data shard, and a reader keeps a file open per shard it reads; once the
  previous bundle has `MAX_SHARDS` shards, the new one is rewritten into a single shard instead, so
  the shard count (and TensorBoard's open files) stays bounded. The same rewrite replaces a tensor
  exported again.
* The new and the previous generation are kept, and older ones for `GRACE_SECONDS` after they were
  superseded: a reader that read an older config a moment ago still finds its bundle (the shards
  are shared hard links, so keeping one costs an index file).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Mapping

import numpy as np
from google.protobuf import text_encoding, text_format
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

from projector_export import config as config_lib
from projector_export import kill_points
from projector_export.atomic import TEMP_PREFIX, move_new, stage
from projector_export.metadata import ASSETS_DIRNAME, BUNDLE_BASENAME, STATE_FILENAME
from projector_export.safe_paths import STAGING_PREFIX, is_own, make_staging_folder, read_file

# The previous bundle's shard count from which a new generation is rewritten into one shard.
MAX_SHARDS = 32
# How long a bundle stays after it was superseded (for a reader that read its config just before),
# and at most how many such bundles stay.
GRACE_SECONDS = 30.0
MAX_GRACE_GENERATIONS = 16
# What a `SaveV2` or `MergeV2Checkpoints` killed half-way leaves: `<file>.tempstate<random>` (in a staging
# folder now; in the assets folder from older versions).
_TF_TEMP_MARKER = ".tempstate"
_BUNDLE_RE = re.compile(re.escape(BUNDLE_BASENAME) + r"-(\d+)\.(index|data-\d+-of-\d+)$")


def current_prefix(run_dir: str, named: str) -> str | None:
    """The absolute prefix of the bundle the run's config names (`named`), or None if there is none.

    The bundle is looked up in this run's assets folder by its name, so a log dir that was moved
    still finds its bundle. Raises ValueError when `named` is not a bundle this exporter writes.
    """
    if not named:
        return None
    base = os.path.basename(named)
    if _generation(base + ".index") is None:
        raise ValueError(
            f"The run directory {run_dir!r} holds a projector config naming the checkpoint {named!r}, which "
            "projector_export did not write. Export into another run (run=...) or move that config."
        )
    prefix = os.path.abspath(os.path.join(run_dir, ASSETS_DIRNAME, base))
    return prefix if os.path.exists(prefix + ".index") else None


def check_state_file(run_dir: str) -> None:
    """Raises ValueError when the run's `checkpoint` state file names a checkpoint this exporter did not write:
    overwriting it would hide that checkpoint from its owner."""
    named = _named_checkpoint(read_file(os.path.join(run_dir, STATE_FILENAME)))
    if not named:
        return
    ours = os.path.normpath(os.path.dirname(named)).endswith(os.path.normpath(ASSETS_DIRNAME))
    if not ours or _generation(os.path.basename(named) + ".index") is None:
        raise ValueError(
            f"The run directory {run_dir!r} already holds a TensorFlow checkpoint state file naming "
            f"{named!r}, which projector_export did not write; TensorBoard's PROJECTOR "
            "reads only one checkpoint per run. Export into another run (run=...) or move that checkpoint."
        )


def _named_checkpoint(state: bytes | None) -> str:
    """The checkpoint a state file's text names ("" when none, or when it is not a state file: as TensorFlow's
    `get_checkpoint_state` reads it)."""
    if not state:
        return ""
    from tensorflow.python.training.checkpoint_state_pb2 import CheckpointState

    parsed = CheckpointState()
    try:
        text_format.Merge(state.decode("utf-8", errors="replace"), parsed)
    except text_format.ParseError:
        return ""
    return parsed.model_checkpoint_path


def tensor_names(prefix: str | None) -> set[str]:
    """Names of the tensors stored in the bundle at `prefix` (empty set for None)."""
    if prefix is None:
        return set()
    import tensorflow as tf

    return set(tf.train.load_checkpoint(prefix).get_variable_to_shape_map())


def reader(prefix: str):
    """TensorFlow's reader of the bundle at `prefix` (`get_tensor(name)`, `get_variable_to_shape_map()`)."""
    import tensorflow as tf

    return tf.train.load_checkpoint(prefix)


def shard_count(prefix: str) -> int:
    """Number of data shards of the bundle at `prefix`."""
    folder, base = os.path.split(prefix)
    return sum(1 for entry in os.listdir(folder) if entry.startswith(base + ".data-"))


def write_generation(run_dir: str, tensors: Mapping[str, np.ndarray], previous: str | None) -> tuple[str, set[str]]:
    """Writes a new bundle = `previous` bundle's tensors updated with `tensors`.

    TensorFlow writes it into a new private staging folder, whence its files are moved to their names
    (which must be free). Returns the new bundle's prefix and the names of all tensors it holds. Nothing
    refers to the new bundle yet: `publish` and the config do that.
    """
    import tensorflow as tf

    assets_dir = os.path.join(run_dir, ASSETS_DIRNAME)
    generation = _next_generation(assets_dir)
    prefix = os.path.abspath(os.path.join(assets_dir, f"{BUNDLE_BASENAME}-{generation:06d}"))
    existing = tensor_names(previous)
    replaced = existing & set(tensors)
    staging = make_staging_folder(assets_dir)
    try:
        staged = os.path.join(staging, BUNDLE_BASENAME)
        if previous is None:
            _save(staged, tensors)
        elif replaced or shard_count(previous) >= MAX_SHARDS:
            # Rewrite everything into one shard: a name exported again, or too many shards.
            reader = tf.train.load_checkpoint(previous)
            kept = {name: reader.get_tensor(name) for name in sorted(existing - replaced)}
            _save(staged, {**kept, **tensors})
        else:
            new_prefix = os.path.join(staging, "new")
            linked_prefix = os.path.join(staging, "previous")
            _save(new_prefix, tensors)
            kill_points.reached("bundle-staged")
            _link_bundle(previous, linked_prefix)
            tf.raw_ops.MergeV2Checkpoints(
                checkpoint_prefixes=[linked_prefix, new_prefix],
                destination_prefix=staged,
                delete_old_dirs=False,
            )
        _move_bundle(staged, prefix)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    kill_points.reached("bundle-written")
    return prefix, existing | set(tensors)


def link_generation(previous: str) -> str:
    """Writes a new generation holding exactly the tensors of `previous`: its files hard-linked under the next
    generation's name (through a private staging folder, to names that must be free), no tensor rewritten. For a
    change of the config alone (bookmarks added), which a running TensorBoard notices only when the state file
    names another bundle. Returns the new prefix, not yet referred to.
    """
    assets_dir = os.path.dirname(previous)
    prefix = os.path.abspath(os.path.join(assets_dir, f"{BUNDLE_BASENAME}-{_next_generation(assets_dir):06d}"))
    staging = make_staging_folder(assets_dir)
    try:
        staged = os.path.join(staging, BUNDLE_BASENAME)
        _link_bundle(previous, staged)
        _move_bundle(staged, prefix)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    kill_points.reached("bundle-written")
    return prefix


def publish(run_dir: str, config: ProjectorConfig, prefix: str, previous: str | None) -> str:
    """Makes `prefix` the run's bundle and `config` (naming it) the run's config; returns the config's path.

    Everything is written first, to new temporary files: the config, its portable copy and the state
    file (`config-staged`); a full disk fails there, and they are removed. Then renames only: the config
    into place (the commit: it alone says which bundle, metadata and sprites belong together), the state
    file (its change is what makes a running TensorBoard re-read the config), the portable copy. Then
    every bundle but `prefix` and `previous` is deleted, with every other leftover of a killed export.
    """
    path = os.path.abspath(config_lib.config_path(run_dir))
    staged: list[str] = []
    try:
        staged += config_lib.stage_config(run_dir, config)
        # The text form of TensorFlow's CheckpointState proto, naming the bundle relative to the run
        # directory (TensorFlow joins a relative path with the directory it read the file from, so the
        # path survives a move of the log dir, and the portable config pairs with it).
        quoted = text_encoding.CEscape(os.path.relpath(prefix, run_dir), as_utf8=True)
        staged.append(stage(run_dir, STATE_FILENAME,
                            f'model_checkpoint_path: "{quoted}"\nall_model_checkpoint_paths: "{quoted}"\n'))
        kill_points.reached("config-staged")
        os.replace(staged[0], path)
    except BaseException:
        for name in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        raise
    config_lib.staged_was_published(run_dir)
    kill_points.reached("config-written")
    os.replace(staged[2], os.path.join(run_dir, STATE_FILENAME))
    kill_points.reached("state-flipped")
    # The portable config, last: a TensorBoard reads it only before the plugin-assets config, and
    # keeps it only when that one names a bundle that is missing, so any change of the portable
    # config or the state file it pairs with comes after the commit of a config that replaces it.
    os.replace(staged[1], config_lib.fallback_path(run_dir))
    delete_leftovers(run_dir, previous, prefix)
    kill_points.reached("generations-deleted")
    return path


def delete_leftovers(run_dir: str, *keep: str | None) -> None:
    """Deletes every bundle but those of `keep` (and those still in their grace period), staging folders,
    temporary files and TensorFlow temp-state files: what a killed or failed export left."""
    assets_dir = os.path.join(run_dir, ASSETS_DIRNAME)
    _delete_other_generations(assets_dir, {os.path.basename(p) for p in keep if p})
    _delete_leftovers(assets_dir)
    _delete_leftovers(run_dir)


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
        if entry.startswith(base + ".") and _TF_TEMP_MARKER not in entry:
            source = os.path.join(folder, entry)
            target = target_prefix + entry[len(base):]
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)


def _generation(filename: str) -> int | None:
    match = _BUNDLE_RE.match(filename)
    return int(match.group(1)) if match else None


def _move_bundle(source_prefix: str, target_prefix: str) -> None:
    """Moves every file of a bundle to a new prefix (names that must be free), the index last."""
    folder, base = os.path.split(source_prefix)
    files = sorted((e for e in os.listdir(folder) if e.startswith(base + ".")), key=lambda e: e.endswith(".index"))
    for entry in files:
        move_new(os.path.join(folder, entry), target_prefix + entry[len(base):])


def _next_generation(assets_dir: str) -> int:
    generations = [g for g in map(_generation, os.listdir(assets_dir)) if g is not None]
    return max(generations, default=0) + 1


def _delete_leftovers(folder: str) -> None:
    """Removes this user's staging folders, temporary files and TensorFlow temp-state files in `folder`."""
    for entry in os.listdir(folder):
        path = os.path.join(folder, entry)
        if entry.startswith(STAGING_PREFIX) and is_own(path, "folder"):
            shutil.rmtree(path, ignore_errors=True)
        elif (entry.startswith(TEMP_PREFIX) or _TF_TEMP_MARKER in entry) and is_own(path, "file"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _delete_other_generations(assets_dir: str, keep: set[str]) -> None:
    """Deletes the bundles a reader can no longer hold: all but `keep` (the new and the previous one),
    except those superseded less than `GRACE_SECONDS` ago (at most `MAX_GRACE_GENERATIONS` of them).

    A bundle newer than the previous one was never named by a config (its export died): it goes at
    once. An older one was the run's until its successor was written; a TensorBoard that read its
    config just before may take a while to open it (re-reading a large config takes seconds), so it
    stays for the grace period.
    """
    bundles: dict[int, float] = {}
    for entry in os.listdir(assets_dir):
        generation = _generation(entry)
        if generation is not None and entry.endswith(".index"):
            with contextlib.suppress(FileNotFoundError):
                bundles[generation] = os.stat(os.path.join(assets_dir, entry)).st_mtime
    kept = {g for g in bundles if f"{BUNDLE_BASENAME}-{g:06d}" in keep}
    oldest_kept = min(kept, default=0)
    now = time.time()
    ordered = sorted(bundles)
    graced = [g for g, successor in zip(ordered, ordered[1:], strict=False)
              if g < oldest_kept and now - bundles[successor] < GRACE_SECONDS]
    kept |= set(graced[-MAX_GRACE_GENERATIONS:])
    for entry in os.listdir(assets_dir):
        generation = _generation(entry)
        if generation is not None and generation not in kept:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(assets_dir, entry))
