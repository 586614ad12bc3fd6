"""Tried and rejected: refining the palette once more for the dithered assignment.

libimagequant moves each palette entry to the mean of the pixels that the dithering gave
it and dithers again. This script measures that on CQ100 photos: Floyd-Steinberg with
the fitted palette, against Floyd-Steinberg with the refined palette, as medians of
per-photo ratios (refined / plain) of MSE, blurred MSE, SSIM, CIEDE2000 and PNG bytes
(the metrics of ``bench_dither.py``). Ratios above 1 are worse, except SSIM.

    python benchmarks/try_refine_after_dither.py --limit 10
"""

from __future__ import annotations

import argparse
import os
import statistics as st

import jax
import numpy as np
from _data import add_data_argument, photos  # noqa: E402
from bench_dither import metrics, png_bytes
from bench_quality import machine  # noqa: E402  (benchmarks/ on sys.path)

import jaxquant


def refined(image: np.ndarray, palette: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each entry the mean of the pixels with its label (unused entries stay)."""
    k, c = palette.shape
    px = image.reshape(-1, c).astype(np.float64)
    lab = labels.reshape(-1)
    count = np.bincount(lab, minlength=k)
    sums = np.stack([np.bincount(lab, weights=px[:, i], minlength=k) for i in range(c)], 1)
    new = np.where(count[:, None] > 0, sums / np.maximum(count, 1)[:, None], palette)
    return np.clip(np.rint(new), 0, 255).astype(np.uint8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_argument(p)
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--ks", type=int, nargs="+", default=[16, 64, 256])
    args = p.parse_args()
    names = [f.name for f in photos(args.data)]
    names = names[:: max(1, len(names) // args.limit)][: args.limit]
    print(f"{machine()}; {len(names)} CQ100 photos; refined / plain fs, medians")
    print("| K | MSE | blur MSE | SSIM | dE00 | bytes |\n|---|---|---|---|---|---|")
    for k in args.ks:
        ratios: dict[str, list[float]] = {}
        for name in names:
            image = jaxquant.load_image(os.path.join(args.data, name))
            ref = image.astype(np.float64)
            fit = jaxquant.quantize(jax.random.key(0), image, k)
            plain = jaxquant.remap(image, fit.palette, dither="fs")
            again = refined(image, np.asarray(fit.palette), np.asarray(plain.indices))
            second = jaxquant.remap(image, again, dither="fs")
            a = metrics(ref, np.asarray(plain.image), png_bytes(plain))
            b = metrics(ref, np.asarray(second.image), png_bytes(second))
            for m in a:
                ratios.setdefault(m, []).append(b[m] / a[m])
        med = {m: st.median(v) for m, v in ratios.items()}
        print(
            f"| {k} | {med['mse']:.4f} | {med['blur_mse']:.4f} | {med['ssim']:.4f} | "
            f"{med['de00']:.4f} | {med['bytes']:.4f} |"
        )


if __name__ == "__main__":
    main()
