"""Event files in the run directory: TensorBoard lists a run only if it holds one.

`tf.summary` opens its file by a name of its own (time, host, process, a counter) and follows a link there. The
exporter's short-lived writers write into a new private staging folder, and the finished file is moved into the run
directory under a name that must be free. A training's writers stay open while it runs and cannot be moved: they
are opened by `summary_writer`, whose file name ends with a random token, so nobody can plant a link at it before
it exists (and once it exists, only its owner can replace it in a checked folder).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import secrets
import shutil
from collections.abc import Iterator

from projector_export.atomic import move_new
from projector_export.metadata import EVENT_FILE_GLOB
from projector_export.safe_paths import check_file, check_folder, make_staging_folder, refuse

# TensorFlow's own suffix of `tf.summary` event files (`create_file_writer`'s default `filename_suffix`).
_V2_SUFFIX = ".v2"


def summary_writer(run_dir: str | os.PathLike):
    """A `tf.summary` writer of a new event file in `run_dir` (an existing folder, checked by `safe_paths`) whose
    name nobody can predict; what a training's callbacks and the sidecar write their scalars and pictures with."""
    import tensorflow as tf

    run_dir = os.fspath(run_dir)
    check_folder(run_dir)
    return tf.summary.create_file_writer(run_dir, filename_suffix=f".{secrets.token_hex(8)}{_V2_SUFFIX}")


def has_event_file(run_dir: str) -> bool:
    """Whether the run holds an event file (a regular file of a trusted user: `safe_paths.check_file`)."""
    for entry in os.listdir(run_dir):
        if fnmatch.fnmatchcase(entry, EVENT_FILE_GLOB):
            with contextlib.suppress(PermissionError):  # another user's file does not count
                if check_file(os.path.join(run_dir, entry)):
                    return True
    return False


def write_text(run_dir: str, tag: str, text: str, step: int, writer=None) -> list[str]:
    """Writes one text summary with `tf.summary`: through `writer` when given, else a new writer (a new event file).

    Returns the event files it created.
    """
    import tensorflow as tf

    if writer is not None:
        with writer.as_default():
            tf.summary.text(tag, text, step=step)
        writer.flush()
        return []
    with _new_writer(run_dir) as (own, created), own.as_default():
        tf.summary.text(tag, text, step=step)
    return created


def ensure_event_file(run_dir: str) -> list[str]:
    """Creates an (empty) event file with tf.summary unless the run already has one; returns the files it created."""
    if has_event_file(run_dir):
        return []
    with _new_writer(run_dir) as (_, created):
        pass
    return created


@contextlib.contextmanager
def _new_writer(run_dir: str) -> Iterator[tuple[object, list[str]]]:
    """A `tf.summary` writer of a new event file, written in a staging folder and moved into `run_dir` when done
    (then listed in the list yielded with it)."""
    import tensorflow as tf

    staging = make_staging_folder(run_dir)
    created: list[str] = []
    try:
        writer = tf.summary.create_file_writer(staging)
        yield writer, created
        writer.close()
        for entry in os.listdir(staging):
            target = os.path.join(run_dir, entry)
            try:
                move_new(os.path.join(staging, entry), target)
            except FileExistsError:
                raise refuse(target, "something is already at the name TensorFlow gave the event file being "
                                     "written; another user may have planted it to redirect what is written") from None
            created.append(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
