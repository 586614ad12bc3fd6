"""One palette for many photos: jaxquant's dataset fit against scikit-learn, side by side.

On the first ``--images`` CQ100 photos (in memory, as arrays), a palette of ``K`` colours
for all of them together is fitted by

- ``jaxquant.fit_palette(key, images, K)``: the streamed fit (a weighted reservoir of
  2^18 pixels, SQ on it, then two exact Lloyd passes over every pixel);
- scikit-learn ``MiniBatchKMeans(K, batch_size=--mbk-batch, max_iter=--mbk-epochs)``
  (k-means++, early stopping) on all their pixels together. Its defaults (batch 1024,
  up to 100 epochs) did not finish one fit of 50 photos in 35 minutes here: each step
  costs about 22 ms whatever K (1,920 steps in 43 s at K = 64 and at K = 256, on 5
  photos), mostly ``threadpoolctl`` limiting the BLAS threads on every step (3.3 ms a
  call, measured), so larger batches are its fast setting;
- scikit-learn ``KMeans(K, n_init=1)`` on a uniform subsample of ``--kmeans-sample``
  pixels (all the pixels do not fit its time budget);

and every palette is scored the same way: each photo is remapped to it (exact nearest
colour, :func:`jaxquant.remap`), and the MSE (0..255 scale, per channel) is averaged over
the photos. Fit times are wall clock, medians of ``--repeats`` interleaved runs (the
first jaxquant run in a process includes compiling: reported on its own).

Usage::

    python benchmarks/bench_dataset.py --images 50 --k 256 --repeats 3 \
        --out docs/benchmarks-dataset.md
"""

from __future__ import annotations

import argparse
import statistics as st
import sys
import time
from pathlib import Path

import jax
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import add_data_argument, photos  # noqa: E402
from bench_quality import machine  # noqa: E402

import jaxquant  # noqa: E402


def score(images, palette) -> float:
    palette = np.asarray(palette)
    return float(np.mean([float(jaxquant.remap(im, palette).mse) for im in images]))


def fit_jaxquant(images, k, seed):
    fit = jaxquant.fit_palette(jax.random.key(seed), images, k)
    return np.asarray(fit.palette)


def fit_minibatch(pixels, k, seed, batch, epochs):
    from sklearn.cluster import MiniBatchKMeans

    km = MiniBatchKMeans(
        n_clusters=k, random_state=seed, batch_size=batch, max_iter=epochs, compute_labels=False
    ).fit(pixels)
    return np.clip(np.round(km.cluster_centers_ * 255), 0, 255).astype(np.uint8)


def fit_kmeans_sample(pixels, k, seed, size):
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    rows = pixels[rng.choice(len(pixels), size=min(size, len(pixels)), replace=False)]
    km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(rows)
    return np.clip(np.round(km.cluster_centers_ * 255), 0, 255).astype(np.uint8)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(ap)
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kmeans-sample", type=int, default=1 << 18)
    ap.add_argument("--mbk-batch", type=int, default=16384)
    ap.add_argument("--mbk-epochs", type=int, default=5)
    ap.add_argument("--no-kmeans", action="store_true", help="skip the KMeans row")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    files = photos(args.data)[: args.images]
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    pixels = np.concatenate([im.reshape(-1, 3) for im in images]).astype(np.float32) / 255
    k = args.k
    t = time.perf_counter()
    first = fit_jaxquant(images, k, 100)
    cold = time.perf_counter() - t
    del first
    methods = {
        "jaxquant fit_palette (streamed)": lambda s: fit_jaxquant(images, k, s),
        "scikit-learn MiniBatchKMeans, all pixels": lambda s: fit_minibatch(
            pixels, k, s, args.mbk_batch, args.mbk_epochs
        ),
    }
    if not args.no_kmeans:
        methods[f"scikit-learn KMeans(n_init=1), {args.kmeans_sample:,} pixels"] = lambda s: (
            fit_kmeans_sample(pixels, k, s, args.kmeans_sample)
        )
    times: dict[str, list[float]] = {m: [] for m in methods}
    mses: dict[str, list[float]] = {m: [] for m in methods}
    for r in range(args.repeats):
        for name, run in methods.items():
            t = time.perf_counter()
            palette = run(r)
            times[name].append(time.perf_counter() - t)
            mses[name].append(score(images, palette))
            print(
                f"repeat {r} {name}: {times[name][-1]:.1f} s, MSE {mses[name][-1]:.2f}", flush=True
            )
        report(args, methods, times, mses, cold, len(images), len(pixels), r + 1)
    return 0


def report(args, methods, times, mses, cold, num_images, num_pixels, runs) -> None:
    """Write the table of the runs so far (a long run can be stopped between repeats)."""
    k = args.k
    ref = "scikit-learn MiniBatchKMeans, all pixels"
    ref_t, ref_m = st.median(times[ref]), st.median(mses[ref])
    lines = [
        "# One palette for many photos",
        "",
        f"Written by `python benchmarks/bench_dataset.py --images {args.images} --k {k} "
        f"--repeats {args.repeats} --mbk-batch {args.mbk_batch} --mbk-epochs "
        f"{args.mbk_epochs}` ({runs} of {args.repeats} repeats done).",
        "",
        f"{machine()}. Data: the first {num_images} CQ100 photos "
        f"({num_pixels:,} pixels), one palette of K={k} for all of them. Scored by "
        "remapping every photo to the palette (exact nearest colour) and averaging the "
        f"per-photo MSE (0..255 scale, per channel); medians of {runs} "
        "interleaved runs with different seeds. MiniBatchKMeans: batch "
        f"{args.mbk_batch}, at most {args.mbk_epochs} epochs (its default batch of 1024 "
        "costs about 22 ms a step here, see the script).",
        "",
        "| Method | fit s | MSE | time vs MiniBatchKMeans | MSE vs MiniBatchKMeans |",
        "|---|---|---|---|---|",
    ]
    for name in methods:
        t_med, m_med = st.median(times[name]), st.median(mses[name])
        lines.append(
            f"| {name} | {t_med:.1f} | {m_med:.2f} | {t_med / ref_t:.3f}x | {m_med / ref_m:.4f}x |"
        )
    lines += [
        "",
        f"jaxquant's first run in the process, compiling its programs, took {cold:.1f} s.",
        "",
    ]
    text = "\n".join(lines)
    print(text, flush=True)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
