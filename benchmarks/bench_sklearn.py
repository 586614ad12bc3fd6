"""The scikit-learn estimator, ``jaxquant.sklearn.StochasticQuantization``, against
``KMeans(n_init=1)`` and ``MiniBatchKMeans(n_init=1)`` on data that ships with a package
(scikit-learn's digits: 1797 vectors of 64 pixels, values 0..16) and on colour patches
of CQ100 photographs (4x4 RGB: 48 dimensions, 0..255), side by side in one run.

For each dataset, K and seed the three estimators run interleaved, with the same
``random_state``; the table gives medians over seeds of ``inertia_`` relative to KMeans's
and of the ``fit`` time. StochasticQuantization's first fit of each shape (tracing and
compiling) is timed separately and left out of its time.

    python benchmarks/bench_sklearn.py --seeds 3 --out docs/benchmarks-sklearn.md
"""

from __future__ import annotations

import argparse
import statistics as st
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import add_data_argument, photos  # noqa: E402
from bench_quality import machine, write_report  # noqa: E402


def colour_patches(files, n: int, size: int = 4, seed: int = 0) -> np.ndarray:
    """``n`` random ``size`` x ``size`` RGB patches as float64 rows in 0..255."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    per = -(-n // len(files))
    rows = []
    for f in files:
        with Image.open(f) as im:
            rgb = np.asarray(im.convert("RGB"), np.float64)
        h, w, _ = rgb.shape
        ys, xs = rng.integers(0, h - size + 1, per), rng.integers(0, w - size + 1, per)
        rows += [rgb[y : y + size, x : x + size].reshape(-1) for y, x in zip(ys, xs, strict=True)]
    return np.stack(rows[:n])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(ap)
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--patches", type=int, default=50_000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    files = photos(args.data)[: args.photos]
    import sklearn
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.datasets import load_digits

    from jaxquant.sklearn import StochasticQuantization

    datasets = {
        "digits (1797 x 64)": (load_digits().data, [10, 64]),
        f"CQ100 4x4 RGB patches ({args.patches} x 48)": (
            colour_patches(files, args.patches),
            [16, 64, 256],
        ),
    }
    estimators = {
        "StochasticQuantization": lambda k, s: StochasticQuantization(k, random_state=s),
        "KMeans(n_init=1)": lambda k, s: KMeans(k, n_init=1, random_state=s),
        "MiniBatchKMeans(n_init=1)": lambda k, s: MiniBatchKMeans(k, n_init=1, random_state=s),
    }
    rows = []
    for label, (x, ks) in datasets.items():
        for k in ks:
            t = time.perf_counter()
            StochasticQuantization(k, random_state=10_000).fit(x)
            first = time.perf_counter() - t
            times: dict[str, list[float]] = {e: [] for e in estimators}
            inertia: dict[str, list[float]] = {e: [] for e in estimators}
            for seed in range(args.seeds):
                order = list(estimators)
                order = order[seed % len(order) :] + order[: seed % len(order)]
                for name in order:
                    est = estimators[name](k, seed)
                    t = time.perf_counter()
                    est.fit(x)
                    times[name].append(time.perf_counter() - t)
                    inertia[name].append(float(est.inertia_))
            ref = inertia["KMeans(n_init=1)"]
            for name in estimators:
                ratio = st.median(a / b for a, b in zip(inertia[name], ref, strict=True))
                note = f" (first fit {first:.2f} s)" if name == "StochasticQuantization" else ""
                rows.append(
                    f"| {label} | {k} | {name} | {ratio:.4f} | {st.median(times[name]):.3f}{note} |"
                )
            print("\n".join(rows[-len(estimators) :]), flush=True)
    text = "\n".join(
        [
            f"{machine()}; scikit-learn {sklearn.__version__}. Medians over {args.seeds} "
            "seeds (the same `random_state` for each estimator), estimators interleaved.",
            "",
            "| data | K | estimator | inertia / KMeans | fit s |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    print(text)
    if args.out:
        title = "# The scikit-learn estimator against KMeans and MiniBatchKMeans"
        write_report(args.out, title, "bench_sklearn.py", argv, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
