"""Public API of projector_export: export embeddings, images and metadata for TensorBoard's PROJECTOR.

Everything else is internal. Each entry below gives the names of its arguments, in order (`...`: more keyword
arguments, documented where the name is defined); a test compares them with the code.

Exporting arrays:
  export_embeddings(logdir, embeddings, *, run, images, metadata, reduce, pca_components, dark_on_white, ...)
      -> ExportResult: named N×D arrays (+ N images, N metadata rows) into a TensorBoard run.
  export_standalone(out_dir, embeddings, *, images, metadata, reduce, pca_components, dark_on_white, base_url)
      -> StandaloneResult: the same data as a folder for the standalone Embedding Projector web app.
  ExportResult, ExportedTensor, StandaloneResult: what was written.
  NoSpaceError: an OSError raised when the disk is full, whichever step of an export ran out of space.
  RunInUseError: an OSError raised when another process's training writes the run (one training per run: the
      writing callbacks below claim their run before they first write there).
  tensorboard_command(logdir): the `tensorboard --logdir ...` line to print for the user.
  pca(x, n_components) -> PCAResult; StreamingPCA(n_rows, input_dim, n_components, *, start, matmul): the
      exporter's PCA, also in blocks of rows handed over as a forward pass computes them; a PCAResult exports as
      it is.
  knn_separability(features, labels, *, k, ...): leave-one-out k-NN accuracy of labels in a feature space.
  check_int(name, value, *, minimum, hint), check_run_name(run), check_logdir(logdir),
      check_writable_dir(path, what): the checks every entry point applies before anything is written.
  PCA_THRESHOLD_DIM, DEFAULT_PCA_COMPONENTS, MAX_SPRITE_SIZE_PX: documented limits and defaults.

A Keras model's layers (these need Keras, imported on first use):
  EmbeddingSnapshots(inputs, labels, logdir, *, run, every, total_steps, writer, model, verbose, shared_scores,
      layouts, ...): the Keras callback: chosen layers (and Embedding weights) as `<layer>/step_<step>` tensors;
      with labels also error-case metadata, the class embedding and `separability/<layer>` scalars; each
      snapshot laid out (PCA and UMAP bookmarks) by a worker process (docs/callback.md).
  export_model_layers(model, inputs, labels, logdir, *, run, ...): the same, once, after training.
  check_probe(inputs, labels, *, layers, thumbnails, metadata, class_names, embedding_layers, features,
      class_layer) -> Probe: the probe's options, checked once (the `...` of the two above, which also take a
      Probe as `inputs`).
  take_probe(images, labels, size): the first `size` examples, the fixed probe set of the snapshots.
  plan_snapshots(model, probe) -> SnapshotPlan: what each snapshot of `model` writes (tensor names, the class
      embedding, the scalars), checked against the model.
  LayerSnapshotter(model, probe, logdir, *, run): one model, one probe, one run: `plan` checked when it is made,
      then one snapshot per `snapshot(step, *, digits, writer)`; what the callback and the sidecar run.
  snapshot_checkpoints(logdir, run, probe, *, finished, until_step, poll_seconds, report, exported, layouts): a
      sidecar that exports each checkpoint `<run>/checkpoints/step_<N>.keras` of a training once, as the callback
      would, layouts included (a checkpoint Keras cannot load skipped until it changes, a replaced run exported
      anew).
  ImageLogger(images, labels, logdir, *, run, writer, every, ...): the Keras callback for the seeds' pictures in
      the IMAGES tab; grad_cam(model, images, class_index, *, layer) and filter_patterns(model, layer, *, steps,
      ...) on their own.
  SharedScores(): given to EmbeddingSnapshots and ImageLogger, one forward pass of the probe on a step both log.
  PeriodicCallback(every, *, at_start, at_end, logdir, run, writer), optimizer_step(model): the one base of every
      periodic callback (work at the first step, every `every` optimizer steps, the last; 0: off) and its clock.
  DEFAULT_SNAPSHOT_EVERY, DEFAULT_PROBE_SIZE, MIN_PROBE_SIZE, DEFAULT_IMAGES_EVERY: the callbacks' defaults.

Layouts over training (docs/layouts.md):
  compute_run_layouts(logdir, run, *, method, recompute, wait, progress, command) -> LayoutReport: the aligned PCA
      and UMAP layouts of every tensor of a run that lacks them, published as the tensors' PROJECTOR bookmarks.
  layout_status(logdir, run) -> LayoutStatus: which tensors still lack layouts, which process computes them, and
      the command that waits for them.
  build_trajectories(logdir, run): `<layer>/trajectory`, every snapshot step's rows of a layer in one basis.
  LayoutFeed(logdir, run, *, method, trajectories): a training's layout worker at idle priority, fed after each
      snapshot (`snapshot_written`) and told when the training ended (`training_ended`, which returns the status).
"""

from projector_export.defaults import DEFAULT_IMAGES_EVERY, DEFAULT_PROBE_SIZE, DEFAULT_SNAPSHOT_EVERY, MIN_PROBE_SIZE
from projector_export.errors import NoSpaceError, RunInUseError
from projector_export.exporter import ExportResult, export_embeddings, tensorboard_command
from projector_export.inputs import ExportedTensor
from projector_export.layout_worker import LayoutFeed
from projector_export.metadata import MAX_SPRITE_SIZE_PX
from projector_export.reduction import DEFAULT_PCA_COMPONENTS, PCA_THRESHOLD_DIM, PCAResult, StreamingPCA, pca
from projector_export.run_layouts import LayoutReport, LayoutStatus, compute_run_layouts, layout_status
from projector_export.separability import knn_separability
from projector_export.standalone import StandaloneResult, export_standalone
from projector_export.trajectories import build_trajectories
from projector_export.validation import check_int, check_logdir, check_run_name, check_writable_dir
from projector_export.watch import snapshot_checkpoints

# Imported on first use (they need Keras, seconds to import): {public name: the module that defines it}.
_KERAS_API = {
    "EmbeddingSnapshots": "snapshots", "export_model_layers": "snapshots", "check_probe": "probe", "Probe": "probe",
    "take_probe": "probe", "LayerSnapshotter": "snapshotter", "plan_snapshots": "snapshot_plan",
    "SnapshotPlan": "snapshot_plan", "SharedScores": "prediction", "PeriodicCallback": "periodic",
    "optimizer_step": "schedule", "ImageLogger": "images", "grad_cam": "images", "filter_patterns": "images",
}

__all__ = [
    "DEFAULT_IMAGES_EVERY", "DEFAULT_PCA_COMPONENTS", "DEFAULT_PROBE_SIZE", "DEFAULT_SNAPSHOT_EVERY",
    "MAX_SPRITE_SIZE_PX", "MIN_PROBE_SIZE", "PCA_THRESHOLD_DIM", "ExportResult", "ExportedTensor", "NoSpaceError",
    "PCAResult", "RunInUseError", "StandaloneResult", "StreamingPCA", "check_int", "check_logdir", "check_run_name",
    "check_writable_dir", "export_embeddings", "export_standalone", "knn_separability", "pca",
    "snapshot_checkpoints", "tensorboard_command", "LayoutFeed", "LayoutReport", "LayoutStatus",
    "build_trajectories", "compute_run_layouts", "layout_status", *_KERAS_API,
]


def __getattr__(name):
    """`projector_export.EmbeddingSnapshots` etc., imported on first use: they need Keras (seconds to import)."""
    if name in _KERAS_API:
        import importlib

        return getattr(importlib.import_module(f"projector_export.{_KERAS_API[name]}"), name)
    raise AttributeError(f"module 'projector_export' has no attribute {name!r}")
