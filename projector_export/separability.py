"""How well a layer's space separates the classes, as one number.

The seeds judge "does the deeper layer separate the digits better?" by eye from a t-SNE plot. This module turns
that into the leave-one-out k-nearest-neighbour accuracy: for every example, the majority class of its ``k``
nearest *other* examples (Euclidean distance in the layer's space) is compared with its own label. 1.0 means
every neighbourhood is pure; chance is about ``1 / n_classes``.

Distances come from the Gram trick ``|a - b|^2 = |a|^2 + |b|^2 - 2 a.b`` computed a block of rows at a time, so
memory stays ``block_rows x N`` and the work is one matrix product per block. Very wide inputs (a flattened conv
output has tens of thousands of columns) of many rows are first projected to ``projection_dim`` columns with a
fixed-seed Gaussian random projection, which keeps pairwise distances within a few percent (Johnson-Lindenstrauss)
and makes the cost ``N x D x projection_dim`` instead of ``N^2 x D``; with N <= projection_dim the distances are
exact (no cheaper that way).
"""

from __future__ import annotations

import numpy as np

DEFAULT_K = 5
"""Neighbours that vote (scikit-learn's default for ``KNeighborsClassifier``); ties go to the nearest."""

DEFAULT_PROJECTION_DIM = 512
"""Inputs wider than this are randomly projected to this many columns before the neighbour search."""

_BLOCK_ROWS = 1024
_PROJECTION_SEED = 0


def knn_separability(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    k: int = DEFAULT_K,
    projection_dim: int | None = DEFAULT_PROJECTION_DIM,
    block_rows: int = _BLOCK_ROWS,
) -> float:
    """Leave-one-out k-NN accuracy of ``labels`` in the space of ``features``.

    Args:
        features: ``N x ...`` array; trailing axes are flattened (a conv output ``N x H x W x C`` is fine).
        labels: ``N`` integer class ids.
        k: neighbours that vote, ``1 <= k < N``. Ties between classes go to the class of the nearest neighbour.
        projection_dim: random-project inputs wider than this first (``None``: always exact distances).
        block_rows: rows of the distance matrix held in memory at once.

    Returns:
        The fraction of examples whose neighbours' majority vote equals their own label.
    """
    x = np.asarray(features)
    y = np.asarray(labels)
    if x.ndim < 2:
        raise ValueError(f"`features` must be N x D (or N x ...), received shape {x.shape}.")
    n = x.shape[0]
    if y.shape != (n,):
        raise ValueError(
            f"`labels` must have one entry per row of `features`: received labels of shape {y.shape} "
            f"for {n} feature rows. Pass the labels of exactly those examples."
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"`labels` must be integer class ids, received dtype {y.dtype}. Map class names to ids first.")
    if not 1 <= k < n:
        raise ValueError(f"`k` must be in [1, N-1] = [1, {n - 1}], received k={k}.")
    if block_rows < 1:
        raise ValueError(f"`block_rows` must be >= 1, received {block_rows}.")

    x = _project(x.reshape(n, -1).astype(np.float32, copy=False), projection_dim)
    classes, y_ids = np.unique(y, return_inverse=True)
    sq_norms = np.einsum("ij,ij->i", x, x)
    # Vote weight 1 + 2^-(rank+1): counts decide, and among tied classes the one holding the nearest neighbour
    # wins (the tie-break terms of all other ranks sum to less than that of rank 0).
    weights = 1.0 + 0.5 ** np.arange(1, k + 1)
    correct = 0
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        rows = np.arange(stop - start)
        # |a|^2 is the same along a row, so it cannot change which columns are nearest: leave it out.
        dist = x[start:stop] @ x.T
        dist *= -2.0
        dist += sq_norms[None, :]
        dist[rows, rows + start] = np.inf  # leave one out: never your own neighbour
        votes = np.zeros((stop - start, classes.size))
        # k passes of argmin (k is small) find the nearest in order, several times faster than argpartition.
        for weight in weights:
            nearest = dist.argmin(axis=1)
            votes[rows, y_ids[nearest]] += weight
            dist[rows, nearest] = np.inf
        correct += int(np.count_nonzero(votes.argmax(axis=1) == y_ids[start:stop]))
    return correct / n


def _project(x: np.ndarray, projection_dim: int | None) -> np.ndarray:
    """``x`` itself if narrow enough, else a fixed-seed Gaussian random projection of it to ``projection_dim``.

    With no more rows than `projection_dim` the exact Gram matrix costs no more than the projection: keep it exact.
    """
    if projection_dim is None or x.shape[1] <= projection_dim or x.shape[0] <= projection_dim:
        return x
    rng = np.random.default_rng(_PROJECTION_SEED)
    matrix = rng.standard_normal((x.shape[1], projection_dim), dtype=np.float32) / np.sqrt(projection_dim)
    return x @ matrix
