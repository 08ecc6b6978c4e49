"""The parts of a snapshot on tiny Keras models: layer choice, layer outputs, error metadata, names, probe."""

import keras
import numpy as np
import pytest
from _tensorboard_reader import Served

from projector_export import class_scores
from projector_export import error_metadata as meta
from projector_export.config import read_config
from projector_export.layer_outputs import LayerOutputs
from projector_export.model_layers import default_layers, resolve_layers
from projector_export.naming import snapshot_name
from projector_export.probe import take_probe
from projector_export.snapshots import EmbeddingSnapshots


def _tiny_cnn(softmax: bool = False) -> keras.Model:
    inputs = keras.Input((6, 6, 1), name="images")
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(4, activation="relu", name="fc1")(x)
    x = keras.layers.Dropout(0.9, name="dropout")(x)
    outputs = keras.layers.Dense(3, activation="softmax" if softmax else None, name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny")


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return _tiny_cnn()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((7, 6, 6, 1)).astype(np.float32)


def test_default_layers_are_convolutions_and_dense(model):
    assert default_layers(model) == ["conv1", "fc1", "logits"]


def test_unknown_layer_lists_the_model_layers(model):
    with pytest.raises(ValueError, match=r"'conv9'.*images, conv1, pool1, flatten, fc1, dropout, logits"):
        resolve_layers(model, ["conv1", "conv9"])
    with pytest.raises(TypeError, match="split it first"):
        resolve_layers(model, "conv1,fc1")
    assert resolve_layers(model, ["fc1", "conv1", "fc1"]) == ["fc1", "conv1"]


def test_callback_checks_layers_when_given_the_model(model, images, tmp_path):
    with pytest.raises(ValueError, match="Unknown layer name.*'fc9'.*conv1, pool1"):
        EmbeddingSnapshots(images, np.zeros(7, int), tmp_path, layers=["fc9"], model=model)
    with pytest.raises(ValueError, match="every"):
        EmbeddingSnapshots(images, np.zeros(7, int), tmp_path, every=-1)


def test_fit_fails_before_the_first_step_on_an_unknown_layer(images, tmp_path):
    model = _tiny_cnn()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = EmbeddingSnapshots(images, np.zeros(7, int), tmp_path, layers=["nope"])
    with pytest.raises(ValueError, match="Unknown layer name.*'nope'"):
        model.fit(images, np.zeros(7, int), epochs=1, verbose=0, callbacks=[callback])
    assert int(model.optimizer.iterations.numpy()) == 0
    assert list(tmp_path.iterdir()) == []


def test_layer_outputs_are_flattened_inference_mode_outputs(model, images):
    features, scores = LayerOutputs(model, ["conv1", "fc1", "logits"])(images)
    assert {name: f.shape for name, f in features.items()} == {"conv1": (7, 72), "fc1": (7, 4), "logits": (7, 3)}
    np.testing.assert_allclose(features["conv1"], keras.Model(model.inputs, model.get_layer("conv1").output)
                               .predict(images, verbose=0).reshape(7, -1), rtol=1e-5)
    # Inference mode: dropout (rate 0.9) is off, so the class scores are the model's own predictions.
    np.testing.assert_allclose(scores, model.predict(images, verbose=0), rtol=1e-5)
    np.testing.assert_array_equal(scores, features["logits"])


def test_layer_outputs_add_the_model_output_when_not_chosen(model, images):
    features, scores = LayerOutputs(model, ["pool1"])(images)
    assert list(features) == ["pool1"] and features["pool1"].shape == (7, 18)
    np.testing.assert_allclose(scores, model.predict(images, verbose=0), rtol=1e-5)


def _wide_cnn() -> keras.Model:
    """conv1 (8×8×8 = 512) and conv2 (384) are wider than PCA_THRESHOLD_DIM: snapshots reduce them by the
    randomized PCA."""
    inputs = keras.Input((8, 8, 1), name="images")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(16, activation="relu", name="fc1")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name="wide")


def _wide_cnn_and_probe(seed: int) -> tuple[keras.Model, np.ndarray]:
    """`_wide_cnn` and 2,600 probe rows: more than the 2,048 rows the PCA samples."""
    keras.utils.set_random_seed(seed)
    return _wide_cnn(), np.random.default_rng(seed).random((2600, 8, 8, 1)).astype(np.float32)


def test_streamed_pca_of_a_wide_layer_is_the_exporters_pca_of_its_outputs():
    """2,600 rows: passes over sampled rows first, then every row in order; every row lands where it belongs
    and the streamed PCA is `pca` of the whole output."""
    from projector_export.reduction import PCAResult, pca

    model, x = _wide_cnn_and_probe(1)
    outputs = LayerOutputs(model, ["conv1", "fc1"])
    full, full_scores = outputs(x)
    streamed, scores = outputs(x, 20)
    assert isinstance(streamed["conv1"], PCAResult) and isinstance(streamed["fc1"], np.ndarray)
    assert streamed["conv1"].method == "randomized"
    expected = pca(full["conv1"], 20)
    assert streamed["conv1"].coordinates.shape == (2600, 20) and streamed["conv1"].input_dim == 512
    scale = float(np.abs(expected.coordinates).max())
    np.testing.assert_allclose(streamed["conv1"].coordinates, expected.coordinates, rtol=0, atol=1e-4 * scale)
    assert streamed["conv1"].explained_variance_ratio == pytest.approx(expected.explained_variance_ratio, abs=1e-5)
    np.testing.assert_allclose(streamed["fc1"], full["fc1"], rtol=1e-5, atol=1e-6)  # row i is still example i
    np.testing.assert_allclose(scores, full_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_a_second_call_starts_each_layers_pca_from_its_last_directions():
    """One layer warm (its directions of the call before), one fresh (its start dropped): each pass feeds each
    layer exactly the sample rows it asks for."""
    from projector_export.reduction import pca

    model, x = _wide_cnn_and_probe(2)
    outputs = LayerOutputs(model, ["conv1", "conv2"])
    full, _ = outputs(x)
    first, _ = outputs(x, 20)
    del outputs._bases[1]  # conv2 starts afresh
    second, _ = outputs(x, 20)
    fresh = pca(full["conv2"], 20)
    scale = float(np.abs(fresh.coordinates).max())
    np.testing.assert_allclose(second["conv2"].coordinates, fresh.coordinates, rtol=0, atol=1e-4 * scale)
    warm = second["conv1"].explained_variance_ratio
    assert first["conv1"].explained_variance_ratio - 1e-3 <= warm <= 1.0


def test_the_fused_pass_gives_the_projections_of_the_pca_fed_the_outputs():
    """The products computed in the forward pass's graph (`streamed_pass`) against the same `StreamingPCA` fed the
    layers' outputs in numpy, a fresh call (half then all of the sample) and a warm one."""
    from projector_export.reduction import StreamingPCA

    model, x = _wide_cnn_and_probe(3)
    outputs = LayerOutputs(model, ["conv1", "conv2"])
    full, _ = outputs(x)
    bases: dict[str, np.ndarray] = {}
    for _ in ("fresh", "warm"):
        fused, _ = outputs(x, 20)
        for name in ("conv1", "conv2"):
            rows = full[name]
            stream = StreamingPCA(len(rows), rows.shape[1], 20, start=bases.get(name))
            while stream.sketching:
                stream.add_sample(rows[stream.pass_rows])
            for start in range(0, len(rows), 500):
                stream.add(slice(start, start + 500), rows[start:start + 500])
            expected, bases[name] = stream.result(), stream.basis
            scale = float(np.abs(expected.coordinates).max())
            np.testing.assert_allclose(fused[name].coordinates, expected.coordinates, rtol=0, atol=1e-4 * scale)
            assert fused[name].explained_variance_ratio == pytest.approx(expected.explained_variance_ratio, abs=1e-6)


def test_a_wide_layer_goes_in_smaller_batches_with_the_same_values(monkeypatch):
    model, x = _wide_cnn_and_probe(4)
    whole, whole_scores = LayerOutputs(model, ["conv1", "fc1"])(x, 20)
    monkeypatch.setattr(LayerOutputs, "BATCH_BYTES", 96 * 512 * 4)  # conv1: 512 float32 columns, 96 rows a batch
    outputs = LayerOutputs(model, ["conv1", "fc1"])
    assert outputs._batch_rows == 96
    small, small_scores = outputs(x, 20)
    scale = float(np.abs(whole["conv1"].coordinates).max())
    np.testing.assert_allclose(small["conv1"].coordinates, whole["conv1"].coordinates, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(small["fc1"], whole["fc1"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(small_scores, whole_scores, rtol=1e-5, atol=1e-6)


def test_streamed_pca_names_the_layer_that_outputs_infinities():
    model = _wide_cnn()
    kernel, bias = model.get_layer("conv1").get_weights()
    bias[0] = np.inf  # a diverged layer: one channel infinite (ReLU passes it)
    model.get_layer("conv1").set_weights([kernel, bias])
    x = np.random.default_rng(2).random((400, 8, 8, 1)).astype(np.float32)
    with pytest.raises(ValueError, match="Layer 'conv1': its rows contain NaN or infinite values"):
        LayerOutputs(model, ["conv1"])(x, 20)


def test_error_metadata_columns():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.25, 0.5, 0.25]]))
    columns = meta.error_metadata(logits + 3.0, np.array([0, 1, 1]), ["cat", "dog", "owl"])
    assert tuple(columns) == meta.COLUMNS
    assert columns == {
        "index": ["0", "1", "2"],
        "class": ["cat", "dog", "dog"],
        "label": ["cat", "dog", "dog"],
        "outcome": ["right", "wrong→owl", "right"],
        "prediction": ["cat", "owl", "dog"],
        "correct": ["yes", "no", "yes"],
        "confidence": ["0.7000", "0.8000", "0.5000"],
        "loss": [f"{-np.log(p):.4f}" for p in (0.7, 0.1, 0.5)],
        "error": ["", "dog→owl", ""],
    }
    probabilities = meta.error_metadata(np.exp(logits), np.array([0, 1, 1]), ["cat", "dog", "owl"], from_logits=False)
    assert probabilities == columns


def test_columns_open_ready_to_read_with_the_projector_s_own_rules():
    """`class` is the first non-numeric column (Label by, search By), `outcome` has few enough values for Color by,
    and `error` still holds exactly `4→9` for the 4s taken for 9s."""
    from projector_export.metadata_tsv import COLOR_BY_MAX_VALUES, is_js_number

    labels = np.arange(40) % 10
    logits = np.eye(10)[(labels + 5 * (np.arange(40) % 3 == 0)) % 10] * 5  # every third row taken for label + 5
    columns = meta.error_metadata(logits, labels, [str(i) for i in range(10)])
    first_text = next(name for name, values in columns.items() if not all(map(is_js_number, values)))
    assert first_text == "class" and columns["class"][:2] == ["class 0", "class 1"]
    assert len(set(columns["outcome"])) <= COLOR_BY_MAX_VALUES and columns["outcome"][:2] == ["wrong→5", "right"]
    assert [i for i, e in enumerate(columns["error"]) if e == "4→9"] == [i for i in range(40) if i % 10 == 4
                                                                          and i % 3 == 0]
    many = meta.error_metadata(np.eye(60)[[1, 0]], np.array([0, 0]), [f"c{i}" for i in range(60)])
    assert many["outcome"] == ["wrong", "right"]  # 61 values would drop out of Color by
    assert meta.class_metadata(["0", "cat"]) == {"class": ["class 0", "cat"], "label": ["0", "cat"]}


def test_dynamics_columns_count_first_right_step_and_forgetting():
    steps = (0, 10, 20, 30)
    right = np.array([[0, 1, 1, 0], [1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]]).T  # rows' histories, as steps × rows
    state = None
    for step, now in zip(steps, right, strict=True):
        columns, state = meta.dynamics_columns(step, {"correct": ["yes" if r else "no" for r in now]}, state)
    assert columns == {"first_correct_step": ["10", "0", "never", "0"], "forgotten": ["1", "2", "0", "0"]}
    read_back = meta.dynamics_state(30, {"correct": ["no", "no", "no", "yes"], **columns})
    assert [x.tolist() for x in read_back[1:]] == [x.tolist() for x in state[1:]]


def test_dynamics_continue_across_two_fits_and_a_new_snapshotter_on_the_run(tmp_path):
    """One callback over two `fit` calls, then a sidecar's snapshotter (a new one, state read back from the run):
    each step's `first_correct_step` and `forgotten` agree with the `correct` columns exported so far."""
    from _layouts import expected_dynamics
    from _projector_client import ProjectorClient

    from projector_export.probe import check_probe
    from projector_export.snapshotter import LayerSnapshotter

    keras.utils.set_random_seed(3)
    model = _tiny_cnn()
    model.compile(keras.optimizers.SGD(2.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(3)
    x, y = rng.random((24, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, 24)
    callback = EmbeddingSnapshots(x, y, tmp_path, run="r", every=2, layers=["fc1"], layouts=None, verbose=False)
    for _ in range(2):  # the second fit begins at the step the first ended on
        model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[callback])
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    LayerSnapshotter(model, check_probe(x, y, layers=["fc1"]), tmp_path, run="r").snapshot(18)
    client = ProjectorClient(tmp_path)
    steps = [0, 2, 4, 6, 8, 10, 12, 18]
    columns = {step: client.metadata_columns("r", f"fc1/step_{step:06d}") for step in steps}
    expected = expected_dynamics({step: columns[step]["correct"] for step in steps})
    for step in steps:
        assert {name: columns[step][name] for name in meta.DYNAMICS_COLUMNS} == expected[step], step
    assert any(n != "0" for n in columns[18]["forgotten"])  # some rows were forgotten
    assert len(set(columns[18]["first_correct_step"])) > 2  # rows learnt at different steps


def test_error_metadata_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="N x 2"):
        meta.error_metadata(np.zeros((4, 3)), np.zeros(4, int), ["a", "b"])
    with pytest.raises(ValueError, match="Expected 4 labels"):
        meta.error_metadata(np.zeros((4, 2)), np.zeros(3, int), ["a", "b"])


def test_class_embedding_is_the_last_dense_kernel_transposed(model):
    weights = class_scores.class_embedding(model, 3)
    np.testing.assert_array_equal(weights, model.get_layer("logits").get_weights()[0].T)
    assert weights.shape == (3, 4)
    assert class_scores.class_embedding(model, 5) is None


def test_class_mean_images_keep_the_dtype():
    images = np.array([[[0, 10]], [[2, 20]], [[255, 255]]], dtype=np.uint8)
    means = meta.class_mean_images(images, np.array([0, 0, 2]), 3)
    assert means.dtype == np.uint8
    np.testing.assert_array_equal(means, [[[1, 15]], [[0, 0]], [[255, 255]]])


@pytest.mark.parametrize(
    ("layer", "step", "total", "name"),
    [("conv2", 4000, 10_000, "conv2/step_004000"), ("fc1", 0, None, "fc1/step_000000"),
     ("fc1", 12, 2_000_000, "fc1/step_0000012"), ("logits", None, 500, "logits")],
)
def test_snapshot_names_sort_in_step_order(layer, step, total, name):
    assert snapshot_name(layer, step, total) == name


def test_probe_is_the_first_images_and_never_larger_than_the_data():
    images, labels = np.arange(30).reshape(10, 3), np.arange(10)
    probe_images, probe_labels = take_probe(images, labels, 7)
    np.testing.assert_array_equal(probe_images, images[:7])
    np.testing.assert_array_equal(probe_labels, labels[:7])
    with pytest.raises(ValueError, match="Probe size 11 .* the data has 10 examples"):
        take_probe(images, labels, 11)
    with pytest.raises(ValueError, match="at least 6"):
        take_probe(images, labels, 5)
    with pytest.raises(TypeError, match="int"):
        take_probe(images, labels, 2.5)


def test_callback_snapshots_before_every_k_steps_and_after_across_epochs(tmp_path, capsys):
    keras.utils.set_random_seed(1)
    model = _tiny_cnn()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(1)
    x, y = rng.random((10, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, 10)
    callback = EmbeddingSnapshots(x[:8], y[:8], tmp_path, run="r", every=4, class_names=["a", "b", "c"])
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[callback])  # 5 steps per epoch, 10 in all

    steps = [0, 4, 8, 10]  # before training, every 4 steps (across the epoch boundary), after the last step
    assert [record.step for record in callback.snapshotter.records] == steps
    config = read_config(str(tmp_path / "r"))
    names = {e.tensor_name: list(e.tensor_shape) for e in config.embeddings}
    expected = {f"{layer}/step_{s:06d}": [8, width] for layer, width in
                [("conv1", 72), ("fc1", 4), ("logits", 3)] for s in steps}
    expected.update({f"class_weights/step_{s:06d}": [3, 4] for s in steps})
    assert names == expected
    scalars = Served(tmp_path).scalars("r")
    assert {tag for tag in scalars if tag.startswith("separability/")} == {
        "separability/conv1", "separability/fc1", "separability/logits"}
    assert list(scalars["separability/fc1"]) == steps
    table = capsys.readouterr().out
    assert "leave-one-out 5-NN accuracy of 8 probe rows" in table and table.count("\n10 ") == 1
    # Layouts are on by default: a worker lays out the snapshots; the callback says where they stood at the end.
    status = callback.layout_status
    assert status.run_dir == str(tmp_path / "r") and status.tensors == len(expected)
    assert (status.message() in table) == bool(status.pending) and (status.worker is not None or not status.pending)
