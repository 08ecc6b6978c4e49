"""The layouts as a person sees them: a short real `projector-train` run, laid out, opened in TensorBoard's PROJECTOR
in headless Chromium; every bookmark of one layer's steps is clicked and the points drawn are read back.

Drawn positions follow the bookmark's coordinates (the page rescales each axis to the points' extent, so the
positions are a per-axis increasing map of the saved ones: Spearman rank correlation ≥ 0.99 per axis, on the canvas
for a 2-D state and in the scatter plot's world space for a 3-D one), the points are coloured by class, and the
page reports no error.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _browser import VIEWPORT, ProjectorPage, launch_chromium
from _projector_client import ProjectorClient
from _tensorboard_server import TensorBoardServer
from playwright.sync_api import sync_playwright

from projector_export.bookmarks import MARKER, decode_states, state_coordinates
from projector_export.run_layouts import compute_run_layouts
from projector_export.trajectories import build_trajectories

pytestmark = [pytest.mark.browser, pytest.mark.integration]

RUN, LAYER, STEPS, EVERY, PROBE = "layouts-e2e", "fc1", 100, 50, 500


def _program(name: str) -> str:
    """A console script of this install (beside the running Python), as a user runs it."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks = [np.argsort(np.argsort(v, kind="stable"), kind="stable").astype(float) for v in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


@pytest.fixture(scope="module")
def logdir(mnist_dir, tmp_path_factory):
    logdir = tmp_path_factory.mktemp("layouts-browser")
    train = [_program("projector-train"), "--model", "tutorial", "--steps", str(STEPS), "--seed", "0",
             "--run", RUN, "--snapshot-every", str(EVERY), "--layers", LAYER, "--probe-size", str(PROBE),
             "--images-every", "0", "--logdir", str(logdir), "--data-dir", str(mnist_dir)]
    done = subprocess.run(train, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    compute_run_layouts(logdir, RUN)
    assert build_trajectories(logdir, RUN) == {f"{LAYER}/trajectory": "written"}
    return logdir


@pytest.fixture(scope="module")
def projector(logdir):
    with TensorBoardServer(logdir) as server, sync_playwright() as playwright:
        server.wait_for_plugins(("projector",))
        browser = launch_chromium(playwright)
        try:
            yield ProjectorPage(browser.new_page(viewport=VIEWPORT), server.url)
        finally:
            browser.close()


@pytest.mark.parametrize("step", range(0, STEPS + 1, EVERY))
def test_each_bookmark_draws_its_saved_layout_in_class_colours(projector, logdir, step):
    name = f"{LAYER}/step_{step:06d}"
    served = ProjectorClient(str(logdir))
    states = decode_states(served.get("/bookmarks", run=RUN, name=name))
    labels = np.asarray(served.metadata_columns(RUN, name)["label"])
    mark = projector.log.mark()
    projector.select_tensor(name)
    assert projector.bookmark_labels() == [s["label"] for s in states]
    for i, state in enumerate(states):
        projector.click_bookmark(i)
        saved = state_coordinates(state)
        world, screen = projector.drawn_positions()
        drawn = screen * [1, -1] if saved.shape[1] == 2 else world  # canvas y grows downwards
        for axis in range(saved.shape[1]):
            rho = spearman(drawn[:, axis], saved[:, axis])
            assert rho >= 0.99, (state["label"], axis, rho)
        groups = projector.points_by_colour()
        assert len(groups) == len(set(labels)), state["label"]
        assert all(len(set(labels[rows])) == 1 for rows in groups.values()), state["label"]
        assert state[MARKER]["tensor"] == name and state["selectedColorOptionName"] == "label"
    problems = projector.log.errors_since(mark) + projector.shown_problems()
    assert not problems, f"{name}: the page reported {problems}\n{projector.log.report()}"


def test_the_trajectory_draws_every_sample_s_path_and_selects_each_step(projector, logdir):
    name = f"{LAYER}/trajectory"
    states = decode_states(ProjectorClient(str(logdir)).get("/bookmarks", run=RUN, name=name))
    mark = projector.log.mark()
    loaded = projector.select_tensor(name)
    steps = len(range(0, STEPS + 1, EVERY))
    assert loaded.points == PROBE * steps
    lengths = projector._eval("p => p.dataSet.sequences.map(s => s.pointIndices.length)")
    assert lengths == [steps] * PROBE  # one polyline per sample, through every step
    projector.click_bookmark(0)
    world, _ = projector.drawn_positions()
    saved = state_coordinates(states[0])
    assert min(spearman(world[:, axis], saved[:, axis]) for axis in range(3)) >= 0.99
    for j in range(steps):
        projector.click_bookmark(1 + j)
        assert projector._eval("p => p.selectedPointIndices.slice()") == list(range(j * PROBE, (j + 1) * PROBE))
        np.testing.assert_allclose(projector.drawn_positions()[0], world, atol=1e-4)  # the points stay put
    problems = projector.log.errors_since(mark) + projector.shown_problems()
    assert not problems, f"{name}: the page reported {problems}\n{projector.log.report()}"
