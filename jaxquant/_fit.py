"""``fit_palette``: seed, solve and finish a palette for a colour set; and its options.

The fit of one colour set is one traceable function (``jit``, ``vmap`` over keys and over
stacks of sets):

1. split the key into (seeding sample, seeding, solver) keys;
2. seed: the initializer on ``seed_sample_size`` rows drawn by weight (all rows if there
   are fewer), in the set's coordinates;
3. solve: ``solver(key, problem, palette)`` (SQ with its Lloyd polish, or Lloyd);
4. finish: back to colours of the set's type (sRGB, clipped, rounded for uint8), and
   the set's own rows when it has no more valid rows than ``k`` (lossless).

``fixed`` colours (a static option) are the first rows of the seeded palette, the solver
keeps them frozen, and the finished palette holds them exactly.

On the host, :func:`fit_palette` also builds the colour set from an image (deduplicated
when the solver gains from it or the image may have few colours) and returns lossless
palettes without compiling anything.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxquant import _checks, palettes
from jaxquant._cache import StoredProgram
from jaxquant.problem import ColourSet, draw_rows, has_few_colours
from jaxquant.seeding import Initializer, get_initializer, seed_around
from jaxquant.solvers import SQ, FitResult, Solver, Status

__all__ = [
    "FitOptions",
    "fit_palette",
    "fit_problem",
    "fixed_colours",
    "is_lossless",
    "opacity_budget",
    "opacity_classes",
    "splits_by_opacity",
]

# Rows the seeding sees: k-means++ is sequential in k and O(rows · trials) per round.
_SEED_SAMPLE_SIZE = 4096
_FIT_FIELDS = ("solver", "init", "space", "seed_sample_size", "fixed")
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
      fixed: colours that must be in the palette unchanged, as sRGB values in ``[0, 1]``
        (one tuple per colour, 1-4 channels; :func:`fixed_colours` matches them to a
        colour set); ``()`` for none.
    """

    solver: Any
    init: Initializer
    space: str | None = None
    seed_sample_size: int = _SEED_SAMPLE_SIZE
    fixed: tuple[tuple[float, ...], ...] = ()

    @classmethod
    def make(
        cls,
        k: int,
        *,
        solver: Solver | None = None,
        init: str | Initializer | Callable = "kmeans++",
        space: str | None = None,
        seed_sample_size: int = _SEED_SAMPLE_SIZE,
        fixed: Any = None,
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
          fixed: colours that must appear in the palette exactly, as its first entries in
            the order given, while the others are fitted around them: a string of
            comma-separated hex colours (``"#ffffff,#000000"``, ``#rrggbbaa`` for alpha),
            a list of such strings, or an ``(m, c)`` array (or one colour ``(c,)``) of
            integers in 0-255 or floats in ``[0, 1]``; ``m <= k``. Colours with 3 channels
            are opaque on an image with alpha; grey images take grey colours.
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
        fixed = check_fixed(fixed, k)
        if fixed and "frozen" not in _parameters(solver):
            raise TypeError(
                f"fixed colours need a solver that can keep entries frozen (a 'frozen' "
                f"keyword of its __call__); {type(solver).__name__} has none"
            )
        return cls(solver.resolve(k), get_initializer(init), space, seed_sample_size, fixed)

    def kwargs(self) -> dict[str, Any]:
        """These options as keyword arguments of :func:`fit_palette`."""
        return {name: getattr(self, name) for name in _FIT_FIELDS}


def _parameters(solver) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(solver).parameters)
    except (TypeError, ValueError):
        return ()


def check_fixed(fixed, k: int) -> tuple[tuple[float, ...], ...]:
    """``fixed=`` as sRGB tuples in ``[0, 1]`` (see :meth:`FitOptions.make`)."""
    if fixed is None:
        return ()
    if isinstance(fixed, tuple) and not fixed:
        return ()
    if (
        isinstance(fixed, tuple)
        and all(isinstance(c, tuple) and all(type(v) is float for v in c) for c in fixed)
        and len({len(c) for c in fixed}) == 1
    ):  # already checked (FitOptions.kwargs passed back in), or floats given as tuples
        arr = np.asarray(fixed, np.float64)
        if arr.shape[1] > 4 or not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise ValueError("fixed colours given as floats must be finite and in [0, 1]")
    elif isinstance(fixed, str) or (
        isinstance(fixed, (list, tuple)) and fixed and all(isinstance(c, str) for c in fixed)
    ):
        text = fixed if isinstance(fixed, str) else ",".join(fixed)
        try:
            arr = palettes.parse_colours(text).astype(np.float64) / 255.0
        except palettes.PaletteError as e:
            raise ValueError(f"fixed: {e}") from None
    else:
        raw = np.asarray(fixed)
        if raw.size == 0:
            return ()
        if raw.ndim == 1:
            raw = raw[None]
        if raw.ndim != 2 or not 1 <= raw.shape[1] <= 4:
            raise ValueError(
                f"fixed must be colours: an (m, c) array with 1-4 channels, got shape {raw.shape}"
            )
        if raw.dtype == np.bool_ or not np.issubdtype(raw.dtype, np.number):
            raise TypeError(f"fixed colours must be numbers or hex strings, got {raw.dtype}")
        if np.issubdtype(raw.dtype, np.integer):
            if raw.min() < 0 or raw.max() > 255:
                raise ValueError("fixed colours given as integers must be in 0..255")
            arr = raw.astype(np.float64) / 255.0
        else:
            arr = raw.astype(np.float64)
            if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
                raise ValueError("fixed colours given as floats must be finite and in [0, 1]")
    if arr.shape[0] > k:
        raise ValueError(f"{arr.shape[0]} fixed colours do not fit in a palette of {k}")
    return tuple(tuple(float(v) for v in row) for row in arr)


def _hex(colour: np.ndarray) -> str:
    return "#" + bytes(np.round(np.asarray(colour) * 255).astype(np.uint8)).hex()


def fixed_colours(fixed: tuple[tuple[float, ...], ...], problem: ColourSet) -> np.ndarray:
    """The ``fixed`` colours as rows of ``problem``'s colour type and channels (host side).

    Channels are matched to the set: 3 -> 4 adds full opacity, an opaque 4 -> 3 drops it,
    grey colours (r = g = b) fit grey sets, one grey value is repeated for RGB; anything
    else raises ``ValueError`` naming the colour.

    Returns:
      ``(m, c)`` uint8 for uint8 sets (rounded), floats of the set's dtype otherwise.
    """
    c = problem.channels
    dtype = np.uint8 if problem.integer else problem.float_dtype
    if not fixed:
        return np.zeros((0, c), dtype)
    arr = np.asarray(fixed, np.float64)
    cf = arr.shape[1]
    alpha = problem.alpha
    has_alpha = cf in (2, 4)
    colour_in, colour_out = cf - has_alpha, c - alpha
    values, opacity = arr[:, :colour_in], arr[:, colour_in:]
    if has_alpha and not alpha:
        bad = np.flatnonzero(opacity[:, 0] != 1.0)
        if bad.size:
            raise ValueError(
                f"fixed colour {_hex(arr[bad[0]])} is not opaque, but the image has no alpha"
            )
    if colour_in != colour_out:
        if colour_in == 3 and colour_out == 1:
            grey = (values[:, 0] == values[:, 1]) & (values[:, 1] == values[:, 2])
            if not grey.all():
                first = int(np.flatnonzero(~grey)[0])
                raise ValueError(
                    f"fixed colour {_hex(arr[first])} is not grey, but the image is grey"
                )
            values = values[:, :1]
        elif colour_in == 1 and colour_out == 3:
            values = np.repeat(values, 3, axis=1)
        else:
            raise ValueError(
                f"fixed colours have {cf} channels; they do not match the {c}-channel data"
            )
    out = values
    if alpha:
        out = np.concatenate([values, opacity if has_alpha else np.ones_like(values[:, :1])], 1)
    if problem.integer:
        return np.round(out * 255.0).astype(np.uint8)
    return out.astype(dtype)


def fit_problem(
    key: jax.Array,
    problem: ColourSet,
    solver: Any,
    *,
    k: int,
    init: Initializer,
    seed_sample_size: int = _SEED_SAMPLE_SIZE,
    fixed: tuple[tuple[float, ...], ...] = (),
) -> FitResult:
    """Seed, solve and finish one colour set (the traceable core of :func:`fit_palette`).

    ``solver`` must be resolved for ``k``; ``fixed`` is :attr:`FitOptions.fixed`
    (static). Returns a :class:`~jaxquant.solvers.FitResult` whose palette is in the
    set's colour type (see :func:`fit_palette`), the fixed colours its first rows.
    """
    key_sample, key_seed, key_fit = jax.random.split(key, 3)
    pinned = fixed_colours(fixed, problem)
    m = pinned.shape[0]
    at = problem.palette_coordinates(jnp.asarray(pinned))
    w = jnp.asarray(problem.weights, jnp.float32)
    if problem.num_rows <= seed_sample_size:
        palette = seed_around(key_seed, problem.coordinates(), k, w, init=init, fixed=at)
    else:
        # By weight, or uniformly without a CDF over every row (a photo's rows are equal).
        rows = draw_rows(key_sample, problem.sampling_cdf(), (seed_sample_size,))
        palette = seed_around(key_seed, problem.coordinates(rows), k, init=init, fixed=at)
    palette = palette.astype(problem.float_dtype)
    if m:
        fit = solver(key_fit, problem, palette, frozen=jnp.arange(k) < m)
    else:
        fit = solver(key_fit, problem, palette)
    out = problem.colours_from(fit.palette)
    # With no more valid rows than k, the rows themselves are the optimal palette.
    lossless = problem.lossless_palette(k - m).astype(out.dtype)
    if m:
        exact = jnp.asarray(pinned, out.dtype)
        out = out.at[:m].set(exact)
        lossless = jnp.concatenate([exact, lossless])
    out = jnp.where(jnp.asarray(problem.num_valid) <= k - m, lossless, out)
    return fit._replace(palette=out)


_fit_jit = StoredProgram(fit_problem, static_argnames=("k", "init", "seed_sample_size", "fixed"))


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


def fit_palette(
    key: jax.Array,
    data,
    k: int,
    *,
    weights=None,
    sample_size: int | None = None,
    num_passes: int | None = None,
    devices=None,
    **options: Any,
) -> FitResult:
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
        ``space``, ``seed_sample_size``, ``fixed`` (colours kept exactly, as the first
        entries), and the shorthand for the default SQ solver
        (``num_steps``, ``batch_size``, ``optimizer``, ``learning_rate``, ``rank``,
        ``loss``, ``tol``, ``num_lloyd_steps``, ``layout``, ``record``).

    Returns:
      A :class:`~jaxquant.solvers.FitResult`: ``palette`` ``(k, c)`` in sRGB (uint8,
      rounded, for uint8 data; float32 otherwise), the solver's loss trace, the steps
      taken and the status (a diverged fit does not raise here: check ``status``). For
      a split fit of an image with transparency, the palette lists the transparent,
      then the translucent, then the opaque entries; the trace and the steps are those
      of the largest class's fit and the status is the worst. ``fixed`` colours come
      first in every case, in the order given, exactly as given (rounded to uint8 for
      uint8 data).

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
    streaming = (weights, sample_size, num_passes, devices) != (None,) * 4
    from jaxquant import dataset

    if streaming or dataset.is_image_set(data, sample_size=sample_size or dataset.SAMPLE_SIZE):
        if not (dataset.streams(data) or isinstance(data, (list, tuple))):
            raise TypeError(
                "weights, sample_size, num_passes and devices are options of a set of "
                "images (a list, a folder, an iterator), not of one image or colour set"
            )
        return dataset.fit_images(  # type: ignore[return-value]
            key,
            data,
            k,
            fit=fit_palette,
            options=opts.kwargs(),
            num_fixed=len(opts.fixed),
            weights=weights,
            sample_size=dataset.SAMPLE_SIZE if sample_size is None else sample_size,
            num_passes=num_passes,
            devices=devices,
        )
    problem = as_colour_set(data, k, opts)
    concrete = not (_checks.is_traced(problem.num_valid) or _checks.is_traced(problem.colours))
    if concrete and is_lossless(problem, k, opts.fixed):
        return lossless_fit(problem, k, opts.fixed)
    if concrete and splits_by_opacity(problem, k):
        return _fit_by_opacity(key, problem, k, opts, opacity_classes(problem))
    return _fit_jit(
        key,
        problem,
        opts.solver,
        k=k,
        init=opts.init,
        seed_sample_size=opts.seed_sample_size,
        fixed=opts.fixed,
    )


def _free_rows(problem: ColourSet, fixed) -> np.ndarray:
    """A concrete set's valid rows, less those equal to a fixed colour (distinct ones, in
    order, when there are fixed colours)."""
    rows = np.asarray(problem.colours)[: int(problem.num_valid)]
    pinned = fixed_colours(fixed, problem)
    if not len(pinned):
        return rows
    _, first = np.unique(rows, axis=0, return_index=True)
    rows = rows[np.sort(first)]
    same = (rows[:, None, :] == pinned[None].astype(rows.dtype)).all(-1).any(1)
    return rows[~same]


def is_lossless(problem: ColourSet, k: int, fixed=()) -> bool:
    """Whether a concrete set's rows and the ``fixed`` colours fit in ``k`` entries."""
    m = len(fixed)
    if m >= k:
        return True  # the palette is the fixed colours (m == k)
    if int(problem.num_valid) > k:
        return False
    return len(_free_rows(problem, fixed)) <= k - m


def lossless_fit(problem: ColourSet, k: int, fixed=()) -> FitResult:
    """The exact palette of a set whose rows (with the ``fixed`` colours) fit in ``k``
    entries (:func:`is_lossless`), built on the host: the fixed colours, then the rows,
    the last entry repeated."""
    colours = np.asarray(problem.colours)
    pinned = fixed_colours(fixed, problem)
    if len(pinned) >= k:
        palette = pinned[:k].astype(colours.dtype)
    elif len(pinned):
        entries = np.concatenate([pinned.astype(colours.dtype), _free_rows(problem, fixed)])
        palette = entries[np.minimum(np.arange(k), len(entries) - 1)]
    else:
        palette = colours[np.minimum(np.arange(k), max(int(problem.num_valid) - 1, 0))]
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
    """Fit the transparent, translucent and opaque rows of a set separately (host side).

    Fixed colours join their opacity class's fit (a fully transparent one serves as the
    transparent entry); the palette lists them first, in the order given.
    """
    colours = np.asarray(problem.colours)
    weights = np.asarray(problem.weights)
    full = 255 if problem.integer else 1.0
    pinned = fixed_colours(opts.fixed, problem).astype(colours.dtype)
    pinned_alpha = pinned[:, -1]
    pinned_class = np.where(pinned_alpha == 0, 0, np.where(pinned_alpha == full, 2, 1))
    w_clear, w_trans, w_opaque = (float(weights[rows].sum()) for rows in classes)
    totals = (w_clear, w_trans, w_opaque)
    # A fixed transparent colour already serves the transparent pixels.
    served = 0.0 if (pinned_class == 0).any() else w_clear
    free = opacity_budget(k - len(pinned), (served, w_trans, w_opaque))
    parts: list[np.ndarray] = []  # the fitted entries of each class, fixed ones first
    fits: list[tuple[float, FitResult]] = []
    keys = jax.random.split(key, 2)
    if free[0]:
        parts.append(np.zeros((free[0], problem.channels), colours.dtype))
    for j, (rows, size) in enumerate(zip(classes[1:], free[1:], strict=True)):
        mine = pinned[pinned_class == j + 1]
        if not size or not len(rows):
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
        if _few_rows(sub, size + len(mine)):
            subset = _deduplicated_rows(sub, w, problem.space, not opaque)
        sub_fixed = mine[:, :-1] if opaque else mine
        kwargs = {**opts.kwargs(), "fixed": _as_unit(sub_fixed, problem.integer)}
        fit = fit_palette(keys[j], subset, size + len(mine), **kwargs)
        palette = np.asarray(fit.palette)[len(mine) :]  # the fixed entries go first below
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
    dtype = colours.dtype if problem.integer else np.float32
    palette = np.concatenate([pinned, *parts]).astype(dtype)
    return FitResult(
        palette=jnp.asarray(palette),
        losses=main.losses,
        num_steps=main.num_steps,
        status=jnp.asarray(np.int32(status)),
    )


def _as_unit(colours: np.ndarray, integer: bool) -> tuple[tuple[float, ...], ...]:
    """Colours of a set's type as :attr:`FitOptions.fixed` values."""
    values = colours.astype(np.float64) / 255.0 if integer else colours.astype(np.float64)
    return tuple(tuple(float(v) for v in row) for row in values)


def _few_rows(rows: np.ndarray, k: int) -> bool:
    return has_few_colours(rows[:, None, :], k)


def _deduplicated_rows(rows: np.ndarray, weights: np.ndarray, space: str, alpha: bool):
    """Distinct rows weighted by their summed weights."""
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    w = np.bincount(inverse.reshape(-1), weights=weights, minlength=len(uniq))
    return ColourSet.from_vectors(uniq, w.astype(np.float32), space=space, alpha=alpha)
