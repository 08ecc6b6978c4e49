"""Defaults of the training-time callbacks, importable without Keras.

`EmbeddingSnapshots`, `ImageLogger` and `projector-train` share these; the CLIs show them in `--help`, which must
answer without importing TensorFlow. What a snapshot costs at these settings: docs/benchmarks.md.
"""

from __future__ import annotations

from projector_export.separability import DEFAULT_K

DEFAULT_SNAPSHOT_EVERY = 5000
"""Training steps between layer snapshots (projector-train's 10,000 default steps get snapshots at 0, 5,000 and
10,000)."""

DEFAULT_PROBE_SIZE = 5000
"""Probe images per snapshot: the first N test images."""

MIN_PROBE_SIZE = DEFAULT_K + 1
"""The k-NN separability needs k neighbours besides each example."""

DEFAULT_IMAGES_EVERY = 2000
"""Training steps between the IMAGES dashboard's pictures."""
