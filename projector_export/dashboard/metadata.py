"""Names, routes and limits of the layers dashboard (TensorBoard plugin `projector_layers`)."""

from __future__ import annotations

import os

PLUGIN_NAME = "projector_layers"
TAB_NAME = "Layers"  # the tab's label in TensorBoard's navigation bar

# Routes, under /data/plugin/<PLUGIN_NAME>/.
RUNS_ROUTE = "/runs"  # runs with snapshot tensors, and whether they have layouts
RUN_ROUTE = "/run"  # one run: layers, steps, tensors, separability
LAYOUTS_ROUTE = "/layouts"  # the layouts a tensor's bookmarks hold (kind, dimensions, rows)
COORDINATES_ROUTE = "/coordinates"  # one layout's coordinates, float32, row-major
METADATA_ROUTE = "/metadata"  # the tensor's metadata TSV, as the PROJECTOR reads it
SPRITE_ROUTE = "/sprite"  # the tensor's sprite PNG
STATIC_ROUTE = "/static/*"
ENTRY_MODULE = "/static/index.js"

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}

# The decoded layouts kept in memory across runs and tensors (least recently used dropped first).
CACHE_BYTES = 512 * 2**20
