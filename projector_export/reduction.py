"""PCA in numpy for wide embeddings, so the browser downloads N×k floats instead of N×D.

The PROJECTOR's own PCA first projects anything wider than 200 dimensions randomly, and a
10,000×3136 float32 tensor is 125 MB to download. Keeping the top `k` principal components
(default 128, below the browser's 200) keeps the directions the PROJECTOR's PCA shows, at a
small fraction of the size; the share of variance kept is reported.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

# Reduce by default only above this width: below it the tensor is small and the browser's
# own PCA is exact (it projects randomly only above 200 dimensions).
PCA_THRESHOLD_DIM = 256
# Components kept by default (below the browser's 200-dimension random-projection threshold).
DEFAULT_PCA_COMPONENTS = 128
# Extra sketch columns of the randomized method (Halko, Martinsson & Tropp 2011, §4.2).
_OVERSAMPLING = 10
# Rows sampled to find the principal subspace (all rows are then projected on it): the
# subspace of 2,048 rows is nearly that of all of them, at a fraction of the cost.
_SKETCH_ROWS = 2048
# Power iterations on the sample: each sharpens the subspace for slowly decaying spectra.
_POWER_ITERATIONS = 1
# BLAS threads of the PCA's big products (rows of X times the basis): half the cores (at least
# one). Every core was faster for the PCA alone on a quiet machine, but not for a whole training
# with snapshots, where TensorFlow's threads share the cores (docs/cost.md). Every other product
# (Gram matrices of tall-skinny arrays, small right-hand sides) runs on one thread: OpenBLAS
# splits those poorly and its threads spin while they wait, many times slower on a busy machine.
_BLAS_THREADS = max(1, (os.cpu_count() or 2) // 2)
# Rows per block where a temporary copy of the rows is needed.
_BLOCK_ROWS = 1024
# Fixed seed: the same input always gives the same output.
_SEED = 0


@dataclass(frozen=True)
class PCAResult:
    """Principal-component coordinates of N examples.

    Attributes:
      coordinates: float32 N×k, row i = example i projected on the top k components.
      explained_variance_ratio: float, share of the total variance the k components keep (0..1).
      method: "exact" (SVD) or "randomized" (Rayleigh–Ritz on a one-power-iteration sketch).
    """

    coordinates: np.ndarray
    explained_variance_ratio: float
    method: str


def pca(x: np.ndarray, n_components: int) -> PCAResult:
    """Projects the rows of float32 N×D `x` on its top `n_components` principal components.

    Exact (thin SVD) when N or D is small; otherwise randomized (Halko, Martinsson & Tropp
    2011): a subspace W of k + 10 directions from a Gaussian sketch and one power iteration
    with the covariance of 2,048 sampled rows, then the exact PCA of all of X inside W
    (Rayleigh–Ritz). That costs about two passes over X and no N×k QR or SVD, which is what
    makes it fast (see benchmarks/export_bench.py). The coordinates written are the exact
    orthogonal projection of X on k directions, and the ratio reported is the exact share of
    variance they keep; it is a little below the best possible share (docs/benchmarks.md compares
    it with the exact top components). Components are sign-normalised
    (largest loading positive), and the sketch seeded, so the output is deterministic.
    """
    with _blas_threads(1):
        return _pca(x, n_components)


@functools.cache
def _threadpools() -> ThreadpoolController:
    return ThreadpoolController()


def _blas_threads(limit: int):
    """A context that runs the BLAS calls inside it on `limit` threads."""
    return _threadpools().limit(limits=limit, user_api="blas")


def _wide_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b on `_BLAS_THREADS` threads: for the products whose every dimension but one is large."""
    with _blas_threads(_BLAS_THREADS):
        return a @ b


def _pca(x: np.ndarray, n_components: int) -> PCAResult:
    n, d = x.shape
    k = min(n_components, n, d)
    mean = x.mean(axis=0, dtype=np.float64)
    total_variance = _total_variance(x, mean.astype(np.float32))
    if total_variance == 0:  # every row the same (a constant tensor): valid data, all coordinates 0
        return PCAResult(coordinates=np.zeros((n, k), dtype=np.float32), explained_variance_ratio=1.0, method="exact")
    width = k + _OVERSAMPLING
    if min(n, d) <= 2 * width:
        coordinates, components = _exact(x, mean, k)
        method = "exact"
    else:
        coordinates, components = _randomized(x, mean.astype(np.float32), k, width)
        method = "randomized"
    coordinates, components = _normalise_signs(coordinates, components)
    kept = float(np.sum(np.square(coordinates, dtype=np.float64)))
    ratio = kept / total_variance if total_variance > 0 else 1.0
    return PCAResult(coordinates=np.ascontiguousarray(coordinates, dtype=np.float32),
                     explained_variance_ratio=min(ratio, 1.0), method=method)


def _total_variance(x: np.ndarray, mean: np.ndarray) -> float:
    """Σ‖xᵢ − μ‖², in blocks of rows so that no second N×D array is allocated."""
    total = 0.0
    for start in range(0, x.shape[0], _BLOCK_ROWS):
        block = (x[start:start + _BLOCK_ROWS] - mean).ravel()
        total += float(np.dot(block, block))
    return total


def _exact(x: np.ndarray, mean: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    centered = x.astype(np.float64) - mean
    u, s, vt = np.linalg.svd(centered, full_matrices=False)
    return (u[:, :k] * s[:k]).astype(np.float32), vt[:k].T


def _randomized(x: np.ndarray, mean: np.ndarray, k: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    # Centering is applied as a rank-one correction instead of copying X: Xc v = X v - 1 (μᵀ v).
    rng = np.random.default_rng(_SEED)
    sample = x
    if x.shape[0] > _SKETCH_ROWS:
        sample = x[np.sort(rng.choice(x.shape[0], size=_SKETCH_ROWS, replace=False))]
    # The subspace: power iterations with the covariance of a row sample, W ← orth(Sᵀ S W).
    basis = rng.standard_normal((x.shape[1], width), dtype=np.float32)
    for _ in range(_POWER_ITERATIONS + 1):
        y = _wide_product(sample, basis) - mean @ basis                       # S W,      m×w
        basis = _orthonormal_columns(_wide_product(sample.T, y) - np.outer(mean, y.sum(axis=0)))  # Sᵀ S W
    # Rayleigh–Ritz with every row: the exact PCA of X inside span(W).
    z = _wide_product(x, basis) - mean @ basis         # Xc W,            N×w'
    gram = (z.T @ z).astype(np.float64)                # Wᵀ Xcᵀ Xc W,     w'×w'
    _, eigenvectors = np.linalg.eigh(gram)
    top = eigenvectors[:, ::-1][:, :k].astype(np.float32)
    coordinates, components = z @ top, basis @ top
    missing = k - coordinates.shape[1]
    if missing > 0:  # the data has rank < k: the remaining coordinates are zero
        coordinates = np.pad(coordinates, ((0, 0), (0, missing)))
        components = np.pad(components, ((0, 0), (0, missing)))
    return coordinates, components


def _orthonormal_columns(a: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the column space of a tall D×w matrix, from its small Gram matrix.

    Eigen-decomposing the w×w Gram matrix in float64 costs D·w² and, unlike a Householder
    QR of the D×w matrix, needs no multi-threaded LAPACK call, which is many times slower
    than the rest on a busy machine. Directions whose squared singular value is below
    1e-10 of the largest are dropped (rank-deficient input).
    """
    a64 = a.astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(a64.T @ a64)
    if a.shape[1] == 0 or eigenvalues[-1] <= 0:  # no direction left: the sketch found no variance
        return np.zeros((a.shape[0], 0), dtype=np.float32)
    keep = eigenvalues > eigenvalues[-1] * 1e-10
    return (a64 @ (eigenvectors[:, keep] / np.sqrt(eigenvalues[keep]))).astype(np.float32)


def _normalise_signs(coordinates: np.ndarray, components: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    largest = np.argmax(np.abs(components), axis=0)
    signs = np.sign(components[largest, np.arange(components.shape[1])])
    signs[signs == 0] = 1
    return coordinates * signs.astype(coordinates.dtype), components * signs
