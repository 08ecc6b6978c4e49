"""The sidecar: `projector_export.watch` on files it is given, and `projector-watch` beside a real training."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from _projector_client import ProjectorClient
from _tensorboard_server import TensorBoardServer

from projector_export import export_embeddings
from projector_export.run_layouts import layout_status
from projector_export.watch import checkpoint_steps, exported_steps, follow_checkpoints

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("conv2", "fc1")
STEPS, EVERY = 40, 10
CHECKPOINT_STEPS = [10, 20, 30, 40]


def test_checkpoint_steps_lists_complete_files_only(tmp_path):
    assert checkpoint_steps(tmp_path / "missing") == {}
    for name in ("step_000020.keras", "step_000010.keras", ".step_000030.tmp.keras", "step_000040.keras.part",
                 "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert checkpoint_steps(tmp_path) == {10: tmp_path / "step_000010.keras", 20: tmp_path / "step_000020.keras"}


def test_follow_exports_in_step_order_skips_done_and_stops(tmp_path):
    for step in (30, 10, 20):
        (tmp_path / f"step_{step:06d}.keras").write_bytes(b"x")
    calls = []
    exported = follow_checkpoints(tmp_path, lambda step, path: calls.append((step, path.name)),
                                  done={20}.__contains__, finished=lambda: True, poll_seconds=0.01)
    assert calls == [(10, "step_000010.keras"), (30, "step_000030.keras")] and exported == [10, 30]


def test_follow_waits_for_new_checkpoints_until_step(tmp_path):
    polls = []

    def export(step, path):
        polls.append(step)
        if step < 30:  # the "training" writes the next checkpoint while the sidecar exports this one
            (tmp_path / f"step_{step + 10:06d}.keras").write_bytes(b"x")

    (tmp_path / "step_000010.keras").write_bytes(b"x")
    assert follow_checkpoints(tmp_path, export, until_step=20, poll_seconds=0.01) == [10, 20]
    assert polls == [10, 20]  # step 30 exists now but lies after until_step


def test_follow_skips_a_checkpoint_deleted_before_it_was_read(tmp_path):
    (tmp_path / "step_000010.keras").write_bytes(b"x")
    (tmp_path / "step_000020.keras").write_bytes(b"x")

    def export(step, path):
        if step == 10:
            raise FileNotFoundError(path)

    assert follow_checkpoints(tmp_path, export, finished=lambda: True, poll_seconds=0.01) == [20]


def test_exported_steps_need_every_name_and_scalar(tmp_path):
    import tensorflow as tf

    data = np.arange(12, dtype=np.float32).reshape(6, 2)
    export_embeddings(tmp_path, {"a/step_000010": data, "b/step_000010": data, "a/step_000020": data}, run="r")
    assert exported_steps(tmp_path, "r", ["a", "b"]) == {10}
    assert exported_steps(tmp_path, "r", ["a"]) == {10, 20}
    assert exported_steps(tmp_path, "missing", ["a"]) == set()
    assert exported_steps(tmp_path, "r", ["a"], ["separability/a"]) == set()
    for step in (20, 30):  # two writers, two event files
        with tf.summary.create_file_writer(str(tmp_path / "r")).as_default(step=step):
            tf.summary.scalar("separability/a", 0.5)
    assert exported_steps(tmp_path, "r", ["a"], ["separability/a"]) == {20}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _watcher(logdir: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "training.watch", "--logdir", str(logdir), "--run", "r", "--layers", ",".join(LAYERS),
         "--probe-size", "100", "--poll-seconds", "0.5"],
        env=_env(), stdout=log.open("a"), stderr=subprocess.STDOUT,
    )


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.integration
def test_watcher_beside_a_training_killed_and_restarted(tmp_path, mnist_dir):
    logdir = tmp_path / "logs"
    train_log, watch_log = tmp_path / "train.log", tmp_path / "watch.log"
    training = subprocess.Popen(
        [sys.executable, "-m", "training.train", "--model", "tutorial", "--steps", str(STEPS), "--batch-size", "32",
         "--eval-every", "20", "--snapshot-every", "0", "--images-every", "0", "--checkpoint-every", str(EVERY),
         "--logdir", str(logdir), "--run", "r", "--data-dir", str(mnist_dir), "--seed", "0"],
        env=_env(), stdout=train_log.open("w"), stderr=subprocess.STDOUT,
    )
    watcher = _watcher(logdir, watch_log)  # started before the run exists: it waits for it
    try:
        _wait(lambda: exported_steps(logdir, "r", LAYERS), 300, "the watcher's first export (its layers)")
        watcher.send_signal(signal.SIGKILL)
        watcher.wait(timeout=30)
        complete = exported_steps(logdir, "r", (*LAYERS, "class_weights"), [f"separability/{x}" for x in LAYERS])
        watcher = _watcher(logdir, watch_log)
        assert watcher.wait(timeout=300) == 0, watch_log.read_text()
        assert training.wait(timeout=300) == 0, train_log.read_text()
    finally:
        for process in (watcher, training):
            if process.poll() is None:
                process.kill()
                process.wait()
    # Killed after its first tensors: a step it had completed is skipped, one it had not is exported again.
    restarted = watch_log.read_text().split("Watching")[-1]
    assert ("Already exported: steps" in restarted) == bool(complete)
    for step in CHECKPOINT_STEPS:
        assert (f"step {step}: exported" in restarted) == (step not in complete)

    # Its layout worker (on by default) lays out every step and builds the trajectories after the sidecar ends.
    assert "Layouts: " in restarted and "projector-layouts --logdir" in restarted, restarted
    names = [f"{layer}/step_{step:06d}" for step in CHECKPOINT_STEPS for layer in (*LAYERS, "class_weights")]
    trajectories = [f"{layer}/trajectory" for layer in LAYERS]
    client = ProjectorClient(logdir)

    def laid_out() -> bool:
        status = layout_status(logdir, "r")
        listed = {entry["tensorName"] for entry in client.info("r")["embeddings"]}
        return status.worker is None and not status.pending and listed >= set(trajectories)

    _wait(laid_out, 300, "the sidecar's layout worker")
    config_names = [entry["tensorName"] for entry in client.info("r")["embeddings"]]
    assert sorted(config_names) == sorted(names + trajectories)  # each exactly once: nothing lost, nothing duplicated
    scalars = client.scalars("r")
    for layer in LAYERS:
        assert sorted(scalars[f"separability/{layer}"]) == CHECKPOINT_STEPS
    with TensorBoardServer(logdir) as board:
        _wait(lambda: "r" in board.get_json("/data/plugin/projector/runs"), 120, "TensorBoard's projector run")
        for step in CHECKPOINT_STEPS:
            for layer in LAYERS:
                name = f"{layer}/step_{step:06d}"
                with urllib.request.urlopen(
                    f"{board.url}/data/plugin/projector/tensor?run=r&name={name}", timeout=60
                ) as response:
                    served = np.frombuffer(response.read(), dtype=np.float32)
                np.testing.assert_array_equal(served, client.tensor("r", name).ravel())
                assert served.size % 100 == 0 and served.size > 0


def _tiny_model(seed: int, input_shape=(4,)):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(5, name="hidden"),
                             keras.layers.Dense(3, name="scores")])


def _tiny_probe():
    from projector_export import check_probe

    rng = np.random.default_rng(0)
    return check_probe(rng.standard_normal((8, 4)).astype(np.float32), np.arange(8) % 3, layers=["hidden"])


def test_an_unreadable_checkpoint_is_skipped_until_it_changes(tmp_path):
    """A truncated checkpoint between two good ones: one line naming it, the later one exported, and it is tried
    again only once its file changes."""
    from projector_export import snapshot_checkpoints

    folder = tmp_path / "r" / "checkpoints"
    folder.mkdir(parents=True)
    for step in (1, 3):
        _tiny_model(step).save(folder / f"step_{step:06d}.keras")
    good = (folder / "step_000001.keras").read_bytes()
    (folder / "step_000002.keras").write_bytes(good[: len(good) // 2])
    lines, passes = [], []

    def finished() -> bool:
        passes.append(len(passes))
        if len(passes) == 3:  # a pass after the skip left the file alone; now it is rewritten whole
            _tiny_model(2).save(folder / "step_000002.keras")
        return len(passes) == 3

    steps = snapshot_checkpoints(tmp_path, "r", _tiny_probe(), finished=finished, poll_seconds=0.01,
                                 report=lines.append)
    assert steps == [1, 3, 2]
    skipped = [line for line in lines if line.startswith("Skipped")]
    assert skipped == [f"Skipped {folder / 'step_000002.keras'}: not a complete .keras archive (truncated or "
                       "corrupt); it is tried again if the file changes"]
    assert exported_steps(tmp_path, "r", ["hidden", "class_weights"], ["separability/hidden"]) == {1, 2, 3}


def test_a_replaced_run_is_exported_anew(tmp_path):
    """The run is replaced while the sidecar follows it (as `projector-train --overwrite` does: a new training's
    claim, new checkpoints at the same steps): the new run's checkpoints are exported, from the new model."""
    import shutil

    from projector_export import snapshot_checkpoints
    from projector_export.run_claim import claim_run

    folder = tmp_path / "r" / "checkpoints"
    folder.mkdir(parents=True)
    for step in (1, 2):
        _tiny_model(step).save(folder / f"step_{step:06d}.keras")
    claims, replaced, passes = [], [], []

    def report(line: str) -> None:
        if line.startswith("step 2: exported") and not replaced:  # the old run's last checkpoint: replace the run
            shutil.rmtree(tmp_path / "r")
            claims.append(claim_run(tmp_path, "r"))
            folder.mkdir(parents=True, exist_ok=True)
            for step in (1, 2):
                _tiny_model(10 + step).save(folder / f"step_{step:06d}.keras")
            replaced.append(line)

    def finished() -> bool:
        passes.append(len(passes))
        return bool(replaced) or len(passes) > 500  # the pass after the replacement (or never replaced: give up)

    try:
        steps = snapshot_checkpoints(tmp_path, "r", _tiny_probe(), finished=finished, poll_seconds=0.01,
                                     report=report)
    finally:
        for claim in claims:
            claim.release()
    assert steps == [1, 2, 1, 2]
    client = ProjectorClient(tmp_path)
    probe = _tiny_probe()
    for step in (1, 2):
        import keras

        model = _tiny_model(10 + step)
        hidden = keras.Model(model.inputs, model.get_layer("hidden").output).predict(probe.inputs, verbose=0)
        np.testing.assert_allclose(client.tensor("r", f"hidden/step_{step:06d}"), hidden, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_watcher_with_one_line(tmp_path, signum):
    """Ctrl-C or SIGTERM while it waits for more checkpoints: one line saying what it exported, exit 130 or 143."""
    from _idx_files import tiny_set

    tiny_set(tmp_path / "mnist", test=8)
    folder = tmp_path / "logs" / "r" / "checkpoints"
    folder.mkdir(parents=True)
    _tiny_model(1, input_shape=(5, 3)).save(folder / "step_000001.keras")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "training.watch", "--logdir", str(tmp_path / "logs"), "--run", "r", "--layers",
         "hidden", "--probe-size", "6", "--data-dir", str(tmp_path / "mnist"), "--poll-seconds", "0.2"],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in watcher.stdout:
            if line.startswith("step 1: exported"):
                break
        watcher.send_signal(signum)
        out, err = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 128 + signum, err
    what = "Ctrl-C \\(SIGINT\\)" if signum == signal.SIGINT else "SIGTERM"
    assert re.fullmatch(rf"projector-watch: stopped by {what}: exported 1 checkpoint\(s\) \(steps 1\) in \d+ s; a "
                        r"step cut short is exported again by the next projector-watch\. View them with: .*\n", err)
