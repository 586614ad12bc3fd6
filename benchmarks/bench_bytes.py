"""Output bytes of jaxquant's PNG writer vs pngquant on CQ100 photos, with MSE and time.

For every image and K, in one process, interleaved (each image at each K runs every
tool before the next): ``pngquant --nofs --speed 1 K`` (no dithering, slowest/best
setting, ``--quality`` not set; the binary on ``PATH``), then jaxquant's
``quantize(jax.random.key(0), image, k)`` written by ``io.encode`` (default) and
``io.encode(optimize=True)`` (oxipng), and the same palette remapped with ``runs=1``
(the command line's default, :func:`jaxquant.dither.favour_runs`) and written both
ways. Bytes are the file sizes; MSE is the mean over pixels and channels of the squared
error on 0..255 of the decoded file against the input. Reports medians of per-image
ratios (jaxquant / pngquant) and encode times (the encoding alone, plus the ``runs``
remap in its rows, not the quantization; pngquant's time includes its quantization).

    python benchmarks/bench_bytes.py --limit 30 --out docs/benchmarks-bytes.md
"""

from __future__ import annotations

import argparse
import io as _io
import os
import shutil
import statistics as st
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))

from _data import add_data_argument, photos  # noqa: E402
from bench_quality import machine, mse  # noqa: E402

import jaxquant  # noqa: E402
from jaxquant import io  # noqa: E402
from jaxquant.cli._parser import DEFAULT_RUNS as RUNS  # noqa: E402


def run_pngquant(path: str, k: int, tmp: str) -> tuple[int, np.ndarray, float]:
    out = os.path.join(tmp, "pq.png")
    t = time.perf_counter()
    subprocess.run(
        ["pngquant", "--nofs", "--speed", "1", "--force", "--output", out, str(k), path],
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - t
    with Image.open(out) as im:
        decoded = np.asarray(im.convert("RGB"))
    return os.path.getsize(out), decoded, elapsed


def decode(data: bytes) -> np.ndarray:
    with Image.open(_io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(p)
    p.add_argument("--limit", type=int, default=30, help="first N images (default 30)")
    p.add_argument("--ks", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--no-optimize", action="store_true", help="skip optimize=True (oxipng)")
    p.add_argument("--out", default=None, help="write the Markdown table here")
    args = p.parse_args()
    files = [f.name for f in photos(args.data, args.limit)]
    if shutil.which("pngquant") is None:
        sys.exit("pngquant is not on PATH: pip install pngquant-cli")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(files):
            path = os.path.join(args.data, name)
            with Image.open(path) as im:
                image = np.asarray(im.convert("RGB"))
            for k in args.ks:
                pq_bytes, pq_image, pq_time = run_pngquant(path, k, tmp)
                r = jaxquant.quantize(jax.random.key(0), image, k)
                jax.block_until_ready(r.image)
                row = {"name": name, "k": k, "pq_bytes": pq_bytes, "pq_time": pq_time}
                row["pq_mse"] = mse(pq_image, image)
                variants = [("default", 0.0, False), ("runs", RUNS, False)]
                if not args.no_optimize:
                    variants += [("opt", 0.0, True), ("runs_opt", RUNS, True)]
                for label, runs, optimize in variants:
                    t = time.perf_counter()
                    out = jaxquant.remap(image, r.palette, runs=runs) if runs else r
                    data = io.encode(out, optimize=optimize)
                    row[f"{label}_time"] = time.perf_counter() - t
                    row[f"{label}_bytes"] = len(data)
                    decoded = decode(data)
                    if not np.array_equal(decoded, np.asarray(out.image)):
                        raise SystemExit(f"{name} k={k} {label}: decoded image differs")
                    row[f"{label}_mse"] = mse(decoded, image)
                rows.append(row)
                print(
                    f"[{i + 1}/{len(files)}] {name} k={k}: pngquant {pq_bytes} B, "
                    + ", ".join(
                        f"{lb} {row[f'{lb}_bytes']} B ({row[f'{lb}_bytes'] / pq_bytes:.3f}x, "
                        f"{row[f'{lb}_time']:.2f} s)"
                        for lb, _, _ in variants
                    ),
                    flush=True,
                )
    text = render(rows, args)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


def render(rows, args) -> str:
    labels = ["default", "runs"] + ([] if args.no_optimize else ["opt", "runs_opt"])
    names = {
        "default": "`io.encode`",
        "runs": f"`runs={RUNS:g}`, `io.encode` (the CLI's default)",
        "opt": "`io.encode(optimize=True)`",
        "runs_opt": f"`runs={RUNS:g}`, `io.encode(optimize=True)`",
    }
    n = len({r["name"] for r in rows})
    lines = [
        "# Output bytes: jaxquant vs pngquant",
        "",
        f"{n} CQ100 photos (768x512), medians of per-image ratios jaxquant / pngquant "
        "(`pngquant --nofs --speed 1 K`). Bytes: file sizes. MSE: on 0..255, mean over "
        "pixels and channels, of the decoded file against the input. `runs=1`: the fitted "
        "palette remapped with `jaxquant.remap(image, palette, runs=1)` "
        "(`jaxquant.dither.favour_runs`), what `jaxquant compress` writes by default. "
        "Time: the encoding alone for jaxquant (with the runs remap in its rows; the fit "
        "not included); pngquant's whole run.",
        "",
        machine(),
        "",
        "Command: `python benchmarks/bench_bytes.py " + " ".join(sys.argv[1:]) + "`",
        "",
        "| K | writer | bytes / pngquant (median) | (min, max) | MSE / pngquant (median) "
        "| encode time median (max) | pngquant time median |",
        "|---|---|---|---|---|---|---|",
    ]
    for k in args.ks:
        sel = [r for r in rows if r["k"] == k]
        if not sel:
            continue
        for lb in labels:
            ratios = [r[f"{lb}_bytes"] / r["pq_bytes"] for r in sel]
            mses = [r[f"{lb}_mse"] / r["pq_mse"] for r in sel if r["pq_mse"] > 0]
            times = [r[f"{lb}_time"] for r in sel]
            lines.append(
                f"| {k} | {names[lb]} | {st.median(ratios):.3f} | "
                f"({min(ratios):.3f}, {max(ratios):.3f}) | "
                f"{st.median(mses) if mses else float('nan'):.3f} | "
                f"{st.median(times):.2f} s ({max(times):.2f} s) | "
                f"{st.median(r['pq_time'] for r in sel):.2f} s |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
