"""Shared fixtures: the real MNIST files, read once per test session through `training.mnist`; for the browser
tests, one headless Chromium per module, the folder their screenshots go to, and one short real training laid
out with `projector-layouts` (`_laid_out_run`)."""

from __future__ import annotations

import os
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
