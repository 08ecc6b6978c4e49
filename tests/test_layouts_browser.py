"""The layouts as a person sees them: the session's short real `projector-train` run (`_laid_out_run`: laid out by
its own layout worker, as by default), opened in TensorBoard's PROJECTOR in headless Chromium; every bookmark of
one layer's steps is clicked and the points drawn are read back.

Label by and search By start on `class` by TensorBoard's own rule (the first non-numeric column). Drawn positions
follow the bookmark's coordinates (the page rescales each axis to the points' extent, so the positions are a
per-axis increasing map of the saved ones: Spearman rank correlation ≥ 0.99 per axis, on the canvas for a 2-D state
and in the scatter plot's world space for a 3-D one), the points are coloured by class, and the page reports no
error. README's GIF of the layer's steps under one bookmark goes to `$PROJECTOR_SCREENSHOTS/layouts-fc1.gif`
(README's is made with `PROJECTOR_SCREENSHOTS=docs/screenshots`), else to a temporary folder.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from _browser import VIEWPORT, ProjectorPage, launch_chromium
from _laid_out_run import PROBE, RUN, SNAPSHOT_STEPS, copy_run
from _projector_client import ProjectorClient
from _tensorboard_server import TensorBoardServer
from PIL import Image
from playwright.sync_api import sync_playwright

from projector_export.bookmarks import MARKER, decode_states, state_coordinates
from projector_export.error_metadata import CLASS_COLUMN

pytestmark = [pytest.mark.browser, pytest.mark.integration]

LAYER = "fc1"
GIF_FRAME_MS = 900


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks = [np.argsort(np.argsort(v, kind="stable"), kind="stable").astype(float) for v in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


@pytest.fixture(scope="module")
def logdir(laid_out_run, tmp_path_factory):
    """A copy of the session's laid-out run, alone in its log dir."""
    logdir = tmp_path_factory.mktemp("layouts-browser")
    copy_run(laid_out_run, logdir)
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


@pytest.mark.parametrize("step", SNAPSHOT_STEPS)
def test_each_bookmark_draws_its_saved_layout_in_class_colours(projector, logdir, step):
    name = f"{LAYER}/step_{step:06d}"
    served = ProjectorClient(str(logdir))
    states = decode_states(served.get("/bookmarks", run=RUN, name=name))
    labels = np.asarray(served.metadata_columns(RUN, name)[CLASS_COLUMN])
    mark = projector.log.mark()
    projector.select_tensor(name)
    menus = projector.start_menus()  # TensorBoard's own choice, before (or after) any bookmark
    assert menus["label_by"] == menus["search_by"] == CLASS_COLUMN, menus
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
        assert state[MARKER]["tensor"] == name and state["selectedColorOptionName"] == CLASS_COLUMN
    problems = projector.log.errors_since(mark) + projector.shown_problems()
    assert not problems, f"{name}: the page reported {problems}\n{projector.log.report()}"


def test_the_trajectory_draws_every_sample_s_path_and_selects_each_step(projector, logdir):
    name = f"{LAYER}/trajectory"
    states = decode_states(ProjectorClient(str(logdir)).get("/bookmarks", run=RUN, name=name))
    mark = projector.log.mark()
    loaded = projector.select_tensor(name)
    steps = len(SNAPSHOT_STEPS)
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


def test_one_bookmark_over_the_steps_makes_the_readme_gif(projector, logdir, shots):
    """The layer's UMAP bookmark clicked at each step, in order: the README's GIF of clusters forming."""
    served = ProjectorClient(str(logdir))
    frames = []
    for step in SNAPSHOT_STEPS:
        name = f"{LAYER}/step_{step:06d}"
        states = decode_states(served.get("/bookmarks", run=RUN, name=name))
        projector.select_tensor(name)
        projector.bookmark_labels()
        projector.click_bookmark([s[MARKER]["layout"] for s in states].index("umap"))
        projector.page.mouse.move(0, 0)  # no hover highlight on a point
        frames.append(Image.open(io.BytesIO(projector.page.screenshot())).convert("RGB"))
    assert len({frame.tobytes() for frame in frames}) == len(SNAPSHOT_STEPS)  # each step draws its own layout
    small = [frame.resize((frame.width // 2, frame.height // 2), Image.LANCZOS) for frame in frames]
    small[0].save(shots / f"layouts-{LAYER}.gif", save_all=True, append_images=small[1:], duration=GIF_FRAME_MS,
                  loop=0, optimize=True)
