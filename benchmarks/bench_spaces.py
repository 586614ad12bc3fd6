"""Colour spaces x quantization modes on CQ100: MSE in sRGB and perceptual errors.

For every image, K, space and mode that go together (``cielab`` and ``oklab`` need
``vector`` mode), :func:`jaxquant.quantize` runs with its defaults and the quantized image
is measured against the original: MSE over pixels and channels on the 0..255 sRGB scale,
mean CIEDE2000 (``ΔE00``) and mean OKLab distance (``ΔE_OK``, times 100). Fit time is
measured warm (each configuration runs once on the first image to compile, untimed).
Writes a Markdown table of means over the images (and, per metric, how often each
vector-mode space is best) to ``--out``.

    python benchmarks/bench_spaces.py --limit 10 --out docs/spaces-table.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import jax
import numpy as np
from PIL import Image

import jaxquant
from jaxquant import colour

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import add_data_argument, photos  # noqa: E402

COMBOS = [("vector", s) for s in colour.SPACES] + [
    (m, s) for m in ("channel", "global") for s in ("rgb", "linear-rgb")
]


def _delta_e(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    """Mean perceptual difference over the pixels, in chunks (bounded memory)."""
    a, b = a.reshape(-1, 3), b.reshape(-1, 3)
    total = 0.0
    for i in range(0, len(a), 1 << 16):
        total += float(
            np.sum(
                np.asarray(
                    colour.delta_e(a[i : i + 65536], b[i : i + 65536], metric=metric), np.float64
                )
            )
        )
    return total / len(a)


def measure(image: np.ndarray, k: int, mode: str, space: str, seed: int) -> dict:
    key = jax.random.key(seed)
    t = time.perf_counter()
    r = jaxquant.quantize(key, image, k, mode=mode, space=space)
    out = np.asarray(r.image)
    elapsed = time.perf_counter() - t
    diff = out.astype(np.float64) - image.astype(np.float64)
    return dict(
        mse=float(np.mean(diff**2)),
        de00=_delta_e(image, out, "ciede2000"),
        deok=100.0 * _delta_e(image, out, "oklab"),
        time=elapsed,
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(p)
    p.add_argument("--limit", type=int, default=10, help="first N images (sorted by name)")
    p.add_argument("--ks", type=int, nargs="+", default=[16, 64])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="Markdown file for the table")
    args = p.parse_args(argv)

    names = [f.name for f in photos(args.data, args.limit)]
    images = [np.asarray(Image.open(os.path.join(args.data, f)).convert("RGB")) for f in names]
    rows: dict[tuple, list[dict]] = {}
    for k in args.ks:
        for mode, space in COMBOS:
            measure(images[0], k, mode, space, args.seed)  # compile (all images: one bucket)
            for name, image in zip(names, images, strict=True):
                m = measure(image, k, mode, space, args.seed)
                rows.setdefault((k, mode, space), []).append(m)
                print(
                    f"K={k:<3} {mode:<8} {space:<10} {name:<28} "
                    + "  ".join(f"{key} {value:8.3f}" for key, value in m.items()),
                    flush=True,
                )

    lines = [
        f"Means over the first {len(names)} CQ100 images (sorted by name), jaxquant defaults, "
        f"seed {args.seed}; {platform.machine()}, {os.cpu_count()} CPU cores, jax "
        f"{jax.__version__}. `python benchmarks/bench_spaces.py --limit {args.limit}`.",
        "",
        "| K | mode | space | MSE (sRGB) | PSNR of mean MSE (dB) | ΔE00 | ΔE_OK ×100 "
        "| fit time (s) |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for (k, mode, space), ms in rows.items():
        mean = {key: float(np.mean([m[key] for m in ms])) for key in ms[0]}
        psnr = 10 * np.log10(255**2 / mean["mse"])
        lines.append(
            f"| {k} | {mode} | {space} | {mean['mse']:.1f} | {psnr:.2f} | {mean['de00']:.2f} "
            f"| {mean['deok']:.2f} | {mean['time']:.2f} |"
        )
    lines += ["", "Images on which each vector-mode space has the lowest error:", ""]
    lines += ["| K | metric | " + " | ".join(colour.SPACES) + " |"]
    lines += ["|---:|---|" + "---:|" * len(colour.SPACES)]
    for k in args.ks:
        for metric in ("mse", "de00", "deok"):
            table = np.array([[m[metric] for m in rows[(k, "vector", s)]] for s in colour.SPACES])
            wins = np.bincount(table.argmin(axis=0), minlength=len(colour.SPACES))
            lines.append(f"| {k} | {metric} | " + " | ".join(str(w) for w in wins) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
