"""Small numeric helpers shared by the kernels, losses, seeding and solvers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def safe_pow(sq: jax.Array, half_rank: float) -> jax.Array:
    """``sq ** half_rank`` with a zero (not NaN or inf) gradient at ``sq == 0``."""
    if half_rank == 1.0:
        return sq
    positive = sq > 0
    safe = jnp.where(positive, sq, 1.0)
    return jnp.where(positive, safe**half_rank, 0.0)


def weighted_mean(values: jax.Array, weights: jax.Array | None) -> jax.Array:
    """Mean of ``values``, weighted; 0 (not NaN) when every weight is 0."""
    if weights is None:
        return jnp.mean(values)
    weights = weights.astype(values.dtype)
    # The max() keeps an all-zero weight vector (an empty padded batch) from dividing by 0.
    return jnp.sum(weights * values) / jnp.maximum(jnp.sum(weights), 1e-30)


def chunk_rows(n: int, chunk: int) -> int:
    """Rows per chunk for ``n`` rows: at most ``chunk``, and as even as possible."""
    num_chunks = -(-n // max(min(chunk, n), 1))
    return -(-n // num_chunks)


def pad_rows(x: jax.Array, rows: int) -> jax.Array:
    """``x`` with zero rows appended up to ``rows`` rows."""
    if x.shape[0] == rows:
        return x
    return jnp.pad(x, [(0, rows - x.shape[0])] + [(0, 0)] * (x.ndim - 1))


def in_chunks(x: jax.Array, chunk: int) -> jax.Array:
    """``x`` padded with zero rows to a multiple of ``chunk`` and split: ``(m, chunk, ...)``."""
    rows = -(-x.shape[0] // chunk) * chunk
    x = pad_rows(x, rows)
    return x.reshape((rows // chunk, chunk) + x.shape[1:])


def to_device(x, dtype=None) -> jax.Array:
    """A concrete value as a device array, without compiling anything.

    ``jnp.asarray`` of a NumPy array runs a small compiled program (one per shape and
    dtype), which costs a fresh process its first MLIR lowering; ``jax.device_put`` only
    copies. Device arrays of the right dtype pass through unchanged.
    """
    if isinstance(x, jax.Array) and (dtype is None or x.dtype == dtype):
        return x
    return jax.device_put(np.asarray(x, dtype))
