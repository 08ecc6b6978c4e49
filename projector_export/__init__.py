"""Public API of projector_export: export embeddings, images and metadata for TensorBoard's PROJECTOR.

Public API (everything else is internal):
  export_embeddings(logdir, embeddings, *, run=None, images=None, metadata=None, ...) -> ExportResult
      named N×D arrays (+ N images, N metadata rows) into a TensorBoard run.
  export_standalone(out_dir, embeddings, *, images=None, metadata=None, ...) -> StandaloneResult
      the same data as a folder for the standalone Embedding Projector web app.
  ExportResult, ExportedTensor, StandaloneResult: what was written.
  PCA_THRESHOLD_DIM, DEFAULT_PCA_COMPONENTS, MAX_SPRITE_SIZE_PX: documented limits and defaults.
"""

from projector_export.exporter import ExportResult, export_embeddings
from projector_export.inputs import ExportedTensor
from projector_export.reduction import DEFAULT_PCA_COMPONENTS, PCA_THRESHOLD_DIM
from projector_export.sprite import MAX_SPRITE_SIZE_PX
from projector_export.standalone import StandaloneResult, export_standalone

_IMAGES_API = ("ImageLogger", "grad_cam", "filter_patterns")  # issue 5: TensorBoard images during training


def __getattr__(name):
    """`projector_export.ImageLogger` etc., imported on first use: they need Keras (seconds to import)."""
    if name in _IMAGES_API:
        from projector_export import images

        return getattr(images, name)
    raise AttributeError(f"module 'projector_export' has no attribute {name!r}")
