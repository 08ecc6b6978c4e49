"""Names and limits of the formats this package writes: what TensorBoard and its PROJECTOR read.

As in TensorBoard's own plugins, `metadata.py` holds the names and constants; the modules that
write each file import them from here.
"""

from __future__ import annotations

from tensorboard.plugins.projector import metadata as _projector_metadata

# The file name TensorBoard's projector plugin looks for in a run directory.
CONFIG_FILENAME = _projector_metadata.PROJECTOR_FILENAME
# The checkpoint state file TensorFlow's `latest_checkpoint` reads (TensorBoard finds the run's tensors by it).
STATE_FILENAME = "checkpoint"
# Folder inside the run directory for everything the exporter writes except the two files
# TensorBoard looks for at the top (the state file and the config).
ASSETS_DIRNAME = "projector"
# Basename of the checkpoint bundles: projector/embeddings-000007.index, .data-*.
BUNDLE_BASENAME = "embeddings"
# TensorFlow's event file names start with this (tf.summary and TensorBoard's reader agree).
EVENT_FILE_GLOB = "events.out.tfevents.*"
# Text summary tag under which the PCA reductions are described (TensorBoard's TEXT tab).
REDUCTION_TAG = "projector/reduction"
# TensorBoard's PROJECTOR refuses larger sprites: "Sprite image of dimensions ... exceeds maximum
# dimensions 8192px x 8192px" (tensorboard/plugins/projector/vz_projector/data-provider.ts,
# MAX_SPRITE_IMAGE_SIZE_PX). tensorboardX uses the same limit (TB_MAX_SPRITE_SIZE).
MAX_SPRITE_SIZE_PX = 8192
# File name the standalone web app's "projector config" loader expects by convention.
STANDALONE_CONFIG_FILENAME = "projector_config.json"
