"""Single-image and batch throughput at K = 16, 64, 256 on whatever device JAX sees.

For the GPU check (``benchmarks/gpu_check.sh``): on ``jax.devices()[0]`` (a GPU, a TPU or
the CPU), in one process, for each K and each layout of the nearest-colour search
(``matrix``, the accelerators' default, and ``loop``, the CPU's):

- one image: ``quantize`` of one 768x512 photo, warm (compiled by a first call), the
  median of ``--repeats`` calls, each synchronised (``block_until_ready``);
- a batch: ``quantize_batch`` of ``--batch`` photos at once, warm, the median of
  ``--repeats`` calls.

Photos: ``--data DIR`` (CQ100's PNG files, 768x512), or, without it, the packaged sample
photo (also from CQ100) with its rows rolled per copy so the copies differ. Writes a
Markdown table to ``--out``. Takes about a minute on a GPU.

    python benchmarks/bench_accelerator.py --out docs/benchmarks-accelerator.md
"""

from __future__ import annotations

import argparse
import os
import statistics as st
import sys
import time
from importlib import resources

import jax
import numpy as np
from PIL import Image

import jaxquant

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import CQ100, photos  # noqa: E402


def load_photos(data: str | None, count: int) -> list[np.ndarray]:
    """``count`` 768x512 RGB photos: from ``data``, or copies of the packaged sample."""
    if data:
        files = photos(data, count)
        images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    else:
        with Image.open(resources.files("jaxquant") / "data" / "sample.png") as im:
            sample = np.asarray(im.convert("RGB").resize((768, 512)))
        images = [np.roll(sample, 7 * i, axis=0) for i in range(count)]
    while len(images) < count:
        images.append(np.roll(images[len(images) % max(1, len(images))], 11, axis=1))
    return images[:count]


def median_time(fn, repeats: int) -> float:
    jax.block_until_ready(fn())  # compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return st.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=CQ100)
    p.add_argument("--data", metavar="DIR", help="folder of PNG photos (default: the sample)")
    p.add_argument("--ks", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--layouts", nargs="+", default=["matrix", "loop"])
    p.add_argument("--batch", type=int, default=32, help="photos per quantize_batch call")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out")
    args = p.parse_args(argv)
    images = load_photos(args.data, args.batch)
    device = jax.devices()[0]
    key = jax.random.key(0)
    rows = []
    for k in args.ks:
        for layout in args.layouts:
            one = median_time(
                lambda k=k, layout=layout: (
                    jaxquant.quantize(key, images[0], k, layout=layout).image
                ),
                args.repeats,
            )
            batch = median_time(
                lambda k=k, layout=layout: [
                    r.image for r in jaxquant.quantize_batch(key, images, k, layout=layout)
                ],
                args.repeats,
            )
            rows.append((k, layout, one, args.batch / batch))
            print(rows[-1], flush=True)
    lines = [
        f"Device: {device.device_kind} ({device.platform}), JAX {jax.__version__}; "
        f"{'CQ100 photos' if args.data else 'the sample photo'} (768x512); warm medians "
        f"of {args.repeats} calls.",
        "",
        "| K | layout | one image (ms) | one image (images/s) "
        f"| batch of {args.batch} (images/s) |",
        "|---|---|---|---|---|",
    ]
    for k, layout, one, per_s in rows:
        lines.append(f"| {k} | {layout} | {1e3 * one:.1f} | {1 / one:.1f} | {per_s:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
