"""jaxquant vs scikit-learn KMeans and libimagequant on CQ100: MSE and time, side by side.

For every image and K, in one process: jaxquant ``quantize`` with defaults (timed warm:
each image is run once to compile if its colour-count bucket is new, then timed),
libimagequant (``imagequant``, dithering 0) and scikit-learn ``KMeans(n_init=1)``. MSE is
the mean over pixels and channels of the squared error on 0..255, measured on the
quantized image each tool returns; times are the best of two calls. Also per image: the
palette entries jaxquant leaves without pixels, and with ``--load`` the times of
jaxquant and libimagequant again while a second process keeps one core busy (a Python
loop, started before and stopped after each image's timings). ``--perceptual`` adds
jaxquant's perceptual preset (``space="weighted-rgb"``) and each tool's mean CIEDE2000
and luma SSIM (scikit-image's ``structural_similarity`` on BT.601 luma). jaxquant runs
with ``--threads`` compute threads (1, the command line's default for one image; see
``jaxquant.set_cpu_threads``). The SQ authors' algorithm (``paper_options``) runs on a
subset. Writes a Markdown table (medians of per-image ratios) to ``--out``.

    python benchmarks/bench_quality.py --load --perceptual --out docs/benchmarks-quality.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics as st
import sys
import time
from pathlib import Path

import jax
import numpy as np
from PIL import Image

import jaxquant
from jaxquant import _fit, _remap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import add_data_argument, photos  # noqa: E402


def machine() -> str:
    """The machine line of the quality, batch and kernel tables: cores, CPU, OS, JAX, backend."""
    cpu = platform.processor() or platform.machine()
    return (
        f"Machine: {os.cpu_count()} CPU cores ({cpu}), {platform.system()}, "
        f"JAX {jax.__version__} on {jax.devices()[0].platform}"
    )


def write_report(path, title: str, script: str, argv, text: str) -> None:
    """Write a benchmark's Markdown page: the title, the command that wrote it, the text."""
    args = argv if argv is not None else sys.argv[1:]
    command = f"python benchmarks/{script}" + "".join(f" {a}" for a in args)
    Path(path).write_text(f"{title}\n\nWritten by `{command}`.\n\n{text}")


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def run_liq(image: np.ndarray, k: int, repeats: int = 1) -> tuple[np.ndarray, float]:
    """libimagequant's result and its best time of ``repeats`` calls."""
    import imagequant

    rgba = Image.fromarray(image).convert("RGBA")
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        q = imagequant.quantize_pil_image(rgba, dithering_level=0.0, max_colors=k)
        best = min(best, time.perf_counter() - t)
    return np.asarray(q.convert("RGB")), best


def run_sklearn(image: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, float]:
    from sklearn.cluster import KMeans

    pixels = image.reshape(-1, 3).astype(np.float32)
    t = time.perf_counter()
    km = KMeans(k, n_init=1, random_state=seed).fit(pixels)
    elapsed = time.perf_counter() - t
    palette = np.clip(np.round(km.cluster_centers_), 0, 255)
    return palette[km.labels_].reshape(image.shape), elapsed


def compiled_programs() -> int:
    """Programs quantize has compiled so far (the fit and the remap: private caches)."""
    return _fit._fit_jit._cache_size() + _remap._assign_jit._cache_size()


def run_jaxquant(image: np.ndarray, k: int, seed: int, repeats: int = 1, **options):
    """The quantized image, its best warm time of ``repeats`` calls, the first call's time
    if it compiled (else ``None``), and the palette entries no pixel uses."""
    key = jax.random.key(seed)
    before = compiled_programs()
    t = time.perf_counter()
    jax.block_until_ready(jaxquant.quantize(key, image, k, **options).image)
    first = time.perf_counter() - t
    compiled = compiled_programs() > before
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        r = jaxquant.quantize(key, image, k, **options)
        out = np.asarray(r.image)
        best = min(best, time.perf_counter() - t)
    unused = k - len(np.unique(np.asarray(r.indices)))
    return out, best, (first if compiled else None), unused


def luma_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of the BT.601 luma of two uint8 RGB images (scikit-image)."""
    from skimage.metrics import structural_similarity

    weights = np.array([0.299, 0.587, 0.114])
    return float(structural_similarity(a @ weights, b @ weights, data_range=255.0))


_DELTA_E = jax.jit(lambda a, b: jaxquant.colour.delta_e(a, b).mean())


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIEDE2000 between two uint8 RGB images."""
    return float(_DELTA_E(a, b))


class CoreLoad:
    """A second process that keeps one core busy (a Python loop) while the block runs."""

    def __enter__(self):
        import subprocess

        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.3)  # let it reach the loop
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(p)
    p.add_argument("--limit", type=int, default=None, help="first N images only")
    p.add_argument("--ks", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument(
        "--sklearn-limit",
        type=int,
        default=None,
        help="run scikit-learn on the first N images only (it is slow at K=256)",
    )
    p.add_argument("--paper-limit", type=int, default=3, help="images for the paper's algorithm")
    p.add_argument("--paper-ks", type=int, nargs="+", default=[16, 64])
    p.add_argument(
        "--threads", type=int, default=1, help="jaxquant's compute threads (1; 0: one per core)"
    )
    p.add_argument("--load", action="store_true", help="also time with one core kept busy")
    p.add_argument(
        "--perceptual", action="store_true", help="add the perceptual preset, CIEDE2000, SSIM"
    )
    p.add_argument("--out", default=None, help="write the Markdown table here")
    p.add_argument("--json", default=None, help="write per-image rows here")
    args = p.parse_args(argv)

    files = [f.name for f in photos(args.data, args.limit)]
    jaxquant.set_cpu_threads(args.threads or None)
    rows = []
    for i, name in enumerate(files):
        image = np.asarray(Image.open(os.path.join(args.data, name)).convert("RGB"))
        for k in args.ks:
            row = dict(image=name, k=k)
            out, row["jq_time"], row["jq_compile"], row["jq_unused"] = run_jaxquant(
                image, k, seed=i, repeats=2
            )
            row["jq_mse"] = mse(out, image)
            liq, row["liq_time"] = run_liq(image, k, repeats=2)
            row["liq_mse"] = mse(liq, image)
            if args.load:
                with CoreLoad():
                    row["jq_time_loaded"] = run_jaxquant(image, k, seed=i, repeats=2)[1]
                    row["liq_time_loaded"] = run_liq(image, k, repeats=2)[1]
            if args.perceptual:
                per, row["pj_time"], _, row["pj_unused"] = run_jaxquant(
                    image, k, seed=i, repeats=2, space="weighted-rgb"
                )
                row["pj_mse"] = mse(per, image)
                for tag, img in (("jq", out), ("liq", liq), ("pj", per)):
                    row[f"{tag}_de"] = delta_e(image, img)
                    row[f"{tag}_ssim"] = luma_ssim(image, img)
            if k <= 64 or args.sklearn_limit is None or i < args.sklearn_limit:
                out, row["sk_time"] = run_sklearn(image, k, seed=i)
                row["sk_mse"] = mse(out, image)
            if i < args.paper_limit and k in args.paper_ks:
                opts = jaxquant.paper_options(image.shape[0] * image.shape[1])
                out, row["paper_time"], _, _ = run_jaxquant(image, k, seed=i, **opts)
                row["paper_mse"] = mse(out, image)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    table = render(rows, args)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)


def _med(values):
    values = [v for v in values if v is not None]
    return st.median(values) if values else float("nan")


def render(rows, args) -> str:
    lines = [
        "<!-- written by benchmarks/bench_quality.py; do not edit by hand -->",
        f"{machine()}; {len({r['image'] for r in rows})} CQ100 images; jaxquant with "
        f"{args.threads or 'one per core'} compute thread(s).",
        "",
        "MSE: mean over pixels and channels of the squared error on 0..255 (lower is better). "
        "Ratios are medians over images of per-image ratios; times are medians of each "
        "image's best of two calls, in seconds, jaxquant warm (compile excluded).",
        "",
        "| K | MSE jaxquant / sklearn | MSE jaxquant / libimagequant | time jaxquant (s) "
        "| time libimagequant (s) | time sklearn (s) | time jaxquant / libimagequant "
        "| time jaxquant / sklearn | images with sklearn |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k in args.ks:
        rs = [r for r in rows if r["k"] == k]
        sk = [r for r in rs if "sk_mse" in r]
        lines.append(
            f"| {k} | {_med([r['jq_mse'] / r['sk_mse'] for r in sk]):.3f} "
            f"| {_med([r['jq_mse'] / r['liq_mse'] for r in rs]):.3f} "
            f"| {_med([r['jq_time'] for r in rs]):.3f} | {_med([r['liq_time'] for r in rs]):.3f} "
            f"| {_med([r['sk_time'] for r in sk]):.2f} "
            f"| {_med([r['jq_time'] / r['liq_time'] for r in rs]):.2f} "
            f"| {_med([r['jq_time'] / r['sk_time'] for r in sk]):.3f} | {len(sk)} |"
        )
    lines += [
        "",
        "The tail: the worst image's MSE against scikit-learn's, the images more than 3% "
        "above it, and the palette entries jaxquant left without pixels (summed over the "
        "images; every CQ100 photo has more distinct colours than K).",
        "",
        "| K | worst MSE jaxquant / sklearn | images above 1.03 | unused entries |",
        "|---|---|---|---|",
    ]
    for k in args.ks:
        rs = [r for r in rows if r["k"] == k]
        sk = [r["jq_mse"] / r["sk_mse"] for r in rs if "sk_mse" in r]
        worst = max(sk) if sk else float("nan")
        lines.append(
            f"| {k} | {worst:.3f} | {sum(v > 1.03 for v in sk)} of {len(sk)} "
            f"| {sum(r['jq_unused'] for r in rs)} |"
        )
    if args.load:
        lines += [
            "",
            "With one core busy (a second process running a Python loop during each "
            "image's timings): medians in seconds, and each tool's slowdown (median of "
            "per-image loaded / idle times).",
            "",
            "| K | jaxquant loaded (s) | libimagequant loaded (s) | jaxquant / libimagequant "
            "loaded | jaxquant slowdown | libimagequant slowdown |",
            "|---|---|---|---|---|---|",
        ]
        for k in args.ks:
            rs = [r for r in rows if r["k"] == k]
            lines.append(
                f"| {k} | {_med([r['jq_time_loaded'] for r in rs]):.3f} "
                f"| {_med([r['liq_time_loaded'] for r in rs]):.3f} "
                f"| {_med([r['jq_time_loaded'] / r['liq_time_loaded'] for r in rs]):.2f} "
                f"| {_med([r['jq_time_loaded'] / r['jq_time'] for r in rs]):.2f}x "
                f"| {_med([r['liq_time_loaded'] / r['liq_time'] for r in rs]):.2f}x |"
            )
    if args.perceptual:
        lines += [
            "",
            "Perceptual error: mean CIEDE2000 over pixels (lower is better) and SSIM of the "
            "BT.601 luma (higher is better), for jaxquant's default (`rgb`), its perceptual "
            'preset (`space="weighted-rgb"`) and libimagequant; "beats" counts the images '
            "where jaxquant's is better than libimagequant's.",
            "",
            "| K | ΔE00 default | ΔE00 perceptual | ΔE00 libimagequant | perceptual beats "
            "ΔE00 | default beats ΔE00 | perceptual beats SSIM | default beats SSIM "
            "| time perceptual / libimagequant | MSE perceptual / libimagequant |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for k in args.ks:
            rs = [r for r in rows if r["k"] == k]
            n = len(rs)

            def beats(tag, metric, better, rs=rs):
                return sum(better(r[f"{tag}_{metric}"], r[f"liq_{metric}"]) for r in rs)

            lower, higher = (lambda a, b: a < b), (lambda a, b: a > b)
            lines.append(
                f"| {k} | {st.mean(r['jq_de'] for r in rs):.3f} "
                f"| {st.mean(r['pj_de'] for r in rs):.3f} "
                f"| {st.mean(r['liq_de'] for r in rs):.3f} "
                f"| {beats('pj', 'de', lower)} of {n} | {beats('jq', 'de', lower)} of {n} "
                f"| {beats('pj', 'ssim', higher)} of {n} | {beats('jq', 'ssim', higher)} of {n} "
                f"| {_med([r['pj_time'] / r['liq_time'] for r in rs]):.2f} "
                f"| {_med([r['pj_mse'] / r['liq_mse'] for r in rs]):.3f} |"
            )
    compiles = [r["jq_compile"] for r in rows if r.get("jq_compile")]
    if compiles:
        lines += [
            "",
            f"Compilation: {len(compiles)} programs compiled (one per colour-count bucket and K); "
            f"first call incl. compile median {st.median(compiles):.2f} s, "
            f"max {max(compiles):.2f} s.",
        ]
    paper = [r for r in rows if "paper_mse" in r]
    if paper:
        lines += [
            "",
            "The SQ authors' algorithm as a jaxquant configuration (`paper_options`: rank 3, one "
            "pixel per step, SGD 1e-3, one pass, D¹ k-means++), on the first images:",
            "",
            "| K | images | MSE paper / jaxquant default | time paper (s) | time jaxquant (s) |",
            "|---|---|---|---|---|",
        ]
        for k in sorted({r["k"] for r in paper}):
            rs = [r for r in paper if r["k"] == k]
            lines.append(
                f"| {k} | {len(rs)} | {_med([r['paper_mse'] / r['jq_mse'] for r in rs]):.3f} "
                f"| {_med([r['paper_time'] for r in rs]):.2f} "
                f"| {_med([r['jq_time'] for r in rs]):.3f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
