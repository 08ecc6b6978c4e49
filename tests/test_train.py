"""`projector-train`: a short real training on MNIST whose scalars a real TensorBoard server serves back."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from _idx_files import tiny_set
from _tensorboard_server import TensorBoardServer

from training import export_model
from training.callbacks import LEARNING_RATE, TEST_ACCURACY, TEST_LOSS, TRAIN_ACCURACY, TRAIN_LOSS
from training.mnist import MnistData
from training.train import MODEL_FILENAME, TrainConfig, build_parser, default_run_name, main, train_and_evaluate

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
            tag: {step: value
                  for _, step, value in board.get_json("/data/plugin/scalars/scalars", run="short", tag=tag)}
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
    with pytest.raises(SystemExit) as exit_info:
        main(["--logdir", config.logdir, "--run", "short"])
    assert exit_info.value.code == 2
    assert re.fullmatch(r"projector-train: error: Run directory .*short already holds files.*--overwrite.*\n",
                        capsys.readouterr().err)
    assert {path: path.stat().st_mtime_ns for path in result.run_dir.iterdir()} == before


@pytest.mark.integration
def test_seed_repeats_and_overwrite_replaces(mnist, tmp_path):
    config = TrainConfig(model="small", steps=20, eval_every=20, seed=7, logdir=str(tmp_path), run="rep", verbose=0,
                         **FEATURES_OFF)
    first = train_and_evaluate(config, data=mnist)
    (first.run_dir / "stale.txt").write_text("from an older run")
    second = train_and_evaluate(TrainConfig(**{**vars(config), "overwrite": True}), data=mnist)
    assert second.test_loss == first.test_loss
    for a, b in zip(first.model.get_weights(), second.model.get_weights(), strict=True):
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
        (["--steps", "0"], "argument --steps: expected an int >= 1, received '0'"),
        (["--run", "../elsewhere"], "Invalid run '../elsewhere': it contains '/' (path separator)"),
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
    with pytest.raises(TypeError, match=r"`batch_size`\. Received: batch_size=True \(bool\)\. Expected an int"):
        TrainConfig(batch_size=True)
    with pytest.raises(ValueError, match=r"Received: snapshot_every=-1\. Expected an int >= 0 \(0: off\)"):
        TrainConfig(snapshot_every=-1)
    with pytest.raises(ValueError, match=r"Invalid run 'a&b': it contains '&'"):
        TrainConfig(run="a&b")


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


def test_bad_data_reported_before_anything_is_written(tmp_path, capsys):
    error = _input_error(capsys, "--data-dir", str(tmp_path / "nowhere"), "--logdir", str(tmp_path / "logs"))
    assert re.match(r"projector-train: error: MNIST directory .*nowhere .* does not exist", error)
    tiny = MnistData(
        train_images=np.zeros((10, 8, 8), np.uint8), train_labels=np.arange(10, dtype=np.uint8) % 2,
        test_images=np.zeros((4, 8, 8), np.uint8), test_labels=np.arange(4, dtype=np.uint8) % 2,
        class_names=("a", "b"), directory=tmp_path, official=False,
    )
    with pytest.raises(ValueError, match="batch_size=64 is larger than the 10 training images"):
        train_and_evaluate(TrainConfig(logdir=str(tmp_path / "logs"), run="r", **FEATURES_OFF), data=tiny)
    assert not (tmp_path / "logs").exists()


def _input_error(capsys, *argv: str) -> str:
    """Runs projector-train with `argv`; asserts the input-error exit (2) and one line on stderr, returns it."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("projector-train: error: "), err
    return err


@pytest.fixture
def tiny_dir(tmp_path) -> Path:
    tiny_set(tmp_path / "mnist")
    return tmp_path / "mnist"


def test_logdir_that_is_a_file(tmp_path, tiny_dir, capsys):
    (tmp_path / "logs").write_text("not a directory")
    error = _input_error(capsys, "--logdir", str(tmp_path / "logs"), "--run", "r", "--data-dir", str(tiny_dir))
    assert f"Invalid logdir '{tmp_path / 'logs'}': '{tmp_path / 'logs'}' is a file" in error
    assert (tmp_path / "logs").read_text() == "not a directory"


def test_read_only_logdir(tmp_path, tiny_dir, capsys, monkeypatch):
    logdir = tmp_path / "logs"
    logdir.mkdir()
    access = os.access
    # Tests run as root, whom chmod 555 does not stop; os.access is what the check asks (as on a read-only mount).
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(logdir) else access(path, mode))
    error = _input_error(capsys, "--logdir", str(logdir), "--run", "r", "--data-dir", str(tiny_dir))
    assert f"Invalid --logdir '{logdir / 'r'}': '{logdir}' is not writable by this user" in error
    assert list(logdir.iterdir()) == []


@pytest.mark.parametrize(
    ("run", "message"),
    [("r" * 256, "it is 256 bytes long, longer than a file name may be (255)"),
     ("a&b", "it contains '&', which break TensorBoard's URLs"),
     ("a/b", "it contains '/' (path separator)")],
)
def test_run_names_refused_before_any_directory_is_made(tmp_path, tiny_dir, capsys, run, message):
    error = _input_error(capsys, "--logdir", str(tmp_path / "logs"), "--run", run, "--data-dir", str(tiny_dir))
    assert f"Invalid run '{run}': {message}" in error
    assert not (tmp_path / "logs").exists()


def test_mnist_file_without_read_permission(tmp_path, tiny_dir, capsys, monkeypatch):
    unreadable = tiny_dir / "train-images-idx3-ubyte"
    read_bytes = Path.read_bytes

    def refuse(path):  # what a file without read permission answers a non-root user
        if path == unreadable:
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    error = _input_error(capsys, "--logdir", str(tmp_path / "logs"), "--run", "r", "--data-dir", str(tiny_dir))
    assert f"Cannot read {unreadable}: Permission denied. Fix: make it readable" in error
    assert not (tmp_path / "logs").exists()


def test_classes_file_not_utf8(tmp_path, tiny_dir, capsys):
    (tiny_dir / "classes.txt").write_bytes("zéro\none\ntwo\n".encode("latin-1"))
    error = _input_error(capsys, "--logdir", str(tmp_path / "logs"), "--run", "r", "--data-dir", str(tiny_dir))
    assert f"Cannot read {tiny_dir / 'classes.txt'}: 'utf-8' codec can't decode" in error
    assert "Expected a UTF-8 text file with one class name per line" in error
    assert not (tmp_path / "logs").exists()


def test_idx_header_whose_dimensions_overflow(tmp_path, tiny_dir, capsys):
    (tiny_dir / "t10k-images-idx3-ubyte").write_bytes((0x0803).to_bytes(4, "big") + b"\xff" * 12)
    error = _input_error(capsys, "--logdir", str(tmp_path / "logs"), "--run", "r", "--data-dir", str(tiny_dir))
    assert f"{tiny_dir / 't10k-images-idx3-ubyte'} is truncated: its header declares 4294967295×" in error
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [("--seed", "-1", "an int >= 0"), ("--batch-size", "0", "an int >= 1"), ("--probe-size", "5", "an int >= 6"),
     ("--snapshot-every", "-1", "an int >= 0 (0: off)"), ("--images-every", "x", "an int >= 0 (0: off)")],
)
def test_int_flags_name_the_flag(capsys, flag, value, expected):
    error = _input_error(capsys, flag, value)
    assert f"argument {flag}: expected {expected}, received '{value}'" in error


def test_help_shows_each_default_once_and_imports_no_tensorflow():
    """`--help` of both training commands, in a fresh interpreter: no TensorFlow or Keras imported."""
    script = (
        "import contextlib, io, json, sys\n"
        "from training import export_model, train\n"
        "texts = []\n"
        "for module in (train, export_model):\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "        module.main(['--help'])\n"
        "    texts.append(out.getvalue())\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print(json.dumps({'texts': texts, 'heavy': heavy}))\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["heavy"] == []
    assert done.stderr == ""  # no TensorFlow start-up lines either
    train_help, export_help = answer["texts"]
    assert train_help.startswith("usage: projector-train") and export_help.startswith("usage: projector-export-model")
    for text in (train_help, export_help):
        options = re.split(r"\n  (?=-)", text.split("options:", 1)[1])[1:]
        assert len(options) >= 5
        for option in options:
            described = " ".join(option.split())
            assert described.count("default") <= 1, described
            assert "(default: None)" not in described and "(default: False)" not in described
    assert "--steps STEPS optimizer steps (batches) (default: 10000)" in " ".join(train_help.split())
    assert "--run RUN run name (default: <model>-<YYYYmmdd-HHMMSS>)" in " ".join(train_help.split())
    for parser in (build_parser(), export_model.build_parser()):
        assert all(action.help for action in parser._actions), "every flag has help text"


def _tensorflow_start_up(verbose: bool, env_level: str | None) -> str:
    """stderr of a fresh interpreter that imports TensorFlow as the training commands do."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}
    if env_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = env_level
    script = f"from training.tensorflow_logs import import_tensorflow_quietly; import_tensorflow_quietly({verbose})\n" \
             "import tensorflow as tf; tf.constant(1.0) + 1.0\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stderr


# What TensorFlow's x86 builds print when they load: the oneDNN notice where oneDNN is on by default (CPUs with
# AVX-512), the CPU-feature notice where the CPU has instructions the build does not use (e.g. AVX2 without AVX-512).
START_UP_NOTICE = re.compile(r"oneDNN custom operations are on|cpu_feature_guard")


def test_tensorflow_start_up_lines_hidden_unless_asked():
    assert _tensorflow_start_up(verbose=False, env_level=None) == ""
    assert START_UP_NOTICE.search(_tensorflow_start_up(verbose=True, env_level=None))
    assert START_UP_NOTICE.search(_tensorflow_start_up(verbose=False, env_level="0"))  # the user's own level is kept


def test_a_run_prints_no_tensorflow_start_up_lines(tiny_dir, tmp_path):
    """A whole (two-step) projector-train run in a fresh interpreter: stderr is empty, stdout is ours."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}
    argv = [sys.executable, "-m", "training.train", "--model", "mlp", "--steps", "2", "--batch-size", "2",
            "--eval-every", "2", "--data-dir", str(tiny_dir), "--logdir", str(tmp_path / "logs"), "--run", "r",
            *FEATURES_OFF_FLAGS]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "Final test accuracy after 2 steps" in done.stdout and not START_UP_NOTICE.search(done.stdout)


def test_export_model_input_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_model.main(["--model", "m.keras", "--logdir", str(tmp_path / "logs"), "--probe-size", "0"])
    assert exit_info.value.code == 2
    assert "argument --probe-size: expected an int >= 6, received '0'" in capsys.readouterr().err
    code = export_model.main(["--model", str(tmp_path / "missing.keras"), "--logdir", str(tmp_path / "logs")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is not a file; expected a model saved by Keras" in err
    assert not (tmp_path / "logs").exists()


def test_stop_on_divergence_raises_before_later_callbacks_see_the_batch():
    from training.divergence import StopOnDivergence, TrainingDiverged

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.ones((8, 2), np.float32)
    x[4:] = np.nan  # the third batch of 2 is the first with a NaN loss
    later = _Recorder()
    expected = r"the loss is nan after step 3\. Fix: lower --learning-rate \(now 0\.5\)"
    with pytest.raises(TrainingDiverged, match=expected):
        model.fit(x, np.zeros(8, int), batch_size=2, epochs=1, shuffle=False, verbose=0,
                  callbacks=[StopOnDivergence(0.5), later])
    assert [batch for batch, _ in later.batches] == [0, 1]  # the diverged batch never reached it


def test_a_diverging_run_is_one_line(tiny_dir, tmp_path, capsys):
    error = _input_error(capsys, "--model", "mlp", "--steps", "20", "--batch-size", "2", "--eval-every", "20",
                         "--learning-rate", "1e30", "--data-dir", str(tiny_dir), "--logdir", str(tmp_path / "logs"),
                         "--run", "r", *FEATURES_OFF_FLAGS)
    assert re.search(r"The training diverged: the loss is (nan|inf) after step \d+\. Fix: lower --learning-rate "
                     r"\(now 1e\+30\)", error)
