"""Layouts of every row of a snapshot tensor, aligned from one training step to the next.

Two per tensor: a 3-D PCA and a 2-D UMAP (umap-learn; or t-SNE with openTSNE, `method="tsne"`), computed for all
rows, never a sample. A layout that continues the same layer's previous step is

* started from it (UMAP's and t-SNE's initial positions are the previous layout), so points move continuously;
* aligned to it: centred, scaled to an RMS radius of `RADIUS`, then rotated or reflected by the orthogonal
  Procrustes solution onto the previous layout, so the picture keeps its orientation (a PCA's later axes are
  therefore the top-3 principal subspace turned to match, not the components themselves);

and the first step of a layer is turned to its own principal axes with fixed signs. Seeds are fixed: the same
rows and the same previous layout give the same layout.

Fewer than `MIN_ROWS` rows, constant rows, or rows with NaN or infinite values get a PCA only (non-finite rows
at the centre), with a note that says why; so does a UMAP or t-SNE that fails.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping

import numpy as np

from projector_export.bookmarks import LayoutState
from projector_export.reduction import pca

METHODS = ("umap", "tsne")
DEFAULT_METHOD = "umap"
# Fewer rows than this: PCA only (UMAP's and t-SNE's neighbourhoods need more points than their neighbours).
MIN_ROWS = 10
# RMS distance of a layout's points from its centre: the scale every layout is saved at (4 decimals then keep
# five significant digits of a typical coordinate).
RADIUS = 10.0
SEED = 0
PCA_DIMS, NONLINEAR_DIMS = 3, 2
# UMAP's neighbourhood and packing: smaller than its defaults (15, 0.1), so that a layout keeps each point's
# nearest neighbours (the classes' boundaries a person reads) rather than the global shape; with a few hundred
# rows the defaults kept less of the layer's k-NN label accuracy (docs/layouts.md).
UMAP_NEIGHBORS, UMAP_MIN_DIST = 10, 0.0
# Up to this many rows UMAP gets exact nearest neighbours computed here (matrix products, a fraction of a second
# for 5,000 rows) instead of its approximate search, whose code numba compiles in each new process (about 50 CPU
# seconds, docs/benchmarks.md); above it the approximate search is the cheaper.
EXACT_NEIGHBOURS_MAX_ROWS = 20_000
_BLOCK_ROWS = 1024
TSNE_PERPLEXITY = 30.0
# Optimisation rounds of a layout that starts from the previous step's: enough to settle into the new rows'
# neighbourhoods from an already good start, few enough to keep the picture continuous.
CONTINUE_UMAP_EPOCHS = 200
CONTINUE_TSNE_ITERATIONS = 250


def compute_layouts(x: np.ndarray, previous: Mapping[str, np.ndarray] | None = None, *,
                    method: str | None = DEFAULT_METHOD, continues: int | None = None,
                    seed: int = SEED) -> tuple[np.ndarray, list[LayoutState]]:
    """The aligned PCA and the non-linear layout of the rows of `x` (N×D).

    Args:
      x: the tensor's rows (any real dtype).
      previous: the same layer's previous layouts by kind ("pca", and "umap" or "tsne"), N×dims each; a layout of
        another shape is ignored.
      method: "umap" or "tsne"; None: PCA only.
      continues: the step of `previous` (recorded in each layout that used it).
      seed: the random seed of the non-linear layout.

    Returns:
      The PCA coordinates (N×3) and the layouts (the PCA first), each with a note when one was left out.
    """
    if method is not None and method not in METHODS:
        raise ValueError(f"Unknown layout method {method!r}; expected one of {', '.join(METHODS)} (or None).")
    previous = previous or {}
    x = np.asarray(x, dtype=np.float32)
    x = x.reshape(len(x), int(np.prod(x.shape[1:])))
    finite = np.isfinite(x).all(axis=1)
    note = _pca_only_reason(x, finite)
    start = _matching(previous.get("pca"), len(x), PCA_DIMS)
    pca_coordinates = aligned_pca(x, finite, start)
    pca_state = LayoutState("pca", pca_coordinates, None if start is None else continues, note if method else None)
    if method is None or note is not None:
        return pca_coordinates, [pca_state]
    start = _matching(previous.get(method), len(x), NONLINEAR_DIMS)
    try:
        raw = _NONLINEAR[method](x, start, seed)
    except Exception as e:  # a library's failure on odd data must not cost the PCA: say it, keep going
        failed = f"{method.upper() if method == 'umap' else 't-SNE'} failed ({type(e).__name__}: {e}); PCA only"
        return pca_coordinates, [dataclasses.replace(pca_state, note=failed)]
    layout = LayoutState(method, align(raw, start), None if start is None else continues)
    return pca_coordinates, [pca_state, layout]


def aligned_pca(x: np.ndarray, finite: np.ndarray | None = None, previous: np.ndarray | None = None) -> np.ndarray:
    """The rows' top-3 principal components (signs fixed), aligned to `previous` (see the module doc); rows not
    in `finite` at the centre. Fewer than 3 components (D < 3, rank < 3): the rest are zeros."""
    finite = np.isfinite(x).all(axis=1) if finite is None else finite
    coordinates = np.zeros((len(x), PCA_DIMS), np.float32)
    rows = x[finite]
    if len(rows) >= 2 and np.ptp(rows, axis=0).max() > 0:
        centred = rows - rows.mean(axis=0, dtype=np.float64).astype(np.float32)
        reduced = pca(centred, PCA_DIMS).coordinates
        coordinates[finite, : reduced.shape[1]] = reduced
    return align(coordinates, previous)


def align(coordinates: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """`coordinates` centred, scaled to RMS radius `RADIUS`, then rotated/reflected onto `previous` (orthogonal
    Procrustes) or, without one, onto their own principal axes with fixed signs. float32."""
    c = np.asarray(coordinates, dtype=np.float64)
    if len(c) == 0:
        return c.astype(np.float32)
    c = c - c.mean(axis=0)
    radius = np.sqrt((c**2).sum(axis=1).mean())
    if radius == 0 or not np.isfinite(radius):
        return np.zeros(c.shape, np.float32)
    c *= RADIUS / radius
    if previous is not None:
        target = np.asarray(previous, dtype=np.float64)
        target = target - target.mean(axis=0)
        u, _, vt = np.linalg.svd(c.T @ target)
        return (c @ (u @ vt)).astype(np.float32)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    turned = c @ vt.T
    # Signs fixed: the side holding the point farthest along an axis is positive.
    signs = np.sign(turned[np.abs(turned).argmax(axis=0), np.arange(turned.shape[1])])
    return (turned * np.where(signs == 0, 1.0, signs)).astype(np.float32)


def disparity(a: np.ndarray, b: np.ndarray, *, rotate: bool = False) -> float:
    """Procrustes disparity of two layouts of the same rows: the squared distance between them after centring
    and scaling each to unit norm (as `scipy.spatial.procrustes` does), with `rotate` after the best rotation or
    reflection of `a` too. Aligned consecutive layouts have equal raw and rotated disparities."""
    a = np.asarray(a, np.float64) - np.mean(a, axis=0)
    b = np.asarray(b, np.float64) - np.mean(b, axis=0)
    a /= np.linalg.norm(a) or 1.0
    b /= np.linalg.norm(b) or 1.0
    if rotate:
        u, _, vt = np.linalg.svd(a.T @ b)
        a = a @ (u @ vt)
    return float(((a - b) ** 2).sum())


def _pca_only_reason(x: np.ndarray, finite: np.ndarray) -> str | None:
    """Why the rows get no UMAP/t-SNE (a note for the bookmark), or None."""
    if len(x) < MIN_ROWS:
        return f"PCA only: {len(x)} rows, fewer than {MIN_ROWS}"
    if not finite.all():
        return f"PCA only: {int((~finite).sum()):,} rows hold NaN or infinite values (drawn at the centre)"
    if x.shape[1] == 0 or np.ptp(x, axis=0).max() == 0:
        return "PCA only: every row is the same"
    return None


def _matching(layout: np.ndarray | None, rows: int, dims: int) -> np.ndarray | None:
    if layout is None:
        return None
    layout = np.asarray(layout, dtype=np.float32)
    return layout if layout.shape == (rows, dims) and np.isfinite(layout).all() else None


def nearest_neighbours(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` nearest rows of every row (itself first) and their Euclidean distances, exact, a block at a time."""
    sq_norms = np.einsum("ij,ij->i", x, x)
    indices, distances = np.empty((len(x), k), np.int64), np.empty((len(x), k), np.float32)
    for start in range(0, len(x), _BLOCK_ROWS):
        rows = slice(start, start + _BLOCK_ROWS)
        squared = sq_norms[rows, None] + sq_norms[None, :] - 2 * (x[rows] @ x.T)
        nearest = np.argpartition(squared, k - 1, axis=1)[:, :k]
        nearest_sq = np.take_along_axis(squared, nearest, axis=1)
        order = np.argsort(nearest_sq, axis=1, kind="stable")
        indices[rows] = np.take_along_axis(nearest, order, axis=1)
        distances[rows] = np.sqrt(np.maximum(np.take_along_axis(nearest_sq, order, axis=1), 0))
    return indices, distances


def _umap(x: np.ndarray, start: np.ndarray | None, seed: int) -> np.ndarray:
    import umap

    k = min(UMAP_NEIGHBORS, len(x) - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by setting random_state" (the seed makes it serial)
        model = umap.UMAP(
            n_components=NONLINEAR_DIMS, n_neighbors=k, min_dist=UMAP_MIN_DIST,
            random_state=seed, init="spectral" if start is None else start,
            n_epochs=None if start is None else CONTINUE_UMAP_EPOCHS,
            precomputed_knn=(*nearest_neighbours(x, k), None) if len(x) <= EXACT_NEIGHBOURS_MAX_ROWS else
            (None, None, None),
        )
        return np.asarray(model.fit_transform(x), dtype=np.float32)


def _tsne(x: np.ndarray, start: np.ndarray | None, seed: int) -> np.ndarray:
    import openTSNE

    perplexity = min(TSNE_PERPLEXITY, (len(x) - 1) / 3)
    if start is None:
        tsne = openTSNE.TSNE(n_components=NONLINEAR_DIMS, perplexity=perplexity, random_state=seed, n_jobs=-1)
        return np.asarray(tsne.fit(x), dtype=np.float32)
    affinities = openTSNE.affinity.PerplexityBasedNN(x, perplexity=perplexity, random_state=seed, n_jobs=-1)
    embedding = openTSNE.TSNEEmbedding(start.astype(np.float64), affinities, random_state=seed, n_jobs=-1)
    return np.asarray(embedding.optimize(CONTINUE_TSNE_ITERATIONS, momentum=0.8), dtype=np.float32)


_NONLINEAR = {"umap": _umap, "tsne": _tsne}
