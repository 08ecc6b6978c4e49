"""Names and limits of the formats this package writes: what TensorBoard and its PROJECTOR read.

As in TensorBoard's own plugins, `metadata.py` holds the names and constants; the modules that
write each file import them from here.
"""

from __future__ import annotations

import os

from tensorboard.plugins.projector import metadata as _projector_metadata

# The file name TensorBoard's projector plugin looks for in a run directory.
CONFIG_FILENAME = _projector_metadata.PROJECTOR_FILENAME
# The checkpoint state file TensorFlow's `latest_checkpoint` reads. TensorBoard's projector re-reads a
# run's config when the path this file names changes, so each export flips it.
STATE_FILENAME = "checkpoint"
# Folder inside the run directory for everything the exporter writes except the state file: the config,
# the bundles, sprites and metadata. It is TensorBoard's plugin-assets folder of the projector
# (`<run>/plugins/org_tensorflow_tensorboard_projector/`), where the plugin also looks for a config;
# a config there, and none at the top, is what lets a running TensorBoard notice a run's first export.
ASSETS_DIRNAME = os.path.join(_projector_metadata.PLUGINS_DIR, _projector_metadata.PLUGIN_ASSETS_NAME)
# Basename of the checkpoint bundles: <ASSETS_DIRNAME>/embeddings-000007.index, .data-*.
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
# The PROJECTOR loads at most this many points of a tensor: it asks for `num_rows=1e5` and, for a
# larger tensor, says "Showing the first 100,000 of N data points" (projector_binary.js, `retrieveTensor`);
# the metadata is cut at the same row.
PROJECTOR_MAX_POINTS = 100_000
