"""Entry points: ``quantize`` and ``kmeans``, their result, and image <-> colour-set helpers.

An image goes through three stages:

1. ``prepare`` (host, NumPy): validate, flatten and deduplicate the pixels into distinct
   colours with counts (a 400k-pixel photo typically has 50k-250k distinct colours), then
   pad to a size bucket with zero weights so that images of similar colour counts share
   one compiled program.
2. ``_fit`` (one jit-compiled program per bucket and static configuration): seeding, the
   SQ loop, optional Lloyd polish, rounding and the exact assignment of every distinct
   colour.
3. Back on the host: expand the assignment to all pixels through the deduplication's
   inverse index.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxquant import _checks, _modes
from jaxquant import colour as _colour
from jaxquant._solver import (
    _OPTIMIZERS,
    CHUNK_SIZE,
    _chunk_size,
    _lloyd_rounded,
    _pad_rows,
    assign,
    default_learning_rate,
    lloyd,
    make_optimizer,
    sq_fit,
)
from jaxquant.losses import Loss, make_power_loss
from jaxquant.seeding import Initializer, _sample_index, get_initializer

__all__ = ["QuantizeResult", "Status", "kmeans", "paper_options", "quantize"]


class Status(enum.IntEnum):
    """Outcome of a fit, stored in :attr:`QuantizeResult.status`."""

    OK = 0
    """The palette is finite and in range."""
    DIVERGED = 1
    """The optimizer produced non-finite values (learning rate far too large)."""


class QuantizeResult(NamedTuple):
    """The result of :func:`quantize` or :func:`kmeans` (a pytree: ``vmap`` batches it).

    Attributes:
      image: the quantized image, same shape and dtype as the input (uint8 for uint8 and
        PIL input; float in ``[0, 1]`` for float input).
      palette: ``(k, c)`` palette: uint8 (rounded, never truncated) for uint8 input, float
        otherwise. Rows may repeat when the image has fewer than ``k`` distinct colours.
      indices: ``(H, W)`` int32 index of every pixel's palette colour; every pixel gets
        its exactly nearest (ties: lowest index) colour of the returned palette.
      loss: the objective ``F(palette)`` over all pixels on the ``[0, 1]`` colour scale
        (for ``space`` other than ``rgb``: in that space's normalized coordinates).
      losses: the trace of the fit: minibatch losses of the SQ steps (for ``kmeans``, the
        full loss before each Lloyd step).
      mse: mean over pixels and channels of the squared error on the 0..255 scale.
      psnr: peak signal-to-noise ratio in dB, ``10·log10(255² / mse)`` (inf if lossless).
      status: a :class:`Status` code (0 = OK).
    """

    image: Any
    palette: Any
    indices: Any
    loss: Any
    losses: Any
    mse: Any
    psnr: Any
    status: Any


# --------------------------------------------------------------------------------------
# Host side: distinct colours, buckets.


def bucket_size(n: int) -> int:
    """The padded size for ``n`` distinct colours: ``2^m`` or ``1.5·2^m``, at least 256.

    At most 33% padding, and a dozen sizes cover 256 to 1M colours, so a folder of photos
    compiles a handful of programs.
    """
    size = 256
    while size < n:
        # 256 -> 384 -> 512 -> 768 -> 1024 ...
        size = size + size // 2 if size & (size - 1) == 0 else size + size // 3
    return size


@dataclasses.dataclass(frozen=True)
class Prepared:
    """An image reduced to weighted distinct colours, padded to a bucket."""

    colours: np.ndarray  # (bucket, c) uint8, or float32 in [0, 1]
    weights: np.ndarray  # (bucket,) float32 pixel counts, 0 for padding
    inverse: np.ndarray | None  # (H*W,) int32 index into colours; None: pixel i is colour i
    num_distinct: int  # colours before padding (distinct ones when deduplicated)
    shape: tuple[int, ...]  # the input array's shape, (H, W, C)
    dtype: np.dtype
    squeeze: bool  # the input was (H, W)


# Deduplication (np.unique) costs 35-70 ms on a 400k-pixel photo, and SQ then samples
# colours by weight (a binary search per sample) instead of pixels uniformly. The
# assignment it would save is ~10 ms at k = 256 (the palette loop of _solver.assign), so
# quantize deduplicates only images that may have no more than k colours: on CQ100 it
# was slower at every k up to 1024 (0.28 vs 0.16 s at k = 256, 0.47 vs 0.37 s at 1024).
_PROBE_PIXELS = 16384


def prepare(image, k: int | None = None) -> Prepared:
    """Validate an image and reduce it to weighted colours, padded to a bucket (host side).

    The pixels are deduplicated into distinct colours with counts for ``k=None`` (Lloyd
    iterates over all colours: deduplication pays) and when the image may have no more
    than ``k`` distinct colours (pixels spread over the image are probed), so that the
    lossless shortcut in ``_fit`` sees the true distinct count. Otherwise every pixel is
    its own colour of weight 1 and SQ samples pixels uniformly.
    """
    squeeze = not hasattr(image, "mode") and np.ndim(image) == 2
    arr = _checks.as_image_array(image)
    h, w, c = arr.shape
    pixels = arr.reshape(h * w, c)
    dedup = k is None or _few_colours(pixels, k)
    if not dedup:
        colours, inverse, counts = pixels, None, np.ones(h * w, np.float32)
    elif arr.dtype == np.uint8:
        uniq, inverse, counts = np.unique(_codes(pixels), return_inverse=True, return_counts=True)
        shifts = np.array([8 * (c - 1 - j) for j in range(c)], np.uint32)
        colours = ((uniq[:, None] >> shifts[None, :]) & 0xFF).astype(np.uint8)
    else:
        colours, inverse, counts = np.unique(
            pixels.astype(np.float32), axis=0, return_inverse=True, return_counts=True
        )
    u = colours.shape[0]
    size = bucket_size(u)
    padded = np.zeros((size, c), colours.dtype)
    padded[:u] = colours
    weights = np.zeros(size, np.float32)
    weights[:u] = counts
    return Prepared(
        colours=padded,
        weights=weights,
        inverse=None if inverse is None else inverse.reshape(-1).astype(np.int32),
        num_distinct=u,
        shape=arr.shape,
        dtype=arr.dtype,
        squeeze=squeeze,
    )


def _codes(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels ``(n, c)`` packed into one uint32 code each (same order as the rows)."""
    codes = np.zeros(pixels.shape[0], np.uint32)
    c = pixels.shape[1]
    for j in range(c):
        codes |= pixels[:, j].astype(np.uint32) << np.uint32(8 * (c - 1 - j))
    return codes


def _few_colours(pixels: np.ndarray, k: int) -> bool:
    """Whether an image with these pixels may have <= k distinct colours.

    Probes ``_PROBE_PIXELS`` pixels spread over the whole image (a photo's first rows are
    often a flat sky or border). Exact in the direction that matters: more than k
    distinct colours among the probe means more than k in the image.
    """
    probe = pixels[:: max(1, pixels.shape[0] // _PROBE_PIXELS)]
    if probe.dtype == np.uint8:
        return len(np.unique(_codes(probe))) <= k
    return len(np.unique(probe, axis=0)) <= k


# --------------------------------------------------------------------------------------
# The compiled core.


@dataclasses.dataclass(frozen=True)
class _Config:
    """Static configuration of the compiled fit: hashable by value."""

    k: int
    loss: Loss
    optimizer: str | optax.GradientTransformation
    num_steps: int
    batch_size: int
    init: Initializer
    num_lloyd_steps: int
    tol: float
    lloyd_tol: float
    seed_sample_size: int
    chunk_size: int = CHUNK_SIZE
    uniform: bool = False  # weights are 1 then 0 (pixels, not deduplicated colours)
    space: str = "rgb"  # colour space of the fit (jaxquant.colour.SPACES)


class _FitOut(NamedTuple):
    palette: jax.Array  # (k, c) uint8 or float
    labels: jax.Array  # (bucket,) int32
    loss: jax.Array
    losses: jax.Array
    mse: jax.Array
    status: jax.Array


def _objective(config: _Config, palette, colours, weights, sq_dist, scale):
    """F(palette) over all colours; uses the assignment's distances for power losses."""
    rank = getattr(config.loss, "rank", None)
    w = weights.astype(jnp.float32)
    if rank is not None:
        d = sq_dist.astype(jnp.float32) / scale
        per = d if rank == 2.0 else jnp.where(d > 0, jnp.where(d > 0, d, 1.0) ** (rank / 2), 0.0)
        return jnp.sum(w * per) / jnp.maximum(jnp.sum(w), 1e-30)
    n = colours.shape[0]
    chunk = _chunk_size(n, config.chunk_size)
    padded = -(-n // chunk) * chunk  # padding rows have weight 0
    parts = jax.lax.map(
        lambda a: config.loss(palette, a[0], a[1]) * jnp.sum(a[1]),
        (
            _pad_rows(colours, padded).reshape(-1, chunk, colours.shape[1]),
            _pad_rows(w, padded).reshape(-1, chunk),
        ),
    )
    return jnp.sum(parts) / jnp.maximum(jnp.sum(w), 1e-30)


def _fit_one(key, colours, weights, learning_rate, config: _Config) -> _FitOut:
    """Seed, fit, polish, round and assign one image's colours (traced by the wrappers)."""
    n, _ = colours.shape
    integer = colours.dtype == jnp.uint8
    x = colours.astype(jnp.float32) / 255.0 if integer else colours.astype(jnp.float32)
    rgb = x
    if config.space != "rgb":
        x = _to_solver(x, config.space)
    w = weights.astype(jnp.float32)
    key_sample, key_seed, key_fit = jax.random.split(key, 3)

    if n <= config.seed_sample_size:
        palette = config.init(key_seed, x, config.k, w)
    else:
        sample = x[_sample_index(key_sample, w, (config.seed_sample_size,))]
        palette = config.init(key_seed, sample, config.k)
    palette = palette.astype(jnp.float32)

    if config.num_steps > 0:
        opt = config.optimizer
        if isinstance(opt, str):
            opt = make_optimizer(opt, learning_rate, config.num_steps)
        state, losses = sq_fit(
            key_fit,
            palette,
            x,
            w,
            loss=config.loss,
            optimizer=opt,
            num_steps=config.num_steps,
            batch_size=config.batch_size,
            tol=config.tol,
            uniform=config.uniform,
        )
        palette = state.palette
    else:
        losses = jnp.zeros((0,), jnp.float32)
    if config.num_lloyd_steps > 0 and config.num_steps > 0 and integer and config.space == "rgb":
        # A polish after SQ: Lloyd against the rounded palette, exact in integers.
        palette = _lloyd_rounded(palette, colours, w, num_steps=config.num_lloyd_steps)
    elif config.num_lloyd_steps > 0:
        palette, lloyd_losses, _ = lloyd(
            palette,
            x,
            w,
            num_steps=config.num_lloyd_steps,
            tol=config.lloyd_tol,
            chunk_size=config.chunk_size,
        )
        if config.num_steps == 0:
            losses = lloyd_losses

    status = jnp.where(jnp.all(jnp.isfinite(palette)), Status.OK, Status.DIVERGED)
    palette = jnp.clip(jnp.nan_to_num(palette), 0.0, 1.0)
    if config.space != "rgb":
        return _finish_in_space(config, palette, colours, rgb, x, w, losses, status)
    # With no more distinct colours than k, the distinct colours themselves are the
    # optimal palette (lossless); they sit first in `colours`, padding after.
    num_valid = jnp.sum(w > 0)
    lossless = jnp.minimum(jnp.arange(config.k), jnp.maximum(num_valid - 1, 0))
    use_lossless = num_valid <= config.k
    if integer:
        out = jnp.round(palette * 255.0).astype(jnp.uint8)
        out = jnp.where(use_lossless, colours[lossless], out)
        labels, sq_dist = assign(colours, out, chunk_size=config.chunk_size)
        scale = 255.0**2
        palette_f = out.astype(jnp.float32) / 255.0
    else:
        out = jnp.where(use_lossless, x[lossless], palette)
        labels, sq_dist = assign(x, out, chunk_size=config.chunk_size)
        scale = 1.0
        palette_f = out
    loss = _objective(config, palette_f, x, w, sq_dist, scale)
    c = colours.shape[1]
    mse = jnp.sum(w * sq_dist.astype(jnp.float32)) / jnp.maximum(jnp.sum(w), 1e-30) / c
    mse = mse * (255.0**2 / scale)
    return _FitOut(out, labels, loss, losses, mse, status.astype(jnp.int32))


# Colour spaces. The solver works on normalized coordinates in [0, 1]^c (see
# jaxquant.colour.BOXES): colour channels converted, alpha (the last of 2 or 4 channels)
# kept as it is, so it weighs as one more coordinate on the same [0, 1] scale.


def _colour_channels(c: int) -> int:
    """How many of ``c`` channels are colour: all but the alpha of 2 or 4."""
    return c - 1 if c in (2, 4) else c


def check_space(space, channels: int, mode: str = "vector") -> str:
    """Validate a colour space against an image's channels and the mode (host side)."""
    if not isinstance(space, str) or space not in _colour.SPACES:
        raise ValueError(
            f"unknown colour space {space!r}; choose one of {', '.join(_colour.SPACES)}"
        )
    if space in ("cielab", "oklab"):
        if mode != "vector":
            raise ValueError(
                f"space {space!r} needs mode 'vector': {mode} mode quantizes intensities "
                "one at a time; use space 'rgb' or 'linear-rgb'"
            )
        if _colour_channels(channels) != 3:
            raise ValueError(
                f"space {space!r} needs an RGB or RGBA image, got {channels} channel(s); "
                "use space 'rgb' or 'linear-rgb' for grayscale"
            )
    if space == "linear-rgb" and mode != "vector" and channels in (2, 4):
        raise ValueError(
            f"space 'linear-rgb' with mode {mode!r} would linearize the alpha channel; "
            "use space 'rgb' or mode 'vector' for images with alpha"
        )
    return space


def _to_solver(rgb: jax.Array, space: str) -> jax.Array:
    """``(n, c)`` sRGB in [0, 1] -> normalized coordinates of ``space`` (alpha kept)."""
    m = _colour_channels(rgb.shape[1])
    col, alpha = rgb[:, :m], rgb[:, m:]
    if space == "linear-rgb":  # elementwise, so also for gray
        col = _colour.srgb_to_linear(col)
    else:
        col = _colour.to_space(col, space, normalized=True)
    return jnp.concatenate([col, alpha], axis=1)


def _from_solver(values: jax.Array, space: str) -> jax.Array:
    """The inverse of :func:`_to_solver`, not clipped."""
    m = _colour_channels(values.shape[1])
    col, alpha = values[:, :m], values[:, m:]
    if space == "linear-rgb":
        col = _colour.linear_to_srgb(col)
    else:
        col = _colour.from_space(col, space, normalized=True)
    return jnp.concatenate([col, alpha], axis=1)


def _finish_in_space(config: _Config, palette, colours, rgb, x, w, losses, status) -> _FitOut:
    """Round a palette fitted in ``config.space`` to sRGB and assign exactly in the space.

    ``palette`` and ``x`` are normalized coordinates of the space, ``rgb`` the colours as
    sRGB floats. The palette goes back to sRGB (clipped to the gamut, rounded for uint8);
    every colour is then assigned the palette colour nearest to it *in the space*, by
    converting the final sRGB palette back, so the labels are exact for what is returned.
    """
    integer = colours.dtype == jnp.uint8
    back = jnp.clip(jnp.nan_to_num(_from_solver(palette, config.space)), 0.0, 1.0)
    num_valid = jnp.sum(w > 0)
    lossless = jnp.minimum(jnp.arange(config.k), jnp.maximum(num_valid - 1, 0))
    use_lossless = num_valid <= config.k
    if integer:
        out = jnp.round(back * 255.0).astype(jnp.uint8)
        out = jnp.where(use_lossless, colours[lossless], out)
        out_rgb = out.astype(jnp.float32) / 255.0
    else:
        out = jnp.where(use_lossless, rgb[lossless], back)
        out_rgb = out
    # The distinct colours' own coordinates when lossless: converting them again could
    # differ in the last bit and leave a distance of 1e-15 instead of 0.
    palette_s = jnp.where(use_lossless, x[lossless], _to_solver(out_rgb, config.space))
    labels, sq_dist = assign(x, palette_s, chunk_size=config.chunk_size)
    loss = _objective(config, palette_s, x, w, sq_dist, 1.0)
    # mse stays in sRGB, on the 0..255 scale, whatever the space of the fit.
    if integer:
        err = colours.astype(jnp.int32) - out[labels].astype(jnp.int32)
        sq_rgb = jnp.sum(err * err, axis=1).astype(jnp.float32)
    else:
        err = (rgb - out_rgb[labels]) * 255.0
        sq_rgb = jnp.sum(err * err, axis=1)
    c = colours.shape[1]
    mse = jnp.sum(w * sq_rgb) / jnp.maximum(jnp.sum(w), 1e-30) / c
    return _FitOut(out, labels, loss, losses, mse, status.astype(jnp.int32))


# One program per (bucket, config) for single images, and per (batch size, bucket, config)
# for stacks of images: the same computation under vmap.
_fit = jax.jit(_fit_one, static_argnames=("config",))


@functools.partial(jax.jit, static_argnames=("config",))
def _fit_many(keys, colours, weights, learning_rate, config: _Config) -> _FitOut:
    return jax.vmap(lambda k, c, w: _fit_one(k, c, w, learning_rate, config))(
        keys, colours, weights
    )


# --------------------------------------------------------------------------------------
# Eager API.

# Defaults chosen on CQ100 with benchmarks/sweep_defaults.py (median MSE over 40 images
# relative to scikit-learn KMeans(n_init=1), interleaved timings on 2 cores; numbers in
# docs/benchmarks.md):
# - about 16 pixels per colour and step, 512..2048: at k = 256, 2048 x 750 steps beat
#   1024 x 1500 and 4096 x 375 at the same number of samples; at k = 64, 1024 beat 512.
# - 1000 steps from k = 33 on (k = 256: 750 steps 0.9997, 1000 steps 0.9973, +40 ms);
#   500 x 512 up to k = 32, where the fixed costs dominate (k = 16: 0.9948 in 34 ms,
#   against 0.9940 in 74 ms for 1000 x 1024).
# - one Lloyd step against the rounded palette (squared loss only): 0.9973 -> 0.9962 at
#   k = 256, 0.9928 -> 0.9921 at k = 64, for 5-10 ms.
_DEFAULT_SEED_SAMPLE = 4096


def _default_num_steps(k: int) -> int:
    return 500 if k <= 32 else 1000


def _default_batch_size(k: int) -> int:
    return int(min(max(16 * k, 512), 2048))


def _default_lloyd_steps(loss_given: bool, rank: float) -> int:
    # A Lloyd step minimises the squared error: it would undo a fit of another objective.
    return 1 if not loss_given and rank == 2.0 else 0


def _finish(prep: Prepared, out: _FitOut, *, raise_on_error: bool = True) -> QuantizeResult:
    """Expand distinct-colour labels to all pixels and build the result (host side)."""
    status = int(out.status)
    if raise_on_error and status != Status.OK:
        raise FloatingPointError(
            "the fit diverged (non-finite palette); lower the learning rate "
            f"(status {Status(status).name})"
        )
    h, w, c = prep.shape
    labels = np.asarray(out.labels)
    indices = (labels[: h * w] if prep.inverse is None else labels[prep.inverse]).reshape(h, w)
    palette = np.asarray(out.palette)
    image = palette[indices]
    if prep.dtype != np.uint8:
        image = image.astype(prep.dtype)
        palette = palette.astype(prep.dtype)
    if prep.squeeze:
        image = image[:, :, 0]
    mse = float(out.mse)
    psnr = math.inf if mse <= 0 else 10.0 * math.log10(255.0**2 / mse)
    return QuantizeResult(
        image=jnp.asarray(image),
        palette=jnp.asarray(palette),
        indices=jnp.asarray(indices.astype(np.int32)),
        loss=jnp.asarray(out.loss),
        losses=jnp.asarray(out.losses),
        mse=jnp.asarray(out.mse),
        psnr=jnp.float32(psnr),
        status=jnp.asarray(out.status),
    )


_F32_MAX = float(np.finfo(np.float32).max)


def _resolve_optimizer(optimizer, learning_rate, k):
    if isinstance(optimizer, str):
        if optimizer not in _OPTIMIZERS:
            default_learning_rate(optimizer, k)  # raises the listing ValueError
        lr = default_learning_rate(optimizer, k) if learning_rate is None else learning_rate
        if not (isinstance(lr, (int, float)) and 0 < lr <= _F32_MAX):
            # Above float32's range the rate becomes inf and the fit NaN.
            raise ValueError(
                f"learning_rate must be a positive number up to {_F32_MAX:.3g} (float32), "
                f"got {learning_rate!r}"
            )
        return optimizer, float(lr)
    if isinstance(optimizer, optax.GradientTransformation):
        if learning_rate is not None:
            raise ValueError(
                "learning_rate applies to built-in optimizer names only; an optax "
                "transformation carries its own rate"
            )
        return optimizer, 0.0
    valid = ", ".join(_OPTIMIZERS)
    raise TypeError(
        f"optimizer must be a name ({valid}) or an optax.GradientTransformation, "
        f"got {type(optimizer).__name__}"
    )


def _resolve_loss(loss, rank):
    if loss is None:
        return make_power_loss(rank)
    if not callable(loss):
        raise TypeError(f"loss must be callable (the Loss protocol), got {type(loss).__name__}")
    if rank != 2.0:
        raise ValueError("pass either rank or loss, not both")
    return loss


def _config(
    k,
    *,
    num_steps,
    batch_size,
    optimizer,
    learning_rate,
    rank,
    loss,
    init,
    num_lloyd_steps,
    tol,
    lloyd_tol,
    space="rgb",
) -> tuple[_Config, float]:
    k = _checks.check_k(k)
    space = check_space(space, 3)  # the name; the image's channels are checked later
    num_steps = _default_num_steps(k) if num_steps is None else num_steps
    num_steps = _checks.check_count("num_steps", num_steps, minimum=0)
    batch_size = _default_batch_size(k) if batch_size is None else batch_size
    batch_size = _checks.check_count("batch_size", batch_size, minimum=1)
    loss_fn = _resolve_loss(loss, float(rank))
    if num_lloyd_steps is None:
        num_lloyd_steps = _default_lloyd_steps(loss is not None, float(rank))
    num_lloyd_steps = _checks.check_count("num_lloyd_steps", num_lloyd_steps, minimum=0)
    opt, lr = _resolve_optimizer(optimizer, learning_rate, k)
    for name, value in (("tol", tol), ("lloyd_tol", lloyd_tol)):
        if not (isinstance(value, (int, float)) and value >= 0):
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    config = _Config(
        k=k,
        loss=loss_fn,
        optimizer=opt,
        num_steps=num_steps,
        batch_size=batch_size,
        init=get_initializer(init),
        num_lloyd_steps=num_lloyd_steps,
        tol=float(tol),
        lloyd_tol=float(lloyd_tol),
        seed_sample_size=_DEFAULT_SEED_SAMPLE,
        space=space,
    )
    return config, lr


def quantize(
    key: jax.Array,
    image,
    k: int,
    *,
    num_steps: int | None = None,
    batch_size: int | None = None,
    optimizer: str | optax.GradientTransformation = "adam",
    learning_rate: float | None = None,
    rank: float = 2.0,
    loss: Loss | None = None,
    init: str | Initializer | Callable = "kmeans++",
    num_lloyd_steps: int | None = None,
    tol: float = 0.0,
    space: str = "rgb",
    mode: str = "vector",
) -> QuantizeResult:
    """Quantize an image to ``k`` colours by Stochastic Quantization.

    The palette starts from k-means++ on a pixel subsample, then ``num_steps`` SQ steps
    each draw ``batch_size`` pixels and move their nearest colours along the gradient of
    the objective under ``optimizer``; optional Lloyd steps polish it on all distinct
    colours. Finally every pixel is assigned its exactly nearest colour of the rounded
    palette. The cost of the fit is ``O(num_steps · batch_size · k)`` whatever the image
    size; the assignment is ``O(distinct colours · k)``.

    Compiled programs are cached per (colour-count bucket, ``k``, static options):
    a second image of similar size compiles nothing. ``learning_rate`` is traced.

    Args:
      key: a PRNG key (``jax.random.key(seed)``). Same key, same result.
      image: ``(H, W, C)`` or ``(H, W)`` array, uint8 or float in ``[0, 1]``, with 1 to 4
        channels; or a PIL image (converted to RGB or L).
      k: number of palette colours, ``>= 1``. With at least as many colours as the image
        has distinct colours the result is lossless.
      num_steps: SQ steps (default 500 up to ``k = 32``, else 1000; 0 skips SQ).
      batch_size: pixels drawn per step (default ``16k`` clipped to 512..2048).
      optimizer: a built-in name (``sgd``, ``momentum``, ``nesterov``, ``adagrad``,
        ``rmsprop``, ``adam``), each with a tuned decaying schedule, or any
        ``optax.GradientTransformation`` (used as is; create it once and reuse it, since a
        new object compiles a new program). Colours are on the ``[0, 1]`` scale.
      learning_rate: starting rate of a built-in optimizer (default: its tuned value).
      rank: exponent ``r`` of the objective ``E min_k ‖ξ − y_k‖^r`` (2 = k-means).
      loss: a custom :class:`~jaxquant.losses.Loss` instead of ``rank``.
      init: seeding: ``"kmeans++"`` (default), ``"kmeans++-d1"``, ``"random"`` or an
        :class:`~jaxquant.seeding.Initializer`.
      num_lloyd_steps: k-means (Lloyd) steps on all pixels after SQ: each assigns every
        pixel to its nearest palette colour and moves each colour to the mean of its
        pixels (for uint8 input in ``rgb``: nearest colour of the rounded palette, exact
        in integers). Default 1 for the squared loss (``rank=2``, no ``loss``), which
        removes the last SQ steps' noise for ~5% of the time; 0 otherwise, since a Lloyd
        step minimises the squared error, not another objective.
      tol: stop SQ early when the smoothed minibatch loss falls by less than this
        fraction over 20 steps (0, the default, runs every step).
      space: the colour space the palette is fitted in, one of
        :data:`jaxquant.colour.SPACES`: ``"rgb"`` (sRGB, the default and the fastest),
        ``"linear-rgb"``, ``"cielab"`` or ``"oklab"``. Colours are converted to the
        space's normalized box in ``[0, 1]^3`` (:func:`jaxquant.colour.normalize`),
        fitted there, and the palette is converted back to sRGB, clipped to the gamut
        and rounded (uint8 input); every pixel then gets the colour of that final
        palette nearest to it *in the space*. ``mse`` and ``psnr`` stay in sRGB;
        ``loss`` is the objective in the normalized space. ``cielab`` and ``oklab``
        need 3 colour channels (RGB or RGBA); ``linear-rgb`` applies the sRGB transfer
        function to each value, so it also takes grayscale. Alpha (the last of 2 or 4
        channels) is kept as one more coordinate on the same ``[0, 1]`` scale: fully
        transparent vs opaque weighs like black vs white in ``rgb``, and like a
        distance of 220 ``ΔE*ab`` in ``cielab`` (the box's side).
      mode: ``"vector"`` (colours as points, the default), ``"channel"`` (``k``
        intensity levels per channel) or ``"global"`` (``k`` levels shared by all
        channels); see :func:`jaxquant._modes.quantize_mode` for the result's layout
        in each mode. ``channel`` and ``global`` take ``space`` ``"rgb"`` or
        ``"linear-rgb"`` only (without alpha for ``linear-rgb``).

    Returns:
      A :class:`QuantizeResult`.

    Raises:
      TypeError, ValueError: for invalid arguments or images (NaN, out-of-range floats).
      FloatingPointError: if the fit diverged.

    Examples:
      >>> import jax, numpy as np
      >>> import jaxquant
      >>> image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
      >>> result = jaxquant.quantize(jax.random.key(0), image, 16)
      >>> result.image.shape, result.image.dtype, result.palette.shape
      ((32, 48, 3), dtype('uint8'), (16, 3))
      >>> bool(result.psnr > 15)
      True
      >>> lab = jaxquant.quantize(jax.random.key(0), image, 16, space="cielab")
      >>> lab.palette.dtype, lab.image.shape
      (dtype('uint8'), (32, 48, 3))
    """
    if not isinstance(mode, str) or mode not in _modes.MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(_modes.MODES)}")
    options = dict(
        num_steps=num_steps,
        batch_size=batch_size,
        optimizer=optimizer,
        learning_rate=learning_rate,
        rank=rank,
        loss=loss,
        init=init,
        num_lloyd_steps=num_lloyd_steps,
        tol=tol,
        space=space,
    )
    if mode != "vector":
        channels = _checks.as_image_array(image).shape[2]
        check_space(space, channels, mode)
        return _modes.quantize_mode(key, image, k, mode=mode, **options)
    key = _checks.check_key(key)
    config, lr = _config(k, lloyd_tol=0.0, **options)
    prep = prepare(image, config.k)
    check_space(config.space, prep.shape[2])
    config = dataclasses.replace(config, uniform=prep.inverse is None)
    out = _fit(key, prep.colours, prep.weights, jnp.float32(lr), config=config)
    return _finish(prep, out)


def kmeans(
    key: jax.Array,
    image,
    k: int,
    *,
    num_steps: int = 300,
    tol: float = 1e-4,
    init: str | Initializer | Callable = "kmeans++",
) -> QuantizeResult:
    """Lloyd's k-means on all pixels, the baseline SQ is measured against.

    Same seeding, deduplication, rounding, assignment and result as :func:`quantize`,
    but the palette is refined by exact Lloyd iterations on every distinct colour
    (weighted by its count) until the loss falls by less than ``tol`` (relative) or
    ``num_steps`` iterations ran. Each iteration costs ``O(distinct colours · k)``.

    Args:
      key: a PRNG key.
      image: as for :func:`quantize`.
      k: number of colours.
      num_steps: maximum Lloyd iterations.
      tol: relative loss decrease below which iteration stops.
      init: seeding, as for :func:`quantize`.

    Returns:
      A :class:`QuantizeResult`; ``losses`` holds the loss before each iteration (the
      iterations after convergence repeat the last value).

    Examples:
      >>> import jax, numpy as np
      >>> import jaxquant
      >>> image = np.zeros((4, 4, 3), np.uint8); image[2:] = 200
      >>> r = jaxquant.kmeans(jax.random.key(0), image, 2)
      >>> float(r.mse)
      0.0
    """
    key = _checks.check_key(key)
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be a number >= 0, got {tol!r}")
    config, _ = _config(
        k,
        num_steps=0,
        batch_size=None,
        optimizer="adam",
        learning_rate=None,
        rank=2.0,
        loss=None,
        init=init,
        num_lloyd_steps=num_steps,
        tol=0.0,
        lloyd_tol=tol,
    )
    prep = prepare(image)  # Lloyd iterates over all colours: deduplication always pays
    out = _fit(key, prep.colours, prep.weights, jnp.float32(0.0), config=config)
    return _finish(prep, out)


def paper_options(num_pixels: int) -> dict[str, Any]:
    """Options reproducing the SQ authors' reference algorithm with :func:`quantize`.

    Rank 3, one pixel per step, constant SGD rate 1e-3 on ``[0, 1]`` colours, one pass
    (``num_pixels`` steps), k-means++ with D¹ sampling and one trial, no Lloyd polish.
    Use it to compare the paper's configuration with the defaults:
    ``quantize(key, image, k, **paper_options(h * w))``.

    Args:
      num_pixels: pixels in the image (the length of one pass).

    Returns:
      Keyword arguments for :func:`quantize`.
    """
    return dict(
        rank=3.0,
        batch_size=1,
        num_steps=int(num_pixels),
        optimizer=_PAPER_SGD,
        init="kmeans++-d1",
        num_lloyd_steps=0,
    )


_PAPER_SGD = optax.sgd(1e-3)
