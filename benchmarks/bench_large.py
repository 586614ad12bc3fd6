"""Large images (2, 12 and 24 MP): jaxquant against libimagequant in time, MSE and peak memory.

No photograph that large ships with the data, so each is a CQ100 photo (768x512)
upscaled with Lanczos to 1600x1200 (2 MP), 4000x3000 (12 MP) and 6000x4000 (24 MP).
Every measurement runs in a fresh process of its own, so that its peak resident memory
(``ru_maxrss``) is its own: the image is decoded and converted first, then the tool runs
twice on it and the second call is timed (jaxquant warm: compiled by the first).
jaxquant runs ``quantize`` with its defaults, once per ``--threads`` value (compute
threads, ``jaxquant.set_cpu_threads``; 0: one per core, JAX's default);
libimagequant is ``imagequant`` with dithering 0. The processes alternate per photo.

    python benchmarks/bench_large.py --out docs/benchmarks-large.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics as st
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import add_data_argument, photos  # noqa: E402

SIZES = {"2 MP": (1600, 1200), "12 MP": (4000, 3000), "24 MP": (6000, 4000)}

_CHILD = r"""
import json, resource, sys, time
import numpy as np
from PIL import Image
tool, path, w, h, k, threads = sys.argv[1:7]
w, h, k, threads = int(w), int(h), int(k), int(threads)
with Image.open(path) as im:
    image = np.asarray(im.convert("RGB").resize((w, h), Image.Resampling.LANCZOS))
if tool == "jaxquant":
    import jaxquant
    jaxquant.set_cpu_threads(threads or None)
    import jax
    def run():
        return np.asarray(jaxquant.quantize(jax.random.key(0), image, k).image)
else:
    import imagequant
    rgba = Image.fromarray(image).convert("RGBA")
    def run():
        q = imagequant.quantize_pil_image(rgba, dithering_level=0.0, max_colors=k)
        return np.asarray(q.convert("RGB"))
run()
t = time.perf_counter()
out = run()
elapsed = time.perf_counter() - t
err = float(np.mean((out.astype(np.float32) - image.astype(np.float32)) ** 2))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"time": elapsed, "mse": err, "peak": peak}))
"""


def measure(tool: str, path, size, k: int, threads: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, tool, str(path), *map(str, size), str(k), str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(p)
    p.add_argument("--images", type=int, default=3, help="CQ100 photos to upscale")
    p.add_argument("--k", type=int, default=256)
    p.add_argument(
        "--threads", type=int, nargs="+", default=[1, 0], help="jaxquant's (0: one per core)"
    )
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--out")
    args = p.parse_args(argv)
    files = photos(args.data)
    picks = files[:: max(1, len(files) // args.images)][: args.images]
    rows = []
    runs = [("jaxquant", t) for t in args.threads] + [("libimagequant", 0)]
    for label in args.sizes:
        per: dict[tuple[str, int], list[dict]] = {run: [] for run in runs}
        for f in picks:
            for tool, threads in runs:
                per[tool, threads].append(measure(tool, f, SIZES[label], args.k, threads))
                print(label, f.stem, tool, threads, per[tool, threads][-1], flush=True)
        lq = per["libimagequant", 0]
        for t in args.threads:
            jq = per["jaxquant", t]
            rows.append(
                (
                    label,
                    "one per core" if t == 0 else str(t),
                    st.median(r["time"] for r in jq),
                    st.median(r["time"] for r in lq),
                    st.median(a["time"] / b["time"] for a, b in zip(jq, lq, strict=True)),
                    st.median(a["mse"] / b["mse"] for a, b in zip(jq, lq, strict=True)),
                    st.median(r["peak"] for r in jq) / 2**20,
                    st.median(r["peak"] for r in lq) / 2**20,
                )
            )
    import jax

    lines = [
        f"{os.cpu_count()} CPU cores, JAX {jax.__version__}; K = {args.k}; "
        f"{len(picks)} CQ100 photos ({', '.join(f.stem for f in picks)}) upscaled. "
        "Medians; ratios are medians of per-photo ratios. Peak memory is the process's "
        "peak resident set (the decoded image, the interpreter and, for jaxquant, JAX's "
        "runtime included).",
        "",
        "| size | jaxquant threads | jaxquant (s) | libimagequant (s) | time ratio | MSE ratio "
        "| jaxquant peak (MiB) | libimagequant peak (MiB) | peak ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, th, tj, tl, tr, mr, pj, pl in rows:
        lines.append(
            f"| {label} | {th} | {tj:.2f} | {tl:.2f} | {tr:.2f} | {mr:.3f} | {pj:.0f} | {pl:.0f} "
            f"| {pj / pl:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        from bench_quality import write_report

        write_report(args.out, "# Large images", "bench_large.py", argv, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
