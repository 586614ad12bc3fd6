"""What is measured: distances between pixels and palettes, and the SQ objective.

Every loss here is a pure function ``loss(palette, pixels, weights=None) -> scalar``
(the :class:`Loss` protocol): the weighted mean over pixels of a distortion between
each pixel and its nearest palette colour. Its ``jax.grad`` with respect to the palette
is Stochastic Quantization's stochastic generalised gradient when ``pixels`` is a random
minibatch: only each pixel's nearest palette colour receives a gradient.
"""

from __future__ import annotations

import functools
from typing import Protocol

import jax
import jax.numpy as jnp

__all__ = [
    "Loss",
    "huber_loss",
    "make_huber_loss",
    "make_power_loss",
    "nearest",
    "squared_distances",
    "squared_loss",
]


class Loss(Protocol):
    """A distortion measure minimised by the solver.

    A loss is called as ``loss(palette, pixels, weights)`` with ``palette`` of shape
    ``(k, c)``, ``pixels`` of shape ``(n, c)`` and optional non-negative ``weights`` of
    shape ``(n,)``, and returns a scalar: the weighted mean over pixels of the distortion
    to the nearest palette colour. It must be differentiable in ``palette`` (it is
    minimised with ``jax.grad``) and hashable by value or identity (it is static
    configuration of the compiled solver: build it once, at module level or with a
    cached factory, rather than anew per call).
    """

    def __call__(
        self, palette: jax.Array, pixels: jax.Array, weights: jax.Array | None = None
    ) -> jax.Array: ...


def squared_distances(pixels: jax.Array, palette: jax.Array) -> jax.Array:
    """Squared Euclidean distances between every pixel and every palette colour.

    Args:
      pixels: ``(n, c)`` colours.
      palette: ``(k, c)`` colours.

    Returns:
      ``(n, k)`` array of ``‖pixel − colour‖²``, never negative.

    Examples:
      >>> import jax.numpy as jnp
      >>> squared_distances(jnp.array([[0.0, 0.0]]), jnp.array([[3.0, 4.0], [0.0, 1.0]]))
      Array([[25.,  1.]], dtype=float32)
    """
    # The expanded form |x|^2 - 2xy + |y|^2 is cheaper but cancels catastrophically for
    # near-equal colours; with c <= 4 channels the direct form costs about the same.
    diff = pixels[:, None, :] - palette[None, :, :]
    return jnp.sum(diff * diff, axis=-1)


def nearest(pixels: jax.Array, palette: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Index of and squared distance to each pixel's nearest palette colour.

    Ties go to the lowest index. This materialises an ``(n, k)`` array; for whole images
    :func:`jaxquant.assign` works in memory-bounded chunks.

    Args:
      pixels: ``(n, c)`` colours.
      palette: ``(k, c)`` colours.

    Returns:
      ``(indices, sq_dist)``, both of shape ``(n,)``.
    """
    d = squared_distances(pixels, palette)
    idx = jnp.argmin(d, axis=1)
    return idx, jnp.take_along_axis(d, idx[:, None], axis=1)[:, 0]


def _weighted_mean(values: jax.Array, weights: jax.Array | None) -> jax.Array:
    if weights is None:
        return jnp.mean(values)
    weights = weights.astype(values.dtype)
    # The max() keeps an all-zero weight vector (an empty padded batch) from dividing by 0.
    return jnp.sum(weights * values) / jnp.maximum(jnp.sum(weights), 1e-30)


def _safe_pow(sq: jax.Array, half_rank: float) -> jax.Array:
    """``sq ** half_rank`` with a zero (not NaN or inf) gradient at ``sq == 0``."""
    if half_rank == 1.0:
        return sq
    positive = sq > 0
    safe = jnp.where(positive, sq, 1.0)
    return jnp.where(positive, safe**half_rank, 0.0)


@functools.cache
def make_power_loss(rank: float = 2.0) -> Loss:
    """The SQ transport objective with distance raised to ``rank``.

    ``F(Y) = Σ_i w_i min_k ‖ξ_i − y_k‖^rank / Σ_i w_i``. ``rank=2`` is k-means' objective
    (mean squared error); the SQ paper's reference code uses ``rank=3``. The gradient
    with respect to the nearest colour ``y`` of a pixel ``ξ`` is
    ``rank·‖ξ − y‖^(rank−2)·(y − ξ)`` (times the pixel's share of the weight), and zero
    for every other colour: SQ's stochastic generalised gradient.

    The factory is cached, so equal ranks give the same (hashable) function and a
    second call compiles nothing new.

    Args:
      rank: the exponent ``r >= 1``.

    Returns:
      A :class:`Loss`.

    Examples:
      >>> import jax.numpy as jnp
      >>> loss = make_power_loss(3.0)
      >>> float(loss(jnp.array([[0.0]]), jnp.array([[2.0]])))
      8.0
    """
    rank = float(rank)
    if not rank >= 1.0:
        raise ValueError(f"rank must be a number >= 1, got {rank!r}")
    half = rank / 2.0

    def power_loss(
        palette: jax.Array, pixels: jax.Array, weights: jax.Array | None = None
    ) -> jax.Array:
        sq = jnp.min(squared_distances(pixels, palette), axis=1)
        return _weighted_mean(_safe_pow(sq, half), weights)

    power_loss.__name__ = f"power_loss_r{rank:g}"
    power_loss.__qualname__ = power_loss.__name__
    power_loss.rank = rank  # type: ignore[attr-defined]
    return power_loss


squared_loss: Loss = make_power_loss(2.0)
"""Mean squared distance to the nearest palette colour (k-means' objective)."""


@functools.cache
def make_huber_loss(delta: float = 0.1) -> Loss:
    """A robust loss: Huber's function of the distance to the nearest colour.

    Quadratic (``½d²``) for distances below ``delta`` and linear beyond, so a few far
    outlying pixels pull the palette less than under the squared loss. Colours are on
    the solver's ``[0, 1]`` scale, so ``delta=0.1`` is about 25 levels of 255.

    Args:
      delta: the distance where the loss turns from quadratic to linear, ``> 0``.

    Returns:
      A :class:`Loss`.
    """
    delta = float(delta)
    if not delta > 0:
        raise ValueError(f"delta must be > 0, got {delta!r}")

    def huber(palette: jax.Array, pixels: jax.Array, weights: jax.Array | None = None):
        sq = jnp.min(squared_distances(pixels, palette), axis=1)
        dist = jnp.sqrt(jnp.where(sq > 0, sq, 1.0)) * (sq > 0)
        per_pixel = jnp.where(dist <= delta, 0.5 * sq, delta * (dist - 0.5 * delta))
        return _weighted_mean(per_pixel, weights)

    huber.__name__ = f"huber_loss_d{delta:g}"
    huber.__qualname__ = huber.__name__
    return huber


huber_loss: Loss = make_huber_loss()
"""Huber loss with ``delta=0.1`` on the ``[0, 1]`` colour scale."""
