"""Standalone export: the web app's projector_config.json, raw float32 tensors, sprite and metadata."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from projector_export import export_standalone


def test_config_and_files_hold_what_went_in(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3))
    wide = rng.standard_normal((5, 300))
    images = rng.integers(0, 256, (5, 2, 3), dtype=np.uint8)
    metadata = {"y": [1, 2, 3, 4, 5], "z": list("abcde")}
    result = export_standalone(tmp_path, {"layer/a": x, "wide": wide}, images=images, metadata=metadata)
    config = json.loads((tmp_path / "projector_config.json").read_text(encoding="utf-8"))
    a, w = config["embeddings"]
    assert a["tensorName"] == "layer/a" and a["tensorShape"] == [5, 3]
    assert a["tensorPath"].endswith(".bytes") and "/" not in a["tensorPath"]
    raw = (tmp_path / a["tensorPath"]).read_bytes()
    np.testing.assert_array_equal(np.frombuffer(raw, dtype="<f4").reshape(5, 3), x.astype(np.float32))
    # Wide tensors are reduced exactly as for TensorBoard (N=5: at most 5 components).
    assert w["tensorShape"] == [5, 5] and result.tensors[1].explained_variance_ratio is not None
    assert len((tmp_path / w["tensorPath"]).read_bytes()) == 5 * 5 * 4
    assert (tmp_path / a["metadataPath"]).read_text(encoding="utf-8").split("\n")[:2] == ["y\tz", "1\ta"]
    assert a["sprite"]["singleImageDim"] == [3, 2]
    sprite = np.asarray(Image.open(io.BytesIO((tmp_path / a["sprite"]["imagePath"]).read_bytes())))
    np.testing.assert_array_equal(sprite[2:4, 0:3], images[3])  # 5 images: 3 per row, image 3 starts row 2


def test_exporting_again_replaces_the_entry_and_keeps_others(tmp_path):
    export_standalone(tmp_path, {"a": np.zeros((2, 2)), "b": np.ones((2, 2))})
    export_standalone(tmp_path, {"a": np.full((3, 2), 7.0)})
    config = json.loads((tmp_path / "projector_config.json").read_text(encoding="utf-8"))
    assert [e["tensorName"] for e in config["embeddings"]] == ["b", "a"]
    a = config["embeddings"][1]
    assert a["tensorShape"] == [3, 2]
    assert np.frombuffer((tmp_path / a["tensorPath"]).read_bytes(), "<f4").tolist() == [7.0] * 6


def test_names_that_look_alike_get_different_files(tmp_path):
    export_standalone(tmp_path, {"a/b": np.zeros((2, 2)), "a_b": np.ones((2, 2))})
    paths = [e["tensorPath"] for e in json.loads((tmp_path / "projector_config.json").read_text())["embeddings"]]
    assert len(set(paths)) == 2


def test_concurrent_exports_into_one_folder_keep_every_entry(tmp_path):
    # Each export reads the config, writes its files, then writes the config back: without a lock, exports
    # that overlap overwrite each other's entries.
    names = [f"t{i}" for i in range(30)]
    rng = np.random.default_rng(0)
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(export_standalone, tmp_path, {name: rng.standard_normal((50, 4))},
                                   images=np.zeros((50, 4, 4), dtype=np.uint8)) for name in names]:
            future.result()
    config = json.loads((tmp_path / "projector_config.json").read_text(encoding="utf-8"))
    assert sorted(e["tensorName"] for e in config["embeddings"]) == sorted(names)


def test_base_url_makes_every_path_a_url_under_it(tmp_path):
    export_standalone(tmp_path, {"a": np.zeros((3, 2))}, images=np.zeros((3, 2, 2), dtype=np.uint8),
                      metadata=["x", "y", "z"], base_url="https://example.org/emb")
    (entry,) = json.loads((tmp_path / "projector_config.json").read_text(encoding="utf-8"))["embeddings"]
    paths = [entry["tensorPath"], entry["metadataPath"], entry["sprite"]["imagePath"]]
    assert all(path.startswith("https://example.org/emb/") for path in paths)
    assert all((tmp_path / path.rsplit("/", 1)[1]).is_file() for path in paths)


@pytest.mark.parametrize("url", ["example.org/emb", "file:///tmp/emb", "https://example.org/emb?x=1", "/emb/"])
def test_a_base_url_that_is_no_http_url_is_refused_before_anything_is_written(tmp_path, url):
    with pytest.raises(ValueError, match="Invalid base_url"):
        export_standalone(tmp_path / "out", {"a": np.zeros((3, 2))}, base_url=url)
    assert not (tmp_path / "out").exists()


@pytest.mark.browser
def test_web_app_on_another_origin_opens_the_folder_by_its_url(tmp_path):
    # The app page and the data are served from different folders on different ports (origins); the data
    # server sends the CORS header the app's origin needs. What the page holds and draws is checked.
    from _browser import (
        VIEWPORT,
        ProjectorPage,
        StaticServer,
        index_images,
        index_of_colour,
        lattice,
        launch_chromium,
        write_projector_app,
    )
    from playwright.sync_api import sync_playwright

    n = 500
    labels = [f"class {i % 3}" for i in range(n)]
    with StaticServer(tmp_path / "app") as app:
        with StaticServer(tmp_path / "data", allow_origin=app.url) as data:
            export_standalone(tmp_path / "data", {"lattice": lattice(n)}, images=index_images(n), reduce=None,
                              metadata={"index": list(range(n)), "label": labels}, base_url=f"{data.url}/")
            write_projector_app(tmp_path / "app", f"{data.url}/projector_config.json")
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                try:
                    projector = ProjectorPage(browser.new_page(viewport=VIEWPORT), f"{app.url}/index.html",
                                              app_page=True)
                    loaded = projector.loaded()
                    assert (loaded.tensor, loaded.points, loaded.dimension) == ("lattice", n, 3), projector.context()
                    assert loaded.status_text == f"Points: {n} | Dimension: 3"
                    assert loaded.index_column == [str(i) for i in range(n)]
                    found = projector.search("label", "class 1")
                    expected = [i for i in range(n) if labels[i] == "class 1"]
                    assert found.message == f"{len(expected)} matches.", projector.context()
                    assert found.selected == found.highlighted == expected
                    projector.clear_search()
                    projector.show_2d()
                    drawn = index_of_colour(projector.drawn_point_pixels())
                    wrong = {i: int(d) for i, d in enumerate(drawn) if d != i}
                    assert not wrong, f"{len(wrong)} of {n} points drawn with another thumbnail: {wrong}"
                    assert not projector.log.errors and not projector.shown_problems(), (
                        f"{projector.context()}\nHTTP errors: {app.failed + data.failed}")
                finally:
                    browser.close()


def test_cli_standalone_url_writes_urls_and_a_bad_one_writes_nothing(tmp_path, capsys):
    from projector_export import cli

    np.save(tmp_path / "e.npy", np.zeros((3, 2), dtype=np.float32))
    argv = ["--logdir", str(tmp_path / "logs"), "--embedding", f"e={tmp_path / 'e.npy'}",
            "--standalone", str(tmp_path / "web")]
    assert cli.main([*argv, "--standalone-url", "https://example.org/web/"]) == 0
    (entry,) = json.loads((tmp_path / "web" / "projector_config.json").read_text(encoding="utf-8"))["embeddings"]
    assert entry["tensorPath"].startswith("https://example.org/web/")
    capsys.readouterr()
    argv = [argv[0], str(tmp_path / "logs2"), *argv[2:-1], str(tmp_path / "web2")]
    assert cli.main([*argv, "--standalone-url", "example.org/web"]) == 2
    assert "--standalone-url: Invalid base_url 'example.org/web'" in capsys.readouterr().err
    assert not (tmp_path / "logs2").exists() and not (tmp_path / "web2").exists()
