"""jaxquant.sklearn: scikit-learn's own estimator checks, and KMeans as a reference."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.cluster import KMeans  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from jaxquant.sklearn import StochasticQuantization  # noqa: E402

# The one check scikit-learn also expects KMeans and MiniBatchKMeans to fail (its
# instance_generator.py: "sample_weight is not equivalent to removing/repeating samples",
# a statistical test is its TODO): a sampled fit draws other rows when rows repeat.
# test_integer_weights_act_like_repeated_rows below is that statistical test.
EXPECTED = {
    "check_sample_weight_equivalence_on_dense_data": (
        "sample_weight is not equivalent to removing/repeating samples (as for KMeans)"
    ),
}


@parametrize_with_checks(
    [StochasticQuantization(n_clusters=3, num_steps=50, random_state=0)],
    expected_failed_checks=lambda estimator: EXPECTED,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(600, n_features=10, centers=5, cluster_std=1.0, random_state=0)
    return x * 100.0 + 1000.0, y


def _match(a, b):
    """Max distance from each row of a to its nearest row of b."""
    d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return float(np.sqrt(d.min(1)).max())


def test_separated_blobs_match_kmeans(blobs):
    x, _ = blobs
    sq = StochasticQuantization(5, random_state=0).fit(x)
    km = KMeans(5, n_init=1, random_state=0).fit(x)
    assert _match(sq.cluster_centers_, km.cluster_centers_) < 0.05 * 100
    assert sq.inertia_ <= km.inertia_ * 1.01
    assert sq.n_iter_ == 500  # jaxquant's default for up to 32 centres


def test_attributes_against_numpy(blobs):
    x, _ = blobs
    sq = StochasticQuantization(5, num_steps=200, random_state=1).fit(x)
    d2 = ((x[:, None, :] - sq.cluster_centers_[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(sq.labels_, d2.argmin(1))
    np.testing.assert_array_equal(sq.labels_, sq.predict(x))
    np.testing.assert_allclose(sq.inertia_, d2.min(1).sum(), rtol=1e-9)
    np.testing.assert_allclose(sq.transform(x), np.sqrt(d2), rtol=1e-7)
    np.testing.assert_allclose(sq.score(x), -sq.inertia_, rtol=1e-9)
    assert sq.cluster_centers_.dtype == np.float64
    again = pickle.loads(pickle.dumps(sq))
    np.testing.assert_array_equal(again.predict(x), sq.labels_)


def test_same_random_state_same_result_and_float32(blobs):
    x, _ = blobs
    a = StochasticQuantization(4, num_steps=100, random_state=3).fit(x)
    b = StochasticQuantization(4, num_steps=100, random_state=3).fit(x)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    f = StochasticQuantization(4, num_steps=100, random_state=3).fit(x.astype(np.float32))
    assert f.cluster_centers_.dtype == np.float32


@pytest.mark.parametrize("scale", [1e-6, 1e6])
def test_scale_invariance(blobs, scale):
    x, _ = blobs
    base = StochasticQuantization(5, num_steps=200, random_state=0).fit(x)
    scaled = StochasticQuantization(5, num_steps=200, random_state=0).fit(x * scale)
    np.testing.assert_allclose(scaled.cluster_centers_, base.cluster_centers_ * scale, rtol=1e-4)
    np.testing.assert_array_equal(scaled.labels_, base.labels_)


def test_integer_weights_act_like_repeated_rows(blobs):
    x, _ = blobs
    counts = np.random.default_rng(0).integers(1, 4, len(x))
    weighted = StochasticQuantization(5, random_state=0).fit(x, sample_weight=counts)
    repeated = StochasticQuantization(5, random_state=0).fit(np.repeat(x, counts, axis=0))
    assert _match(weighted.cluster_centers_, repeated.cluster_centers_) < 0.05 * 100
    np.testing.assert_allclose(
        weighted.inertia_, repeated.inertia_, rtol=0.02
    )  # the same objective, sampled differently


def test_given_starting_centres(blobs):
    x, y = blobs
    start = np.stack([x[y == j].mean(0) for j in range(5)])
    sq = StochasticQuantization(5, init=start, num_steps=20, random_state=0).fit(x)
    assert _match(sq.cluster_centers_, start) < 0.05 * 100
    with pytest.raises(ValueError, match=r"init has shape \(4, 10\), expected \(5, 10\)"):
        StochasticQuantization(5, init=start[:4]).fit(x)


def test_clear_errors():
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_clusters=4"):
        StochasticQuantization(4).fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        StochasticQuantization(2).fit(np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        StochasticQuantization(2).fit(np.eye(3), sample_weight=[1, -1, 1])
    with pytest.raises(ValueError, match="init must be"):
        StochasticQuantization(2, init="kmeans").fit(np.eye(3))
