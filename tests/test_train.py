"""`projector-train`: a short real training on MNIST whose scalars a real TensorBoard server serves back."""

from __future__ import annotations

import re
import runpy
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from _tensorboard_server import TensorBoardServer
from training.callbacks import LEARNING_RATE, TEST_ACCURACY, TEST_LOSS, TRAIN_ACCURACY, TRAIN_LOSS
from training.mnist import MnistData
from training.train import MODEL_FILENAME, TrainConfig, default_run_name, main, train_and_evaluate

STEPS, EVAL_EVERY, LOG_EVERY = 200, 100, 50
TAGS = {TRAIN_LOSS, TRAIN_ACCURACY, TEST_LOSS, TEST_ACCURACY, LEARNING_RATE}
# The optional features (layer snapshots, images) have their own tests; off here to keep these runs short.
FEATURES_OFF = dict(snapshot_every=0, images_every=0)
FEATURES_OFF_FLAGS = ["--snapshot-every", "0", "--images-every", "0"]


class _Recorder(keras.callbacks.Callback):
    """What Keras reported: per step (index in its epoch, running means), and the epoch logs."""

    def __init__(self):
        super().__init__()
        self.batches: list[tuple[int, dict]] = []
        self.epochs: list[dict] = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append((batch, {key: float(value) for key, value in logs.items()}))

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append({key: float(value) for key, value in logs.items()})


def _window_means(recorder: _Recorder, key: str, every: int) -> dict[int, float]:
    """Mean of the batch values of `key` over each window of `every` steps, from Keras' running means."""
    sums, means = 0.0, {}
    for step, (batch, logs) in enumerate(recorder.batches, start=1):
        previous = recorder.batches[step - 2][1][key] if batch > 0 else 0.0
        sums += (batch + 1) * logs[key] - batch * previous
        if step % every == 0:
            means[step], sums = sums / every, 0.0
    return means


@pytest.fixture(scope="module")
def short_run(mnist, tmp_path_factory):
    logdir = tmp_path_factory.mktemp("logs")
    config = TrainConfig(
        model="tutorial", steps=STEPS, eval_every=EVAL_EVERY, log_every=LOG_EVERY, seed=0,
        logdir=str(logdir), run="short", verbose=0, **FEATURES_OFF,
    )
    recorder = _Recorder()
    result = train_and_evaluate(config, data=mnist, extra_callbacks=[recorder])
    return config, result, recorder


@pytest.mark.integration
def test_short_run_learns_and_saves(short_run, mnist):
    config, result, _ = short_run
    assert result.steps == STEPS
    assert result.test_accuracy > 0.7  # chance is 0.1; 200 steps of Adam 1e-4 reach about 0.85
    assert result.run_dir == Path(config.logdir) / "short"
    files = sorted(path.name for path in result.run_dir.iterdir())
    assert len(files) == 2 and files[0].startswith("events.out.tfevents.") and files[1] == MODEL_FILENAME
    loaded = keras.models.load_model(result.run_dir / MODEL_FILENAME)
    images = mnist.test_images[:100]
    np.testing.assert_allclose(loaded.predict(images, verbose=0), result.model.predict(images, verbose=0), atol=1e-5)


@pytest.mark.integration
def test_tensorboard_serves_the_logged_scalars(short_run):
    config, result, recorder = short_run
    with TensorBoardServer(Path(config.logdir)) as board:
        deadline = time.monotonic() + 90
        while True:
            tags = board.get_json("/data/plugin/scalars/tags").get("short", {})
            if set(tags) == TAGS or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert set(tags) == TAGS
        served = {
            tag: {step: value for _, step, value in board.get_json("/data/plugin/scalars/scalars", run="short", tag=tag)}
            for tag in TAGS
        }

    evaluations = [EVAL_EVERY * (i + 1) for i in range(STEPS // EVAL_EVERY)]
    for tag, key in ((TEST_ACCURACY, "val_accuracy"), (TEST_LOSS, "val_loss")):
        assert list(served[tag]) == evaluations
        assert list(served[tag].values()) == pytest.approx([logs[key] for logs in recorder.epochs], rel=1e-6)
    assert served[TEST_ACCURACY][STEPS] == pytest.approx(result.test_accuracy, rel=1e-6)
    for tag, key in ((TRAIN_LOSS, "loss"), (TRAIN_ACCURACY, "accuracy")):
        expected = _window_means(recorder, key, LOG_EVERY)
        assert list(served[tag]) == list(expected) == list(range(LOG_EVERY, STEPS + 1, LOG_EVERY))
        assert list(served[tag].values()) == pytest.approx(list(expected.values()), rel=1e-4, abs=1e-5)
    assert served[LEARNING_RATE] == pytest.approx({step: config.learning_rate for step in served[TRAIN_LOSS]})
    losses = list(served[TRAIN_LOSS].values())
    assert losses[-1] < losses[0]


@pytest.mark.integration
def test_refuses_non_empty_run_dir(short_run, capsys):
    config, result, _ = short_run
    before = {path: path.stat().st_mtime_ns for path in result.run_dir.iterdir()}
    with pytest.raises(FileExistsError, match=r"already holds files of another run.*--overwrite"):
        train_and_evaluate(config)
    with pytest.raises(SystemExit, match=r"projector-train: error: Run directory .*short already holds files"):
        main(["--logdir", config.logdir, "--run", "short"])
    assert {path: path.stat().st_mtime_ns for path in result.run_dir.iterdir()} == before


@pytest.mark.integration
def test_seed_repeats_and_overwrite_replaces(mnist, tmp_path):
    config = TrainConfig(model="small", steps=20, eval_every=20, seed=7, logdir=str(tmp_path), run="rep", verbose=0,
                         **FEATURES_OFF)
    first = train_and_evaluate(config, data=mnist)
    (first.run_dir / "stale.txt").write_text("from an older run")
    second = train_and_evaluate(TrainConfig(**{**vars(config), "overwrite": True}), data=mnist)
    assert second.test_loss == first.test_loss
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    names = sorted(path.name for path in second.run_dir.iterdir())
    assert len(names) == 2 and names[1] == MODEL_FILENAME  # the stale file and the first event file are gone


@pytest.mark.integration
def test_cli_exact_steps_and_output(mnist_dir, tmp_path, capsys):
    main([
        "--model", "mlp", "--steps", "10", "--eval-every", "4", "--log-every", "3", "--batch-size", "32",
        "--logdir", str(tmp_path), "--run", "cli", "--data-dir", str(mnist_dir), *FEATURES_OFF_FLAGS,
    ])
    out = capsys.readouterr().out
    assert re.search(r"Final test accuracy after 10 steps: \d+\.\d\d%", out)
    assert f"tensorboard --logdir {tmp_path}" in out
    assert (tmp_path / "cli" / MODEL_FILENAME).is_file()


def test_cli_rejects_bad_values(capsys):
    for argv, message in (
        (["--steps", "0"], "steps must be a positive integer. Received: steps=0"),
        (["--run", "../elsewhere"], "run must be a relative name inside the logdir"),
        (["--model", "resnet"], "invalid choice: 'resnet'"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_config_validation():
    with pytest.raises(ValueError, match="Unknown model 'resnet'. Expected one of: tutorial, lenet"):
        TrainConfig(model="resnet")
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        TrainConfig(learning_rate=0.0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        TrainConfig(batch_size=True)


def test_default_run_name():
    import datetime

    assert default_run_name("lenet", datetime.datetime(2026, 1, 2, 3, 4, 5)) == "lenet-20260102-030405"


@pytest.mark.filterwarnings("ignore:'training.train' found in sys.modules:RuntimeWarning")
def test_python_dash_m_entry_point(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["projector-train", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("training.train", run_name="__main__", alter_sys=False)
    assert exit_info.value.code == 0
    assert "--eval-every" in capsys.readouterr().out


def test_bad_data_reported_before_anything_is_written(tmp_path):
    with pytest.raises(SystemExit, match=r"projector-train: error: MNIST directory .*nowhere .* does not exist"):
        main(["--data-dir", str(tmp_path / "nowhere"), "--logdir", str(tmp_path / "logs"), "--run", "r"])
    tiny = MnistData(
        train_images=np.zeros((10, 8, 8), np.uint8), train_labels=np.arange(10, dtype=np.uint8) % 2,
        test_images=np.zeros((4, 8, 8), np.uint8), test_labels=np.arange(4, dtype=np.uint8) % 2,
        class_names=("a", "b"), directory=tmp_path, official=False,
    )
    with pytest.raises(ValueError, match="batch_size=64 is larger than the 10 training images"):
        train_and_evaluate(TrainConfig(logdir=str(tmp_path / "logs"), run="r", **FEATURES_OFF), data=tiny)
    assert not (tmp_path / "logs").exists()
