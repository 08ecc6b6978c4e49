"""Public API of projector_export: export embeddings, images and metadata for TensorBoard's PROJECTOR.

Public API (everything else is internal):
  export_embeddings(logdir, embeddings, *, run=None, images=None, metadata=None, ...) -> ExportResult
      named N×D arrays (+ N images, N metadata rows) into a TensorBoard run.
  export_standalone(out_dir, embeddings, *, images=None, metadata=None, ...) -> StandaloneResult
      the same data as a folder for the standalone Embedding Projector web app.
  ExportResult, ExportedTensor, StandaloneResult: what was written.
  NoSpaceError: an OSError raised when the disk is full, whichever step of an export ran out of space.
  tensorboard_command(logdir): the `tensorboard --logdir ...` line to print for the user.
  PCA_THRESHOLD_DIM, DEFAULT_PCA_COMPONENTS, MAX_SPRITE_SIZE_PX: documented limits and defaults.
  pca(x, n_components) -> PCAResult; StreamingPCA(sample, n_rows, n_components), sample_rows(n): the exporter's
      PCA, also in blocks (rows handed over as a forward pass computes them); a PCAResult exports as it is.
  DEFAULT_SNAPSHOT_EVERY, DEFAULT_PROBE_SIZE, MIN_PROBE_SIZE, DEFAULT_IMAGES_EVERY: the callbacks' defaults.
  check_int(name, value, *, minimum=1), check_run_name(run), check_logdir(logdir), check_writable_dir(path, what):
      the checks every entry point applies to its input, before anything is written.
  EmbeddingSnapshots(inputs, labels, logdir, *, run=None, every=..., layers=None, thumbnails=None, metadata=None,
      class_names=None, embedding_layers=None, features=None, ...): Keras callback for any Keras model, chosen
      layers (and Embedding weights) as `<layer>/step_<step>` tensors; with labels also error-case metadata and
      `separability/<layer>` scalars (docs/callback.md).
  export_model_layers(model, inputs, labels, logdir, *, ...): the same arguments, once, after training.
  take_probe(images, labels, size): the first `size` examples, the fixed probe set of the snapshots.
  resolve_layers(model, names): checks layer names against a model (None: every convolution and dense layer).
  SharedScores(): passed to EmbeddingSnapshots and ImageLogger, one forward pass of the probe on a step both log.
  knn_separability(features, labels, *, k=5): leave-one-out k-NN accuracy of labels in a feature space.
  ImageLogger(writer_or_run_dir, images, labels, *, every=...): Keras callback, the seeds' pictures in IMAGES.
  grad_cam(model, images, ...), filter_patterns(model, conv_layer, ...): the two costly pictures on their own.
  follow_checkpoints(directory, export, *, done=..., finished=..., until_step=None, poll_seconds=5.0): a sidecar
      that exports each `step_<N>.keras` checkpoint of a training once, in step order, as they appear;
      checkpoint_steps(directory), exported_steps(logdir, run, names, scalar_tags=()): what it reads back.
"""

from projector_export.defaults import DEFAULT_IMAGES_EVERY, DEFAULT_PROBE_SIZE, DEFAULT_SNAPSHOT_EVERY, MIN_PROBE_SIZE
from projector_export.errors import NoSpaceError
from projector_export.exporter import ExportResult, export_embeddings, tensorboard_command
from projector_export.inputs import ExportedTensor
from projector_export.metadata import MAX_SPRITE_SIZE_PX
from projector_export.reduction import (
    DEFAULT_PCA_COMPONENTS,
    PCA_THRESHOLD_DIM,
    PCAResult,
    StreamingPCA,
    pca,
    sample_rows,
)
from projector_export.separability import knn_separability
from projector_export.standalone import StandaloneResult, export_standalone
from projector_export.validation import check_int, check_logdir, check_run_name, check_writable_dir
from projector_export.watch import checkpoint_steps, exported_steps, follow_checkpoints

# Imported on first use (they need Keras, seconds to import): TensorBoard images during training, layer snapshots.
_IMAGES_API = ("ImageLogger", "grad_cam", "filter_patterns")
_SNAPSHOTS_API = ("EmbeddingSnapshots", "SharedScores", "export_model_layers", "take_probe", "resolve_layers")


__all__ = [
    "DEFAULT_IMAGES_EVERY", "DEFAULT_PCA_COMPONENTS", "DEFAULT_PROBE_SIZE", "DEFAULT_SNAPSHOT_EVERY",
    "MAX_SPRITE_SIZE_PX", "MIN_PROBE_SIZE", "PCA_THRESHOLD_DIM", "ExportResult", "ExportedTensor", "NoSpaceError",
    "PCAResult", "StandaloneResult", "StreamingPCA",
    "check_int", "check_logdir", "check_run_name", "check_writable_dir", "checkpoint_steps", "export_embeddings",
    "export_standalone", "exported_steps", "follow_checkpoints", "knn_separability", "pca", "sample_rows",
    "tensorboard_command",
    *_IMAGES_API, *_SNAPSHOTS_API,
]


def __getattr__(name):
    """`projector_export.ImageLogger` etc., imported on first use: they need Keras (seconds to import)."""
    if name in _IMAGES_API:
        from projector_export import images

        return getattr(images, name)
    if name in _SNAPSHOTS_API:
        from projector_export import snapshots

        return getattr(snapshots, name)
    raise AttributeError(f"module 'projector_export' has no attribute {name!r}")
