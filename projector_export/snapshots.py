"""Layer snapshots for the PROJECTOR: during training (a Keras callback) or of a saved model after the fact.

A snapshot runs the probe inputs once through the model, reads the chosen layers' outputs (flattened) and the
class scores, and exports them in one `export_embeddings` call: one tensor per layer named
``<layer>/step_<zero-padded step>`` (so the PROJECTOR's tensor menu reads in order), sharing the probe's sprite
(its thumbnails) and metadata (the error-case columns when there are labels, and the user's columns). With
labels, a second tensor ``class_weights/step_...`` holds the last dense layer's weights, one point per class,
and every snapshot measures how well each layer separates the classes (`knn_separability`, in the space the
PROJECTOR shows: wide layers as the exporter's PCA reduced them), logged during training as the scalar
``separability/<layer>``. Embedding layers named in `embedding_layers` are exported as their weight matrices,
one point per vocabulary entry, with the vocabulary as metadata.

All snapshots of a training go into ONE run (the training's run directory), and each is written once: the
exporter appends to the checkpoint and writes the sprite once (content-addressed), so the n-th snapshot costs
what the first did.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from . import error_metadata as _meta
from .defaults import DEFAULT_PROBE_SIZE, DEFAULT_SNAPSHOT_EVERY, MIN_PROBE_SIZE
from .metadata_tsv import check_metadata
from .model_layers import (
    LayerOutputs,
    SharedScores,
    has_layer_graph,
    named_layers,
    num_rows,
    predict_scores,
    resolve_layer,
    resolve_layers,
    scores_are_probabilities,
)
from .naming import CLASS_EMBEDDING_NAME, separability_tag, snapshot_name
from .reduction import DEFAULT_PCA_COMPONENTS, PCAResult
from .schedule import is_due, optimizer_step
from .separability import DEFAULT_K, knn_separability
from .sprite import check_images
from .validation import check_int

Features = Callable[[keras.Model, object], Mapping[str, np.ndarray]]
"""`features(model, inputs) -> {name: N×... array}`: the tensors of a model whose layers cannot be read by name."""


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


def default_thumbnails(inputs: object) -> np.ndarray | None:
    """The inputs themselves when they are an image batch the sprite can show (N×H×W or N×H×W×C with C = 1 or 3,
    uint8 or float in [0, 1]); None otherwise (token ids, tabular rows, several inputs: no sprite)."""
    if not isinstance(inputs, np.ndarray) or inputs.ndim not in (3, 4):
        return None
    if inputs.ndim == 4 and inputs.shape[3] not in (1, 3):
        return None
    if inputs.dtype == np.uint8:
        return inputs
    if not np.issubdtype(inputs.dtype, np.floating):
        return None
    if inputs.size and 0.0 <= float(inputs.min()) and float(inputs.max()) <= 1.0:
        return inputs
    warnings.warn(
        f"The inputs look like images ({inputs.shape}) but lie outside [0, 1], so they make no sprite; pass "
        f"`thumbnails=` the same images as uint8 or floats in [0, 1] to see them in the PROJECTOR.",
        stacklevel=3,
    )
    return None


@dataclasses.dataclass(frozen=True)
class SnapshotRecord:
    """What one snapshot did: its step (None after the fact), wall seconds, and separability per tensor."""

    step: int | None
    seconds: float
    separability: dict[str, float]


class LayerSnapshotter:
    """Exports the chosen layers of `model` on fixed probe inputs into one run, one call per snapshot.

    Takes the arguments of `EmbeddingSnapshots` (see there) and checks all of them before any work.

    Raises:
        ValueError, TypeError: a layer name that is missing or ambiguous (the message lists the valid names), a
            subclassed model without `features`, inputs, labels, thumbnails or metadata of different lengths, ...
    """

    def __init__(
        self,
        model: keras.Model,
        inputs: object,
        labels: np.ndarray | None,
        logdir: str | os.PathLike,
        *,
        run: str | None,
        layers: Sequence[str] | None = None,
        thumbnails: np.ndarray | None = None,
        metadata: Mapping[str, Sequence] | None = None,
        class_names: Sequence[str] | None = None,
        embedding_layers: Mapping[str, Sequence[str] | None] | None = None,
        features: Features | None = None,
    ):
        self.model = model
        self.logdir, self.run = os.fspath(logdir), run
        self.inputs = inputs
        self.features = features
        self.embedding_layers = self._check_embedding_layers(model, embedding_layers)
        self.records: list[SnapshotRecord] = []
        if inputs is None:
            given = dict(labels=labels, layers=layers, thumbnails=thumbnails, metadata=metadata, features=features)
            extra = [name for name, value in given.items() if value is not None]
            if not self.embedding_layers or extra:
                raise ValueError(
                    "Invalid inputs: received inputs=None, which exports only `embedding_layers` (no probe), but "
                    + (f"also {', '.join(extra)}; pass the probe inputs for those." if extra else
                       "`embedding_layers` is empty. Pass the probe inputs, or name Embedding layers.")
                )
            self.layers: list[str] = []
            self.n = 0
            self.labels = self.thumbnails = self.user_columns = self.class_names = self.last_scores = None
            return
        if features is not None and not callable(features):
            raise TypeError(f"Invalid value for argument `features`: expected a callable (model, inputs) -> "
                            f"{{name: N×... array}}, received {type(features).__name__}.")
        if not has_layer_graph(model):
            if features is None:
                raise ValueError(
                    f"Model {model.name!r} is a subclassed model ({type(model).__name__}): its layers' outputs cannot "
                    f"be read by name. Pass `features=lambda model, inputs: {{'name': array}}` returning the N×... "
                    f"tensors to show (e.g. from the model's own sub-layers), or build it as a functional model."
                )
            if layers is not None:
                raise ValueError(f"Model {model.name!r} is a subclassed model: `layers` cannot be read by name. "
                                 f"Return those tensors from `features` instead.")
        self.layers = [] if features is not None and layers is None else resolve_layers(model, layers)
        clash = sorted(set(self.layers) & set(self.embedding_layers))
        if clash:
            raise ValueError(f"Layer(s) {', '.join(clash)} are in both `layers` and `embedding_layers`, which would "
                             f"write the same tensor names; keep each in one of them.")
        self.n = num_rows(inputs)
        self.labels = self._check_labels(labels, self.n)
        self.thumbnails = default_thumbnails(inputs) if thumbnails is None else check_images(thumbnails, self.n)
        self.user_columns = None if metadata is None else check_metadata(metadata, self.n)
        if self.user_columns and self.labels is not None:
            taken = sorted(set(self.user_columns) & set(_meta.COLUMNS))
            if taken:
                raise ValueError(f"Metadata column(s) {', '.join(taken)} are written by the snapshots themselves; "
                                 f"rename yours (e.g. 'my_{taken[0]}').")
        self.class_names = None if class_names is None else [str(name) for name in class_names]
        if self.class_names is not None and self.labels is None:
            raise ValueError("`class_names` name the classes of `labels`, but labels=None; pass labels or drop them.")
        if self.class_names is not None and self.labels.max() >= len(self.class_names):
            raise ValueError(f"Labels go up to {self.labels.max()} but {len(self.class_names)} class names were "
                             f"given; pass one name per class.")
        if self.labels is not None and has_layer_graph(model):
            self._check_class_count(model)
        self._outputs: LayerOutputs | None = None
        self._class_images = None
        self.last_scores: np.ndarray | None = None
        """The model's first output on the probe at the last snapshot (N×C class scores), None when it is not."""

    def _check_class_count(self, model: keras.Model) -> None:
        """Labels and class names against the model's class scores, when its output shape is known already."""
        try:
            shape = tuple(model.outputs[0].shape)
        except (AttributeError, ValueError):  # a Sequential not built yet: checked at the first snapshot
            return
        if len(shape) == 2 and shape[1] is not None and shape[1] >= 2:
            self._class_scores(np.zeros((0, shape[1]), np.float32))

    @staticmethod
    def _check_labels(labels: object, n: int) -> np.ndarray | None:
        if labels is None:
            return None
        array = np.asarray(labels)
        if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer) or n < MIN_PROBE_SIZE:
            raise ValueError(
                f"Invalid labels: expected {n} integer class ids (one per probe row, at least {MIN_PROBE_SIZE} rows "
                f"for the k-NN separability), received {array.dtype} labels of shape {array.shape}. "
                f"For one-hot labels pass labels.argmax(axis=1); for no labels pass labels=None."
            )
        if n and array.min() < 0:
            raise ValueError(f"Invalid labels: class ids must be >= 0, received {array.min()}.")
        return array.astype(np.int64)

    @staticmethod
    def _check_embedding_layers(model: keras.Model, embedding_layers: object) -> dict[str, list[str]]:
        """{full layer name: vocabulary rows as strings} of each named `keras.layers.Embedding`."""
        if embedding_layers is None:
            return {}
        if not isinstance(embedding_layers, Mapping):
            raise TypeError(f"Invalid value for argument `embedding_layers`: expected a mapping {{layer name: "
                            f"vocabulary or None}}, received {type(embedding_layers).__name__}.")
        checked: dict[str, list[str]] = {}
        for name, vocabulary in embedding_layers.items():
            full = resolve_layer(model, name)
            layer = named_layers(model)[full]
            if not isinstance(layer, keras.layers.Embedding):
                raise ValueError(f"Layer {full!r} is a {type(layer).__name__}, not a keras.layers.Embedding; "
                                 f"`embedding_layers` exports Embedding weight matrices (use `layers` for others).")
            rows = [str(i) for i in range(layer.input_dim)] if vocabulary is None else [str(v) for v in vocabulary]
            if len(rows) != layer.input_dim:
                raise ValueError(f"The vocabulary of Embedding layer {full!r} has {len(rows)} entries but the layer "
                                 f"has input_dim={layer.input_dim} rows; pass one entry per row (or None).")
            checked[full] = rows
        return checked

    def snapshot(
        self, step: int | None = None, total_steps: int | None = None, writer: tf.summary.SummaryWriter | None = None
    ) -> SnapshotRecord:
        """Exports one snapshot (tensor names carry `step`, zero-padded for `total_steps`) and returns its record.

        `writer`: the run's open `tf.summary` writer, which then also carries the exporter's summaries (no event
        file per export).
        """
        from .exporter import export_embeddings

        start = time.perf_counter()
        export = dict(run=self.run, summary_writer=writer, step=step)
        separability: dict[str, float] = {}
        if self.inputs is not None:
            tensors, scores = self._tensors()
            names = {tensor: snapshot_name(tensor, step, total_steps) for tensor in tensors}
            class_scores = self._class_scores(scores)
            result = export_embeddings(
                self.logdir, {names[t]: array for t, array in tensors.items()},
                images=self.thumbnails, metadata=self._metadata(class_scores), **export,
            )
            del tensors  # conv outputs of a 5,000-image probe are hundreds of MB
            if self.labels is not None:  # exactly what the PROJECTOR shows: wide layers as the exporter reduced them
                separability = {t: knn_separability(result.arrays[name], self.labels) for t, name in names.items()}
            weights = None if class_scores is None else _meta.class_embedding(self.model, class_scores.shape[1])
            if weights is not None:
                if self._class_images is None and self.thumbnails is not None:
                    self._class_images = _meta.class_mean_images(self.thumbnails, self.labels, len(weights))
                export_embeddings(
                    self.logdir, {snapshot_name(CLASS_EMBEDDING_NAME, step, total_steps): weights},
                    images=self._class_images, metadata=_meta.class_metadata(self._names(len(weights))), **export,
                )
        for layer, vocabulary in self.embedding_layers.items():
            matrix = keras.ops.convert_to_numpy(named_layers(self.model)[layer].embeddings)
            export_embeddings(self.logdir, {snapshot_name(layer, step, total_steps): matrix}, metadata=vocabulary,
                              **export)
        record = SnapshotRecord(step, time.perf_counter() - start, separability)
        self.records.append(record)
        return record

    def _tensors(self) -> tuple[dict[str, np.ndarray | PCAResult], np.ndarray | None]:
        """{tensor name: N×D float32, or its PCA} of the chosen layers and of `features`, and the class scores."""
        tensors: dict[str, np.ndarray | PCAResult] = {}
        scores = None
        if self.layers:
            if self._outputs is None:  # at the first snapshot: `fit` may not have built a Sequential before
                self._outputs = LayerOutputs(self.model, self.layers, self.inputs)
            # Wide layers come back reduced already (the exporter's PCA, streamed batch by batch): the snapshot
            # never holds their N×D outputs.
            tensors, scores = self._outputs(self.inputs, DEFAULT_PCA_COMPONENTS)
            self.last_scores = scores if scores.ndim == 2 else None
            if self._outputs.output_rank != 2:
                scores = scores[:, :0]  # not class scores: no error-case columns
        if self.features is not None:
            for name, array in dict(self.features(self.model, self.inputs)).items():
                array = np.asarray(keras.ops.convert_to_numpy(array))
                if array.ndim < 2 or len(array) != self.n:
                    raise ValueError(f"`features` returned {name!r} of shape {array.shape}; expected N×... with "
                                     f"N={self.n} rows, one per probe row.")
                if name in tensors:
                    raise ValueError(f"`features` returned {name!r}, which is also a chosen layer; rename it.")
                tensors[name] = array.reshape(self.n, -1).astype(np.float32, copy=False)
        if scores is None and self.labels is not None:
            scores = predict_scores(self.model, self.inputs)
            scores = scores if scores.ndim == 2 else scores[:, :0]
            self.last_scores = scores if scores.shape[1] else None
        return tensors, scores

    def _class_scores(self, scores: np.ndarray | None) -> np.ndarray | None:
        """The N×C class scores when the model's output is one (C >= 2 per row, labels below C), else None."""
        if self.labels is None or scores is None or scores.ndim != 2 or scores.shape[1] < 2:
            return None
        classes = int(scores.shape[1])
        if self.labels.max() >= classes:
            raise ValueError(f"Labels go up to {self.labels.max()} but model {self.model.name!r} outputs {classes} "
                             f"class scores; pass labels in [0, {classes}).")
        if self.class_names is not None and len(self.class_names) != classes:
            raise ValueError(
                f"Model {self.model.name!r} outputs {classes} class scores but {len(self.class_names)} class names "
                f"were given; pass one name per output unit."
            )
        return scores

    def _names(self, classes: int) -> list[str]:
        return self.class_names or [str(i) for i in range(classes)]

    def _metadata(self, class_scores: np.ndarray | None) -> dict[str, list[str]] | None:
        """Our columns (error cases with class scores, else index and label; none without labels), then the user's."""
        columns: dict[str, list[str]] = {}
        if class_scores is not None:
            from_logits = not scores_are_probabilities(self.model, class_scores)
            columns.update(_meta.error_metadata(class_scores, self.labels, self._names(class_scores.shape[1]),
                                                from_logits=from_logits))
        elif self.labels is not None:
            names = self._names(int(self.labels.max()) + 1)
            columns.update(index=[str(i) for i in range(self.n)], label=[names[i] for i in self.labels])
        columns.update(self.user_columns or {})
        return columns or None

    def table(self) -> str:
        """The separability of every snapshot so far: one row per step, one column per tensor."""
        tensors = list(self.records[0].separability) if self.records else []
        width = max([8, *(len(tensor) + 2 for tensor in tensors)])
        head = f"Separability: leave-one-out {DEFAULT_K}-NN accuracy of {self.n} probe rows per tensor"
        lines = [head, "step".ljust(10) + "".join(tensor.rjust(width) for tensor in tensors) + "seconds".rjust(10)]
        for record in self.records:
            step = "-" if record.step is None else str(record.step)
            values = "".join(f"{record.separability[tensor]:.4f}".rjust(width) for tensor in tensors)
            lines.append(step.ljust(10) + values + f"{record.seconds:.1f}".rjust(10))
        return "\n".join(lines)


class EmbeddingSnapshots(keras.callbacks.Callback):
    """Snapshots a model's layers into TensorBoard's PROJECTOR before training, every `every` steps, and after.

    Each snapshot exports ``<layer>/step_<step>`` tensors (the probe's sprite and metadata beside them) into the
    run directory; with labels also the error-case columns, the class embedding and the scalars
    ``separability/<layer>`` (leave-one-out k-NN accuracy), printed as a table at the end. Everything is checked
    when the callback meets the model (the constructor's `model`, else `model.fit`'s `set_model`, before any
    step), so a typo or a model it cannot read fails in seconds. The step is the optimizer's (`schedule`).
    See docs/callback.md for the model and input kinds.

    Args:
        inputs: the probe exactly as the model takes it (an image batch, token ids, tabular rows, or a dict/list
            of arrays for a multi-input model), N rows; None with `embedding_layers` alone (no probe needed).
        labels: N integer class ids, or None (then no error-case columns, class embedding or separability).
        logdir: the TensorBoard log directory.
        run: the training's run directory name inside `logdir` (None: `logdir` itself is the run).
        every: optimizer steps between snapshots (besides the ones before the first and after the last step);
            0: off, no snapshot at all, as `projector-train --snapshot-every 0` (the one meaning of 0 in
            `schedule.is_due`). A period longer than the training gives the first and last snapshots only.
        layers: layer names (a nested model's layer also as ``<outer>/<inner>``); None: every convolution and
            dense layer (none when `features` is given).
        thumbnails: N images for the sprite (N×H×W or N×H×W×C with C = 1 or 3, uint8 or float in [0, 1]);
            default: the inputs when they are such an image batch, else no sprite.
        metadata: extra columns {name: N values}, written after ours.
        class_names: a name per class (default "0", "1", ...).
        embedding_layers: {Embedding layer name: vocabulary (input_dim strings) or None (row numbers)}: each
            layer's weight matrix, exported at every snapshot as ``<layer>/step_<step>`` with the vocabulary.
        features: `(model, inputs) -> {name: N×... array}` for models whose layers cannot be read by name
            (subclassed models, which are refused without it).
        total_steps: the training's length, for the zero-padding of step numbers (default: from `fit`'s epochs
            and steps per epoch).
        writer: the run's `tf.summary` writer, to share one event file with the training's scalars (default: one
            of its own in the run directory, created at the first snapshot).
        model: optionally the model, to check everything right away.
        verbose: print the separability table at the end of training.
        shared_scores: a `SharedScores` that receives the probe's class scores at every snapshot, for an
            `ImageLogger` on the same step (which then does not predict the probe's rows again).

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
        layers: Sequence[str] | None = None,
        thumbnails: np.ndarray | None = None,
        metadata: Mapping[str, Sequence] | None = None,
        class_names: Sequence[str] | None = None,
        embedding_layers: Mapping[str, Sequence[str] | None] | None = None,
        features: Features | None = None,
        total_steps: int | None = None,
        writer: tf.summary.SummaryWriter | None = None,
        model: keras.Model | None = None,
        verbose: bool = True,
        shared_scores: SharedScores | None = None,
    ):
        super().__init__()
        self.every = check_int("every", every, minimum=0, hint="(0: off)")
        if total_steps is not None:
            check_int("total_steps", total_steps, minimum=0)
        self._args = dict(inputs=inputs, labels=labels, logdir=logdir, run=run, layers=layers, thumbnails=thumbnails,
                          metadata=metadata, class_names=class_names, embedding_layers=embedding_layers,
                          features=features)
        self.verbose = verbose
        if shared_scores is not None and not isinstance(shared_scores, SharedScores):
            raise TypeError(f"Invalid value for argument `shared_scores`: expected a SharedScores or None, "
                            f"received {type(shared_scores).__name__}.")
        self.shared_scores = shared_scores
        self.snapshotter: LayerSnapshotter | None = None
        self._writer, self._own_writer = writer, writer is None
        self._last_snapshot: int | None = None
        self._total_steps = total_steps
        if model is not None:
            self.set_model(model)

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        if self.snapshotter is None or self.snapshotter.model is not model:
            self.snapshotter = LayerSnapshotter(model, **self._args)

    def on_train_begin(self, logs=None) -> None:
        if not self.every:
            return
        step = optimizer_step(self.model)
        epochs, steps = (self.params or {}).get("epochs"), (self.params or {}).get("steps")
        if self._total_steps is None and epochs and steps:
            self._total_steps = step + epochs * steps
        self._take(step)

    def on_train_batch_end(self, batch, logs=None) -> None:
        if self.every:
            step = optimizer_step(self.model)
            if is_due(step, self._last_snapshot, self.every):
                self._take(step)

    def on_train_end(self, logs=None) -> None:
        if not self.every:
            return
        step = optimizer_step(self.model)
        if step != self._last_snapshot:
            self._take(step)
        if self._own_writer and self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.verbose and self.snapshotter.labels is not None:
            print(self.snapshotter.table())

    def _take(self, step: int) -> None:
        if self._writer is None:  # created lazily, as Keras' TensorBoard callback does
            run_dir = os.path.join(self.snapshotter.logdir, self.snapshotter.run or "")
            self._writer = tf.summary.create_file_writer(run_dir)
        record = self.snapshotter.snapshot(step, self._total_steps, self._writer)
        self._last_snapshot = step
        if self.shared_scores is not None and self.snapshotter.last_scores is not None:
            self.shared_scores.put(step, self.snapshotter.inputs, self.snapshotter.last_scores)
        with self._writer.as_default(step=step):
            for layer, value in record.separability.items():
                tf.summary.scalar(separability_tag(layer), value)
        self._writer.flush()


def export_model_layers(
    model: keras.Model,
    inputs: object,
    labels: np.ndarray | None,
    logdir: str | os.PathLike,
    *,
    run: str | None = None,
    layers: Sequence[str] | None = None,
    thumbnails: np.ndarray | None = None,
    metadata: Mapping[str, Sequence] | None = None,
    class_names: Sequence[str] | None = None,
    embedding_layers: Mapping[str, Sequence[str] | None] | None = None,
    features: Features | None = None,
) -> LayerSnapshotter:
    """Exports a trained model's layers on `inputs` once (tensors named after the layers), with the arguments of
    `EmbeddingSnapshots`. Returns the snapshotter (its `table()`, `records`)."""
    snapshotter = LayerSnapshotter(
        model, inputs, labels, logdir, run=run, layers=layers, thumbnails=thumbnails, metadata=metadata,
        class_names=class_names, embedding_layers=embedding_layers, features=features,
    )
    snapshotter.snapshot()
    return snapshotter
