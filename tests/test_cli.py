"""The `projector-export` command: success output, what it writes, one-line errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from _projector_client import ProjectorClient, sprite_cell
from projector_export.cli import main

N = 6


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "emb": rng.standard_normal((N, 4)).astype(np.float32),
        "labels": np.arange(N) % 3,
        "images": rng.integers(0, 256, (N, 3, 3), dtype=np.uint8),
    }
    paths = {}
    for name, array in arrays.items():
        paths[name] = str(tmp_path / f"{name}.npy")
        np.save(paths[name], array)
    return arrays, paths


def test_exports_files_and_prints_the_tensorboard_command(tmp_path, files, capsys):
    arrays, paths = files
    logdir = str(tmp_path / "logs")
    code = main(["--logdir", logdir, "--run", "r", "--embedding", f"layer/one={paths['emb']}",
                 "--labels", paths["labels"], "--images", paths["images"], "--standalone", str(tmp_path / "web")])
    out = capsys.readouterr()
    assert code == 0 and out.err == ""
    assert "wrote layer/one: 6×4" in out.out
    assert f"tensorboard --logdir {logdir}" in out.out
    served = ProjectorClient(logdir)
    np.testing.assert_array_equal(served.tensor("r", "layer/one"), arrays["emb"])
    assert served.metadata("r", "layer/one") == "".join(f"{v}\n" for v in arrays["labels"])
    sprite = served.sprite("r", "layer/one")
    np.testing.assert_array_equal(sprite_cell(sprite, N - 1, (3, 3)), arrays["images"][N - 1])
    assert os.path.isfile(tmp_path / "web" / "projector_config.json")


def test_metadata_tsv_with_header_and_labels(tmp_path, files, capsys):
    arrays, paths = files
    tsv = tmp_path / "meta.tsv"
    tsv.write_text("kind\tnote\n" + "".join(f"k{i}\tn{i}\n" for i in range(N)), encoding="utf-8")
    assert main(["--logdir", str(tmp_path / "logs"), "--embedding", f"e={paths['emb']}",
                 "--labels", paths["labels"], "--metadata", str(tsv)]) == 0
    text = ProjectorClient(tmp_path / "logs").metadata(".", "e")
    assert text.split("\n")[:2] == ["label\tkind\tnote", "0\tk0\tn0"]


@pytest.mark.parametrize(
    "argv_tail, message",
    [
        (["--embedding", "e"], "expected NAME=FILE.npy"),
        (["--embedding", "e=missing.npy"], "Cannot read --embedding e from 'missing.npy'"),
        ([], "No embeddings: give at least one --embedding"),
        (["--embedding", "a&b={emb}"], "Invalid embedding name 'a&b'"),
        (["--embedding", "e={emb}", "--labels", "{images}"], "expected N labels (1-D)"),
        (["--embedding", "e={emb}", "--images", "{labels}"], "expected rank 3"),
        (["--embedding", "e={emb}", "--embedding", "e={emb}"], "the name 'e' is given twice"),
    ],
)
def test_errors_are_one_line_on_stderr(tmp_path, files, capsys, argv_tail, message):
    _, paths = files
    argv = ["--logdir", str(tmp_path / "logs")] + [a.format(**paths) for a in argv_tail]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("projector-export: error: ") and message in err
    assert not (tmp_path / "logs").exists()


def test_console_script_error_after_tensorflow_import_is_one_line(tmp_path, files):
    """Through the installed entry point, with TensorFlow loaded before the error: still one line."""
    _, paths = files
    run_dir = tmp_path / "logs" / "r"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint").write_text('model_checkpoint_path: "other-ckpt"\n')
    script = shutil.which("projector-export", path=os.path.dirname(sys.executable))
    assert script, "the projector-export console script is not installed"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    proc = subprocess.run([script, "--logdir", str(tmp_path / "logs"), "--run", "r", "--embedding", f"e={paths['emb']}"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "projector_export did not write" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--embedding", "e=x.npy"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--logdir" in err
