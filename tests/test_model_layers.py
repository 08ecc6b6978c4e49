"""The one way into a model: layer names (nested models too), layers by type, outputs, logits vs probabilities
(`model_layers`, `layer_outputs`, `class_scores`, `prediction`)."""

import keras
import numpy as np
import pytest

from projector_export import class_scores, model_layers
from projector_export.layer_outputs import LayerOutputs
from projector_export.prediction import num_rows


def _head(activation=None, softmax_layer=False, name="m") -> keras.Model:
    """2 inputs -> 2 class scores with known weights: logits [0, ln 3] for the input [1, 1]."""
    inputs = keras.Input((2,), name="x")
    dense = keras.layers.Dense(2, activation=activation, name="scores", kernel_initializer="zeros",
                               bias_initializer=keras.initializers.Constant([0.0, np.log(3.0)]))
    outputs = dense(inputs)
    if softmax_layer:
        outputs = keras.layers.Softmax(name="softmax")(outputs)
    return keras.Model(inputs, outputs, name=name)


@pytest.mark.parametrize(
    ("model", "probabilities"),
    [(_head(), False), (_head(activation="softmax"), True), (_head(softmax_layer=True), True),
     (keras.Sequential([keras.Input((2,)), keras.layers.Dense(2), keras.layers.Softmax()]), True),
     (keras.Sequential([keras.Input((2,)), keras.layers.Dense(2), keras.layers.Activation("softmax")]), True),
     (keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="relu")]), False)],
    ids=["logits", "dense-softmax", "softmax-layer", "sequential-softmax", "activation-softmax", "relu"],
)
def test_a_softmax_at_the_end_is_recognised_however_it_is_written(model, probabilities):
    assert class_scores.ends_in_softmax(model) is probabilities


@pytest.mark.parametrize("kind", ["logits", "dense-softmax", "softmax-layer", "nested-softmax"])
def test_class_probabilities_are_the_models_own_probabilities(kind):
    if kind == "nested-softmax":  # the softmax is the last layer of a model used as the outer model's last layer
        inner = _head(softmax_layer=True, name="inner")
        x = keras.Input((2,))
        model = keras.Model(x, inner(x))
    else:
        model = _head(activation="softmax" if kind == "dense-softmax" else None, softmax_layer=kind == "softmax-layer")
    scores = model.predict(np.ones((1, 2), np.float32), verbose=0)
    # Known answer: softmax([0, ln 3]) = [0.25, 0.75]; a second softmax would give [0.3775, 0.6225].
    np.testing.assert_allclose(class_scores.class_probabilities(model, scores), [[0.25, 0.75]], rtol=1e-6)


def test_a_subclassed_model_is_judged_by_its_scores():
    class Scores(keras.Model):
        def call(self, x):
            return x

    model = Scores()
    assert class_scores.ends_in_softmax(model) is None
    assert class_scores.scores_are_probabilities(model, np.array([[0.25, 0.75], [1.0, 0.0]]))
    assert not class_scores.scores_are_probabilities(model, np.array([[0.0, np.log(3.0)]]))
    np.testing.assert_allclose(class_scores.class_probabilities(model, np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]])


def _nested() -> keras.Model:
    """encoder (functional: dense, shared name 'proj') and head (Sequential: 'proj' again) inside one model."""
    e_in = keras.Input((4,), name="e_in")
    encoder = keras.Model(e_in, keras.layers.Dense(3, name="proj")(keras.layers.Dense(5, name="hidden")(e_in)),
                          name="encoder")
    head = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="proj")], name="head")
    x = keras.Input((4,), name="x")
    return keras.Model(x, head(encoder(x)), name="outer")


def test_nested_layers_have_full_names_and_plain_names_when_unique():
    model = _nested()
    assert list(model_layers.named_layers(model)) == [
        "x", "encoder", "encoder/e_in", "encoder/hidden", "encoder/proj", "head", "head/proj"]
    assert model_layers.resolve_layers(model, ["hidden", "head/proj", "encoder/hidden"]) == ["encoder/hidden",
                                                                                           "head/proj"]
    assert model_layers.default_layers(model) == ["encoder/hidden", "encoder/proj", "head/proj"]


def test_missing_and_ambiguous_names_list_the_valid_ones():
    model = _nested()
    with pytest.raises(ValueError, match=r"Ambiguous layer name 'proj'.*encoder/proj, head/proj"):
        model_layers.resolve_layers(model, ["proj"])
    with pytest.raises(ValueError, match=r"Unknown layer name.s. 'dense9'.*x, encoder, encoder/e_in, encoder/hidden"):
        model_layers.resolve_layers(model, ["dense9"])
    with pytest.raises(TypeError, match="split it first"):
        model_layers.resolve_layers(model, "hidden,proj")


def test_nested_layer_outputs_are_those_of_the_inner_layer():
    keras.utils.set_random_seed(0)
    model = _nested()
    x = np.random.default_rng(0).random((6, 4)).astype(np.float32)
    features, scores = LayerOutputs(model, ["encoder/hidden", "head/proj"])(x)
    encoder = model.get_layer("encoder")
    hidden = keras.Model(encoder.input, encoder.get_layer("hidden").output).predict(x, verbose=0)
    np.testing.assert_allclose(features["encoder/hidden"], hidden, rtol=1e-5)
    np.testing.assert_allclose(scores, model.predict(x, verbose=0), rtol=1e-5)
    np.testing.assert_array_equal(features["head/proj"], scores)


def test_layers_by_type_reach_into_nested_models():
    model = _nested()
    assert [layer.name for layer in model_layers.layers_of_type(model, keras.layers.Dense)] == ["hidden", "proj",
                                                                                               "proj"]
    assert [layer.name for layer in model_layers.layers_of_type(model, keras.layers.Dense, nested=False)] == []
    with pytest.raises(ValueError, match="no Conv2D layer"):
        model_layers.last_conv_layer(model)


def test_multi_input_rows_must_agree():
    assert num_rows({"a": np.zeros((3, 2)), "b": [np.zeros((3,)), np.zeros((3, 5))]}) == 3
    with pytest.raises(ValueError, match=r"different numbers of rows \[2, 3\]"):
        num_rows([np.zeros((3, 2)), np.zeros((2, 2))])
