"""A short real training laid out as a user's is, for the tests of the layouts and the dashboard (test helper).

`projector-train` trains the `tutorial` CNN for STEPS optimizer steps with snapshots of its default layers (LAYERS)
every EVERY steps (PROBE test images, no pictures) and, by default, its layout worker lays out each snapshot (PCA
and UMAP, each step continuing the previous one) and builds the layers' trajectories once the training ends; then
`projector-layouts --wait` waits for that worker, as projector-train's last line says. Made once per test session
(`conftest.laid_out_run`); a test that changes it works on a copy (`copy_run`). `TRAIN_OUTPUT` holds what
projector-train printed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from _programs import program, run

# PROBE: a fifth of the default probe; a 2-D layout of a few hundred rows keeps less of the layer's separability
# than one of thousands, too close to the 0.9x that test_training_layouts asks (docs/layouts.md).
RUN, STEPS, EVERY, PROBE = "laid-out", 100, 50, 1000
LAYERS = ("conv1", "conv2", "fc1", "logits")  # the `tutorial` model's convolution and dense layers: the default
SNAPSHOT_STEPS = tuple(range(0, STEPS + 1, EVERY))
TRAIN_OUTPUT: list[str] = []


def make(logdir: Path, mnist_dir: Path) -> Path:
    """Trains the run in `logdir` with its default layouts and waits for them; returns its run directory."""
    TRAIN_OUTPUT[:] = [run([program("projector-train"), "--model", "tutorial", "--steps", str(STEPS), "--seed", "0",
                            "--run", RUN, "--eval-every", str(EVERY), "--log-every", str(EVERY),
                            "--snapshot-every", str(EVERY), "--probe-size", str(PROBE), "--images-every", "0",
                            "--logdir", str(logdir), "--data-dir", str(mnist_dir)])]
    run([program("projector-layouts"), "--logdir", str(logdir), "--run", RUN, "--wait"])
    return logdir / RUN


def copy_run(run_dir: Path, logdir: Path) -> Path:
    """A copy of the run in `logdir` (its configs still name the original's bundle, which stays in place)."""
    shutil.copytree(run_dir, logdir / run_dir.name)
    return logdir / run_dir.name
