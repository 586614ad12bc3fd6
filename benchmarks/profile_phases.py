"""Where the time of one ``quantize`` goes, phase by phase (issue 18).

Each phase of ``quantize(key, image, k)`` with its defaults runs as a program of its own,
on the same inputs the whole call would give it, and is timed warm (compiled first, then
the median of ``--repeats`` runs, the phases interleaved run by run so that drifting load
hits them alike):

- host preparation: validation, the few-colours probe, the colour set (padded to its
  size bucket) and its transfer to the device;
- seeding: greedy k-means++ on the seeding sample;
- SQ steps: the minibatch steps alone (``num_lloyd_steps=0``);
- Lloyd polish: the one Lloyd step against the rounded palette (``num_steps=0``);
- final assignment: the exact nearest colour of every pixel (``jaxquant.assign``);
- result: the host side of ``remap`` (gather the image, copy the results back).

The phases add up to about the whole call, which is timed too. Photos: CQ100 (768x512)
and one 12 MP image made by upscaling a CQ100 photo 4.5x with Lanczos (no 12 MP
photograph ships with the data; an upscaled photo has fewer distinct colours per pixel
than a real one, which flatters nothing here since no phase deduplicates it).

    python benchmarks/profile_phases.py --out docs/benchmarks-profile.md
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import statistics as st
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

import jaxquant
from jaxquant import kernels, seeding
from jaxquant._fit import FitOptions
from jaxquant._quantize import prepare
from jaxquant.problem import ColourSet, draw_rows

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import add_data_argument, photos  # noqa: E402
from bench_quality import machine, write_report  # noqa: E402

PHASES = ("host", "seeding", "sq", "lloyd", "assign", "result")
NAMES = {
    "host": "host preparation",
    "seeding": "seeding (k-means++)",
    "sq": "SQ steps",
    "lloyd": "Lloyd polish",
    "assign": "final assignment",
    "result": "result to host",
}


@functools.partial(jax.jit, static_argnames=("k", "size"))
def _seed(key, problem: ColourSet, *, k: int, size: int):
    # As fit_problem draws the seeding sample: uniformly, without a CDF, for a photo.
    rows = draw_rows(key, problem.sampling_cdf(), (size,))
    return seeding.kmeans_plusplus(key, problem.coordinates(rows), k)


@jax.jit
def _solve(key, problem: ColourSet, palette, solver):
    return solver(key, problem, palette).palette


@functools.partial(jax.jit, static_argnames=("layout",))
def _assign(pixels, palette, layout=None):
    return kernels.assign(pixels, palette, layout=layout)


def phase_calls(image: np.ndarray, k: int):
    """The phases of ``quantize(key, image, k)`` as zero-argument calls, and the whole."""
    key = jax.random.key(0)
    opts = FitOptions.make(k)
    sq = opts.solver
    prep = prepare(image, k, opts)
    problem = prep.problem
    palette0 = _seed(key, problem, k=k, size=opts.seed_sample_size)
    steps_only = dataclasses.replace(sq, num_lloyd_steps=0)
    polish_only = dataclasses.replace(sq, num_steps=0)
    fitted = _solve(key, problem, palette0, sq)
    rounded = jnp.round(fitted * 255).astype(jnp.uint8)
    pixels = jnp.asarray(image.reshape(-1, image.shape[-1]))
    labels = _assign(pixels, rounded)[0]
    pal_host = np.asarray(rounded)

    def host():
        p = prepare(image, k, opts)
        return jax.device_put(p.problem.colours)

    def result():
        idx = np.asarray(labels)
        return pal_host[idx].reshape(image.shape)

    calls = {
        "host": host,
        "seeding": lambda: _seed(key, problem, k=k, size=opts.seed_sample_size),
        "sq": lambda: _solve(key, problem, palette0, steps_only),
        "lloyd": lambda: _solve(key, problem, fitted, polish_only),
        "assign": lambda: _assign(pixels, rounded),
        "result": result,
    }
    whole = lambda: np.asarray(jaxquant.quantize(key, image, k).image)  # noqa: E731
    return calls, whole


def measure(image: np.ndarray, k: int, repeats: int) -> dict[str, float]:
    calls, whole = phase_calls(image, k)
    calls = {**calls, "whole": whole}
    for fn in calls.values():  # compile
        jax.block_until_ready(fn())
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            t = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - t)
    return {name: st.median(v) for name, v in times.items()}


def render(rows: list[tuple[str, int, dict[str, float]]], header: str) -> str:
    lines = [
        header,
        "",
        "Milliseconds, medians; the share of the sum of the phases in brackets.",
        "",
        "| image | K | "
        + " | ".join(NAMES[p] for p in PHASES)
        + " | sum of phases | whole `quantize` |",
        "|---|---|" + "---|" * (len(PHASES) + 2),
    ]
    for label, k, t in rows:
        total = sum(t[p] for p in PHASES)
        cells = [f"{1e3 * t[p]:.1f} ({100 * t[p] / total:.0f}%)" for p in PHASES]
        lines.append(
            f"| {label} | {k} | " + " | ".join(cells) + f" | {1e3 * total:.1f} | "
            f"{1e3 * t['whole']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(p)
    p.add_argument("--images", type=int, default=3, help="CQ100 photos (median over them)")
    p.add_argument("--ks", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--large-ks", type=int, nargs="*", default=[256], help="K on the 12 MP image")
    p.add_argument("--threads", type=int, default=1, help="compute threads (0: one per core)")
    p.add_argument("--out")
    args = p.parse_args(argv)
    jaxquant.set_cpu_threads(args.threads or None)
    files = photos(args.data)
    picks = files[:: max(1, len(files) // args.images)][: args.images]
    images = [np.asarray(Image.open(f).convert("RGB")) for f in picks]
    rows = []
    for k in args.ks:
        per = [measure(im, k, args.repeats) for im in images]
        merged = {name: st.median(t[name] for t in per) for name in per[0]}
        rows.append((f"768x512 (median of {len(images)})", k, merged))
        print(rows[-1], flush=True)
    if args.large_ks:
        with Image.open(picks[0]) as im:
            big = np.asarray(im.convert("RGB").resize((4000, 3000), Image.Resampling.LANCZOS))
        for k in args.large_ks:
            rows.append(("4000x3000 (12 MP)", k, measure(big, k, max(3, args.repeats // 2))))
            print(rows[-1], flush=True)
    names = ", ".join(f.stem for f in picks)
    threads = "one per core" if args.threads == 0 else str(args.threads)
    text = render(rows, f"{machine()}; {threads} compute thread(s); CQ100 photos: {names}.")
    print(text)
    if args.out:
        write_report(args.out, "# Where the time goes", "profile_phases.py", argv, text)


if __name__ == "__main__":
    main()
