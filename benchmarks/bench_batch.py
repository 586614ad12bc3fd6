"""Throughput on a folder: jaxquant batch (API and CLI, cold and warm) vs per-image loops.

In one process run, for each K: jaxquant ``quantize_batch`` on all images held in
memory (cold: first call in the process, compilation included; warm: second call, new
key); the ``jaxquant compress`` CLI on the image directory (cold: empty compilation
cache; warm: cache filled by the cold run; both include interpreter start, reading and
writing PNGs); a loop of libimagequant (``imagequant``, dithering 0) in memory and file
to file (read, quantize, write an indexed PNG); a loop of scikit-learn
``KMeans(n_init=1)`` on the first ``--sklearn-limit`` images. Reports images/s and mean
MSE (0..255 scale, mean over pixels and channels), and writes a Markdown table.

    python benchmarks/bench_batch.py --out docs/benchmarks-batch.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
from PIL import Image

import jaxquant

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import add_data_argument, photos  # noqa: E402
from bench_quality import machine, mse, run_liq, run_sklearn  # noqa: E402


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def jaxquant_api(images, k):
    def run(seed):
        results = jaxquant.quantize_batch(jax.random.key(seed), images, k)
        return [np.asarray(r.image) for r in results]

    cold_out, cold = _timed(lambda: run(0))
    warm_out, warm = _timed(lambda: run(1))
    return cold, warm, np.mean([mse(o, im) for o, im in zip(warm_out, images, strict=True)])


def jaxquant_cli(data, files, k, tmp):
    src = os.path.join(tmp, "in")
    if not os.path.isdir(src):
        os.makedirs(src)
        for f in files:
            os.symlink(os.path.abspath(os.path.join(data, f)), os.path.join(src, f))
    cache = os.path.join(tmp, f"cache{k}")
    times = []
    for run in ("cold", "warm"):
        out = os.path.join(tmp, f"out{k}{run}")
        cmd = [sys.executable, "-m", "jaxquant.cli", "compress", src, "--out-dir", out]
        cmd += ["-k", str(k), "-q", "--no-progress", "--cache-dir", cache]
        _, t = _timed(lambda cmd=cmd: subprocess.run(cmd, check=True))
        times.append(t)
    return times


def liq_loop(images, k):
    outs, t = _timed(lambda: [run_liq(im, k)[0] for im in images])
    return t, np.mean([mse(o, im) for o, im in zip(outs, images, strict=True)])


def liq_files(data, files, k, tmp):
    import imagequant

    out = os.path.join(tmp, f"liq{k}")
    os.makedirs(out, exist_ok=True)

    def run():
        for f in files:
            with Image.open(os.path.join(data, f)) as im:
                rgba = im.convert("RGBA")
            q = imagequant.quantize_pil_image(rgba, dithering_level=0.0, max_colors=k)
            q.save(os.path.join(out, f), format="PNG", compress_level=9)

    return _timed(run)[1]


def sklearn_loop(images, k):
    outs, t = _timed(lambda: [run_sklearn(im, k, seed=0)[0] for im in images])
    return t, np.mean([mse(o, im) for o, im in zip(outs, images, strict=True)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(p)
    p.add_argument("--limit", type=int, default=None, help="first N images only")
    p.add_argument("--ks", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--sklearn-limit", type=int, default=10)
    p.add_argument("--out", default=None, help="write the Markdown table here")
    args = p.parse_args()

    files = [f.name for f in photos(args.data, args.limit)]
    images = [np.asarray(Image.open(os.path.join(args.data, f)).convert("RGB")) for f in files]
    n, n_sk = len(images), min(args.sklearn_limit, len(images))
    tmp = tempfile.mkdtemp(prefix="jaxquant-bench-")
    rows = []
    try:
        for k in args.ks:
            api_cold, api_warm, jq_mse = jaxquant_api(images, k)
            cli_cold, cli_warm = jaxquant_cli(args.data, files, k, tmp)
            liq_t, liq_mse = liq_loop(images, k)
            liq_file_t = liq_files(args.data, files, k, tmp)
            sk_t, sk_mse = sklearn_loop(images[:n_sk], k) if n_sk else (float("nan"),) * 2
            jq_sk = np.mean(
                [mse(np.asarray(r.image), im) for r, im in zip(
                    jaxquant.quantize_batch(jax.random.key(1), images[:n_sk], k),
                    images[:n_sk],
                    strict=True,
                )]
            ) if n_sk else float("nan")  # fmt: skip
            row = dict(
                k=k,
                api_cold=n / api_cold,
                api_warm=n / api_warm,
                cli_cold=n / cli_cold,
                cli_warm=n / cli_warm,
                liq=n / liq_t,
                liq_files=n / liq_file_t,
                sk=n_sk / sk_t,
                jq_mse=jq_mse,
                liq_mse=liq_mse,
                sk_mse=sk_mse,
                jq_sk_mse=jq_sk,
            )
            rows.append(row)
            print(row, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = render(rows, n, n_sk)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)


def render(rows, n, n_sk) -> str:
    lines = [
        "<!-- written by benchmarks/bench_batch.py; do not edit by hand -->",
        f"{machine()} ({jax.local_device_count()} device(s)); {n} CQ100 images (768×512), "
        f"scikit-learn on the first {n_sk}.",
        "",
        "Throughput in images/s (higher is better); MSE is the mean over images of the "
        "mean squared error on 0..255 (lower is better).",
        "",
        "| K | jaxquant API warm | jaxquant API cold | jaxquant CLI warm | jaxquant CLI cold "
        "| libimagequant loop | libimagequant files | scikit-learn loop "
        "| API warm / libimagequant | CLI warm / libimagequant files "
        "| MSE jaxquant | MSE libimagequant | MSE jaxquant / sklearn (sklearn images) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['k']} | {r['api_warm']:.2f} | {r['api_cold']:.2f} | {r['cli_warm']:.2f} "
            f"| {r['cli_cold']:.2f} | {r['liq']:.2f} | {r['liq_files']:.2f} | {r['sk']:.3f} "
            f"| {r['api_warm'] / r['liq']:.2f}x | {r['cli_warm'] / r['liq_files']:.2f}x "
            f"| {r['jq_mse']:.1f} | {r['liq_mse']:.1f} | {r['jq_sk_mse'] / r['sk_mse']:.3f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
