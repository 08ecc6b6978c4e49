"""Event files in the run directory: TensorBoard lists a run only if it holds one."""

from __future__ import annotations

import glob
import os

from projector_export.metadata import EVENT_FILE_GLOB


def has_event_file(run_dir: str) -> bool:
    return bool(glob.glob(os.path.join(glob.escape(run_dir), EVENT_FILE_GLOB)))


def write_text(run_dir: str, tag: str, text: str, step: int, writer=None) -> None:
    """Writes one text summary with `tf.summary`: through `writer` when given, else a new writer (a new event file)."""
    import tensorflow as tf

    own = writer is None
    if own:
        writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        tf.summary.text(tag, text, step=step)
    if own:
        writer.close()
    else:
        writer.flush()


def ensure_event_file(run_dir: str) -> bool:
    """Creates an (empty) event file with tf.summary unless the run already has one; returns whether it did."""
    if has_event_file(run_dir):
        return False
    import tensorflow as tf

    writer = tf.summary.create_file_writer(run_dir)
    writer.flush()
    writer.close()
    return True
