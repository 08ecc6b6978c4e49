"""`TensorBoardScalars` and `StopAtStep` on a tiny model whose per-batch loss and accuracy are known in advance.

The model is one Dense unit without bias on all-zero inputs: it always predicts 0 and its gradient is 0, so
training changes nothing while the optimizer step still counts. Batch i of an epoch (batch size 1) has target
TARGETS[i], hence loss TARGETS[i]**2 (mean squared error) and binary accuracy 1 exactly when the target is 0.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from _projector_client import ProjectorClient

from training.callbacks import (
    LEARNING_RATE,
    TEST_ACCURACY,
    TEST_LOSS,
    TRAIN_ACCURACY,
    TRAIN_LOSS,
    PeriodicCheckpoints,
    StopAtStep,
    TensorBoardScalars,
)

TARGETS = [0.0, 0.0, 1.0, 2.0, 0.0, 3.0]  # per-batch loss 0, 0, 1, 4, 0, 9; accuracy 1, 1, 0, 0, 1, 0
LEARNING_RATE_VALUE = 0.25
RUN = "run"


def _model() -> keras.Model:
    inputs = keras.Input((1,))
    outputs = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.SGD(LEARNING_RATE_VALUE), loss="mse",
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    return model


def _data() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((len(TARGETS), 1), np.float32), np.array(TARGETS, np.float32).reshape(-1, 1)


def _fit(model, callbacks, *, epochs, validation=False, **kwargs):
    x, y = _data()
    validation_data = (np.zeros((2, 1), np.float32), np.full((2, 1), 2.0, np.float32)) if validation else None
    model.fit(x, y, batch_size=1, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks,
              validation_data=validation_data, **kwargs)


def _scalars(logdir) -> dict[str, dict[int, float]]:
    return ProjectorClient(str(logdir)).scalars(RUN)


def test_train_scalars_are_the_means_since_the_previous_point(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path / RUN))
    model = _model()
    _fit(model, [TensorBoardScalars(tmp_path, log_every=4, run=RUN, writer=writer)], epochs=2, validation=True)
    writer.close()
    served = _scalars(tmp_path)
    # Steps 1-4: batches 1-4; steps 5-8: batches 5, 6 and 1, 2 of the next epoch; steps 9-12: batches 3-6.
    assert served[TRAIN_LOSS] == pytest.approx({4: 5 / 4, 8: 9 / 4, 12: 14 / 4}, rel=1e-6)
    assert served[TRAIN_ACCURACY] == pytest.approx({4: 2 / 4, 8: 3 / 4, 12: 1 / 4}, rel=1e-6)
    assert served[LEARNING_RATE] == pytest.approx({4: LEARNING_RATE_VALUE, 8: LEARNING_RATE_VALUE,
                                                   12: LEARNING_RATE_VALUE})
    # Validation on two examples of target 2 with prediction 0, at the end of each epoch.
    assert served[TEST_LOSS] == pytest.approx({6: 4.0, 12: 4.0})
    assert served[TEST_ACCURACY] == pytest.approx({6: 0.0, 12: 0.0})


def test_last_partial_interval_and_a_second_fit_continue_the_optimizer_step(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path / RUN))
    model = _model()
    scalars = TensorBoardScalars(tmp_path, log_every=4, run=RUN, writer=writer)
    _fit(model, [scalars], epochs=1)  # steps 1-6: points at 4 and, at the end, 6 (batches 5-6)
    _fit(model, [scalars], epochs=1)  # steps 7-12: points at 8 (batches 1-2) and 12 (batches 3-6)
    writer.close()
    assert _scalars(tmp_path)[TRAIN_LOSS] == pytest.approx({4: 5 / 4, 6: 9 / 2, 8: 0.0, 12: 14 / 4}, rel=1e-6)


def test_train_scalars_with_steps_per_execution(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path / RUN))
    model = _model()
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE_VALUE), loss="mse", steps_per_execution=3,
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy")])
    _fit(model, [TensorBoardScalars(tmp_path, log_every=4, run=RUN, writer=writer)], epochs=2)
    writer.close()
    # Keras reports steps 3, 6, 9, 12: a multiple of 4 is passed at 6 (batches 1-6), 9 (1-3), 12 (4-6).
    assert _scalars(tmp_path)[TRAIN_LOSS] == pytest.approx({6: 14 / 6, 9: 1 / 3, 12: 13 / 3}, rel=1e-6)


@pytest.mark.parametrize("steps_per_epoch", [3, 4])
def test_stop_at_step_stops_at_exactly_the_step_across_two_fits(steps_per_epoch):
    model = _model()
    x, y = _data()
    repeat = tf.data.Dataset.from_tensor_slices((x, y)).batch(1).repeat()
    model.fit(repeat, epochs=10, steps_per_epoch=steps_per_epoch, verbose=0, callbacks=[StopAtStep(5)])
    assert int(model.optimizer.iterations.numpy()) == 5
    model.fit(repeat, epochs=10, steps_per_epoch=steps_per_epoch, verbose=0, callbacks=[StopAtStep(11)])
    assert int(model.optimizer.iterations.numpy()) == 11


@pytest.mark.parametrize("cls, name", [(StopAtStep, "steps"), (TensorBoardScalars, "log_every")])
def test_int_arguments_are_checked(cls, name):
    args = ("logs",) if cls is TensorBoardScalars else ()  # a log dir: nothing is written before a step
    expected = f"Invalid value for argument `{name}`. Received: {name}=0. Expected an int >= 1"
    with pytest.raises(ValueError, match=expected):
        cls(*args, 0)
    with pytest.raises(TypeError, match=f"Invalid value for argument `{name}`"):
        cls(*args, 2.0)


def test_periodic_checkpoints_every_k_steps_at_the_end_and_keep(tmp_path):
    model = _model()
    directory = tmp_path / "checkpoints"
    repeat = tf.data.Dataset.from_tensor_slices(_data()).batch(1).repeat()
    model.fit(repeat, epochs=2, steps_per_epoch=5, verbose=0,
              callbacks=[PeriodicCheckpoints(tmp_path, 4, keep=2, total_steps=10)])
    # Saved at steps 4, 8 and 10 (the end); keep=2 leaves the two newest, and no temporary file.
    assert sorted(path.name for path in directory.iterdir()) == ["step_000008.keras", "step_000010.keras"]
    restored = keras.models.load_model(directory / "step_000010.keras")
    assert int(restored.optimizer.iterations.numpy()) == 10


def test_periodic_checkpoints_pad_like_snapshot_names(tmp_path):
    model = _model()
    _fit(model, [PeriodicCheckpoints(tmp_path, 3, total_steps=1_234_567)], epochs=1)
    saved = sorted(path.name for path in (tmp_path / "checkpoints").iterdir())
    assert saved == ["step_0000003.keras", "step_0000006.keras"]
