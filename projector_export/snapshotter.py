"""`LayerSnapshotter`: one model, one probe, one run; each call exports one snapshot.

A snapshot runs the probe once through the model, reads the chosen layers' outputs (flattened; wide ones reduced
by PCA as the batches arrive) and the class scores, and exports them in one `export_embeddings` call sharing the
probe's sprite and metadata (the error-case columns with labels, then the user's columns). With labels it also
exports the class embedding and measures each tensor's separability (in the space the PROJECTOR shows), logged as
a scalar when a writer is given. Embedding layers are exported as their weight matrices with their vocabulary.
What it writes is `snapshot_plan.SnapshotPlan`'s to say.
"""

from __future__ import annotations

import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf

from . import error_metadata as _meta
from .class_scores import class_embedding, scores_are_probabilities
from .config import read_config
from .exporter import export_embeddings
from .layer_outputs import LayerOutputs
from .model_layers import named_layers
from .naming import CLASS_EMBEDDING_NAME, parse_snapshot_name, separability_tag, snapshot_name
from .prediction import predict_scores
from .probe import Probe
from .reduction import DEFAULT_PCA_COMPONENTS, PCAResult
from .run_layouts import metadata_columns
from .separability import DEFAULT_K, knn_separability
from .snapshot_plan import check_classes, plan_snapshots


@dataclasses.dataclass(frozen=True)
class SnapshotRecord:
    """What one snapshot did: its step (None after the fact), wall seconds, the separability per tensor, and the
    names of the tensors it exported (in the order written)."""

    step: int | None
    seconds: float
    separability: dict[str, float]
    tensors: tuple[str, ...] = ()


class LayerSnapshotter:
    """Exports the layers of `model` chosen by `probe` into `<logdir>/<run>`, one call of `snapshot` per snapshot.

    Checks the probe against the model first (`snapshot_plan.plan_snapshots`); `plan` says what each snapshot
    writes, `records` what each one did.

    Example:
        snapshotter = LayerSnapshotter(model, check_probe(x_test[:1000], y_test[:1000]), "logs", run="r")
        snapshotter.snapshot(step=0)
    """

    def __init__(self, model: keras.Model, probe: Probe, logdir: str | os.PathLike, *, run: str | None = None):
        self.model, self.probe = model, probe
        self.plan = plan_snapshots(model, probe)
        self.logdir, self.run = os.fspath(logdir), run
        self.records: list[SnapshotRecord] = []
        self.last_scores: np.ndarray | None = None
        """The model's first output on the probe at the last snapshot (N×C class scores), None when it is not."""
        self._outputs: LayerOutputs | None = None
        self._class_images: np.ndarray | None = None
        self._dynamics: tuple[_meta.DynamicsState | None, _meta.DynamicsState] | None = None  # (before, after)

    def snapshot(
        self, step: int | None = None, *, digits: int | None = None, writer: tf.summary.SummaryWriter | None = None
    ) -> SnapshotRecord:
        """Exports one snapshot (tensor names carry `step`, zero-padded to `digits`) and returns its record.

        `writer`: the run's open `tf.summary` writer, which then also carries the exporter's summaries (no event
        file per export) and the separability scalars at `step`.
        """
        start = time.perf_counter()
        export = dict(run=self.run, summary_writer=writer, step=step)
        separability, exported = self._export_probe(step, digits, export) if self.probe.inputs is not None else ({},
                                                                                                              [])
        for layer, vocabulary in self.plan.embedding_layers.items():
            name = snapshot_name(layer, step, digits=digits)
            matrix = keras.ops.convert_to_numpy(named_layers(self.model)[layer].embeddings)
            export_embeddings(self.logdir, {name: matrix}, metadata=list(vocabulary), **export)
            exported.append(name)
        if writer is not None:
            with writer.as_default(step=step):
                for tensor, value in separability.items():
                    tf.summary.scalar(separability_tag(tensor), value)
            writer.flush()
        record = SnapshotRecord(step, time.perf_counter() - start, separability, tuple(exported))
        self.records.append(record)
        return record

    def _export_probe(self, step: int | None, digits: int | None, export: dict) -> tuple[dict[str, float], list[str]]:
        """The probe's tensors and the class embedding; returns the separability per tensor and the names written."""
        tensors, scores = self._tensors()
        names = {tensor: snapshot_name(tensor, step, digits=digits) for tensor in tensors}
        class_scores = self._class_scores(scores)
        result = export_embeddings(
            self.logdir, {names[t]: array for t, array in tensors.items()},
            images=self.probe.thumbnails, metadata=self._metadata(class_scores, step), **export,
        )
        del tensors  # conv outputs of a 5,000-image probe are hundreds of MB
        labels = self.probe.labels
        separability = {} if labels is None else {  # exactly what the PROJECTOR shows: wide layers as reduced
            tensor: knn_separability(result.arrays[name], labels) for tensor, name in names.items()}
        exported = list(names.values())
        weights = self._class_weights(class_scores)
        if weights is not None:
            if self._class_images is None and self.probe.thumbnails is not None:
                self._class_images = _meta.class_mean_images(self.probe.thumbnails, labels, len(weights))
            name = snapshot_name(CLASS_EMBEDDING_NAME, step, digits=digits)
            export_embeddings(self.logdir, {name: weights}, images=self._class_images,
                              metadata=_meta.class_metadata(self.probe.class_name_list(len(weights))), **export)
            exported.append(name)
        return separability, exported

    def _tensors(self) -> tuple[dict[str, np.ndarray | PCAResult], np.ndarray | None]:
        """{tensor name: N×D float32, or its PCA} of the chosen layers and of `features`, and the class scores."""
        tensors: dict[str, np.ndarray | PCAResult] = {}
        scores = None
        inputs, n = self.probe.inputs, self.probe.n
        if self.plan.layers:
            if self._outputs is None:
                self._outputs = LayerOutputs(self.model, self.plan.layers, inputs)
            # Wide layers come back reduced already (the exporter's PCA, streamed batch by batch): the snapshot
            # never holds their N×D outputs.
            tensors, scores = self._outputs(inputs, DEFAULT_PCA_COMPONENTS)
            self.last_scores = scores if scores.ndim == 2 else None
            if self._outputs.output_rank != 2:
                scores = scores[:, :0]  # not class scores: no error-case columns
        if self.probe.features is not None:
            for name, array in dict(self.probe.features(self.model, inputs)).items():
                array = np.asarray(keras.ops.convert_to_numpy(array))
                if array.ndim < 2 or len(array) != n:
                    raise ValueError(f"`features` returned {name!r} of shape {array.shape}; expected N×... with "
                                     f"N={n} rows, one per probe row.")
                if name in tensors:
                    raise ValueError(f"`features` returned {name!r}, which is also a chosen layer; rename it.")
                tensors[name] = array.reshape(n, -1).astype(np.float32, copy=False)
        if scores is None and self.probe.labels is not None:
            scores = predict_scores(self.model, inputs)
            scores = scores if scores.ndim == 2 else scores[:, :0]
            self.last_scores = scores if scores.shape[1] else None
        return tensors, scores

    def _class_scores(self, scores: np.ndarray | None) -> np.ndarray | None:
        """The N×C class scores when the model's output is one (C >= 2 per row, labels below C), else None."""
        if self.probe.labels is None or scores is None or scores.ndim != 2 or scores.shape[1] < 2:
            return None
        check_classes(self.model, self.probe, int(scores.shape[1]))
        return scores

    def _class_weights(self, class_scores: np.ndarray | None) -> np.ndarray | None:
        """The class embedding (C × D), when there are class scores and a layer computing them (`plan`)."""
        if class_scores is None or self.plan.class_layer is None:
            return None
        classes = class_scores.shape[1]
        weights = class_embedding(self.model, classes, self.plan.class_layer)
        if weights is None:
            units = named_layers(self.model)[self.plan.class_layer].units
            raise ValueError(f"Invalid value for argument `class_layer`: {self.plan.class_layer!r} has {units} units "
                             f"but model {self.model.name!r} outputs {classes} class scores; name the Dense layer "
                             f"that computes them.")
        return weights

    def _metadata(self, class_scores: np.ndarray | None, step: int | None = None) -> dict[str, list[str]] | None:
        """Our columns (error cases with class scores, and at a step the training dynamics; else index, class and
        label; none without labels), then the user's."""
        columns: dict[str, list[str]] = {}
        labels = self.probe.labels
        if class_scores is not None:
            from_logits = not scores_are_probabilities(self.model, class_scores)
            names = self.probe.class_name_list(class_scores.shape[1])
            columns.update(_meta.error_metadata(class_scores, labels, names, from_logits=from_logits))
            if step is not None:
                columns.update(self._dynamics_columns(step, columns))
        elif labels is not None:
            columns.update(_meta.label_metadata(labels, self.probe.class_name_list(int(labels.max()) + 1)))
        columns.update(self.probe.metadata or {})
        return columns or None

    def _dynamics_columns(self, step: int, columns: dict[str, list[str]]) -> dict[str, list[str]]:
        """`first_correct_step` and `forgotten` at `step`, continuing this snapshotter's previous snapshot, else the
        run's latest one before `step` (a sidecar's new snapshotter, a restarted one); the same step again (a second
        `fit` starting where the first ended) continues the one before it."""
        if self._dynamics is not None and self._dynamics[1][0] == step:
            before = self._dynamics[0]
        elif self._dynamics is not None and self._dynamics[1][0] < step:
            before = self._dynamics[1]
        else:
            before = self._previous_dynamics(step)
        dynamics, after = _meta.dynamics_columns(step, columns, before)
        self._dynamics = (before, after)
        return dynamics

    def _previous_dynamics(self, step: int) -> _meta.DynamicsState | None:
        """The dynamics state after the run's latest snapshot before `step`, read back from its metadata."""
        run_dir = os.path.join(self.logdir, self.run) if self.run is not None else self.logdir
        entries = [(parsed[1], entry) for entry in read_config(run_dir).embeddings
                   for parsed in [parse_snapshot_name(entry.tensor_name)]
                   if parsed and parsed[1] < step and entry.metadata_path
                   and parsed[0] not in (CLASS_EMBEDDING_NAME, *self.plan.embedding_layers)]
        if not entries:
            return None
        latest, entry = max(entries, key=lambda item: item[0])
        try:
            return _meta.dynamics_state(latest, metadata_columns(run_dir, entry))
        except (OSError, ValueError):  # its metadata gone or unreadable: count from this snapshot on
            return None

    def table(self) -> str:
        """The separability of every snapshot so far: one row per step, one column per tensor."""
        tensors = list(self.records[0].separability) if self.records else []
        width = max([8, *(len(tensor) + 2 for tensor in tensors)])
        head = f"Separability: leave-one-out {DEFAULT_K}-NN accuracy of {self.probe.n} probe rows per tensor"
        lines = [head, "step".ljust(10) + "".join(tensor.rjust(width) for tensor in tensors) + "seconds".rjust(10)]
        for record in self.records:
            step = "-" if record.step is None else str(record.step)
            values = "".join(f"{record.separability[tensor]:.4f}".rjust(width) for tensor in tensors)
            lines.append(step.ljust(10) + values + f"{record.seconds:.1f}".rjust(10))
        return "\n".join(lines)
