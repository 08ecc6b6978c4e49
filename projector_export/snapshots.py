"""Layer snapshots for the PROJECTOR: during training (a Keras callback) or of a saved model after the fact.

A snapshot runs the probe images once through the model, reads the chosen layers' outputs (flattened) and the
class scores, and exports them in one `export_embeddings` call: one tensor per layer named
``<layer>/step_<zero-padded step>`` (so the PROJECTOR's tensor menu reads in order), sharing the probe sprite and
the error-case metadata of that step. A second, ten-row tensor ``class_weights/step_...`` holds the last dense
layer's weights, one point per class. Every snapshot also measures how well each layer separates the classes
(`knn_separability`, in the space the PROJECTOR shows: wide layers as the exporter's PCA reduced them) and, during
training, logs it as the scalar ``separability/<layer>``.

All snapshots of a training go into ONE run (the training's run directory), and each is written once: the
exporter appends to the checkpoint and writes the sprite once (content-addressed), so the n-th snapshot costs
what the first did.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from . import error_metadata as _meta
from .defaults import DEFAULT_PROBE_SIZE, DEFAULT_SNAPSHOT_EVERY, MIN_PROBE_SIZE
from .layer_outputs import LayerOutputs, resolve_layers
from .separability import DEFAULT_K, knn_separability

CLASS_EMBEDDING_NAME = "class_weights"
SEPARABILITY_TAG = "separability"
STEP_PREFIX = "step_"
MIN_STEP_DIGITS = 6


def snapshot_name(layer: str, step: int | None, total_steps: int | None = None) -> str:
    """``conv2/step_004000``: the step zero-padded to the digits of `total_steps` (at least 6); no step: ``conv2``."""
    if step is None:
        return layer
    width = max(MIN_STEP_DIGITS, len(str(total_steps or 0)))
    return f"{layer}/{STEP_PREFIX}{step:0{width}d}"


def take_probe(images: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `size` images and labels (the fixed probe set), refusing a probe larger than the data."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"Probe size must be an int, received {type(size).__name__} {size!r}.")
    if len(images) != len(labels):
        raise ValueError(f"Expected one label per probe image, received {len(images)} images, {len(labels)} labels.")
    if not MIN_PROBE_SIZE <= size <= len(images):
        raise ValueError(
            f"Probe size {size} is not available: the data has {len(images)} examples and a probe needs at least "
            f"{MIN_PROBE_SIZE}. Choose a probe size between {MIN_PROBE_SIZE} and {len(images)} "
            f"(e.g. --probe-size {min(DEFAULT_PROBE_SIZE, len(images))})."
        )
    return images[:size], labels[:size]


@dataclasses.dataclass(frozen=True)
class SnapshotRecord:
    """What one snapshot did: its step (None after the fact), wall seconds, and separability per layer."""

    step: int | None
    seconds: float
    separability: dict[str, float]


class LayerSnapshotter:
    """Exports the chosen layers of `model` on a fixed probe set into one run, one call per snapshot.

    Args:
        model: a functional Keras model (or Sequential started with `keras.Input`) whose output is class scores.
        images: the probe images, model input and sprite at once (uint8, or float in [0, 1]).
        labels: their integer labels.
        logdir: the TensorBoard log directory.
        run: the run inside `logdir` the snapshots go to.
        layers: layer names; None: every convolution and dense layer (`default_layers`).
        class_names: a name per class (default "0", "1", ...).

    Raises:
        ValueError: an unknown layer (the message lists the model's layers), or labels not matching the images.
    """

    def __init__(
        self,
        model: keras.Model,
        images: np.ndarray,
        labels: np.ndarray,
        logdir: str | os.PathLike,
        *,
        run: str | None,
        layers: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
    ):
        self.layers = resolve_layers(model, layers)
        self.images = np.asarray(images)
        self.labels = np.asarray(labels).astype(np.int64)
        if self.labels.shape != (len(self.images),) or len(self.images) < MIN_PROBE_SIZE:
            raise ValueError(
                f"Expected at least {MIN_PROBE_SIZE} probe images and one label per image: received "
                f"{len(self.images)} images, labels of shape {self.labels.shape}."
            )
        num_classes = int(model.outputs[0].shape[-1])
        self.class_names = [str(i) for i in range(num_classes)] if class_names is None else list(class_names)
        if len(self.class_names) != num_classes:
            raise ValueError(
                f"Model {model.name!r} outputs {num_classes} class scores but {len(self.class_names)} class names "
                f"were given; pass one name per output unit."
            )
        self.logdir, self.run = os.fspath(logdir), run
        self.model = model
        self._outputs = LayerOutputs(model, self.layers)
        self._from_logits = not _meta.outputs_are_probabilities(model)
        self._class_images = _meta.class_mean_images(self.images, self.labels, num_classes)
        self.records: list[SnapshotRecord] = []

    def snapshot(
        self, step: int | None = None, total_steps: int | None = None, writer: tf.summary.SummaryWriter | None = None
    ) -> SnapshotRecord:
        """Exports one snapshot (tensor names carry `step`, zero-padded for `total_steps`) and returns its record.

        `writer`: the run's open `tf.summary` writer, which then also carries the exporter's summaries (no event
        file per export).
        """
        from .exporter import export_embeddings  # the exporter's public entry point

        start = time.perf_counter()
        features, scores = self._outputs(self.images)
        metadata = _meta.error_metadata(scores, self.labels, self.class_names, from_logits=self._from_logits)
        names = {layer: snapshot_name(layer, step, total_steps) for layer in self.layers}
        result = export_embeddings(
            self.logdir,
            {names[layer]: features[layer] for layer in self.layers},
            run=self.run,
            images=self.images,
            metadata=metadata,
            summary_writer=writer,
            step=step,
        )
        del features  # conv outputs of a 5,000-image probe are hundreds of MB
        # Separability of exactly what the PROJECTOR shows: wide layers as the exporter reduced them (PCA).
        separability = {layer: knn_separability(result.arrays[names[layer]], self.labels) for layer in self.layers}
        weights = _meta.class_embedding(self.model, len(self.class_names))
        if weights is not None:
            export_embeddings(
                self.logdir,
                {snapshot_name(CLASS_EMBEDDING_NAME, step, total_steps): weights},
                run=self.run,
                images=self._class_images,
                metadata=_meta.class_metadata(self.class_names),
                summary_writer=writer,
                step=step,
            )
        record = SnapshotRecord(step, time.perf_counter() - start, separability)
        self.records.append(record)
        return record

    def table(self) -> str:
        """The separability of every snapshot so far: one row per step, one column per layer."""
        width = max(8, *(len(layer) + 2 for layer in self.layers))
        head = f"Separability: leave-one-out {DEFAULT_K}-NN accuracy of {len(self.labels)} probe images per layer"
        lines = [head, "step".ljust(10) + "".join(layer.rjust(width) for layer in self.layers) + "seconds".rjust(10)]
        for record in self.records:
            step = "-" if record.step is None else str(record.step)
            values = "".join(f"{record.separability[layer]:.4f}".rjust(width) for layer in self.layers)
            lines.append(step.ljust(10) + values + f"{record.seconds:.1f}".rjust(10))
        return "\n".join(lines)


class EmbeddingSnapshots(keras.callbacks.Callback):
    """Snapshots chosen layers into the PROJECTOR before training, every `every` steps, and after the last step.

    Each snapshot exports ``<layer>/step_<step>`` tensors with error-case metadata and the probe sprite, the class
    embedding, and the scalars ``separability/<layer>`` (leave-one-out k-NN accuracy) into the run directory;
    at the end a separability table is printed. Layer names are checked as soon as the model is known (the
    constructor's `model`, else `model.fit`'s `set_model`, before any step), so a typo fails in seconds.

    Args:
        images: probe images (model input and sprite), e.g. the first 5,000 test images (`take_probe`).
        labels: their integer labels.
        logdir: the TensorBoard log directory.
        run: the training's run directory name inside `logdir` (None: `logdir` itself is the run).
        every: training steps between snapshots (0: only before and after training).
        layers: layer names; None: every convolution and dense layer.
        class_names: a name per class (default "0", "1", ...).
        total_steps: the training's length, for the zero-padding of step numbers (default: from `fit`'s epochs
            and steps per epoch).
        writer: the run's `tf.summary` writer, to share one event file with the training's scalars (default: one
            of its own in the run directory, created at the first snapshot).
        model: optionally the model, to check the layer names right away.
        verbose: print the separability table at the end of training.

    Example:
        probe = take_probe(data.test_images, data.test_labels, 5000)
        model.fit(x, y, callbacks=[EmbeddingSnapshots(*probe, "logs", run="lenet-1", every=1000)])
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        logdir: str | os.PathLike,
        *,
        run: str | None = None,
        every: int = DEFAULT_SNAPSHOT_EVERY,
        layers: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        total_steps: int | None = None,
        writer: tf.summary.SummaryWriter | None = None,
        model: keras.Model | None = None,
        verbose: bool = True,
    ):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 0:
            raise ValueError(f"Invalid value for `every`: received {every!r}; expected an int >= 0 (0: only "
                             f"before and after training).")
        self._args = dict(images=images, labels=labels, logdir=logdir, run=run, layers=layers, class_names=class_names)
        self.every = int(every)
        self.verbose = verbose
        self.snapshotter: LayerSnapshotter | None = None
        self._writer, self._own_writer = writer, writer is None
        self._step = self._epoch_start = 0
        self._last_snapshot: int | None = None
        self._total_steps = total_steps
        if model is not None:
            self.set_model(model)

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        if self.snapshotter is None or self.snapshotter.model is not model:
            self.snapshotter = LayerSnapshotter(model, **self._args)

    def on_train_begin(self, logs=None) -> None:
        self._step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        epochs, steps = (self.params or {}).get("epochs"), (self.params or {}).get("steps")
        if self._total_steps is None and epochs and steps:
            self._total_steps = self._step + epochs * steps
        self._take()

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._epoch_start = self._step

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._step = self._epoch_start + batch + 1  # `batch` is the last step run, also with steps_per_execution
        if self.every and self._step // self.every > self._last_snapshot // self.every:
            self._take()

    def on_train_end(self, logs=None) -> None:
        if self._step != self._last_snapshot:
            self._take()
        if self._own_writer and self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.verbose:
            print(self.snapshotter.table())

    def _take(self) -> None:
        if self._writer is None:  # created lazily, as Keras' TensorBoard callback does
            run_dir = os.path.join(self.snapshotter.logdir, self.snapshotter.run or "")
            self._writer = tf.summary.create_file_writer(run_dir)
        record = self.snapshotter.snapshot(self._step, self._total_steps, self._writer)
        self._last_snapshot = self._step
        with self._writer.as_default(step=self._step):
            for layer, value in record.separability.items():
                tf.summary.scalar(f"{SEPARABILITY_TAG}/{layer}", value)
        self._writer.flush()


def export_model_layers(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    logdir: str | os.PathLike,
    *,
    run: str | None = None,
    layers: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
) -> LayerSnapshotter:
    """Exports a trained model's layers on `images` once (tensors named after the layers), for seed 000's
    "restore the saved model and look at every layer". Returns the snapshotter (its `table()`, `records`)."""
    snapshotter = LayerSnapshotter(
        model, images, labels, logdir, run=run, layers=layers, class_names=class_names
    )
    snapshotter.snapshot()
    return snapshotter
