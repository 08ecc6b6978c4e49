"""Bookmark states: what `loadState` needs, our marker, 4 decimals, and the reader's round trip."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from projector_export.bookmarks import (
    CAMERAS,
    MARKER,
    LayoutState,
    bookmarks_filename,
    class_column,
    decode_states,
    encode_states,
    make_states,
    parse_metadata,
    state_coordinates,
)

# Without these `loadState` (vz-projector.ts) throws and draws nothing (TENSORBOARD.md).
REQUIRED = {"pcaComponentDimensions": list, "tSNEPerplexity": (int, float), "tSNELearningRate": (int, float),
            "tSNEIteration": (int, float), "selectedPoints": list, "customXLeftText": str, "customXRightText": str,
            "customYUpText": str, "customYDownText": str}


def _states(rows=7, continues=None, note=None):
    rng = np.random.default_rng(0)
    pca = rng.normal(size=(rows, 3)) * 10
    umap = rng.normal(size=(rows, 2)) * 10
    layouts = [LayoutState("pca", pca, continues), LayoutState("umap", umap, continues, note)]
    states = make_states("fc1/step_001500", "fc1", 1500, layouts, pca=pca, tensor_shape=(rows, 128),
                         class_column="label")
    return pca, umap, states


def test_every_state_has_what_load_state_needs_and_nothing_harmful():
    _, _, states = _states()
    for state in states:
        for name, kind in REQUIRED.items():
            assert isinstance(state[name], kind), name
        assert state["filteredPoints"] is None and "shuffledDataIndices" not in state
        assert state["selectedColorOptionName"] == state["selectedLabelOption"] == "label"
    assert [s["selectedProjection"] for s in states] == ["pca", "umap"]
    assert states[0]["cameraDef"] == CAMERAS[3] and states[1]["cameraDef"] == CAMERAS[2]
    assert states[1]["umapIs3d"] is False and states[0]["pcaComponentDimensions"] == [0, 1, 2]


def test_the_reader_gives_back_the_coordinates_to_four_decimals_row_for_row():
    pca, umap, states = _states(continues=1000)
    decoded = decode_states(encode_states(states))
    np.testing.assert_allclose(state_coordinates(decoded[0]), pca, atol=0.5e-4 + 1e-6)
    np.testing.assert_allclose(state_coordinates(decoded[1]), umap, atol=0.5e-4 + 1e-6)
    assert state_coordinates(decoded[1]).dtype == np.float32
    # Every state also holds the PCA, so the PROJECTOR's PCA tab draws after any state was restored.
    assert set(decoded[1]["projections"][0]) == {"umap-0", "umap-1", "pca-0", "pca-1", "pca-2"}
    assert b'"projections":[{"pca-0":' in encode_states(states)  # compact: no spaces between tokens
    numbers = [v for point in decoded[0]["projections"] for v in point.values()]
    assert all(round(v, 4) == v for v in numbers)
    marker = decoded[1][MARKER]
    assert marker == {"format": 1, "tensor": "fc1/step_001500", "layer": "fc1", "step": 1500, "layout": "umap",
                      "key": "umap", "dims": 2, "rows": 7, "continues": 1000, "note": None}


def test_names_say_what_each_state_shows():
    _, _, states = _states(rows=5000, continues=1000, note=None)
    assert [s["label"] for s in states] == [
        "PCA 3-D, all 5,000 points of step 1,500, continues step 1,000",
        "UMAP 2-D, all 5,000 points of step 1,500, continues step 1,000",
    ]
    pca = np.zeros((12, 3))
    (tsne,) = make_states("t", "t", None, [LayoutState("tsne", np.zeros((12, 2)))], pca=pca, tensor_shape=(12, 4),
                          class_column=None)
    assert tsne["label"].startswith("t-SNE 2-D (precomputed, drawn in the UMAP tab")
    assert tsne["selectedProjection"] == "umap" and tsne[MARKER]["layout"] == "tsne" and tsne[MARKER]["key"] == "umap"
    assert tsne["selectedColorOptionName"] == "No color map"


def test_content_addressed_name_and_bad_files():
    data = encode_states(_states()[2])
    assert bookmarks_filename(data) == bookmarks_filename(bytes(data))
    assert re.fullmatch(r"bookmarks-[0-9a-f]{16}\.json", bookmarks_filename(data))
    with pytest.raises(ValueError, match="Not a bookmarks file"):
        decode_states(b"{")
    with pytest.raises(ValueError, match="not written by projector_export"):
        state_coordinates({"label": "State 0", "projections": []})
    broken = json.loads(data)[1]
    del broken["projections"][3]["umap-1"]
    with pytest.raises(ValueError, match="lacks coordinate"):
        state_coordinates(broken)


@pytest.mark.parametrize("columns, expected", [
    ({"class": ["a"], "label": ["1"]}, "class"),
    ({"index": ["0"], "label": ["7"], "correct": ["yes"]}, "label"),  # snapshots before the `class` column
    ({"index": ["0", "1"], "confidence": ["0.5", "1e3"], "outcome": ["right", "wrong"]}, "outcome"),
    ({"index": ["0", ""], "hex": ["0x1F", " 2 "]}, "index"),  # all numeric (JavaScript's rules): the first
    ({}, None),
])
def test_class_column(columns, expected):
    assert class_column(columns) == expected


def test_metadata_is_parsed_as_the_projector_does():
    assert parse_metadata("a\tb\n1\tx\n\n2\ty\n") == {"a": ["1", "2"], "b": ["x", "y"]}
    assert parse_metadata("7\n2\n") == {"label": ["7", "2"]}
    assert parse_metadata("") == {}
