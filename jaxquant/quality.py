"""Quality targets: the fewest colours that reach a quality (``--quality MIN-MAX``).

Quality is a number from 0 to 100, a decreasing function of the plain sRGB MSE (0..255
scale, mean over channels) that follows the curve of pngquant's quality scale
(libimagequant's, shaped to resemble libjpeg's), scaled by :data:`SCALE` so that the same
number means about the same on photographs with both tools: pngquant measures its MSE
in its own gamma-weighted units, about :data:`SCALE` times smaller than the plain MSE
(``benchmarks/calibrate_quality.py`` measures the constant). 100 is lossless.

:func:`quantize_to_quality` fits one palette of ``max_colors`` colours, then reduces it
greedily (merging the two entries whose merge adds the least squared error, weighted by
their pixel counts, within one opacity class; then a few weighted Lloyd iterations on
the palette), and searches by bisection for the fewest colours whose exact remap reaches
the quality. Every candidate is remapped with a palette padded (by repetition) to
``max_colors`` rows, so the search compiles one program, not one per candidate.

This module's parsing and curve (:func:`parse_quality`, :func:`quality_to_mse`,
:func:`mse_to_quality`) import neither JAX nor the fitting code: the command line uses
them before it loads JAX.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "SCALE",
    "Quality",
    "QualityError",
    "mse_to_quality",
    "parse_quality",
    "quality_to_mse",
    "quantize_to_quality",
    "reduce_palette",
]

SCALE = 3.28
"""Median ratio of the plain sRGB MSE of pngquant's results to the MSE pngquant reports,
on 30 CQ100 photographs at asked qualities 40, 60, 80 and 90 (quartiles 3.0 and 3.5,
the same at every quality)
(``python benchmarks/calibrate_quality.py --limit 30``; ``docs/compression.md``)."""

LLOYD_STEPS = 10
"""Weighted Lloyd iterations that polish each reduced palette on the histogram of the
full palette."""


class Quality(NamedTuple):
    """A quality range: results below ``min`` fail, and ``max`` is the target."""

    min: int
    max: int


class QualityError(ValueError):
    """The best result (with all the colours allowed) is below the minimum quality.

    Attributes:
      quality: the quality reached.
      minimum: the minimum asked.
    """

    def __init__(self, quality: int, minimum: int, colours: int):
        super().__init__(
            f"quality {quality} is below the minimum {minimum} asked, even with {colours} "
            "colours; nothing written (lower the minimum or allow more colours)"
        )
        self.quality = quality
        self.minimum = minimum


def parse_quality(text: str | int | tuple[int, int] | Quality) -> Quality:
    """A quality range from pngquant's notation.

    ``"MIN-MAX"``, ``"MAX"`` (minimum 0), ``"-MAX"`` (minimum 0) or ``"MIN-"`` (target
    100), integers from 0 to 100; also an integer (the target) or a ``(min, max)`` pair.

    Raises:
      ValueError: for anything else, or a minimum above the maximum.

    Examples:
      >>> parse_quality("65-80")
      Quality(min=65, max=80)
      >>> parse_quality("80"), parse_quality("50-")
      (Quality(min=0, max=80), Quality(min=50, max=100))
    """
    if isinstance(text, tuple):
        lo, hi = text
    elif isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        lo, hi = 0, int(text)
    elif isinstance(text, str):
        lo_text, sep, hi_text = text.strip().partition("-")
        if not sep:
            lo_text, hi_text = "", lo_text
        try:
            lo = int(lo_text) if lo_text.strip() else 0
            hi = int(hi_text) if hi_text.strip() else 100
        except ValueError:
            raise ValueError(
                f"expected MIN-MAX, MAX or MIN- with integers from 0 to 100, got {text!r}"
            ) from None
        if not (lo_text.strip() or hi_text.strip()):
            raise ValueError(f"expected MIN-MAX, MAX or MIN-, got {text!r}")
    else:
        raise ValueError(f"a quality is a string like '65-80' or an integer, got {text!r}")
    for name, value in (("minimum", lo), ("maximum", hi)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"the {name} quality must be an integer, got {value!r}")
        if not 0 <= value <= 100:
            raise ValueError(f"the {name} quality must be from 0 to 100, got {value}")
    if lo > hi:
        raise ValueError(f"the minimum quality {lo} is above the maximum {hi}")
    return Quality(int(lo), int(hi))


def quality_to_mse(quality: int) -> float:
    """The largest plain sRGB MSE (0..255 scale) that still has quality ``quality``.

    0 admits any error (``inf``); 100 only a lossless result (0).
    """
    q = int(quality)
    if not 0 <= q <= 100:
        raise ValueError(f"quality must be from 0 to 100, got {quality}")
    if q == 0:
        return math.inf
    if q == 100:
        return 0.0
    # pngquant's curve on its [0, 1] scale, in its 0..255 units, then scaled to plain MSE
    low = max(0.0, 0.016 / (0.001 + q) - 0.001)
    curve = low + 2.5 / (210.0 + q) ** 1.2 * (100.1 - q) / 100.0
    return curve * 65536.0 / 6.0 * SCALE


def mse_to_quality(mse: float) -> int:
    """The quality (0..100) of a result with plain sRGB MSE ``mse`` (0..255 scale).

    Examples:
      >>> mse_to_quality(0.0), mse_to_quality(1e9)
      (100, 0)
      >>> all(mse_to_quality(quality_to_mse(q)) == q for q in range(101))
      True
    """
    mse = float(mse)
    if math.isnan(mse):
        raise ValueError("the MSE is nan")
    for q in range(100, 0, -1):
        if mse <= quality_to_mse(q) * (1 + 1e-9) + 1e-12:
            return q
    return 0


def _opacity_class(palette: np.ndarray) -> np.ndarray:
    """0 transparent, 1 translucent, 2 opaque (every entry 2 without alpha)."""
    c = palette.shape[1]
    if c not in (2, 4):
        return np.full(palette.shape[0], 2)
    a = palette[:, -1]
    return np.where(a <= 0, 0, np.where(a >= 255, 2, 1))


def _merge_costs(means, weights, row, classes, pinned):
    """Ward's cost of merging entry ``row`` with every entry (into a pinned entry, which
    does not move: the other entry's weight times the squared distance)."""
    w = weights[row] * weights / np.maximum(weights[row] + weights, 1e-300)
    if pinned[row]:
        w = weights.copy()
    else:
        w = np.where(pinned, weights[row], w)
    cost = w * ((means - means[row]) ** 2).sum(axis=1)
    cost[classes != classes[row]] = np.inf
    if pinned[row]:
        cost[pinned] = np.inf
    cost[row] = np.inf
    return cost


def reduce_palette(
    palette, counts, k: int, *, lloyd_steps: int = LLOYD_STEPS, fixed: int = 0
) -> np.ndarray:
    """Reduce a palette with pixel ``counts`` to ``k`` entries (NumPy, on the host).

    Entries are merged greedily, two at a time, choosing the pair whose weighted mean
    adds the least squared error (Ward's criterion; unused entries merge first, at no
    cost), never across opacity classes (transparent, translucent and opaque entries of
    a palette with alpha stay apart), then polished by ``lloyd_steps`` weighted Lloyd
    iterations on the entries. ``O(K² · c)`` time for a palette of ``K`` entries. The
    first ``fixed`` entries (the ``fixed=`` colours of a fit) are kept as they are, in
    front: other entries may merge into them, but they never move or merge together.

    Args:
      palette: ``(K, c)`` colours, uint8 or float in ``[0, 1]``.
      counts: ``(K,)`` non-negative weights (the pixels of each entry).
      k: entries to keep, ``1 <= k <= K``; at least the number of opacity classes
        present among the used entries.
      lloyd_steps: weighted Lloyd iterations after merging.
      fixed: how many leading entries are fixed colours, ``<= k``.

    Returns:
      ``(k, c)`` palette of the input's dtype (uint8 rounded).

    Examples:
      >>> p = np.array([[0, 0, 0], [2, 0, 0], [200, 0, 0], [255, 0, 0]], np.uint8)
      >>> reduce_palette(p, np.array([1, 1, 1, 3]), 2).tolist()
      [[1, 0, 0], [241, 0, 0]]
    """
    pal = np.asarray(palette)
    integer = pal.dtype == np.uint8
    x = pal.astype(np.float64) * (1.0 if integer else 255.0)
    w = np.asarray(counts, np.float64).reshape(-1)
    n = x.shape[0]
    if x.ndim != 2 or w.shape != (n,):
        raise ValueError(f"palette (K, c) and counts (K,) disagree: {x.shape} and {w.shape}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be from 1 to {n}, got {k}")
    if not 0 <= fixed <= k:
        raise ValueError(f"fixed must be from 0 to k = {k}, got {fixed}")
    pinned = np.arange(n) < fixed
    classes = _opacity_class(x)
    means, weights = x.copy(), w.copy()
    alive = np.ones(n, bool)
    costs = np.stack([_merge_costs(means, weights, i, classes, pinned) for i in range(n)])
    for _ in range(n - k):
        flat = int(np.argmin(costs))
        i, j = divmod(flat, n)
        if not np.isfinite(costs[i, j]):
            # only different opacity classes are left to merge: merge the lightest pair
            free = np.flatnonzero(alive & ~pinned)
            if len(free) >= 2:
                i, j = free[np.argsort(weights[free])[:2]]
            else:  # one free entry left: into the lightest fixed entry
                pins = np.flatnonzero(alive & pinned)
                i, j = pins[np.argmin(weights[pins])], free[0]
            keep = pinned[i] or weights[i] >= weights[j]
            classes[[i, j]] = classes[i] if keep else classes[j]
        i, j = min(i, j), max(i, j)
        total = weights[i] + weights[j]
        if total > 0 and not pinned[i]:
            means[i] = (weights[i] * means[i] + weights[j] * means[j]) / total
        weights[i] = total
        alive[j] = False
        costs[j, :] = costs[:, j] = np.inf
        row = _merge_costs(means, weights, i, classes, pinned)
        row[~alive] = np.inf
        costs[i, :] = costs[:, i] = row
    centres = means[alive]
    centre_classes = classes[alive]
    moves = ~pinned[alive]
    for _ in range(lloyd_steps):
        d = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        d[classes[:, None] != centre_classes[None, :]] = np.inf
        label = np.argmin(d, axis=1)
        ok = np.isfinite(d[np.arange(n), label])
        sums = np.zeros_like(centres)
        np.add.at(sums, label[ok], w[ok, None] * x[ok])
        mass = np.bincount(label[ok], weights=w[ok], minlength=len(centres))
        moved = (mass > 0) & moves
        centres[moved] = sums[moved] / mass[moved, None]
    if integer:
        return np.clip(np.rint(centres), 0, 255).astype(np.uint8)
    out = np.clip(centres / 255.0, 0.0, 1.0).astype(pal.dtype)
    out[:fixed] = pal[alive][:fixed]  # exactly, not through the 255 scale
    return out


def quantize_to_quality(
    key,
    image,
    quality,
    *,
    max_colors: int = 256,
    dither: str = "none",
    dither_level: float | None = None,
    **options: Any,
):
    """Quantize with the fewest colours (at most ``max_colors``) that reach ``quality``.

    Like pngquant's ``--quality MIN-MAX``: the result has the fewest colours whose
    quality (:func:`mse_to_quality` of the undithered result) is at least ``MAX``; if
    even ``max_colors`` colours fall short of ``MAX`` but reach ``MIN``, it has
    ``max_colors`` colours; below ``MIN`` it raises :class:`QualityError`.

    One palette of ``max_colors`` colours is fitted as by :func:`jaxquant.quantize`;
    smaller ones are reduced from it (:func:`reduce_palette`) and checked by an exact
    remap of the whole image, about ``log2(max_colors)`` of them, all with one compiled
    program. The dithering, if any, is applied last, to the chosen palette.

    Args:
      key: a PRNG key.
      image: as for :func:`jaxquant.quantize` (``mode`` ``"vector"`` only).
      quality: ``"MIN-MAX"``, ``"MAX"``, an integer target or a :class:`Quality`
        (:func:`parse_quality`).
      max_colors: the most colours allowed, ``>= 1``.
      dither, dither_level: as for :func:`jaxquant.remap`.
      **options: the fitting options of :func:`jaxquant.quantize`.

    Returns:
      A :class:`~jaxquant.QuantizeResult` whose palette has the chosen number of rows;
      ``losses`` is the trace of the ``max_colors`` fit.

    Raises:
      QualityError: the quality with ``max_colors`` colours is below the minimum.
      ValueError, TypeError: as :func:`jaxquant.quantize`.

    Examples:
      >>> import jax, numpy as np
      >>> image = np.zeros((16, 16, 3), np.uint8); image[8:] = 200; image[:, 8:, 1] = 90
      >>> r = quantize_to_quality(jax.random.key(0), image, "90-100", max_colors=16)
      >>> r.palette.shape[0], mse_to_quality(r.mse)
      (4, 100)
    """
    import jax

    from jaxquant._quantize import quantize
    from jaxquant._remap import remap

    target = parse_quality(quality)
    if isinstance(max_colors, bool) or not isinstance(max_colors, (int, np.integer)):
        raise TypeError(f"max_colors must be an integer, got {max_colors!r}")
    if max_colors < 1:
        raise ValueError(f"max_colors must be >= 1, got {max_colors}")
    if options.get("mode", "vector") != "vector":
        raise ValueError("a quality target needs mode 'vector' (a palette of colours)")
    options.pop("mode", None)
    from jaxquant._fit import check_fixed

    num_fixed = len(check_fixed(options.get("fixed"), int(max_colors)))
    full = quantize(key, image, int(max_colors), **options)
    reached = mse_to_quality(float(full.mse))
    if reached < target.min:
        raise QualityError(reached, target.min, int(max_colors))
    space = options.get("space")
    palette = np.asarray(full.palette)
    big = palette.shape[0]
    best, best_result = palette, full
    if reached >= target.max and big > 1:
        counts = np.bincount(np.asarray(full.indices).reshape(-1), minlength=big)
        limit = quality_to_mse(target.max)
        lo, hi = max(1, num_fixed), big  # hi reaches the target: find the fewest that do
        while lo < hi:
            mid = (lo + hi) // 2
            small = reduce_palette(palette, counts, mid, fixed=num_fixed)
            # padded by repetition to the full size: one compiled program for every size
            r = remap(image, small[np.arange(big) % mid], space=space)
            if float(r.mse) <= limit:
                hi, best, best_result = mid, small, r
            else:
                lo = mid + 1
    k = best.shape[0]
    if dither != "none":
        # not padded: the dithering chooses among an entry's nearest distinct neighbours
        best_result = remap(image, best, space=space, dither=dither, dither_level=dither_level)
    elif best is palette:
        return full
    return best_result._replace(
        palette=jax.numpy.asarray(best),
        indices=best_result.indices % k,
        losses=full.losses,
        status=full.status,
    )
