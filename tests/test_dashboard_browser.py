"""The layers dashboard end to end: a short real `projector-train` run with layouts, opened in TensorBoard in
headless Chromium, checked through what the page draws.

Expected positions come from the run's bookmark files (read here, independently of the plugin), the colours'
grouping from its metadata, the thumbnails from its sprite and the real MNIST probe. The animated GIF of the
dashboard playing the run goes to `$PROJECTOR_SCREENSHOTS/dashboard.gif` (README's is made with
`PROJECTOR_SCREENSHOTS=docs/screenshots`), else to a temporary folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from _browser import _FIND_PROJECTOR as FIND_PROJECTOR
from _browser import VIEWPORT
from _dashboard_page import (
    BACKGROUND_RGB,
    PAD,
    SELECTED_RGB,
    DashboardPage,
    box_of,
    pixel_of,
    screen_positions,
    uncovered,
)
from _laid_out_run import LAYERS, PROBE, RUN, SNAPSHOT_STEPS, STEPS, copy_run
from _layouts import read_bookmarks, write_layouts
from _tensorboard_reader import Served
from _tensorboard_server import TensorBoardServer
from google.protobuf import text_format
from PIL import Image
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

from projector_export import export_embeddings
from projector_export.config import config_path
from projector_export.dashboard.metadata import PLUGIN_NAME, TAB_NAME
from projector_export.error_metadata import CLASS_COLUMN
from projector_export.metadata import ASSETS_DIRNAME
from projector_export.naming import separability_tag, snapshot_name

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PLAIN_RUN = "no-layouts"
SIDE = 4  # px of a drawn point at 500 rows (docs/dashboard.md)
PROJECTOR_FRAME = "projector_binary.html"
GIF_FRAME_MS = 100
POLL_MS = 5000  # how often the page checks its run (static/index.js)


@pytest.fixture(scope="module")
def logdir(laid_out_run, tmp_path_factory) -> Path:
    """A copy of the session's laid-out run (these tests publish new layouts into it), and a run without layouts."""
    logdir = tmp_path_factory.mktemp("dashboard-logs")
    copy_run(laid_out_run, logdir)
    export_embeddings(logdir, {snapshot_name("fc1", 0): np.eye(12, 4)}, run=PLAIN_RUN, metadata=list("abcdefghijkl"))
    return logdir


@pytest.fixture(scope="module")
def board(logdir):
    with TensorBoardServer(logdir) as server:
        server.wait_for_plugins((PLUGIN_NAME,))
        yield server


@pytest.fixture(scope="module")
def dashboard(browser, board):
    page = browser.new_page(viewport=VIEWPORT)
    yield DashboardPage(page, board.url)
    page.close()


@pytest.fixture(autouse=True)
def no_page_errors(request):
    """Every test ends with no console error or uncaught exception on the dashboard's page."""
    yield
    if "dashboard" in request.fixturenames:
        page = request.getfixturevalue("dashboard")
        assert not page.log.errors, f"the page reported errors\n{page.log.report()}"


# ---- what the run holds (read from its files) --------------------------------------------------------------
class RunFiles:
    def __init__(self, run_dir: Path):
        config = text_format.Parse(Path(config_path(run_dir)).read_text(), ProjectorConfig())
        self.entries = {e.tensor_name: e for e in config.embeddings}
        self.assets = run_dir / ASSETS_DIRNAME

    def layout(self, layer: str, step: int, kind: str) -> np.ndarray:
        return read_bookmarks(self.assets / self.entries[snapshot_name(layer, step)].bookmarks_path)[kind]

    def box(self, layer: str, kind: str):
        return box_of([self.layout(layer, step, kind) for step in SNAPSHOT_STEPS])

    def column(self, layer: str, step: int, name: str) -> np.ndarray:
        header, *rows = (self.assets / self.entries[snapshot_name(layer, step)].metadata_path).read_text().splitlines()
        return np.array([row.split("\t")[header.split("\t").index(name)] for row in rows])

    def sprite_cell(self, layer: str, step: int, index: int) -> np.ndarray:
        entry = self.entries[snapshot_name(layer, step)]
        sprite = np.asarray(Image.open(self.assets / entry.sprite.image_path).convert("RGB"))
        w, h = entry.sprite.single_image_dim
        per_row = sprite.shape[1] // w
        return sprite[index // per_row * h:(index // per_row + 1) * h, index % per_row * w:(index % per_row + 1) * w]


@pytest.fixture(scope="module")
def files(logdir) -> RunFiles:
    return RunFiles(logdir / RUN)


def _centres(dashboard, files, layer, step) -> np.ndarray:
    kind = dashboard.value("select.layout")
    size = dashboard.canvas_size(layer)
    return pixel_of(screen_positions(files.layout(layer, step, kind), files.box(layer, kind), size))


def _assert_points_drawn_where_the_layout_says(dashboard, files, layer, step, column=CLASS_COLUMN):
    assert dashboard.shown_tensor(layer) == snapshot_name(layer, step), dashboard.context()
    centres = _centres(dashboard, files, layer, step)
    shot = dashboard.pixels(layer)
    labels = files.column(layer, step, column)
    legend = dashboard.legend()
    assert sorted(legend) == sorted(set(labels)) and len(set(legend.values())) == len(legend), legend
    free = uncovered(centres, SIDE)  # points no later point is drawn over
    assert free.any(), f"{layer}: every point is drawn over by another one"
    drawn = shot[centres[:, 1], centres[:, 0]]
    wrong = [i for i in np.flatnonzero(free) if tuple(drawn[i]) != legend[labels[i]]]
    assert not wrong, f"{layer}: points drawn in another colour than their {column}'s: {wrong[:10]}"
    # Nothing drawn elsewhere: the page's non-background pixels are the squares at the expected centres.
    expected = np.zeros(shot.shape[:2], dtype=bool)
    for x, y in centres - SIDE // 2:
        expected[max(y, 0):y + SIDE, max(x, 0):x + SIDE] = True
    actual = np.any(shot != BACKGROUND_RGB, axis=2)
    assert np.mean(expected != actual) < 0.002, f"{layer}: {np.sum(expected != actual)} pixels differ"


def _isolated_point(centres: np.ndarray, margin: int = 4) -> int:
    """A row whose point lies at least `margin` px from every other one (the mouse on it picks it, not a
    neighbour) and away from the panel's edges."""
    distance = np.abs(centres[:, None, :] - centres[None, :, :]).max(axis=2)
    np.fill_diagonal(distance, 10**6)
    lonely = (distance.min(axis=1) >= margin) & np.all(centres > PAD + 20, axis=1)
    assert lonely.any(), "no isolated point to hover"
    return int(np.flatnonzero(lonely)[0])


# ---- tests ---------------------------------------------------------------------------------------------------
def test_the_tab_is_listed_and_shows_one_panel_per_layer(board, dashboard, files, logdir, shots):
    listing = board.get_json("/data/plugins_listing")[PLUGIN_NAME]
    assert listing["enabled"] and listing["tab_name"] == TAB_NAME
    assert dashboard.page.get_by_text(TAB_NAME, exact=True).first.is_visible()
    layers = dashboard.frame.locator("canvas[data-layer]").evaluate_all("cs => cs.map(c => c.dataset.layer)")
    assert layers == list(LAYERS), dashboard.context()
    assert dashboard.step() == STEPS and dashboard.value("select.color-by") == CLASS_COLUMN
    assert dashboard.value("select.layout") == "umap"  # the non-linear layout first
    scalars = Served(logdir).scalars(RUN)
    for layer in LAYERS:
        corner = dashboard.frame.locator(f".panel:has(canvas[data-layer='{layer}']) .separability").text_content()
        assert corner == f"separability {scalars[separability_tag(layer)][STEPS]:.3f}"
    dashboard.page.screenshot(path=str(shots / "dashboard.png"))


@pytest.mark.parametrize("layer", LAYERS)
def test_points_are_drawn_where_the_layout_puts_them_in_class_colours(dashboard, files, layer):
    dashboard.press_on_slider("End")
    _assert_points_drawn_where_the_layout_says(dashboard, files, layer, STEPS)


def test_any_metadata_column_colours_the_points(dashboard, files):
    dashboard.press_on_slider("End")
    dashboard.frame.locator("select.color-by").select_option("prediction")
    try:
        predictions = files.column("fc1", STEPS, "prediction")
        assert {k: int(v) for k, v in dashboard.legend_counts().items()} == {
            value: int((predictions == value).sum()) for value in set(predictions)}
        _assert_points_drawn_where_the_layout_says(dashboard, files, "fc1", STEPS, column="prediction")
    finally:
        dashboard.frame.locator("select.color-by").select_option(CLASS_COLUMN)


def test_the_step_control_moves_every_panel_to_that_steps_layout(dashboard, files):
    assert dashboard.press_on_slider("Home") == 0
    for layer in LAYERS:
        _assert_points_drawn_where_the_layout_says(dashboard, files, layer, 0)
    assert dashboard.press_on_slider("ArrowRight") == SNAPSHOT_STEPS[1]
    _assert_points_drawn_where_the_layout_says(dashboard, files, "fc1", SNAPSHOT_STEPS[1])


def test_hovering_a_point_shows_its_digit_and_metadata_row(dashboard, files, mnist):
    dashboard.press_on_slider("End")
    centres = _centres(dashboard, files, "fc1", STEPS)
    i = _isolated_point(centres)
    card = dashboard.hover("fc1", centres[i])
    assert card["title"] == f"row {i}", dashboard.context()
    np.testing.assert_array_equal(card["thumbnail"], files.sprite_cell("fc1", STEPS, i))
    probe = mnist.test_images[:PROBE].reshape(PROBE, -1).astype(float)
    shown = card["thumbnail"].mean(axis=2).ravel()
    correlation = [abs(np.corrcoef(shown, image)[0, 1]) for image in probe]
    assert int(np.argmax(correlation)) == i and correlation[i] > 0.99
    assert card["row"]["label"] == files.column("fc1", STEPS, "label")[i]
    assert card["row"]["prediction"] == files.column("fc1", STEPS, "prediction")[i]


def test_a_search_highlights_its_matches_in_every_panel_and_counts_them(dashboard, files, shots):
    dashboard.press_on_slider("End")
    labels = files.column("fc1", STEPS, "label")
    matches = labels == "3"
    assert dashboard.search("label", "^3$") == f"{matches.sum()} matches."
    dashboard.page.mouse.move(0, 0)
    dashboard.page.screenshot(path=str(shots / "dashboard-search.png"))
    for layer in LAYERS:
        centres = _centres(dashboard, files, layer, STEPS)
        shot = dashboard.pixels(layer)
        drawn = shot[centres[:, 1], centres[:, 0]]
        assert np.all(drawn[matches] == SELECTED_RGB), f"{layer}: a match not highlighted"
        hidden = uncovered(np.concatenate([centres[~matches], centres[matches]]), SIDE + 2)[:(~matches).sum()]
        assert not np.any(np.all(drawn[~matches][hidden] == SELECTED_RGB, axis=1)), f"{layer}: a non-match highlighted"
    assert dashboard.search("label", "3(") == "Invalid regular expression."
    assert not np.any(np.all(dashboard.pixels("fc1") == SELECTED_RGB, axis=2))  # nothing highlighted
    assert dashboard.search("label", "") == ""


def _dark_near(shot: np.ndarray, point, reach: int) -> bool:
    """Whether a pixel within `reach` px of `point` is dark (every channel < 100): the path's ink, which no class
    colour is."""
    x, y = pixel_of(np.asarray(point))
    return bool((shot[max(y - reach, 0):y + reach + 1, max(x - reach, 0):x + reach + 1].max(axis=2) < 100).any())


def test_clicking_a_point_draws_its_path_over_the_steps_in_every_panel(dashboard, files):
    dashboard.press_on_slider("End")
    centres = _centres(dashboard, files, "fc1", STEPS)
    i = _isolated_point(centres)
    kind = dashboard.value("select.layout")
    paths = {layer: np.concatenate([screen_positions(files.layout(layer, s, kind)[i:i + 1], files.box(layer, kind),
                                                     dashboard.canvas_size(layer)) for s in SNAPSHOT_STEPS])
             for layer in LAYERS}
    before = {layer: dashboard.pixels(layer) for layer in LAYERS}
    assert not any(_dark_near(before[layer], p, 3) for layer in LAYERS for p in paths[layer])
    assert f"row {i} " in dashboard.click("fc1", centres[i])
    for layer, path in paths.items():
        shot = dashboard.pixels(layer)
        assert all(_dark_near(shot, p, 3) for p in path), f"{layer}: a step of example {i}'s path is not marked"
        longest = int(np.argmax(np.linalg.norm(np.diff(path, axis=0), axis=1)))
        assert _dark_near(shot, (path[longest] + path[longest + 1]) / 2, 1), f"{layer}: no line between steps"
    assert dashboard.click("fc1", (2, 2)) == ""  # nothing there: the selection is cleared


def test_play_animates_the_steps_and_makes_the_readme_gif(dashboard, shots):
    dashboard.press_on_slider("Home")
    frames = dashboard.frames_of_play("body", GIF_FRAME_MS)  # controls, legend and panels
    assert dashboard.step() == STEPS and {step for step, _ in frames} == set(SNAPSHOT_STEPS)
    distinct = {image.tobytes() for _, image in frames}
    assert len(distinct) >= 4 * (len(SNAPSHOT_STEPS) - 1), f"{len(distinct)} distinct frames of {len(frames)}"
    small = [image.resize((image.width // 2, image.height // 2), Image.LANCZOS) for _, image in frames]
    small[0].save(shots / "dashboard.gif", save_all=True, append_images=small[1:] + [small[-1]] * 10,
                  duration=GIF_FRAME_MS, loop=0, optimize=True)


def test_a_run_without_layouts_shows_how_to_compute_them(dashboard, logdir):
    assert dashboard.select_run(PLAIN_RUN) == "hint"
    hint = dashboard.text(".status")
    assert "have none yet" in hint and f"projector-layouts --logdir {logdir} --run {PLAIN_RUN}" in hint
    assert dashboard.frame.locator("canvas[data-layer]").count() == 0
    assert dashboard.select_run(RUN) == "ready"


def test_a_tensor_whose_layouts_change_while_shown_is_redrawn(dashboard, files, logdir):
    dashboard.press_on_slider("End")
    before = dashboard.frame.evaluate("() => document.body.dataset.generation")
    name = snapshot_name("fc1", STEPS)
    write_layouts(logdir / RUN, {name: {"pca": files.layout("fc1", STEPS, "pca"),
                                        "umap": files.layout("fc1", STEPS, "umap") * [-1, 1]}})
    dashboard.page.clock.fast_forward(POLL_MS)  # the page's next check of its run, now
    dashboard.frame.wait_for_function("g => document.body.dataset.generation !== g", arg=before, timeout=30_000)
    dashboard.settled()
    changed = RunFiles(logdir / RUN)
    assert not np.array_equal(changed.layout("fc1", STEPS, "umap"), files.layout("fc1", STEPS, "umap"))
    _assert_points_drawn_where_the_layout_says(dashboard, changed, "fc1", STEPS)


def test_open_in_the_projector_switches_tab_and_shows_that_tensor(browser, board):
    page = browser.new_page(viewport=VIEWPORT)
    try:
        dashboard = DashboardPage(page, board.url)
        name = dashboard.shown_tensor("fc1")
        button = dashboard.frame.locator(".panel:has(canvas[data-layer='fc1']) button.open")
        assert button.get_attribute("title") == f"Open {name} in the PROJECTOR"
        button.click()
        page.wait_for_url("**/#projector")
        deadline = time.monotonic() + 90
        frame = None
        while frame is None and time.monotonic() < deadline:
            frame = next((f for f in page.frames if f.url.endswith(PROJECTOR_FRAME)), None)
            page.wait_for_timeout(200)
        assert frame is not None, dashboard.context()
        frame.wait_for_function(f"""([name, rows]) => {{ const p = ({FIND_PROJECTOR})();
            return p && p.dataPanel.selectedTensor === name && p.dataSet && p.dataSet.points.length === rows; }}""",
                                arg=[name, PROBE], timeout=90_000)
        assert not dashboard.log.errors, dashboard.log.report()
    finally:
        page.close()
