"""jaxquant vs scikit-learn KMeans and libimagequant on CQ100: MSE and time, side by side.

For every image and K, in one process: jaxquant ``quantize`` with defaults (timed warm:
each image is run once to compile if its colour-count bucket is new, then timed),
libimagequant (``imagequant``, dithering 0) and scikit-learn ``KMeans(n_init=1)``. MSE is
the mean over pixels and channels of the squared error on 0..255, measured on the
quantized image each tool returns. The SQ authors' algorithm (``paper_options``) runs on
a subset. Writes a Markdown table (medians of per-image ratios) to ``--out``.

    python benchmarks/bench_quality.py --out docs/benchmarks-quality.md
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


def run_liq(image: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    import imagequant

    rgba = Image.fromarray(image).convert("RGBA")
    t = time.perf_counter()
    q = imagequant.quantize_pil_image(rgba, dithering_level=0.0, max_colors=k)
    elapsed = time.perf_counter() - t
    return np.asarray(q.convert("RGB")), elapsed


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


def run_jaxquant(image: np.ndarray, k: int, seed: int, **options):
    key = jax.random.key(seed)
    before = compiled_programs()
    t = time.perf_counter()
    jax.block_until_ready(jaxquant.quantize(key, image, k, **options).image)
    first = time.perf_counter() - t
    compiled = compiled_programs() > before
    t = time.perf_counter()
    r = jaxquant.quantize(key, image, k, **options)
    out = np.asarray(r.image)
    return out, time.perf_counter() - t, (first if compiled else None)


def main() -> None:
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
    p.add_argument("--out", default=None, help="write the Markdown table here")
    p.add_argument("--json", default=None, help="write per-image rows here")
    args = p.parse_args()

    files = [f.name for f in photos(args.data, args.limit)]
    rows = []
    for i, name in enumerate(files):
        image = np.asarray(Image.open(os.path.join(args.data, name)).convert("RGB"))
        for k in args.ks:
            row = dict(image=name, k=k)
            out, row["jq_time"], row["jq_compile"] = run_jaxquant(image, k, seed=i)
            row["jq_mse"] = mse(out, image)
            out, row["liq_time"] = run_liq(image, k)
            row["liq_mse"] = mse(out, image)
            if k <= 64 or args.sklearn_limit is None or i < args.sklearn_limit:
                out, row["sk_time"] = run_sklearn(image, k, seed=i)
                row["sk_mse"] = mse(out, image)
            if i < args.paper_limit and k in args.paper_ks:
                opts = jaxquant.paper_options(image.shape[0] * image.shape[1])
                out, row["paper_time"], _ = run_jaxquant(image, k, seed=i, **opts)
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
        f"{machine()}; {len({r['image'] for r in rows})} CQ100 images.",
        "",
        "MSE: mean over pixels and channels of the squared error on 0..255 (lower is better). "
        "Ratios are medians over images of per-image ratios; times are medians in seconds, "
        "jaxquant warm (compile excluded).",
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
