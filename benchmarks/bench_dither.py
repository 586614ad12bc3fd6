"""Dithered quality and cost: jaxquant none / fs / ordered against pngquant, side by side.

For each CQ100 photo and K, one run of each method on the same image:

- ``pngquant K`` (its default: Floyd-Steinberg dithering, speed 4) and
  ``pngquant --nofs K``, through the binary of the ``pngquant-cli`` package;
- jaxquant's palette (``quantize``) written without dithering, with ``dither="fs"`` and
  with ``dither="ordered"``.

Measures, all against the original (0..255 scale): MSE; MSE after a Gaussian blur of
sigma 1 px of both images (what the eye sees from a distance, which rewards
dithering); SSIM (Gaussian window, sigma 1.5, on each channel, averaged); mean CIEDE2000
after the same blur; the PNG's bytes; and the time of the dithering itself against the
fit. Reports medians over images of each value and of per-image ratios to pngquant.

Usage::

    python benchmarks/bench_dither.py --limit 20 --ks 64 256 --out docs/benchmarks-dither.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics as st
import subprocess
import tempfile
import time

import jax
import numpy as np
from _data import add_data_argument, photos  # noqa: E402
from bench_quality import machine  # noqa: E402  (benchmarks/ on sys.path)
from PIL import Image
from scipy.ndimage import gaussian_filter

import jaxquant
from jaxquant import colour, io


def blur(a: np.ndarray, sigma: float) -> np.ndarray:
    return gaussian_filter(a.astype(np.float64), sigma=(sigma, sigma, 0), mode="reflect")


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over channels (Wang et al. 2004, Gaussian window sigma 1.5, 0..255)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = blur(a, 1.5), blur(b, 1.5)
    var_a = blur(a * a, 1.5) - mu_a**2
    var_b = blur(b * b, 1.5) - mu_b**2
    cov = blur(a * b, 1.5) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIEDE2000 between the two images after a sigma-1 blur (what dithering mixes)."""
    fa = np.clip(blur(a, 1.0) / 255.0, 0, 1).reshape(-1, 3)
    fb = np.clip(blur(b, 1.0) / 255.0, 0, 1).reshape(-1, 3)
    return float(np.mean(np.asarray(colour.delta_e(fa, fb))))


def metrics(original: np.ndarray, out: np.ndarray, nbytes: int) -> dict[str, float]:
    return {
        "mse": float(np.mean((out.astype(np.float64) - original) ** 2)),
        "blur_mse": float(np.mean((blur(out, 1.0) - blur(original, 1.0)) ** 2)),
        "ssim": ssim(original, out),
        "de00": delta_e(original, out),
        "bytes": float(nbytes),
    }


def run_pngquant(path: str, k: int, tmp: str, *, dither: bool) -> tuple[np.ndarray, int, float]:
    out = os.path.join(tmp, "pq.png")
    cmd = ["pngquant", "--force", "--output", out, str(k), path]
    if not dither:
        cmd.insert(1, "--nofs")
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    elapsed = time.perf_counter() - t
    return np.asarray(Image.open(out).convert("RGB")), os.path.getsize(out), elapsed


def png_bytes(result) -> int:
    """The size of the indexed PNG jaxquant writes by default (``io.encode``)."""
    return len(io.encode(result))


def timed(f):
    t = time.perf_counter()
    value = jax.block_until_ready(f())
    return value, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_argument(p)
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--ks", type=int, nargs="+", default=[64, 256])
    p.add_argument("--out", help="markdown table to write")
    p.add_argument(
        "--fs-levels",
        type=float,
        nargs="*",
        default=[],
        help="also run fs at these dither levels (rows 'fs@L'), for the level sweep",
    )
    p.add_argument("--crop", help="write gallery crops of this image name (e.g. sunset)")
    args = p.parse_args()
    names = [f.name for f in photos(args.data)]
    if shutil.which("pngquant") is None:
        raise SystemExit("pngquant not found: pip install pngquant-cli")
    names = names[:: max(1, len(names) // args.limit)][: args.limit]  # spread over the set
    extra = [f"fs@{level:g}" for level in args.fs_levels]
    methods = ["pq-nofs", "pq", "none", "fs", *extra, "ordered"]
    rows: dict[tuple[int, str], list[dict[str, float]]] = {}
    times: dict[int, dict[str, list[float]]] = {}
    key = jax.random.key(0)
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.ks:  # warm every program once
            image = np.asarray(Image.open(os.path.join(args.data, names[0])).convert("RGB"))
            r = jaxquant.quantize(key, image, k)
            for d in ("fs", "ordered"):
                jaxquant.remap(image, r.palette, dither=d)
        for name in names:
            path = os.path.join(args.data, name)
            image = np.asarray(Image.open(path).convert("RGB"))
            for k in args.ks:
                t = times.setdefault(k, {"fit": [], "fs": [], "ordered": [], "pq": []})
                pq, pq_bytes, pq_t = run_pngquant(path, k, tmp, dither=True)
                t["pq"].append(pq_t)
                nofs, nofs_bytes, _ = run_pngquant(path, k, tmp, dither=False)
                rows.setdefault((k, "pq"), []).append(metrics(image, pq, pq_bytes))
                rows.setdefault((k, "pq-nofs"), []).append(metrics(image, nofs, nofs_bytes))
                fit, t_fit = timed(lambda image=image, k=k: jaxquant.quantize(key, image, k))
                t["fit"].append(t_fit)
                for d in ("none", "fs", "ordered"):
                    if d == "none":
                        res = fit
                    else:
                        res, t_d = timed(
                            lambda image=image, fit=fit, d=d: jaxquant.remap(
                                image, fit.palette, dither=d
                            )
                        )
                        t[d].append(t_d)
                    nbytes = png_bytes(res)
                    rows.setdefault((k, d), []).append(
                        metrics(image, np.asarray(res.image), nbytes)
                    )
                for name_l, level in zip(extra, args.fs_levels, strict=True):
                    res = jaxquant.remap(image, fit.palette, dither="fs", dither_level=level)
                    rows.setdefault((k, name_l), []).append(
                        metrics(image, np.asarray(res.image), png_bytes(res))
                    )
            print(name, flush=True)
    lines = [
        "# Dithering: jaxquant against pngquant",
        "",
        f"{machine()}; {len(names)} CQ100 photos (768x512); pngquant "
        + subprocess.run(["pngquant", "--version"], capture_output=True, text=True).stdout.strip()
        + ".",
        "",
        "`python benchmarks/bench_dither.py "
        + f"--limit {args.limit} --ks {' '.join(map(str, args.ks))}"
        + (f" --fs-levels {' '.join(f'{v:g}' for v in args.fs_levels)}" if extra else "")
        + "`. Medians over photos; "
        "blur = both images blurred by a Gaussian of sigma 1 px; dE00 = mean CIEDE2000 after "
        "that blur; SSIM on each channel (sigma 1.5), averaged. pq = `pngquant K` (its "
        "default, dithered), pq-nofs = `pngquant --nofs K`. Ratios are medians of per-photo "
        "ratios to pq.",
        "",
        "| K | method | MSE | blur MSE | SSIM | dE00 | bytes | blur MSE / pq | SSIM / pq | "
        "dE00 / pq | bytes / pq |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k in args.ks:
        ref = rows[(k, "pq")]
        for m in methods:
            rs = rows[(k, m)]

            def med(f, rs=rs):
                return st.median(r[f] for r in rs)

            def ratio(f, rs=rs, ref=ref):
                return st.median(r[f] / q[f] for r, q in zip(rs, ref, strict=True))

            lines.append(
                f"| {k} | {m} | {med('mse'):.1f} | {med('blur_mse'):.2f} | {med('ssim'):.4f} | "
                f"{med('de00'):.3f} | {med('bytes'):,.0f} | {ratio('blur_mse'):.3f} | "
                f"{ratio('ssim'):.4f} | {ratio('de00'):.3f} | {ratio('bytes'):.3f} |"
            )
    lines += [
        "",
        "Time (median seconds per photo, warm): the fit (`quantize`), then each dithering "
        "(`remap(..., dither=...)` with the fitted palette), and a whole pngquant run.",
        "",
        "| K | fit | fs | ordered | fs / fit | pngquant (process) |",
        "|---|---|---|---|---|---|",
    ]
    for k in args.ks:
        t = times[k]
        lines.append(
            f"| {k} | {st.median(t['fit']):.3f} | {st.median(t['fs']):.3f} | "
            f"{st.median(t['ordered']):.3f} | "
            f"{st.median(a / b for a, b in zip(t['fs'], t['fit'], strict=True)):.2f} | "
            f"{st.median(t['pq']):.3f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
