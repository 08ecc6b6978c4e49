"""A log dir moved or copied elsewhere (trained on one machine, opened on another) still shows its PROJECTOR data.

The run's plugin-assets config names its bundle by absolute path, stale after a move; TensorBoard then
skips it and serves the run's portable config (top of the run), paired with the `checkpoint` state
file, which names the bundle relative to the run directory.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from _consistency import check_answers, export_arguments, rows_of
from _projector_client import ProjectorClient
from _tensorboard_server import TensorBoardServer
from PIL import Image

from projector_export import export_embeddings
from projector_export.metadata import ASSETS_DIRNAME, CONFIG_FILENAME

_NAMES = ["t/000001", "t/000002"]


def _export_two(logdir: Path) -> None:
    for i in (1, 2):
        export_embeddings(logdir, run="r", **export_arguments(i))


def _get(url: str, route: str, **params) -> bytes:
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}/data/plugin/projector{route}?{query}", timeout=60) as response:
        return response.read()


def _wait_for_run(server: TensorBoardServer, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "r" in server.get_json("/data/plugin/projector/runs"):
            return
        time.sleep(0.5)
    raise AssertionError(f"TensorBoard did not list 'r' within {timeout:.0f} s:\n{server.output()[-2000:]}")


def _assert_served(server: TensorBoardServer) -> None:
    _wait_for_run(server)
    assert server.get_json("/data/plugin/projector/runs") == ["r"]
    entries = server.get_json("/data/plugin/projector/info", run="r")["embeddings"]
    assert [e["tensorName"] for e in entries] == _NAMES
    for i, (name, entry) in enumerate(zip(_NAMES, entries, strict=True), start=1):
        n = rows_of(i)
        assert entry["tensorShape"] == [n, 4]
        tensor = np.frombuffer(_get(server.url, "/tensor", run="r", name=name), dtype=np.float32).reshape(n, 4)
        np.testing.assert_array_equal(tensor[:, 0], 1000 * i + np.arange(n, dtype=np.float32))
        assert _get(server.url, "/metadata", run="r", name=name).decode() == "".join(f"{i}-{r}\n" for r in range(n))
        sprite = np.asarray(Image.open(io.BytesIO(_get(server.url, "/sprite_image", run="r", name=name))))
        side = int(np.ceil(np.sqrt(n))) * 4
        assert sprite.shape[:2] == (side, side) and int(sprite[0, 0]) == i
    assert check_answers(server.url, "r", random.Random(0)) == []


@pytest.mark.parametrize("how", ["moved", "copied"])
def test_a_moved_or_copied_logdir_is_served_by_tensorboard(tmp_path, monkeypatch, how):
    _export_two(tmp_path / "cluster" / "logs")
    if how == "moved":
        os.rename(tmp_path / "cluster" / "logs", tmp_path / "laptop")
    else:
        shutil.copytree(tmp_path / "cluster" / "logs", tmp_path / "laptop")
        shutil.rmtree(tmp_path / "cluster")  # the absolute paths the configs name are gone
    # `tensorboard --logdir laptop` from its parent (a relative path), as a person types it; and absolute.
    monkeypatch.chdir(tmp_path)
    for logdir in (Path("laptop"), tmp_path / "laptop"):
        with TensorBoardServer(logdir) as server:
            _assert_served(server)


def test_an_export_into_a_moved_logdir_names_the_new_place(tmp_path):
    _export_two(tmp_path / "a")
    os.rename(tmp_path / "a", tmp_path / "b")
    served = ProjectorClient(tmp_path / "b")
    assert [e["tensorName"] for e in served.info("r")["embeddings"]] == _NAMES
    result = export_embeddings(tmp_path / "b", run="r", **export_arguments(3))
    assert result.checkpoint_prefix.startswith(str(tmp_path / "b" / "r" / ASSETS_DIRNAME))
    # The same plugin (it had the portable config) and a fresh one both serve the three exports.
    for reader in (served, ProjectorClient(tmp_path / "b")):
        assert [e["tensorName"] for e in reader.info("r")["embeddings"]] == [*_NAMES, "t/000003"]
        np.testing.assert_array_equal(reader.tensor("r", "t/000003")[:, 0], 3000 + np.arange(rows_of(3)))
        assert reader.metadata("r", "t/000003").split("\n")[0] == "3-0"


def test_the_portable_config_lists_the_same_entries_relative_to_the_run(tmp_path):
    _export_two(tmp_path)
    run_dir = tmp_path / "r"
    top = (run_dir / CONFIG_FILENAME).read_text()
    assets = (run_dir / ASSETS_DIRNAME / CONFIG_FILENAME).read_text()
    assert "model_checkpoint_path" not in top and f'model_checkpoint_path: "{run_dir / ASSETS_DIRNAME}' in assets
    metadata = sorted(p for p in os.listdir(run_dir / ASSETS_DIRNAME) if p.startswith("metadata-"))
    assert len(metadata) == 2 and all(f'metadata_path: "{ASSETS_DIRNAME}/{m}"' in top for m in metadata)
    assert (run_dir / "checkpoint").read_text() == (
        f'model_checkpoint_path: "{ASSETS_DIRNAME}/embeddings-000002"\n'
        f'all_model_checkpoint_paths: "{ASSETS_DIRNAME}/embeddings-000002"\n')


def test_a_foreign_top_level_config_is_still_refused(tmp_path):
    _export_two(tmp_path)
    top = tmp_path / "r" / CONFIG_FILENAME
    # Someone else's config, even one listing the same entries without the first line this package writes.
    top.write_text(top.read_text().split("\n", 1)[1])
    before = sorted(os.listdir(tmp_path / "r" / ASSETS_DIRNAME))
    with pytest.raises(ValueError, match=r"holds a projector_config\.pbtxt that projector_export did not write"):
        export_embeddings(tmp_path, run="r", **export_arguments(3))
    assert sorted(os.listdir(tmp_path / "r" / ASSETS_DIRNAME)) == before
