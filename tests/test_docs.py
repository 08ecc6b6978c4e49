"""Every example in README.md and docs/*.md runs as written, on tiny data: an example that does not work fails here.

Each page's fenced blocks run in order, in one temporary folder per page (so a block may use the files an earlier
one wrote), by language:

- ```python: executed with the names the examples take as given already defined (`_names`: `model`, a small
  compiled CNN on 8×8 images, `x_train`, `y_train`, `x_test`, `y_test` (2,000 test images), `x`, `y`, `images`,
  `labels`, `activations` and `ok` (1,000 rows)).
- ```sh: every command runs through the command's own `main` (what its console script calls), in this process,
  with `MNIST_DATA_DIR` and `~/data/fashion-mnist` a tiny MNIST-format set of 8×8 images. `projector-train`'s
  `--steps` is capped at `MAX_TRAIN_STEPS` (the rest of the line runs as written); a command ending in `&`
  runs to its end before the next one; `tensorboard` (a server) is not started.
- ```text: listings and synopses, not code.

A block preceded by `<!-- not run: <reason> -->` is not run, and says why; README's set-up block is checked to be
what `.ci/run` runs, command by command.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from _idx_files import idx_bytes

from training import export_model, train, watch
from training.mnist import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MAX_TRAIN_STEPS = 4
_BLOCK = re.compile(r"(?:<!-- not run: (?P<reason>[^>]+?) -->\n+)?^```(?P<language>\w*)\n(?P<code>.*?)^```",
                    re.MULTILINE | re.DOTALL)
_COMMANDS = {"projector-train": train.main, "projector-export-model": export_model.main,
             "projector-watch": watch.main}
_SERVERS = {"tensorboard"}


def _blocks(page: Path) -> list[tuple[str, str, str | None]]:
    """(language, code, reason not to run it or None) of each fenced block of `page`, in order."""
    return [(m["language"], m["code"], m["reason"]) for m in _BLOCK.finditer(page.read_text())]


def test_every_block_says_what_it_is():
    for page in PAGES:
        for language, code, reason in _blocks(page):
            assert language in ("python", "sh", "text"), f"{page.name}: a block without python/sh/text:\n{code}"
            assert reason is None or language != "text", f"{page.name}: a text block is never run:\n{code}"


def test_readme_set_up_is_what_ci_runs():
    (setup,) = [code for _, code, reason in _blocks(ROOT / "README.md") if reason and ".ci/run" in reason]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for line in setup.splitlines():  # each command a line of its own there (maybe followed by its exit handling)
        assert any(ci_line == line or ci_line.startswith(f"{line} ") for ci_line in ci), line


def _tiny_mnist(directory: Path) -> None:
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True)
    for name, array in {TRAIN_IMAGES: rng.integers(0, 256, (128, 8, 8)), TRAIN_LABELS: np.arange(128) % 10,
                        TEST_IMAGES: rng.integers(0, 256, (5000, 8, 8)), TEST_LABELS: np.arange(5000) % 10}.items():
        (directory / name).write_bytes(idx_bytes(np.asarray(array, np.uint8)))


def _names() -> dict[str, object]:
    """What the Python examples take as given: a model and data of its shape (tiny), and arrays to export."""
    import keras

    rng = np.random.default_rng(1)
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.MaxPooling2D(name="pool1")(keras.layers.Conv2D(4, 3, padding="same", name="conv1")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(keras.layers.Flatten()(hidden)))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    x_train, x_test = (rng.random((n, 8, 8, 1), dtype=np.float32) for n in (64, 2000))
    y_train, y_test = rng.integers(0, 10, 64), np.arange(2000) % 10
    x, y = rng.integers(0, 256, (100, 8, 8), dtype=np.uint8), np.arange(100) % 10
    return dict(model=model, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, x=x, y=y,
                images=x_test[:1000], labels=y_test[:1000], activations=rng.random((1000, 64), dtype=np.float32),
                ok=np.where(rng.random(1000) < 0.9, "yes", "no"))


def _run_commands(code: str) -> None:
    """Each command of a shell block through its command's `main`; a failing one fails the test."""
    from projector_export import cli, layouts_cli

    commands = {**_COMMANDS, "projector-export": cli.main, "projector-layouts": layouts_cli.main}
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words[-1:] == ["&"]:
            words = words[:-1]
        if not words or words[0] in _SERVERS:
            continue
        assert words[0] in commands, f"an example runs {words[0]!r}, which this test cannot run"
        argv = [os.path.expanduser(word) for word in words[1:]]
        if words[0] == "projector-train":
            argv = _capped_steps(argv)
        try:
            status = commands[words[0]](argv)
        except SystemExit as exit_:
            status = exit_.code
        assert status in (0, None), f"{line!r} exited with {status}"


def _capped_steps(argv: list[str]) -> list[str]:
    if "--steps" not in argv:
        return [*argv, "--steps", str(MAX_TRAIN_STEPS)]
    at = argv.index("--steps") + 1
    return [*argv[:at], str(min(int(argv[at]), MAX_TRAIN_STEPS)), *argv[at + 1:]]


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_examples_run_as_written(page, tmp_path, monkeypatch, capsys):
    blocks = [(language, code) for language, code, reason in _blocks(page) if language != "text" and not reason]
    if not blocks:
        pytest.skip(f"{page.name} has no example to run")
    _tiny_mnist(tmp_path / "mnist")
    _tiny_mnist(tmp_path / "home" / "data" / "fashion-mnist")
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "mnist"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    names = _names()  # one namespace per page, as a reader running its examples one after the other
    for language, code in blocks:
        if language == "python":
            exec(compile(code, f"{page.name} example", "exec"), names)
        else:
            _run_commands(code)
    capsys.readouterr()
