"""Gallery crops of dithering: original | jaxquant none | fs | ordered | pngquant, one row.

Crops a region of a gradient-heavy CQ100 photo, quantized to K colours by each method,
magnified with nearest-neighbour resampling so single pixels stay visible, and writes
one image with a caption per panel.

Usage::

    python benchmarks/gallery_dither.py --image kingfisher --k 16 \\
        --box 0 120 160 100 --out docs/gallery/dither-kingfisher-k16.png
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile

import jax
import numpy as np
from _data import add_data_argument, photos  # noqa: E402
from PIL import Image, ImageDraw

import jaxquant


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", default="kingfisher")
    p.add_argument("--k", type=int, default=16)
    p.add_argument(
        "--box", type=int, nargs=4, default=[0, 120, 160, 100], metavar=("X", "Y", "W", "H")
    )
    p.add_argument("--zoom", type=int, default=3)
    p.add_argument("--out", required=True)
    add_data_argument(p)
    args = p.parse_args()
    names = {f.stem: f for f in photos(args.data)}
    if args.image not in names:
        p.error(f"--image {args.image}: no {args.image}.png in {args.data}")
    path = names[args.image]
    image = np.asarray(Image.open(path).convert("RGB"))
    fit = jaxquant.quantize(jax.random.key(0), image, args.k)
    panels = [("original", image)]
    for d in ("none", "fs", "ordered"):
        r = fit if d == "none" else jaxquant.remap(image, fit.palette, dither=d)
        panels.append((f"jaxquant {d}, MSE {float(r.mse):.0f}", np.asarray(r.image)))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "pq.png")
        subprocess.run(["pngquant", "--force", "--output", out, str(args.k), path], check=True)
        pq = np.asarray(Image.open(out).convert("RGB"))
    mse = float(np.mean((pq.astype(float) - image) ** 2))
    panels.append((f"pngquant (default), MSE {mse:.0f}", pq))
    x, y, w, h = args.box
    z = args.zoom
    caption = 18
    sheet = Image.new("RGB", (len(panels) * (w * z + 4), h * z + caption), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, arr) in enumerate(panels):
        crop = Image.fromarray(arr[y : y + h, x : x + w]).resize((w * z, h * z), Image.NEAREST)
        sheet.paste(crop, (i * (w * z + 4), caption))
        draw.text((i * (w * z + 4) + 4, 3), label, fill="black")
    sheet.save(args.out, optimize=True)
    print(args.out)


if __name__ == "__main__":
    main()
