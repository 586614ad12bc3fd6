"""Vectors of many dimensions: jaxquant's SQ fit against faiss, scikit-learn KMeans and
MiniBatchKMeans, side by side in one run: inertia (sum of squared distances of every
vector to its nearest centre, computed the same way for all) and time.

The vectors are real: ``--n`` 8x8 luma patches (64 dimensions, values in [0, 1]) cut at
random from the first ``--photos`` CQ100 photographs (``--data``). For each K and seed the
methods run interleaved; the table gives medians over seeds of the time and of each
method's inertia relative to scikit-learn ``KMeans(n_init=1)``'s. jaxquant's first call
(tracing and compiling) is timed on its own and excluded from its warm time; the others
have no compile step. Every library uses both cores.

    python benchmarks/bench_vectors.py --k 64 256 --seeds 3 --out docs/benchmarks-vectors.md

Needs ``pip install faiss-cpu scikit-learn`` besides jaxquant.
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


def patches(files, n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` random ``size`` x ``size`` luma patches, as float32 rows in [0, 1]."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    per = -(-n // len(files))
    rows = []
    for f in files:
        with Image.open(f) as im:
            luma = np.asarray(im.convert("L"), np.float32) / 255.0
        h, w = luma.shape
        ys = rng.integers(0, h - size + 1, per)
        xs = rng.integers(0, w - size + 1, per)
        rows += [luma[y : y + size, x : x + size].reshape(-1) for y, x in zip(ys, xs, strict=True)]
    return np.stack(rows[:n])


def inertia(x: np.ndarray, centres: np.ndarray) -> float:
    """Sum over rows of the squared distance to the nearest centre (float64, chunked)."""
    c = centres.astype(np.float64)
    cc = (c * c).sum(1)
    total = 0.0
    for i in range(0, len(x), 8192):
        xi = x[i : i + 8192].astype(np.float64)
        d = (xi * xi).sum(1)[:, None] - 2.0 * xi @ c.T + cc[None, :]
        total += float(np.maximum(d.min(1), 0.0).sum())
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(ap)
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--n", type=int, default=100_000, help="vectors")
    ap.add_argument("--patch", type=int, default=8, help="patch side: patch^2 dimensions")
    ap.add_argument("--k", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    files = photos(args.data)[: args.photos]
    try:
        import faiss
        import sklearn
        from sklearn.cluster import KMeans, MiniBatchKMeans
    except ImportError as e:
        raise SystemExit(
            f"needs faiss and scikit-learn: pip install faiss-cpu scikit-learn ({e})"
        ) from None
    import jax

    import jaxquant
    from jaxquant.problem import ColourSet

    x = patches(files, args.n, args.patch)
    d = x.shape[1]
    problem = ColourSet.from_vectors(x)

    def run_jaxquant(k, seed):
        fit = jaxquant.fit_palette(jax.random.key(seed), problem, k)
        return np.asarray(jax.block_until_ready(fit.palette))

    def run_faiss(k, seed):
        km = faiss.Kmeans(d, k, niter=25, seed=seed + 1, verbose=False)
        km.train(x)
        return km.centroids

    def run_kmeans(k, seed):
        return KMeans(k, n_init=1, random_state=seed).fit(x).cluster_centers_

    def run_minibatch(k, seed):
        return MiniBatchKMeans(k, n_init=1, random_state=seed).fit(x).cluster_centers_

    methods = {
        "jaxquant SQ (fit_palette)": run_jaxquant,
        "faiss Kmeans (niter=25)": run_faiss,
        "scikit-learn KMeans(n_init=1)": run_kmeans,
        "scikit-learn MiniBatchKMeans(n_init=1)": run_minibatch,
    }
    rows = []
    for k in args.k:
        t = time.perf_counter()
        run_jaxquant(k, 10_000)  # trace and compile (this K's program), untimed below
        compile_s = time.perf_counter() - t
        times: dict[str, list[float]] = {m: [] for m in methods}
        values: dict[str, list[float]] = {m: [] for m in methods}
        for seed in range(args.seeds):
            order = list(methods)
            order = order[seed % len(order) :] + order[: seed % len(order)]  # interleave
            for name in order:
                t = time.perf_counter()
                centres = methods[name](k, seed)
                times[name].append(time.perf_counter() - t)
                values[name].append(inertia(x, np.asarray(centres)))
        ref = values["scikit-learn KMeans(n_init=1)"]
        for name in methods:
            ratio = st.median(v / r for v, r in zip(values[name], ref, strict=True))
            extra = f" (first call {compile_s:.2f} s)" if name.startswith("jaxquant") else ""
            rows.append(
                f"| {k} | {name} | {ratio:.4f} | {st.median(values[name]) / len(x):.5f} | "
                f"{st.median(times[name]):.3f}{extra} |"
            )
        print("\n".join(rows[-len(methods) :]), flush=True)

    header = (
        f"{machine()}; faiss {faiss.__version__}, scikit-learn {sklearn.__version__}. "
        f"{len(x):,} vectors of {d} dimensions: {args.patch}x"
        f"{args.patch} luma patches from the first {len(files)} CQ100 photos; medians over "
        f"{args.seeds} seeds, methods interleaved."
    )
    table = [
        "| K | method | inertia / KMeans | mean sq. distance | time s |",
        "|---|---|---|---|---|",
        *rows,
    ]
    text = "\n".join([header, "", *table])
    print(text)
    if args.out:
        title = "# Vectors of many dimensions: SQ against faiss and scikit-learn"
        write_report(args.out, title, "bench_vectors.py", argv, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
