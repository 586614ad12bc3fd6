"""Train a tiny model through the quantizer: a learned ordered dither for a k-colour palette.

Seen from a distance, an image quantized to few colours shows banding; dithering trades
it for fine noise that the eye averages away. Here a 59-parameter network learns how
strongly to dither: it maps each pixel's colour to a per-channel amplitude ``a(x)``, the
pixel is offset by ``a(x)`` times a 4x4 Bayer threshold pattern, and the result is
quantized to a fixed palette (SQ's palette of the image)::

    output = Q(x + a(x) · bayer)

The loss is what a viewer sees: the MSE between Gaussian-blurred (σ = 1 pixel) output and
original. The benefit of dithering lives entirely in *how the quantizer's output changes
with its input*, so this is exactly the case where the two differentiable quantizers
differ:

- through :func:`jaxquant.soft_quantize` (temperature annealed from ``--t0`` to ``--t1``)
  the gradient sees that an offset can flip a pixel to a neighbouring colour, and the
  network learns a useful dither;
- through :func:`jaxquant.quantize_ste` the quantizer is the identity in the backward
  pass, so the gradient with respect to the amplitude is the correlation of the current
  error with the pattern, blind to what flipping pixels would do: training does not
  find the dither and drifts (here it ends far worse than no dither at all).

The result is compared with plain quantization and with Floyd-Steinberg error diffusion
(Pillow), always on the hard quantized output.

    python examples/train_tiny_model.py                # 96x64, k=8, 500 steps
    python examples/train_tiny_model.py --steps 50     # quick
    python examples/train_tiny_model.py --out dither/  # also write the images
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

BAYER4 = (np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]) + 0.5) / 16 - 0.5
HIDDEN = 8


def bayer_pattern(height: int, width: int) -> jax.Array:
    """The 4x4 Bayer thresholds in (−0.5, 0.5), tiled to ``(height, width, 1)``."""
    tiles = np.tile(BAYER4, (-(-height // 4), -(-width // 4)))[:height, :width]
    return jnp.asarray(tiles, jnp.float32)[:, :, None]


def init_params(key: jax.Array) -> dict[str, jax.Array]:
    """A 3 → 8 → 3 tanh network that starts at a tiny constant amplitude (0.01)."""
    return {
        "w1": 0.1 * jax.random.normal(key, (3, HIDDEN)),
        "b1": jnp.zeros(HIDDEN),
        "w2": jnp.zeros((HIDDEN, 3)),
        "b2": jnp.full(3, 0.01),
    }


def amplitude(params: dict[str, jax.Array], image: jax.Array) -> jax.Array:
    """Per-pixel, per-channel dither amplitude ``a(x)`` of an ``(H, W, 3)`` image."""
    hidden = jnp.tanh(image @ params["w1"] + params["b1"][None, None, :])
    return hidden @ params["w2"] + params["b2"][None, None, :]


def dithered(params, image, pattern, palette, *, method: str, temperature=0.0):
    """``Q(x + a(x)·pattern)`` through the chosen quantizer (``"hard"`` = STE forward)."""
    z = image + amplitude(params, image) * pattern
    if method == "soft":
        return jaxquant.soft_quantize(z, palette, temperature=temperature)
    return jaxquant.quantize_ste(z, palette)


def _gaussian(sigma: float = 1.0, radius: int = 3) -> jax.Array:
    x = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    g = jnp.exp(-(x**2) / (2 * sigma**2))
    return g / jnp.sum(g)


@jax.jit
def blurred_mse(output: jax.Array, image: jax.Array) -> jax.Array:
    """MSE between Gaussian-blurred (σ = 1, 'valid') images: banding counts, fine noise not."""
    g = _gaussian()
    n = g.shape[0]

    def blur(z):
        h, w = z.shape[0] - n + 1, z.shape[1] - n + 1
        rows = sum(g[i] * z[i : i + h] for i in range(n))
        return sum(g[j] * rows[:, j : j + w] for j in range(n))

    return jnp.mean((blur(output) - blur(image)) ** 2)


@functools.partial(jax.jit, static_argnames=("method", "num_steps"))
def train(params, image, palette, *, method: str, num_steps: int, t0=1e-2, t1=1e-3):
    """Adam (rate 1e-2); returns the parameters and the trace of the hard loss."""
    pattern = bayer_pattern(*image.shape[:2])
    opt = optax.adam(1e-2)

    def loss_fn(p, temperature):
        out = dithered(p, image, pattern, palette, method=method, temperature=temperature)
        return blurred_mse(out, image)

    def step(carry, i):
        p, state = carry
        temperature = t0 * (t1 / t0) ** (i / max(num_steps - 1, 1))
        # optax's Adam is not clean under jax_numpy_dtype_promotion="strict" (float **
        # int32 in its bias correction), which the test suite turns on.
        with jax.numpy_dtype_promotion("standard"):
            updates, state = opt.update(jax.grad(loss_fn)(p, temperature), state, p)
        p = optax.apply_updates(p, updates)
        hard = blurred_mse(dithered(p, image, pattern, palette, method="hard"), image)
        return (p, state), hard

    steps = jnp.arange(num_steps, dtype=jnp.float32)
    (params, _), trace = jax.lax.scan(step, (params, opt.init(params)), steps)
    return params, trace


def floyd_steinberg(image_u8: np.ndarray, palette_u8: np.ndarray) -> np.ndarray:
    """Pillow's Floyd-Steinberg error diffusion onto the same palette."""
    pal = Image.new("P", (1, 1))
    pal.putpalette(palette_u8.ravel().tolist() + [0] * (768 - palette_u8.size))
    out = Image.fromarray(image_u8).quantize(palette=pal, dither=Image.Dither.FLOYDSTEINBERG)
    return np.asarray(out.convert("RGB"))


def load_sample(width: int) -> np.ndarray:
    with Image.open(resources.files("jaxquant") / "data" / "sample.png") as im:
        return np.asarray(im.convert("RGB").resize((width, width * 2 // 3), Image.BILINEAR))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("-k", type=int, default=8)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--t0", type=float, default=1e-2, help="initial temperature (soft)")
    parser.add_argument("--t1", type=float, default=1e-3, help="final temperature (soft)")
    parser.add_argument("--out", type=pathlib.Path, help="directory for the images")
    args = parser.parse_args(argv)

    image_u8 = load_sample(args.width)
    image = jnp.asarray(image_u8, jnp.float32) / 255
    plain = jaxquant.quantize(jax.random.key(0), image_u8, args.k)
    palette_u8 = np.asarray(plain.palette)
    palette = jnp.asarray(palette_u8, jnp.float32) / 255
    params0 = init_params(jax.random.key(1))
    num_params = sum(int(np.size(v)) for v in jax.tree.leaves(params0))
    pattern = bayer_pattern(*image.shape[:2])

    def score(out_u8):
        return float(blurred_mse(jnp.asarray(out_u8, jnp.float32) / 255, image)) * 255**2

    # label -> (file name, uint8 image)
    images = {
        "plain quantization (no dither)": ("plain.png", np.asarray(plain.image)),
        "Floyd-Steinberg (Pillow)": ("floyd-steinberg.png", floyd_steinberg(image_u8, palette_u8)),
    }
    seconds = {}
    for method in ("soft", "ste"):
        start = time.perf_counter()
        params, _ = train(
            params0, image, palette, method=method, num_steps=args.steps, t0=args.t0, t1=args.t1
        )
        jax.block_until_ready(params)
        seconds[method] = time.perf_counter() - start
        out = dithered(params, image, pattern, palette, method="hard")
        # Every output pixel is a palette colour: rounding recovers its uint8 entry.
        out_u8 = np.asarray(jnp.round(out * 255)).astype(np.uint8)
        images[f"learned dither, trained through {method}"] = (f"learned-{method}.png", out_u8)
    results = {label: score(out) for label, (_, out) in images.items()}

    print(
        f"{image_u8.shape[1]}x{image_u8.shape[0]} sample, k={args.k}, {num_params} parameters, "
        f"{args.steps} Adam steps (with compilation: "
        + ", ".join(f"{m} {s:.1f} s" for m, s in seconds.items())
        + ")"
    )
    print("| hard-quantized output | blurred MSE (0..255) |\n|---|---:|")
    for label, value in results.items():
        print(f"| {label} | {value:.2f} |")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image_u8).save(args.out / "original.png")
        for file_name, out in images.values():
            Image.fromarray(out).save(args.out / file_name)
        print(f"images written to {args.out}/")
    return results


if __name__ == "__main__":
    main()
