"""Layer snapshots for the PROJECTOR: during training (the Keras callback `EmbeddingSnapshots`) or of a trained model
once (`export_model_layers`).

Both take the probe's arguments (checked by `probe.check_probe`), bind them to the model (`snapshot_plan`: what a
snapshot writes) and export through a `snapshotter.LayerSnapshotter`. All snapshots of a training go into ONE run
(the training's run directory), and each is written once: the exporter appends to the checkpoint and writes the
sprite once (content-addressed), so the n-th snapshot costs what the first did. By default a layout worker
(`layout_worker.LayoutFeed`, a process at the lowest CPU priority) lays out each snapshot as it is written, so that
every tensor opens with aligned PCA and UMAP bookmarks; the training never waits for it.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from .defaults import DEFAULT_SNAPSHOT_EVERY
from .layout_worker import LayoutFeed
from .layouts import DEFAULT_METHOD
from .naming import step_digits
from .periodic import PeriodicCallback
from .prediction import SharedScores, check_shared_scores
from .probe import as_probe
from .run_layouts import LayoutStatus, check_method
from .snapshotter import LayerSnapshotter, SnapshotRecord
from .validation import check_int


class EmbeddingSnapshots(PeriodicCallback):
    """Snapshots a model's layers into TensorBoard's PROJECTOR before training, every `every` steps, and after.

    Each snapshot exports ``<layer>/step_<step>`` tensors (the probe's sprite and metadata beside them) into the
    run directory; with labels also the error-case columns, the class embedding and the scalars
    ``separability/<layer>`` (leave-one-out k-NN accuracy), printed as a table at the end. Everything is checked
    when the callback meets the model (the constructor's `model`, else `model.fit`'s `set_model`, before any
    step), so a typo or a model it cannot read fails in seconds. The step is the optimizer's (`schedule`).
    See docs/callback.md for the model and input kinds.

    Args:
        inputs: the probe exactly as the model takes it, N rows (see `check_probe`); None with
            `embedding_layers` alone; or a `Probe` made by `check_probe` (then no labels or probe options here).
        labels: N integer class ids, or None (then no error-case columns, class embedding or separability).
        logdir: the TensorBoard log directory.
        run: the training's run directory name inside `logdir` (None: `logdir` itself is the run).
        every: optimizer steps between snapshots (besides the ones before the first and after the last step);
            0: off, no snapshot at all (the one meaning of 0 in `schedule.is_due`). A period longer than the
            training gives the first and last snapshots only.
        total_steps: the training's length, for the zero-padding of step numbers (default: from `fit`'s epochs
            and steps per epoch).
        writer: the run's `tf.summary` writer, to share one event file with the training's scalars (default: one
            of its own in the run directory, created at the first snapshot).
        model: optionally the model, to check everything right away.
        verbose: print the separability table at the end of training (and which layouts are still being computed).
        shared_scores: a `SharedScores` that receives the probe's class scores at every snapshot, for an
            `ImageLogger` on the same step (which then does not predict the probe's rows again).
        layouts: the layouts computed for each snapshot of the probe, as TensorBoard bookmarks: "umap" (an aligned
            PCA and UMAP per tensor, the steps of a layer continuing each other, and `<layer>/trajectory` at the
            end), "tsne" (openTSNE instead of UMAP), or None (none; `projector-layouts` computes them later). A
            worker process at the lowest CPU priority computes them as snapshots are written (docs/layouts.md);
            after training, `layout_status` says where they stand.
        **probe_options: `layers`, `thumbnails`, `metadata`, `class_names`, `embedding_layers`, `features`,
            `class_layer`: the probe's options, described at `check_probe`.

    Example:
        model.fit(x, y, callbacks=[EmbeddingSnapshots(x_test[:2000], y_test[:2000], "logs", run="mlp", every=500)])
    """

    def __init__(
        self,
        inputs: object,
        labels: np.ndarray | None,
        logdir: str | os.PathLike,
        *,
        run: str | None = None,
        every: int = DEFAULT_SNAPSHOT_EVERY,
        total_steps: int | None = None,
        writer: tf.summary.SummaryWriter | None = None,
        model: keras.Model | None = None,
        verbose: bool = True,
        shared_scores: SharedScores | None = None,
        layouts: str | None = DEFAULT_METHOD,
        **probe_options,
    ):
        super().__init__(every, logdir=logdir, run=run, writer=writer)
        self.total_steps = None if total_steps is None else check_int("total_steps", total_steps, minimum=0)
        self.probe = as_probe(inputs, labels, probe_options)
        self.verbose = verbose
        self.shared_scores = check_shared_scores(shared_scores)
        self.snapshotter: LayerSnapshotter | None = None
        if layouts is not None:
            check_method(layouts)
        self.layouts = layouts
        self.layout_status: LayoutStatus | None = None
        """Where the layouts stood when the last training ended (None: layouts off, or no snapshot of the probe)."""
        self._feed: LayoutFeed | None = None
        if model is not None:
            self.set_model(model)

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        if self.snapshotter is None or self.snapshotter.model is not model:
            self.snapshotter = LayerSnapshotter(model, self.probe, self.logdir, run=self.run)

    def on_begin(self, step: int) -> None:
        epochs, steps = (self.params or {}).get("epochs"), (self.params or {}).get("steps")
        if self.total_steps is None and epochs and steps:
            self.total_steps = step + epochs * steps

    def on_step(self, step: int, logs: dict | None) -> SnapshotRecord:
        """One snapshot at `step`; returns its record (the tensors it exported)."""
        record = self.snapshotter.snapshot(step, digits=step_digits(self.total_steps), writer=self.writer)
        if self.shared_scores is not None and self.snapshotter.last_scores is not None:
            self.shared_scores.put(step, self.probe.inputs, self.snapshotter.last_scores)
        if self.layouts is not None and self.probe.inputs is not None:
            if self._feed is None:
                self._feed = LayoutFeed(self.logdir, self.run, method=self.layouts)
            self._feed.snapshot_written()
        return record

    def on_finish(self, step: int) -> None:
        if self.verbose and self.probe.labels is not None:
            print(self.snapshotter.table())
        if self._feed is not None:  # the worker finishes on its own; a later `fit` starts another one
            feed, self._feed = self._feed, None
            self.layout_status = feed.training_ended()
            if self.verbose and self.layout_status.pending:
                print(self.layout_status.message())


def export_model_layers(
    model: keras.Model,
    inputs: object,
    labels: np.ndarray | None,
    logdir: str | os.PathLike,
    *,
    run: str | None = None,
    **probe_options,
) -> LayerSnapshotter:
    """Exports a trained model's layers on `inputs` once (tensors named after the layers), with the probe's options
    of `EmbeddingSnapshots` (`check_probe`; `inputs` may be a `Probe`). Returns the snapshotter (its `plan`,
    `table()`, `records`)."""
    snapshotter = LayerSnapshotter(model, as_probe(inputs, labels, probe_options), logdir, run=run)
    snapshotter.snapshot()
    return snapshotter
