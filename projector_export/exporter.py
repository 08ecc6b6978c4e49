"""`export_embeddings`: named N×D arrays, images and metadata into a TensorBoard run's PROJECTOR."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shlex
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from tensorboard.plugins.projector.projector_config_pb2 import EmbeddingInfo, ProjectorConfig

from projector_export import checkpoint, events, kill_points, safe_paths
from projector_export import config as config_lib
from projector_export.assets import ASSET_NAME_RE, Assets, write_assets
from projector_export.atomic import write_once
from projector_export.errors import no_space_error
from projector_export.inputs import ExportedTensor, Inputs, check_inputs
from projector_export.locking import LOCK_FILENAME, run_lock
from projector_export.metadata import (
    ASSETS_DIRNAME,
    EVENT_FILE_GLOB,
    PROJECTOR_MAX_POINTS,
    REDUCTION_TAG,
    STATE_FILENAME,
)
from projector_export.reduction import DEFAULT_PCA_COMPONENTS
from projector_export.validation import check_logdir, check_logdir_path, check_run_name

if TYPE_CHECKING:
    import tensorflow as tf

T = TypeVar("T")


@dataclass(frozen=True)
class ExportResult:
    """What `export_embeddings` wrote.

    Attributes:
      logdir: the log dir to open with `tensorboard --logdir`.
      run_dir: the run directory (the log dir itself when `run` was None).
      config_path: the run's projector_config.pbtxt.
      checkpoint_prefix: the checkpoint bundle now holding all of the run's tensors.
      tensors: the tensors of this call, in the order given.
      sprite_path: the sprite PNG (None without images).
      metadata_path: the metadata TSV (None without metadata).
      files_written: files this call created (content-addressed files that already existed are not rewritten).
      rows_shown: how many of the N rows TensorBoard's PROJECTOR loads (it loads at most
        `PROJECTOR_MAX_POINTS` = 100,000, the first ones; a larger export also warns).
      arrays: tensor name -> the float32 array written for it (after PCA, if any), in `tensors`' order;
        callers that measure what the PROJECTOR shows use these instead of reading the checkpoint back.
    """

    logdir: str
    run_dir: str
    config_path: str
    checkpoint_prefix: str
    tensors: tuple[ExportedTensor, ...]
    sprite_path: str | None
    metadata_path: str | None
    files_written: tuple[str, ...]
    rows_shown: int
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def tensorboard_command(self) -> str:
        return tensorboard_command(self.logdir)


def tensorboard_command(logdir: str | os.PathLike) -> str:
    """The shell command that opens `logdir` in TensorBoard (absolute, quoted for a POSIX shell).

    Absolute because TensorBoard's projector spells a run's directory from `--logdir` as given and
    compares the state file's (relative) bundle path joined with it against the config's absolute
    one: with a relative `--logdir` they differ, and it re-reads every config on every request.
    """
    return f"tensorboard --logdir {shlex.quote(os.path.abspath(os.fspath(logdir)))}"


def export_embeddings(
    logdir: str | os.PathLike,
    embeddings: Mapping[str, np.ndarray],
    *,
    run: str | None = None,
    images: np.ndarray | None = None,
    metadata: Mapping[str, object] | object | None = None,
    reduce: str | None = "auto",
    pca_components: int = DEFAULT_PCA_COMPONENTS,
    dark_on_white: bool = False,
    summary_writer: tf.summary.SummaryWriter | None = None,
    step: int | None = None,
) -> ExportResult:
    """Exports named embeddings of the same N examples into a run for TensorBoard's PROJECTOR.

    Writes (inside `<logdir>/<run>/`): the tensors into a TensorFlow checkpoint bundle, a
    `projector_config.pbtxt` (TensorBoard's `ProjectorConfig` proto) naming that bundle, a sprite
    PNG and a metadata TSV (content-addressed, written once however many tensors share them), all
    in the projector's plugin-assets folder `plugins/org_tensorflow_tensorboard_projector/`; the
    `checkpoint` state file and a portable copy of the config at the top of the run, both naming
    files relative to the run, which TensorBoard reads when the log dir was moved or copied; and
    an event file if the run has none, so TensorBoard lists the run.
    Each call only adds its own tensors (the cost does not grow with earlier exports into the run).
    Exporting a name again replaces it if the shape written stays the same; another shape is
    refused (a running TensorBoard keeps serving the tensor it has read): use a new name or run.
    Everything is checked before anything is written; every file is written atomically and the
    config, renamed into place last, names the exact bundle, metadata and sprites of the export,
    so a TensorBoard reading meanwhile, or after the process is killed at any point, serves the
    old or the new export, never a mix (docs/file-format.md).

    Args:
      logdir: the log dir (created if missing).
      embeddings: tensor name -> N×D array of real numbers (any int/float dtype, written as
        float32). Names may use '/' (`conv2/step_004000`); no '..', empty parts, `& # + % ? :`.
        A value may also be a `PCAResult` (reduced already, e.g. by `StreamingPCA`): its
        coordinates are written as they are and its share of variance is reported.
      run: the run directory inside `logdir` (one folder name); None exports into `logdir`
        itself (TensorBoard's run "."; its projector also offers a log dir's checkpoint to
        every run below that has none of its own, so prefer a named run when there are others).
      images: N×H×W or N×H×W×C (C = 1 or 3) uint8, or float in [0, 1]; image i shows example i.
      metadata: columns `{name: N values}` (several are written with a header row), or one
        sequence of N values (written without a header, shown as "label").
      reduce: "auto" keeps the top `pca_components` principal components of tensors wider than
        `PCA_THRESHOLD_DIM` (256); "pca" does so whenever D > pca_components; "none" (or None)
        writes tensors as they are.
      pca_components: number of principal components kept when reducing.
      dark_on_white: draw the sprite inverted (MNIST digits as dark strokes on white).
      summary_writer: the run's open `tf.summary` writer, if the caller has one (a training
        run's): the PCA summary goes through it. Without one, an export that reduces a tensor
        writes its summary into a new event file (each `tf.summary` writer makes its own).
      step: the step of the summaries this export writes (a training's step); None: the export's
        generation number in the run (1, 2, 3, ...).

    Returns:
      An `ExportResult` (paths, shapes written, explained variance of each reduced tensor).

    Raises:
      TypeError, ValueError: for invalid input (or a name exported again with another shape), before
        anything is written.
      PermissionError: a symbolic link or another user's file or folder where the export would write
        (docs/file-format.md, "Shared log dirs"), before anything is written.
      NoSpaceError: the disk is full (whichever step ran out of space); earlier exports are intact and
        this export's files are removed. Any other failure, or an interruption, removes them too.

    Example:
      >>> export_embeddings("logs", {"dense/step_000300": act}, run="tutorial",
      ...                   images=x_test[:1000], metadata={"label": y_test[:1000]})
    """
    logdir = check_logdir(logdir)
    check_logdir_path(logdir)
    run_dir = logdir if run is None else os.path.join(logdir, check_run_name(run))
    inputs = check_inputs(embeddings, images=images, metadata=metadata, reduce=reduce, pca_components=pca_components)
    check_run_dir(logdir, run_dir)
    if inputs.n_rows > PROJECTOR_MAX_POINTS:
        warnings.warn(_more_rows_than_shown(inputs.n_rows), stacklevel=2)
    return _export_checked(logdir, run_dir, inputs, dark_on_white=dark_on_white, summary_writer=summary_writer,
                           step=step)


def _export_checked(logdir: str, run_dir: str, inputs: Inputs, *, dark_on_white: bool, summary_writer,
                    step: int | None) -> ExportResult:
    """Writes checked `inputs` into `run_dir` under the run's lock (`export_embeddings`)."""
    def write(old_config: ProjectorConfig, previous: str | None, written: list[str]) -> ExportResult:
        return _write(logdir, run_dir, inputs, old_config, previous, written, dark_on_white=dark_on_white,
                      summary_writer=summary_writer, step=step)

    return _locked_write(logdir, run_dir, write,
                         check=lambda config: _check_shapes_unchanged(run_dir, config, inputs.written_shapes()))


def _locked_write(logdir: str, run_dir: str, write: Callable[[ProjectorConfig, str | None, list[str]], T], *,
                  check: Callable[[ProjectorConfig], None] = lambda config: None) -> T:
    """Runs `check(old_config)`, then `write(old_config, previous bundle, written files)`, under the run's lock (an
    export or a publication into the same run, by another process or thread, waits until this one is done): a
    failed write's files are removed at once, and a full disk is one `NoSpaceError` whichever step ran out of
    space."""
    try:
        _make_run_dirs(logdir, run_dir)
        with run_lock(os.path.join(run_dir, ASSETS_DIRNAME)):
            old_config = config_lib.read_config(run_dir)
            previous = checkpoint.current_prefix(run_dir, old_config.model_checkpoint_path)
            check(old_config)
            written: list[str] = []
            try:
                return write(old_config, previous, written)
            except BaseException:
                _discard_failed_export(run_dir, old_config, previous, written)
                raise
    except Exception as error:  # OSError or TensorFlow's errors: the same full disk gives either, by step
        no_space = no_space_error(error, run_dir)
        if no_space is None:
            raise
        raise no_space from error


def _write(logdir: str, run_dir: str, inputs: Inputs, old_config: ProjectorConfig, previous: str | None,
           written: list[str], *, dark_on_white: bool, summary_writer, step: int | None) -> ExportResult:
    """Writes the export (checked, under the run's lock) and publishes it: the steps of docs/file-format.md.
    Lists the files it creates in `written` as it goes."""
    assets_dir = os.path.join(run_dir, ASSETS_DIRNAME)
    # The sprite's PNG encoding and the PCA both release the GIL: run them side by side. The
    # content-addressed sprite and metadata are not referred to until the config is written.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending_assets = pool.submit(write_assets, assets_dir, "", inputs, dark_on_white=dark_on_white)
        to_write, exported = inputs.reduced()
        assets = pending_assets.result()
    written += assets.written
    kill_points.reached("assets-written")

    prefix, bundle_names = checkpoint.write_generation(run_dir, to_write, previous)
    written.append(prefix + ".index")

    reduced = [t for t in exported if t.explained_variance_ratio is not None]
    if reduced:
        written += events.write_text(run_dir, REDUCTION_TAG, _reduction_markdown(reduced),
                                     step=int(prefix.rsplit("-", 1)[1]) if step is None else step,
                                     writer=summary_writer)
    else:
        written += events.ensure_event_file(run_dir)
    kill_points.reached("events-written")

    new_config = config_lib.upsert(old_config, [_entry(t, assets) for t in exported], prefix)
    config_lib.keep_only(new_config, bundle_names)
    # The config naming the new bundle is renamed into place first (the commit: it alone decides
    # which bundle, metadata and sprites a reader pairs), then the state file flips, which is what
    # makes a running TensorBoard re-read the config.
    config_path = checkpoint.publish(run_dir, new_config, prefix, previous)
    written += [config_path, os.path.abspath(config_lib.fallback_path(run_dir))]
    _delete_unreferenced_assets(assets_dir, old_config, new_config)
    return ExportResult(
        logdir=logdir,
        run_dir=run_dir,
        config_path=config_path,
        checkpoint_prefix=prefix,
        tensors=tuple(exported),
        sprite_path=None if assets.sprite_path is None else os.path.join(assets_dir, assets.sprite_path),
        metadata_path=None if assets.metadata_path is None else os.path.join(assets_dir, assets.metadata_path),
        files_written=tuple(written),
        rows_shown=min(inputs.n_rows, PROJECTOR_MAX_POINTS),
        arrays=to_write,
    )


@dataclass(frozen=True)
class PublishedBookmarks:
    """What `publish_bookmarks` did.

    Attributes:
      checkpoint_prefix: the new generation's bundle (None when nothing was published).
      published: tensor name -> its bookmarks file (absolute path).
      skipped: tensor name -> why its bookmarks were not published (the tensor is gone, or was exported again
        since its layouts were computed).
    """

    checkpoint_prefix: str | None
    published: Mapping[str, str]
    skipped: Mapping[str, str]


def publish_bookmarks(
    logdir: str | os.PathLike,
    bookmarks: Mapping[str, bytes],
    *,
    run: str | None = None,
    sources: Mapping[str, str] | None = None,
) -> PublishedBookmarks:
    """Gives tensors of a run their bookmarks files (`bookmarks.encode_states`), as a new checkpoint generation.

    Each file is written content-addressed into the plugin-assets folder and named by the tensor's config entry
    (`bookmarks_path`); the new generation hard-links the previous bundle's files (no tensor is rewritten), because
    a running TensorBoard re-reads a run's config only when the state file names another bundle. The export's own
    steps, under the run's lock: a reader sees the old config or the new one, also after a kill; a failed
    publication's files are removed. A tensor exported again later gets a config entry without bookmarks.

    Args:
      logdir, run: the run, as for `export_embeddings`.
      bookmarks: tensor name -> the bookmarks file's bytes.
      sources: tensor name -> `bookmarks.tensor_digest` of the rows the layouts were computed from; a tensor
        whose rows differ now (exported again meanwhile) is skipped.
    """
    logdir = check_logdir(logdir)
    check_logdir_path(logdir)
    run_dir = logdir if run is None else os.path.join(logdir, check_run_name(run))
    check_run_dir(logdir, run_dir)
    return _locked_write(logdir, run_dir, lambda old_config, previous, written: _write_bookmarks(
        run_dir, bookmarks, sources or {}, old_config, previous, written))


def _write_bookmarks(run_dir: str, bookmarks: Mapping[str, bytes], sources: Mapping[str, str],
                     old_config: ProjectorConfig, previous: str | None, written: list[str]) -> PublishedBookmarks:
    """`publish_bookmarks` under the run's lock: the files, a generation of links, the config naming the files."""
    from projector_export.bookmarks import bookmarks_filename, tensor_digest

    assets_dir = os.path.join(run_dir, ASSETS_DIRNAME)
    held = {entry.tensor_name for entry in old_config.embeddings} if previous else set()
    skipped = {name: "not in the run" for name in bookmarks if name not in held}
    checked = [name for name in sources if name in bookmarks and name not in skipped]
    reader = checkpoint.reader(previous) if checked else None
    for name in checked:
        if tensor_digest(reader.get_tensor(name)) != sources[name]:
            skipped[name] = "exported again since its layouts were computed"
    files = {name: bookmarks_filename(data) for name, data in bookmarks.items() if name not in skipped}
    if not files:
        return PublishedBookmarks(None, {}, skipped)
    for name, filename in files.items():
        if write_once(os.path.join(assets_dir, filename), lambda data=bookmarks[name]: data):
            written.append(os.path.join(assets_dir, filename))
    kill_points.reached("assets-written")
    prefix = checkpoint.link_generation(previous)
    written.append(prefix + ".index")
    new_config = ProjectorConfig()
    new_config.CopyFrom(old_config)
    new_config.model_checkpoint_path = prefix
    for entry in new_config.embeddings:
        if entry.tensor_name in files:
            entry.bookmarks_path = files[entry.tensor_name]
    checkpoint.publish(run_dir, new_config, prefix, previous)
    _delete_unreferenced_assets(assets_dir, old_config, new_config)
    return PublishedBookmarks(prefix, {name: os.path.join(assets_dir, f) for name, f in files.items()}, skipped)


def _discard_failed_export(run_dir: str, old_config: ProjectorConfig, previous: str | None, written: list[str]) -> None:
    """Removes at once what a failed (or interrupted) export wrote, unless its config was committed: its bundle,
    event files, staging folders, temporary files, and sprites and metadata no config refers to (what the next
    export would remove, and its event files, which it cannot tell). The export's own error is the one raised:
    a failure here is left to the next export."""
    with contextlib.suppress(Exception):
        current = config_lib.read_config(run_dir)
        named = checkpoint.current_prefix(run_dir, current.model_checkpoint_path)
        if named == previous:  # not committed
            for path in written:
                if fnmatch.fnmatchcase(os.path.basename(path), EVENT_FILE_GLOB):
                    os.unlink(path)
        checkpoint.delete_leftovers(run_dir, previous, named)
        _delete_unreferenced_assets(os.path.join(run_dir, ASSETS_DIRNAME), old_config, current)


def _more_rows_than_shown(n_rows: int) -> str:
    return (f"{n_rows:,} rows: TensorBoard's PROJECTOR loads only the first {PROJECTOR_MAX_POINTS:,} (it says "
            f"\"Showing the first {PROJECTOR_MAX_POINTS:,} of {n_rows:,} data points\"); export a sample of at most "
            f"{PROJECTOR_MAX_POINTS:,} rows to see all of them.")


def check_run_dir(logdir: str, run_dir: str) -> None:
    """Raises, before anything is written, if an export cannot go into `run_dir` of `logdir`: the log dir, the run
    directory or the files an export reads or replaces there are not what an export may write in (`safe_paths`: no
    links, nothing of another user; a run directory or plugin-assets folder that is a file), or the run's config
    or checkpoint state cannot be updated."""
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise ValueError(f"Invalid run directory {run_dir!r}: it is a file, expected a directory. Choose another run.")
    assets_dir = os.path.join(run_dir, ASSETS_DIRNAME)
    if os.path.exists(assets_dir) and not os.path.isdir(assets_dir):
        raise ValueError(f"Invalid run directory {run_dir!r}: {assets_dir!r} is a file, expected a directory.")
    if os.path.lexists(logdir):
        safe_paths.check_logdir_folder(logdir)
    for folder in _run_folders(logdir, run_dir):
        if not os.path.lexists(folder):
            break
        safe_paths.check_folder(folder)
    for path in (os.path.join(run_dir, STATE_FILENAME), config_lib.fallback_path(run_dir),
                 config_lib.config_path(run_dir), os.path.join(assets_dir, LOCK_FILENAME)):
        safe_paths.check_file(path)
    checkpoint.current_prefix(run_dir, config_lib.read_config(run_dir).model_checkpoint_path)
    checkpoint.check_state_file(run_dir)


def _run_folders(logdir: str, run_dir: str) -> list[str]:
    """The folders an export writes in below the log dir, outermost first: the run directory, the plugin folders."""
    folders = [] if run_dir == logdir else [run_dir]
    for part in ASSETS_DIRNAME.split(os.sep):
        folders.append(os.path.join(folders[-1] if folders else run_dir, part))
    return folders


def _make_run_dirs(logdir: str, run_dir: str) -> None:
    """Creates (or enters) the log dir, the run directory and the plugin-assets folder, each checked by
    `safe_paths`."""
    safe_paths.make_logdir(logdir)
    for folder in _run_folders(logdir, run_dir):
        safe_paths.make_folder(folder)


def _check_shapes_unchanged(run_dir: str, config: ProjectorConfig, shapes: Mapping[str, tuple[int, int]]) -> None:
    """Refuses to export a name the run already holds with another shape.

    TensorBoard's projector caches the tensor it served last by (run, name) and never drops it when
    the config changes, so a running TensorBoard would keep serving the old rows beside the new
    config's shape and metadata.
    """
    held = {entry.tensor_name: tuple(entry.tensor_shape) for entry in config.embeddings}
    for name, shape in shapes.items():
        old = held.get(name)
        if old is not None and old != shape:
            raise ValueError(
                f"Cannot export {name!r} as {shape[0]}×{shape[1]} into {run_dir!r}: the run already holds {name!r} "
                f"as {old[0]}×{old[1]}, and a running TensorBoard keeps serving the tensor it has read (it caches "
                "tensors by run and name). Export it under a new name or into a new run."
            )


def _entry(tensor: ExportedTensor, assets: Assets) -> EmbeddingInfo:
    entry = EmbeddingInfo(tensor_name=tensor.name, tensor_shape=list(tensor.shape))
    if assets.metadata_path:
        entry.metadata_path = assets.metadata_path
    if assets.sprite_path:
        entry.sprite.image_path = assets.sprite_path
        entry.sprite.single_image_dim.extend(assets.sprite_cell_size)
    return entry


def _reduction_markdown(reduced: list[ExportedTensor]) -> str:
    rows = [f"| {t.name} | {t.input_shape[1]} | {t.shape[1]} | {t.explained_variance_ratio:.1%} |" for t in reduced]
    return "\n".join(["| tensor | input D | PCA components | explained variance |", "|---|---|---|---|", *rows])


def _delete_unreferenced_assets(assets_dir: str, old: ProjectorConfig, new: ProjectorConfig) -> None:
    """Deletes the sprites, metadata and bookmarks that neither config refers to.

    Files only the old config refers to stay one export longer, for a reader that read the old
    config a moment ago; files of an export killed before its config was written are deleted.
    """
    referenced = config_lib.referenced_files(old) | config_lib.referenced_files(new)
    for entry in os.listdir(assets_dir):
        if ASSET_NAME_RE.match(entry) and entry not in referenced:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(assets_dir, entry))
