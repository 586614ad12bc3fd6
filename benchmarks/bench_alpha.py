"""Transparency: is opacity kept, how many entries go to translucency, opaque MSE.

Ten CQ100 photos (every tenth) get a round vignette: opaque centre, a translucent ring
about a tenth of the radius wide, transparent corners (colour zeroed, as load_image
does). Each is quantized at k = 16 and 64 with the default options, seed 0.

    python benchmarks/bench_alpha.py              # this checkout
    python benchmarks/bench_alpha.py --old DIR    # and another checkout, side by side
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import add_data_argument, photos  # noqa: E402


def measure(data: str) -> dict[int, tuple[float, float, float, float]]:
    import jax
    from PIL import Image

    import jaxquant

    names = photos(data)[::10][:10]
    rows: dict[int, list[tuple[float, float, float, float]]] = {16: [], 64: []}
    for n in names:
        im = np.asarray(Image.open(n).convert("RGB"))
        h, w = im.shape[:2]
        yy, xx = np.mgrid[:h, :w]
        r = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2))
        a = np.clip((1.0 - r) / 0.1 * 255, 0, 255).round().astype(np.uint8)
        rgba = np.dstack([im, a])
        rgba[a == 0, :3] = 0
        for k in rows:
            res = jaxquant.quantize(jax.random.key(0), rgba, k)
            out, pal = np.asarray(res.image), np.asarray(res.palette)
            opaque, clear = a == 255, a == 0
            rows[k].append(
                (
                    float(np.mean(out[opaque, 3] != 255)),
                    float(np.mean(out[clear, 3] != 0)),
                    float(((pal[:, 3] > 0) & (pal[:, 3] < 255)).sum()),
                    float(np.mean((out[opaque, :3].astype(float) - rgba[opaque, :3]) ** 2)),
                )
            )
    return {
        k: (
            float(np.mean([x[0] for x in v])),
            float(np.mean([x[1] for x in v])),
            float(np.mean([x[2] for x in v])),
            float(np.median([x[3] for x in v])),
        )
        for k, v in rows.items()
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", help="another checkout of jaxquant to measure beside this one")
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    add_data_argument(p)
    args = p.parse_args()
    if args.json:
        print(repr(measure(args.data)))
        return
    photos(args.data)  # one line, before any subprocess, when the data is missing
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runs = [("this checkout", here)] + ([("--old", args.old)] if args.old else [])
    results = {}
    for label, root in runs:
        env = dict(os.environ, PYTHONPATH=root)
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--json", "--data", args.data],
            env=env, cwd=root, capture_output=True, text=True, check=True,
        )  # fmt: skip
        results[label] = eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our repr
    print("| checkout | k | opaque pixels not 255 | transparent not 0 | translucent entries "
          "| MSE of opaque pixels (median) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for label, res in results.items():
        for k, (op, cl, entries, mse) in res.items():
            print(f"| {label} | {k} | {op:.1%} | {cl:.1%} | {entries:.1f} of {k} | {mse:.1f} |")


if __name__ == "__main__":
    main()
