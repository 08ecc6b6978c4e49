"""One training per run for a user's own `fit`: the writing callbacks claim the run (`run_claim`), so a training in
another process is refused until the first one ends, or dies."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from projector_export import EmbeddingSnapshots, RunInUseError
from projector_export.run_claim import CLAIM_FILENAME, training_identity

ROOT = Path(__file__).resolve().parents[1]
# A process that claims `<argv[1]>/r` and holds it until its stdin closes.
HOLD = ("import sys\nfrom projector_export.run_claim import claim_run\nclaim = claim_run(sys.argv[1], 'r')\n"
        "print(claim.identity.id, flush=True)\nsys.stdin.read()\nclaim.release()\n")


def _holder(logdir: Path) -> tuple[subprocess.Popen, str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(logdir)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return holder, holder.stdout.readline().strip()


def _fit(logdir: Path) -> None:
    """A user's `fit` with the snapshot callback writing `<logdir>/r`."""
    x, y = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32), np.arange(8) % 2
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[EmbeddingSnapshots(x, y, logdir, run="r", every=1)])


def test_a_fit_into_a_run_another_process_trains_is_refused(tmp_path):
    logdir = tmp_path / "logs"
    holder, held_id = _holder(logdir)
    try:
        assert training_identity(logdir / "r").id == held_id
        with pytest.raises(RunInUseError) as refused:
            _fit(logdir)
        assert re.fullmatch(rf"Run directory '.*r' is being written by another training: process {holder.pid} "
                            r"\(-c\) on host '.+', started .* UTC\. Two trainings never write one run\. Fix: wait "
                            r"until it ends \(or stop it\), or train into another run\.", str(refused.value))
        assert os.listdir(logdir / "r") == [CLAIM_FILENAME]  # nothing written by the refused fit
    finally:
        holder.communicate("")
    assert holder.returncode == 0
    assert not (logdir / "r").exists()  # the holder made the run directory and wrote nothing: it is gone
    _fit(logdir)
    assert CLAIM_FILENAME not in os.listdir(logdir / "r")  # released when the fit ended
    assert any(name.startswith("events.out.tfevents.") for name in os.listdir(logdir / "r"))


def test_the_claim_of_a_killed_training_is_taken_over(tmp_path):
    logdir = tmp_path / "logs"
    holder, held_id = _holder(logdir)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert training_identity(logdir / "r").id == held_id  # left behind, unlocked
    _fit(logdir)
    assert training_identity(logdir / "r") is None
