"""``--speed 1..10``: what each preset costs and gives, on CQ100 photos.

For each K and speed, the fit options of ``jaxquant compress --speed N``
(:func:`jaxquant.cli.compress.speed_preset`) on the same photos, interleaved: the median
MSE relative to speed 4 (the tuned defaults) and the median warm time of
``jaxquant.quantize``.

Usage::

    python benchmarks/bench_speed.py --limit 10 --out docs/benchmarks-speed.md
"""

from __future__ import annotations

import argparse
import os
import statistics as st
import time

import jax
import numpy as np
from _data import add_data_argument, photos  # noqa: E402
from bench_quality import machine  # noqa: E402  (benchmarks/ on sys.path)
from PIL import Image

import jaxquant
from jaxquant.cli.compress import speed_preset

SPEEDS = (1, 2, 3, 4, 6, 8, 10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_argument(p)
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--ks", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--out")
    args = p.parse_args()
    names = [f.name for f in photos(args.data)][:: max(1, 100 // args.limit)][: args.limit]
    key = jax.random.key(0)
    mse: dict[tuple[int, int], list[float]] = {}
    secs: dict[tuple[int, int], list[float]] = {}
    first = np.asarray(Image.open(os.path.join(args.data, names[0])).convert("RGB"))
    for k in args.ks:  # compile every program once
        for s in SPEEDS:
            jaxquant.quantize(key, first, k, **speed_preset(s, k, {}))
    for name in names:
        image = np.asarray(Image.open(os.path.join(args.data, name)).convert("RGB"))
        for k in args.ks:
            for s in SPEEDS:
                t = time.perf_counter()
                r = jaxquant.quantize(key, image, k, **speed_preset(s, k, {}))
                jax.block_until_ready(r.image)
                secs.setdefault((k, s), []).append(time.perf_counter() - t)
                mse.setdefault((k, s), []).append(float(r.mse))
    lines = [
        "# `--speed` presets",
        "",
        f"{machine()}; {len(names)} CQ100 photos (768x512), warm. "
        f"`python benchmarks/bench_speed.py --limit {args.limit}`.",
        "",
        "| K | speed | SQ steps | Lloyd steps | MSE / speed 4 (median) | time (median s) |",
        "|---|---|---|---|---|---|",
    ]
    for k in args.ks:
        for s in SPEEDS:
            opts = jaxquant.FitOptions.make(k, **speed_preset(s, k, {}))
            ratio = st.median(a / b for a, b in zip(mse[(k, s)], mse[(k, 4)], strict=True))
            lines.append(
                f"| {k} | {s} | {opts.solver.num_steps} | {opts.solver.num_lloyd_steps} | "
                f"{ratio:.3f} | {st.median(secs[(k, s)]):.3f} |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
