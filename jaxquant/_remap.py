"""``remap``: every pixel to its exactly nearest colour of a given palette; the result type.

Traceable: the assignment of a colour set (:func:`assign_colour_set`) is one compiled
program per (bucket, palette size, options), and :func:`remap` builds the image around
it, with NumPy on the host for concrete input and with ``jax.numpy`` under a trace.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxquant import _checks, _names, _ops, dither, kernels
from jaxquant._cache import StoredProgram
from jaxquant.dither import check_runs
from jaxquant.losses import Loss
from jaxquant.problem import ColourSet
from jaxquant.solvers import Status

__all__ = [
    "QuantizeResult",
    "assign_colour_set",
    "check_dither",
    "opacity_groups",
    "remap",
    "remap_colour_set",
    "score_labels",
]


class QuantizeResult(NamedTuple):
    """A quantized image (a pytree: ``vmap`` batches it).

    Attributes:
      image: the quantized image, same shape and dtype as the input (uint8 for uint8 and
        PIL input; float in ``[0, 1]`` for float input).
      palette: ``(k, c)`` palette: uint8 (rounded, never truncated) for uint8 input, float
        otherwise. Rows may repeat when the image has fewer than ``k`` distinct colours.
      indices: ``(H, W)`` int32 index of every pixel's palette colour; every pixel gets
        its exactly nearest (ties: lowest index) colour of the returned palette.
      loss: the objective ``F(palette)`` over all pixels on the ``[0, 1]`` colour scale
        (for ``space`` other than ``rgb``: in that space's normalized coordinates).
      losses: the trace of the fit: minibatch losses of the SQ steps (for Lloyd, the full
        loss before each step); empty for :func:`remap` and lossless results.
      mse: mean over pixels and channels of the squared error on the 0..255 scale.
      psnr: peak signal-to-noise ratio in dB, ``10·log10(255² / mse)`` (inf if lossless).
      status: a :class:`~jaxquant.solvers.Status` code (0 = OK).
    """

    image: Any
    palette: Any
    indices: Any
    loss: Any
    losses: Any
    mse: Any
    psnr: Any
    status: Any

    def to_pil(self):
        """The quantized image as an indexed (mode ``P``) PIL image: ``indices`` and
        ``palette`` (:func:`jaxquant.io.to_pil`; 4-channel palettes carry per-entry
        transparency). For one image of ``mode="vector"`` with at most 256 colours.

        Examples:
          >>> import jax, numpy as np, jaxquant
          >>> image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), np.uint8)
          >>> im = jaxquant.quantize(jax.random.key(0), image, 4).to_pil()
          >>> im.mode, im.size
          ('P', (8, 8))
        """
        from jaxquant import io

        indices = np.asarray(self.indices)
        if indices.ndim != 2:
            raise ValueError(
                f"to_pil needs one palette index per pixel, (H, W); these indices have "
                f"shape {indices.shape} (a batch: take one image's result; mode 'channel' "
                "or 'global': save .image instead)"
            )
        return io.to_pil(indices, self.palette)


def _objective(loss: Loss | None, palette_s, coordinates, weights, sq_dist, scale):
    """F(palette) over all rows; from the assignment's distances for power losses."""
    w = weights.astype(jnp.float32)
    total = jnp.maximum(jnp.sum(w), 1e-30)
    rank = 2.0 if loss is None else getattr(loss, "rank", None)
    if rank is not None:
        d = sq_dist.astype(jnp.float32) / scale
        per = d if rank == 2.0 else _ops.safe_pow(d, rank / 2)
        return jnp.sum(w * per) / total
    assert loss is not None  # a loss without a rank attribute  # noqa: S101
    x = coordinates()
    chunk = _ops.chunk_rows(x.shape[0], kernels.CHUNK_SIZE)
    parts = jax.lax.map(
        lambda a: loss(palette_s, a[0], a[1]) * jnp.sum(a[1]),
        (_ops.in_chunks(x, chunk), _ops.in_chunks(w, chunk)),  # padding rows: weight 0
    )
    return jnp.sum(parts) / total


def assign_colour_set(
    problem: ColourSet,
    palette: jax.Array,
    *,
    loss: Loss | None = None,
    layout: str | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Assign every row of a colour set to its exactly nearest palette colour (traceable).

    The search runs in the set's space: uint8 colours and a uint8 palette in ``"rgb"``
    in exact integers; otherwise on float coordinates, with the palette converted to
    the space (so the labels are exact for the palette as given). For a set with alpha
    the coordinates are premultiplied, and opacity stays exact: a fully opaque row takes
    a fully opaque entry, a fully transparent row a fully transparent entry, whenever
    the palette has one.

    Args:
      problem: the colour set.
      palette: ``(k, c)`` colours of the set's type (uint8 for a uint8 set, floats in
        ``[0, 1]`` otherwise), sRGB.
      loss: the objective reported (default: the squared loss).
      layout: the nearest-colour search (:data:`jaxquant.kernels.LAYOUTS`).

    Returns:
      ``(labels, mse, loss)``: ``(n,)`` int32 labels of every row (padding included),
      the weighted MSE over channels on the 0..255 scale (in sRGB), and the objective in
      the set's normalized coordinates.
    """
    colours = jnp.asarray(problem.colours)
    w = jnp.asarray(problem.weights, jnp.float32)
    total = jnp.maximum(jnp.sum(w), 1e-30)
    c = problem.channels
    if problem.space == "rgb" and not problem.alpha:
        if problem.integer:
            labels, sq = kernels.assign(colours, palette, layout=layout)
            scale = 255.0**2
            palette_s = palette.astype(jnp.float32) / 255.0
        else:
            palette_s = palette.astype(jnp.float32)
            labels, sq = kernels.assign(problem.coordinates(), palette_s, layout=layout)
            scale = 1.0
        value = _objective(loss, palette_s, problem.coordinates, w, sq, scale)
        mse = jnp.sum(w * sq.astype(jnp.float32)) / total / c * (255.0**2 / scale)
        return labels, mse, value
    palette_s = problem.palette_coordinates(palette)
    x = problem.coordinates()
    if problem.alpha:
        labels = _assign_by_opacity(problem, palette, x, palette_s, layout)
        diff = x - palette_s[labels]
        sq_s = jnp.sum(diff * diff, axis=1)
    else:
        labels, sq_s = kernels.assign(x, palette_s, layout=layout)
    value = _objective(loss, palette_s, problem.coordinates, w, sq_s, 1.0)
    # mse stays in sRGB, on the 0..255 scale, whatever the space of the fit.
    if problem.integer:
        err = colours.astype(jnp.int32) - palette[labels].astype(jnp.int32)
        sq_rgb = jnp.sum(err * err, axis=1).astype(jnp.float32)
    else:
        err = (colours.astype(jnp.float32) - palette[labels].astype(jnp.float32)) * 255.0
        sq_rgb = jnp.sum(err * err, axis=1)
    return labels, jnp.sum(w * sq_rgb) / total / c, value


def _assign_by_opacity(problem: ColourSet, palette, x, palette_s, layout):
    """Nearest colours (premultiplied) with opacity kept exact: fully opaque rows take a
    fully opaque entry and fully transparent rows a fully transparent one, whenever the
    palette has such an entry; translucent rows take the nearest of all."""
    full = 255 if problem.integer else 1.0
    row_alpha = jnp.asarray(problem.colours)[:, -1]
    entry_alpha = palette[:, -1]
    # Entries of another class are moved far away (coordinates are within [0, 1]).
    far = jnp.asarray(1e6, palette_s.dtype)

    def among(mask):
        return kernels.assign(x, jnp.where(mask[:, None], palette_s, far), layout=layout)[0]

    every = kernels.assign(x, palette_s, layout=layout)[0]
    opaque, clear = entry_alpha == full, entry_alpha == 0
    labels = jnp.where((row_alpha == 0) & jnp.any(clear), among(clear), every)
    return jnp.where((row_alpha == full) & jnp.any(opaque), among(opaque), labels)


_assign_jit = StoredProgram(assign_colour_set, static_argnames=("loss", "layout"))


def score_labels(
    problem: ColourSet, palette: jax.Array, labels: jax.Array, *, loss: Loss | None = None
) -> tuple[jax.Array, jax.Array]:
    """``(mse, loss)`` of a given assignment (e.g. a dithered one), as
    :func:`assign_colour_set` reports them for its own (traceable)."""
    colours = jnp.asarray(problem.colours)
    w = jnp.asarray(problem.weights, jnp.float32)
    total = jnp.maximum(jnp.sum(w), 1e-30)
    palette_s = problem.palette_coordinates(palette)
    diff = problem.coordinates() - palette_s[labels]
    value = _objective(loss, palette_s, problem.coordinates, w, jnp.sum(diff * diff, axis=1), 1.0)
    if problem.integer:
        err = colours.astype(jnp.int32) - palette[labels].astype(jnp.int32)
        sq_rgb = jnp.sum(err * err, axis=1).astype(jnp.float32)
    else:
        err = (colours.astype(jnp.float32) - palette[labels].astype(jnp.float32)) * 255.0
        sq_rgb = jnp.sum(err * err, axis=1)
    return jnp.sum(w * sq_rgb) / total / problem.channels, value


def check_dither(dither_name: str, level) -> tuple[str, float]:
    """A dithering method and level, checked: ``None`` is the method's default level
    (:data:`jaxquant.dither.LEVELS`), and level 0 is ``"none"``."""
    _checks.check_choice("dither", dither_name, _names.DITHERS)
    if dither_name == "none":
        if level is not None:
            dither.check_level(level)
        return "none", 0.0
    level = dither.check_level(dither.LEVELS[dither_name] if level is None else level)
    return ("none" if level == 0 else dither_name), level


def opacity_groups(problem: ColourSet, palette, shape) -> tuple[jax.Array, jax.Array]:
    """Pixel and entry groups that keep opacity exact while dithering (see
    :func:`assign_colour_set`): opaque pixels take opaque entries and transparent pixels
    transparent ones when the palette has such entries; translucent pixels any entry."""
    full = 255 if problem.integer else 1.0
    h, w = shape
    row_alpha = jnp.asarray(problem.colours)[: h * w, -1].reshape(h, w)
    entry_alpha = jnp.asarray(palette)[:, -1]
    opaque, clear = entry_alpha == full, entry_alpha == 0
    entry = jnp.where(opaque, 1, jnp.where(clear, 0, 2)).astype(jnp.int32)
    pixel = jnp.where((row_alpha == full) & jnp.any(opaque), 1, -1)
    pixel = jnp.where((row_alpha == 0) & jnp.any(clear), 0, pixel).astype(jnp.int32)
    return pixel, entry


def _dithered(problem: ColourSet, palette, labels, shape, *, method, level, loss):
    """Labels of every row with the image's pixels dithered, and their (mse, loss)."""
    h, w = shape
    x = problem.coordinates()[: h * w].reshape(h, w, -1)
    palette_s = problem.palette_coordinates(palette)
    near = labels[: h * w].reshape(h, w)
    groups, entry_groups = (None, None)
    if problem.alpha:
        groups, entry_groups = opacity_groups(problem, palette, shape)
    if method == "runs":
        out = dither.favour_runs(
            x,
            palette_s,
            near,
            level=level,
            weights=jnp.asarray(problem.weights, jnp.float32)[: h * w].reshape(h, w),
            palette_groups=entry_groups,
        )
    elif method == "fs":
        out = dither.error_diffusion(
            x,
            palette_s,
            level=level,
            weights=dither.edge_weights(x),
            nearest=near,
            groups=groups,
            palette_groups=entry_groups,
        )
    else:
        out = dither.ordered(
            x, palette_s, level=level, nearest=near, groups=groups, palette_groups=entry_groups
        )
    labels = jnp.concatenate([out.reshape(-1), labels[h * w :]])
    mse, value = score_labels(problem, palette, labels, loss=loss)
    return labels, mse, value


_dithered_jit = StoredProgram(_dithered, static_argnames=("shape", "method", "level", "loss"))


def _palette_for(problem: ColourSet, palette) -> Any:
    """A palette converted to the set's colour type, with its shape checked."""
    traced = _checks.is_traced(palette)
    p = palette if traced else np.asarray(palette)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] != problem.channels:
        raise ValueError(
            f"palette must have shape (k, {problem.channels}) for colours of "
            f"{problem.channels} channel(s), got {p.shape}"
        )
    dtype = np.dtype(p.dtype)
    if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
        raise TypeError(f"palette must be uint8 or float (in [0, 1]), got dtype {dtype}")
    if not traced and dtype != np.uint8:
        if not (np.all(np.isfinite(p)) and p.min() >= 0 and p.max() <= 1):
            raise ValueError("a float palette must be finite, with values in [0, 1]")
    xp: Any = jnp if traced else np
    if problem.integer and dtype != np.uint8:
        p = xp.round(xp.clip(p.astype(xp.float32), 0.0, 1.0) * 255.0).astype(xp.uint8)
    elif not problem.integer:
        p = p.astype(xp.float32) / 255.0 if dtype == np.uint8 else p.astype(xp.float32)
    return p


def remap(
    image,
    palette,
    *,
    space: str | None = None,
    loss: Loss | None = None,
    layout: str | None = None,
    dither: str = "none",
    dither_level: float | None = None,
    runs: float = 0.0,
) -> QuantizeResult:
    """Map every pixel of an image to its exactly nearest colour of ``palette``, or dither.

    Traceable: works under ``jax.jit`` and ``jax.vmap`` (over a stack of images of one
    shape, or of palettes). Eagerly, images are padded to a size bucket so that images
    of similar sizes share one compiled program.

    With ``dither`` the pixels take the colours a dithering picks instead
    (:mod:`jaxquant.dither`): ``"fs"`` Floyd-Steinberg error diffusion (with less
    diffusion on edges, :func:`~jaxquant.dither.edge_weights`) or ``"ordered"``
    (blue-noise thresholds). The MSE grows, but smooth gradients lose their bands.
    Opacity stays exact as without dithering.

    Args:
      image: ``(H, W, C)`` or ``(H, W)`` array, uint8 or float in ``[0, 1]``, 1-4
        channels; a PIL image; or a :class:`~jaxquant.problem.ColourSet` (then the
        result has one row per row of the set, padding included: ``image`` ``(n, c)``,
        ``indices`` ``(n,)``, and the MSE is weighted).
      palette: ``(k, C)`` colours, uint8 or float in ``[0, 1]`` (sRGB); converted to the
        image's type (a float palette is rounded to uint8 for a uint8 image).
      space: the colour space in which "nearest" is measured (default ``"rgb"``, or a
        colour set's own); :data:`jaxquant.colour.SPACES`.
      loss: the objective reported as ``loss`` (default: the squared loss).
      layout: the nearest-colour search (:data:`jaxquant.kernels.LAYOUTS`).
      dither: ``"none"`` (the default), ``"fs"`` or ``"ordered"``
        (:data:`jaxquant.dither.DITHERS`); images only, not colour sets.
      dither_level: strength in ``[0, 1]`` (0 is the same as ``"none"``; default: the
        method's tuned level, :data:`jaxquant.dither.LEVELS`: 0.85 for ``"fs"``, 1 for
        ``"ordered"``).
      runs: in ``[0, 4]``; above 0, a pixel keeps its left neighbour's colour when that
        costs at most ``runs`` times the image's mean nearest-colour error more
        (:func:`jaxquant.dither.favour_runs`): smaller PNG and GIF files for a little
        more MSE. Images without dithering only; 0 (the default) is the exact nearest
        colour. The command line uses 1.

    Returns:
      A :class:`QuantizeResult` (``losses`` is empty; ``status`` is OK unless the palette
      has non-finite values); ``mse``, ``psnr`` and ``loss`` are those of the image
      returned, dithered or not.

    Examples:
      >>> import numpy as np, jaxquant
      >>> image = np.array([[[0, 0, 0], [250, 250, 250]]], np.uint8)
      >>> r = jaxquant.remap(image, np.array([[255, 255, 255], [1, 2, 3]], np.uint8))
      >>> r.indices.tolist(), r.image[0, 1].tolist(), round(float(r.mse), 2)
      ([[1, 0]], [255, 255, 255], 14.83)
      >>> ramp = np.repeat(np.linspace(0, 255, 64).astype(np.uint8)[None, :, None], 16, 0)
      >>> two = np.array([[0], [255]], np.uint8)
      >>> plain, fs = jaxquant.remap(ramp, two), jaxquant.remap(ramp, two, dither="fs")
      >>> def column_error(r):  # how far each column's mean is from the ramp's
      ...     return float(np.abs(r.image.mean(axis=0) - ramp.mean(axis=0)).mean())
      >>> round(column_error(plain)), round(column_error(fs))
      (63, 14)
    """
    method, level = check_dither(dither, dither_level)
    runs = check_runs(runs)
    if runs and method != "none":
        raise ValueError(f"runs={runs:g} applies without dithering (dither='none')")
    if isinstance(image, ColourSet):
        if method != "none" or runs:
            raise ValueError(
                "dithering and runs need an image (pixels in rows and columns), not a colour set"
            )
        if space is not None and space != image.space:
            raise ValueError(
                f"the colour set is in space {image.space!r}, not {space!r}; build it with "
                f"space={space!r}"
            )
        problem, shape, squeeze, dtype = image, None, False, np.dtype(image.colours.dtype)
    else:
        traced = _checks.is_traced(image)
        squeeze = not hasattr(image, "mode") and np.ndim(image) == 2
        arr = image if traced else _checks.as_image_array(image)
        problem = ColourSet.from_image(arr, space=space or "rgb")
        shape = _checks.check_image_shape(tuple(arr.shape))
        dtype = np.dtype(arr.dtype)
    return remap_colour_set(
        problem,
        palette,
        shape=shape,
        squeeze=squeeze,
        dtype=dtype,
        loss=loss,
        layout=layout,
        method=method,
        level=level,
        runs=runs,
    )


def remap_colour_set(
    problem: ColourSet,
    palette,
    *,
    shape: tuple[int, int, int] | None,
    squeeze: bool,
    dtype: np.dtype,
    loss: Loss | None,
    layout: str | None,
    method: str,
    level: float,
    runs: float,
) -> QuantizeResult:
    """:func:`remap`'s work once its arguments are checked: ``problem`` is the image's
    colour set (``ColourSet.from_image``, one row per pixel) and ``shape`` its
    ``(H, W, C)``, or ``None`` for a colour set's own rows. ``quantize`` passes the set
    it fitted, so a large image is not held twice."""
    pal = _palette_for(problem, palette)
    labels, mse, value = _assign_jit(problem, pal, loss=loss, layout=layout)
    if method == "none" and runs:
        method, level = "runs", runs
    if method != "none" and shape is not None:
        labels, mse, value = _dithered_jit(
            problem, pal, labels, shape[:2], method=method, level=level, loss=loss
        )
    traced = _checks.is_traced(labels) or _checks.is_traced(pal)
    xp: Any = jnp if traced else np
    finite = xp.all(xp.isfinite(xp.asarray(pal).astype(xp.float32)))
    status = xp.where(finite, Status.OK, Status.DIVERGED).astype(xp.int32)
    return build_result(
        labels, pal, mse, value, status, shape=shape, dtype=dtype, squeeze=squeeze, traced=traced
    )


def build_result(
    labels,
    palette,
    mse,
    loss,
    status,
    *,
    shape: tuple[int, int, int] | None,
    dtype: np.dtype,
    squeeze: bool = False,
    traced: bool = False,
    inverse: np.ndarray | None = None,
    losses=None,
) -> QuantizeResult:
    """A :class:`QuantizeResult` from a colour set's labels (host or traced).

    ``shape`` is the image's ``(H, W, C)`` (``None``: one result row per set row);
    ``inverse`` maps pixels to rows of a deduplicated set.
    """
    xp: Any = jnp if traced else np
    labels = labels if traced else np.asarray(labels)
    palette = jnp.asarray(palette) if traced else np.asarray(palette)  # a concrete palette too
    if shape is None:
        indices = labels
    else:
        h, w, _ = shape
        indices = (labels[: h * w] if inverse is None else labels[inverse]).reshape(h, w)
    # np.take: 3x faster than fancy indexing on the host (12 MP: 41 vs 123 ms).
    out = palette[indices] if traced else np.take(palette, indices, axis=0)
    if dtype != np.uint8:
        out, palette = out.astype(dtype), palette.astype(dtype)
    if squeeze:
        out = out[:, :, 0]
    if traced:
        psnr = jnp.where(mse > 0, 10.0 * jnp.log10(255.0**2 / jnp.maximum(mse, 1e-30)), jnp.inf)
    else:
        m = float(mse)
        psnr = np.float32(math.inf if m <= 0 else 10.0 * math.log10(255.0**2 / m))
    put = jnp.asarray if traced else _ops.to_device  # concrete: copies, compiles nothing
    return QuantizeResult(
        image=put(out),
        palette=put(palette),
        indices=put(indices.astype(xp.int32)),
        loss=put(loss),
        losses=put(np.zeros((0,), np.float32) if losses is None else losses),
        mse=put(mse),
        psnr=put(psnr, jnp.float32),
        status=put(status),
    )
