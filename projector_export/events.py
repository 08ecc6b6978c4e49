"""Event files in the run directory: TensorBoard lists a run only if it holds one.

`tf.summary` opens its file by a name of its own (time, host, process) and follows a link there, so the exporter's
writers write into a new private staging folder, and the finished file is moved into the run directory under a name
that must be free.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
from collections.abc import Iterator

from projector_export.atomic import move_new
from projector_export.metadata import EVENT_FILE_GLOB
from projector_export.safe_paths import check_file, make_staging_folder


def has_event_file(run_dir: str) -> bool:
    """Whether the run holds an event file (a regular file of a trusted user: `safe_paths.check_file`)."""
    for entry in os.listdir(run_dir):
        if fnmatch.fnmatchcase(entry, EVENT_FILE_GLOB):
            with contextlib.suppress(PermissionError):  # another user's file does not count
                if check_file(os.path.join(run_dir, entry)):
                    return True
    return False


def write_text(run_dir: str, tag: str, text: str, step: int, writer=None) -> None:
    """Writes one text summary with `tf.summary`: through `writer` when given, else a new writer (a new event file)."""
    import tensorflow as tf

    if writer is not None:
        with writer.as_default():
            tf.summary.text(tag, text, step=step)
        writer.flush()
        return
    with _new_writer(run_dir) as own, own.as_default():
        tf.summary.text(tag, text, step=step)


def ensure_event_file(run_dir: str) -> bool:
    """Creates an (empty) event file with tf.summary unless the run already has one; returns whether it did."""
    if has_event_file(run_dir):
        return False
    with _new_writer(run_dir):
        pass
    return True


@contextlib.contextmanager
def _new_writer(run_dir: str) -> Iterator:
    """A `tf.summary` writer of a new event file, written in a staging folder and moved into `run_dir` when done."""
    import tensorflow as tf

    staging = make_staging_folder(run_dir)
    try:
        writer = tf.summary.create_file_writer(staging)
        yield writer
        writer.close()
        for entry in os.listdir(staging):
            move_new(os.path.join(staging, entry), os.path.join(run_dir, entry))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
