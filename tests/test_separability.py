"""Leave-one-out k-NN separability against a brute-force reference on tiny data."""

import numpy as np
import pytest

from projector_export.separability import knn_separability


def _brute_force(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """Row by row: sort all other points by distance, majority of the k nearest, ties to the nearest's class."""
    x = x.reshape(len(x), -1).astype(np.float64)
    hits = 0
    for i in range(len(x)):
        dist = np.linalg.norm(x - x[i], axis=1)
        dist[i] = np.inf
        nearest = np.argsort(dist, kind="stable")[:k]
        counts = {c: int(np.sum(y[nearest] == c)) for c in set(y[nearest].tolist())}
        best = max(counts.values())
        winner = next(y[j] for j in nearest if counts[y[j]] == best)
        hits += winner == y[i]
    return hits / len(x)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_matches_brute_force_across_blocks(k):
    rng = np.random.default_rng(k)
    y = rng.integers(0, 4, 90)
    x = rng.standard_normal((90, 6)) + 1.5 * np.eye(6)[y]
    expected = _brute_force(x, y, k)
    assert 0.3 < expected < 1.0  # neither trivial nor hopeless, so the comparison means something
    assert knn_separability(x, y, k=k, block_rows=7) == pytest.approx(expected)


def test_conv_shaped_input_is_flattened():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 40)
    x = rng.standard_normal((40, 2, 2, 3)) + np.eye(12)[y * 4].reshape(40, 2, 2, 3)
    assert knn_separability(x, y, k=3) == pytest.approx(_brute_force(x, y, 3))


def test_leaves_each_point_out():
    # Every point's nearest other point has the other label: 0 when left out (it would be 1.0 if it were not).
    x = np.array([[0.0], [0.1], [10.0], [10.1]])
    assert knn_separability(x, np.array([0, 1, 0, 1]), k=1) == 0.0
    assert knn_separability(x, np.array([0, 0, 1, 1]), k=1) == 1.0


def test_tie_goes_to_nearest_neighbour():
    # Point 0 (class 0): nearest is class 1 at 1.0, next is class 0 at 2.0 -> a 1:1 tie for k=2, won by class 1.
    x = np.array([[0.0], [1.0], [-2.0], [50.0], [51.0]])
    y = np.array([0, 1, 0, 1, 1])
    assert knn_separability(x, y, k=2) == pytest.approx(_brute_force(x, y, 2))
    assert knn_separability(x, y, k=2) == pytest.approx(3 / 5)  # points 0 and 1 are wrong


def test_random_projection_keeps_the_answer_close():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, 600)
    x = rng.standard_normal((600, 2000)).astype(np.float32) * 0.2 + np.repeat(np.eye(10)[y], 200, axis=1)
    exact = knn_separability(x, y, projection_dim=None)
    assert abs(knn_separability(x, y, projection_dim=128) - exact) < 0.05


def test_deeper_features_score_higher():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 10, 500)
    noisy = rng.standard_normal((500, 20)) + 0.3 * np.eye(20)[y]
    clean = rng.standard_normal((500, 20)) + 5.0 * np.eye(20)[y]
    assert knn_separability(clean, y) > knn_separability(noisy, y) + 0.3


@pytest.mark.parametrize(
    ("features", "labels", "kwargs", "error", "match"),
    [
        (np.zeros(5), np.zeros(5, int), {}, ValueError, "N x D"),
        (np.zeros((5, 2)), np.zeros(4, int), {}, ValueError, "one entry per row"),
        (np.zeros((5, 2)), np.zeros(5), {}, TypeError, "integer class ids"),
        (np.zeros((5, 2)), np.zeros(5, int), {"k": 5}, ValueError, "k=5"),
        (np.zeros((5, 2)), np.zeros(5, int), {"k": 0}, ValueError, "k=0"),
    ],
)
def test_bad_input_is_refused(features, labels, kwargs, error, match):
    with pytest.raises(error, match=match):
        knn_separability(features, labels, **kwargs)
