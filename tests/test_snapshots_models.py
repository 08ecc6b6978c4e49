"""EmbeddingSnapshots on every kind of Keras model and input, read back through TensorBoard's projector plugin.

Tiny models, a few steps, data made here: token ids with an Embedding layer and its vocabulary, tabular rows with
separate thumbnails, RGB images, labels=None, a subclassed model (refused without `features`, served with it),
a multi-input multi-output model, a nested model, and the PCA note logged at the snapshot's step.
"""

import urllib.request

import keras
import numpy as np
import pytest
from _projector_client import ProjectorClient, sprite_cell
from _tensorboard_server import TensorBoardServer
from tensorboard.backend.event_processing import event_accumulator

from projector_export.error_metadata import COLUMNS, DYNAMICS_COLUMNS
from projector_export.metadata import REDUCTION_TAG
from projector_export.metadata_tsv import BLANK_VALUE
from projector_export.naming import CLASS_EMBEDDING_NAME
from projector_export.snapshots import EmbeddingSnapshots, export_model_layers

N = 12
VOCABULARY = ["", "[UNK]", *(f"w{i}" for i in range(2, 10))]


def _fit(model, x, y, callback, steps=3, batch_size=4):
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                  if y is not None and np.ndim(y) == 1 else "mse")
    model.fit(x, y, batch_size=batch_size, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[callback])


def _tensors(client, run):
    return {e["tensorName"]: [int(s) for s in e["tensorShape"]] for e in client.info(run)["embeddings"]}


def _scalar_tags(client, run):
    return set(client.scalars(run))


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A bag-of-words classifier: token ids -> Embedding -> mean -> 3 classes, snapshots at steps 0, 2, 3."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, len(VOCABULARY), (N, 5))
    labels = np.arange(N) % 3
    inputs = keras.Input((5,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(len(VOCABULARY), 4, name="embedding")(inputs)
    x = keras.layers.GlobalAveragePooling1D(name="pooled")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name="text")
    logdir = tmp_path_factory.mktemp("logs")
    sentences = [" ".join(VOCABULARY[t] or "_" for t in row) for row in tokens]
    callback = EmbeddingSnapshots(tokens, labels, logdir, run="text", every=2, layers=["pooled"],
                                  embedding_layers={"embedding": VOCABULARY}, metadata={"sentence": sentences},
                                  class_names=["a", "b", "c"], verbose=False)
    _fit(model, tokens, labels, callback)
    return dict(client=ProjectorClient(logdir), model=model, tokens=tokens, labels=labels, sentences=sentences,
                logdir=logdir)


def test_the_tensorboard_program_serves_the_vocabulary_and_the_users_column(text_run):
    with TensorBoardServer(text_run["logdir"]) as server:
        server.wait_for_plugins(("projector",))
        route = f"{server.url}/data/plugin/projector"
        info = server.get_json("/data/plugin/projector/info", run="text")
        assert {e["tensorName"] for e in info["embeddings"]} >= {"embedding/step_000003", "pooled/step_000003"}
        with urllib.request.urlopen(f"{route}/metadata?run=text&name=embedding/step_000003", timeout=30) as answer:
            assert answer.read().decode().splitlines() == [BLANK_VALUE, *VOCABULARY[1:]]
        with urllib.request.urlopen(f"{route}/metadata?run=text&name=pooled/step_000003", timeout=30) as answer:
            assert answer.read().decode().splitlines()[0].split("\t") == [*COLUMNS, *DYNAMICS_COLUMNS, "sentence"]


def test_token_model_exports_the_pooled_layer_the_class_embedding_and_the_embedding_weights(text_run):
    steps = (0, 2, 3)
    assert _tensors(text_run["client"], "text") == {
        **{f"pooled/step_{s:06d}": [N, 4] for s in steps},
        **{f"{CLASS_EMBEDDING_NAME}/step_{s:06d}": [3, 4] for s in steps},
        **{f"embedding/step_{s:06d}": [len(VOCABULARY), 4] for s in steps},
    }


def test_embedding_weights_carry_the_vocabulary_and_are_the_layers_weights(text_run):
    client, model = text_run["client"], text_run["model"]
    weights = client.tensor("text", "embedding/step_000003")
    np.testing.assert_array_equal(weights, model.get_layer("embedding").get_weights()[0])
    # One column (the vocabulary), so no header; the padding token "" is written as the blank placeholder.
    assert client.metadata_columns("text", "embedding/step_000003") == {"label": [BLANK_VALUE, *VOCABULARY[1:]]}
    assert "sprite" not in client.embedding_info("text", "embedding/step_000003")


def test_pooled_sentences_are_the_mean_of_their_word_vectors(text_run):
    client = text_run["client"]
    weights = client.tensor("text", "embedding/step_000003")
    expected = weights[text_run["tokens"]].mean(axis=1)
    np.testing.assert_allclose(client.tensor("text", "pooled/step_000003"), expected, rtol=1e-5, atol=1e-7)


def test_token_metadata_has_our_columns_then_the_users_and_no_sprite(text_run):
    client = text_run["client"]
    columns = client.metadata_columns("text", "pooled/step_000000")
    assert list(columns) == [*COLUMNS, *DYNAMICS_COLUMNS, "sentence"]
    assert columns["sentence"] == text_run["sentences"]
    assert columns["label"] == [["a", "b", "c"][i] for i in text_run["labels"]]
    assert "sprite" not in client.embedding_info("text", "pooled/step_000000")  # token ids are not pictures
    assert _scalar_tags(client, "text") == {"separability/pooled"}


def test_every_zero_is_off(tmp_path):
    rows = np.random.default_rng(3).normal(size=(N, 4)).astype(np.float32)
    labels = np.arange(N) % 2
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="logits")])
    callback = EmbeddingSnapshots(rows, labels, tmp_path, run="off", every=0, verbose=False)
    _fit(model, rows, labels, callback, steps=2)
    assert not (tmp_path / "off").exists()


def test_mlp_on_flat_pixels_shows_the_separate_thumbnails(tmp_path):
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    thumbnails = rng.integers(0, 256, (N, 6, 6), dtype=np.uint8)
    flat = thumbnails.reshape(N, -1).astype(np.float32) / 255
    labels = np.arange(N) % 2
    model = keras.Sequential([keras.Input((36,)), keras.layers.Dense(5, activation="relu", name="hidden"),
                              keras.layers.Dense(2, name="logits")])
    callback = EmbeddingSnapshots(flat, labels, tmp_path, run="mlp", every=1000, thumbnails=thumbnails, verbose=False)
    _fit(model, flat, labels, callback, steps=2)
    client = ProjectorClient(tmp_path)
    assert _tensors(client, "mlp") == {"hidden/step_000000": [N, 5], "logits/step_000000": [N, 2],
                                       "hidden/step_000002": [N, 5], "logits/step_000002": [N, 2],
                                       "class_weights/step_000000": [2, 5], "class_weights/step_000002": [2, 5]}
    sprite = client.sprite("mlp", "hidden/step_000002")
    assert [int(d) for d in client.embedding_info("mlp", "hidden/step_000002")["sprite"]["singleImageDim"]] == [6, 6]
    for i in range(N):
        np.testing.assert_array_equal(sprite_cell(sprite, i, (6, 6)).reshape(6, 6, -1)[..., 0], thumbnails[i])


def test_cnn_on_rgb_images_draws_rgb_thumbnails(tmp_path):
    keras.utils.set_random_seed(2)
    images = np.random.default_rng(2).random((N, 8, 8, 3)).astype(np.float32)
    labels = np.arange(N) % 3
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, name="conv1")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))
    callback = EmbeddingSnapshots(images, labels, tmp_path, run="rgb", every=1000, verbose=False)
    _fit(model, images, labels, callback, steps=1)
    client = ProjectorClient(tmp_path)
    assert set(_tensors(client, "rgb")) == {f"{layer}/step_{s:06d}" for layer in ("conv1", "logits", "class_weights")
                                            for s in (0, 1)}
    sprite = client.sprite("rgb", "conv1/step_000001")
    assert sprite.ndim == 3 and sprite.shape[2] == 3
    for i in range(N):
        np.testing.assert_array_equal(sprite_cell(sprite, i, (8, 8)), np.rint(images[i] * 255).astype(np.uint8))


def test_without_labels_only_the_layers_thumbnails_and_users_metadata(tmp_path):
    keras.utils.set_random_seed(3)
    rows = np.random.default_rng(3).random((N, 3)).astype(np.float32)
    targets = rows.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="hidden"),
                              keras.layers.Dense(1, name="out")])
    metadata = {"id": [f"row{i}" for i in range(N)], "group": ["x", "y"] * (N // 2)}
    callback = EmbeddingSnapshots(rows, None, tmp_path, run="reg", every=1000, metadata=metadata)
    _fit(model, rows, targets, callback, steps=2)
    client = ProjectorClient(tmp_path)
    assert _tensors(client, "reg") == {"hidden/step_000000": [N, 4], "out/step_000000": [N, 1],
                                       "hidden/step_000002": [N, 4], "out/step_000002": [N, 1]}
    assert client.metadata_columns("reg", "hidden/step_000002") == metadata  # no error-case columns
    assert not any(tag.startswith("separability") for tag in _scalar_tags(client, "reg"))
    assert "sprite" not in client.embedding_info("reg", "hidden/step_000002")


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="sub")
        self.hidden = keras.layers.Dense(4, activation="relu", name="hidden")
        self.logits = keras.layers.Dense(3, name="logits")

    def call(self, x):
        return self.logits(self.hidden(x))


def test_a_subclassed_model_without_features_is_refused_before_the_first_step(tmp_path):
    rows, labels = np.zeros((N, 3), np.float32), np.arange(N) % 3
    model = _Subclassed()
    callback = EmbeddingSnapshots(rows, labels, tmp_path / "logs", run="sub")
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="subclassed model.*`features=lambda model, inputs"):
        model.fit(rows, labels, epochs=1, verbose=0, callbacks=[callback])
    assert int(model.optimizer.iterations.numpy()) == 0
    assert not (tmp_path / "logs").exists()


def test_a_subclassed_model_with_features_is_served(tmp_path):
    keras.utils.set_random_seed(4)
    rows, labels = np.random.default_rng(4).random((N, 3)).astype(np.float32), np.arange(N) % 3
    model = _Subclassed()
    callback = EmbeddingSnapshots(rows, labels, tmp_path, run="sub", every=1000, verbose=False,
                                  features=lambda m, x: {"hidden": m.hidden(x)}, class_layer="logits")
    _fit(model, rows, labels, callback, steps=2)
    client = ProjectorClient(tmp_path)
    assert _tensors(client, "sub") == {"hidden/step_000000": [N, 4], "hidden/step_000002": [N, 4],
                                       "class_weights/step_000000": [3, 4], "class_weights/step_000002": [3, 4]}
    np.testing.assert_allclose(client.tensor("sub", "hidden/step_000002"),
                               keras.ops.convert_to_numpy(model.hidden(rows)), rtol=1e-5)
    scores = model.predict(rows, verbose=0)
    columns = client.metadata_columns("sub", "hidden/step_000002")
    assert columns["prediction"] == [str(p) for p in scores.argmax(axis=1)]
    assert _scalar_tags(client, "sub") == {"separability/hidden"}


def test_multi_input_multi_output_model_by_layer_name(tmp_path):
    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    data = {"words": rng.integers(0, 10, (N, 4)), "numbers": rng.random((N, 2)).astype(np.float32)}
    labels = np.arange(N) % 2
    words = keras.Input((4,), dtype="int32", name="words")
    numbers = keras.Input((2,), name="numbers")
    pooled = keras.layers.GlobalAveragePooling1D(name="pooled")(keras.layers.Embedding(10, 3, name="emb")(words))
    joined = keras.layers.Concatenate(name="joined")([pooled, numbers])
    hidden = keras.layers.Dense(4, name="hidden")(joined)
    model = keras.Model({"words": words, "numbers": numbers},
                        [keras.layers.Dense(2, name="cls")(hidden), keras.layers.Dense(1, name="size")(hidden)])
    callback = EmbeddingSnapshots(data, labels, tmp_path, run="multi", every=1000, layers=["joined", "hidden"],
                                  embedding_layers={"emb": None}, verbose=False)
    model.compile("adam", [keras.losses.SparseCategoricalCrossentropy(from_logits=True), "mse"])
    model.fit(data, [labels, rng.random((N, 1))], batch_size=4, epochs=1, verbose=0, callbacks=[callback])
    client = ProjectorClient(tmp_path)
    assert _tensors(client, "multi") == {
        **{f"joined/step_{s:06d}": [N, 5] for s in (0, 3)}, **{f"hidden/step_{s:06d}": [N, 4] for s in (0, 3)},
        **{f"class_weights/step_{s:06d}": [2, 4] for s in (0, 3)}, **{f"emb/step_{s:06d}": [10, 3] for s in (0, 3)}}
    np.testing.assert_allclose(client.tensor("multi", "joined/step_000003")[:, 3:], data["numbers"], rtol=1e-6)
    assert client.metadata_columns("multi", "emb/step_000003") == {"label": [str(i) for i in range(10)]}
    predictions = model.predict(data, verbose=0)[0].argmax(axis=1)  # the first output holds the class scores
    assert client.metadata_columns("multi", "hidden/step_000003")["prediction"] == [str(p) for p in predictions]


def test_nested_model_layers_by_full_and_plain_name(tmp_path):
    keras.utils.set_random_seed(6)
    rows, labels = np.random.default_rng(6).random((N, 3)).astype(np.float32), np.arange(N) % 2
    e_in = keras.Input((3,))
    encoder = keras.Model(e_in, keras.layers.Dense(4, name="code")(e_in), name="encoder")
    x = keras.Input((3,))
    model = keras.Model(x, keras.layers.Dense(2, name="logits")(encoder(x)))
    with pytest.raises(ValueError, match="Unknown layer name.s. 'cod'.*encoder/code"):
        EmbeddingSnapshots(rows, labels, tmp_path, layers=["cod"], model=model)
    callback = EmbeddingSnapshots(rows, labels, tmp_path, run="nested", every=1000, layers=["code"], verbose=False)
    _fit(model, rows, labels, callback, steps=1)
    client = ProjectorClient(tmp_path)
    assert set(_tensors(client, "nested")) == {"encoder/code/step_000000", "encoder/code/step_000001",
                                               "class_weights/step_000000", "class_weights/step_000001"}
    np.testing.assert_allclose(client.tensor("nested", "encoder/code/step_000001"), encoder.predict(rows, verbose=0),
                               rtol=1e-5)


def test_the_pca_note_is_logged_at_the_snapshot_step(tmp_path):
    keras.utils.set_random_seed(7)
    rows, labels = np.random.default_rng(7).random((N, 3)).astype(np.float32), np.arange(N) % 2
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(300, name="wide"), keras.layers.Dense(2)])
    callback = EmbeddingSnapshots(rows, labels, tmp_path, run="wide", every=2, layers=["wide"], verbose=False)
    _fit(model, rows, labels, callback, steps=3)
    events = event_accumulator.EventAccumulator(str(tmp_path / "wide"), size_guidance={"tensors": 0})
    events.Reload()
    # Two notes per snapshot: the 300-wide layer and the class embedding (2 classes x 300 weights) are reduced.
    assert [event.step for event in events.Tensors(REDUCTION_TAG)] == [0, 0, 2, 2, 3, 3]


def test_export_model_layers_takes_the_same_arguments_and_embedding_weights_need_no_probe(tmp_path):
    model = keras.Sequential([keras.Input((5,), dtype="int32"), keras.layers.Embedding(10, 3, name="emb"),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2, name="dense")])
    snapshotter = export_model_layers(model, None, None, tmp_path, run="after", embedding_layers={"emb": VOCABULARY})
    seconds = snapshotter.records[0].seconds
    assert snapshotter.table().splitlines()[1:] == [f"{'step':<10}{'seconds':>10}", f"{'-':<10}{seconds:>10.1f}"]
    client = ProjectorClient(tmp_path)
    assert _tensors(client, "after") == {"emb": [10, 3]}
    np.testing.assert_array_equal(client.tensor("after", "emb"), model.get_layer("emb").get_weights()[0])
    with pytest.raises(ValueError, match="not a keras.layers.Embedding"):
        export_model_layers(model, None, None, tmp_path, embedding_layers={"dense": None})
    with pytest.raises(ValueError, match="has 3 entries but the layer has input_dim=10"):
        export_model_layers(model, None, None, tmp_path, embedding_layers={"emb": ["a", "b", "c"]})
    with pytest.raises(ValueError, match=r"inputs=None.*also labels"):
        export_model_layers(model, None, np.zeros(10, int), tmp_path, embedding_layers={"emb": None})


def test_a_sequential_model_built_by_fit_and_mismatched_class_names_refused_up_front(tmp_path):
    keras.utils.set_random_seed(8)
    rows, labels = np.random.default_rng(8).random((N, 3)).astype(np.float32), np.arange(N) % 2
    model = keras.Sequential([keras.layers.Dense(4, name="hidden"), keras.layers.Dense(2, name="logits")])
    callback = EmbeddingSnapshots(rows, labels, tmp_path, run="seq", every=1000, layers=["hidden"], verbose=False)
    _fit(model, rows, labels, callback, steps=1)  # no keras.Input: the model is built by fit, before step 1
    assert set(_tensors(ProjectorClient(tmp_path), "seq")) == {
        "hidden/step_000000", "hidden/step_000001", "class_weights/step_000000", "class_weights/step_000001"}
    with pytest.raises(ValueError, match="outputs 2 class scores but 3 class names"):
        EmbeddingSnapshots(rows, labels, tmp_path / "none", class_names=["a", "b", "c"], model=model)
    with pytest.raises(ValueError, match=r"Labels go up to 4 but model .* outputs 2 class scores"):
        EmbeddingSnapshots(rows, np.arange(N) % 5, tmp_path / "none", model=model)
    assert not (tmp_path / "none").exists()


def test_images_outside_the_unit_range_make_no_sprite_and_say_so(tmp_path):
    images = np.random.default_rng(9).normal(size=(N, 4, 4, 1)).astype(np.float32)
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(inputs)))
    with pytest.warns(UserWarning, match="outside \\[0, 1\\].*`thumbnails=`"):
        snapshotter = export_model_layers(model, images, np.arange(N) % 2, tmp_path, run="std")
    assert snapshotter.probe.thumbnails is None
    assert "sprite" not in ProjectorClient(tmp_path).embedding_info("std", "logits")


class _HeadFirst(keras.Model):
    """The class-score layer is created before the hidden one: the last Dense in attribute order is the hidden
    layer, which has as many units as there are classes."""

    def __init__(self):
        super().__init__(name="head_first")
        self.head = keras.layers.Dense(3, name="head")
        self.hidden = keras.layers.Dense(3, activation="relu", name="hidden")

    def call(self, x):
        return self.head(self.hidden(x))


def test_a_subclassed_models_class_embedding_is_only_the_layer_named_as_computing_the_scores(tmp_path):
    keras.utils.set_random_seed(10)
    rows, labels = np.random.default_rng(10).random((N, 4)).astype(np.float32), np.arange(N) % 3
    model = _HeadFirst()
    features = {"features": lambda m, x: {"hidden": m.hidden(x)}, "verbose": False, "every": 1000}
    with pytest.warns(UserWarning, match=r"No class embedding for the subclassed model.*class_layer="):
        _fit(model, rows, labels, EmbeddingSnapshots(rows, labels, tmp_path, run="unnamed", **features), steps=2)
    client = ProjectorClient(tmp_path)
    assert _tensors(client, "unnamed") == {"hidden/step_000000": [N, 3], "hidden/step_000002": [N, 3]}

    _fit(model, rows, labels, EmbeddingSnapshots(rows, labels, tmp_path, run="named", class_layer="head", **features),
         steps=1)
    served = ProjectorClient(tmp_path).tensor("named", f"{CLASS_EMBEDDING_NAME}/step_000001")  # compiled again
    np.testing.assert_array_equal(served, model.head.get_weights()[0].T)
    with pytest.raises(ValueError, match="Unknown layer name.*'heads'"):
        EmbeddingSnapshots(rows, labels, tmp_path, class_layer="heads", model=model, **features)


def test_class_layer_must_be_the_one_a_functional_model_computes_its_scores_with(tmp_path):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Softmax(name="probabilities")(keras.layers.Dense(3, name="head")(hidden)))
    rows, labels = np.zeros((N, 4), np.float32), np.arange(N) % 3
    snapshots = EmbeddingSnapshots(rows, labels, tmp_path, class_layer="head", model=model, verbose=False)
    assert snapshots.snapshotter.plan.class_layer == "head"  # read from the graph, through the softmax
    with pytest.raises(ValueError, match=r"computes its class scores with layer 'head'.*not 'hidden'"):
        EmbeddingSnapshots(rows, labels, tmp_path, class_layer="hidden", model=model)
    assert not any(tmp_path.iterdir())
