"""Tried and not adopted: ahead-of-time exported fit programs (``jax.export``).

A warm single-file run still traces and lowers the fit program to find it in the
persistent compilation cache. This script exports that program once (flattened to
arrays: the key's data, the colour set and the solver), then times, each in a fresh
process and interleaved, the first fit call of a process: through the deserialized
export (``Exported.call``) and through the ordinary jitted function, both with a warm
persistent cache. Serializing an export needs the ``flatbuffers`` package (not a
dependency of jaxquant): ``pip install flatbuffers``.

    python benchmarks/try_aot_export.py --repeats 5
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics as st
import subprocess
import sys
import tempfile
import time

import jax
from _data import add_data_argument, photos  # noqa: E402
from bench_quality import machine  # noqa: E402  (benchmarks/ on sys.path)
from jax import export

import jaxquant
from jaxquant import _fit
from jaxquant._quantize import prepare

K = 64


def _setup(data: str):
    files = photos(data)
    path = next((f for f in files if f.stem == "macaws"), files[0])  # macaws, as measured
    image = jaxquant.load_image(str(path))
    opts = _fit.FitOptions.make(K)
    problem = prepare(image, K, opts).problem
    solver = opts.solver.resolve(K)
    leaves, tree = jax.tree.flatten((jax.random.key_data(jax.random.key(0)), problem, solver))
    return opts, leaves, tree


def child(mode: str, path: str, data: str) -> None:
    opts, leaves, tree = _setup(data)
    fit = jax.jit(
        functools.partial(
            _fit.fit_problem, k=K, init=opts.init, seed_sample_size=opts.seed_sample_size
        )
    )

    def flat(*leaves):
        data, problem, solver = jax.tree.unflatten(tree, leaves)
        return tuple(jax.tree.leaves(fit(jax.random.wrap_key_data(data), problem, solver)))

    if mode == "export":
        with open(path, "wb") as f:
            f.write(export.export(jax.jit(flat))(*leaves).serialize())
        jax.block_until_ready(jax.jit(flat)(*leaves))  # fill the persistent cache
        return
    t = time.perf_counter()
    if mode == "aot":
        with open(path, "rb") as f:
            out = export.deserialize(bytearray(f.read())).call(*leaves)
    else:
        out = jax.jit(flat)(*leaves)
    jax.block_until_ready(out)
    print(f"{time.perf_counter() - t:.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    add_data_argument(p)
    args = p.parse_args()
    if args.child:
        child(*args.child, args.data)
        return
    photos(args.data)  # one line, before any subprocess, when the data is missing
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "JAX_COMPILATION_CACHE_DIR": os.path.join(tmp, "cache"),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
        }
        path = os.path.join(tmp, "fit.bin")
        run = [sys.executable, __file__, "--data", args.data, "--child"]
        subprocess.run([*run, "export", path], check=True, env=env)
        times: dict[str, list[float]] = {"aot": [], "jit": []}
        for _ in range(args.repeats):
            for mode in times:
                out = subprocess.run([*run, mode, path], check=True, env=env, capture_output=True)
                times[mode].append(float(out.stdout.decode().split()[-1]))
    print(f"{machine()}; first fit call of a process, K={K}, warm persistent cache")
    for mode, v in times.items():
        print(f"{mode}: median {st.median(v):.3f} s (min {min(v):.3f}, {len(v)} runs)")
    print(f"aot / jit: {st.median(times['aot']) / st.median(times['jit']):.2f}")


if __name__ == "__main__":
    main()
