"""PCA of wide tensors: the randomized path finds the principal subspace; the ratio it reports is exact."""

from __future__ import annotations

import numpy as np
import pytest

from projector_export.reduction import pca


def low_rank(n, d, rank, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.geomspace(10, 1, rank)
    return ((rng.standard_normal((n, rank)) * scales) @ np.linalg.qr(rng.standard_normal((d, rank)))[0].T
            + 5.0).astype(np.float32)


def exact(x, k):
    centered = x.astype(np.float64) - x.mean(axis=0)
    u, s, vt = np.linalg.svd(centered, full_matrices=False)
    return u[:, :k] * s[:k], float(np.sum(s[:k] ** 2) / np.sum(s**2))


def test_randomized_path_recovers_a_low_rank_tensor_exactly():
    x = low_rank(3000, 400, rank=20)
    result = pca(x, 30)
    assert result.method == "randomized"
    assert result.coordinates.shape == (3000, 30) and result.coordinates.dtype == np.float32
    expected, _ = exact(x, 20)
    # The top components match up to sign; the ones beyond the rank are ~0.
    np.testing.assert_allclose(np.abs(result.coordinates[:, :20]), np.abs(expected), atol=2e-3 * np.abs(expected).max())
    assert np.abs(result.coordinates[:, 20:]).max() < 1e-3 * np.abs(expected).max()
    assert result.explained_variance_ratio == pytest.approx(1.0, abs=1e-5)


def test_reported_ratio_is_the_variance_of_what_is_written():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2000, 500)) * np.geomspace(5, 0.1, 500)).astype(np.float32)
    result = pca(x, 50)
    centered = x.astype(np.float64) - x.mean(axis=0)
    written_share = np.sum(result.coordinates.astype(np.float64) ** 2) / np.sum(centered**2)
    assert result.explained_variance_ratio == pytest.approx(written_share, rel=1e-5)
    _, best = exact(x, 50)
    # A slowly decaying spectrum is the randomized sketch's worst case; it keeps most of the best share.
    assert best * 0.8 <= result.explained_variance_ratio <= best + 1e-6


def test_output_is_deterministic():
    x = low_rank(1500, 300, rank=40, seed=2)
    np.testing.assert_array_equal(pca(x, 32).coordinates, pca(x, 32).coordinates)


def test_small_inputs_use_the_exact_svd():
    x = low_rank(30, 300, rank=10)
    result = pca(x, 8)
    assert result.method == "exact"
    expected, ratio = exact(x, 8)
    np.testing.assert_allclose(np.abs(result.coordinates), np.abs(expected), rtol=1e-4, atol=1e-4)
    assert result.explained_variance_ratio == pytest.approx(ratio, rel=1e-6)


@pytest.mark.parametrize("n", [500, 40])  # the randomized path and the exact one
def test_a_constant_tensor_has_zero_coordinates(n):
    result = pca(np.ones((n, 300), dtype=np.float32), 128)
    assert result.coordinates.shape == (n, min(n, 128)) and result.coordinates.dtype == np.float32
    np.testing.assert_array_equal(result.coordinates, 0.0)
    assert result.explained_variance_ratio == 1.0  # all of no variance is kept


def test_a_rank_one_wide_tensor_has_one_nonzero_coordinate():
    u = np.arange(500, dtype=np.float64)
    v = np.zeros(300)
    v[[3, 7]] = [0.6, 0.8]  # a unit vector
    x = (np.outer(u, v) + 2.0).astype(np.float32)
    result = pca(x, 128)
    assert result.method == "randomized" and result.coordinates.shape == (500, 128)
    # The one component is v (largest loading positive), so the coordinate is u minus its mean.
    np.testing.assert_allclose(result.coordinates[:, 0], u - u.mean(), atol=1e-3)
    np.testing.assert_allclose(result.coordinates[:, 1:], 0.0, atol=1e-3)
    assert result.explained_variance_ratio == pytest.approx(1.0, abs=1e-6)
def test_output_does_not_depend_on_the_blas_threads(monkeypatch):
    """The big products run on every core and the rest on one: the same coordinates as on one thread, up to the
    rounding of float32 sums split differently between threads."""
    from projector_export import reduction

    x = low_rank(3000, 600, rank=40, seed=3) + np.random.default_rng(4).standard_normal((3000, 600)).astype(np.float32)
    monkeypatch.setattr(reduction, "_BLAS_THREADS", 1)
    one = pca(x, 32)
    monkeypatch.setattr(reduction, "_BLAS_THREADS", 2)
    two = pca(x, 32)
    assert one.method == two.method == "randomized"
    scale = float(np.abs(one.coordinates).max())
    np.testing.assert_allclose(two.coordinates, one.coordinates, rtol=0, atol=1e-5 * scale)
    assert two.explained_variance_ratio == pytest.approx(one.explained_variance_ratio, abs=1e-6)


def test_a_warm_start_from_similar_rows_keeps_the_variance_of_a_fresh_sketch():
    """One power iteration from the directions of similar rows (a layer a little further into training) keeps at
    least what the fresh sketch's two keep; a start of another shape is ignored (a fresh sketch)."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((3000, 600)) * np.geomspace(5, 0.05, 600)).astype(np.float32)
    later = x + (0.05 * rng.standard_normal(x.shape)).astype(np.float32)
    first = _streamed(x, 32)
    warm = _streamed(later, 32, start=first.basis)
    fresh = pca(later, 32)
    assert warm.result().explained_variance_ratio >= fresh.explained_variance_ratio - 1e-4
    other = _streamed(later, 32, start=first.basis[:, :10])
    np.testing.assert_array_equal(other.result().coordinates, _streamed(later, 32).result().coordinates)


def _streamed(x, k, start=None, batch=700):
    """`StreamingPCA` of `x` handed over in batches: the sample (once or twice), then every row."""
    from projector_export.reduction import StreamingPCA

    stream = StreamingPCA(len(x), x.shape[1], k, start=start)
    while stream.sketching:
        rows = stream.pass_rows
        for i in range(0, len(rows), batch):
            stream.add_sample(x[rows[i:i + batch]])
    for i in range(0, len(x), batch):
        stream.add(slice(i, i + batch), x[i:i + batch])
    return stream


def test_streamed_in_batches_is_pca_of_the_whole_array():
    x = low_rank(3000, 700, rank=60, seed=6) + np.random.default_rng(7).standard_normal((3000, 700)).astype(np.float32)
    whole, streamed = pca(x, 40), _streamed(x, 40).result()
    scale = float(np.abs(whole.coordinates).max())
    np.testing.assert_allclose(streamed.coordinates, whole.coordinates, rtol=0, atol=1e-4 * scale)
    assert streamed.explained_variance_ratio == pytest.approx(whole.explained_variance_ratio, abs=1e-6)
    assert streamed.input_dim == 700


def test_streaming_refuses_rows_before_the_sample():
    from projector_export.reduction import StreamingPCA

    stream = StreamingPCA(3000, 700, 40)
    with pytest.raises(ValueError, match="sample rows first"):
        stream.add(slice(0, 10), np.zeros((10, 700), np.float32))
