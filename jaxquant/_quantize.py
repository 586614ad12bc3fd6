"""``quantize`` and ``kmeans``: fit a palette and remap an image, with host-side speed-ups.

``quantize(key, image, k)`` is ``remap(image, fit_palette(key, image, k).palette)``
plus what only the host can do, which is why it is not traceable (use
:func:`~jaxquant.fit_palette` and :func:`~jaxquant.remap` inside ``jit``):

- images that may have at most ``k`` colours are deduplicated (a probe of 16k pixels
  says so), and one that does have at most ``k`` is returned losslessly at once, for
  any ``k``, without compiling;
- colour sets are padded to size buckets, so images of similar sizes share programs;
- a diverged fit raises ``FloatingPointError``;
- ``channel`` and ``global`` modes split the image into 1-D problems
  (:mod:`jaxquant._modes`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxquant import _checks, _modes
from jaxquant._fit import FitOptions, fit_palette, is_lossless, lossless_fit
from jaxquant._remap import QuantizeResult, build_result, check_dither, remap, remap_colour_set
from jaxquant.dither import check_runs
from jaxquant.problem import ColourSet, has_few_colours
from jaxquant.solvers import Lloyd, Status

__all__ = [
    "Prepared",
    "kmeans",
    "lossless_result",
    "paper_options",
    "prepare",
    "quantize",
    "quantize_prepared",
]


@dataclasses.dataclass(frozen=True)
class Prepared:
    """An image made ready for the fit on the host."""

    image: np.ndarray  # (H, W, C) validated
    problem: ColourSet
    inverse: np.ndarray | None  # pixel -> row of a deduplicated set; None: pixel i is row i
    squeeze: bool  # the input was (H, W)

    def lossless(self, k: int, fixed=()) -> bool:
        """Whether the image's distinct colours, with the ``fixed`` ones, fit in ``k``
        entries (known after dedup)."""
        return self.inverse is not None and is_lossless(self.problem, k, fixed)


def prepare(image, k: int, options: FitOptions) -> Prepared:
    """Validate an image and build its colour set (host side).

    The pixels are deduplicated into distinct colours with counts when the solver gains
    from it (Lloyd iterates over all rows) and when the image may have no more than ``k``
    distinct colours, so that the lossless shortcut sees the true distinct count.
    Otherwise every pixel is its own row of weight 1 and SQ samples rows uniformly:
    deduplicating a photo costs 35-70 ms, more than it saves at any ``k`` up to 1024 on
    CQ100 (0.28 vs 0.16 s at k = 256).
    """
    squeeze = not hasattr(image, "mode") and np.ndim(image) == 2
    arr = _checks.as_image_array(image)
    space = options.space or "rgb"
    if getattr(options.solver, "deduplicate", False) or has_few_colours(arr, k):
        problem, inverse = ColourSet.deduplicated(arr, space=space)
        return Prepared(arr, problem, inverse, squeeze)
    return Prepared(arr, ColourSet.from_image(arr, space=space), None, squeeze)


def lossless_result(prep: Prepared, k: int, fixed=()) -> QuantizeResult:
    """The exact result of an image whose distinct colours, with the ``fixed`` ones, fit
    in ``k`` entries (:meth:`Prepared.lossless`; host side)."""
    palette = np.asarray(lossless_fit(prep.problem, k, fixed).palette)
    assert prep.inverse is not None
    indices = prep.inverse
    if fixed:  # the rows moved behind the fixed colours: find each row's entry
        indices = _entries_of(np.asarray(prep.problem.colours), palette)[prep.inverse]
    # Measured in the dtype the result has (float64 comes back as float32 unless x64).
    dtype = jax.dtypes.canonicalize_dtype(prep.image.dtype)
    out = palette[indices].reshape(prep.image.shape).astype(dtype)
    scale = 1.0 if dtype == np.uint8 else 255.0
    diff = (out.astype(np.float64) - prep.image.astype(dtype).astype(np.float64)) * scale
    mse = np.float32(np.mean(diff**2))
    return build_result(
        indices,
        palette,
        mse,
        np.float32(mse / 255.0**2 * prep.image.shape[2]),
        np.int32(Status.OK),
        shape=prep.image.shape,
        dtype=prep.image.dtype,
        squeeze=prep.squeeze,
    )


def _entries_of(rows: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """For each row, the first palette entry equal to it (every row must have one)."""
    both = np.concatenate([palette.astype(rows.dtype), rows])
    _, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    first = np.zeros(inverse.max() + 1, np.int64)
    k = len(palette)
    first[inverse[:k][::-1]] = np.arange(k)[::-1]  # the last write wins: the first entry
    return first[inverse[k:]].astype(np.int32)


def _refuse_traced(key, image) -> None:
    if _checks.is_traced(key) or _checks.is_traced(image):
        raise TypeError(
            "quantize is not traceable (it deduplicates colours and checks the fit on the "
            "host); inside jit or vmap use "
            "jaxquant.remap(image, jaxquant.fit_palette(key, image, k).palette)"
        )


def quantize(
    key: jax.Array,
    image,
    k: int | None = None,
    *,
    mode: str = "vector",
    dither: str = "none",
    dither_level: float | None = None,
    runs: float = 0.0,
    **options: Any,
):
    """Quantize an image to ``k`` colours by Stochastic Quantization.

    The palette starts from k-means++ on a pixel subsample, then ``num_steps`` SQ steps
    each draw ``batch_size`` pixels and move their nearest colours along the gradient of
    the objective under ``optimizer``; a Lloyd step polishes it on all pixels. Finally
    every pixel is assigned its exactly nearest colour of the rounded palette. The cost of
    the fit is ``O(num_steps · batch_size · k)`` whatever the image size; the assignment
    is ``O(pixels · k)``.

    This is ``remap(image, fit_palette(key, image, k, **options).palette)`` with the
    fit's loss trace and status, and host-side speed-ups: not traceable (see
    :func:`~jaxquant.fit_palette` and :func:`~jaxquant.remap` for ``jit`` and ``vmap``).
    Compiled programs are cached per (colour-count bucket, ``k``, static options): a
    second image of similar size compiles nothing. ``learning_rate`` is traced.

    Args:
      key: a PRNG key (``jax.random.key(seed)``). Same key, same result.
      image: ``(H, W, C)`` or ``(H, W)`` array, uint8 or float in ``[0, 1]``, with 1 to 4
        channels; or a PIL image (converted to RGB or L).
      k: number of palette colours, ``1 <= k <= 2^24``. With at least as many colours
        as the image has distinct colours the result is lossless (and immediate).
      mode: ``"vector"`` (colours as points, the default), ``"channel"`` (``k``
        intensity levels per channel) or ``"global"`` (``k`` levels shared by all
        channels); see :mod:`jaxquant._modes` for the result's layout in each mode.
        ``channel`` and ``global`` take ``space`` ``"rgb"`` or ``"linear-rgb"`` only
        (without alpha for ``linear-rgb``).
      dither, dither_level, runs: how pixels take the fitted colours, as for
        :func:`~jaxquant.remap` (default: the exactly nearest colour).
      **options: the fitting options (:meth:`jaxquant.FitOptions.make`):

        - ``solver``: a solver value (default ``SQ(...)`` of the shorthand below;
          :class:`~jaxquant.solvers.Lloyd` for k-means);
        - ``init``: seeding, ``"kmeans++"`` (default), ``"kmeans++-d1"``, ``"random"``
          or an :class:`~jaxquant.seeding.Initializer`;
        - ``space``: the colour space the palette is fitted in, one of
          :data:`jaxquant.colour.SPACES`: ``"rgb"`` (sRGB, the default and the fastest),
          ``"linear-rgb"``, ``"cielab"`` or ``"oklab"``. Colours are converted to the
          space's normalized box in ``[0, 1]^3`` (:func:`jaxquant.colour.normalize`),
          fitted there, and the palette is converted back to sRGB, clipped to the gamut
          and rounded (uint8 input); every pixel then gets the colour of that final
          palette nearest to it *in the space*. ``mse`` and ``psnr`` stay in sRGB;
          ``loss`` is the objective in the normalized space. ``cielab`` and ``oklab``
          need 3 colour channels (RGB or RGBA); ``linear-rgb`` applies the sRGB transfer
          function to each value, so it also takes grayscale. Alpha (the last of 2 or 4
          channels) is one more coordinate on the same ``[0, 1]`` scale;
        - the :class:`~jaxquant.solvers.SQ` shorthand: ``num_steps`` (default 500 up to
          ``k = 32``, else 750), ``batch_size`` (default ``16k`` in 512..2048),
          ``optimizer`` (``sgd``, ``momentum``, ``nesterov``, ``adagrad``, ``rmsprop``,
          ``adam`` (default), or any ``optax.GradientTransformation``),
          ``learning_rate`` (default: tuned), ``rank`` (exponent ``r`` of
          ``E min_k ‖ξ − y_k‖^r``, 2 = k-means), ``loss`` (a custom
          :class:`~jaxquant.losses.Loss`), ``tol`` (early stop), ``num_lloyd_steps``
          (default 1 for the squared loss), ``layout``.

    Returns:
      A :class:`QuantizeResult`.

    Raises:
      TypeError, ValueError: for invalid arguments or images (NaN, out-of-range floats),
        and for traced arguments.
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
    _refuse_traced(key, image)
    key = _checks.check_key(key)  # first: quantize(image, 64) says what goes where
    if k is None:
        raise TypeError("quantize(key, image, k) needs k, the number of palette colours")
    opts = FitOptions.make(k, **options)
    method, level = check_dither(dither, dither_level)
    runs = check_runs(runs)
    if runs and method != "none":
        raise ValueError(f"runs={runs:g} applies without dithering (dither='none')")
    squeeze = not hasattr(image, "mode") and np.ndim(image) == 2
    arr = _checks.as_image_array(image)
    mode = _modes.check_mode(mode, opts.space, arr.shape[2])
    if mode != "vector":
        if opts.fixed:
            raise ValueError("fixed colours need mode 'vector' (a palette of colours)")
        if method != "none":
            raise ValueError(f"dither={dither!r} needs mode 'vector' (a palette of colours)")
        if runs:
            raise ValueError("runs needs mode 'vector' (a palette of colours)")
        parts = [quantize(kj, part, k, **options) for kj, part in _modes.split(key, arr, mode)]
        return _modes.combine(arr, mode, parts, squeeze=squeeze)
    prep = prepare(arr[:, :, 0] if squeeze else arr, k, opts)
    if prep.lossless(k, opts.fixed):
        return lossless_result(prep, k, opts.fixed)
    return quantize_prepared(
        key, prep, k, opts, check=True, dither=method, dither_level=level, runs=runs
    )


def quantize_pil(
    image,
    colors: int = 256,
    *,
    seed: int = 0,
    dither: str = "none",
    dither_level: float | None = None,
    runs: float = 0.0,
    **options: Any,
):
    """Pillow's ``im.quantize(colors)``, by SQ: a PIL image in, a mode ``P`` image out.

    ``quantize(jax.random.key(seed), image, colors, ...).to_pil()``
    (:meth:`QuantizeResult.to_pil`). The key-first :func:`quantize` stays the primary
    call (it returns the palette, indices, MSE and fit trace too); this one is for code
    written against Pillow. The key is fixed by ``seed`` (default 0): the same image and
    arguments give the same palette every time, as Pillow's own quantizers do.

    Args:
      image: a PIL image (any mode :func:`jaxquant.io.load_image` reads: alpha is kept
        as per-entry transparency) or an ``(H, W, C)`` / ``(H, W)`` array.
      colors: palette size, 1 to 256 (what a mode ``P`` image holds).
      seed: the PRNG seed.
      dither, dither_level, runs: as for :func:`~jaxquant.remap` (default: the exactly
        nearest colour; Pillow dithers only when converting to a given palette).
      **options: the fitting options of :func:`quantize` (``space``, ``num_steps``...).

    Returns:
      A ``PIL.Image.Image`` of mode ``P`` with ``colors`` palette entries (RGBA entries
      for an image with alpha).

    Examples:
      >>> import numpy as np
      >>> from PIL import Image
      >>> import jaxquant
      >>> rgb = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
      >>> im = jaxquant.quantize_pil(Image.fromarray(rgb), 16)
      >>> im.mode, im.size, len(im.getpalette()) // 3
      ('P', (48, 32), 16)
      >>> np.array_equal(np.asarray(im), np.asarray(jaxquant.quantize_pil(rgb, 16)))
      True
    """
    if isinstance(colors, bool) or not isinstance(colors, (int, np.integer)):
        raise TypeError(f"colors must be an integer, got {type(colors).__name__}")
    if not 1 <= colors <= 256:
        raise ValueError(
            f"colors must be in 1..256 (a mode P image holds 256 at most), got {colors}; "
            "use jaxquant.quantize for more"
        )
    key = _checks.seed_key(seed)
    result = quantize(
        key, image, int(colors), dither=dither, dither_level=dither_level, runs=runs, **options
    )
    return result.to_pil()


def quantize_prepared(
    key: jax.Array,
    prep: Prepared,
    k: int,
    opts: FitOptions,
    *,
    check: bool,
    dither: str = "none",
    dither_level: float = 0.0,
    runs: float = 0.0,
) -> QuantizeResult:
    """Fit and remap one prepared image; ``check`` raises for a diverged fit."""
    fit = fit_palette(key, prep.problem, k, **opts.kwargs())
    status = int(fit.status)
    if check and status != Status.OK:
        raise FloatingPointError(
            "the fit diverged (non-finite palette); lower the learning rate "
            f"(status {Status(status).name})"
        )
    squeeze = prep.squeeze
    loss = getattr(opts.solver, "objective", None)
    layout = getattr(opts.solver, "layout", None)
    level = dither_level if dither != "none" else None
    if prep.inverse is None:
        # The fitted set has one row per pixel: map it, rather than let remap build the
        # same set again (a 12 MP photo's padded rows and weights: 88 MB).
        method, level = check_dither(dither, level)
        mapping = functools.partial(
            remap_colour_set,
            prep.problem,
            shape=_checks.check_image_shape(tuple(prep.image.shape)),
            squeeze=squeeze,
            dtype=np.dtype(prep.image.dtype),
            loss=loss,
            layout=layout,
            method=method,
            level=level,
            runs=check_runs(runs),
        )
    else:
        mapping = functools.partial(
            remap,
            prep.image[:, :, 0] if squeeze else prep.image,
            space=prep.problem.space,
            loss=loss,
            layout=layout,
            dither=dither,
            dither_level=level,
            runs=runs,
        )
    result = mapping(fit.palette)
    if dither == "none" and not runs and not prep.problem.alpha:
        result = _use_every_entry(prep.image, result, mapping, len(opts.fixed))
    return result._replace(losses=fit.losses, status=jnp.asarray(fit.status, jnp.int32))


# Rounds of _use_every_entry: each remaps once; one nearly always suffices.
_FILL_ROUNDS = 3


def _use_every_entry(image: np.ndarray, result: QuantizeResult, mapping, fixed: int):
    """``result`` with no palette entry left without pixels, where the image allows.

    The fit relocates entries that lose their colours, but its last Lloyd step can still
    empty one (rarely: 1 of 25,600 entries over CQ100 at K = 256). Here each unused entry
    (not a ``fixed`` one) moves onto the worst-served pixel colour, the farthest from
    the palette and from the entries moved before it, and the image is mapped again
    (``mapping(palette)``): that pixel then has its own colour. Costs one
    ``np.bincount`` when every entry is used.
    """
    for _ in range(_FILL_ROUNDS):
        palette = np.asarray(result.palette)
        idx = np.asarray(result.indices).reshape(-1)
        unused = np.flatnonzero(np.bincount(idx, minlength=len(palette)) == 0)
        unused = unused[unused >= fixed]
        if not unused.size:
            return result
        pixels = image.reshape(-1, image.shape[-1]).astype(np.float64)
        err = np.sum((pixels - palette[idx].astype(np.float64)) ** 2, axis=1)
        take = min(err.size, 64 * unused.size)
        cand = pixels[np.argpartition(err, err.size - take)[err.size - take :]]
        far = np.sum((cand[:, None, :] - palette[None].astype(np.float64)) ** 2, axis=2).min(1)
        new = palette.copy()
        moved = False
        for entry in unused:
            j = int(np.argmax(far))
            if far[j] <= 0:
                break
            new[entry] = cand[j].astype(palette.dtype)
            far = np.minimum(far, np.sum((cand - cand[j]) ** 2, axis=1))
            moved = True
        if not moved:
            return result
        result = mapping(new)
    return result


def kmeans(
    key: jax.Array,
    image,
    k: int,
    *,
    num_steps: int = 300,
    tol: float = 1e-4,
    init: Any = "kmeans++",
) -> QuantizeResult:
    """Lloyd's k-means on all pixels, the baseline SQ is measured against.

    ``quantize(key, image, k, solver=Lloyd(num_steps, tol), init=init)``: the same
    seeding, rounding, assignment and result as :func:`quantize`, but the palette is
    refined by exact Lloyd iterations on every distinct colour (weighted by its count)
    until the loss falls by less than ``tol`` (relative) or ``num_steps`` iterations
    ran. Each iteration costs ``O(distinct colours · k)``.

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
    return quantize(key, image, k, solver=Lloyd(num_steps=num_steps, tol=tol), init=init)


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
        optimizer=_paper_sgd(),
        init="kmeans++-d1",
        num_lloyd_steps=0,
    )


@functools.cache
def _paper_sgd():
    """One ``optax.sgd(1e-3)`` for every call, so their fits share compiled programs."""
    import optax

    return optax.sgd(1e-3)
