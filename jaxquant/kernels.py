"""The nearest-colour search: which palette colour is closest to each pixel, exactly.

Three layouts compute the same answer:

- ``"loop"`` loops over the palette with the pixels as the vector axis, keeping the best
  colour so far: ``O(n)`` memory and no reduction over a short minor axis, which XLA:CPU
  runs slowly. 3-4x faster than the matrix on a CPU (``benchmarks/bench_kernels.py``).
- ``"matrix"`` builds the ``(k, n)`` distances and reduces over the palette axis: one
  kernel, what GPUs and TPUs prefer.
- ``"gemm"`` ranks the colours by the expanded form ``|y|^2 - 2 y.x`` (one matrix
  product, ``O(n·k·c)`` flops in BLAS), for vectors with many channels, where the other
  two unroll one term per channel. The expanded form cancels for near-equal vectors, so
  near-ties (relative ``~1e-6``) may go either way; :func:`assign` recomputes the
  distance to the chosen colour directly, so the distances it returns are exact.

Every function takes ``layout=None`` (the default: ``"gemm"`` for more than
:data:`GEMM_CHANNELS` channels, otherwise ``"loop"`` on CPU and ``"matrix"`` on other
backends, decided when the function is traced) or a layout by name. The layout is an
explicit, static argument, never a global switch, so a compiled program always says
which one it runs.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxquant import _names, _ops

__all__ = [
    "CHUNK_SIZE",
    "GEMM_CHANNELS",
    "LAYOUTS",
    "assign",
    "nearest_index",
    "resolve_layout",
]

LAYOUTS = _names.LAYOUTS
"""The layouts of the nearest-colour search: ``("loop", "matrix", "gemm")``."""

GEMM_CHANNELS = 8
"""Above this many channels, ``layout=None`` means ``"gemm"`` (benchmarks/bench_vectors.py)."""

# Rows per chunk of the exact assignment: small enough for a chunk (channels first) to
# stay in cache across the loop over the palette, large enough to amortise the loop
# (8192 was fastest of 2048..32768 at k = 256 on a 2-core CPU, bench_kernels.py).
CHUNK_SIZE = 8192
"""Default rows per chunk of :func:`assign`."""

# Palette colours per iteration of the palette loop: XLA:CPU fuses the unrolled
# iterations into one pass over the pixels (benchmarks/bench_kernels.py).
_UNROLL = 8


def resolve_layout(layout: str | None, *, channels: int | None = None) -> str:
    """``layout`` by name, or the default for ``None``: ``"gemm"`` for more than
    :data:`GEMM_CHANNELS` ``channels``, else the backend's (``"loop"`` on CPU).

    Raises:
      ValueError: for an unknown name.

    Examples:
      >>> resolve_layout("matrix"), resolve_layout(None) in LAYOUTS
      ('matrix', True)
      >>> resolve_layout(None, channels=64)
      'gemm'
    """
    if layout is None:
        if channels is not None and channels > GEMM_CHANNELS:
            return "gemm"
        return "loop" if jax.default_backend() == "cpu" else "matrix"
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    return layout


def _gemm_scores(pixels_t: jax.Array, palette: jax.Array) -> jax.Array:
    """``(k, n)`` squared distances by the expanded form, clamped at 0 (floats)."""
    y = palette.astype(pixels_t.dtype)
    cross = jnp.matmul(y, pixels_t, precision=jax.lax.Precision.HIGHEST)
    sq_y = jnp.sum(y * y, axis=1)[:, None]
    sq_x = jnp.sum(pixels_t * pixels_t, axis=0)[None, :]
    return jnp.maximum(sq_y - 2.0 * cross + sq_x, 0.0)


def _fold_palette(pixels_t: jax.Array, palette: jax.Array, layout: str, pack=None):
    """The nearest of ``palette``'s colours to each pixel of ``pixels_t`` (``(c, n)``).

    With ``pack=None``, returns the exact ``(sq_dist, index)`` (ties to the lowest
    index). With ``pack(d, i) -> int32`` (a key ordered by distance, then index), returns
    the smallest key: one integer min-reduction finds distance and index at once.
    """
    palette = jnp.asarray(palette)
    k, c = palette.shape
    n = pixels_t.shape[1]
    if layout in ("matrix", "gemm"):
        d: Any
        if layout == "gemm":
            d = _gemm_scores(pixels_t, palette)
        else:
            d = sum((palette[:, j, None] - pixels_t[None, j, :]) ** 2 for j in range(c))
        iota = jnp.arange(k, dtype=jnp.int32)[:, None]
        if pack is not None:
            return jnp.min(pack(d, iota), axis=0)
        m = jnp.min(d, axis=0)
        return m, jnp.min(jnp.where(d <= m[None, :], iota, k), axis=0)

    init: Any
    if pack is not None:

        def combine(best, i, d):
            return jnp.minimum(best, pack(d, i))

        init = jnp.full((n,), jnp.iinfo(jnp.int32).max, jnp.int32)
    else:

        def combine(carry, i, d):
            best_d, best_i = carry
            better = d < best_d  # strict: an equal later colour never replaces an earlier one
            return jnp.where(better, d, best_d), jnp.where(better, i, best_i)

        if jnp.issubdtype(pixels_t.dtype, jnp.floating):
            big = jnp.inf
        else:
            big = jnp.iinfo(pixels_t.dtype).max
        init = (jnp.full((n,), big, pixels_t.dtype), jnp.zeros((n,), jnp.int32))

    def body(i, carry):
        d = sum((pixels_t[j] - palette[i, j]) ** 2 for j in range(c))
        return combine(carry, i, d)

    return jax.lax.fori_loop(0, k, body, init, unroll=min(_UNROLL, k))


def nearest_index(pixels: jax.Array, palette: jax.Array, *, layout: str | None = None) -> jax.Array:
    """Index of each pixel's nearest palette colour, in one pass (no gradient).

    For float32 and up to 1024 colours, each non-negative distance is packed with its
    index into the low bits of one int32 (``ceil(log2 k)`` bits), so that one integer
    minimum returns the index: candidates whose distances agree to a relative
    ``2^(bits-23)`` count as tied (lowest index wins), immaterial for a stochastic
    gradient. Otherwise an exact minimum (ties to the lowest index). For exact distances
    and memory-bounded chunks use :func:`assign`.

    Args:
      pixels: ``(n, c)`` colours.
      palette: ``(k, c)`` colours.
      layout: ``"loop"``, ``"matrix"``, ``"gemm"`` or ``None`` (the default for the
        number of channels and the backend).

    Returns:
      ``(n,)`` int32 indices.

    Examples:
      >>> import jax.numpy as jnp
      >>> nearest_index(jnp.array([[0.0], [0.9]]), jnp.array([[1.0], [0.1]])).tolist()
      [1, 0]
    """
    layout = resolve_layout(layout, channels=palette.shape[-1])
    k = palette.shape[0]
    p = jax.lax.stop_gradient(jnp.asarray(pixels)).T
    if not jnp.issubdtype(p.dtype, jnp.floating):
        p = p.astype(jnp.float32)
    y = jax.lax.stop_gradient(palette).astype(p.dtype)
    bits = max(int(k - 1).bit_length(), 1)
    if p.dtype == jnp.float32 and bits <= 10:
        low = (1 << bits) - 1

        def pack(d, i):
            return (jax.lax.bitcast_convert_type(d, jnp.int32) & ~low) | i

        return _fold_palette(p, y, layout, pack) & low
    return _fold_palette(p, y, layout)[1]


def assign(
    pixels: jax.Array,
    palette: jax.Array,
    *,
    chunk_size: int = CHUNK_SIZE,
    layout: str | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Exact nearest palette colour of every pixel, in memory-bounded chunks.

    The pixels are split into equal chunks of at most ``chunk_size`` rows (the last one
    padded) and each chunk is searched in ``layout``: memory is ``O(chunk_size · c)``
    for the loop and ``O(chunk_size · k)`` for the matrix and the GEMM, whatever the
    number of pixels. Ties go to the lowest index. Integer inputs (e.g. uint8 pixels and a uint8
    palette) use exact integer arithmetic, packing distance and index into one int32 so
    that a single integer minimum keeps both; floats keep an exact running minimum.

    Args:
      pixels: ``(n, c)`` colours, integer or float.
      palette: ``(k, c)`` colours of the same kind.
      chunk_size: most rows per chunk.
      layout: ``"loop"``, ``"matrix"``, ``"gemm"`` or ``None`` (the default for the
        number of channels and the backend).

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
    pixels, palette = jnp.asarray(pixels), jnp.asarray(palette)
    n, c = pixels.shape
    layout = resolve_layout(layout, channels=c)
    k = palette.shape[0]
    integer = jnp.issubdtype(pixels.dtype, jnp.integer) and jnp.issubdtype(
        palette.dtype, jnp.integer
    )
    index_bits = max(int(k - 1).bit_length(), 1)
    max_value = 255 if integer and pixels.dtype.itemsize == 1 else None
    # Packing needs distance bits + index bits <= 31: true for 8-bit colours up to 2^13.
    packed = integer and max_value is not None and (c * 255**2).bit_length() + index_bits <= 31
    packed = packed and layout != "gemm"
    if n == 0:
        return jnp.zeros((0,), jnp.int32), jnp.zeros((0,), jnp.int32 if integer else pixels.dtype)
    if packed:
        dtype = jnp.int32
    else:
        dtype = jnp.promote_types(pixels.dtype, palette.dtype)
        if jnp.issubdtype(dtype, jnp.integer):
            x64 = jax.dtypes.canonicalize_dtype(jnp.int64) == jnp.int64
            dtype = jnp.int64 if x64 else jnp.float32
    y = palette.astype(dtype)
    chunk = _ops.chunk_rows(n, chunk_size)
    low = (1 << index_bits) - 1

    def pack(d, i):
        return (d << index_bits) | i

    def body(xc):
        if layout == "gemm":  # rank in floats, then the exact distance to the chosen one
            score = dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.float32
            _, best_i = _fold_palette(xc.T.astype(score), palette.astype(score), layout)
            exact = jnp.int32 if max_value is not None else dtype  # 8-bit: int32, as packed
            diff = xc.astype(exact) - palette.astype(exact)[best_i]
            return best_i, jnp.sum(diff * diff, axis=1)
        xc = xc.T.astype(dtype)  # (c, chunk): channels first, transposed chunk by chunk
        if packed:
            p = _fold_palette(xc, y, layout, pack)
            return p & low, p >> index_bits
        best_d, best_i = _fold_palette(xc, y, layout)
        return best_i, best_d

    chunks = _ops.in_chunks(pixels, chunk)  # equal chunks; the padding rows are dropped
    idx, dist = jax.lax.map(body, chunks)
    rows = chunks.shape[0] * chunk
    return idx.reshape(rows)[:n], dist.reshape(rows)[:n]
