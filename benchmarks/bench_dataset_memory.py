"""Peak memory of one palette for 1, 10 and 100 photos: it must not grow with the photos.

Each size runs in a fresh process: a first fit on one photo compiles every program, then
the peak counters are reset (``/proc/self/clear_refs`` for the resident set,
``tracemalloc.reset_peak`` for NumPy and Python allocations) and
``jaxquant.fit_palette(key, paths, K)`` runs on ``n`` CQ100 photos given as paths
(streamed: read one at a time, three times: the sample and two Lloyd passes). Reported:
the peak resident set (``VmHWM``) and the traced peak during that fit, and their growth
from 1 photo; a photo's pixels are 768 x 512 x 3 = 1.18 MB decoded. The sizes run
``--repeats`` times, interleaved, and the resident peaks are reported as medians (they
vary by several MB from run to run with the same work: allocator and thread layout).

Usage::

    python benchmarks/bench_dataset_memory.py --sizes 1 10 100 --k 256 \
        --out docs/benchmarks-dataset-memory.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import add_data_argument, photos  # noqa: E402

_CHILD = r"""
import json, sys, time, tracemalloc
import jax, jaxquant
n, k, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
paths = [files[i % len(files)] for i in range(n)]
jaxquant.fit_palette(jax.random.key(1), paths[:1], k)  # compile everything
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
open("/proc/self/clear_refs", "w").write("5")
tracemalloc.start()
before = rss()
t = time.perf_counter()
fit = jaxquant.fit_palette(jax.random.key(0), paths, k)
seconds = time.perf_counter() - t
_, traced = tracemalloc.get_traced_memory()
print(json.dumps({"n": n, "hwm": hwm(), "before": before, "traced": traced,
                  "seconds": seconds, "pixels": fit.num_pixels, "images": fit.num_images}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(ap)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100])
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    files = [str(f) for f in photos(args.data)]
    runs: dict[int, list[dict]] = {n: [] for n in args.sizes}
    for _ in range(args.repeats):
        for n in args.sizes:
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(n), str(args.k), *files],
                check=True,
                capture_output=True,
                text=True,
            )
            runs[n].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(runs[n][-1], flush=True)
    rows = []
    for n in args.sizes:
        r = dict(runs[n][0])
        for field in ("hwm", "traced", "seconds"):
            r[field] = statistics.median(x[field] for x in runs[n])
        r["spread"] = max(x["hwm"] for x in runs[n]) - min(x["hwm"] for x in runs[n])
        rows.append(r)
    base = rows[0]
    mb = 1e6
    lines = [
        "# Memory of one palette for many photos",
        "",
        f"Written by `python benchmarks/bench_dataset_memory.py --sizes "
        f"{' '.join(map(str, args.sizes))} --k {args.k} --repeats {args.repeats}`.",
        "",
        "Each row a fresh process, after a first fit that compiled every program; peaks "
        "reset, then `fit_palette(key, paths, K)` streamed over the photos (CQ100, "
        f"768x512, reused in turn beyond 100). K={args.k}. One photo's pixels: 1.18 MB. "
        f"Medians of {args.repeats} interleaved runs.",
        "",
        "| photos | pixels | fit s | peak RSS MB | its spread over runs MB | growth from 1 "
        "photo MB | traced peak MB | growth MB | all pixels as float32 MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['images']} | {r['pixels']:,} | {r['seconds']:.1f} | {r['hwm'] / mb:.1f} | "
            f"{r['spread'] / mb:.1f} | {(r['hwm'] - base['hwm']) / mb:+.1f} | "
            f"{r['traced'] / mb:.1f} | "
            f"{(r['traced'] - base['traced']) / mb:+.1f} | {r['pixels'] * 12 / mb:.0f} |"
        )
    lines += [
        "",
        "The last column is what an in-memory method (k-means on all pixels together) "
        "would hold for the pixels alone, computed, not measured.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
