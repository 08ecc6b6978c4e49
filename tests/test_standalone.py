"""Standalone export: the web app's projector_config.json, raw float32 tensors, sprite and metadata."""

from __future__ import annotations

import io
import json

import numpy as np
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
