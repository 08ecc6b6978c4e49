"""What readers see while exports run and after a writer is killed: a complete old or a complete new export.

* A real TensorBoard polled over HTTP while another thread exports (and tries to re-export names with
  another N): every answer is consistent. One reader: TensorBoard 2.21's projector plugin updates its
  cached configs and checkpoint readers from concurrent request threads without a lock, so two
  requests that both re-read a run while its config changes can pair one's config with the other's
  reader, whatever the files hold (see docs/file-format.md).
* A writer process killed (SIGKILL) at each named point of the write path: TensorBoard's projector
  (a plugin that had read the run before, and a fresh one) serves the old or the new export,
  complete, and the next export removes every leftover.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from _consistency import check_answers, export_arguments, poll_during_exports, rows_of
from _projector_client import ProjectorClient
from _tensorboard_server import TensorBoardServer
from PIL import Image

from projector_export import export_embeddings
from projector_export.kill_points import ENV_VAR, KILL_POINTS
from projector_export.metadata import ASSETS_DIRNAME, CONFIG_FILENAME, STATE_FILENAME


def _wait_for_run(server: TensorBoardServer, run: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run in server.get_json("/data/plugin/projector/runs"):
            return
        time.sleep(0.5)
    raise AssertionError(f"TensorBoard did not list {run!r} within {timeout:.0f} s:\n{server.output()[-2000:]}")


def test_a_polling_tensorboard_sees_only_complete_exports(tmp_path):
    logdir = str(tmp_path / "logs")
    export_embeddings(logdir, run="r", **export_arguments(0))
    with TensorBoardServer(tmp_path / "logs") as server:
        _wait_for_run(server, "r")
        stats = poll_during_exports(server.url, logdir, "r", export_embeddings, first=1, count=120, readers=1)
        assert stats["inconsistent"] == 0, stats
        # The readers really read meanwhile, every re-export with another N was refused, and the end
        # state lists every export.
        assert stats["rounds"] >= 120 // 10 and stats["refused"] == 120 // 7 and stats["reexported"] == 0, stats
        names = [e["tensorName"] for e in server.get_json("/data/plugin/projector/info", run="r")["embeddings"]]
        assert names == [f"t/{i:06d}" for i in range(121)]
        assert check_answers(server.url, "r", random.Random(0)) == []


def test_reexporting_a_name_with_another_shape_is_refused_before_anything_is_written(tmp_path):
    export_embeddings(tmp_path, run="r", **export_arguments(1))
    before = sorted(os.listdir(tmp_path / "r" / ASSETS_DIRNAME))
    with pytest.raises(ValueError, match=r"Cannot export 't/000001' as 31×4 .* already holds 't/000001' as 30×4.*"
                                         r"new name or into a new run"):
        export_embeddings(tmp_path, run="r", **export_arguments(1, n=31))
    assert sorted(os.listdir(tmp_path / "r" / ASSETS_DIRNAME)) == before


def test_a_run_listed_before_its_first_export_is_shown_after_it(tmp_path):
    """A training's run has an event file before its first snapshot: the projector must notice the export."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(tmp_path / "r"))
    with writer.as_default():
        tf.summary.scalar("loss", 1.0, step=0)
    writer.flush()
    served = ProjectorClient(tmp_path)
    assert served.runs() == []
    export_embeddings(tmp_path, run="r", **export_arguments(3))
    assert served.runs() == ["r"]  # the same plugin, without a restart
    assert check_answers_in_process(served, "r") == []
    export_embeddings(tmp_path, run="r", **export_arguments(4))
    assert [e["tensorName"] for e in served.info("r")["embeddings"]] == ["t/000003", "t/000004"]
    writer.close()


def check_answers_in_process(served: ProjectorClient, run: str) -> list[str]:
    """The same checks as `check_answers`, on TensorBoard's plugin in-process (for every listed tensor)."""
    problems = []
    for entry in served.info(run)["embeddings"]:
        name = entry["tensorName"]
        i = int(name.split("/")[1])
        n, d = (int(s) for s in entry["tensorShape"])
        if not entry.get("metadataPath") or not entry.get("sprite", {}).get("imagePath"):
            problems.append(f"{name}: listed without metadata or sprite")
            continue
        response = served.client.get(f"/data/plugin/projector/tensor?run={run}&name={name}")
        if response.status_code != 200:
            problems.append(f"{name}: /tensor {response.status_code}")
            continue
        tensor = np.frombuffer(response.get_data(), dtype=np.float32)
        if not np.array_equal(tensor, np.repeat(1000 * i + np.arange(n, dtype=np.float32), d)):
            problems.append(f"{name}: tensor of {tensor.size} values, config says {n}×{d}")
        if served.metadata(run, name).rstrip("\n").split("\n") != [f"{i}-{row}" for row in range(n)]:
            problems.append(f"{name}: metadata of another export")
        sprite = np.asarray(Image.open(io.BytesIO(served.get("/sprite_image", run=run, name=name))))
        if int(sprite[0, 0]) != i % 256:
            problems.append(f"{name}: sprite of another export")
    return problems


_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from _consistency import export_arguments
from projector_export import export_embeddings
export_embeddings({logdir!r}, run="r", **export_arguments(2))
"""


def _listed(served: ProjectorClient) -> list[str]:
    return [e["tensorName"] for e in served.info("r")["embeddings"]] if "r" in served.runs() else []


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_writer_killed_at_any_point_leaves_a_complete_export_and_the_next_export_cleans_up(tmp_path, point):
    logdir = str(tmp_path)
    run_dir = tmp_path / "r"
    assets_dir = run_dir / ASSETS_DIRNAME
    export_embeddings(logdir, run="r", **export_arguments(1))
    cached = ProjectorClient(logdir)  # a TensorBoard that had read the run before the kill
    assert _listed(cached) == ["t/000001"]

    path = os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, ENV_VAR: point, "PYTHONPATH": path}
    code = _CHILD.format(tests=os.path.dirname(__file__), logdir=logdir)
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]

    old, new = ["t/000001"], ["t/000001", "t/000002"]
    for served in (cached, ProjectorClient(logdir)):
        assert _listed(served) in (old, new)
        assert check_answers_in_process(served, "r") == []

    # Leftovers a killed TensorFlow SaveV2 leaves (its temp-state files), planted beside the kill's own.
    (assets_dir / "embeddings-000009.data-00000-of-00001.tempstate5227379138").write_bytes(b"partial")
    (assets_dir / "embeddings-000009.index.tempstate5227379139").write_bytes(b"partial")

    result = export_embeddings(logdir, run="r", **export_arguments(3))
    state = _listed(ProjectorClient(logdir))
    assert state in (old + ["t/000003"], new + ["t/000003"])
    assert check_answers_in_process(ProjectorClient(logdir), "r") == []
    cached.reload()
    assert _listed(cached) == state

    # Nothing is left but the run's current files and the previous generation's bundle.
    top = sorted(p for p in os.listdir(run_dir) if not p.startswith("events.out.tfevents."))
    assert top == [STATE_FILENAME, "plugins", CONFIG_FILENAME]
    entries = json.loads(ProjectorClient(logdir).get("/info", run="r"))["embeddings"]
    referenced = {e["metadataPath"] for e in entries} | {e["sprite"]["imagePath"] for e in entries}
    bundles = {p.split(".")[0] for p in os.listdir(assets_dir) if p.startswith("embeddings-")}
    current = os.path.basename(result.checkpoint_prefix)
    # The killed export's bundle is deleted unless its config was committed; then it is the previous
    # bundle, and the first one stays for the grace period of a reader that read its config just before.
    committed = state == new + ["t/000003"]
    expected = {"embeddings-000001", "embeddings-000002", current} if committed else {"embeddings-000001", current}
    assert bundles == expected
    assert sorted(p for p in os.listdir(assets_dir) if not p.startswith("embeddings-")) == sorted(
        [".lock", CONFIG_FILENAME, *referenced])
    assert all(".tempstate" not in p for p in os.listdir(assets_dir))
    assert rows_of(3) == len(ProjectorClient(logdir).metadata("r", "t/000003").rstrip("\n").split("\n"))
