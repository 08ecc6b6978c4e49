"""Layouts of one tensor: aligned from step to step, as good as the layer's own separability, deterministic, and a
PCA with a note (never a traceback) for rows a non-linear layout cannot take."""

from __future__ import annotations

import numpy as np
import pytest

from projector_export import knn_separability
from projector_export.layouts import RADIUS, align, compute_layouts, disparity


def blobs(step: int, n: int = 300, d: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of 10 classes whose centres move apart as `step` grows (a layer learning), the same rows at every step."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    centres = rng.normal(size=(10, d))
    noise = np.random.default_rng(seed + 1).normal(size=(n, d))
    spin = np.linalg.qr(np.random.default_rng(seed + 2 + step).normal(size=(d, d)))[0]  # a new basis every step
    return ((0.6 + 0.4 * step) * centres[labels] + noise) @ spin, labels


@pytest.fixture(scope="module")
def three_steps():
    """The layouts of three consecutive steps, each continuing the one before."""
    out, previous = [], None
    for step in range(3):
        x, labels = blobs(step)
        pca, layouts = compute_layouts(x, previous, continues=step - 1 if step else None)
        out.append((x, labels, pca, layouts))
        previous = {item.layout: item.coordinates for item in layouts}
    return out


def test_consecutive_steps_need_no_rotation_or_reflection(three_steps):
    for (_, _, _, before), (_, _, _, after) in zip(three_steps, three_steps[1:], strict=False):
        for old, new in zip(before, after, strict=True):
            raw = disparity(new.coordinates, old.coordinates)
            best = disparity(new.coordinates, old.coordinates, rotate=True)
            assert raw <= 1.25 * best + 1e-9, (new.layout, raw, best)
    # Each step's rows come in a basis of their own: without the alignment their PCA would need a rotation.
    _, unaligned = compute_layouts(three_steps[1][0], None, method=None)
    first = three_steps[0][3][0].coordinates
    assert disparity(unaligned[0].coordinates, first) > 1.25 * disparity(unaligned[0].coordinates, first, rotate=True)


def test_the_last_layout_separates_the_classes_nearly_as_well_as_the_layer(three_steps):
    x, labels, _, layouts = three_steps[-1]
    assert [item.layout for item in layouts] == ["pca", "umap"]
    assert [item.continues for item in layouts] == [1, 1]
    layer = knn_separability(x, labels)
    layout = knn_separability(layouts[1].coordinates, labels, k=10)
    assert layout >= 0.9 * layer, (layout, layer)


def test_layouts_are_centred_at_a_fixed_scale_and_the_same_for_the_same_rows(three_steps):
    x, _, pca, layouts = three_steps[0]
    for item in layouts:
        c = item.coordinates
        assert c.dtype == np.float32 and np.allclose(c.mean(axis=0), 0, atol=1e-3)
        assert np.sqrt((c.astype(np.float64) ** 2).sum(axis=1).mean()) == pytest.approx(RADIUS, rel=1e-4)
    again_pca, again = compute_layouts(x)
    np.testing.assert_array_equal(again_pca, pca)
    for a, b in zip(again, layouts, strict=True):
        np.testing.assert_array_equal(a.coordinates, b.coordinates)


@pytest.mark.parametrize("rows, note", [
    (np.arange(12.0).reshape(6, 2), "PCA only: 6 rows, fewer than 10"),
    (np.ones((40, 5)), "PCA only: every row is the same"),
    (np.where(np.arange(200).reshape(40, 5) == 7, np.nan, np.arange(200.0).reshape(40, 5) ** 1.5),
     "PCA only: 1 rows hold NaN or infinite values (drawn at the centre)"),
    (np.zeros((0, 4)), "PCA only: 0 rows, fewer than 10"),
])
def test_rows_a_non_linear_layout_cannot_take_get_a_pca_and_a_note(rows, note):
    pca, layouts = compute_layouts(rows)
    assert [(item.layout, item.note) for item in layouts] == [("pca", note)]
    assert pca.shape == (len(rows), 3) and np.isfinite(pca).all()


def test_a_failing_library_costs_only_its_own_layout(monkeypatch):
    from projector_export import layouts as layouts_module

    def broken(x, start, seed):
        raise RuntimeError("no convergence")

    monkeypatch.setitem(layouts_module._NONLINEAR, "umap", broken)
    _, layouts = compute_layouts(blobs(0)[0])
    assert [(item.layout, item.note) for item in layouts] == [
        ("pca", "UMAP failed (RuntimeError: no convergence); PCA only")]


def test_align_turns_a_rotated_reflected_copy_back():
    rng = np.random.default_rng(3)
    target = align(rng.normal(size=(50, 2)), None)
    turn = np.array([[0.0, 1.0], [1.0, 0.0]]) @ np.array([[0.6, -0.8], [0.8, 0.6]])  # reflection, then rotation
    np.testing.assert_allclose(align(3 * target @ turn + 5, target), target, atol=1e-4)
