"""PCA in numpy for wide embeddings, so the browser downloads N×k floats instead of N×D.

The PROJECTOR's own PCA first projects anything wider than 200 dimensions randomly, and a
10,000×3136 float32 tensor is 125 MB to download. Keeping the top `k` principal components
(default 128, below the browser's 200) keeps the directions the PROJECTOR's PCA shows, at a
small fraction of the size; the share of variance kept is reported.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

# Reduce by default only above this width: below it the tensor is small and the browser's
# own PCA is exact (it projects randomly only above 200 dimensions).
PCA_THRESHOLD_DIM = 256
# Components kept by default (below the browser's 200-dimension random-projection threshold).
DEFAULT_PCA_COMPONENTS = 128
# Extra sketch columns of the randomized method (Halko, Martinsson & Tropp 2011, §4.2); the sketch is
# centred on the sample's own mean (so that rows can stream in), which 20 extra columns more than
# make up for (docs/benchmarks.md).
_OVERSAMPLING = 20
# Rows sampled to find the principal subspace (all rows are then projected on it): the
# subspace of 2,048 rows is nearly that of all of them, at a fraction of the cost.
_SKETCH_ROWS = 2048
# Power iterations on the sample: each sharpens the subspace for slowly decaying spectra.
_POWER_ITERATIONS = 1
# BLAS threads of the big products (rows of X times the basis): every core. Every other product (Gram
# matrices of tall-skinny arrays, small right-hand sides) runs on one BLAS thread: OpenBLAS splits
# those poorly and its threads spin while they wait.
_BLAS_THREADS = os.cpu_count() or 1
# Rows per block where a temporary copy of the rows is needed (small enough to be reused by malloc).
_BLOCK_ROWS = 64
# Fixed seed: the same input always gives the same output.
_SEED = 0
_NOT_FINITE = "its rows contain NaN or infinite values, so their PCA is undefined."


@dataclass(frozen=True)
class PCAResult:
    """Principal-component coordinates of N examples.

    Attributes:
      coordinates: float32 N×k, row i = example i projected on the top k components.
      explained_variance_ratio: float, share of the total variance the k components keep (0..1).
      method: "exact" (SVD) or "randomized" (Rayleigh–Ritz on a one-power-iteration sketch).
      input_dim: D, the width of the rows that were reduced.
    """

    coordinates: np.ndarray
    explained_variance_ratio: float
    method: str
    input_dim: int


def pca(x: np.ndarray, n_components: int) -> PCAResult:
    """Projects the rows of float32 N×D `x` on its top `n_components` principal components.

    Exact (thin SVD) when N or D is small; otherwise randomized (Halko, Martinsson & Tropp
    2011): a subspace W of k + 20 directions from a Gaussian sketch and one power iteration
    with the covariance of 2,048 sampled rows, then the exact PCA of all of X inside W
    (Rayleigh–Ritz), as `StreamingPCA` does it. That costs about two passes over X and no N×k
    QR or SVD, which is what makes it fast (see benchmarks/export_bench.py). The coordinates
    written are the exact orthogonal projection of X on k directions, and the ratio reported is
    the exact share of variance they keep; it is a little below the best possible share
    (docs/benchmarks.md compares it with the exact top components). Components are
    sign-normalised (largest loading positive), and the sketch seeded, so the output is
    deterministic.
    """
    n, d = x.shape
    k = min(n_components, n, d)
    if not is_sketched(n, d, n_components):
        with _blas_threads(1):
            return _exact_pca(x, k)
    stream = StreamingPCA(n, d, n_components)
    while stream.sketching:
        stream.add_sample(x[stream.pass_rows])
    stream.add(slice(0, n), x)
    return stream.result()


def reduced_by_default(d: int, n_components: int) -> bool:
    """Whether an export with `reduce="auto"` reduces rows of width D (wider than `PCA_THRESHOLD_DIM`)."""
    return d > PCA_THRESHOLD_DIM and d > n_components


def is_sketched(n: int, d: int, n_components: int) -> bool:
    """Whether `pca` of an N×D array takes the randomized path (which `StreamingPCA` computes in blocks)."""
    return min(n, d) > 2 * (min(n_components, n, d) + _OVERSAMPLING)


def sample_rows(n: int) -> np.ndarray:
    """The sorted row indices (of N) whose covariance finds the principal subspace (all of them for N ≤ 2,048)."""
    if n <= _SKETCH_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(_SEED).choice(n, size=_SKETCH_ROWS, replace=False))


class StreamingPCA:
    """The randomized PCA of N rows that arrive in blocks: first (once or twice) the sample of them named by
    `sample_rows` (`pass_rows`), which finds the principal subspace, then all of them, projected on it.

    Holds D×(k + 20) directions and N×(k + 20) projections, never the N×D rows nor the sample: a forward pass
    hands over each layer's batch as soon as it is computed, so a snapshot of a wide layer needs memory for
    one batch, whatever N and D. `pca(x)` is this with `x` handed over at once, so both give the same
    coordinates.

    `matmul(a, b, transpose_a)`: the big products, a @ b or aᵀ @ b as a float32 array (default: numpy's BLAS on
    every core). A forward pass that computes the per-block products in its own graph (`streamed_pass`, for a
    snapshot) hands over those instead of the rows (`add_sample_sums`, `add_projected`, reading `basis` and
    `offset`): the rows then never leave it.

    `start`: the `basis` of an earlier PCA of rows like these (the same layer earlier in training): consecutive
    snapshots of a layer span nearly the same subspace, so one pass over the sample from it replaces the
    fresh sketch's two (docs/benchmarks.md compares the variance kept).

    Attributes:
      sketching: True while it wants (another pass over) sample rows: those of `pass_rows`, in order.
      basis: the D×(k + 20) orthonormal directions the rows are projected on, the `start` of the next one.

    Example:
        stream = StreamingPCA(n, d, 128)
        while stream.sketching:
            for rows in np.array_split(stream.pass_rows, 4):
                stream.add_sample(x[rows])
        for rows in batches:
            stream.add(rows, x[rows])
        result = stream.result()
    """

    def __init__(
        self, n_rows: int, input_dim: int, n_components: int, *, start: np.ndarray | None = None,
        matmul: Callable[[np.ndarray, np.ndarray, bool], np.ndarray] | None = None,
    ):
        self.n_rows, self.input_dim = n_rows, input_dim
        self._matmul = matmul or _wide_product
        self.k = min(n_components, n_rows, input_dim)
        if not is_sketched(n_rows, input_dim, n_components):
            raise ValueError(f"An {n_rows}×{input_dim} array is reduced exactly; use `pca` for it.")
        width = self.k + _OVERSAMPLING
        if start is not None and start.shape != (input_dim, width):
            start = None  # another layer width or number of components: a fresh start
        self._passes_left = _POWER_ITERATIONS + 1 if start is None else 1
        self.basis = start if start is not None else (
            np.random.default_rng(_SEED).standard_normal((input_dim, width), dtype=np.float32))
        self._sample = sample_rows(n_rows)
        # Rows are centred on the sample's mean (the exact mean of all rows corrects them at the end): no
        # cancellation in the sums. Zero until the first pass over the sample has measured it.
        self._offset = np.zeros(input_dim, dtype=np.float32)
        self._begin_pass()
        self._z: np.ndarray | None = None
        self._sum = np.zeros(input_dim, dtype=np.float64)
        self._squares = 0.0
        self._added = 0

    @property
    def sketching(self) -> bool:
        return self._passes_left > 0

    @property
    def pass_rows(self) -> np.ndarray:
        """The sorted row indices (of N) the current pass over the sample takes: a fresh sketch's first pass,
        which only has to point the Gaussian start the right way, every other sample row; else the sample."""
        first_of_fresh = self._passes_left == _POWER_ITERATIONS + 1
        return self._sample[::2] if first_of_fresh else self._sample

    def _begin_pass(self) -> None:
        self._seen = 0
        self._sample_sum = np.zeros(self.input_dim, dtype=np.float64)
        self._y_sum = np.zeros(self.basis.shape[1], dtype=np.float64)
        self._product = np.zeros_like(self.basis)  # Sᵀ (S − 1 offsetᵀ) W, summed over the sample's blocks

    @property
    def offset(self) -> np.ndarray:
        """The length-D vector the rows are centred on before their squares and sketch products are summed."""
        return self._offset

    def add_sample(self, block: np.ndarray) -> None:
        """Takes the next rows of the current pass (`pass_rows`, in order), len×D; a pass ends with its last row."""
        if not self.sketching:
            raise ValueError("StreamingPCA has its subspace already; hand over the rows with `add`.")
        y = self._matmul(block, self.basis, False) - self._offset @ self.basis  # (S − 1 offsetᵀ) W,  b×w
        product = self._matmul(block, y, True)
        with _blas_threads(1):
            self.add_sample_sums(len(block), product, block.sum(axis=0, dtype=np.float64),
                                 y.sum(axis=0, dtype=np.float64))

    def add_sample_sums(self, count: int, product: np.ndarray, row_sum: np.ndarray, y_sum: np.ndarray) -> None:
        """`add_sample` of `count` rows S given as its sums, from a forward pass that computed them beside the rows:
        Sᵀ Y (D×w), the column sums of S (D) and of Y (w), for Y = S W − offset · W (`basis`, `offset`)."""
        if not self.sketching:
            raise ValueError("StreamingPCA has its subspace already; hand over the rows with `add`.")
        self._product += product
        self._sample_sum += row_sum
        self._y_sum += y_sum
        self._seen += count
        rows = len(self.pass_rows)
        if self._seen < rows:
            return
        # The pass is complete: W ← orth(Scᵀ Sc W), Scᵀ Sc W = Sᵀ Y − μ (1ᵀ Y) for Y = (S − 1 offsetᵀ) W.
        if not np.isfinite(self._sample_sum).all():
            raise ValueError(_NOT_FINITE)
        mean = self._sample_sum / rows
        with _blas_threads(1):
            self.basis = _orthonormal_columns(self._product - np.outer(mean, self._y_sum).astype(np.float32))
        self._offset = mean.astype(np.float32)
        self._passes_left -= 1
        if self.sketching:
            self._begin_pass()
        else:
            self._shift = self._offset @ self.basis
            self._z = np.zeros((self.n_rows, self.basis.shape[1]), dtype=np.float32)
            del self._product, self._sample_sum, self._y_sum

    def add(self, rows: slice | np.ndarray, block: np.ndarray) -> None:
        """Takes the rows `rows` (a slice or indices into the N rows) of the array, `block` (len(rows)×D)."""
        if self.sketching:
            raise ValueError("StreamingPCA needs the sample rows first (`add_sample`, while `sketching`).")
        projected = self._matmul(block, self.basis, False)
        squares = 0.0
        with _blas_threads(1):
            column_sum = np.ones(len(block), dtype=np.float32) @ block  # one BLAS pass
            for start in range(0, len(block), _BLOCK_ROWS):
                centred = (block[start:start + _BLOCK_ROWS] - self._offset).ravel()
                squares += float(np.dot(centred, centred))
        self.add_projected(rows, projected, column_sum, squares)

    def add_projected(self, rows: slice | np.ndarray, projected: np.ndarray, column_sum: np.ndarray,
                      squares: float) -> None:
        """`add` of the rows `rows` given as what the PCA keeps of them, from a forward pass that computed it beside
        them: their projection on `basis` (len(rows)×w), their column sums (D) and Σ‖row − `offset`‖²."""
        if self.sketching:
            raise ValueError("StreamingPCA needs the sample rows first (`add_sample`, while `sketching`).")
        self._z[rows] = projected - self._shift
        self._sum += column_sum
        self._squares += float(squares)
        self._added += len(projected)

    def result(self) -> PCAResult:
        """The coordinates of all N rows on the top k components; ValueError when a value was NaN or infinite."""
        if self._added != self.n_rows:
            raise ValueError(f"StreamingPCA received {self._added} of its {self.n_rows} rows.")
        if not np.isfinite(self._sum).all() or not np.isfinite(self._squares):
            raise ValueError(_NOT_FINITE)
        with _blas_threads(1):
            mean = self._sum / self.n_rows - self._offset          # μ − offset
            total = self._squares - self.n_rows * float(mean @ mean)  # Σ‖xᵢ − μ‖²
            if total <= 0:  # every row the same (a constant tensor): valid data, all coordinates 0
                return PCAResult(np.zeros((self.n_rows, self.k), np.float32), 1.0, "exact", self.input_dim)
            z = self._z - (mean.astype(np.float32) @ self.basis)  # Xc W
            gram = (z.T @ z).astype(np.float64)                    # Wᵀ Xcᵀ Xc W
            _, eigenvectors = np.linalg.eigh(gram)
            top = eigenvectors[:, ::-1][:, :self.k].astype(np.float32)
            coordinates, components = z @ top, self.basis @ top
            missing = self.k - coordinates.shape[1]
            if missing > 0:  # the data has rank < k: the remaining coordinates are zero
                coordinates = np.pad(coordinates, ((0, 0), (0, missing)))
                components = np.pad(components, ((0, 0), (0, missing)))
            coordinates, _ = _normalise_signs(coordinates, components)
            kept = float(np.sum(np.square(coordinates, dtype=np.float64)))
        return PCAResult(np.ascontiguousarray(coordinates, dtype=np.float32), min(kept / total, 1.0), "randomized",
                         self.input_dim)


@functools.cache
def _threadpools() -> ThreadpoolController:
    return ThreadpoolController()


def _blas_threads(limit: int):
    """A context that runs the BLAS calls inside it on `limit` threads."""
    return _threadpools().limit(limits=limit, user_api="blas")


def _wide_product(a: np.ndarray, b: np.ndarray, transpose_a: bool = False) -> np.ndarray:
    """a @ b (aᵀ @ b) on `_BLAS_THREADS` threads: for the products whose every dimension but one is large."""
    with _blas_threads(_BLAS_THREADS):
        return (a.T if transpose_a else a) @ b


def _exact_pca(x: np.ndarray, k: int) -> PCAResult:
    mean = x.mean(axis=0, dtype=np.float64)
    centered = x.astype(np.float64) - mean
    total = float(np.sum(np.square(centered)))
    if total == 0:  # every row the same (a constant tensor): valid data, all coordinates 0
        return PCAResult(np.zeros((x.shape[0], k), np.float32), 1.0, "exact", x.shape[1])
    u, s, vt = np.linalg.svd(centered, full_matrices=False)
    coordinates, _ = _normalise_signs((u[:, :k] * s[:k]).astype(np.float32), vt[:k].T)
    kept = float(np.sum(np.square(coordinates, dtype=np.float64)))
    return PCAResult(np.ascontiguousarray(coordinates, dtype=np.float32), min(kept / total, 1.0), "exact",
                     x.shape[1])


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
