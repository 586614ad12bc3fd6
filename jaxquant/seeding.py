"""Where the palette starts: initializers that pick ``k`` starting colours.

An initializer follows the :class:`Initializer` protocol,
``init(key, pixels, k, weights=None) -> palette``. Built-ins are available by name
(:data:`INITIALIZERS`): ``"kmeans++"`` (greedy k-means++, the default), ``"kmeans++-d1"``
(the SQ reference code's variant: D¹ sampling, one trial) and ``"random"``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Protocol

import jax
import jax.numpy as jnp

from jaxquant import _checks
from jaxquant._ops import safe_pow
from jaxquant._sampling import sample_index
from jaxquant.losses import squared_distances

__all__ = [
    "INITIALIZERS",
    "Initializer",
    "get_initializer",
    "kmeans_plusplus",
    "make_kmeans_plusplus",
    "random_init",
    "seed_around",
]


class Initializer(Protocol):
    """Chooses a starting palette.

    Called as ``init(key, pixels, k, weights)`` with a PRNG ``key``, ``pixels`` of shape
    ``(n, c)``, a static Python ``int`` ``k`` and optional non-negative ``weights`` of
    shape ``(n,)`` (pixels of weight 0 are padding and must never be chosen, unless every
    weight is 0). Returns a ``(k, c)`` palette of the pixels' dtype. It must be
    traceable (it runs inside ``jit``) and work when ``k`` exceeds the number of distinct
    colours, repeating colours rather than failing.
    """

    def __call__(
        self, key: jax.Array, pixels: jax.Array, k: int, weights: jax.Array | None = None
    ) -> jax.Array: ...


def seed_around(
    key: jax.Array,
    pixels: jax.Array,
    k: int,
    weights: jax.Array | None = None,
    *,
    init: Initializer,
    fixed: jax.Array,
) -> jax.Array:
    """A ``(k, c)`` starting palette whose first rows are the ``fixed`` colours.

    An initializer that takes a ``fixed=`` keyword (the k-means++ ones) seeds the other
    entries around the fixed colours; any other seeds ``k - m`` entries on its own, and
    the fixed colours are put in front of them.

    Args:
      key: a PRNG key.
      pixels: ``(n, c)`` coordinates to seed from.
      k: palette size.
      weights: optional ``(n,)`` weights.
      init: the :class:`Initializer`.
      fixed: ``(m, c)`` coordinates of the fixed colours (``m`` may be 0).

    Returns:
      ``(k, c)`` palette, ``fixed`` first (just ``fixed[:k]`` if ``m >= k``).
    """
    m = fixed.shape[0]
    if m == 0:
        return init(key, pixels, k, weights)
    if m >= k:
        return jnp.asarray(fixed[:k], pixels.dtype)
    if _takes_fixed(init):
        return init(key, pixels, k, weights, fixed=fixed)  # type: ignore[call-arg]
    rest = init(key, pixels, k - m, weights)
    return jnp.concatenate([jnp.asarray(fixed, rest.dtype), rest])


def _takes_fixed(init) -> bool:
    import inspect

    try:
        return "fixed" in inspect.signature(init).parameters
    except (TypeError, ValueError):
        return False


def _as_weights(pixels: jax.Array, weights: jax.Array | None) -> jax.Array:
    if weights is None:
        return jnp.ones(pixels.shape[:1], pixels.dtype)
    return weights.astype(pixels.dtype)


def kmeans_plusplus(
    key: jax.Array,
    pixels: jax.Array,
    k: int,
    weights: jax.Array | None = None,
    *,
    num_local_trials: int | None = None,
    power: float = 2.0,
    fixed: jax.Array | None = None,
) -> jax.Array:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii, 2007).

    The first colour is a pixel drawn by weight; each next one is the best of
    ``num_local_trials`` candidates drawn with probability proportional to
    ``weight · D^power`` (``D`` the distance to the nearest colour chosen so far), "best"
    meaning the one that lowers the total potential most. Distances to the chosen
    colours are kept incrementally: each round costs ``O(n · num_local_trials)``.

    When every pixel already coincides with a chosen colour (``k`` at least the number of
    distinct colours) the remaining colours repeat pixels, so the palette is lossless.

    Args:
      key: a PRNG key.
      pixels: ``(n, c)`` colours. Run it on a subsample for large images.
      k: number of colours, a Python ``int``.
      weights: optional ``(n,)`` non-negative pixel weights.
      num_local_trials: candidates per round; default ``2 + floor(ln k)`` as in
        scikit-learn. ``1`` gives plain (non-greedy) k-means++.
      power: ``2`` for D² sampling (k-means++), ``1`` for the SQ reference code's D¹.
      fixed: optional ``(m, c)`` colours (``m <= k``) already in the palette: they are
        its first ``m`` rows, and the other ``k - m`` are seeded around them (each
        pixel's distance starts as its distance to the nearest fixed colour).

    Returns:
      ``(k, c)`` palette whose rows are pixels (after the ``fixed`` rows, if any).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> pixels = jnp.array([[0.0, 0.0], [0.0, 0.1], [1.0, 1.0], [1.0, 0.9]])
      >>> palette = kmeans_plusplus(jax.random.key(0), pixels, 2)
      >>> sorted(float(v) for v in palette[:, 0])
      [0.0, 1.0]
    """
    n, c = pixels.shape
    w = _as_weights(pixels, weights)
    trials = num_local_trials if num_local_trials is not None else 2 + int(math.log(k))
    half = power / 2.0
    key_first, key_loop = jax.random.split(key)
    if fixed is not None and fixed.shape[0] > 0:
        m = fixed.shape[0]
        if m > k:
            raise ValueError(f"{m} fixed colours do not fit in a palette of {k}")
        fixed = jnp.asarray(fixed, pixels.dtype)
        closest = jnp.min(squared_distances(pixels, fixed), axis=1)
        palette = jnp.zeros((k, c), pixels.dtype).at[:m].set(fixed)
        start = m
    else:
        first = sample_index(key_first, w, ())
        closest = squared_distances(pixels, pixels[first][None])[:, 0]
        palette = jnp.zeros((k, c), pixels.dtype).at[0].set(pixels[first])
        start = 1

    def body(i, carry):
        palette, closest = carry
        pot = w * safe_pow(closest, half)
        # All mass gone: every pixel is a chosen colour already. Repeat pixels by weight.
        mass = jnp.where(jnp.sum(pot) > 0, pot, w)
        cand = sample_index(jax.random.fold_in(key_loop, i), mass, (trials,))
        trial_closest = jnp.minimum(closest[:, None], squared_distances(pixels, pixels[cand]))
        best = jnp.argmin(jnp.sum(w[:, None] * safe_pow(trial_closest, half), axis=0))
        return palette.at[i].set(pixels[cand[best]]), trial_closest[:, best]

    palette, _ = jax.lax.fori_loop(start, k, body, (palette, closest))
    return palette


def make_kmeans_plusplus(num_local_trials: int | None = None, power: float = 2.0) -> Initializer:
    """A k-means++ :class:`Initializer` with fixed options (cached: same options, same object).

    Args:
      num_local_trials: see :func:`kmeans_plusplus`.
      power: see :func:`kmeans_plusplus`.

    Returns:
      An :class:`Initializer`.
    """
    trials = None if num_local_trials is None else int(num_local_trials)
    return _kmeans_plusplus(trials, float(power))


@functools.cache
def _kmeans_plusplus(num_local_trials: int | None, power: float) -> Initializer:
    def init(key, pixels, k, weights=None, *, fixed=None):
        return kmeans_plusplus(
            key, pixels, k, weights, num_local_trials=num_local_trials, power=power, fixed=fixed
        )

    init.__name__ = f"kmeans_plusplus_t{num_local_trials}_p{power:g}"
    return init


def random_init(
    key: jax.Array, pixels: jax.Array, k: int, weights: jax.Array | None = None
) -> jax.Array:
    """``k`` distinct pixels drawn without replacement, with probability by weight.

    If fewer than ``k`` pixels have positive weight, the draw repeats the first one.

    Args:
      key: a PRNG key.
      pixels: ``(n, c)`` colours.
      k: number of colours.
      weights: optional ``(n,)`` non-negative weights.

    Returns:
      ``(k, c)`` palette whose rows are pixels.
    """
    n = pixels.shape[0]
    w = _as_weights(pixels, weights)
    # Gumbel top-k: a weighted draw without replacement in one pass.
    logw = jnp.where(w > 0, jnp.log(jnp.where(w > 0, w, 1.0)), -jnp.inf)
    scores = logw + jax.random.gumbel(key, (n,), dtype=pixels.dtype)
    m = min(k, n)
    top_scores, idx = jax.lax.top_k(scores, m)
    idx = jnp.where(jnp.isfinite(top_scores), idx, idx[0])
    if m < k:
        idx = jnp.concatenate([idx, jnp.full((k - m,), idx[0])])
    return pixels[idx]


INITIALIZERS: dict[str, Initializer] = {
    "kmeans++": kmeans_plusplus,
    "kmeans++-d1": make_kmeans_plusplus(num_local_trials=1, power=1.0),
    "random": random_init,
}
"""Built-in initializers by name."""


def get_initializer(init: str | Initializer | Callable) -> Initializer:
    """Resolve an initializer name or callable to an :class:`Initializer`.

    Raises:
      ValueError: for an unknown name (the message lists the valid ones).
      TypeError: for anything that is neither a string nor callable.
    """
    if isinstance(init, str):
        return INITIALIZERS[_checks.check_choice("init", init, tuple(INITIALIZERS))]
    if callable(init):
        return init
    raise TypeError(f"init must be a name or a callable, got {type(init).__name__}")
