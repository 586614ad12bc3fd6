"""A scikit-learn estimator over Stochastic Quantization (needs ``scikit-learn``).

:class:`StochasticQuantization` clusters vectors of any dimension and scale the way
:class:`sklearn.cluster.KMeans` does (``fit``, ``predict``, ``transform``,
``fit_predict``, ``cluster_centers_``, ``labels_``, ``inertia_``, ``n_iter_``,
``sample_weight``, ``random_state``), with SQ's solver underneath: k-means++ seeding,
stochastic generalised-gradient steps on sampled rows (each ``O(batch · K · d)``
whatever the number of rows) and a Lloyd polish. It passes scikit-learn's
``check_estimator`` (``tests/test_sklearn.py``).

Data of any scale: ``X`` is mapped into ``[0, 1]^d`` by one affine map, the per-feature
minimum subtracted and everything divided by the largest per-feature range (one scalar:
distances and the objective are preserved up to a constant factor), fitted there, and
the centres are mapped back. ``inertia_`` and ``transform`` are in ``X``'s own units.

Compared with ``KMeans``: the fit is stochastic (``random_state`` fixes it) and there is
no ``n_init``; ``n_iter_`` counts SQ steps. The first fit of each (row-count bucket,
``n_clusters``, dimension) compiles a program (a few seconds);
:func:`jaxquant.enable_compilation_cache` keeps it for the next process. Timings and
inertia against KMeans, MiniBatchKMeans and faiss: ``docs/sklearn.md``.

Examples:
  >>> import numpy as np
  >>> from jaxquant.sklearn import StochasticQuantization
  >>> rng = np.random.default_rng(0)
  >>> X = np.concatenate([rng.normal(0, 1, (100, 5)), rng.normal(50, 1, (100, 5))])
  >>> sq = StochasticQuantization(n_clusters=2, random_state=0).fit(X)
  >>> sorted(int(round(v)) for v in sq.cluster_centers_[:, 0])
  [0, 50]
  >>> bool((sq.labels_ == sq.predict(X)).all()), sq.cluster_centers_.dtype
  (True, dtype('float64'))
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    from sklearn.base import (
        BaseEstimator,
        ClassNamePrefixFeaturesOutMixin,
        ClusterMixin,
        TransformerMixin,
    )
    from sklearn.metrics.pairwise import euclidean_distances
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as e:  # not installed, or older than 1.6 (validate_data)
    raise ImportError(
        f"jaxquant.sklearn needs scikit-learn >= 1.6: pip install 'jaxquant[sklearn]' ({e})"
    ) from e

__all__ = ["StochasticQuantization"]


class StochasticQuantization(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator
):
    """K-means clustering by Stochastic Quantization (a scikit-learn estimator).

    Parameters:
      n_clusters: the number of clusters (centres).
      init: ``"k-means++"`` (greedy k-means++ on a sample of rows, the default),
        ``"random"`` (rows drawn by weight), or an ``(n_clusters, n_features)`` array of
        starting centres.
      num_steps, batch_size, learning_rate, optimizer, num_lloyd_steps, tol: the SQ
        solver's options (:class:`jaxquant.SQ`); ``None`` takes jaxquant's defaults for
        ``n_clusters`` (e.g. 750 steps of ``16 · n_clusters`` rows in 512..2048).
      random_state: an int, a ``numpy.random.RandomState`` or ``None`` (scikit-learn's
        convention): the seed of the fit's PRNG key.

    Attributes:
      cluster_centers_: ``(n_clusters, n_features)`` centres, float32 for float32 input
        and float64 otherwise.
      labels_: ``(n_samples,)`` index of each training row's nearest centre.
      inertia_: sum over training rows of ``sample_weight · ‖x − centre‖²``.
      n_iter_: SQ steps taken.
      n_features_in_, feature_names_in_: as for every scikit-learn estimator.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        num_steps: int | None = None,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        optimizer: Any = None,
        num_lloyd_steps: int | None = None,
        tol: float = 0.0,
        random_state: Any = None,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.num_steps = num_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.num_lloyd_steps = num_lloyd_steps
        self.tol = tol
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # -- fitting ----------------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        """Fit the centres to ``X`` (``(n_samples, n_features)``); ``y`` is ignored."""
        import jax

        import jaxquant
        from jaxquant._checks import seed_key
        from jaxquant.problem import ColourSet

        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=1)
        k = self.n_clusters
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"n_clusters must be an integer >= 1, got {k!r}")
        n = X.shape[0]
        if n < k:
            raise ValueError(f"n_samples={n} should be >= n_clusters={k}.")
        weights = _sample_weight(sample_weight, X)
        if not np.any(weights > 0):
            raise ValueError("sample_weight must not all be zero")
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

        self._offset = X.min(axis=0).astype(np.float64)
        span = float((X.max(axis=0) - self._offset).max())
        self._scale = span if span > 0 and np.isfinite(span) else 1.0
        scaled = self._to_unit(X)
        options: dict[str, Any] = {"init": self._initializer(X)}
        for name in ("num_steps", "batch_size", "learning_rate", "optimizer", "num_lloyd_steps"):
            if getattr(self, name) is not None:
                options[name] = getattr(self, name)
        if self.tol:
            options["tol"] = self.tol
        problem = ColourSet.from_vectors(scaled, weights.astype(np.float32))
        fit = jaxquant.fit_palette(seed_key(seed), problem, int(k), **options)
        if int(fit.status) != jaxquant.Status.OK:
            raise FloatingPointError("the fit diverged (non-finite centres); lower learning_rate")
        unit = np.asarray(jax.device_get(fit.palette), np.float64)
        self.cluster_centers_ = self._from_unit(unit).astype(X.dtype)
        self.n_iter_ = int(fit.num_steps)
        self.labels_ = self._labels(scaled, unit)
        self.inertia_ = self._inertia(X, self.labels_, weights)
        return self

    def _to_unit(self, X) -> np.ndarray:
        """``X`` in the fit's unit box (float32; training rows land in ``[0, 1]``)."""
        unit = (np.asarray(X, np.float64) - self._offset) / self._scale
        return np.clip(unit, 0.0, 1.0).astype(np.float32) if unit.size else unit

    def _from_unit(self, unit) -> np.ndarray:
        return np.asarray(unit, np.float64) * self._scale + self._offset

    def _initializer(self, X):
        if isinstance(self.init, str):
            names = {"k-means++": "kmeans++", "random": "random"}
            if self.init not in names:
                raise ValueError(
                    f"init must be 'k-means++', 'random' or an array of shape "
                    f"(n_clusters, n_features), got {self.init!r}"
                )
            return names[self.init]
        centres = np.asarray(self.init, np.float64)
        if centres.shape != (self.n_clusters, X.shape[1]):
            raise ValueError(
                f"init has shape {centres.shape}, expected ({self.n_clusters}, {X.shape[1]})"
            )
        if not np.all(np.isfinite(centres)):
            raise ValueError("init has NaN or infinite values")
        start = np.clip((centres - self._offset) / self._scale, 0.0, 1.0).astype(np.float32)

        def given(key, pixels, k, weights=None, *, fixed=None):
            return start.astype(pixels.dtype)

        return given

    # -- using the centres -------------------------------------------------------------

    def _labels(self, unit: np.ndarray, centres_unit: np.ndarray) -> np.ndarray:
        from jaxquant.problem import bucket_size

        n = len(unit)
        rows = np.zeros((bucket_size(n), unit.shape[1]), np.float32)  # shared programs
        rows[:n] = unit
        idx, _ = _assign(rows, centres_unit.astype(np.float32))
        return np.asarray(idx)[:n].astype(np.int32)

    def _inertia(self, X, labels, weights) -> float:
        diff = np.asarray(X, np.float64) - self.cluster_centers_.astype(np.float64)[labels]
        return float(np.sum(weights * np.einsum("ij,ij->i", diff, diff)))

    def _check_test_data(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    def predict(self, X):
        """The index of each row's nearest centre."""
        X = self._check_test_data(X)
        return self._labels(self._to_unit_unclipped(X), self._centres_unit())

    def _to_unit_unclipped(self, X) -> np.ndarray:
        return ((np.asarray(X, np.float64) - self._offset) / self._scale).astype(np.float32)

    def _centres_unit(self) -> np.ndarray:
        return (self.cluster_centers_.astype(np.float64) - self._offset) / self._scale

    def fit_predict(self, X, y=None, sample_weight=None):
        """``fit(X)`` then ``labels_``."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X):
        """Euclidean distances from each row to each centre, ``(n_samples, n_clusters)``."""
        X = self._check_test_data(X)
        return euclidean_distances(X, self.cluster_centers_)

    def fit_transform(self, X, y=None, sample_weight=None):
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X, y=None, sample_weight=None):
        """Minus the inertia of ``X`` (as ``KMeans.score``: higher is better)."""
        X = self._check_test_data(X)
        weights = _sample_weight(sample_weight, X)
        return -self._inertia(X, self.predict(X), weights)


def _sample_weight(sample_weight, X) -> np.ndarray:
    """``sample_weight`` as ``(n_samples,)`` finite non-negative floats (default ones)."""
    n = X.shape[0]
    if sample_weight is None:
        return np.ones(n, X.dtype)
    w = np.asarray(sample_weight, dtype=X.dtype)
    if w.ndim == 0:
        return np.full(n, w, X.dtype)
    if w.shape != (n,):
        raise ValueError(f"sample_weight.shape == {w.shape}, expected ({n},)!")
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight has NaN or infinite values")
    if np.any(w < 0):
        raise ValueError("sample_weight must be non-negative")
    return w


def _assign(rows, centres):
    """Nearest centre of every row (one compiled program per shape)."""
    import jax

    from jaxquant import kernels

    global _ASSIGN_JIT
    if _ASSIGN_JIT is None:
        _ASSIGN_JIT = jax.jit(kernels.assign)
    return _ASSIGN_JIT(rows, centres)


_ASSIGN_JIT: Any = None
