"""How to iterate: SQ steps under any optax optimizer, Lloyd steps, chunked assignment.

Everything here works on a weighted set of colours ``(colours (n, c), weights (n,))`` on
the ``[0, 1]`` scale, padded to a fixed size with zero weights, so that one compiled
program serves every image whose distinct-colour count falls in the same bucket.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxquant.losses import Loss, _fold_palette
from jaxquant.seeding import _sample_from_cdf

__all__ = [
    "OPTIMIZERS",
    "SQState",
    "assign",
    "default_learning_rate",
    "lloyd_step",
    "make_optimizer",
    "sq_fit",
    "sq_step",
]

# name -> (optax factory taking a learning rate or schedule, base learning rate at k=16,
# exponent e: the rate scales like k^e). Plain and momentum SGD see gradients of size
# ~1/k per colour (each colour gets ~1/k of a batch), so their rate grows like k. The
# adaptive methods normalise the gradient, so their rate is a distance in colour space:
# it shrinks like the spacing of k colours in 3-D, k^(-1/3). Adam's was retuned on CQ100
# to k^(-0.45): at k = 64 and 256 the k^(-1/3) rate let colours overshoot into empty
# regions and die (benchmarks/tune.py, docs/benchmarks.md).
_OPTIMIZERS: dict[str, tuple[Callable[..., optax.GradientTransformation], float, float]] = {
    "sgd": (optax.sgd, 3.2, 1.0),
    "momentum": (lambda lr: optax.sgd(lr, momentum=0.9), 0.64, 1.0),
    "nesterov": (lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True), 0.64, 1.0),
    "adagrad": (optax.adagrad, 1.6, -1 / 3),
    "rmsprop": (optax.rmsprop, 0.04, -1 / 3),
    "adam": (optax.adam, 0.04, -0.45),
}
OPTIMIZERS: tuple[str, ...] = tuple(_OPTIMIZERS)
"""Names of the built-in optimizers."""

# The default schedule decays the rate geometrically to this fraction of its start: the
# steps shrink (as SQ's convergence theorem asks, sum rho = inf, sum rho^2 < inf in the
# limit) while the first steps still move colours across the cube.
_FINAL_LR_FRACTION = 0.01


def default_learning_rate(optimizer: str, k: int) -> float:
    """The tuned starting learning rate of a built-in optimizer for ``k`` colours."""
    _, base, exponent = _lookup(optimizer)
    return base * (k / 16) ** exponent


def _lookup(name: str):
    try:
        return _OPTIMIZERS[name]
    except KeyError:
        valid = ", ".join(OPTIMIZERS)
        raise ValueError(f"unknown optimizer {name!r}; valid names: {valid}") from None


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


class SQState(NamedTuple):
    """State of the SQ loop.

    Attributes:
      palette: ``(k, c)`` current palette on the ``[0, 1]`` scale.
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


_EMA_DECAY = 0.9
_CHECK_EVERY = 20


def _draw(key: jax.Array, cdf: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Row indices drawn by weight (``cdf`` cumulative weights) or uniformly from a prefix.

    ``cdf`` is either the ``(n,)`` cumulative weights (a binary search per sample) or a
    scalar ``m``: the first ``m`` rows equally likely, the rest never drawn.
    """
    if jnp.ndim(cdf) == 0:
        return jax.random.randint(key, shape, 0, jnp.maximum(cdf, 1))
    return _sample_from_cdf(key, cdf, shape)


def _update(
    state: SQState,
    batch: jax.Array,
    *,
    loss: Loss,
    optimizer: optax.GradientTransformation,
    tol: float,
    track: bool = True,
) -> tuple[SQState, jax.Array]:
    """The step on a drawn minibatch: gradient, optimizer update, projection, bookkeeping.

    With ``track=False`` (a fit without early stopping) the smoothed loss is not kept.
    """
    value, grad = jax.value_and_grad(loss)(state.palette, batch)
    # Some optax transforms (adam's bias correction: float ** int32) are not clean under
    # jax_numpy_dtype_promotion="strict"; keep a user's strict mode from breaking them.
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = optimizer.update(grad, state.opt_state, state.palette)
    palette = jnp.clip(optax.apply_updates(state.palette, updates), 0.0, 1.0)
    n = state.num_steps + 1
    if not track:
        return state._replace(palette=palette, opt_state=opt_state, num_steps=n), value
    ema = jnp.where(state.num_steps == 0, value, _EMA_DECAY * state.ema + (1 - _EMA_DECAY) * value)
    check = (n % _CHECK_EVERY) == 0
    stalled = (state.ema_checkpoint - ema) <= tol * jnp.abs(ema)
    done = check & (n > _CHECK_EVERY) & stalled & (tol > 0)
    checkpoint = jnp.where(check, ema, state.ema_checkpoint)
    return SQState(palette, opt_state, ema, checkpoint, done, n), value


def sq_step(
    state: SQState,
    key: jax.Array,
    colours: jax.Array,
    cdf: jax.Array,
    *,
    loss: Loss,
    optimizer: optax.GradientTransformation,
    batch_size: int,
    tol: float = 0.0,
) -> tuple[SQState, jax.Array]:
    """One Stochastic Quantization step.

    Draws ``batch_size`` pixels from the weighted colours (with replacement, probability
    by weight), takes the gradient of ``loss`` at the current palette (only each sampled
    pixel's nearest colour moves), applies the optimizer's update and projects the
    palette back onto the colour cube ``[0, 1]^c``.

    Args:
      state: the current :class:`SQState`.
      key: a PRNG key for this step's minibatch.
      colours: ``(n, c)`` colours on ``[0, 1]``.
      cdf: ``(n,)`` cumulative sum of the colours' non-negative weights (pixel counts;
        0 for padding), computed once per fit: ``jnp.cumsum(weights)``; or a scalar
        integer ``m``: the first ``m`` rows are equally likely and the rest never drawn
        (no binary search: about 3x cheaper).
      loss: the objective.
      optimizer: the optax transformation.
      batch_size: pixels per step.
      tol: relative decrease of the smoothed loss per 20 steps below which the run
        stops (0 disables the test).

    Returns:
      ``(new_state, minibatch_loss)``.
    """
    batch = colours[_draw(key, cdf, (batch_size,))]
    return _update(state, batch, loss=loss, optimizer=optimizer, tol=tol)


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


def _sq_run(
    key: jax.Array,
    state: SQState,
    colours: jax.Array,
    cdf: jax.Array,
    *,
    loss: Loss,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    batch_size: int,
    tol: float = 0.0,
    record: bool = False,
):
    """``num_steps`` SQ steps from ``state``: ``(state, losses, palettes or None)``.

    With ``record=True`` the palette after every step is returned too, ``(num_steps, k,
    c)`` (for the convergence animation).
    """
    if num_steps == 0:
        empty = jnp.zeros((0,) + state.palette.shape, state.palette.dtype)
        return state, jnp.zeros((0,), state.palette.dtype), (empty if record else None)

    def step(state, index):
        new, value = _update(
            state, colours[index], loss=loss, optimizer=optimizer, tol=tol, track=tol > 0
        )
        return new, (value, new.palette if record else None)

    def maybe_step(state, index):
        def skip(s, _):
            return s, (s.ema, s.palette if record else None)

        return jax.lax.cond(state.done, skip, step, state, index)

    body = maybe_step if tol > 0 else step
    block = _block_length(num_steps, batch_size)

    def run_block(state, block_key):
        return jax.lax.scan(body, state, _draw(block_key, cdf, (block, batch_size)))

    keys = jax.random.split(key, num_steps // block)
    state, (losses, palettes) = jax.lax.scan(run_block, state, keys)
    if record:
        palettes = palettes.reshape((num_steps,) + state.palette.shape)
    return state, losses.reshape(num_steps), palettes


def init_state(palette: jax.Array, optimizer: optax.GradientTransformation) -> SQState:
    """The :class:`SQState` a fit starts from: ``palette`` and a fresh optimizer state."""
    dtype = palette.dtype
    return SQState(
        palette=palette,
        opt_state=optimizer.init(palette),
        ema=jnp.zeros((), dtype),
        ema_checkpoint=jnp.full((), jnp.inf, dtype),
        done=jnp.zeros((), bool),
        num_steps=jnp.zeros((), jnp.int32),
    )


def sq_fit(
    key: jax.Array,
    palette: jax.Array,
    colours: jax.Array,
    weights: jax.Array,
    *,
    loss: Loss,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    batch_size: int,
    tol: float = 0.0,
    uniform: bool = False,
) -> tuple[SQState, jax.Array]:
    """Run ``num_steps`` SQ steps (:func:`sq_step`) in ``lax.scan``.

    The minibatches of a block of steps are drawn at once before the block runs (the
    same distribution as :func:`sq_step`'s, without a PRNG call per step).

    With ``tol > 0`` the steps after convergence are skipped (``lax.cond``) and the loss
    trace repeats the last value; ``state.num_steps`` says how many ran. With ``tol = 0``
    the smoothed loss is not tracked (``state.ema`` stays 0).

    With ``uniform=True`` the caller promises that the weights are equal on a prefix of
    the rows and 0 after it (an image's pixels followed by padding); minibatches are
    then drawn uniformly from the prefix, without a binary search per sample.

    Returns:
      ``(final_state, losses)`` with ``losses`` of shape ``(num_steps,)``.
    """
    state = init_state(palette, optimizer)
    if uniform:
        cdf = jnp.sum(weights > 0).astype(jnp.int32)
    else:
        cdf = jnp.cumsum(weights.astype(palette.dtype))
    state, losses, _ = _sq_run(
        key,
        state,
        colours,
        cdf,
        loss=loss,
        optimizer=optimizer,
        num_steps=num_steps,
        batch_size=batch_size,
        tol=tol,
    )
    return state, losses


# Rows per chunk of the exact assignment: small enough for a chunk (channels first) to
# stay in cache across the loop over the palette, large enough to amortise the loop
# (8192 was fastest of 2048..32768 at k = 256 on a 2-core CPU, bench_kernels.py).
CHUNK_SIZE = 8192


def _chunks(x: jax.Array, chunk: int) -> jax.Array:
    return x.reshape((x.shape[0] // chunk, chunk) + x.shape[1:])


def _chunk_size(n: int, chunk: int) -> int:
    """Rows per chunk for ``n`` rows: at most ``chunk``, and as even as possible."""
    num_chunks = -(-n // max(min(chunk, n), 1))
    return -(-n // num_chunks)


def _pad_rows(x: jax.Array, rows: int) -> jax.Array:
    """``x`` with zero rows appended up to ``rows`` rows."""
    if x.shape[0] == rows:
        return x
    return jnp.pad(x, [(0, rows - x.shape[0])] + [(0, 0)] * (x.ndim - 1))


def assign(
    pixels: jax.Array, palette: jax.Array, *, chunk_size: int = CHUNK_SIZE
) -> tuple[jax.Array, jax.Array]:
    """Exact nearest palette colour of every pixel, in memory-bounded chunks.

    On CPU each chunk of pixels runs one loop over the palette keeping the best colour
    so far, so memory is ``O(chunk_size · c)`` whatever the number of pixels and
    colours; on GPU and TPU each chunk builds its ``(k, chunk_size)`` distances (one
    kernel). Ties go to the lowest index. Integer inputs (e.g. uint8 pixels and a uint8 palette)
    use exact integer arithmetic, packing distance and index into one int32 so that a
    single integer minimum keeps both; floats keep an exact running minimum.

    Args:
      pixels: ``(n, c)`` colours, integer or float.
      palette: ``(k, c)`` colours of the same kind.
      chunk_size: most rows per chunk (``n`` is split into equal chunks, the last one
        padded).

    Returns:
      ``(indices, sq_dist)`` of shape ``(n,)``: int32 indices and squared distances
      (int32 for integer inputs, float otherwise).

    Examples:
      >>> import jax.numpy as jnp
      >>> idx, d = assign(jnp.array([[0, 0, 0], [250, 250, 250]], jnp.uint8),
      ...                 jnp.array([[255, 255, 255], [1, 2, 3]], jnp.uint8))
      >>> idx.tolist(), d.tolist()
      ([1, 0], [14, 75])
    """
    n, c = pixels.shape
    k = palette.shape[0]
    integer = jnp.issubdtype(pixels.dtype, jnp.integer) and jnp.issubdtype(
        palette.dtype, jnp.integer
    )
    index_bits = max(int(k - 1).bit_length(), 1)
    max_value = 255 if integer and pixels.dtype.itemsize == 1 else None
    # Packing needs distance bits + index bits <= 31: true for 8-bit colours up to 2^13.
    packed = integer and max_value is not None and (c * 255**2).bit_length() + index_bits <= 31
    if n == 0:
        return jnp.zeros((0,), jnp.int32), jnp.zeros((0,), jnp.int32 if integer else pixels.dtype)
    if packed:
        dtype = jnp.int32
    else:
        dtype = jnp.promote_types(pixels.dtype, palette.dtype)
        if jnp.issubdtype(dtype, jnp.integer):
            dtype = jnp.int64 if jax.config.jax_enable_x64 else jnp.float32
    y = palette.astype(dtype)
    chunk = _chunk_size(n, chunk_size)
    low = (1 << index_bits) - 1

    def pack(d, i):
        return (d << index_bits) | i

    def body(xc):
        xc = xc.T.astype(dtype)  # (c, chunk): channels first, transposed chunk by chunk
        if packed:
            p = _fold_palette(xc, y, pack)
            return p & low, p >> index_bits
        best_d, best_i = _fold_palette(xc, y)
        return best_i, best_d

    padded = -(-n // chunk) * chunk  # chunks of equal size; the padding rows are dropped
    idx, dist = jax.lax.map(body, _chunks(_pad_rows(pixels, padded), chunk))
    return idx.reshape(padded)[:n], dist.reshape(padded)[:n]


def lloyd_step(
    palette: jax.Array, colours: jax.Array, weights: jax.Array, *, chunk_size: int = CHUNK_SIZE
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One exact Lloyd (k-means) iteration on weighted colours.

    Every colour is assigned to its nearest palette entry, and each entry moves to the
    weighted mean of its colours; an entry with no colours stays where it is. Never
    increases the squared loss.

    Args:
      palette: ``(k, c)`` float palette.
      colours: ``(n, c)`` float colours.
      weights: ``(n,)`` non-negative weights.
      chunk_size: rows per assignment chunk.

    Returns:
      ``(new_palette, loss_before, counts)``: the loss (weighted mean squared distance) of
      the palette it started from, and the weight each entry received.
    """
    idx, dist = assign(colours, palette, chunk_size=chunk_size)
    k = palette.shape[0]
    w = weights.astype(palette.dtype)
    sums = jax.ops.segment_sum(w[:, None] * colours, idx, num_segments=k)
    counts = jax.ops.segment_sum(w, idx, num_segments=k)
    new = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1e-30)[:, None], palette)
    loss = jnp.sum(w * dist) / jnp.maximum(jnp.sum(w), 1e-30)
    return new, loss, counts


def _lloyd_rounded(
    palette: jax.Array,
    colours: jax.Array,
    weights: jax.Array,
    *,
    num_steps: int,
    chunk_size: int = CHUNK_SIZE,
) -> jax.Array:
    """Lloyd steps for uint8 colours, each against the palette rounded to uint8.

    ``palette`` is on the ``[0, 1]`` scale. Every step assigns each colour to its nearest
    colour of the *rounded* palette (the exact integer assignment, 3x faster than the
    float one) and moves each palette colour to the weighted mean of its colours: Lloyd's
    step for the palette that will actually be used. The sums are accumulated chunk by
    chunk, so the step needs ``O(chunk_size)`` memory beyond its inputs.
    """
    k, c = palette.shape
    n = colours.shape[0]
    chunk = _chunk_size(n, chunk_size)
    padded = -(-n // chunk) * chunk  # padding rows get weight 0
    xs = _chunks(_pad_rows(colours, padded), chunk)
    ws = _chunks(_pad_rows(weights.astype(jnp.float32), padded), chunk)

    def step(palette, _):
        rounded = jnp.round(palette * 255.0).astype(jnp.uint8)

        def accumulate(carry, part):
            sums, counts = carry
            xc, wc = part
            idx, _ = assign(xc, rounded, chunk_size=chunk)
            sums = sums + jax.ops.segment_sum(wc[:, None] * xc.astype(jnp.float32), idx, k)
            return (sums, counts + jax.ops.segment_sum(wc, idx, k)), None

        zeros = (jnp.zeros((k, c), jnp.float32), jnp.zeros((k,), jnp.float32))
        (sums, counts), _ = jax.lax.scan(accumulate, zeros, (xs, ws))
        mean = sums / (255.0 * jnp.maximum(counts, 1e-30))[:, None]
        return jnp.where(counts[:, None] > 0, mean, palette), None

    return jax.lax.scan(step, palette, None, length=num_steps)[0]


def lloyd(
    palette: jax.Array,
    colours: jax.Array,
    weights: jax.Array,
    *,
    num_steps: int,
    tol: float = 0.0,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``num_steps`` Lloyd iterations in ``lax.scan``, stopping early on ``tol``.

    Iteration stops (the remaining ones are skipped) once the loss falls by less than
    ``tol`` relative to its value, as scikit-learn's ``tol`` does on centre shifts.

    Returns:
      ``(palette, losses, steps_run)``; ``losses[i]`` is the loss before step ``i``.
    """

    def step(carry, _):
        palette, prev, done, n = carry

        def run(palette):
            new, value, _ = lloyd_step(palette, colours, weights, chunk_size=chunk_size)
            return new, value

        def skip(palette):
            return palette, prev

        new, value = jax.lax.cond(done, skip, run, palette) if tol > 0 else run(palette)
        stalled = (prev - value) <= tol * value
        return (new, value, done | ((tol > 0) & stalled), n + (~done).astype(jnp.int32)), value

    init = (palette, jnp.full((), jnp.inf, palette.dtype), jnp.zeros((), bool), jnp.int32(0))
    (palette, _, _, n), losses = jax.lax.scan(step, init, None, length=num_steps)
    return palette, losses, n
