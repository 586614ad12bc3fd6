"""``fit_palette``: seed, solve and finish a palette for a colour set; and its options.

The fit of one colour set is one traceable function (``jit``, ``vmap`` over keys and over
stacks of sets):

1. split the key into (seeding sample, seeding, solver) keys;
2. seed: the initializer on ``seed_sample_size`` rows drawn by weight (all rows if there
   are fewer), in the set's coordinates;
3. solve: ``solver(key, problem, palette)`` (SQ with its Lloyd polish, or Lloyd);
4. finish: back to colours of the set's type (sRGB, clipped, rounded for uint8), and
   the set's own rows when it has no more valid rows than ``k`` (lossless).

On the host, :func:`fit_palette` also builds the colour set from an image (deduplicated
when the solver gains from it or the image may have few colours) and returns lossless
palettes without compiling anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxquant import _checks
from jaxquant._sampling import sample_index
from jaxquant.problem import ColourSet, has_few_colours
from jaxquant.seeding import Initializer, get_initializer
from jaxquant.solvers import SQ, FitResult, Solver, Status

__all__ = [
    "FitOptions",
    "fit_palette",
    "fit_problem",
    "opacity_budget",
    "opacity_classes",
    "splits_by_opacity",
]

# Rows the seeding sees: k-means++ is sequential in k and O(rows · trials) per round.
_SEED_SAMPLE_SIZE = 4096
_FIT_FIELDS = ("solver", "init", "space", "seed_sample_size")
_SQ_FIELDS = tuple(f.name for f in dataclasses.fields(SQ))


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """Everything :func:`fit_palette` needs besides the data and ``k``: hashable by value.

    Build it with :meth:`make`, the one place that declares, defaults and validates the
    options of :func:`fit_palette`, :func:`~jaxquant.quantize` and
    :func:`~jaxquant.quantize_batch`.

    Attributes:
      solver: the solver, resolved for ``k`` (:meth:`jaxquant.solvers.SQ.resolve`).
      init: the seeding :class:`~jaxquant.seeding.Initializer`.
      space: the colour space to fit images in, or ``None`` (``"rgb"``, or a
        :class:`~jaxquant.problem.ColourSet`'s own space).
      seed_sample_size: rows the seeding runs on.
    """

    solver: Any
    init: Initializer
    space: str | None = None
    seed_sample_size: int = _SEED_SAMPLE_SIZE

    @classmethod
    def make(
        cls,
        k: int,
        *,
        solver: Solver | None = None,
        init: str | Initializer | Callable = "kmeans++",
        space: str | None = None,
        seed_sample_size: int = _SEED_SAMPLE_SIZE,
        **solver_options: Any,
    ) -> FitOptions:
        """Validate and resolve the fitting options for ``k`` colours.

        Args:
          k: palette size.
          solver: a solver value (:class:`~jaxquant.solvers.SQ`,
            :class:`~jaxquant.solvers.Lloyd`, or your own following
            :class:`~jaxquant.solvers.Solver`); default ``SQ(**solver_options)``.
          init: seeding: ``"kmeans++"`` (default), ``"kmeans++-d1"``, ``"random"`` or an
            :class:`~jaxquant.seeding.Initializer`.
          space: the colour space to fit in (:data:`jaxquant.colour.SPACES`; default
            ``"rgb"``, or a colour set's own).
          seed_sample_size: rows drawn (by weight) for the seeding.
          **solver_options: shorthand for ``solver=SQ(**solver_options)``: ``num_steps``,
            ``batch_size``, ``optimizer``, ``learning_rate``, ``rank``, ``loss``,
            ``tol``, ``num_lloyd_steps``, ``layout``, ``record`` (see
            :class:`~jaxquant.solvers.SQ`).

        Returns:
          A :class:`FitOptions` whose solver has every default filled in for ``k``.

        Raises:
          TypeError, ValueError: for unknown or invalid options (the message names them).

        Examples:
          >>> opts = FitOptions.make(64, num_steps=200)
          >>> opts.solver.num_steps, opts.solver.batch_size, round(opts.solver.learning_rate, 4)
          (200, 1024, 0.0214)
        """
        k = _checks.check_k(k)
        unknown = sorted(set(solver_options) - set(_SQ_FIELDS))
        if unknown:
            raise TypeError(
                f"unknown option {', '.join(map(repr, unknown))}; fit options are "
                f"{', '.join(_FIT_FIELDS)}, SQ options are {', '.join(_SQ_FIELDS)}"
            )
        if solver is None:
            solver = SQ(**solver_options)
        elif solver_options:
            raise TypeError(
                f"give {', '.join(sorted(solver_options))} inside solver=..., not beside it"
            )
        if not (callable(solver) and hasattr(solver, "resolve")):
            raise TypeError(
                "solver must be a solver value such as jaxquant.SQ(...) or jaxquant.Lloyd(...), "
                f"got {type(solver).__name__}"
            )
        if space is not None:
            from jaxquant import _names

            _checks.check_choice("colour space", space, _names.SPACES)
        seed_sample_size = _checks.check_count(
            "seed_sample_size", seed_sample_size, minimum=1, maximum=1 << 24
        )
        return cls(solver.resolve(k), get_initializer(init), space, seed_sample_size)

    def kwargs(self) -> dict[str, Any]:
        """These options as keyword arguments of :func:`fit_palette`."""
        return {name: getattr(self, name) for name in _FIT_FIELDS}


def fit_problem(
    key: jax.Array,
    problem: ColourSet,
    solver: Any,
    *,
    k: int,
    init: Initializer,
    seed_sample_size: int = _SEED_SAMPLE_SIZE,
) -> FitResult:
    """Seed, solve and finish one colour set (the traceable core of :func:`fit_palette`).

    ``solver`` must be resolved for ``k``. Returns a :class:`~jaxquant.solvers.FitResult`
    whose palette is in the set's colour type (see :func:`fit_palette`).
    """
    key_sample, key_seed, key_fit = jax.random.split(key, 3)
    w = jnp.asarray(problem.weights, jnp.float32)
    if problem.num_rows <= seed_sample_size:
        palette = init(key_seed, problem.coordinates(), k, w)
    else:
        rows = sample_index(key_sample, w, (seed_sample_size,))
        palette = init(key_seed, problem.coordinates(rows), k)
    fit = solver(key_fit, problem, palette.astype(problem.float_dtype))
    out = problem.colours_from(fit.palette)
    # With no more valid rows than k, the rows themselves are the optimal palette.
    lossless = problem.lossless_palette(k).astype(out.dtype)
    out = jnp.where(jnp.asarray(problem.num_valid) <= k, lossless, out)
    return fit._replace(palette=out)


_fit_jit = jax.jit(fit_problem, static_argnames=("k", "init", "seed_sample_size"))


def as_colour_set(data, k: int, options: FitOptions) -> ColourSet:
    """The :class:`~jaxquant.problem.ColourSet` that :func:`fit_palette` fits for ``data``."""
    space = options.space
    if isinstance(data, ColourSet):
        if space is not None and space != data.space:
            raise ValueError(
                f"the colour set is in space {data.space!r}, not {space!r}; build it with "
                f"space={space!r}"
            )
        return data
    space = space or "rgb"
    if isinstance(data, (list, tuple)):
        return ColourSet.from_images(data, space=space)
    if _checks.is_traced(data):
        return ColourSet.from_image(data, space=space)
    image = _checks.as_image_array(data)
    if getattr(options.solver, "deduplicate", False) or has_few_colours(image, k):
        return ColourSet.deduplicated(image, space=space)[0]
    return ColourSet.from_image(image, space=space)


def fit_palette(key: jax.Array, data, k: int, **options: Any) -> FitResult:
    """Fit a palette of ``k`` colours to colour data, without assigning any pixel.

    Traceable: with an array or a :class:`~jaxquant.problem.ColourSet` it works under
    ``jax.jit`` (``k`` and the options static, e.g. through ``functools.partial``) and
    ``jax.vmap`` over keys or over a stack of images of one shape, giving the eager
    results. To trace the learning rate, pass the solver as an argument of the jitted
    function (``solver=SQ(learning_rate=lr)``).

    Eagerly, on a concrete image, it also deduplicates the pixels on the host when the
    solver gains from it (Lloyd) or the image may have at most ``k`` colours, and then
    returns an image with at most ``k`` distinct colours losslessly (its colours, sorted,
    the last repeated) without compiling anything. Under ``jit`` no deduplication
    happens: the lossless shortcut then applies only to sets of at most ``k`` rows.

    Images with transparency (2 or 4 channels, the last one alpha) are fitted in
    premultiplied coordinates (colour times opacity, as libimagequant does: a nearly
    transparent pixel's colour barely matters). Eagerly, their pixels are also split into
    fully transparent, translucent and fully opaque ones, and each class gets its own
    entries (see :func:`opacity_budget`): one fully transparent entry, translucent
    entries only if the image has translucent pixels, and opaque entries fitted as an
    image without alpha, so that :func:`~jaxquant.remap` keeps every fully opaque pixel
    exactly opaque and every fully transparent one exactly transparent. Under ``jit``
    the set is fitted as one (opacity is still kept exact wherever the palette has an
    entry of the pixel's class).

    Args:
      key: a PRNG key (``jax.random.key(seed)``). Same key, same palette.
      data: an image (``(H, W, C)`` or ``(H, W)``, uint8 or float in ``[0, 1]``, 1-4
        channels, or a PIL image), a list of images (one palette for all of them), or a
        :class:`~jaxquant.problem.ColourSet` (e.g. from
        :meth:`~jaxquant.problem.ColourSet.from_vectors`).
      k: palette size, ``>= 1``.
      **options: the fitting options of :meth:`FitOptions.make`: ``solver``, ``init``,
        ``space``, ``seed_sample_size``, and the shorthand for the default SQ solver
        (``num_steps``, ``batch_size``, ``optimizer``, ``learning_rate``, ``rank``,
        ``loss``, ``tol``, ``num_lloyd_steps``, ``layout``, ``record``).

    Returns:
      A :class:`~jaxquant.solvers.FitResult`: ``palette`` ``(k, c)`` in sRGB (uint8,
      rounded, for uint8 data; float32 otherwise), the solver's loss trace, the steps
      taken and the status (a diverged fit does not raise here: check ``status``). For
      a split fit of an image with transparency, the palette lists the transparent,
      then the translucent, then the opaque entries; the trace and the steps are those
      of the largest class's fit and the status is the worst.

    Examples:
      >>> import functools, jax, numpy as np
      >>> import jaxquant
      >>> image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
      >>> fit = jaxquant.fit_palette(jax.random.key(0), image, 16)
      >>> fit.palette.shape, fit.palette.dtype, fit.losses.shape
      ((16, 3), dtype('uint8'), (500,))
      >>> fit_16 = jax.jit(functools.partial(jaxquant.fit_palette, k=16))
      >>> bool((fit_16(jax.random.key(0), image).palette == fit.palette).all())
      True
    """
    opts = FitOptions.make(k, **options)
    key = _checks.check_key(key)
    problem = as_colour_set(data, k, opts)
    concrete = not (_checks.is_traced(problem.num_valid) or _checks.is_traced(problem.colours))
    if concrete and int(problem.num_valid) <= k:
        return lossless_fit(problem, k)
    if concrete and splits_by_opacity(problem, k):
        return _fit_by_opacity(key, problem, k, opts, opacity_classes(problem))
    return _fit_jit(
        key, problem, opts.solver, k=k, init=opts.init, seed_sample_size=opts.seed_sample_size
    )


def lossless_fit(problem: ColourSet, k: int) -> FitResult:
    """The exact palette of a set with at most ``k`` valid rows, built on the host."""
    colours = np.asarray(problem.colours)
    idx = np.minimum(np.arange(k), max(int(problem.num_valid) - 1, 0))
    palette = colours[idx]
    if palette.dtype != np.uint8:
        palette = palette.astype(np.float32)
    return FitResult(
        palette=jnp.asarray(palette),
        losses=jnp.asarray(np.zeros((0,), np.float32)),  # NumPy: no eager op to compile
        num_steps=jnp.asarray(np.int32(0)),
        status=jnp.asarray(np.int32(Status.OK)),
    )


def splits_by_opacity(problem: ColourSet, k: int) -> bool:
    """Whether :func:`fit_palette` fits a concrete set's opacity classes separately."""
    if not problem.alpha or k < 2:
        return False
    return sum(len(rows) > 0 for rows in opacity_classes(problem)) >= 2


def opacity_classes(problem: ColourSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The valid rows of a concrete set with alpha: (transparent, translucent, opaque).

    Rows of weight 0 belong to none. Host side.
    """
    nv = int(problem.num_valid)
    alpha = np.asarray(problem.colours)[:nv, -1]
    present = np.asarray(problem.weights)[:nv] > 0
    full = 255 if problem.integer else 1.0
    clear, opaque = alpha == 0, alpha == full
    return (
        np.flatnonzero(present & clear),
        np.flatnonzero(present & ~clear & ~opaque),
        np.flatnonzero(present & opaque),
    )


def opacity_budget(k: int, weights: tuple[float, float, float]) -> tuple[int, int, int]:
    """Palette entries for the (transparent, translucent, opaque) pixels of an image.

    One entry for the fully transparent pixels (their colour is invisible), if there
    are any; the rest shared by translucent and opaque pixels in proportion to their
    weights (pixel counts), at least one each when both are present and ``k`` allows.
    A class without pixels gets no entry.

    Args:
      k: palette size, ``>= 1``.
      weights: total weight of each class.

    Returns:
      Entries per class, summing to ``k`` (or to fewer only if every class is empty).

    Examples:
      >>> opacity_budget(16, (500.0, 100.0, 9400.0))
      (1, 1, 14)
      >>> opacity_budget(16, (0.0, 0.0, 10.0))
      (0, 0, 16)
      >>> opacity_budget(2, (5.0, 1.0, 9.0))
      (1, 0, 1)
    """
    w_clear, w_trans, w_opaque = (max(float(x), 0.0) for x in weights)
    if w_clear + w_trans + w_opaque == 0:
        return 0, 0, 0
    k_clear = 1 if w_clear > 0 and (w_trans + w_opaque == 0 or k >= 2) else 0
    if w_trans + w_opaque == 0:
        return k, 0, 0  # all transparent: the extra entries repeat
    rest = k - k_clear
    if w_trans == 0:
        return k_clear, 0, rest
    if w_opaque == 0:
        return k_clear, rest, 0
    if rest == 1:
        return (k_clear, 1, 0) if w_trans > w_opaque else (k_clear, 0, 1)
    k_trans = min(max(round(rest * w_trans / (w_trans + w_opaque)), 1), rest - 1)
    return k_clear, k_trans, rest - k_trans


def _fit_by_opacity(key, problem: ColourSet, k: int, opts: FitOptions, classes) -> FitResult:
    """Fit the transparent, translucent and opaque rows of a set separately (host side)."""
    colours = np.asarray(problem.colours)
    weights = np.asarray(problem.weights)
    clear, trans, opaque = (float(weights[rows].sum()) for rows in classes)
    totals = (clear, trans, opaque)
    budget = opacity_budget(k, totals)
    full = 255 if problem.integer else 1.0
    parts: list[np.ndarray] = []
    fits: list[tuple[float, FitResult]] = []
    keys = jax.random.split(key, 2)
    if budget[0]:
        parts.append(np.zeros((budget[0], problem.channels), colours.dtype))
    for j, (rows, size) in enumerate(zip(classes[1:], budget[1:], strict=True)):
        if not size:
            continue
        opaque = j == 1
        # Opaque pixels are fitted as an image without alpha (the same palette quality).
        sub = colours[rows, :-1] if opaque else colours[rows]
        w = weights[rows]
        subset = ColourSet.from_vectors(
            sub,
            None if problem.uniform else w,
            space=problem.space,
            alpha=not opaque,
        )
        if _few_rows(sub, size):
            subset = _deduplicated_rows(sub, w, problem.space, not opaque)
        fit = fit_palette(keys[j], subset, size, **opts.kwargs())
        palette = np.asarray(fit.palette)
        if not opaque:  # keep translucent entries translucent (a step may overshoot)
            low, high = (1, 254) if problem.integer else (1 / 255, 254 / 255)
            palette = palette.copy()
            palette[:, -1] = np.clip(palette[:, -1], low, high)
        else:
            palette = np.concatenate([palette, np.full((size, 1), full, palette.dtype)], axis=1)
        parts.append(palette)
        fits.append((totals[j + 1], fit))
    main = max(fits, key=lambda f: f[0])[1]
    status = max(int(f.status) for _, f in fits)
    palette = np.concatenate(parts).astype(colours.dtype if problem.integer else np.float32)
    return FitResult(
        palette=jnp.asarray(palette),
        losses=main.losses,
        num_steps=main.num_steps,
        status=jnp.asarray(np.int32(status)),
    )


def _few_rows(rows: np.ndarray, k: int) -> bool:
    return has_few_colours(rows[:, None, :], k)


def _deduplicated_rows(rows: np.ndarray, weights: np.ndarray, space: str, alpha: bool):
    """Distinct rows weighted by their summed weights."""
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    w = np.bincount(inverse.reshape(-1), weights=weights, minlength=len(uniq))
    return ColourSet.from_vectors(uniq, w.astype(np.float32), space=space, alpha=alpha)
