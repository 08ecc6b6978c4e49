"""Bookmarks published into a run: served by TensorBoard's projector, a new generation of hard links, atomic under
polling readers and kills, dropped when their tensor is exported again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import pytest
from _consistency import check_answers, export_arguments, rows_of
from _projector_client import ProjectorClient
from _tensorboard_server import TensorBoardServer

from projector_export import export_embeddings
from projector_export.bookmarks import MARKER, decode_states, encode_states, make_states, tensor_digest
from projector_export.exporter import publish_bookmarks
from projector_export.kill_points import ENV_VAR, KILL_POINTS
from projector_export.layouts import compute_layouts
from projector_export.metadata import ASSETS_DIRNAME, CONFIG_FILENAME

# The points of the write path a publication passes (it writes no tensor and no event file).
PUBLICATION_POINTS = tuple(p for p in KILL_POINTS if p not in ("bundle-staged", "events-written"))


def bookmarks_of(name: str, rows) -> bytes:
    """A PCA bookmark of tensor `name` whose rows are `rows`."""
    pca, layouts = compute_layouts(rows, method=None)
    return encode_states(make_states(name, "t", None, layouts, pca=pca, tensor_shape=rows.shape, class_column="label"))


def publish_for(logdir, i: int, run: str = "r", *, check_rows: bool = True):
    """Publishes a bookmark of export i's tensor (`check_rows`: only if its rows are still those of export i)."""
    rows = export_arguments(i)["embeddings"][f"t/{i:06d}"]
    name = f"t/{i:06d}"
    sources = {name: tensor_digest(rows)} if check_rows else None
    return publish_bookmarks(logdir, {name: bookmarks_of(name, rows)}, run=run, sources=sources)


def test_bookmarks_are_served_as_a_new_generation_without_rewriting_a_tensor(tmp_path):
    logdir = str(tmp_path / "logs")
    first = export_embeddings(logdir, run="r", **export_arguments(1))
    export_embeddings(logdir, run="r", **export_arguments(2))
    served = ProjectorClient(logdir)  # a TensorBoard that has read the run before
    assert "bookmarksPath" not in served.embedding_info("r", "t/000001")

    result = publish_for(logdir, 1)
    assert result.skipped == {} and list(result.published) == ["t/000001"]
    entry = served.embedding_info("r", "t/000001")
    assert entry["bookmarksPath"] == os.path.basename(result.published["t/000001"])
    (state,) = json.loads(served.get("/bookmarks", run="r", name="t/000001"))
    assert state[MARKER]["tensor"] == "t/000001" and len(state["projections"]) == rows_of(1)
    assert "bookmarksPath" not in served.embedding_info("r", "t/000002")
    # The new bundle's data shards are the old ones (hard links): no tensor was rewritten.
    assets = tmp_path / "logs" / "r" / ASSETS_DIRNAME
    shards = {os.stat(assets / p).st_ino for p in os.listdir(assets) if ".data-" in p}
    assert {os.stat(p).st_ino for p in [first.checkpoint_prefix + ".data-00000-of-00001"]} <= shards
    assert result.checkpoint_prefix.endswith("embeddings-000003")
    # The portable copy names the file relative to the run: a copied log dir serves the bookmarks too.
    portable = (tmp_path / "logs" / "r" / CONFIG_FILENAME).read_text()
    assert f'bookmarks_path: "{ASSETS_DIRNAME}/{entry["bookmarksPath"]}"' in portable
    shutil.copytree(tmp_path / "logs", tmp_path / "copy")
    shutil.rmtree(tmp_path / "logs")
    copied = ProjectorClient(str(tmp_path / "copy"))
    assert decode_states(copied.get("/bookmarks", run="r", name="t/000001"))[0][MARKER]["rows"] == rows_of(1)


def test_exporting_a_tensor_again_drops_its_bookmarks_and_the_file_goes(tmp_path):
    export_embeddings(tmp_path, run="r", **export_arguments(1))
    path = publish_for(tmp_path, 1).published["t/000001"]
    export_embeddings(tmp_path, run="r", **export_arguments(1))  # same name and shape: replaced
    assert "bookmarksPath" not in ProjectorClient(str(tmp_path)).embedding_info("r", "t/000001")
    assert os.path.exists(path)  # kept one export longer, for a reader of the previous config
    export_embeddings(tmp_path, run="r", **export_arguments(2))
    assert not os.path.exists(path)


def test_bookmarks_of_rows_exported_again_meanwhile_are_not_published(tmp_path):
    export_embeddings(tmp_path, run="r", **export_arguments(1))
    old_rows = export_arguments(1)["embeddings"]["t/000001"]
    changed = export_arguments(1)
    changed["embeddings"]["t/000001"] = old_rows + 1
    export_embeddings(tmp_path, run="r", **changed)
    before = sorted(os.listdir(tmp_path / "r" / ASSETS_DIRNAME))
    result = publish_bookmarks(tmp_path, {"t/000001": bookmarks_of("t/000001", old_rows), "t/9": b"[]"}, run="r",
                               sources={"t/000001": tensor_digest(old_rows)})
    assert result.published == {} and result.checkpoint_prefix is None
    assert result.skipped == {"t/000001": "exported again since its layouts were computed", "t/9": "not in the run"}
    assert sorted(os.listdir(tmp_path / "r" / ASSETS_DIRNAME)) == before


_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from test_layout_publication import publish_for
publish_for({logdir!r}, 1, check_rows=False)  # without reading rows back: no TensorFlow to start
"""


@pytest.mark.parametrize("point", PUBLICATION_POINTS)
def test_a_publication_killed_at_any_point_leaves_the_old_or_the_new_config(tmp_path, point):
    logdir = str(tmp_path)
    export_embeddings(logdir, run="r", **export_arguments(1))
    cached = ProjectorClient(logdir)
    assert "bookmarksPath" not in cached.embedding_info("r", "t/000001")
    env = {**os.environ, ENV_VAR: point, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    code = _CHILD.format(tests=os.path.dirname(__file__), logdir=logdir)
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    for served in (cached, ProjectorClient(logdir)):
        entry = served.embedding_info("r", "t/000001")
        assert served.tensor("r", "t/000001").shape == (rows_of(1), 4)
        if "bookmarksPath" in entry:  # the new config: its bookmarks file is complete
            (state,) = decode_states(served.get("/bookmarks", run="r", name="t/000001"))
            assert len(state["projections"]) == rows_of(1)
    # The next publication finishes nothing of the dead one and leaves no leftover.
    publish_for(logdir, 1)
    assets = tmp_path / "r" / ASSETS_DIRNAME
    assert not [p for p in os.listdir(assets) if p.startswith(".tmp-") or p.startswith(".staging-")]
    referenced = {e.get("bookmarksPath") for e in ProjectorClient(logdir).info("r")["embeddings"]}
    assert {p for p in os.listdir(assets) if p.startswith("bookmarks-")} == referenced


def _bookmark_problems(url: str, run: str) -> list[str]:
    """Every listed tensor with a bookmarks path: its states are its own (marker tensor and row count)."""
    def get(route, **params):
        with urllib.request.urlopen(f"{url}/data/plugin/projector{route}?{urllib.parse.urlencode(params)}") as r:
            return r.read()
    problems = []
    for entry in json.loads(get("/info", run=run))["embeddings"]:
        if entry.get("bookmarksPath"):
            states = decode_states(get("/bookmarks", run=run, name=entry["tensorName"]))
            n = int(entry["tensorShape"][0])
            if [s[MARKER]["tensor"] for s in states] != [entry["tensorName"]] or states[0][MARKER]["rows"] != n:
                problems.append(f"{entry['tensorName']}: bookmarks of another tensor or size")
    return problems


def test_a_polling_tensorboard_sees_complete_bookmarks_while_exports_and_publications_run(tmp_path):
    import random

    logdir = str(tmp_path / "logs")
    export_embeddings(logdir, run="r", **export_arguments(0))
    done, problems, rounds = threading.Event(), [], [0]
    with TensorBoardServer(tmp_path / "logs") as server:
        def read():
            rng = random.Random(0)
            while not done.is_set():
                try:
                    found = check_answers(server.url, "r", rng) + _bookmark_problems(server.url, "r")
                except OSError as e:  # the run not yet listed at first
                    found = [] if rounds[0] == 0 else [str(e)]
                problems.extend(found)
                rounds[0] += 1

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            for i in range(1, 25):
                export_embeddings(logdir, run="r", **export_arguments(i))
                publish_for(logdir, i)
                seen = rounds[0]
                while i % 4 == 0 and rounds[0] == seen and reader.is_alive():  # the reader keeps up
                    time.sleep(0.01)
        finally:
            done.set()
            reader.join(timeout=120)
    assert rounds[0] >= 6 and problems == [], problems[:5]
