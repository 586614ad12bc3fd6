"""What is measured: distances between pixels and palettes, and the SQ objective.

Every loss here is a pure function ``loss(palette, pixels, weights=None) -> scalar``
(the :class:`Loss` protocol): the weighted mean over pixels of a distortion between
each pixel and its nearest palette colour. Its ``jax.grad`` with respect to the palette
is Stochastic Quantization's stochastic generalised gradient when ``pixels`` is a random
minibatch: only each pixel's nearest palette colour receives a gradient.
"""

from __future__ import annotations

import functools
import math
from typing import Protocol, cast

import jax
import jax.numpy as jnp

from jaxquant import kernels
from jaxquant._ops import safe_pow, weighted_mean

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
      ``(n, k)`` array of ``‖pixel − colour‖²``, never negative; exact (the direct
      form) up to :data:`jaxquant.kernels.GEMM_CHANNELS` channels, the expanded form
      (one matrix product, rounding near 0 for near-equal vectors) above.

    Examples:
      >>> import jax.numpy as jnp
      >>> squared_distances(jnp.array([[0.0, 0.0]]), jnp.array([[3.0, 4.0], [0.0, 1.0]]))
      Array([[25.,  1.]], dtype=float32)
    """
    # The expanded form |x|^2 - 2xy + |y|^2 cancels catastrophically for near-equal
    # colours. The direct form, summed channel by channel, is as fast and exact; a sum
    # over a minor axis of size 3 is ~5x slower on XLA:CPU. Past a few channels the
    # direct form unrolls one term per channel (compile time grows with c) while the
    # expanded form is one matrix product: vectors use that, clamped at 0.
    c = pixels.shape[-1]
    if c > kernels.GEMM_CHANNELS:
        x, y = jnp.asarray(pixels), jnp.asarray(palette)
        cross = jnp.matmul(x, y.T, precision=jax.lax.Precision.HIGHEST)
        sq = jnp.sum(x * x, axis=1)[:, None] - 2.0 * cross + jnp.sum(y * y, axis=1)[None, :]
        return jnp.maximum(sq, 0.0)
    return cast(jax.Array, sum((pixels[:, None, j] - palette[None, :, j]) ** 2 for j in range(c)))


def nearest(pixels: jax.Array, palette: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Index of and squared distance to each pixel's nearest palette colour.

    Ties go to the lowest index. The index is found without gradient; the distance is
    recomputed from the chosen colour, so it is differentiable in both arguments and its
    gradient reaches only the nearest colour (SQ's generalised gradient). This
    materialises an ``(n, k)`` array; for whole images :func:`jaxquant.kernels.assign` works in
    memory-bounded chunks.

    Args:
      pixels: ``(n, c)`` colours.
      palette: ``(k, c)`` colours.

    Returns:
      ``(indices, sq_dist)``, both of shape ``(n,)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> idx, d = nearest(jnp.array([[0.0], [0.9]]), jnp.array([[1.0], [0.1]]))
      >>> idx.tolist(), [round(float(v), 4) for v in d]
      ([1, 0], [0.01, 0.01])
    """
    p, y = jax.lax.stop_gradient(pixels), jax.lax.stop_gradient(palette)
    d = squared_distances(p, y)
    m = jnp.min(d, axis=1)
    # Lowest index attaining the minimum: an integer min-reduction, which XLA vectorises
    # where argmin's (value, index) reduction does not (about 4x faster on CPU).
    iota = jnp.arange(palette.shape[0], dtype=jnp.int32)[None, :]
    idx = jnp.min(jnp.where(d <= m[:, None], iota, palette.shape[0]), axis=1)
    diff = pixels - palette[idx]
    return idx, jnp.sum(diff * diff, axis=-1)


def _nearest_sq(pixels: jax.Array, palette: jax.Array, layout: str | None) -> jax.Array:
    """Squared distance to the nearest colour, differentiable through that colour only."""
    idx = kernels.nearest_index(pixels, palette, layout=layout)
    diff = pixels - palette[idx]
    return jnp.sum(diff * diff, axis=-1)


def make_power_loss(rank: float = 2.0, *, layout: str | None = None) -> Loss:
    """The SQ transport objective with distance raised to ``rank``.

    ``F(Y) = Σ_i w_i min_k ‖ξ_i − y_k‖^rank / Σ_i w_i``. ``rank=2`` is k-means' objective
    (mean squared error); the SQ paper's reference code uses ``rank=3``. The gradient
    with respect to the nearest colour ``y`` of a pixel ``ξ`` is
    ``rank·‖ξ − y‖^(rank−2)·(y − ξ)`` (times the pixel's share of the weight), and zero
    for every other colour: SQ's stochastic generalised gradient.

    The factory is cached, so equal ranks give the same (hashable) function and a
    second call compiles nothing new.

    Args:
      rank: the exponent ``r >= 1`` (finite).
      layout: the nearest-colour search (:data:`jaxquant.kernels.LAYOUTS`; ``None``: the
        backend's default).

    Returns:
      A :class:`Loss`.

    Examples:
      >>> import jax.numpy as jnp
      >>> loss = make_power_loss(3.0)
      >>> float(loss(jnp.array([[0.0]]), jnp.array([[2.0]])))
      8.0
    """
    rank = float(rank)
    if not (rank >= 1.0 and math.isfinite(rank)):
        raise ValueError(f"rank must be a finite number >= 1, got {rank!r}")
    if layout is not None:
        kernels.resolve_layout(layout)
    return _power_loss(rank, layout)


@functools.cache
def _power_loss(rank: float, layout: str | None) -> Loss:
    half = rank / 2.0

    def power_loss(
        palette: jax.Array, pixels: jax.Array, weights: jax.Array | None = None
    ) -> jax.Array:
        return weighted_mean(safe_pow(_nearest_sq(pixels, palette, layout), half), weights)

    power_loss.__doc__ = (
        f"Weighted mean of distance^{rank:g} to the nearest colour (see make_power_loss)."
    )
    suffix = "" if layout is None else f"_{layout}"
    power_loss.__name__ = f"power_loss_r{rank:g}{suffix}"
    power_loss.__qualname__ = power_loss.__name__
    power_loss.rank = rank  # type: ignore[attr-defined]
    return power_loss


squared_loss: Loss = make_power_loss(2.0)
"""Mean squared distance to the nearest palette colour (k-means' objective)."""


def make_huber_loss(delta: float = 0.1, *, layout: str | None = None) -> Loss:
    """A robust loss: Huber's function of the distance to the nearest colour.

    Quadratic (``½d²``) for distances below ``delta`` and linear beyond, so a few far
    outlying pixels pull the palette less than under the squared loss. Colours are on
    the solver's ``[0, 1]`` scale, so ``delta=0.1`` is about 25 levels of 255.

    Args:
      delta: the distance where the loss turns from quadratic to linear, ``> 0``.
      layout: the nearest-colour search, as for :func:`make_power_loss`.

    Returns:
      A :class:`Loss`.
    """
    delta = float(delta)
    if not (delta > 0 and math.isfinite(delta)):
        raise ValueError(f"delta must be a finite number > 0, got {delta!r}")
    if layout is not None:
        kernels.resolve_layout(layout)
    return _huber_loss(delta, layout)


@functools.cache
def _huber_loss(delta: float, layout: str | None) -> Loss:

    def huber(palette: jax.Array, pixels: jax.Array, weights: jax.Array | None = None):
        sq = _nearest_sq(pixels, palette, layout)
        dist = jnp.where(sq > 0, jnp.sqrt(jnp.where(sq > 0, sq, 1.0)), 0.0)
        per_pixel = jnp.where(dist <= delta, 0.5 * sq, delta * (dist - 0.5 * delta))
        return weighted_mean(per_pixel, weights)

    huber.__doc__ = f"Weighted mean Huber({delta:g}) distance to the nearest colour."
    huber.__name__ = f"huber_loss_d{delta:g}"
    huber.__qualname__ = huber.__name__
    return huber


huber_loss: Loss = make_huber_loss()
"""Huber loss with ``delta=0.1`` on the ``[0, 1]`` colour scale."""
