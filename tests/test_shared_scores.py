"""One forward pass of the probe on a step where snapshots and pictures both log (`SharedScores`)."""

import keras
import numpy as np
import pytest

from projector_export.images import ImageLogger
from projector_export.prediction import SharedScores
from projector_export.snapshots import EmbeddingSnapshots

N_TRAIN, N_TEST, N_PROBE = 48, 30, 12


def _tiny_cnn() -> keras.Model:
    inputs = keras.Input((8, 8, 1), name="images")
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name="tiny")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class _CountingModel:
    """Counts the rows the model is asked to predict, batch by batch (wraps `predict_on_batch`, which the
    pictures' predictions go through, and keeps its results)."""

    def __init__(self, model):
        self.rows, self._predict = [], model.predict_on_batch
        model.predict_on_batch = self

    def __call__(self, x, *args, **kwargs):
        self.rows.append(len(x))
        return self._predict(x, *args, **kwargs)


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (N_TRAIN + N_TEST, 8, 8, 1)).astype(np.float32)
    return x[:N_TRAIN], rng.integers(0, 3, N_TRAIN), x[N_TRAIN:], rng.integers(0, 3, N_TEST)


def test_take_hands_out_only_the_same_step_and_the_first_rows():
    images = np.arange(10 * 4, dtype=np.float32).reshape(10, 2, 2)
    scores = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    shared = SharedScores()
    assert shared.take(0, images) is None
    shared.put(7, images[:3], scores)
    assert shared.take(7, images) is scores
    assert shared.take(7, images.copy()) is scores  # equal rows, another array
    assert shared.take(8, images) is None  # another step: the weights have changed
    assert shared.take(7, images[1:]) is None  # not the first rows
    assert shared.take(7, images[:2]) is None  # fewer rows than the scores
    shared.put(9, [images[:3]], scores)  # not an array: nothing is kept
    assert shared.take(9, images) is None and shared.take(7, images) is None


def test_pictures_predict_only_the_rows_the_probe_does_not_cover(data, tmp_path):
    x, y, x_test, y_test = data
    keras.utils.set_random_seed(0)
    model = _tiny_cnn()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    alone = ImageLogger(x_test, y_test, tmp_path, run="alone", pattern_steps=0)
    alone.set_model(model)
    expected = alone._probabilities(5)

    shared = SharedScores()
    shared.put(5, x_test[:N_PROBE], model.predict(x_test[:N_PROBE], verbose=0))  # before the counting starts
    logger = ImageLogger(x_test, y_test, tmp_path, run="shared", pattern_steps=0, shared_scores=shared)
    logger.set_model(model)
    counting = _CountingModel(model)
    np.testing.assert_array_equal(logger._probabilities(5), expected)
    assert counting.rows == [N_TEST - N_PROBE]
    np.testing.assert_array_equal(logger._probabilities(6), expected)  # another step: all rows predicted
    assert counting.rows == [N_TEST - N_PROBE, N_TEST]


def test_training_with_both_callbacks_runs_the_probe_once_per_shared_step(data, tmp_path):
    x, y, x_test, y_test = data
    keras.utils.set_random_seed(0)
    model = _tiny_cnn()
    shared = SharedScores()
    snapshots = EmbeddingSnapshots(x_test[:N_PROBE], y_test[:N_PROBE], tmp_path, run="run", every=1000,
                                   shared_scores=shared, verbose=False)
    pictures = ImageLogger(x_test, y_test, tmp_path, run="run", every=1000, pattern_steps=0, shared_scores=shared)
    counting = _CountingModel(model)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[snapshots, pictures])
    # Start and end of training: both log, and the pictures predict only the 18 rows outside the probe.
    assert counting.rows == [N_TEST - N_PROBE, N_TEST - N_PROBE]
    final = model.predict(x_test, verbose=0)
    np.testing.assert_array_equal(shared.take(N_TRAIN // 8, x_test), final[:N_PROBE])


def test_shared_scores_of_the_wrong_type_are_refused(tmp_path):
    with pytest.raises(TypeError, match="shared_scores"):
        ImageLogger(np.zeros((6, 4, 4)), np.zeros(6, int), tmp_path, shared_scores={})
    with pytest.raises(TypeError, match="shared_scores"):
        EmbeddingSnapshots(np.zeros((6, 4, 4)), None, tmp_path, shared_scores={})
