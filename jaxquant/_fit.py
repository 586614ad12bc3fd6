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

__all__ = ["FitOptions", "fit_palette", "fit_problem"]

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
      taken and the status (a diverged fit does not raise here: check ``status``).

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
