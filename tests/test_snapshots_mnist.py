"""A real short training on real MNIST with layer snapshots, read back through TensorBoard's own projector plugin
(in-process, with a real data provider) and its scalar data provider."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from _projector_client import ProjectorClient, sprite_cell
from _run_dir_watcher import RunDirWatcher

from projector_export.error_metadata import COLUMNS, DYNAMICS_COLUMNS
from projector_export.metadata_tsv import BLANK_VALUE
from projector_export.naming import CLASS_EMBEDDING_NAME, SEPARABILITY_TAG
from training import export_model
from training.train import MODEL_FILENAME, TrainConfig, train_and_evaluate

pytestmark = pytest.mark.integration

STEPS, EVERY, PROBE = 90, 10, 250
SNAPSHOT_STEPS = list(range(0, STEPS + 1, EVERY))  # before training, every 10 steps, and the last step (90)
LAYERS = ["conv1", "conv2", "fc1", "logits"]  # the default: every convolution and dense layer of `tutorial`
RUN = "snap"


@pytest.fixture(scope="module")
def trained(mnist, tmp_path_factory):
    logdir = tmp_path_factory.mktemp("logs")
    config = TrainConfig(
        model="tutorial", steps=STEPS, learning_rate=1e-3, seed=0, logdir=str(logdir), run=RUN, verbose=0,
        snapshot_every=EVERY, probe_size=PROBE, eval_every=STEPS,
        layouts="off",  # what each snapshot writes, without the layout worker's publications among it
    )
    watcher = RunDirWatcher(logdir / RUN, EVERY, STEPS)
    result = train_and_evaluate(config, data=mnist, extra_callbacks=[watcher])
    return logdir, result, watcher, ProjectorClient(logdir)


def _name(layer: str, step: int) -> str:
    return f"{layer}/step_{step:06d}"


def test_one_tensor_per_layer_and_step_with_the_probe_rows(trained):
    logdir, _, _, projector = trained
    assert json.loads(projector.get("/runs")) == [RUN]
    config = json.loads(projector.get("/info", run=RUN))
    shapes = {e["tensorName"]: [int(s) for s in e["tensorShape"]] for e in config["embeddings"]}
    expected = {_name(layer, step) for layer in [*LAYERS, CLASS_EMBEDDING_NAME] for step in SNAPSHOT_STEPS}
    assert set(shapes) == expected
    for layer in LAYERS:
        for step in SNAPSHOT_STEPS:
            name = _name(layer, step)
            assert shapes[name][0] == PROBE
            served = projector.tensor(RUN, name)
            assert np.isfinite(served).all() and served.std() > 0
    assert shapes[_name("logits", STEPS)] == [PROBE, 10]  # narrow tensors are served as they are


def test_metadata_rows_are_the_probe_in_order(trained, mnist):
    _, _, _, projector = trained
    labels = mnist.test_labels[:PROBE]
    for step in (0, STEPS):
        columns = projector.metadata_columns(RUN, _name("conv2", step))
        assert tuple(columns) == (*COLUMNS, *DYNAMICS_COLUMNS)
        assert columns["index"] == [str(i) for i in range(PROBE)]
        assert columns["label"] == [mnist.class_names[y] for y in labels]
    # The sprite is the probe images: its first and last cells are test images 0 and PROBE-1.
    sprite = projector.sprite(RUN, _name("fc1", STEPS))
    (entry,) = [e for e in json.loads(projector.get("/info", run=RUN))["embeddings"]
                if e["tensorName"] == _name("fc1", STEPS)]
    assert [int(d) for d in entry["sprite"]["singleImageDim"]] == [28, 28]
    cell = 28
    first = sprite[:cell, :cell].reshape(cell, cell, -1)[..., 0]
    assert np.abs(first.astype(int) - mnist.test_images[0]).max() <= 1
    last = sprite_cell(sprite, PROBE - 1, (cell, cell)).reshape(cell, cell, -1)[..., 0]
    assert np.abs(last.astype(int) - mnist.test_images[PROBE - 1]).max() <= 1


def test_last_snapshot_predictions_are_the_saved_model_predictions(trained, mnist):
    logdir, result, _, projector = trained
    columns = projector.metadata_columns(RUN, _name("logits", STEPS))
    model = keras.models.load_model(logdir / RUN / MODEL_FILENAME)
    logits = model.predict(mnist.test_images[:PROBE], verbose=0)
    assert columns["prediction"] == [mnist.class_names[p] for p in logits.argmax(axis=1)]
    # The logits tensor of the last snapshot is the saved model's output on the probe.
    np.testing.assert_allclose(projector.tensor(RUN, _name("logits", STEPS)), logits, atol=1e-4)
    # The class embedding of the last snapshot is the saved model's last dense kernel, one row per class.
    kernel = model.get_layer("logits").get_weights()[0]
    served = projector.tensor(RUN, _name(CLASS_EMBEDDING_NAME, STEPS))
    assert served.shape == (10, kernel.shape[0])
    np.testing.assert_allclose(served, kernel.T, atol=1e-6)
    assert projector.metadata_columns(RUN, _name(CLASS_EMBEDDING_NAME, STEPS))["label"] == list(mnist.class_names)


def test_error_column_marks_exactly_the_wrong_rows(trained, mnist):
    _, _, _, projector = trained
    for step in (0, STEPS):
        columns = projector.metadata_columns(RUN, _name("fc1", step))
        wrong = [label != prediction for label, prediction in zip(columns["label"], columns["prediction"], strict=True)]
        assert 0 < sum(wrong) < PROBE
        assert columns["correct"] == ["no" if w else "yes" for w in wrong]
        # Right rows have an empty `error`, which the exporter writes as BLANK_VALUE (the PROJECTOR drops blank
        # trailing cells); searching "4→9" highlights exactly the 4s taken for 9s.
        assert columns["error"] == [f"{a}→{p}" if w else BLANK_VALUE for a, p, w in
                                    zip(columns["label"], columns["prediction"], wrong, strict=True)]
        confidence = np.array(columns["confidence"], dtype=float)
        loss = np.array(columns["loss"], dtype=float)
        assert ((confidence > 0.1 - 1e-4) & (confidence <= 1)).all() and (loss >= 0).all()
    final = projector.metadata_columns(RUN, _name("fc1", STEPS))
    before = projector.metadata_columns(RUN, _name("fc1", 0))
    assert final["correct"].count("no") < before["correct"].count("no")


def test_separability_scalars_show_deeper_layers_separate_better(trained):
    _, _, _, projector = trained
    scalars = projector.scalars(RUN)
    for layer in LAYERS:
        assert sorted(scalars[f"{SEPARABILITY_TAG}/{layer}"]) == SNAPSHOT_STEPS
    final = {layer: scalars[f"{SEPARABILITY_TAG}/{layer}"][STEPS] for layer in LAYERS}
    assert final["logits"] > final["conv1"]
    # Training made the logits separable: much better than before the first step.
    assert final["logits"] > scalars[f"{SEPARABILITY_TAG}/logits"][0] + 0.2
    assert "train/loss" in scalars  # one run: the training's own scalars sit beside them


def test_tenth_snapshot_writes_what_the_first_did(trained):
    _, _, watcher, projector = trained
    assert len(watcher.per_snapshot) == len(SNAPSHOT_STEPS) == 10
    sizes = [size for size, _ in watcher.per_snapshot]
    counts = [len(files) for _, files in watcher.per_snapshot]
    first_only = set(watcher.per_snapshot[0][1]) - set(watcher.per_snapshot[1][1])
    assert any("sprite-" in name for name in first_only)  # the probe sprite: written by the first snapshot only
    assert counts[1:] == [counts[1]] * (len(counts) - 1)
    # The checkpoint index and config list all tensors so far and grow by a few hundred bytes per snapshot;
    # everything else is the snapshot's own data. Rewriting earlier snapshots would double this by the 10th.
    assert sizes[-2] <= 1.1 * sizes[1]
    assert sizes[-2] < sizes[0]
    # ... and that data is this snapshot's tensors (float32) and little else: no earlier tensor is copied.
    config = json.loads(projector.get("/info", run=RUN))
    own = [e for e in config["embeddings"] if e["tensorName"].endswith(f"/step_{SNAPSHOT_STEPS[-2]:06d}")]
    tensor_bytes = sum(4 * int(e["tensorShape"][0]) * int(e["tensorShape"][1]) for e in own)
    assert tensor_bytes <= sizes[-2] <= 1.25 * tensor_bytes


def test_export_a_saved_model_after_the_fact(trained, mnist, capsys):
    logdir, _, _, _ = trained
    model_path = str(logdir / RUN / MODEL_FILENAME)
    argv = ["--logdir", str(logdir), "--run", "after", "--model", model_path, "--layers", "conv2,logits",
            "--probe-size", "100", "--data-dir", str(mnist.directory)]
    assert export_model.main(argv) == 0
    assert "view it with: tensorboard --logdir" in capsys.readouterr().out
    projector = ProjectorClient(logdir)
    config = json.loads(projector.get("/info", run="after"))
    assert {e["tensorName"] for e in config["embeddings"]} == {"conv2", "logits", CLASS_EMBEDDING_NAME}
    logits = keras.models.load_model(model_path).predict(mnist.test_images[:100], verbose=0)
    np.testing.assert_allclose(projector.tensor("after", "logits"), logits, atol=1e-4)
    predictions = [mnist.class_names[p] for p in logits.argmax(1)]
    assert projector.metadata_columns("after", "conv2")["prediction"] == predictions

    assert export_model.main([*argv[:3], "after2", *argv[4:6], "--layers", "conv2,conv9"]) == 2
    error = capsys.readouterr().err
    assert "Unknown layer name(s) 'conv9'" in error and "conv1, pool1, conv2" in error
    assert export_model.main([*argv[:3], "after2", *argv[4:6], "--probe-size", "10001"]) == 2
    assert "Probe size 10001 is not available: the data has 10000 examples" in capsys.readouterr().err
    assert not (logdir / "after2").exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"layers": ("conv1", "conv9")}, r"Unknown layer name\(s\) 'conv9' .*conv1, pool1, conv2"),
     ({"probe_size": 10_001}, "Probe size 10001 is not available: the data has 10000 examples")],
)
def test_projector_train_refuses_bad_snapshot_settings_before_making_the_run(mnist, tmp_path, settings, message):
    config = TrainConfig(model="tutorial", steps=5, logdir=str(tmp_path), run="bad", verbose=0, **settings)
    with pytest.raises(ValueError, match=message):
        train_and_evaluate(config, data=mnist)
    assert not (tmp_path / "bad").exists()
