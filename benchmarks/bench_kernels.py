"""The solver's inner kernels against the formulations they replaced, side by side.

Three measurements, each a ratio of two ways of computing the same thing in one process:

- the exact assignment of a 768x512 image (``jaxquant.assign``: a loop over the palette
  with the pixels as the vector axis) against materialising the ``(chunk, k)`` distance
  matrix and reducing over its short minor axis (jaxquant <= 0.1's kernel);
- the nearest-colour index of an SQ minibatch (``kernels.nearest_index``) against
  the ``(batch, k)`` matrix form;
- a whole SQ fit (``SQ(...)(key, problem, palette)``: minibatch indices drawn for a block
  of steps at once) against a loop of ``SQ.step``, which draws them inside every step.

Results must agree exactly (the script checks); times are the best of ``--repeats`` runs
of a jit-compiled call, the two ways measured alternately (compile excluded).

    python benchmarks/bench_kernels.py --out docs/benchmarks-kernels.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxquant
from jaxquant import kernels, losses
from jaxquant.problem import ColourSet

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_quality import machine  # noqa: E402


def pair_ms(old, new, repeats: int) -> tuple[float, float]:
    """Best times of two calls measured alternately, so drifting load hits both alike."""
    jax.block_until_ready((old(), new()))
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for i, fn in enumerate((old, new)):
            t = time.perf_counter()
            jax.block_until_ready(fn())
            best[i] = min(best[i], time.perf_counter() - t)
    return 1e3 * best[0], 1e3 * best[1]


def assign_matrix(pixels, palette, chunk=4096):
    """The (chunk, k) formulation: packed integer distances, min over the minor axis."""
    n, c = pixels.shape
    k = palette.shape[0]
    bits = max(int(k - 1).bit_length(), 1)
    y = palette.astype(jnp.int32)
    iota = jnp.arange(k, dtype=jnp.int32)[None, :]

    def body(xc):
        xc = xc.astype(jnp.int32)
        d = sum((xc[:, None, j] - y[None, :, j]) ** 2 for j in range(c))
        p = jnp.min((d << bits) | iota, axis=1)
        return p & ((1 << bits) - 1), p >> bits

    idx, dist = jax.lax.map(body, pixels.reshape(n // chunk, chunk, c))
    return idx.reshape(n), dist.reshape(n)


def nearest_matrix(pixels, palette):
    """The (batch, k) formulation of the minibatch's nearest index (k <= 256)."""
    d = losses.squared_distances(pixels, palette)
    bits = jax.lax.bitcast_convert_type(d, jnp.int32) & ~0xFF
    return jnp.min(bits | jnp.arange(palette.shape[0], dtype=jnp.int32)[None, :], axis=1) & 0xFF


def sq_fit_per_step_draws(key, palette, problem, solver):
    """SQ as a loop of ``SQ.step``: a PRNG call inside every step (jaxquant <= 0.1's loop)."""
    state = solver.init(problem, palette)

    def step(state, step_key):
        return solver.step(state, step_key, problem)

    return jax.lax.scan(step, state, jax.random.split(key, solver.num_steps))[0].palette


def measure(pixels, palette, repeats: int) -> tuple:
    """One table row: the three comparisons for one palette."""
    k = palette.shape[0]
    x = pixels.astype(jnp.float32) / 255.0
    new_a = jax.jit(lambda p, y: jaxquant.assign(p, y))
    old_a = jax.jit(assign_matrix)
    for a, b in zip(new_a(pixels, palette), old_a(pixels, palette), strict=True):
        np.testing.assert_array_equal(a, b)
    t_old_a, t_new_a = pair_ms(
        lambda: old_a(pixels, palette), lambda: new_a(pixels, palette), repeats
    )

    batch_size = int(min(max(16 * k, 512), 2048))  # quantize's default
    batch = x[:batch_size]
    y = palette.astype(jnp.float32) / 255.0
    new_n = jax.jit(kernels.nearest_index)
    old_n = jax.jit(nearest_matrix)
    same = float(jnp.mean(new_n(batch, y) == old_n(batch, y)))
    t_old_n, t_new_n = pair_ms(lambda: old_n(batch, y), lambda: new_n(batch, y), repeats)

    solver = jaxquant.SQ(
        num_steps=1000, batch_size=batch_size, learning_rate=0.01, num_lloyd_steps=0
    )
    problem = ColourSet.from_vectors(x)

    @jax.jit
    def new_f(key, p):
        return solver(key, problem, p).palette

    @jax.jit
    def old_f(key, p):
        return sq_fit_per_step_draws(key, p, problem, solver)

    key = jax.random.key(0)
    t_old_f, t_new_f = pair_ms(lambda: old_f(key, y), lambda: new_f(key, y), max(3, repeats // 3))
    return (k, t_old_a, t_new_a, batch_size, t_old_n, t_new_n, same, t_old_f, t_new_f)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Reads no photographs and takes no data folder: it uses "
        "synthetic colours and the sample photo.",
    )
    p.add_argument("--ks", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", default=None, help="write the Markdown table here")
    args = p.parse_args()

    rng = np.random.default_rng(0)
    pixels = jnp.asarray(rng.integers(0, 256, (768 * 512, 3), dtype=np.uint8))
    rows = []
    for k in args.ks:
        palette = jnp.asarray(rng.integers(0, 256, (k, 3), dtype=np.uint8))
        rows.append(measure(pixels, palette, args.repeats))
        print(rows[-1], flush=True)

    table = render(rows, args)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)


def render(rows, args) -> str:
    lines = [
        "<!-- written by benchmarks/bench_kernels.py; do not edit by hand -->",
        f"{machine()}; best of {args.repeats} runs, compile excluded.",
        "",
        "| K | assign 393k px: (n,k) matrix (ms) | palette loop (ms) | speed-up "
        "| batch | nearest: (B,k) matrix (ms) | palette loop (ms) | speed-up "
        "| same index | 1000 SQ steps: draw per step (ms) | draw per block (ms) | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k, oa, na, b, on, nn, same, of, nf in rows:
        lines.append(
            f"| {k} | {oa:.1f} | {na:.1f} | {oa / na:.1f}x | {b} | {on:.3f} | {nn:.3f} "
            f"| {on / nn:.1f}x | {same:.4f} | {of:.0f} | {nf:.0f} | {of / nf:.1f}x |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
