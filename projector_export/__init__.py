"""Public API of projector_export: export embeddings, images and metadata for TensorBoard's PROJECTOR.

Public API (everything else is internal):
  export_embeddings(logdir, embeddings, *, run=None, images=None, metadata=None, ...) -> ExportResult
      named N×D arrays (+ N images, N metadata rows) into a TensorBoard run.
  export_standalone(out_dir, embeddings, *, images=None, metadata=None, ...) -> StandaloneResult
      the same data as a folder for the standalone Embedding Projector web app.
  ExportResult, ExportedTensor, StandaloneResult: what was written.
  tensorboard_command(logdir): the `tensorboard --logdir ...` line to print for the user.
  PCA_THRESHOLD_DIM, DEFAULT_PCA_COMPONENTS, MAX_SPRITE_SIZE_PX: documented limits and defaults.
  EmbeddingSnapshots(inputs, labels, logdir, *, run=None, every=..., layers=None, thumbnails=None, metadata=None,
      class_names=None, embedding_layers=None, features=None, ...): Keras callback for any Keras model, chosen
      layers (and Embedding weights) as `<layer>/step_<step>` tensors; with labels also error-case metadata and
      `separability/<layer>` scalars (docs/callback.md).
  export_model_layers(model, inputs, labels, logdir, *, ...): the same arguments, once, after training.
  SharedScores(): passed to EmbeddingSnapshots and ImageLogger, one forward pass of the probe on a step both log.
  knn_separability(features, labels, *, k=5): leave-one-out k-NN accuracy of labels in a feature space.
  ImageLogger(writer_or_run_dir, images, labels, *, every=...): Keras callback, the seeds' pictures in IMAGES.
  grad_cam(model, images, ...), filter_patterns(model, conv_layer, ...): the two costly pictures on their own.
"""

from projector_export.exporter import ExportResult, export_embeddings, tensorboard_command
from projector_export.inputs import ExportedTensor
from projector_export.reduction import DEFAULT_PCA_COMPONENTS, PCA_THRESHOLD_DIM
from projector_export.separability import knn_separability
from projector_export.metadata import MAX_SPRITE_SIZE_PX
from projector_export.standalone import StandaloneResult, export_standalone

_IMAGES_API = ("ImageLogger", "grad_cam", "filter_patterns")  # issue 5: TensorBoard images during training
# issue 4: layer snapshots (need Keras too)
_SNAPSHOTS_API = ("EmbeddingSnapshots", "SharedScores", "export_model_layers")


__all__ = [
    "DEFAULT_PCA_COMPONENTS", "MAX_SPRITE_SIZE_PX", "PCA_THRESHOLD_DIM", "ExportResult", "ExportedTensor",
    "StandaloneResult", "export_embeddings", "export_standalone", "knn_separability", "tensorboard_command", *_IMAGES_API, *_SNAPSHOTS_API,
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
