"""A short real training laid out as a user lays it out, for the browser tests of the layouts (test helper).

`projector-train` trains the `tutorial` CNN for STEPS optimizer steps with snapshots of LAYERS every EVERY steps
(PROBE test images, no pictures), then `projector-layouts` computes every snapshot's layouts (PCA and UMAP,
each step continuing the previous one) and the layers' trajectories. Made once per test session
(`conftest.laid_out_run`); a test that changes it works on a copy (`copy_run`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from _programs import program, run

RUN, STEPS, EVERY, PROBE = "laid-out", 100, 50, 500
LAYERS = ("conv1", "conv2", "fc1", "logits")  # the `tutorial` model's convolution and dense layers
SNAPSHOT_STEPS = tuple(range(0, STEPS + 1, EVERY))


def make(logdir: Path, mnist_dir: Path) -> Path:
    """Trains and lays out the run in `logdir`; returns its run directory."""
    run([program("projector-train"), "--model", "tutorial", "--steps", str(STEPS), "--seed", "0", "--run", RUN,
         "--eval-every", str(EVERY), "--log-every", str(EVERY), "--snapshot-every", str(EVERY),
         "--layers", ",".join(LAYERS), "--probe-size", str(PROBE), "--images-every", "0",
         "--logdir", str(logdir), "--data-dir", str(mnist_dir)])
    run([program("projector-layouts"), "--logdir", str(logdir), "--run", RUN])
    return logdir / RUN


def copy_run(run_dir: Path, logdir: Path) -> Path:
    """A copy of the run in `logdir` (its configs still name the original's bundle, which stays in place)."""
    shutil.copytree(run_dir, logdir / run_dir.name)
    return logdir / run_dir.name
