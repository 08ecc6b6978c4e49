"""The run's `projector_config.pbtxt`, read and written through TensorBoard's own proto.

It lives in the run's plugin-assets folder (`ASSETS_DIRNAME`) beside the sprites and metadata it
names, and names the exact checkpoint bundle of its tensors (`model_checkpoint_path`, absolute:
TensorBoard resolves a relative one against its own working directory). So the config alone says
which tensors, metadata and sprites belong together, and renaming a new config into place switches
all of them at once.

A second, portable copy sits at the top of the run (`fallback_path`): the same entries with their
metadata, sprite and bookmarks paths relative to the run directory, and no checkpoint path, so TensorBoard
takes the bundle from the `checkpoint` state file, which names it by a path relative to the run
directory. TensorBoard reads it first and replaces it by the plugin-assets config, unless that one
names a bundle that is not there: a log dir that was moved or copied, whose absolute paths are stale.
Its first line (`FALLBACK_MARKER`) tells it from a config someone else wrote.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable

from google.protobuf import text_format
from tensorboard.plugins.projector.projector_config_pb2 import EmbeddingInfo, ProjectorConfig

from projector_export.atomic import stage
from projector_export.metadata import ASSETS_DIRNAME, CONFIG_FILENAME
from projector_export.safe_paths import check_file, open_file, read_file

# The configs this process wrote last, by path: the file's identity when written, the config, and the
# text of each entry (as the config and as its portable copy print it). A config of a thousand entries
# takes a quarter of a second to parse as text and a tenth to print: with these, an export into a run
# this process exported into before parses nothing and prints only its own entries, so its cost does
# not grow with the run's entries.
_WRITTEN: dict[str, tuple[tuple[int, int, int], ProjectorConfig, dict[bytes, tuple[str, str]]]] = {}
# The first line of the portable copy (a text-format comment: TensorBoard's parser skips it).
FALLBACK_MARKER = (f"# Written by projector_export: the portable copy of {ASSETS_DIRNAME}/{CONFIG_FILENAME}, "
                   "read by TensorBoard when that one names a checkpoint that is not there (a moved log dir).")


def config_path(run_dir: str) -> str:
    return os.path.join(run_dir, ASSETS_DIRNAME, CONFIG_FILENAME)


def fallback_path(run_dir: str) -> str:
    """The portable copy of the run's config, at the top of the run directory."""
    return os.path.join(run_dir, CONFIG_FILENAME)


def read_config(run_dir: str) -> ProjectorConfig:
    """Parses the run's config, or returns an empty one when there is none.

    Raises ValueError when the file is not a valid ProjectorConfig, or when the run directory holds
    a config at its top that is not this package's portable copy (TensorBoard would serve that one
    whenever the plugin-assets config is unusable, and the export would replace it).
    """
    top = fallback_path(run_dir)
    if check_file(top) and not _is_portable_copy(top):
        _parse(top)
        raise ValueError(
            f"Cannot export into {run_dir!r}: it holds a {CONFIG_FILENAME} that projector_export did not write "
            f"(it writes {ASSETS_DIRNAME}/{CONFIG_FILENAME}). Export into another run (run=...) or move that file."
        )
    path = config_path(run_dir)
    if not check_file(path):
        return ProjectorConfig()
    known = _WRITTEN.get(os.path.abspath(path))
    if known is not None and known[0] == _identity(path):
        config = ProjectorConfig()
        config.CopyFrom(known[1])
        return config
    return _parse(path)


def _is_portable_copy(path: str) -> bool:
    """Whether `path` starts with `FALLBACK_MARKER` (read without parsing: the export rewrites the copy)."""
    with open(open_file(path), encoding="utf-8", errors="replace") as f:
        return f.readline(len(FALLBACK_MARKER) + 1).rstrip("\n") == FALLBACK_MARKER


def _identity(path: str) -> tuple[int, int, int]:
    stat = os.lstat(path)
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _parse(path: str, invalid: str = ("Cannot update {path!r}: it is not a valid ProjectorConfig ({error}). "
                                       "Fix or delete it, or export into another run.")) -> ProjectorConfig:
    """The config at `path`; ValueError with the message `invalid` (formatted with `path` and `error`) when the
    file is not a ProjectorConfig."""
    config = ProjectorConfig()
    text = read_file(path).decode("utf-8")
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        raise ValueError(invalid.format(path=path, error=e)) from None
    return config


def upsert(config: ProjectorConfig, entries: Iterable[EmbeddingInfo], checkpoint_prefix: str) -> ProjectorConfig:
    """A copy of `config` naming `checkpoint_prefix`, where each entry replaces the one of its tensor name
    (or is appended)."""
    updated = ProjectorConfig()
    updated.CopyFrom(config)
    updated.model_checkpoint_path = checkpoint_prefix
    for entry in entries:
        for i, existing in enumerate(updated.embeddings):
            if existing.tensor_name == entry.tensor_name:
                updated.embeddings[i].CopyFrom(entry)
                break
        else:
            updated.embeddings.add().CopyFrom(entry)
    return updated


def keep_only(config: ProjectorConfig, tensor_names: set[str]) -> None:
    """Removes (in place) the entries whose tensor is not in `tensor_names`."""
    kept = [entry for entry in config.embeddings if entry.tensor_name in tensor_names]
    if len(kept) == len(config.embeddings):
        return
    del config.embeddings[:]
    config.embeddings.extend(kept)


def stage_config(run_dir: str, config: ProjectorConfig) -> tuple[str, str]:
    """Writes `config` and its portable copy to new temporary files beside `config_path` and `fallback_path`
    (neither is the run's yet); returns their paths, for `checkpoint.publish` to rename into place."""
    path = os.path.abspath(config_path(run_dir))
    known = _WRITTEN.get(path)
    texts = {} if known is None else known[2]
    text, portable_text = _to_texts(config, texts)
    staged = stage(os.path.dirname(path), CONFIG_FILENAME, text)
    try:
        staged_portable = stage(run_dir, CONFIG_FILENAME, f"{FALLBACK_MARKER}\n{portable_text}")
    except BaseException:
        os.unlink(staged)
        raise
    _WRITTEN[path] = ((0, 0, 0), config, texts)
    return staged, staged_portable


def staged_was_published(run_dir: str) -> None:
    """Records the identity of the config `stage_config` wrote once it is the run's (renamed into place)."""
    path = os.path.abspath(config_path(run_dir))
    _, config, texts = _WRITTEN[path]
    _WRITTEN[path] = (_identity(path), config, texts)


def _portable_entry(entry: EmbeddingInfo) -> EmbeddingInfo:
    """`entry` as the portable copy lists it: metadata, bookmarks and sprite paths relative to the run directory."""
    copy = EmbeddingInfo()
    copy.CopyFrom(entry)
    if copy.metadata_path:
        copy.metadata_path = os.path.join(ASSETS_DIRNAME, copy.metadata_path)
    if copy.bookmarks_path:
        copy.bookmarks_path = os.path.join(ASSETS_DIRNAME, copy.bookmarks_path)
    if copy.sprite.image_path:
        copy.sprite.image_path = os.path.join(ASSETS_DIRNAME, copy.sprite.image_path)
    return copy


def _entry_text(entry: EmbeddingInfo) -> str:
    body = "".join(f"  {line}\n" for line in text_format.MessageToString(entry).splitlines())
    return f"embeddings {{\n{body}}}\n"


def _to_texts(config: ProjectorConfig, texts: dict[bytes, tuple[str, str]]) -> tuple[str, str]:
    """`text_format.MessageToString` of `config` and of its portable copy (no checkpoint path, paths
    relative to the run directory), reusing the text of entries printed before (keyed by their bytes)."""
    header = ProjectorConfig()
    header.CopyFrom(config)
    del header.embeddings[:]
    parts = [text_format.MessageToString(header)]
    header.ClearField("model_checkpoint_path")
    portable_parts = [text_format.MessageToString(header)]
    used = {}
    for entry in config.embeddings:
        key = entry.SerializeToString(deterministic=True)
        pair = texts.get(key)
        if pair is None:
            pair = (_entry_text(entry), _entry_text(_portable_entry(entry)))
        used[key] = pair
        parts.append(pair[0])
        portable_parts.append(pair[1])
    texts.clear()
    texts.update(used)
    return "".join(parts), "".join(portable_parts)


def referenced_files(config: ProjectorConfig) -> set[str]:
    """Paths (relative to the config's folder) of the metadata, bookmarks and sprite files the config refers to."""
    paths = {p for e in config.embeddings for p in (e.metadata_path, e.bookmarks_path, e.sprite.image_path)}
    return {os.path.normpath(path) for path in paths if path}


def served_config(run_dir: str) -> tuple[ProjectorConfig, str] | None:
    """The config TensorBoard's projector serves for the run, and the folder its relative paths start from.

    The plugin-assets config, unless it names a bundle that is not there (a moved or copied log dir: its
    absolute path is stale), then the portable copy at the run's top, as TensorBoard's projector picks them
    (docs/file-format.md). None when the run has neither. Raises ValueError for a file that is not a
    ProjectorConfig.
    """
    for path in (config_path(run_dir), fallback_path(run_dir)):
        if not os.path.isfile(path):
            continue
        config = _parse(path, "{path!r} is not a valid ProjectorConfig ({error}).")
        bundle = config.model_checkpoint_path
        if bundle and not glob.glob(glob.escape(bundle) + "*"):
            continue
        return config, os.path.dirname(os.path.abspath(path))
    return None
