"""Tiny MNIST-format (IDX) data sets written by tests, for `training.mnist` and the training CLIs."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from training.mnist import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS

RNG = np.random.default_rng(0)


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    magic = (0x0800 | array.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, content: bytes, gz: bool) -> None:
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)


def tiny_set(directory: Path, *, gz: bool = False, train: int = 6, test: int = 4, shape=(5, 3)) -> dict:
    """Writes a tiny MNIST-format data set; returns its arrays by file name."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        TRAIN_IMAGES: RNG.integers(0, 256, (train, *shape), dtype=np.uint8),
        TRAIN_LABELS: np.arange(train, dtype=np.uint8) % 3,
        TEST_IMAGES: RNG.integers(0, 256, (test, *shape), dtype=np.uint8),
        TEST_LABELS: np.arange(test, dtype=np.uint8) % 3,
    }
    for name, array in arrays.items():
        write_idx(directory / name, idx_bytes(array), gz)
    return arrays
