"""Compare ``quantize`` configurations on CQ100, interleaved, against scikit-learn.

Each configuration is a dict of ``quantize`` keyword arguments. For every image, all
configurations run back to back (best of ``--repeats`` warm timings each), so a change in
the machine's load hits them alike; MSE is relative to scikit-learn ``KMeans(n_init=1)``
on the same image (computed in this process, or read from ``--sklearn-cache``, a JSON file
this script writes and reuses: KMeans at K=256 takes 10-30 s per image).

    python benchmarks/sweep_defaults.py -k 256 --limit 40 \\
        --configs "{}" "{'num_steps': 750}" "{'num_lloyd_steps': 0}"

Prints the median, mean and worst ratio and the median time of every configuration.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics as st
import sys
import time

import jax
import numpy as np
from PIL import Image

import jaxquant

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import add_data_argument, photos  # noqa: E402


def sklearn_mse(image: np.ndarray, k: int, seed: int) -> float:
    from sklearn.cluster import KMeans

    pixels = image.reshape(-1, 3).astype(np.float32)
    km = KMeans(k, n_init=1, random_state=seed).fit(pixels)
    palette = np.clip(np.round(km.cluster_centers_), 0, 255)
    return float(np.mean((palette[km.labels_].reshape(image.shape) - image) ** 2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(p)
    p.add_argument("-k", type=int, default=256)
    p.add_argument("--limit", type=int, default=40, help="first N images")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--configs", nargs="+", default=["{}"], help="quantize kwargs, as dicts")
    p.add_argument("--sklearn-cache", default=None, help="JSON file of scikit-learn MSEs")
    args = p.parse_args()
    configs = [ast.literal_eval(c) for c in args.configs]
    cache = {}
    if args.sklearn_cache and os.path.exists(args.sklearn_cache):
        with open(args.sklearn_cache) as f:
            cache = json.load(f)
    files = [f.name for f in photos(args.data, args.limit)]
    ratios = [[] for _ in configs]
    times = [[] for _ in configs]
    for i, name in enumerate(files):
        image = np.asarray(Image.open(os.path.join(args.data, name)).convert("RGB"))
        entry = f"{name}:{args.k}:{i}"
        if entry not in cache:
            cache[entry] = sklearn_mse(image, args.k, seed=i)
            if args.sklearn_cache:
                with open(args.sklearn_cache, "w") as f:
                    json.dump(cache, f)
        key = jax.random.key(i)
        for options in configs:  # compile (once per configuration and bucket)
            np.asarray(jaxquant.quantize(key, image, args.k, **options).image)
        for j, options in enumerate(configs):
            best = float("inf")
            for _ in range(args.repeats):
                t = time.perf_counter()
                out = np.asarray(jaxquant.quantize(key, image, args.k, **options).image)
                best = min(best, time.perf_counter() - t)
            times[j].append(best)
            ratios[j].append(float(np.mean((out.astype(np.float64) - image) ** 2)) / cache[entry])
    print(f"K={args.k}, {len(files)} CQ100 images, MSE / scikit-learn KMeans(n_init=1):")
    for options, r, t in zip(configs, ratios, times, strict=True):
        print(
            f"{options!s:60} median {st.median(r):.4f} mean {st.mean(r):.4f} "
            f"max {max(r):.3f} time {st.median(t):.3f} s"
        )


if __name__ == "__main__":
    main()
