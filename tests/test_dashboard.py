"""The layers dashboard's routes, served through TensorBoard's own plugin machinery (a `TBContext` over a real
data provider, the plugin's apps behind TensorBoard's WSGI router), checked against the files on disk."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from _layouts import read_bookmarks, write_layouts
from google.protobuf import text_format
from tensorboard import default
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig
from werkzeug import test as werkzeug_test
from werkzeug import wrappers

from projector_export import export_embeddings
from projector_export.config import config_path
from projector_export.dashboard import metadata as dashboard_metadata
from projector_export.dashboard import runs as dashboard_runs
from projector_export.dashboard.plugin import LayersPlugin
from projector_export.metadata import ASSETS_DIRNAME
from projector_export.naming import CLASS_EMBEDDING_NAME, separability_tag, snapshot_name

ROUTE = f"/data/plugin/{dashboard_metadata.PLUGIN_NAME}"
LAYERS, STEPS, ROWS = ("conv", "dense"), (0, 10, 20), 30
SEPARABILITY = {(layer, step): 0.5 + 0.01 * step + 0.1 * k for k, layer in enumerate(LAYERS) for step in STEPS}


def _layouts(seed: int) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {snapshot_name(layer, step): {"pca": rng.normal(size=(ROWS, 3)), "umap": rng.normal(size=(ROWS, 2))}
            for layer in LAYERS for step in STEPS}


def _export(logdir: Path, run: str) -> None:
    """Snapshots of two layers at three steps (and a class embedding), sharing one sprite, metadata per step."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(ROWS, 6, 6), dtype=np.uint8)
    for step in STEPS:
        tensors = {snapshot_name(layer, step): rng.normal(size=(ROWS, 5)) for layer in LAYERS}
        export_embeddings(logdir, tensors, run=run, images=images, reduce=None,
                          metadata={"index": np.arange(ROWS), "label": [f"c{i % 3}" for i in range(ROWS)],
                                    "step": [step] * ROWS})
        export_embeddings(logdir, {snapshot_name(CLASS_EMBEDDING_NAME, step): rng.normal(size=(3, 5))}, run=run)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    logdir = tmp_path_factory.mktemp("dashboard-logs")
    _export(logdir, "r")
    write_layouts(logdir / "r", _layouts(1))
    with tf.summary.create_file_writer(str(logdir / "r")).as_default():
        for (layer, step), value in SEPARABILITY.items():
            tf.summary.scalar(separability_tag(layer), value, step=step)
    _export(logdir, "plain")
    return logdir


class Client:
    """The plugin over `logdir` as TensorBoard serves it: `get(route, **params)` -> (status, body)."""

    def __init__(self, logdir: Path):
        multiplexer = plugin_event_multiplexer.EventMultiplexer()
        multiplexer.AddRunsFromDirectory(str(logdir))
        multiplexer.Reload()
        provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
        context = base_plugin.TBContext(logdir=str(logdir), data_provider=provider, multiplexer=multiplexer)
        self.plugin = LayersPlugin(context)
        self.client = werkzeug_test.Client(application.TensorBoardWSGI([self.plugin], data_provider=provider),
                                           wrappers.Response)

    def get(self, route: str, **params):
        response = self.client.get(f"{ROUTE}{route}?{urllib.parse.urlencode(params)}")
        return response.status_code, response

    def json(self, route: str, **params):
        status, response = self.get(route, **params)
        assert status == 200, response.get_data(as_text=True)
        return json.loads(response.get_data())

    def coordinates(self, run: str, tensor: str, layout: str, dims: int) -> np.ndarray:
        status, response = self.get("/coordinates", run=run, tensor=tensor, layout=layout)
        assert status == 200, response.get_data(as_text=True)
        assert response.mimetype == "application/octet-stream"
        return np.frombuffer(response.get_data(), dtype=np.float32).reshape(-1, dims)


@pytest.fixture(scope="module")
def client(logdir) -> Client:
    return Client(logdir)


def _entries(run_dir: Path) -> dict[str, object]:
    config = text_format.Parse(Path(config_path(run_dir)).read_text(), ProjectorConfig())
    return {e.tensor_name: e for e in config.embeddings}


def test_tensorboard_finds_the_plugin_and_its_page(client):
    assert LayersPlugin in default.get_dynamic_plugins()  # the `tensorboard_plugins` entry point of setup.cfg
    assert client.plugin.frontend_metadata().es_module_path == dashboard_metadata.ENTRY_MODULE
    for name in ("index.js", "model.js", "views.js", "projector_link.js", "style.css"):
        status, response = client.get(f"/static/{name}")
        assert status == 200 and response.mimetype in ("text/javascript", "text/css"), name
    for bad in ("../plugin.py", "%2e%2e/plugin.py", "nope.js", "index.js/../../metadata.py"):
        assert client.get(f"/static/{bad}")[0] == 404, bad


def test_the_tab_is_enabled_once_a_run_has_layouts(client, tmp_path):
    deadline = time.monotonic() + 30
    while not client.plugin.is_active() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.plugin.is_active()
    _export(tmp_path, "plain")
    without = Client(tmp_path).plugin
    without.is_active()
    without._checking.join(30)
    assert not without.is_active()


def test_runs_are_listed_with_whether_they_have_layouts(client):
    assert client.json("/runs") == [{"run": "plain", "layouts": False, "tensors": 6},
                                    {"run": "r", "layouts": True, "tensors": 6}]


def test_a_run_lists_its_layers_steps_and_separability(client, logdir):
    run = client.json("/run", run="r")
    assert [layer["name"] for layer in run["layers"]] == list(LAYERS)  # no class embedding
    for layer in run["layers"]:
        assert layer["tensors"] == {str(s): snapshot_name(layer["name"], s) for s in STEPS}
    assert run["separability"] == {layer: [[s, pytest.approx(SEPARABILITY[layer, s])] for s in STEPS]
                                   for layer in LAYERS}
    entries = _entries(logdir / "r")
    for name, tensor in run["tensors"].items():
        entry = entries[name]
        assert (tensor["rows"], tensor["metadata"], tensor["sprite"], tensor["bookmarks"]) == (
            ROWS, entry.metadata_path, entry.sprite.image_path, entry.bookmarks_path)
        assert tensor["spriteCell"] == list(entry.sprite.single_image_dim)
    assert run["hint"] is None and run["pending"] is None and run["problems"] == []
    plain = client.json("/run", run="plain")  # what the layouts' status says, and the command that computes them
    assert "have none yet" in plain["hint"] and "projector-layouts --logdir" in plain["hint"]
    assert "--run plain" in plain["hint"]


def test_a_run_partly_laid_out_says_what_is_left(tmp_path):
    _export(tmp_path, "r")
    write_layouts(tmp_path / "r", {name: kinds for name, kinds in _layouts(5).items() if name.startswith("conv/")})
    run = Client(tmp_path).json("/run", run="r")
    assert run["hint"] is None and "6 of 9 tensors" in run["pending"] and "dense/step_000000" in run["pending"]
    assert {name for name, t in run["tensors"].items() if t["bookmarks"]} == {snapshot_name("conv", s) for s in STEPS}


def test_coordinates_are_the_bookmarks_values_as_float32(client, logdir):
    entries = _entries(logdir / "r")
    for name in client.json("/run", run="r")["tensors"]:
        saved = read_bookmarks(logdir / "r" / ASSETS_DIRNAME / entries[name].bookmarks_path)
        listed = client.json("/layouts", run="r", tensor=name)
        assert [(x["layout"], x["dims"], x["rows"], x["colorBy"]) for x in listed] == [
            ("pca", 3, ROWS, "label"), ("umap", 2, ROWS, "label")]
        for kind, expected in saved.items():
            np.testing.assert_array_equal(client.coordinates("r", name, kind, expected.shape[1]), expected)


def test_metadata_and_sprite_are_the_tensors_own_rows(client, logdir):
    entries = _entries(logdir / "r")
    assets = logdir / "r" / ASSETS_DIRNAME
    for step in STEPS:
        name = snapshot_name("dense", step)
        status, response = client.get("/metadata", run="r", tensor=name)
        text = response.get_data(as_text=True)
        assert status == 200 and text == (assets / entries[name].metadata_path).read_text()
        header, *rows = text.splitlines()
        assert header.split("\t") == ["index", "label", "step"]
        assert [row.split("\t") for row in rows] == [[str(i), f"c{i % 3}", str(step)] for i in range(ROWS)]
        status, response = client.get("/sprite", run="r", tensor=name)
        assert status == 200 and response.get_data() == (assets / entries[name].sprite.image_path).read_bytes()


@pytest.mark.parametrize("route, params, says", [
    ("/run", {"run": "missing"}, "no run 'missing'"),
    ("/run", {}, "no run None"),
    ("/run", {"run": "."}, "run '.' has no layer snapshots"),
    ("/layouts", {"run": "r", "tensor": "dense/step_000099"}, "no snapshot tensor 'dense/step_000099'"),
    ("/layouts", {"run": "r", "tensor": snapshot_name(CLASS_EMBEDDING_NAME, 0)}, "no snapshot tensor"),
    ("/coordinates", {"run": "r", "tensor": "dense/step_000000", "layout": "tsne"}, "no 'tsne' layout"),
    ("/coordinates", {"run": "plain", "tensor": "dense/step_000000", "layout": "pca"}, "no 'pca' layout"),
    ("/metadata", {"run": "../r", "tensor": "dense/step_000000"}, "no run '../r'"),
    ("/sprite", {"run": "r"}, "no snapshot tensor None"),
])
def test_a_missing_run_tensor_or_layout_is_a_404_with_a_message(client, route, params, says):
    status, response = client.get(route, **params)
    assert status == 404 and says in response.get_data(as_text=True)


def test_an_unreadable_bookmarks_file_is_a_404_naming_it(tmp_path):
    _export(tmp_path, "r")
    paths = write_layouts(tmp_path / "r", _layouts(2))
    broken = paths[snapshot_name("conv", 10)]
    Path(broken).write_text('[{"projectorExport": {"format": 1, "key": "pca", "dims": 2, "rows": 5}, "projections"')
    status, response = Client(tmp_path).get("/layouts", run="r", tensor=snapshot_name("conv", 10))
    assert status == 404 and os.path.basename(broken) in response.get_data(as_text=True)
    os.unlink(broken)
    status, response = Client(tmp_path).get("/coordinates", run="r", tensor=snapshot_name("conv", 10), layout="pca")
    assert status == 404 and "No such file" in response.get_data(as_text=True)


def test_layouts_are_cached_until_the_run_names_new_ones(tmp_path, monkeypatch):
    _export(tmp_path, "r")
    write_layouts(tmp_path / "r", _layouts(3))
    reads = []
    original = dashboard_runs.read_layouts
    monkeypatch.setattr(dashboard_runs, "read_layouts", lambda path: reads.append(path) or original(path))
    client, name = Client(tmp_path), snapshot_name("dense", 20)
    first = client.coordinates("r", name, "umap", 2)
    assert np.array_equal(client.coordinates("r", name, "umap", 2), first) and len(reads) == 1
    new = _layouts(4)
    write_layouts(tmp_path / "r", new)
    np.testing.assert_array_equal(client.coordinates("r", name, "umap", 2), np.round(new[name]["umap"], 4)
                                  .astype(np.float32))
    assert len(reads) == 2


def test_a_moved_logdir_is_read_through_its_portable_config(tmp_path, logdir, client):
    name, moved = snapshot_name("conv", 10), tmp_path / "laptop"
    expected = client.coordinates("r", name, "umap", 2)
    shutil.copytree(logdir, moved)
    os.rename(logdir, tmp_path / "gone")  # the plugin-assets configs' absolute bundle paths are stale now
    try:
        served = Client(moved)
        assert served.json("/run", run="r")["tensors"][name]["bookmarks"]
        np.testing.assert_array_equal(served.coordinates("r", name, "umap", 2), expected)
        assert served.get("/metadata", run="r", tensor=name)[0] == 200
    finally:
        os.rename(tmp_path / "gone", logdir)


def test_a_run_whose_config_is_not_a_projector_config_is_a_404_naming_the_problem(tmp_path):
    _export(tmp_path, "r")
    _export(tmp_path, "broken")
    Path(config_path(tmp_path / "broken")).write_text("embeddings { tensor_name: ")
    client = Client(tmp_path)
    assert [run["run"] for run in client.json("/runs")] == ["r"]
    status, response = client.get("/run", run="broken")
    assert status == 404 and "is not a valid ProjectorConfig" in response.get_data(as_text=True)
