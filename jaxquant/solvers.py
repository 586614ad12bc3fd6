"""How to iterate: Stochastic Quantization and Lloyd's k-means as solver values.

A solver is a frozen dataclass holding its options. It is hashable by value and a
pytree whose only leaf is the learning rate, so it can be passed to ``jit`` as an
argument: the rate is traced (sweeping it compiles nothing) and every other option is
static. Each solver has

- ``resolve(k)``: the same solver with every default filled in for ``k`` colours (the
  one place where defaults are chosen),
- ``init(problem, palette) -> state`` and ``step(state, key, problem) -> (state, loss)``
  for a loop of your own, and
- ``solver(key, problem, palette) -> FitResult``: the whole compiled loop
  (``lax.scan``), returning the palette, the loss trace, the steps taken and a status.

``problem`` is a :class:`~jaxquant.problem.ColourSet`; palettes are in its coordinates
(``problem.coordinates()``, in ``[0, 1]^c``). Seeding is not the solver's job: pass a
starting palette (e.g. from :mod:`jaxquant.seeding`), or let
:func:`jaxquant.fit_palette` seed it.

Examples:
  >>> import jax, numpy as np
  >>> from jaxquant.problem import ColourSet
  >>> from jaxquant.solvers import SQ, Lloyd
  >>> image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8)
  >>> problem = ColourSet.from_image(image)
  >>> palette = problem.coordinates()[:4]  # any starting palette
  >>> fit = SQ(num_steps=50, batch_size=64)(jax.random.key(0), problem, palette)
  >>> fit.palette.shape, fit.losses.shape, int(fit.status)
  ((4, 3), (50,), 0)
  >>> int(Lloyd(num_steps=5, tol=0.0)(jax.random.key(0), problem, palette).num_steps)
  5
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from jaxquant import _checks, _names, kernels
from jaxquant._ops import chunk_rows, in_chunks
from jaxquant.losses import Loss, make_power_loss
from jaxquant.problem import ColourSet, draw_rows

if TYPE_CHECKING:
    import optax

__all__ = [
    "FitResult",
    "Lloyd",
    "LloydState",
    "OPTIMIZERS",
    "POLISH_ROWS",
    "SQ",
    "SQState",
    "Solver",
    "Status",
    "default_learning_rate",
    "lloyd_step",
    "make_optimizer",
]


class Status(enum.IntEnum):
    """Outcome of a fit, stored in the ``status`` of every result."""

    OK = 0
    """The palette is finite and in range."""
    DIVERGED = 1
    """The optimizer produced non-finite values (learning rate far too large)."""


class FitResult(NamedTuple):
    """What a solver (and :func:`jaxquant.fit_palette`) returns; a pytree.

    Attributes:
      palette: ``(k, c)``: from a solver, in the problem's coordinates (``[0, 1]^c``);
        from :func:`jaxquant.fit_palette`, as colours of the data's type (uint8 rounded
        for uint8 data, sRGB).
      losses: the trace: SQ's minibatch losses, one per step; Lloyd's full loss before
        each step (steps after convergence repeat the last value).
      num_steps: ``()`` int32: the steps actually taken (fewer with ``tol > 0``).
      status: ``()`` int32 :class:`Status`.
      palettes: with ``SQ(record=True)``, the ``(num_steps + 1, k, c)`` palettes before
        the first step and after each step (coordinates, before the Lloyd polish);
        otherwise ``None``.
    """

    palette: Any
    losses: Any
    num_steps: Any
    status: Any
    palettes: Any = None


class Solver(Protocol):
    """What :func:`jaxquant.fit_palette` runs: SQ, Lloyd, or a solver of your own.

    A solver is hashable by value (a frozen dataclass) and, if it has traced options, a
    pytree. ``deduplicate`` says whether it gains from a deduplicated colour set
    (Lloyd iterates over every row; SQ samples rows, so it does not).
    """

    deduplicate: ClassVar[bool]

    def resolve(self, k: int) -> Solver:
        """This solver with its defaults filled in for ``k`` colours."""
        ...

    def init(self, problem: ColourSet, palette: jax.Array) -> Any:
        """The state a run starts from."""
        ...

    def step(self, state: Any, key: jax.Array, problem: ColourSet) -> tuple[Any, jax.Array]:
        """One step: ``(new_state, loss)``."""
        ...

    def __call__(
        self,
        key: jax.Array,
        problem: ColourSet,
        palette: jax.Array,
        *,
        frozen: jax.Array | None = None,
    ) -> FitResult:
        """The whole run from ``palette`` (coordinates).

        ``frozen`` (optional ``(k,)`` bool) marks entries that must not move (the
        ``fixed=`` colours of :func:`jaxquant.fit_palette`). A solver that cannot keep
        entries fixed may leave the keyword out; ``fixed=`` then refuses it.
        """
        ...


# --------------------------------------------------------------------------------------
# Optimizers.

# name -> (optax factory taking a learning rate or schedule, base learning rate at k=16,
# exponent e: the rate scales like k^e). Plain and momentum SGD see gradients of size
# ~1/k per colour (each colour gets ~1/k of a batch), so their rate grows like k. The
# adaptive methods normalise the gradient, so their rate is a distance in colour space:
# it shrinks like the spacing of k colours in 3-D, k^(-1/3). Adam's was retuned on CQ100
# to k^(-0.45): at k = 64 and 256 the k^(-1/3) rate let colours overshoot into empty
# regions and die (benchmarks/tune.py, docs/benchmarks.md).
# (optax is imported on first use: a warm command-line run that loads its compiled
# programs from disk never builds an optimizer, so it never pays for importing optax.)
_OPTIMIZERS: dict[str, tuple[Callable[..., Any], float, float]] = {
    "sgd": (lambda lr: _optax().sgd(lr), 3.2, 1.0),
    "momentum": (lambda lr: _optax().sgd(lr, momentum=0.9), 0.64, 1.0),
    "nesterov": (lambda lr: _optax().sgd(lr, momentum=0.9, nesterov=True), 0.64, 1.0),
    "adagrad": (lambda lr: _optax().adagrad(lr), 1.6, -1 / 3),
    "rmsprop": (lambda lr: _optax().rmsprop(lr), 0.04, -1 / 3),
    "adam": (lambda lr: _optax().adam(lr), 0.04, -0.45),
}
OPTIMIZERS: tuple[str, ...] = _names.OPTIMIZERS
"""Names of the built-in optimizers."""

# The default schedule decays the rate geometrically to this fraction of its start: the
# steps shrink (as SQ's convergence theorem asks, sum rho = inf, sum rho^2 < inf in the
# limit) while the first steps still move colours across the cube.
_FINAL_LR_FRACTION = 0.01


def _optax():
    import optax

    return optax


def _lookup(name: str):
    _checks.check_choice("optimizer", name, OPTIMIZERS)
    return _OPTIMIZERS[name]


def default_learning_rate(optimizer: str, k: int) -> float:
    """The tuned starting learning rate of a built-in optimizer for ``k`` colours.

    Examples:
      >>> round(default_learning_rate("adam", 16), 3), round(default_learning_rate("sgd", 32), 1)
      (0.04, 6.4)
    """
    _, base, exponent = _lookup(optimizer)
    return base * (k / 16) ** exponent


def make_optimizer(
    name: str, learning_rate: float | jax.Array, num_steps: int
) -> optax.GradientTransformation:
    """A built-in optimizer with its default schedule.

    The rate decays exponentially from ``learning_rate`` to 1% of it over ``num_steps``.
    ``learning_rate`` may be a traced value, so sweeping it recompiles nothing.

    Args:
      name: one of :data:`OPTIMIZERS`.
      learning_rate: the starting rate (colours are on the ``[0, 1]`` scale).
      num_steps: the length of the run.

    Returns:
      An ``optax.GradientTransformation``.
    """
    factory, _, _ = _lookup(name)
    decay = _FINAL_LR_FRACTION ** (1.0 / max(num_steps, 1))
    return factory(lambda count: learning_rate * decay ** jnp.asarray(count, jnp.float32))


# --------------------------------------------------------------------------------------
# Stochastic Quantization.


class SQState(NamedTuple):
    """State of the SQ loop.

    Attributes:
      palette: ``(k, c)`` current palette (coordinates in ``[0, 1]^c``).
      opt_state: the optax optimizer state (per palette colour: a ``(k, c)`` pytree).
      ema: exponential moving average of the minibatch loss (for early stopping).
      ema_checkpoint: ``ema`` at the last convergence check.
      done: whether the tolerance test has stopped the run.
      num_steps: steps actually taken.
    """

    palette: jax.Array
    opt_state: optax.OptState
    ema: jax.Array
    ema_checkpoint: jax.Array
    done: jax.Array
    num_steps: jax.Array


POLISH_ROWS = 1 << 20
"""Rows the Lloyd polish after SQ runs on: sets with more rows (images above about
1 MP) are polished on this many rows drawn by weight. The means of ~4,000 rows per colour
at k = 256 are as good as those of all rows, at a fraction of the cost (a 12 MP photo:
about 11x less; ``benchmarks/profile_phases.py``)."""

_EMA_DECAY = 0.9
_CHECK_EVERY = 20

# Minibatch indices are drawn for a block of steps at once, before the steps run: drawn
# inside every step (a PRNG call per step) they took 30-50% of a step's time at k <= 64
# (benchmarks/bench_kernels.py). A block holds at most this many indices (1 MiB).
_BLOCK_SAMPLES = 1 << 18


def _block_length(num_steps: int, batch_size: int) -> int:
    """Steps per block: the largest divisor of ``num_steps`` within the block budget."""
    most = max(1, _BLOCK_SAMPLES // max(batch_size, 1))
    best = 1
    for d in range(1, math.isqrt(num_steps) + 1):
        if num_steps % d == 0:
            best = max([best] + [b for b in (d, num_steps // d) if b <= most])
    return best


def _is_concrete_number(value) -> bool:
    return _checks.is_number(value) and not _checks.is_traced(value)


@dataclasses.dataclass(frozen=True)
class SQ:
    """Stochastic Quantization (Kozyriev & Norkin): stochastic generalised gradient steps.

    Each step draws ``batch_size`` rows of the problem (by weight, with replacement),
    takes the gradient of the objective at the current palette (only each drawn colour's
    nearest palette colour moves), applies the optimizer's update and projects the
    palette back onto ``[0, 1]^c``. A step costs ``O(batch_size · k)`` whatever the
    problem's size. The minibatches of a block of steps are drawn at once, before the
    block runs (the distribution of :meth:`step`, without a PRNG call per step).

    After the steps, ``num_lloyd_steps`` Lloyd steps polish the palette on every row: for
    uint8 colours in ``"rgb"`` (without alpha) against the palette rounded to uint8 (the
    palette that will be used; exact in integers), otherwise in float coordinates.

    Attributes:
      num_steps: SQ steps (default 500 up to ``k = 32``, else 750; 0 skips SQ).
      batch_size: rows drawn per step (default ``16k`` clipped to 512..2048).
      optimizer: a built-in name (:data:`OPTIMIZERS`), each with a tuned decaying
        schedule, or any ``optax.GradientTransformation`` (used as is; create it once
        and reuse it, since a new object compiles a new program).
      learning_rate: starting rate of a built-in optimizer (default: its tuned value for
        ``k``). The solver's one traced field: pass the solver to ``jit`` as an argument
        to sweep it without recompiling.
      rank: exponent ``r`` of the objective ``E min_k ‖ξ − y_k‖^r`` (2 = k-means).
      loss: a custom :class:`~jaxquant.losses.Loss` instead of ``rank``.
      tol: stop early when the smoothed minibatch loss falls by less than this fraction
        over 20 steps (0, the default, runs every step).
      num_lloyd_steps: Lloyd steps after SQ (default 1 for the squared loss, which
        removes the last steps' noise for ~5% of the time; 0 otherwise, since a Lloyd
        step minimises the squared error, not another objective).
      layout: the nearest-colour search (:data:`jaxquant.kernels.LAYOUTS`; ``None``:
        the backend's default).
      record: keep the palette after every step in :attr:`FitResult.palettes`
        (``(num_steps + 1) · k · c`` floats).
    """

    num_steps: int | None = None
    batch_size: int | None = None
    optimizer: str | optax.GradientTransformation = "adam"
    learning_rate: Any = None
    rank: float = 2.0
    loss: Loss | None = None
    tol: float = 0.0
    num_lloyd_steps: int | None = None
    layout: str | None = None
    record: bool = False

    deduplicate: ClassVar[bool] = False

    def __post_init__(self):
        if self.num_steps is not None:
            _checks.check_count("num_steps", self.num_steps, minimum=0, maximum=10**9)
        if self.batch_size is not None:
            _checks.check_count("batch_size", self.batch_size, minimum=1, maximum=1 << 24)
        if self.num_lloyd_steps is not None:
            _checks.check_count("num_lloyd_steps", self.num_lloyd_steps, minimum=0, maximum=10**6)
        if isinstance(self.optimizer, str):
            _lookup(self.optimizer)
            if self.learning_rate is not None and not _checks.is_traced(self.learning_rate):
                lr = self.learning_rate
                if hasattr(lr, "ndim") and getattr(lr, "ndim", 1) == 0:
                    lr = float(lr)  # a NumPy or JAX scalar
                _checks.check_positive("learning_rate", lr)
        elif isinstance(self.optimizer, _optax().GradientTransformation):
            if self.learning_rate is not None:
                raise ValueError(
                    "learning_rate applies to built-in optimizer names only; an optax "
                    "transformation carries its own rate"
                )
        else:
            raise TypeError(
                f"optimizer must be a name ({', '.join(OPTIMIZERS)}) or an "
                f"optax.GradientTransformation, got {type(self.optimizer).__name__}"
            )
        if not _is_concrete_number(self.rank) or not (
            self.rank >= 1.0 and math.isfinite(self.rank)
        ):
            raise ValueError(f"rank must be a finite number >= 1, got {self.rank!r}")
        if self.loss is not None:
            if not callable(self.loss):
                raise TypeError(
                    f"loss must be callable (the Loss protocol), got {type(self.loss).__name__}"
                )
            if self.rank != 2.0:
                raise ValueError("pass either rank or loss, not both")
        _checks.check_non_negative("tol", self.tol)
        if self.layout is not None:
            kernels.resolve_layout(self.layout)
        if not isinstance(self.record, bool):
            raise TypeError(f"record must be True or False, got {self.record!r}")

    def resolve(self, k: int) -> SQ:
        """This solver with every default filled in for ``k`` colours (the one place
        where defaults are chosen)."""
        # Defaults chosen on CQ100 with benchmarks/sweep_defaults.py (median MSE over 40
        # images relative to scikit-learn KMeans(n_init=1), interleaved timings on 2
        # cores; numbers in docs/benchmarks.md):
        # - about 16 rows per colour and step, 512..2048: at k = 256, 2048 x 750 steps
        #   beat 1024 x 1500 and 4096 x 375 at the same number of samples.
        # - 750 steps from k = 33 on (1000 until 0.3: 0.9959 -> 0.9979 of KMeans's MSE at
        #   k = 256, 0.9938 -> 0.9957 at k = 64, for 20-25% less time; the polish's
        #   relocation of empty entries keeps the worst cases level); 500 x 512 up to
        #   k = 32, where fixed costs dominate.
        # - one Lloyd step against the rounded palette (squared loss only): 0.9973 ->
        #   0.9962 at k = 256, 0.9928 -> 0.9921 at k = 64, for 5-10 ms.
        k = _checks.check_k(k)
        changes: dict[str, Any] = {}
        if self.num_steps is None:
            changes["num_steps"] = 500 if k <= 32 else 750
        if self.batch_size is None:
            changes["batch_size"] = int(min(max(16 * k, 512), 2048))
        if isinstance(self.optimizer, str) and self.learning_rate is None:
            changes["learning_rate"] = default_learning_rate(self.optimizer, k)
        if self.num_lloyd_steps is None:
            changes["num_lloyd_steps"] = 1 if self.loss is None and self.rank == 2.0 else 0
        return dataclasses.replace(self, **changes) if changes else self

    @property
    def objective(self) -> Loss:
        """The loss minimised: ``loss``, or the power loss of ``rank``."""
        if self.loss is not None:
            return self.loss
        return make_power_loss(self.rank, layout=self.layout)

    def transform(self, k: int) -> optax.GradientTransformation:
        """The optax transformation of a run with ``k`` colours."""
        s = self.resolve(k)
        if isinstance(s.optimizer, str):
            lr = jnp.asarray(s.learning_rate, jnp.float32)
            return make_optimizer(s.optimizer, lr, s.sizes[0])
        return s.optimizer

    @property
    def sizes(self) -> tuple[int, int]:
        """``(num_steps, batch_size)`` of a resolved solver."""
        if self.num_steps is None or self.batch_size is None:
            raise ValueError("resolve(k) the solver first: num_steps and batch_size are unset")
        return self.num_steps, self.batch_size

    def init(self, problem: ColourSet, palette: jax.Array) -> SQState:
        """A fresh :class:`SQState` at ``palette`` (coordinates)."""
        palette = jnp.asarray(palette).astype(problem.float_dtype)
        dtype = palette.dtype
        return SQState(
            palette=palette,
            opt_state=self.transform(palette.shape[0]).init(palette),
            ema=jnp.zeros((), dtype),
            ema_checkpoint=jnp.full((), jnp.inf, dtype),
            done=jnp.zeros((), bool),
            num_steps=jnp.zeros((), jnp.int32),
        )

    def _update(self, state: SQState, batch: jax.Array, *, track: bool = True, frozen=None):
        """The step on a drawn minibatch: gradient, update, projection, bookkeeping.

        With ``track=False`` (a run without early stopping) the smoothed loss is not kept.
        Entries marked in ``frozen`` (``(k,)`` bool) keep their place (a projection onto
        the set of palettes that contain them).
        """
        k = state.palette.shape[0]
        s = self.resolve(k)
        value, grad = jax.value_and_grad(s.objective)(state.palette, batch)
        # Some optax transforms (adam's bias correction: float ** int32) are not clean
        # under jax_numpy_dtype_promotion="strict"; keep a user's strict mode from
        # breaking them.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = s.transform(k).update(grad, state.opt_state, state.palette)
        palette = jnp.clip(_optax().apply_updates(state.palette, updates), 0.0, 1.0)
        if frozen is not None:
            palette = jnp.where(frozen[:, None], state.palette, palette)
        n = state.num_steps + 1
        if not track:
            return state._replace(palette=palette, opt_state=opt_state, num_steps=n), value
        ema = jnp.where(
            state.num_steps == 0, value, _EMA_DECAY * state.ema + (1 - _EMA_DECAY) * value
        )
        check = (n % _CHECK_EVERY) == 0
        stalled = (state.ema_checkpoint - ema) <= s.tol * jnp.abs(ema)
        done = check & (n > _CHECK_EVERY) & stalled & (s.tol > 0)
        checkpoint = jnp.where(check, ema, state.ema_checkpoint)
        return SQState(palette, opt_state, ema, checkpoint, done, n), value

    def step(self, state: SQState, key: jax.Array, problem: ColourSet) -> tuple[SQState, Any]:
        """One SQ step on a fresh minibatch drawn with ``key``: ``(state, minibatch loss)``."""
        s = self.resolve(state.palette.shape[0])
        rows = draw_rows(key, problem.sampling_cdf(), (s.sizes[1],))
        return self._update(state, problem.coordinates(rows))

    def __call__(
        self,
        key: jax.Array,
        problem: ColourSet,
        palette: jax.Array,
        *,
        frozen: jax.Array | None = None,
    ) -> FitResult:
        """Run the SQ steps and the Lloyd polish from ``palette`` (coordinates).

        Entries marked in ``frozen`` (``(k,)`` bool) never move: every step and the
        polish leave them where they are, while the other entries fit around them.
        """
        s = self.resolve(palette.shape[0])
        num_steps, batch_size = s.sizes
        state = s.init(problem, palette)
        record = s.record
        if num_steps == 0:
            losses = jnp.zeros((0,), jnp.float32)
            history = state.palette[None] if record else None
        else:
            tol = s.tol

            # Up to POLISH_ROWS rows the coordinates are converted once and gathered per
            # step; a larger set's rows are gathered, then converted, per step, which
            # spares the (n, c) float copy (a 12 MP photo: 144 MB and its conversion).
            # The two round alike but XLA fuses them differently: the palettes differ
            # in the last bits, so the small sets keep the first form and their results.
            every = None if problem.num_rows > POLISH_ROWS else problem.coordinates()

            def points(rows):
                return problem.coordinates(rows) if every is None else every[rows]

            def step(state, rows):
                new, value = s._update(state, points(rows), track=tol > 0, frozen=frozen)
                return new, (value, new.palette if record else None)

            def maybe_step(state, rows):
                def skip(st, _):
                    return st, (st.ema, st.palette if record else None)

                return jax.lax.cond(state.done, skip, step, state, rows)

            body = maybe_step if tol > 0 else step
            block = _block_length(num_steps, batch_size)
            cdf = problem.sampling_cdf()

            def run_block(state, block_key):
                return jax.lax.scan(body, state, draw_rows(block_key, cdf, (block, batch_size)))

            first = state.palette
            keys = jax.random.split(key, num_steps // block)
            state, (losses, palettes) = jax.lax.scan(run_block, state, keys)
            losses = losses.reshape(num_steps)
            history = None
            if record:
                steps = palettes.reshape((num_steps,) + first.shape)
                history = jnp.concatenate([first[None], steps])
        result = s._polish(jax.random.fold_in(key, num_steps), problem, state.palette, frozen)
        status = jnp.where(jnp.all(jnp.isfinite(result)), Status.OK, Status.DIVERGED)
        return FitResult(result, losses, state.num_steps, status.astype(jnp.int32), history)

    def _polish(self, key, problem: ColourSet, palette: jax.Array, frozen=None) -> jax.Array:
        """The Lloyd steps after SQ, with empty entries relocated; on at most
        :data:`POLISH_ROWS` rows drawn by weight for larger sets."""
        if not self.num_lloyd_steps:
            return palette
        if problem.num_rows > POLISH_ROWS:
            rows = draw_rows(key, problem.sampling_cdf(), (POLISH_ROWS,))
            problem = ColourSet(
                jnp.asarray(problem.colours)[rows],
                jnp.ones((POLISH_ROWS,), jnp.float32),
                POLISH_ROWS,
                problem.space,
                True,
                problem.alpha,
            )
        if problem.integer and problem.space == "rgb" and not problem.alpha:
            return _lloyd_rounded(
                palette,
                jnp.asarray(problem.colours),
                jnp.asarray(problem.weights),
                num_steps=self.num_lloyd_steps,
                layout=self.layout,
                frozen=frozen,
                relocate=True,
            )
        palette, _, _ = _lloyd(
            palette,
            problem.coordinates(),
            jnp.asarray(problem.weights),
            num_steps=self.num_lloyd_steps,
            layout=self.layout,
            frozen=frozen,
            relocate=True,
        )
        return palette


# --------------------------------------------------------------------------------------
# Lloyd's k-means.


# Candidates for an entry that received no colours: the worst-served row of each of a
# few runs of rows per assignment chunk (scikit-learn's KMeans moves empty clusters to
# the points farthest from their centres); a few per chunk cover an image without a sort.
_CANDIDATE_GROUPS = 8


def _worst_rows(colours: jax.Array, dist: jax.Array, weights: jax.Array):
    """The farthest row of each of up to :data:`_CANDIDATE_GROUPS` runs of ``colours``:
    ``(rows (g, c), squared distances (g,))``; rows of weight 0 never count (-1)."""
    n = colours.shape[0]
    groups = max(1, min(_CANDIDATE_GROUPS, n))
    size = -(-n // groups)
    d = jnp.where(weights > 0, dist.astype(jnp.float32), -1.0)
    d = jnp.pad(d, (0, groups * size - n), constant_values=-1.0)
    best = jnp.argmax(d.reshape(groups, size), axis=1) + jnp.arange(groups) * size
    return colours[jnp.minimum(best, n - 1)], d[best]


def _relocate_empty(palette, counts, pool, pool_dist, frozen):
    """``palette`` with each entry that received no weight moved onto a candidate row.

    Empty entries are refilled in order, each with the candidate farthest from the
    palette (its distance to its old entry, then to the entries placed so far), so no two
    land on the same colour; a candidate at distance 0 is never used, so an image with
    fewer distinct colours than entries keeps its repeats. ``pool`` is in the palette's
    coordinates and ``pool_dist`` holds squared distances on the same scale.
    """
    empty = counts <= 0 if frozen is None else (counts <= 0) & ~frozen
    pool = pool.astype(palette.dtype)
    pool_dist = pool_dist.astype(palette.dtype)

    def refill(i, carry):
        palette, far = carry
        j = jnp.argmax(far)
        use = empty[i] & (far[j] > 0)
        palette = palette.at[i].set(jnp.where(use, pool[j], palette[i]))
        moved = jnp.sum((pool - pool[j][None, :]) ** 2, axis=1)
        return palette, jnp.where(use, jnp.minimum(far, moved), far)

    def run(palette):
        return jax.lax.fori_loop(0, palette.shape[0], refill, (palette, pool_dist))[0]

    return jax.lax.cond(jnp.any(empty), run, lambda p: p, palette)


def lloyd_step(
    palette: jax.Array,
    colours: jax.Array,
    weights: jax.Array,
    *,
    chunk_size: int = kernels.CHUNK_SIZE,
    layout: str | None = None,
    frozen: jax.Array | None = None,
    relocate: bool = False,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One exact Lloyd (k-means) iteration on weighted colours.

    Every colour is assigned to its nearest palette entry, and each entry moves to the
    weighted mean of its colours. An entry with no colours stays where it is, or, with
    ``relocate``, moves onto one of the colours farthest from their entries (as
    scikit-learn's ``KMeans`` relocates empty clusters), so that it serves colours
    again. Without ``relocate`` it never increases the squared loss.

    Args:
      palette: ``(k, c)`` float palette.
      colours: ``(n, c)`` float colours.
      weights: ``(n,)`` non-negative weights.
      chunk_size: rows per assignment chunk.
      layout: the nearest-colour search (:data:`jaxquant.kernels.LAYOUTS`).
      frozen: optional ``(k,)`` bool: entries that stay where they are (they still take
        their colours).
      relocate: move entries that received no weight onto far colours (never ``frozen``
        ones).

    Returns:
      ``(new_palette, loss_before, counts)``: the loss (weighted mean squared distance) of
      the palette it started from, and the weight each entry received.
    """
    idx, dist = kernels.assign(colours, palette, chunk_size=chunk_size, layout=layout)
    k = palette.shape[0]
    w = weights.astype(palette.dtype)
    sums = jax.ops.segment_sum(w[:, None] * colours, idx, num_segments=k)
    counts = jax.ops.segment_sum(w, idx, num_segments=k)
    move = counts > 0 if frozen is None else (counts > 0) & ~frozen
    new = jnp.where(move[:, None], sums / jnp.maximum(counts, 1e-30)[:, None], palette)
    if relocate:
        chunk = chunk_rows(colours.shape[0], chunk_size)
        pool, pool_dist = jax.vmap(_worst_rows)(
            in_chunks(colours, chunk), in_chunks(dist, chunk), in_chunks(w, chunk)
        )
        new = _relocate_empty(
            new, counts, pool.reshape(-1, colours.shape[1]), pool_dist.reshape(-1), frozen
        )
    loss = jnp.sum(w * dist) / jnp.maximum(jnp.sum(w), 1e-30)
    return new, loss, counts


def _lloyd_rounded(
    palette: jax.Array,
    colours: jax.Array,
    weights: jax.Array,
    *,
    num_steps: int,
    layout: str | None = None,
    chunk_size: int = kernels.CHUNK_SIZE,
    frozen: jax.Array | None = None,
    relocate: bool = False,
) -> jax.Array:
    """Lloyd steps for uint8 colours, each against the palette rounded to uint8.

    ``palette`` is on the ``[0, 1]`` scale. Every step assigns each colour to its nearest
    colour of the *rounded* palette (the exact integer assignment, 3x faster than the
    float one) and moves each palette colour to the weighted mean of its colours: Lloyd's
    step for the palette that will actually be used. The sums are accumulated chunk by
    chunk, so the step needs ``O(chunk_size)`` memory beyond its inputs. With
    ``relocate``, entries that received no colour move onto far colours (as in
    :func:`lloyd_step`).
    """
    k, c = palette.shape
    chunk = chunk_rows(colours.shape[0], chunk_size)
    xs = in_chunks(colours, chunk)  # padding rows get weight 0
    ws = in_chunks(weights.astype(jnp.float32), chunk)

    def step(palette, _):
        rounded = jnp.round(palette * 255.0).astype(jnp.uint8)

        def accumulate(carry, part):
            sums, counts = carry
            xc, wc = part
            idx, dist = kernels.assign(xc, rounded, chunk_size=chunk, layout=layout)
            sums = sums + jax.ops.segment_sum(wc[:, None] * xc.astype(jnp.float32), idx, k)
            worst = _worst_rows(xc, dist, wc) if relocate else None
            return (sums, counts + jax.ops.segment_sum(wc, idx, k)), worst

        zeros = (jnp.zeros((k, c), jnp.float32), jnp.zeros((k,), jnp.float32))
        (sums, counts), worst = jax.lax.scan(accumulate, zeros, (xs, ws))
        mean = sums / (255.0 * jnp.maximum(counts, 1e-30))[:, None]
        move = counts > 0 if frozen is None else (counts > 0) & ~frozen
        new = jnp.where(move[:, None], mean, palette)
        if relocate:
            pool = worst[0].reshape(-1, c).astype(jnp.float32) / 255.0
            far = worst[1].reshape(-1) / 255.0**2
            new = _relocate_empty(new, counts, pool, far, frozen)
        return new, None

    return jax.lax.scan(step, palette, None, length=num_steps)[0]


class LloydState(NamedTuple):
    """State of the Lloyd loop.

    Attributes:
      palette: ``(k, c)`` current palette (coordinates).
      loss: the loss before the last step taken (inf before the first).
      done: whether the tolerance test has stopped the run.
      num_steps: steps actually taken.
    """

    palette: jax.Array
    loss: jax.Array
    done: jax.Array
    num_steps: jax.Array


def _lloyd(
    palette: jax.Array,
    colours: jax.Array,
    weights: jax.Array,
    *,
    num_steps: int,
    tol: float = 0.0,
    layout: str | None = None,
    chunk_size: int = kernels.CHUNK_SIZE,
    frozen: jax.Array | None = None,
    relocate: bool = False,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``num_steps`` Lloyd iterations in ``lax.scan``, stopping early on ``tol``.

    Returns:
      ``(palette, losses, steps_run)``; ``losses[i]`` is the loss before step ``i``.
    """

    def step(carry, _):
        palette, prev, done, n = carry

        def run(palette):
            new, value, _ = lloyd_step(
                palette,
                colours,
                weights,
                chunk_size=chunk_size,
                layout=layout,
                frozen=frozen,
                relocate=relocate,
            )
            return new, value

        def skip(palette):
            return palette, prev

        new, value = jax.lax.cond(done, skip, run, palette) if tol > 0 else run(palette)
        stalled = (prev - value) <= tol * value
        return (new, value, done | ((tol > 0) & stalled), n + (~done).astype(jnp.int32)), value

    init = (palette, jnp.full((), jnp.inf, palette.dtype), jnp.zeros((), bool), jnp.int32(0))
    (palette, _, _, n), losses = jax.lax.scan(step, init, None, length=num_steps)
    return palette, losses, n


@dataclasses.dataclass(frozen=True)
class Lloyd:
    """Lloyd's k-means: exact iterations on every row, the baseline SQ is measured against.

    Each step assigns every row to its nearest palette colour and moves each colour to
    the weighted mean of its rows; it costs ``O(n · k)``, so it gains from a
    deduplicated problem (``deduplicate = True``). Iteration stops once the loss falls by
    less than ``tol`` relative to its value, as scikit-learn's ``tol`` does on centre
    shifts.

    Attributes:
      num_steps: most iterations.
      tol: relative loss decrease below which iteration stops (0 runs every step).
      layout: the nearest-colour search (:data:`jaxquant.kernels.LAYOUTS`).
    """

    num_steps: int = 300
    tol: float = 1e-4
    layout: str | None = None

    deduplicate: ClassVar[bool] = True

    def __post_init__(self):
        _checks.check_count("num_steps", self.num_steps, minimum=0, maximum=10**6)
        _checks.check_non_negative("tol", self.tol)
        if self.layout is not None:
            kernels.resolve_layout(self.layout)

    def resolve(self, k: int) -> Lloyd:
        """This solver (it has no defaults that depend on ``k``)."""
        _checks.check_k(k)
        return self

    def init(self, problem: ColourSet, palette: jax.Array) -> LloydState:
        """A fresh :class:`LloydState` at ``palette`` (coordinates)."""
        palette = jnp.asarray(palette).astype(problem.float_dtype)
        inf = jnp.full((), jnp.inf, palette.dtype)
        return LloydState(palette, inf, jnp.zeros((), bool), jnp.int32(0))

    def step(self, state: LloydState, key: jax.Array, problem: ColourSet):
        """One Lloyd iteration (``key`` is unused): ``(state, loss before the step)``."""
        del key
        new, value, _ = lloyd_step(
            state.palette, problem.coordinates(), jnp.asarray(problem.weights), layout=self.layout
        )
        stalled = (state.loss - value) <= self.tol * value
        done = state.done | ((self.tol > 0) & stalled)
        return LloydState(new, value, done, state.num_steps + 1), value

    def __call__(
        self,
        key: jax.Array,
        problem: ColourSet,
        palette: jax.Array,
        *,
        frozen: jax.Array | None = None,
    ) -> FitResult:
        """Iterate from ``palette`` (coordinates) until converged or ``num_steps`` ran;
        entries marked in ``frozen`` (``(k,)`` bool) stay where they are."""
        del key
        palette, losses, n = _lloyd(
            jnp.asarray(palette).astype(problem.float_dtype),
            problem.coordinates(),
            jnp.asarray(problem.weights),
            num_steps=self.num_steps,
            tol=self.tol,
            layout=self.layout,
            frozen=frozen,
        )
        status = jnp.where(jnp.all(jnp.isfinite(palette)), Status.OK, Status.DIVERGED)
        return FitResult(palette, losses, n, status.astype(jnp.int32))


# --------------------------------------------------------------------------------------
# Pytree registration: only the learning rate is a leaf, so it is traced; everything else
# is static and compared by value.


def _register(cls, leaves: tuple[str, ...]):
    names = tuple(f.name for f in dataclasses.fields(cls))
    static = tuple(n for n in names if n not in leaves)

    def flatten(obj):
        children = tuple((jax.tree_util.GetAttrKey(n), getattr(obj, n)) for n in leaves)
        return children, tuple(getattr(obj, n) for n in static)

    def unflatten(aux, children):
        # Bypasses __init__: JAX rebuilds pytrees with placeholder leaves.
        obj = object.__new__(cls)
        for n, v in zip(leaves, children, strict=True):
            object.__setattr__(obj, n, v)
        for n, v in zip(static, aux, strict=True):
            object.__setattr__(obj, n, v)
        return obj

    jax.tree_util.register_pytree_with_keys(cls, flatten, unflatten)


_register(SQ, ("learning_rate",))
_register(Lloyd, ())
