"""Fit a palette with jaxquant's building blocks and a custom optax optimizer.

Quantizes the built-in sample photograph to 32 colours three ways and prints the MSE of
each: the default ``quantize``, ``quantize`` driven by an ``optax.chain``, and a
hand-assembled pipeline of the public pieces: a ``ColourSet``, k-means++ seeding, the
``SQ`` solver with an optax optimizer, and ``remap``.

    python examples/custom_optimizer.py
"""

from __future__ import annotations

from importlib import resources

import jax
import optax

import jaxquant


def main(k: int = 32) -> None:
    image = jaxquant.load_image(resources.files("jaxquant") / "data" / "sample.png")
    key = jax.random.key(0)

    default = jaxquant.quantize(key, image, k)
    print(f"default adam          mse {float(default.mse):8.2f}")

    chained = optax.chain(optax.clip_by_global_norm(0.5), optax.adamw(1e-2, weight_decay=0.0))
    custom = jaxquant.quantize(key, image, k, optimizer=chained, num_steps=600)
    print(f"optax.chain(clip, adamw) mse {float(custom.mse):8.2f}")

    # The same pieces by hand: the problem, a seeding, a solver value, the remap.
    problem = jaxquant.ColourSet.from_image(image)
    k_seed, k_fit = jax.random.split(key)
    points = problem.coordinates()[: int(problem.num_valid) : 50]  # every 50th pixel
    palette0 = jaxquant.seeding.kmeans_plusplus(k_seed, points, k)
    solver = jaxquant.SQ(num_steps=500, batch_size=512, optimizer=optax.adam(0.01))
    fit = jax.jit(solver.__call__)(k_fit, problem, palette0)
    result = jaxquant.remap(image, problem.colours_from(fit.palette))
    print(
        f"by hand (SQ solver)    mse {float(result.mse):8.2f}  (loss "
        f"{float(fit.losses[0]):.4f} -> {float(fit.losses[-10:].mean()):.4f})"
    )


if __name__ == "__main__":
    main()
