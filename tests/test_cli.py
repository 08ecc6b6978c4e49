"""The `projector-export` command: success output, what it writes, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from _projector_client import ProjectorClient, sprite_cell

from projector_export.cli import main
from projector_export.config import config_path

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
    paths["empty"] = str(tmp_path / "empty.npy")
    open(paths["empty"], "wb").close()
    paths["huge"] = str(tmp_path / "huge.npy")  # a header claiming 10^12 rows, and no data
    with open(paths["huge"], "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 4)})
    paths["a_file"] = str(tmp_path / "a_file")
    with open(paths["a_file"], "w") as f:
        f.write("not a directory")
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
        (["--embedding", "e={empty}"], "Cannot read --embedding e from '{empty}': the file is empty. Expected a .npy"),
        (["--embedding", "e=/dev/null"], "Cannot read --embedding e from '/dev/null': it is not a regular file"),
        (["--embedding", "e={huge}"], "Cannot read --embedding e from '{huge}': mmap length is greater than file size"),
        (["--embedding", "e={emb}", "--standalone", "{a_file}"], "Invalid logdir '{a_file}': '{a_file}' is a file"),
        (["--embedding", "e={emb}", "--standalone", "{a_file}/web"], "'{a_file}' is a file, expected a directory"),
        (["--embedding", "e={emb}", "--run", "r" * 256], "it is 256 bytes long, longer than a file name may be"),
    ],
)
def test_errors_are_one_line_on_stderr(tmp_path, files, capsys, argv_tail, message):
    _, paths = files
    argv = ["--logdir", str(tmp_path / "logs")] + [a.format(**paths) for a in argv_tail]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("projector-export: error: ") and message.format(**paths) in err
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
    argv = [script, "--logdir", str(tmp_path / "logs"), "--run", "r", "--embedding", f"e={paths['emb']}"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "projector_export did not write" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--embedding", "e=x.npy"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--logdir" in err


def test_int_flag_checked_by_argparse(tmp_path, files, capsys):
    _, paths = files
    with pytest.raises(SystemExit) as exit_info:
        main(["--logdir", str(tmp_path / "logs"), "--embedding", f"e={paths['emb']}", "--pca-components", "0"])
    assert exit_info.value.code == 2
    assert "argument --pca-components: expected an int >= 1, received '0'" in capsys.readouterr().err


def test_output_checked_before_anything_is_written(tmp_path, files, capsys, monkeypatch):
    """A --standalone folder that cannot be written stops the export before the TensorBoard run is written."""
    _, paths = files
    web = tmp_path / "web"
    web.mkdir()
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(web) else access(path, mode))
    assert main(["--logdir", str(tmp_path / "logs"), "--embedding", f"e={paths['emb']}", "--standalone", str(web)]) == 2
    assert f"Invalid --standalone '{web}': '{web}' is not writable by this user" in capsys.readouterr().err
    assert not (tmp_path / "logs").exists() and list(web.iterdir()) == []


def test_an_internal_error_keeps_its_traceback(tmp_path, files, monkeypatch):
    """Only input errors become one line: a bug inside the export is raised as it is."""
    _, paths = files

    def broken(*args, **kwargs):
        raise TypeError("a bug, not the user's input")

    monkeypatch.setattr("projector_export.cli.export_embeddings", broken)
    with pytest.raises(TypeError, match="a bug, not the user's input"):
        main(["--logdir", str(tmp_path / "logs"), "--embedding", f"e={paths['emb']}"])


def test_the_library_never_imports_the_training_app(tmp_path, files):
    """All of projector_export imported, `projector-export --help` and an export run: no `training` module loaded."""
    _, paths = files
    script = (
        "import contextlib, importlib, io, json, pkgutil, sys\n"
        "import projector_export\n"
        "from projector_export.cli import main\n"
        "for module in pkgutil.walk_packages(projector_export.__path__, 'projector_export.'):\n"
        "    importlib.import_module(module.name)\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main(['--logdir', {str(tmp_path / 'logs')!r}, '--embedding', 'e={paths['emb']}'])\n"
        "app = sorted(m for m in sys.modules if m.split('.')[0] in ('training', 'projector_export_training'))\n"
        "print(json.dumps({'code': code, 'app': app, 'loaded': len(sys.modules)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["code"] == 0 and answer["app"] == []
    assert os.path.isfile(config_path(str(tmp_path / "logs")))  # the export did run
