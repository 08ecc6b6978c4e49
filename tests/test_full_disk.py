"""A full disk: one `NoSpaceError` whichever step of an export runs out of space, earlier exports intact, and the
failed export's files removed at once.

The disk is real: a small tmpfs mounted for the test (it needs root allowed to mount, as here and in CI), filled
so that k blocks stay free, for every k from 0 until the export fits, so that each step of the export (sprite,
metadata, bundle, event file, configs) in turn is the one that finds the disk full.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess

import numpy as np
import pytest
from _projector_client import ProjectorClient

from projector_export import NoSpaceError, export_embeddings
from projector_export.metadata import ASSETS_DIRNAME

N = 64


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                                 capture_output=True, text=True, timeout=60)
        problem = mounted.stderr.strip() if mounted.returncode else None
    except OSError as error:
        problem = str(error)
    if problem:
        pytest.skip(f"a real full disk needs a small file system, and mounting a tmpfs failed ({problem}): "
                    "that needs root with CAP_SYS_ADMIN")
    try:
        yield disk
    finally:
        # Lazily: a TensorBoard reader of the test may still hold files open.
        subprocess.run(["umount", "--lazy", str(disk)], check=True, timeout=60)


def _leave_free(disk, blocks: int) -> None:
    """Fills the disk with a file so that exactly `blocks` blocks stay free."""
    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    free = os.statvfs(disk)
    with open(filler, "wb") as f:
        f.write(b"\xff" * ((free.f_bavail - blocks) * free.f_frsize))
    assert os.statvfs(disk).f_bavail == blocks


def _arguments(i: int) -> dict:
    rng = np.random.default_rng(i)
    return {"embeddings": {f"t{i}": rng.standard_normal((N, 300))},  # wide: a PCA and its event file
            "images": rng.integers(0, 256, (N, 8, 8, 3), dtype=np.uint8),
            "metadata": {"label": [f"{i}-{row}-" + "x" * 100 for row in range(N)], "row": list(range(N))}}


def _snapshot(folder) -> dict[str, bytes | None]:
    """Every file and folder below `folder`, with the bytes of each file."""
    files: dict[str, bytes | None] = {}
    for parent, dirs, names in os.walk(folder):
        for name in dirs:
            files[os.path.relpath(os.path.join(parent, name), folder) + "/"] = None
        for name in names:
            with open(os.path.join(parent, name), "rb") as f:
                files[os.path.relpath(os.path.join(parent, name), folder)] = f.read()
    return files


def _step(path: str) -> str:
    """The step of the export that was writing `path`."""
    name = os.path.basename(path)
    for step, marker in (("sprite", "sprite-"), ("metadata", "metadata-"), ("config", "projector_config"),
                         ("state file", "checkpoint"), ("event file", "tfevents")):
        if marker in name:
            return step
    return "bundle" if "embeddings" in name or os.path.basename(os.path.dirname(path)).startswith(".staging") else path


# What the first export into a run leaves however it fails: the run's folders and its lock (a lock file is never
# deleted: another export may be waiting on it).
_RUN_SKELETON = {"r/": None, "r/plugins/": None, f"r/{ASSETS_DIRNAME}/": None, f"r/{ASSETS_DIRNAME}/.lock": b""}


@pytest.mark.parametrize("earlier, steps", [
    (True, {"sprite", "metadata", "bundle", "config", "state file"}),
    (False, {"sprite", "metadata", "bundle", "event file", "config", "state file"}),
], ids=["next export", "first export"])
def test_each_step_on_a_full_disk_raises_one_error_and_leaves_the_earlier_exports(small_disk, earlier, steps):
    """The steps that can fail first differ: a merge (next export) frees a block once done, which the event file
    then takes."""
    logdir = small_disk / "logs"
    if earlier:
        export_embeddings(logdir, run="r", **_arguments(1))
    before = {**_RUN_SKELETON, **_snapshot(logdir)}
    failed_steps = []
    for blocks in range(40):
        _leave_free(small_disk, blocks)
        try:
            export_embeddings(logdir, run="r", **_arguments(2))
            break
        except NoSpaceError as error:
            message = str(error)
            assert isinstance(error, OSError) and error.errno == errno.ENOSPC
            assert "\n" not in message and f"No space left on the device of {str(logdir / 'r')!r}" in message
            assert "Free some space there" in message
            failed_steps.append(_step(error.filename))
        assert _snapshot(logdir) == before, f"{blocks} blocks free: the failed export left or changed files"
    else:
        raise AssertionError("the export never fitted")
    assert set(failed_steps) == steps, failed_steps
    served = ProjectorClient(logdir)
    assert [e["tensorName"] for e in served.info("r")["embeddings"]] == ["t1", "t2"][not earlier:]


def test_a_training_on_a_full_disk_stops_with_one_line_and_keeps_its_snapshots(small_disk, tmp_path, capsys):
    """`projector-train` snapshotting every step until the disk is full: one line naming the run and the file, exit
    status 1, every snapshot exported before served whole, no leftovers, the run released."""
    from _idx_files import tiny_set

    from projector_export.run_claim import CLAIM_FILENAME
    from training.train import main

    tiny_set(tmp_path / "mnist", test=8)
    _leave_free(small_disk, 48)
    code = main(["--model", "mlp", "--steps", "200", "--batch-size", "2", "--log-every", "1000", "--snapshot-every",
                 "1", "--probe-size", "8", "--images-every", "0", "--data-dir", str(tmp_path / "mnist"),
                 "--logdir", str(small_disk / "logs"), "--run", "r"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    run_dir = small_disk / "logs" / "r"
    assert re.fullmatch(rf"projector-train: error: No space left on the device of {str(run_dir)!r} \([\d,]+ bytes "
                        r"free\) while writing '.+': the training stopped after step \d+ of 200, model\.keras not "
                        r"saved; what the run held before is intact and the failed write's files were removed\. .*\n",
                        err)
    served = ProjectorClient(small_disk / "logs")
    names = [entry["tensorName"] for entry in served.info("r")["embeddings"]]
    assert "fc1/step_000000" in names
    for name in names:
        assert served.tensor("r", name).shape[0] in (3, 8)
    leftovers = [p.name for p in run_dir.rglob("*") if p.name.startswith((".staging-", ".tmp-", CLAIM_FILENAME))]
    assert leftovers == []
