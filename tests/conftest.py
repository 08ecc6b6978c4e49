"""Shared fixtures: the real MNIST files, read once per test session through `training.mnist`; for the browser
tests, one headless Chromium per module, the folder their screenshots go to, and one short real training laid
out with `projector-layouts` (`_laid_out_run`). After each test, the layout workers its trainings started
(`LayoutFeed`, on by default) in this session's temporary folders are stopped (`_layout_workers`)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from training.mnist import ENV_VAR, MnistData, load_mnist


@pytest.fixture(scope="session")
def mnist() -> MnistData:
    """The official MNIST in memory, from `$MNIST_DATA_DIR` (else Keras' download), checked by SHA-256.

    Integration tests use it; with neither the variable nor internet access they fail with the loader's
    message, which names the variable and the fix.
    """
    return load_mnist(os.environ.get(ENV_VAR), require_official=True)


@pytest.fixture(scope="session")
def mnist_dir(mnist: MnistData) -> Path:
    """The directory holding the four real MNIST IDX files."""
    return mnist.directory


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless (`_browser.launch_chromium`), for one test module (closed at its end: a module
    that starts Playwright itself cannot while another instance runs in the same thread)."""
    from _browser import launch_chromium
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    """`$PROJECTOR_SCREENSHOTS` (README's pictures: `docs/screenshots`), else a temporary folder."""
    folder = os.environ.get("PROJECTOR_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def laid_out_run(mnist_dir, tmp_path_factory) -> Path:
    """The run directory of `_laid_out_run`: a short real training with its layouts, made once per session."""
    from _laid_out_run import make

    return make(tmp_path_factory.mktemp("laid-out-logs"), mnist_dir)


@pytest.fixture(autouse=True)
def _no_layout_worker_left(tmp_path_factory):
    """Stops the layout workers left running by the test (they outlive the training that started them, by design);
    a test that needs their layouts waits for them itself (`projector-layouts --wait`, `LayoutFeed.wait`)."""
    yield
    workers = _layout_workers(str(tmp_path_factory.getbasetemp()))
    for pid in workers:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while workers and time.monotonic() < deadline:
        workers = [pid for pid in workers if _alive(pid)]
        time.sleep(0.05)


def _layout_workers(under: str) -> list[int]:
    """The pids of this user's `projector-layouts --follow` processes whose log dir lies in `under`."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry.path).st_uid != os.getuid():
                continue
            with open(os.path.join(entry.path, "cmdline"), "rb") as f:
                words = f.read().decode(errors="replace").split("\0")
            cwd = os.readlink(os.path.join(entry.path, "cwd"))
        except OSError:
            continue
        if "projector_export.layouts_cli" in words and "--follow" in words and "--logdir" in words:
            logdir = os.path.abspath(os.path.join(cwd, words[words.index("--logdir") + 1]))
            if _alive(int(entry.name)) and (logdir + os.sep).startswith(os.path.abspath(under) + os.sep):
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Whether `pid` runs (neither gone nor a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False
