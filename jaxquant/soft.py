"""Differentiable quantization: soft assignment, the straight-through estimator, soft losses.

Put a colour quantizer inside a JAX model and train through it:

- :func:`soft_quantize` replaces every pixel by a softmin-weighted mix of the palette
  colours. It is smooth in the image and the palette (gradients of every order) and tends
  to the hard quantization as ``temperature`` tends to 0.
- :func:`quantize_ste` is the exact hard quantization in the forward pass, with the
  straight-through estimator in the backward pass: identity to the image, and to each
  palette colour the sum of the gradients of the pixels assigned to it.
- :func:`soft_loss` (and its :class:`~jaxquant.losses.Loss` form :func:`make_soft_loss`)
  is the soft-min "free energy" of deterministic annealing: SQ's objective with a gradient
  for every palette colour.

All of them accept any float array of shape ``(..., c)`` (an image ``(H, W, C)``, pixels
``(N, C)``, a batch of images) and a ``(k, c)`` palette, and compose with ``jit``,
``vmap``, ``grad``, ``jacfwd`` and ``jacrev``. See ``docs/differentiable.md`` for when to
use which.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxquant._ops import safe_pow, weighted_mean
from jaxquant.losses import Loss, squared_distances

__all__ = ["make_soft_loss", "quantize_ste", "soft_assign", "soft_loss", "soft_quantize"]


def _check(image, palette, rank: float) -> tuple[jax.Array, jax.Array, float]:
    """Validate shapes and dtypes at trace time; cast both to their common float dtype."""
    image, palette = jnp.asarray(image), jnp.asarray(palette)
    for name, arr in (("image", image), ("palette", palette)):
        if not jnp.issubdtype(arr.dtype, jnp.floating):
            raise TypeError(
                f"{name} must be a float array (e.g. colours on the [0, 1] scale: "
                f"uint8 / 255), got {arr.dtype}"
            )
    if palette.ndim != 2 or palette.shape[0] < 1:
        raise ValueError(f"palette must have shape (k, c) with k >= 1, got {palette.shape}")
    if image.ndim < 1 or image.shape[-1] != palette.shape[1]:
        raise ValueError(
            f"image must have shape (..., c) with c = {palette.shape[1]} channels like the "
            f"palette, got {image.shape}"
        )
    rank = float(rank)
    if not rank >= 1.0:
        raise ValueError(f"rank must be a number >= 1, got {rank!r}")
    # An explicit cast, so that a float32 palette and a float64 image also work under
    # jax_numpy_dtype_promotion="strict".
    with jax.numpy_dtype_promotion("standard"):
        dtype = jnp.promote_types(image.dtype, palette.dtype)
    return image.astype(dtype), palette.astype(dtype), rank


def _check_temperature(temperature, dtype) -> jax.Array:
    if isinstance(temperature, (int, float)) and not temperature >= 0:
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")
    t = jnp.asarray(temperature)
    if t.ndim != 0:
        raise ValueError(f"temperature must be a scalar (vmap to batch it), got {t.shape}")
    return t.astype(dtype)


def _powered_distances(image: jax.Array, palette: jax.Array, rank: float) -> jax.Array:
    """``‖pixel − colour‖^rank``, shape ``(..., k)``; zero (not NaN) gradient at 0."""
    pixels = image.reshape(-1, image.shape[-1])
    d = safe_pow(squared_distances(pixels, palette), rank / 2.0)
    return d.reshape(image.shape[:-1] + (palette.shape[0],))


def _scaled_logits(d: jax.Array, temperature: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``−(d − min d) / T`` (max 0, exactly) and the mask ``T > 0``.

    Shifting by the minimum makes the largest logit exactly 0, so the normaliser is >= 1
    and no temperature, however small, gives 0/0. The shift does not change the softmax,
    so stopping its gradient leaves every derivative exact. ``T`` is floored at
    ``sqrt(finfo.tiny)`` (1e-19 in float32, where any two distances that differ at all
    already give one-hot weights) so that ``1/T`` and ``1/T²``, the derivative in ``T``,
    stay finite; logits of ``-inf`` give weights of exactly 0 and gradients of exactly 0.
    """
    positive = temperature > 0
    safe_t = jnp.where(positive, temperature, jnp.ones_like(temperature))
    floor = jnp.sqrt(jnp.asarray(jnp.finfo(d.dtype).tiny, d.dtype))
    inv_t = 1.0 / jnp.maximum(safe_t, floor)
    shifted = d - jax.lax.stop_gradient(jnp.min(d, axis=-1, keepdims=True))
    return -shifted * inv_t, positive


def soft_assign(
    image: jax.Array, palette: jax.Array, *, temperature: float | jax.Array, rank: float = 2.0
) -> jax.Array:
    """Soft assignment weights: a softmin over the palette of ``distance^rank / temperature``.

    ``w[..., j] = exp(−‖x − y_j‖^rank / T) / Σ_l exp(−‖x − y_l‖^rank / T)``, computed in
    log-sum-exp form (shifted by the smallest distance), so that it is finite, NaN-free
    and differentiable for every ``T >= 0``. ``T = 0`` gives the hard one-hot assignment
    (ties: lowest index), the limit as ``T → 0``.

    Args:
      image: ``(..., c)`` float colours.
      palette: ``(k, c)`` float palette.
      temperature: ``T >= 0`` in units of ``distance^rank`` (on the ``[0, 1]`` colour
        scale with ``rank=2``, ``T = 1e-3`` blends colours closer than about 0.03). May
        be a traced value: anneal it without recompiling.
      rank: the exponent ``r >= 1`` of the distance (static).

    Returns:
      ``(..., k)`` non-negative weights summing to 1 over the last axis.

    Examples:
      >>> import jax.numpy as jnp
      >>> palette = jnp.array([[0.0], [1.0]])
      >>> soft_assign(jnp.array([[0.5], [0.1]]), palette, temperature=0.5).round(2)
      Array([[0.5 , 0.5 ],
             [0.83, 0.17]], dtype=float32)
      >>> soft_assign(jnp.array([[0.5]]), palette, temperature=0.0)
      Array([[1., 0.]], dtype=float32)
    """
    image, palette, rank = _check(image, palette, rank)
    t = _check_temperature(temperature, image.dtype)
    d = _powered_distances(image, palette, rank)
    logits, positive = _scaled_logits(d, t)
    e = jnp.exp(logits)
    soft = e / jnp.sum(e, axis=-1, keepdims=True)
    hard = jax.nn.one_hot(jnp.argmin(d, axis=-1), palette.shape[0], dtype=d.dtype)
    return jnp.where(positive, soft, hard)


def soft_quantize(
    image: jax.Array, palette: jax.Array, *, temperature: float | jax.Array, rank: float = 2.0
) -> jax.Array:
    """Replace every pixel by a softmin-weighted mix of the palette colours.

    ``soft_quantize(x) = Σ_j w_j(x) · y_j`` with the weights of :func:`soft_assign`. It
    is smooth in both ``image`` and ``palette`` for ``T > 0``, so gradients of every order
    reach every palette colour (weighted by how close it is), and it converges to the
    hard quantization ``palette[nearest]`` as ``T → 0`` (``T = 0`` is exactly that).
    Anneal ``T`` towards 0 during training, then quantize hard (see
    ``docs/differentiable.md``).

    Args:
      image: ``(..., c)`` float colours.
      palette: ``(k, c)`` float palette.
      temperature: ``T >= 0`` in units of ``distance^rank``; may be traced.
      rank: the exponent ``r >= 1`` of the distance (static).

    Returns:
      An array of ``image``'s shape in the common float dtype of the inputs.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> palette = jnp.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
      >>> image = jnp.full((2, 2, 3), 0.25)
      >>> soft_quantize(image, palette, temperature=0.5)[0, 0].round(3)
      Array([0.047, 0.047, 0.047], dtype=float32)
      >>> soft_quantize(image, palette, temperature=1e-30)[0, 0]  # the hard limit
      Array([0., 0., 0.], dtype=float32)
      >>> g = jax.grad(lambda p: soft_quantize(image, p, temperature=0.5).sum())(palette)
      >>> bool(jnp.all(g != 0))  # both colours receive a gradient (the STE's: only one)
      True
    """
    image, palette, rank = _check(image, palette, rank)
    w = soft_assign(image, palette, temperature=temperature, rank=rank)
    # HIGHEST: a one-hot row must reproduce the palette colour exactly; the default
    # matmul precision on GPU/TPU (TF32/bf16) would round it.
    return jnp.matmul(w, palette, precision=jax.lax.Precision.HIGHEST)


def _nearest_index(image: jax.Array, palette: jax.Array) -> jax.Array:
    """Exact nearest colour (ties: lowest index), shape ``image.shape[:-1]``; no gradient."""
    x, y = jax.lax.stop_gradient(image), jax.lax.stop_gradient(palette)
    d = squared_distances(x.reshape(-1, x.shape[-1]), y)
    return jnp.argmin(d, axis=-1).reshape(x.shape[:-1])


def quantize_ste(image: jax.Array, palette: jax.Array) -> jax.Array:
    """Hard quantization with a straight-through gradient.

    Forward: every pixel becomes its exactly nearest palette colour (ties: lowest index),
    bit for bit ``palette[nearest]``. Backward: the gradient passes to ``image`` unchanged
    (the straight-through estimator: the quantizer is treated as the identity) and to each
    palette colour as the sum of the gradients of the pixels assigned to it (the
    quantizer's true derivative with the assignment held fixed, as in SQ). Colours that
    no pixel chose get no gradient. Built from ``stop_gradient``, so it works with
    ``grad``, ``jacfwd``, ``jacrev`` and ``vmap`` at every order.

    Use it when the forward pass must be the deployed, hard quantization (a codec, an
    indexed-colour output); use :func:`soft_quantize` when every colour needs a gradient
    or the loss needs curvature in the palette.

    Args:
      image: ``(..., c)`` float colours.
      palette: ``(k, c)`` float palette.

    Returns:
      An array of ``image``'s shape in the common float dtype of the inputs.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> palette = jnp.array([[0.0], [1.0]])
      >>> image = jnp.array([[0.2], [0.3], [0.9]])
      >>> quantize_ste(image, palette).ravel()
      Array([0., 0., 1.], dtype=float32)
      >>> jax.grad(lambda x: quantize_ste(x, palette).sum())(image).ravel()
      Array([1., 1., 1.], dtype=float32)
      >>> jax.grad(lambda p: quantize_ste(image, p).sum())(palette).ravel()
      Array([2., 1.], dtype=float32)
    """
    image, palette, _ = _check(image, palette, 2.0)
    hard = palette[_nearest_index(image, palette)]
    # x − stop_gradient(x) is exactly 0 in the forward pass and the identity backward.
    return hard + (image - jax.lax.stop_gradient(image))


def soft_loss(
    palette: jax.Array,
    pixels: jax.Array,
    weights: jax.Array | None = None,
    *,
    temperature: float | jax.Array,
    rank: float = 2.0,
) -> jax.Array:
    """The soft-min distortion of deterministic annealing.

    The weighted mean over pixels of ``−T · log Σ_j exp(−‖x − y_j‖^rank / T)``, which lies
    between ``min_j ‖x − y_j‖^rank − T·log k`` and ``min_j ‖x − y_j‖^rank``: it tends to
    the SQ objective (:func:`~jaxquant.losses.make_power_loss`) as ``T → 0`` and is that
    objective at ``T = 0``. Its gradient with respect to ``y_j`` is every pixel's SQ
    gradient weighted by its :func:`soft_assign` weight, so every colour near some pixels
    moves and no palette entry is dead. Computed in shifted log-sum-exp form: finite for
    every ``T >= 0``.

    Args:
      palette: ``(k, c)`` float palette.
      pixels: ``(n, c)`` float colours.
      weights: optional ``(n,)`` non-negative pixel weights.
      temperature: ``T >= 0`` in units of ``distance^rank``; may be traced (anneal it).
      rank: the exponent ``r >= 1`` (static).

    Returns:
      A scalar.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> palette, pixels = jnp.array([[0.0], [1.0]]), jnp.array([[0.5]])
      >>> round(float(soft_loss(palette, pixels, temperature=0.1)), 4)  # 0.25 − 0.1·log 2
      0.1807
      >>> jax.grad(soft_loss)(palette, pixels, temperature=0.1).ravel()  # both move
      Array([-0.5,  0.5], dtype=float32)
    """
    pixels, palette, rank = _check(pixels, palette, rank)
    t = _check_temperature(temperature, pixels.dtype)
    d = _powered_distances(pixels, palette, rank)
    logits, positive = _scaled_logits(d, t)
    # min d − T·log Σ exp(−(d − min d)/T) equals −T·log Σ exp(−d/T) for any value of the
    # shift, so its gradient may be stopped (on both occurrences): the gradient is softmax.
    shift = jax.lax.stop_gradient(jnp.min(d, axis=-1))
    soft = shift - t * jnp.log(jnp.sum(jnp.exp(logits), axis=-1))
    hard = jnp.take_along_axis(d, jnp.argmin(d, axis=-1)[..., None], axis=-1)[..., 0]
    return weighted_mean(jnp.where(positive, soft, hard), weights)


def make_soft_loss(temperature: float, *, rank: float = 2.0) -> Loss:
    """:func:`soft_loss` at a fixed temperature, as a :class:`~jaxquant.losses.Loss`.

    For :func:`jaxquant.quantize` (``loss=make_soft_loss(1e-3)``) and :class:`jaxquant.SQ`.
    The factory is cached: equal arguments give the same function, so a second
    ``quantize`` call compiles nothing new. To anneal the temperature in a loop of your
    own, call :func:`soft_loss` with a traced ``temperature`` instead.

    Args:
      temperature: ``T >= 0`` in units of ``distance^rank`` on the ``[0, 1]`` scale.
      rank: the exponent ``r >= 1``.

    Returns:
      A :class:`~jaxquant.losses.Loss`.

    Examples:
      >>> import jax.numpy as jnp
      >>> loss = make_soft_loss(0.1)
      >>> loss is make_soft_loss(0.1)
      True
      >>> round(float(loss(jnp.array([[0.0], [1.0]]), jnp.array([[0.5]]))), 4)
      0.1807
    """
    temperature, rank = float(temperature), float(rank)
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")
    if not rank >= 1.0:
        raise ValueError(f"rank must be a number >= 1, got {rank!r}")
    return _soft_loss(temperature, rank)


@functools.cache
def _soft_loss(temperature: float, rank: float) -> Loss:
    def loss(palette: jax.Array, pixels: jax.Array, weights: jax.Array | None = None):
        return soft_loss(palette, pixels, weights, temperature=temperature, rank=rank)

    loss.__doc__ = f"Weighted mean soft-min (T={temperature:g}) of distance^{rank:g}."
    loss.__name__ = f"soft_loss_t{temperature:g}_r{rank:g}"
    loss.__qualname__ = loss.__name__
    return loss
