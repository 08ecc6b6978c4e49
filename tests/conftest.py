"""Shared fixtures: the real MNIST files, read once per test session through `training.mnist`."""

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
