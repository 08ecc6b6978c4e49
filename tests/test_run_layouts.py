"""Layouts of a whole run: every tensor in step order, the worker fed during a training, its status and lock, the
trajectories, and `projector-layouts`."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from _projector_client import ProjectorClient
from test_layouts import blobs

from projector_export import export_embeddings
from projector_export import trajectories as trajectories_module
from projector_export.bookmarks import MARKER, decode_states, state_coordinates
from projector_export.layout_worker import LayoutFeed
from projector_export.run_layouts import LayoutsBusy, compute_run_layouts, follow, layout_status
from projector_export.trajectories import END_OF_SEQUENCE, SEQUENCE_COLUMN, make_trajectory

N = 200


def snapshot(logdir, step: int, layers=("dense", "conv")) -> None:
    """A snapshot as `EmbeddingSnapshots` writes it: each layer's rows at `step` and the class embedding."""
    tensors = {f"{layer}/step_{step:06d}": blobs(step, n=N, seed=i)[0] for i, layer in enumerate(layers)}
    labels = blobs(step, n=N)[1]
    export_embeddings(logdir, tensors, run="r", metadata={"index": [str(i) for i in range(N)],
                                                          "label": [str(v) for v in labels],
                                                          "correct": ["yes", "no"] * (N // 2)})
    export_embeddings(logdir, {f"class_weights/step_{step:06d}": np.eye(10, 16) * (step + 1)}, run="r",
                      metadata=[str(i) for i in range(10)])


def states_of(served: ProjectorClient, name: str) -> list[dict]:
    return decode_states(served.get("/bookmarks", run="r", name=name))


def test_every_tensor_gets_layouts_each_step_continuing_the_one_before(tmp_path):
    for step in (0, 100, 200):
        snapshot(tmp_path, step)
    export_embeddings(tmp_path, {"tiny": np.arange(10.0).reshape(5, 2)}, run="r")
    report = compute_run_layouts(tmp_path, "r")
    served = ProjectorClient(str(tmp_path))
    names = [e["tensorName"] for e in served.info("r")["embeddings"]]
    assert sorted(report.computed) == sorted(names) and report.skipped == {}
    assert report.notes == {"tiny": "PCA only: 5 rows, fewer than 10"}
    for name in names:
        states = states_of(served, name)
        layer, _, step = name.partition("/step_")
        kinds = [s[MARKER]["layout"] for s in states]
        assert kinds == (["pca"] if layer in ("class_weights", "tiny") else ["pca", "umap"]), name
        expected = None if not step or step == "000000" else int(step) - 100
        assert all(s[MARKER]["continues"] == expected for s in states), name
        if layer == "dense":
            assert all(s["selectedColorOptionName"] == s["selectedLabelOption"] == "label" for s in states)
            assert states[1]["label"].startswith("UMAP 2-D, all 200 points of step")
            assert state_coordinates(states[1]).shape == (N, 2)
    # Nothing left: a second pass computes nothing; a recompute does everything again, the same way.
    assert compute_run_layouts(tmp_path, "r").computed == []
    before = states_of(served, "dense/step_000200")
    assert len(compute_run_layouts(tmp_path, "r", recompute=True).computed) == len(names)
    np.testing.assert_array_equal(state_coordinates(states_of(ProjectorClient(str(tmp_path)), "dense/step_000200")[1]),
                                  state_coordinates(before[1]))
    assert layout_status(tmp_path, "r").message().startswith("Layouts: all 10 tensors")


def test_one_process_at_a_time_and_the_status_says_which_and_how_to_wait(tmp_path):
    snapshot(tmp_path, 0)
    lines: queue.Queue = queue.Queue()
    worker = threading.Thread(target=follow, args=(tmp_path, "r", iter(lines.get, None)),
                              kwargs=dict(method="umap", trajectories=False, command="test worker"))
    worker.start()
    try:
        deadline = time.monotonic() + 300
        while layout_status(tmp_path, "r").pending and time.monotonic() < deadline:
            time.sleep(0.1)
        snapshot(tmp_path, 100)  # not yet announced: pending while the worker waits for its line
        status = layout_status(tmp_path, "r")
        assert status.pending == ("class_weights/step_000100", "conv/step_000100", "dense/step_000100")
        assert status.worker.startswith(f"pid {os.getpid()} on ") and "test worker" in status.worker
        assert status.message().endswith(f"To wait for them: projector-layouts --logdir {tmp_path} --run r --wait")
        with pytest.raises(LayoutsBusy, match=f"being computed by pid {os.getpid()}"):
            compute_run_layouts(tmp_path, "r", wait=False)
        lines.put("snapshot")
    finally:
        lines.put(None)
        worker.join(timeout=600)
    status = layout_status(tmp_path, "r")
    assert status.pending == () and status.worker is None


def test_the_worker_lays_out_a_training_s_snapshots_at_idle_priority_then_builds_the_paths(tmp_path):
    feed = LayoutFeed(tmp_path, "r", method="tsne")  # openTSNE starts in seconds (UMAP compiles for a minute)
    snapshot(tmp_path, 0)
    feed.snapshot_written()
    deadline = time.monotonic() + 60  # the worker lowers its own priority first thing
    while os.sched_getscheduler(feed.process.pid) != os.SCHED_IDLE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.sched_getscheduler(feed.process.pid) == os.SCHED_IDLE
    # Idle only against the training if in its session (Linux gives each session's autogroup an equal CPU share);
    # a process group of its own keeps a Ctrl-C in the training's terminal from reaching it.
    assert os.getsid(feed.process.pid) == os.getsid(0)
    assert os.getpgid(feed.process.pid) == feed.process.pid != os.getpgid(0)
    snapshot(tmp_path, 100)
    feed.snapshot_written()
    status = feed.training_ended()
    assert status.pending == () or status.worker.startswith(f"pid {feed.process.pid} ")
    status = feed.wait(timeout=600)
    assert feed.process.returncode == 0 and status.pending == () and status.error is None
    served = ProjectorClient(str(tmp_path))
    assert [s[MARKER]["layout"] for s in states_of(served, "dense/step_000100")] == ["pca", "tsne"]
    assert states_of(served, "dense/step_000100")[1]["selectedProjection"] == "umap"  # drawn as computed
    paths = served.metadata_columns("r", "dense/trajectory")
    assert paths["step"] == ["0"] * N + ["100"] * N and paths["sample"] == [str(i) for i in range(N)] * 2
    assert [s["label"].split(": ")[1][:14] for s in states_of(served, "dense/trajectory")] == [
        "PCA 3-D of ste", "step 0 selecte", "step 100 selec"]


def test_a_worker_killed_mid_way_leaves_a_complete_run_and_the_next_one_finishes(tmp_path):
    for step in (0, 100, 200, 300):
        snapshot(tmp_path, step, layers=("dense",))
    worker = subprocess.Popen([sys.executable, "-m", "projector_export.layouts_cli", "--logdir", str(tmp_path),
                               "--run", "r", "--method", "tsne", "--no-trajectories"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while len(layout_status(tmp_path, "r").pending) > 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    finally:
        worker.kill()
    served = ProjectorClient(str(tmp_path))
    for entry in served.info("r")["embeddings"]:
        if entry.get("bookmarksPath"):  # published before the kill: complete
            assert all(len(s["projections"]) == int(entry["tensorShape"][0]) for s in states_of(served,
                                                                                                  entry["tensorName"]))
    status = layout_status(tmp_path, "r")
    assert status.worker is None and 0 < len(status.pending) <= 6
    assert status.message().endswith(f"To compute them: projector-layouts --logdir {tmp_path} --run r --wait")
    assert sorted(compute_run_layouts(tmp_path, "r", method="tsne").computed) == sorted(status.pending)


def test_trajectory_rows_link_each_sample_to_its_next_step(monkeypatch):
    steps = {s: blobs(s, n=60)[0] for s in (0, 10, 20)}
    columns = {"label": [str(v) for v in blobs(0, n=60)[1]]}
    trajectory = make_trajectory("fc1", steps, columns)
    assert trajectory.name == "fc1/trajectory" and trajectory.rows.shape == (180, 20) and trajectory.note is None
    following = trajectory.metadata[SEQUENCE_COLUMN]
    assert following[:3] == ["60", "61", "62"] and following[120:] == [END_OF_SEQUENCE] * 60
    assert trajectory.metadata["label"][60:120] == columns["label"]
    # More samples × steps than the PROJECTOR shows: the same share of every class.
    monkeypatch.setattr(trajectories_module, "PROJECTOR_MAX_POINTS", 90)
    small = make_trajectory("fc1", steps, columns)
    assert small.rows.shape[0] == 90 and "stratified subset of 30 of 60 samples" in small.note
    kept = small.metadata["label"][:30]
    assert sorted(kept) == sorted(str(v) for v in range(10) for _ in range(3))


def test_the_command(tmp_path):
    program = [sys.executable, "-m", "projector_export.layouts_cli"]
    started = time.perf_counter()
    code = ("import sys; from projector_export import layouts_cli; layouts_cli.build_parser().format_help(); "
            "print(sorted(m for m in ('tensorflow', 'umap', 'numba', 'openTSNE') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout == "[]\n"
    missing = subprocess.run([*program, "--logdir", str(tmp_path), "--run", "nope"], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "No PROJECTOR export in" in missing.stderr and time.perf_counter() - started < 60
    snapshot(tmp_path, 0, layers=("dense",))
    status = subprocess.run([*program, "--logdir", str(tmp_path), "--run", "r", "--status"], capture_output=True,
                            text=True)
    assert status.returncode == 0 and status.stdout.startswith("Layouts: 2 of 2 tensors of")
