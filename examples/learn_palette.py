"""Learn a palette by gradient descent through the quantizer, for a loss that is not MSE.

SQ (``jaxquant.quantize``) minimises the mean squared colour error. Here the palette it
finds is the starting point, and Adam then fine-tunes it to minimise a perceptual loss
of the *quantized* image, differentiating through the quantizer:

- ``--loss edge``: an edge-weighted MSE, where each pixel's error counts in proportion
  to the local gradient magnitude (Sobel on luminance), so colours are spent on
  contours rather than on flat areas;
- ``--loss ssim``: ``1 − SSIM`` (11x11 Gaussian window, per channel), written in JAX.

``--method soft`` goes through :func:`jaxquant.soft_quantize` with a temperature annealed
geometrically from ``--t0`` to ``--t1``; ``--method ste`` goes through
:func:`jaxquant.quantize_ste` (hard forward pass). Either way the reported numbers are
for the *hard* quantization with the palette rounded to uint8, before and after, and the
images are written to the output directory.

    python examples/learn_palette.py out/                      # edge loss, soft, k=16
    python examples/learn_palette.py out/ --loss ssim --method ste
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import time
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image

import jaxquant

# --------------------------------------------------------------------------------------
# Losses on float images in [0, 1], shape (H, W, 3).


@jax.jit
def edge_weights(image: jax.Array) -> jax.Array:
    """``(H, W)`` weights, mean 1: 0.1 everywhere plus the Sobel gradient magnitude."""
    lum = image @ jnp.asarray([0.299, 0.587, 0.114], image.dtype)
    p = jnp.pad(lum, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    w = 0.1 + jnp.sqrt(gx**2 + gy**2 + 1e-12)
    return w / jnp.mean(w)


@jax.jit
def edge_mse(quantized: jax.Array, image: jax.Array, weights: jax.Array) -> jax.Array:
    """Mean over pixels of ``weight · ‖quantized − image‖²`` (per channel, [0, 1] scale)."""
    return jnp.mean(weights[:, :, None] * (quantized - image) ** 2)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> jax.Array:
    x = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
    g = jnp.exp(-(x**2) / (2 * sigma**2))
    return g / jnp.sum(g)


def _blur(x: jax.Array, g: jax.Array) -> jax.Array:
    """Separable 'valid' Gaussian filter of an ``(H, W, C)`` array."""
    n = g.shape[0]
    h, w = x.shape[0] - n + 1, x.shape[1] - n + 1
    rows = sum(g[i] * x[i : i + h] for i in range(n))
    return sum(g[j] * rows[:, j : j + w] for j in range(n))


@jax.jit
def ssim(a: jax.Array, b: jax.Array) -> jax.Array:
    """Mean SSIM of two ``(H, W, C)`` images in [0, 1] (Wang et al. 2004 constants)."""
    g = _gaussian_window().astype(a.dtype)
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = _blur(a, g), _blur(b, g)
    var_a = _blur(a * a, g) - mu_a**2
    var_b = _blur(b * b, g) - mu_b**2
    cov = _blur(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return jnp.mean(num / den)


def objective(name: str, quantized: jax.Array, image: jax.Array, weights: jax.Array):
    if name == "edge":
        return edge_mse(quantized, image, weights)
    return 1.0 - ssim(quantized, image)


# --------------------------------------------------------------------------------------
# Training.


@functools.partial(jax.jit, static_argnames=("loss", "method", "num_steps"))
def train(
    palette0: jax.Array,
    image: jax.Array,
    *,
    loss: str,
    method: str,
    num_steps: int,
    learning_rate: float | jax.Array = 3e-3,
    t0: float | jax.Array = 3e-3,
    t1: float | jax.Array = 1e-5,
) -> tuple[jax.Array, jax.Array]:
    """Adam on the palette through the quantizer; returns ``(palette, loss trace)``.

    The temperature falls geometrically from ``t0`` to ``t1`` (``method="soft"``); it is a
    traced value, so the schedule compiles into the loop.
    """
    weights = edge_weights(image)
    opt = optax.adam(learning_rate)

    def loss_fn(palette, temperature):
        if method == "soft":
            q = jaxquant.soft_quantize(image, palette, temperature=temperature)
        else:
            q = jaxquant.quantize_ste(image, palette)
        return objective(loss, q, image, weights)

    def step(carry, i):
        palette, state = carry
        temperature = t0 * (t1 / t0) ** (i / max(num_steps - 1, 1))
        value, grad = jax.value_and_grad(loss_fn)(palette, temperature)
        # optax's Adam is not clean under jax_numpy_dtype_promotion="strict" (float **
        # int32 in its bias correction), which the test suite turns on.
        with jax.numpy_dtype_promotion("standard"):
            updates, state = opt.update(grad, state, palette)
        palette = jnp.clip(optax.apply_updates(palette, updates), 0.0, 1.0)
        return (palette, state), value

    steps = jnp.arange(num_steps, dtype=jnp.float32)
    (palette, _), trace = jax.lax.scan(step, (palette0, opt.init(palette0)), steps)
    return palette, trace


def hard_quantize(image_u8: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """uint8 image quantized to the palette rounded to uint8 (what would be deployed)."""
    palette_u8 = np.round(np.asarray(palette) * 255).astype(np.uint8)
    idx, _ = jaxquant.assign(jnp.asarray(image_u8.reshape(-1, 3)), jnp.asarray(palette_u8))
    return palette_u8[np.asarray(idx)].reshape(image_u8.shape)


def scores(quantized_u8: np.ndarray, image_u8: np.ndarray) -> dict[str, float]:
    q = jnp.asarray(quantized_u8, jnp.float32) / 255
    x = jnp.asarray(image_u8, jnp.float32) / 255
    mse = float(jnp.mean((q - x) ** 2)) * 255**2
    return {
        "edge-weighted MSE": float(edge_mse(q, x, edge_weights(x))) * 255**2,
        "MSE": mse,
        "SSIM": float(ssim(q, x)),
        "PSNR (dB)": 10 * np.log10(255**2 / mse),
    }


def load_sample(width: int) -> np.ndarray:
    with Image.open(resources.files("jaxquant") / "data" / "sample.png") as im:
        return np.asarray(im.convert("RGB").resize((width, width * 2 // 3), Image.BILINEAR))


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=pathlib.Path, help="directory for the images")
    parser.add_argument("--loss", choices=["edge", "ssim"], default="edge")
    parser.add_argument("--method", choices=["soft", "ste"], default="soft")
    parser.add_argument("-k", type=int, default=16)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--t0", type=float, default=3e-3, help="initial temperature (soft)")
    parser.add_argument("--t1", type=float, default=1e-5, help="final temperature (soft)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    image_u8 = load_sample(args.width)
    image = jnp.asarray(image_u8, jnp.float32) / 255
    start = jaxquant.quantize(jax.random.key(args.seed), image_u8, args.k)
    palette0 = jnp.asarray(start.palette, jnp.float32) / 255

    t = time.perf_counter()
    palette, trace = train(
        palette0,
        image,
        loss=args.loss,
        method=args.method,
        num_steps=args.steps,
        learning_rate=args.lr,
        t0=args.t0,
        t1=args.t1,
    )
    trace.block_until_ready()
    seconds = time.perf_counter() - t

    before_u8 = np.asarray(start.image)
    after_u8 = hard_quantize(image_u8, palette)
    results = {"before": scores(before_u8, image_u8), "after": scores(after_u8, image_u8)}

    args.out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_u8).save(args.out / "original.png")
    Image.fromarray(before_u8).save(args.out / "before.png")
    Image.fromarray(after_u8).save(args.out / "after.png")

    print(
        f"{image_u8.shape[1]}x{image_u8.shape[0]} sample, k={args.k}, loss={args.loss}, "
        f"method={args.method}, {args.steps} Adam steps in {seconds:.1f} s (with compilation)"
    )
    print("| hard quantization | " + " | ".join(results["before"]) + " |")
    print("|---|" + "---:|" * len(results["before"]))
    for name, label in [("before", "SQ palette (before)"), ("after", "learned (after)")]:
        print(f"| {label} | " + " | ".join(f"{v:.4g}" for v in results[name].values()) + " |")
    print(f"images written to {args.out}/: original.png before.png after.png")
    return results


if __name__ == "__main__":
    main()
