"""MacQueen's online k-means as an optax transformation driving Stochastic Quantization.

MacQueen (1967) moves the nearest centre of each new sample ``x`` a fraction ``1/n`` of the
way towards it, ``y ← y + (x − y)/n``, where ``n`` counts the samples that centre has
absorbed (its seed included): every centre is the running mean of its samples. It is SQ
with a per-colour ``1/n`` learning rate, and this file writes that rate as an ordinary
``optax.GradientTransformation`` that :func:`jaxquant.quantize` accepts unchanged.

**What the transformation can know.** The solver calls ``update(grads, state, palette)``
with the gradient of the minibatch-mean loss: for the squared loss, colour ``j``'s row is
``g_j = (2/B)·n_j·(y_j − m_j)`` (``n_j`` of the ``B`` sampled pixels chose it, ``m_j``
their mean) and rows of unchosen colours are exactly 0. So a transformation can count the
steps in which a colour was chosen (non-zero rows), but it cannot recover ``n_j``: the
row's norm is ``n_j`` times a distance, and the two do not separate. Hence:

- ``batch_size=1``: one pixel per step, so the hit count *is* the sample count, and
  ``macqueen(0.5)`` (0.5 undoes the loss's factor 2) is MacQueen's algorithm exactly
  (tested in ``tests/test_examples_differentiable.py`` against a NumPy transcription).
- ``batch_size=B > 1``: the rate is ``learning_rate / (hits_j + initial_count)``,
  a per-colour harmonic schedule. With ``learning_rate = k/2`` a colour holding an
  average share of pixels (``n_j ≈ B/k``) moves exactly as mini-batch k-means (Sculley,
  2010) would move it; a colour with a larger share moves proportionally further.

Run it to print the comparison table of ``docs/differentiable.md``:

    python examples/online_kmeans.py            # 192x128 sample, k=16, 3 seeds
    python examples/online_kmeans.py --size 48 --seeds 1 --samples 20000   # quick
"""

from __future__ import annotations

import argparse
import time
from importlib import resources
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image

import jaxquant


class MacQueenState(NamedTuple):
    """Per-colour count of the steps that moved it (plus the initial count)."""

    counts: jax.Array


def scale_by_macqueen(*, initial_count: float = 1.0) -> optax.GradientTransformation:
    """Divide each colour's gradient row by the number of steps that colour was chosen.

    A colour counts as chosen in a step when its gradient row is non-zero. A pixel exactly
    on its colour gives a zero row and is not counted (MacQueen would count it, and not
    move the colour either way).

    Args:
      initial_count: the count a colour starts with (MacQueen: 1, its seed sample).

    Returns:
      An ``optax.GradientTransformation`` for ``(k, c)`` palettes.
    """

    def init(palette):
        return MacQueenState(jnp.full(palette.shape[:1], initial_count, palette.dtype))

    def update(grads, state, palette=None):
        del palette
        chosen = jnp.any(grads != 0, axis=-1)
        counts = state.counts + chosen.astype(state.counts.dtype)
        return grads / counts[:, None], MacQueenState(counts)

    return optax.GradientTransformation(init, update)


def macqueen(learning_rate: float = 0.5, *, initial_count: float = 1.0):
    """MacQueen's per-colour ``1/n`` rate as a descent step (see the module docstring).

    ``macqueen(0.5)`` with ``batch_size=1`` and the squared loss is MacQueen's online
    k-means exactly; for batches of ``B`` pixels and ``k`` colours use ``learning_rate =
    k / 2``.
    """
    return optax.chain(scale_by_macqueen(initial_count=initial_count), optax.scale(-learning_rate))


def load_sample(size: int) -> np.ndarray:
    """The packaged sample photograph, resized to ``size`` pixels wide (3:2)."""
    with Image.open(resources.files("jaxquant") / "data" / "sample.png") as im:
        return np.asarray(im.convert("RGB").resize((size, size * 2 // 3), Image.BILINEAR))


class Row(NamedTuple):
    name: str
    batch_size: int
    num_steps: int
    mse: float
    seconds: float


def compare(
    image: np.ndarray, k: int, *, samples: int, seeds: int, lloyd: bool = True
) -> list[Row]:
    """Fit ``image`` with every method at (about) ``samples`` sampled pixels each.

    MSE (0..255 scale) is the mean over ``seeds``; seconds is the median time of a warm
    run (the first call, which compiles, is not timed).
    """
    big = 512
    steps_big = max(samples // big, 1)
    configs = [
        ("adam (default)", dict(optimizer="adam"), big, steps_big),
        ("sgd (default schedule)", dict(optimizer="sgd"), big, steps_big),
        ("momentum (default schedule)", dict(optimizer="momentum"), big, steps_big),
        ("macqueen, lr = k/2", dict(optimizer=macqueen(k / 2)), big, steps_big),
        ("macqueen (exact online)", dict(optimizer=macqueen(0.5)), 1, samples),
        ("sgd 1e-3 constant (the paper's rate)", dict(optimizer=optax.sgd(1e-3)), 1, samples),
    ]
    rows = []
    for name, options, batch_size, num_steps in configs:

        def run(seed, options=options, batch_size=batch_size, num_steps=num_steps):
            return jaxquant.quantize(
                jax.random.key(seed),
                image,
                k,
                batch_size=batch_size,
                num_steps=num_steps,
                num_lloyd_steps=0,  # compare the SQ optimizers alone
                **options,
            )

        run(0).mse.block_until_ready()  # compile
        mses, times = [], []
        for seed in range(seeds):
            start = time.perf_counter()
            result = run(seed)
            result.mse.block_until_ready()
            times.append(time.perf_counter() - start)
            mses.append(float(result.mse))
        rows.append(Row(name, batch_size, num_steps, float(np.mean(mses)), np.median(times)))
    if lloyd:
        mses = [float(jaxquant.kmeans(jax.random.key(s), image, k).mse) for s in range(seeds)]
        rows.append(Row("Lloyd k-means (all pixels, to convergence)", 0, 0, np.mean(mses), 0.0))
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| optimizer | batch | steps | MSE | warm time (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        batch = str(r.batch_size) if r.batch_size else "all"
        steps = str(r.num_steps) if r.num_steps else "-"
        secs = f"{r.seconds:.2f}" if r.seconds else "-"
        lines.append(f"| {r.name} | {batch} | {steps} | {r.mse:.2f} | {secs} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=192, help="image width (default 192)")
    parser.add_argument("-k", type=int, default=16, help="palette size (default 16)")
    parser.add_argument("--samples", type=int, default=256_000, help="pixels sampled per fit")
    parser.add_argument("--seeds", type=int, default=3, help="seeds averaged (default 3)")
    parser.add_argument("--no-lloyd", action="store_true", help="skip the k-means reference")
    args = parser.parse_args(argv)
    image = load_sample(args.size)
    rows = compare(image, args.k, samples=args.samples, seeds=args.seeds, lloyd=not args.no_lloyd)
    print(f"{image.shape[1]}x{image.shape[0]} sample, k={args.k}, {args.samples} samples per fit")
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
