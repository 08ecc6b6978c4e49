"""A default `projector-train` run lays out its own snapshots: the session's short real run (`_laid_out_run`: trained
with the default layouts on, then `projector-layouts --wait`), read back as TensorBoard serves it.

Every `<layer>/step_N` has a PCA and a UMAP bookmark holding all its points, coloured and labelled by `class` (the
first non-numeric metadata column); consecutive steps match without rotation or reflection; the last step's UMAP
keeps the classes apart nearly as well as the layer itself (its logged separability); `first_correct_step` and
`forgotten` agree with each step's `correct` column; each layer's trajectory links every sample step to step.
"""

from __future__ import annotations

import numpy as np
import pytest
from _laid_out_run import LAYERS, PROBE, RUN, SNAPSHOT_STEPS, TRAIN_OUTPUT
from _layouts import expected_dynamics
from _projector_client import ProjectorClient
from _tensorboard_reader import Served

from projector_export import knn_separability
from projector_export.bookmarks import MARKER, decode_states, state_coordinates
from projector_export.error_metadata import CLASS_COLUMN, DYNAMICS_COLUMNS
from projector_export.layouts import disparity
from projector_export.metadata_tsv import is_js_number
from projector_export.naming import separability_tag, snapshot_name, trajectory_name
from projector_export.trajectories import SEQUENCE_COLUMN

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(laid_out_run):
    """{tensor: (its bookmark states by layout kind, its metadata columns)} of every snapshot tensor of the run."""
    client = ProjectorClient(str(laid_out_run.parent))
    tensors = {}
    for layer in LAYERS:
        for step in SNAPSHOT_STEPS:
            name = snapshot_name(layer, step, digits=6)
            states = decode_states(client.get("/bookmarks", run=RUN, name=name))
            tensors[name] = ({s[MARKER]["layout"]: s for s in states}, client.metadata_columns(RUN, name))
    return tensors


def test_projector_train_said_where_its_layouts_stood(laid_out_run):
    (output,) = TRAIN_OUTPUT
    last = output.rstrip().splitlines()[-1]
    assert last.startswith("Layouts: ") and str(laid_out_run) in last, output[-2000:]
    assert "all " in last or f"projector-layouts --logdir {laid_out_run.parent} --run {RUN} --wait" in last, last


def test_every_step_has_a_pca_and_a_umap_of_all_its_points_by_class(served):
    for name, (states, columns) in served.items():
        assert set(states) == {"pca", "umap"}, name
        first_text = next(c for c, values in columns.items() if not all(map(is_js_number, values)))
        assert first_text == CLASS_COLUMN, (name, list(columns))  # where TensorBoard's Label by starts
        for state in states.values():
            assert state_coordinates(state).shape[0] == PROBE == len(columns[CLASS_COLUMN]), name
            assert state["selectedColorOptionName"] == state["selectedLabelOption"] == CLASS_COLUMN, name


def test_consecutive_steps_match_without_rotation_or_reflection(served):
    for layer in LAYERS:
        for before, after in zip(SNAPSHOT_STEPS, SNAPSHOT_STEPS[1:], strict=False):
            old, new = (served[snapshot_name(layer, s, digits=6)][0] for s in (before, after))
            for kind in ("pca", "umap"):
                assert new[kind][MARKER]["continues"] == before, (layer, after, kind)
                a, b = state_coordinates(new[kind]), state_coordinates(old[kind])
                raw, best = disparity(a, b), disparity(a, b, rotate=True)
                assert raw <= 1.25 * best + 1e-9, (layer, after, kind, raw, best)


def test_the_last_layout_separates_the_classes_nearly_as_well_as_the_layer(served, laid_out_run):
    scalars = Served(laid_out_run.parent).scalars(RUN)
    last = SNAPSHOT_STEPS[-1]
    for layer in LAYERS:
        states, columns = served[snapshot_name(layer, last, digits=6)]
        labels = np.asarray(columns["label"]).astype(int)  # MNIST: the class names are the digits
        layout = knn_separability(state_coordinates(states["umap"]), labels, k=10)
        logged = scalars[separability_tag(layer)][last]
        assert layout >= 0.9 * logged, (layer, layout, logged)


def test_training_dynamics_agree_with_each_step_s_predictions(served):
    for layer in LAYERS:
        columns = {step: served[snapshot_name(layer, step, digits=6)][1] for step in SNAPSHOT_STEPS}
        expected = expected_dynamics({step: columns[step]["correct"] for step in SNAPSHOT_STEPS})
        for step in SNAPSHOT_STEPS:
            assert {name: columns[step][name] for name in DYNAMICS_COLUMNS} == expected[step], (layer, step)
    first = columns[SNAPSHOT_STEPS[-1]]["first_correct_step"]
    assert len(set(first)) > 2  # examples learnt at different steps: the columns say something


def test_each_layer_s_trajectory_links_every_sample_step_to_step(laid_out_run):
    client = ProjectorClient(str(laid_out_run.parent))
    for layer in LAYERS:
        columns = client.metadata_columns(RUN, trajectory_name(layer))
        nexts = [int(value) for value in columns[SEQUENCE_COLUMN]]
        assert len(nexts) == PROBE * len(SNAPSHOT_STEPS), layer
        for row, following in enumerate(nexts):
            if following < 0:
                assert int(columns["step"][row]) == SNAPSHOT_STEPS[-1], (layer, row)
                continue
            assert columns["sample"][following] == columns["sample"][row], (layer, row)
            assert SNAPSHOT_STEPS.index(int(columns["step"][following])) == \
                SNAPSHOT_STEPS.index(int(columns["step"][row])) + 1, (layer, row)
