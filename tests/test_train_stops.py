"""`projector-train` as real processes that something stops: a second training of the same run, Ctrl-C and SIGTERM
in the middle of an export, a run that is a link, no MNIST files and no network. Each ends with one line, and the
run holds one training's complete files.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _idx_files import tiny_set
from _projector_client import ProjectorClient

from projector_export.run_claim import CLAIM_FILENAME
from training.train import main

ROOT = Path(__file__).resolve().parents[1]
FEATURES_OFF = ["--snapshot-every", "0", "--images-every", "0"]
# Runs `projector-train` (argv after the code) in a child that signals itself when an export has written its N-th
# bundle, before that export's config commits it: the signal lands in the middle of an export.
SIGNAL_MID_EXPORT = """
import os, sys
from projector_export import kill_points
SIGNAL, AFTER, seen = {signum}, {after}, []
def reached(point):
    if point == "bundle-written":
        seen.append(point)
        if len(seen) == AFTER:
            os.kill(os.getpid(), SIGNAL)
kill_points.reached = reached
from training.train import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def tiny_dir(tmp_path) -> Path:
    tiny_set(tmp_path / "mnist", test=8)
    return tmp_path / "mnist"


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _train(tiny_dir: Path, logdir: Path, *argv: str, code: str | None = None) -> subprocess.Popen:
    flags = ["--model", "mlp", "--batch-size", "2", "--data-dir", str(tiny_dir), "--logdir", str(logdir),
             "--run", "r", *argv]
    command = [sys.executable, "-c", code, *flags] if code else [sys.executable, "-m", "training.train", *flags]
    return subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("projector-train: "), err
    return err


def test_two_trainings_of_one_run_never_mix(tiny_dir, tmp_path):
    """Two trainings into one --run started at the same instant: one trains, the other is refused with one line
    naming it; --overwrite of the run it trains is refused too; SIGTERM stops it, its run released."""
    logdir = tmp_path / "logs"
    endless = ["--steps", "1000000", "--eval-every", "1000000", *FEATURES_OFF]
    first, second = _train(tiny_dir, logdir, *endless), _train(tiny_dir, logdir, *endless)
    processes = [first, second]
    try:
        deadline = time.monotonic() + 180
        while all(p.poll() is None for p in processes) and time.monotonic() < deadline:
            time.sleep(0.2)
        refused = next((p for p in processes if p.poll() is not None), None)
        assert refused is not None, "both trainings ran into one run"
        winner = second if refused is first else first
        out, err = refused.communicate()
        assert refused.returncode == 2, err
        holder = rf"process {winner.pid} \(.*\) on host '.+', started \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
        assert re.fullmatch(rf"projector-train: error: Run directory '.*r' is being written by another training: "
                            rf"{holder}\. Two trainings never write one run\. Fix: .*\n", _one_line(err))

        overwrite = _train(tiny_dir, logdir, "--overwrite", *endless)
        processes.append(overwrite)
        assert overwrite.wait(timeout=180) == 2
        assert re.search(rf"is being written by another training: {holder}", _one_line(overwrite.stderr.read()))

        winner.send_signal(signal.SIGTERM)
        out, err = winner.communicate(timeout=120)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert winner.returncode == 143, err
    assert re.fullmatch(r"projector-train: stopped by SIGTERM after step \d+ of 1000000, model\.keras not saved; "
                        r".*r keeps what was written until then\. View it with: tensorboard --logdir .*\n",
                        _one_line(err))
    entries = sorted(os.listdir(logdir / "r"))  # one training's event file; the claim released
    assert len(entries) == 1 and entries[0].startswith("events.out.tfevents."), entries


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_in_the_middle_of_an_export_leaves_the_run_consistent(tiny_dir, tmp_path, signum):
    """Ctrl-C or SIGTERM while a snapshot's export is half-written: one line, exit 130 or 143, the run serves every
    snapshot exported before (none half-written, no leftovers), and the run is released."""
    logdir = tmp_path / "logs"
    code = SIGNAL_MID_EXPORT.format(signum=int(signum), after=3)  # the 2nd snapshot's first export
    child = _train(tiny_dir, logdir, "--steps", "50", "--snapshot-every", "1", "--probe-size", "6", "--images-every",
                   "0", code=code)
    out, err = child.communicate(timeout=300)
    assert child.returncode == 128 + signum, err
    what = "Ctrl-C \\(SIGINT\\)" if signum == signal.SIGINT else "SIGTERM"
    assert re.fullmatch(rf"projector-train: stopped by {what} after step 1 of 50, model\.keras not saved; .*\n",
                        _one_line(err))
    client = ProjectorClient(logdir)
    names = sorted(entry["tensorName"] for entry in client.info("r")["embeddings"])
    assert names == ["class_weights/step_000000", "fc1/step_000000", "logits/step_000000"]  # the first snapshot, whole
    for name in names:
        assert client.tensor("r", name).shape[0] in (3, 6)  # 6 probe rows, 3 classes
    run_dir = logdir / "r"
    leftovers = [path for path in run_dir.rglob("*") if path.name.startswith((".staging-", ".tmp-", CLAIM_FILENAME))]
    assert leftovers == []


def test_overwrite_of_a_linked_run_is_refused_before_any_work(tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not a run")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "r").symlink_to(elsewhere)
    with pytest.raises(SystemExit) as exit_info:  # no such data: the link is found before the data is read
        main(["--logdir", str(tmp_path / "logs"), "--run", "r", "--overwrite", "--data-dir", str(tmp_path / "no")])
    assert exit_info.value.code == 2
    err = _one_line(capsys.readouterr().err)
    assert f"Refusing to write through '{tmp_path / 'logs' / 'r'}': it is a symbolic link (to '{elsewhere}')" in err
    assert sorted(os.listdir(elsewhere)) == ["keep.txt"]


def test_no_data_and_no_network_is_one_line(tmp_path):
    """No --data-dir, no $MNIST_DATA_DIR, an empty Keras cache and a mirror that cannot be reached."""
    code = ("import sys\nimport training.mnist as mnist\nmnist.MIRROR_URL = 'http://127.0.0.1:9/'\n"
            "from training.train import main\nsys.exit(main(sys.argv[1:]))\n")
    env = {key: value for key, value in _env(KERAS_HOME=str(tmp_path / "keras")).items() if key != "MNIST_DATA_DIR"}
    done = subprocess.run([sys.executable, "-c", code, "--logdir", str(tmp_path / "logs"), "--run", "r"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    err = _one_line(done.stderr)
    assert (f"No MNIST files: neither --data-dir nor MNIST_DATA_DIR is set, Keras' cache "
            f"{tmp_path / 'keras' / 'datasets' / 'mnist-idx'} does not hold them, and downloading them from "
            "http://127.0.0.1:9/ failed (") in err
    assert "Fix: pass --data-dir (or set MNIST_DATA_DIR) to a directory holding train-images-idx3-ubyte" in err
    assert not (tmp_path / "logs").exists()
