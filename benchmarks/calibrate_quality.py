"""Calibrate jaxquant's quality scale against pngquant's on real photographs.

pngquant reports the quality of its result as ``Q`` next to an MSE measured in its own
gamma-weighted units. jaxquant's quality is a function of the plain sRGB MSE (0..255
scale, mean over channels), so that ``--quality`` numbers mean about the same on both
tools, this script runs ``pngquant -v --nofs --quality 0-Q`` on CQ100 photographs, measures
the plain MSE of each file pngquant wrote, and prints the median ratio of the plain MSE to
pngquant's reported one: the constant :data:`jaxquant.quality.SCALE`.

    python benchmarks/calibrate_quality.py --limit 30
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import add_data_argument, photos  # noqa: E402
from bench_quality import machine  # noqa: E402

PATTERN = re.compile(r"MSE=([0-9.]+) \(Q=(\d+)\)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(ap)
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--qualities", type=int, nargs="+", default=[40, 60, 80, 90])
    args = ap.parse_args(argv)
    files = photos(args.data)
    files = files[:: max(1, len(files) // args.limit)][: args.limit]
    ratios: dict[int, list[float]] = {q: [] for q in args.qualities}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "q.png"
        for f in files:
            a = np.asarray(Image.open(f).convert("RGB"), np.float64)
            for q in args.qualities:
                cmd = ["pngquant", "-v", "--nofs", "--force", "--quality", f"0-{q}"]
                p = subprocess.run(
                    [*cmd, "-o", str(out), str(f)],
                    capture_output=True,
                    text=True,
                )
                m = PATTERN.search(p.stderr + p.stdout)
                if p.returncode != 0 or m is None:
                    continue
                b = np.asarray(Image.open(out).convert("RGB"), np.float64)
                plain = float(((a - b) ** 2).mean())
                if float(m.group(1)) > 0:
                    ratios[q].append(plain / float(m.group(1)))
    print(f"# {machine()}; {len(files)} photos")
    print("| asked Q | files | median plain/pngquant MSE | quartiles |")
    print("|---|---|---|---|")
    every = []
    for q, r in ratios.items():
        every += r
        lo, mid, hi = np.percentile(r, [25, 50, 75])
        print(f"| {q} | {len(r)} | {mid:.2f} | {lo:.2f}-{hi:.2f} |")
    print(f"all: median {np.median(every):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
