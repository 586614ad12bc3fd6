"""Fit a palette with jaxquant's building blocks and a custom optax optimizer.

Quantizes the built-in sample photograph to 32 colours three ways and prints the MSE of
each: the default ``quantize``, ``quantize`` driven by an ``optax.chain``, and a
hand-assembled pipeline (seeding + ``sq_fit`` + ``assign``) on a pixel array.

    python examples/custom_optimizer.py
"""

from __future__ import annotations

from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np
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

    # The same pieces by hand, on float pixels in [0, 1].
    pixels = jnp.asarray(image.reshape(-1, 3), jnp.float32) / 255.0
    weights = jnp.ones(pixels.shape[0], jnp.float32)
    k_seed, k_fit = jax.random.split(key)
    palette0 = jaxquant.seeding.kmeans_plusplus(k_seed, pixels[::50], k)
    optimizer = jaxquant.make_optimizer("adam", 0.03, num_steps=500)
    state, losses = jax.jit(
        lambda key, p: jaxquant.sq_fit(
            key,
            p,
            pixels,
            weights,
            loss=jaxquant.losses.squared_loss,
            optimizer=optimizer,
            num_steps=500,
            batch_size=512,
        )
    )(k_fit, palette0)
    palette = jnp.round(state.palette * 255).astype(jnp.uint8)
    _, sq = jaxquant.assign(jnp.asarray(image.reshape(-1, 3)), palette)
    mse = float(np.mean(np.asarray(sq))) / 3
    print(
        f"by hand (sq_fit)       mse {mse:8.2f}  (loss {float(losses[0]):.4f} -> "
        f"{float(losses[-10:].mean()):.4f})"
    )


if __name__ == "__main__":
    main()
