"""End to end in a real browser: a short real `projector-train` run, opened in TensorBoard in headless Chromium.

What a person sees is checked through the page itself: the menus, the loaded points, the colours the scatter
plot draws, the sprite, the search box, the projection tabs, the SCALARS and IMAGES dashboards. Expected values
come from the real MNIST probe and from the files the run wrote, never from the server's answers.

Screenshots of every state go to `$PROJECTOR_SCREENSHOTS` (README's "What you will see" is made with
`PROJECTOR_SCREENSHOTS=docs/screenshots`), else to a temporary folder.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np
import pytest
from _browser import (
    VIEWPORT,
    ProjectorPage,
    dashboard_contents,
    index_images,
    index_of_colour,
    lattice,
)
from _programs import program, run
from _tensorboard_reader import Served
from _tensorboard_server import TensorBoardServer
from google.protobuf import text_format
from PIL import Image
from tensorboard.plugins.projector import projector_config_pb2

from projector_export import export_embeddings
from projector_export.config import config_path
from projector_export.error_metadata import COLUMNS, DYNAMICS_COLUMNS
from projector_export.metadata import ASSETS_DIRNAME
from projector_export.metadata_tsv import BLANK_VALUE
from projector_export.naming import CLASS_EMBEDDING_NAME, SEPARABILITY_TAG
from training.callbacks import LEARNING_RATE, TEST_ACCURACY, TEST_LOSS, TRAIN_ACCURACY, TRAIN_LOSS
from training.train import MODEL_FILENAME

pytestmark = [pytest.mark.browser, pytest.mark.integration]

RUN, EXPORTED_RUN = "tutorial-e2e", "exported-fc1"
STEPS, SNAPSHOT_EVERY, PROBE = 200, 100, 500
LAYERS = ("conv1", "conv2", "fc1", "logits")  # snapshotted: the `tutorial` model's convolution and dense layers
SNAPSHOT_STEPS = tuple(range(0, STEPS + 1, SNAPSHOT_EVERY))
TRAIN_ARGS = [
    "--model", "tutorial", "--steps", str(STEPS), "--seed", "0", "--run", RUN, "--eval-every", "100",
    "--log-every", "20", "--snapshot-every", str(SNAPSHOT_EVERY), "--layers", ",".join(LAYERS),
    "--probe-size", str(PROBE), "--images-every", "100",
    "--layouts", "off",  # the PROJECTOR as TensorBoard lays it out; test_layouts_browser.py clicks the bookmarks
]
EXPORT_LAYERS, EXPORT_PROBE = ("fc1",), 200
IMAGE_TAG_KINDS = ("filters/", "feature_maps/", "confusion_matrix", "misclassified", "grad_cam", "filter_patterns/")


@pytest.fixture(scope="module")
def logdir(mnist_dir, tmp_path_factory) -> Path:
    """One short real training with snapshots and images, and a second run exported after the fact."""
    logdir = tmp_path_factory.mktemp("browser-logs")
    run([program("projector-train"), *TRAIN_ARGS, "--logdir", str(logdir), "--data-dir", str(mnist_dir)])
    run([sys.executable, "-m", "training.export_model", "--logdir", str(logdir), "--run", EXPORTED_RUN,
          "--model", str(logdir / RUN / MODEL_FILENAME), "--layers", ",".join(EXPORT_LAYERS),
          "--probe-size", str(EXPORT_PROBE), "--data-dir", str(mnist_dir)])
    return logdir


@pytest.fixture(scope="module")
def board(logdir):
    with TensorBoardServer(logdir) as server:
        server.wait_for_plugins(("projector", "scalars", "images"))
        yield server


@pytest.fixture(scope="module")
def projector(browser, board):
    page = browser.new_page(viewport=VIEWPORT)
    yield ProjectorPage(page, board.url)
    page.close()


# ---- what the run wrote (read from the files, independently of the server) ----------------------------------
def _config(run_dir: Path) -> dict[str, projector_config_pb2.EmbeddingInfo]:
    config = text_format.Parse(Path(config_path(run_dir)).read_text(), projector_config_pb2.ProjectorConfig())
    return {embedding.tensor_name: embedding for embedding in config.embeddings}


def _metadata(run_dir: Path, embedding) -> dict[str, list[str]]:
    header, *rows = (run_dir / ASSETS_DIRNAME / embedding.metadata_path).read_text(encoding="utf-8").splitlines()
    cells = [row.split("\t") for row in rows]
    return {name: [row[i] for row in cells] for i, name in enumerate(header.split("\t"))}


def _summaries(run_dir: Path, plugin: str) -> dict[str, int]:
    """Tag -> number of logged steps, for the summaries of `plugin` in the run's event files."""
    return {tag: len(steps) for tag, steps in Served(run_dir.parent).steps(run_dir.name, plugin).items()}


def _name(layer: str, step: int) -> str:
    """The snapshot tensor's name, as the menu must list it: the step zero-padded to 6 digits."""
    return f"{layer}/step_{step:06d}"


def _last(layer: str) -> str:
    return _name(layer, STEPS)


def _page_errors(projector: ProjectorPage, mark: int) -> list[str]:
    """Console errors since `mark`, and the error dialogs and notices the PROJECTOR shows now."""
    return projector.log.errors_since(mark) + projector.shown_problems()


def _assert_no_page_errors(errors: list[str], projector: ProjectorPage, doing: str) -> None:
    assert not errors, f"{doing}: the page reported\n  " + "\n  ".join(errors) + f"\n{projector.log.report()}"


# ---- PROJECTOR ---------------------------------------------------------------------------------------------
def test_menus_list_both_runs_and_every_snapshot_tensor(projector, logdir, shots):
    layers = (*LAYERS, CLASS_EMBEDDING_NAME)
    expected = {_name(layer, step) for layer in layers for step in SNAPSHOT_STEPS}
    assert set(_config(logdir / RUN)) == expected  # the run wrote what its flags ask for
    assert sorted(projector.run_menu()) == sorted([RUN, EXPORTED_RUN]), projector.context()
    menu = projector.tensor_menu()
    assert sorted(menu) == sorted(expected), projector.context()
    projector.screenshot(shots / "projector-menus.png")

    projector.select_run(EXPORTED_RUN)
    assert sorted(projector.tensor_menu()) == sorted([*EXPORT_LAYERS, CLASS_EMBEDDING_NAME]), projector.context()
    loaded = projector.loaded()
    assert (loaded.tensor, loaded.points) == (EXPORT_LAYERS[0], EXPORT_PROBE), projector.context()
    projector.select_run(RUN)


def test_every_snapshot_loads_all_its_points_rows_aligned_with_thumbnails(projector, logdir, shots):
    config = _config(logdir / RUN)
    probe_tensors = sorted(name for name in config if not name.startswith(f"{CLASS_EMBEDDING_NAME}/"))
    mark = projector.log.mark()
    for name in [*probe_tensors, *sorted(set(config) - set(probe_tensors))]:
        rows, dimension = config[name].tensor_shape
        sprite = Image.open(logdir / RUN / ASSETS_DIRNAME / config[name].sprite.image_path).size
        loaded = projector.select_tensor(name)
        assert (loaded.tensor, loaded.points, loaded.dimension) == (name, rows, dimension), projector.context()
        assert loaded.status_text == f"Points: {rows} | Dimension: {dimension}"
        assert loaded.sprite_size == sprite and loaded.sprite_mode, f"{name}: sprite not shown\n{projector.context()}"
        if name in probe_tensors:
            assert loaded.metadata_columns == [*COLUMNS, *DYNAMICS_COLUMNS], projector.context()
            assert loaded.index_column == [str(i) for i in range(rows)], f"{name}: rows out of order"
        if name.startswith("fc1/"):  # README: watch the clusters form over the steps
            projector.color_by("label")
            projector.screenshot(shots / f"projector-{name.replace('/', '-')}.png")
    _assert_no_page_errors(_page_errors(projector, mark), projector, "loading every snapshot")


def test_colour_by_label_gives_ten_colours_one_per_digit(projector, logdir, mnist, shots):
    name = _last("fc1")
    projector.select_tensor(name)
    legend, by_colour = projector.color_by("label")
    labels = np.asarray(mnist.class_names)[mnist.test_labels[:PROBE]]
    counts = collections.Counter(labels.tolist())
    assert legend == dict(counts), projector.context()
    groups = sorted(sorted(indices) for indices in by_colour.values())
    assert len(by_colour) == 10
    assert groups == sorted(np.flatnonzero(labels == value).tolist() for value in counts), projector.context()
    projector.screenshot(shots / "projector-colour-by-label.png")


def test_search_label_highlights_exactly_that_digit(projector, mnist, shots):
    projector.select_tensor(_last("fc1"))
    digit = mnist.class_names[3]
    expected = np.flatnonzero(mnist.test_labels[:PROBE] == 3).tolist()
    found = projector.search("label", digit)
    assert found.message == f"{len(expected)} matches.", projector.context()
    assert found.selected == found.highlighted == expected, projector.context()
    projector.screenshot(shots / "projector-search-label.png")
    projector.clear_search()


def test_search_error_highlights_exactly_the_wrong_rows(projector, logdir, shots):
    name = _last("fc1")
    metadata = _metadata(logdir / RUN, _config(logdir / RUN)[name])
    pairs = zip(metadata["label"], metadata["prediction"], strict=True)
    wrong = [i for i, (label, prediction) in enumerate(pairs) if label != prediction]
    assert [i for i, error in enumerate(metadata["error"]) if error != BLANK_VALUE] == wrong
    confusion, _ = collections.Counter(metadata["error"][i] for i in wrong).most_common(1)[0]
    expected = [i for i in wrong if metadata["error"][i] == confusion]
    projector.select_tensor(name)
    projector.color_by("label")
    found = projector.search("error", confusion)
    assert found.message == f"{len(expected)} matches.", projector.context()
    assert found.selected == found.highlighted == expected, projector.context()
    projector.screenshot(shots / "projector-search-error.png")
    projector.clear_search()


# fc1 (128 wide) and logits (10 wide): the page spherizes tensors of 50 columns or more by itself; for a
# narrower one its t-SNE/UMAP neighbour search needs "Spherize data" ticked (tensorflow/tensorboard#5547),
# as README's guide tells users.
@pytest.mark.parametrize("layer", ["fc1", "logits"])
def test_pca_tsne_umap_switch_without_page_errors(projector, layer, shots):
    loaded = projector.select_tensor(_last(layer))
    if loaded.dimension < 50:
        projector.spherize()
    projector.color_by("label")
    errors = []
    for kind in ("tsne", "umap", "pca"):
        mark = projector.log.mark()
        projector.project(kind)
        projector.screenshot(shots / f"projector-{layer}-{kind}.png")
        projector.stop_tsne()
        errors += [f"{kind}: {error}" for error in _page_errors(projector, mark)]
        projector.dismiss_problems()
    _assert_no_page_errors(errors, projector, f"{_last(layer)}: switching to t-SNE, UMAP, PCA")


# ---- SCALARS and IMAGES ------------------------------------------------------------------------------------
def test_scalars_tab_shows_training_and_separability_curves(browser, board, logdir, shots):
    expected = _summaries(logdir / RUN, "scalars")
    wanted = {TRAIN_LOSS, TRAIN_ACCURACY, TEST_LOSS, TEST_ACCURACY, LEARNING_RATE}
    wanted |= {f"{SEPARABILITY_TAG}/{layer}" for layer in LAYERS}
    assert wanted <= set(expected), f"the run logged {sorted(expected)}"
    shown = dashboard_contents(browser, f"{board.url}/#scalars", len(expected), shots / "scalars.png")
    assert shown == expected  # every curve drawn, with every logged step


def test_images_tab_shows_every_image_tag(browser, board, logdir, shots):
    expected = _summaries(logdir / RUN, "images")
    for kind in IMAGE_TAG_KINDS:
        assert any(tag == kind or tag.startswith(kind) for tag in expected), f"no {kind} image in {sorted(expected)}"
    shown = dashboard_contents(browser, f"{board.url}/#images", len(expected), shots / "images.png")
    assert set(shown) == set(expected)  # every tag shows a loaded image


# ---- thumbnails as drawn ------------------------------------------------------------------------------------
# 500 = the README's probe pictures (23×22 cells in a near-square grid); 10 = a class embedding (4×3).
THUMBNAIL_RUN, THUMBNAIL_SIZES = "thumbnails", (500, 10)


@pytest.fixture(scope="module")
def thumbnails_projector(browser, tmp_path_factory):
    """A run with one tensor per size: points on a lattice (well apart once drawn), 8×8 px thumbnails."""
    logdir = tmp_path_factory.mktemp("thumbnail-logs")
    for n in THUMBNAIL_SIZES:
        export_embeddings(logdir, {f"n{n}": lattice(n)}, run=THUMBNAIL_RUN, images=index_images(n), reduce=None,
                          metadata={"index": np.arange(n), "label": [f"class {k % 3}" for k in range(n)]})
    with TensorBoardServer(logdir) as server:
        server.wait_for_plugins(("projector",))
        page = browser.new_page(viewport=VIEWPORT)
        yield ProjectorPage(page, server.url)
        page.close()


@pytest.mark.parametrize("n", THUMBNAIL_SIZES)
def test_every_point_is_drawn_with_its_own_thumbnail(thumbnails_projector, n, shots):
    projector = thumbnails_projector
    loaded = projector.select_tensor(f"n{n}")
    assert loaded.points == n and loaded.sprite_mode, projector.context()
    projector.show_2d()
    drawn = index_of_colour(projector.drawn_point_pixels())
    projector.screenshot(shots / f"thumbnails-{n}.png")
    wrong = {i: int(d) for i, d in enumerate(drawn) if d != i}
    assert not wrong, (f"{len(wrong)} of {n} points drawn with another thumbnail (point: thumbnail drawn, -1 "
                       f"empty): {dict(list(wrong.items())[:20])}\n{projector.context()}")


def test_label_by_and_search_by_start_on_the_label_column(thumbnails_projector):
    # TensorBoard starts both on the first column whose values are not all numbers ("Color by" always starts
    # on "No color map"): here `label`, as in an export whose class names are words.
    projector = thumbnails_projector
    projector.select_tensor(f"n{THUMBNAIL_SIZES[0]}")
    assert projector.start_menus() == {"label_by": "label", "search_by": "label", "color_by": "No color map"}
