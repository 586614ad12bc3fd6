"""Tune the built-in optimizers' default learning rates on CQ100 images.

For each optimizer and K, sweeps multiples of the current default starting rate and
prints the median MSE (over the chosen images) relative to the default ``adam`` run, so
the best multiplier per optimizer can be read off and folded into ``jaxquant.solvers._OPTIMIZERS``.

    python benchmarks/tune.py --images 8 --ks 16 64 256
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import numpy as np
from PIL import Image

import jaxquant
from jaxquant import solvers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import add_data_argument, photos  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(p)
    p.add_argument("--images", type=int, default=8, help="every n-th image, n images in all")
    p.add_argument("--ks", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--optimizers", nargs="+", default=list(jaxquant.OPTIMIZERS))
    p.add_argument("--multipliers", type=float, nargs="+", default=[0.25, 0.5, 1, 2, 4])
    args = p.parse_args()
    files = [f.name for f in photos(args.data)]
    files = files[:: max(1, len(files) // args.images)][: args.images]
    images = [np.asarray(Image.open(os.path.join(args.data, f)).convert("RGB")) for f in files]
    print(f"images: {', '.join(files)}")
    for k in args.ks:
        base = [float(jaxquant.quantize(jax.random.key(0), im, k).mse) for im in images]
        for name in args.optimizers:
            lr0 = solvers.default_learning_rate(name, k)
            row = []
            for m in args.multipliers:
                mse = [
                    float(
                        jaxquant.quantize(
                            jax.random.key(0), im, k, optimizer=name, learning_rate=lr0 * m
                        ).mse
                    )
                    for im in images
                ]
                row.append(np.median(np.array(mse) / np.array(base)))
            cells = "  ".join(
                f"x{m:g}: {r:.4f}" for m, r in zip(args.multipliers, row, strict=True)
            )
            print(f"k={k:<4d} {name:<9s} lr0={lr0:.4g}  {cells}", flush=True)


if __name__ == "__main__":
    main()
