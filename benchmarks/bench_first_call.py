"""The first ``quantize`` call of a fresh Python process, with and without
``jaxquant.enable_compilation_cache()``.

Each row is a fresh ``python -c`` process that imports jaxquant, optionally enables the
cache (in a temporary directory), and times its first ``quantize(key, image, K)`` on the
built-in sample photo (768x512) and then a second call on another key. "cold" runs
start from an empty cache directory, "warm" ones from the directory a previous process
filled. Interleaved, ``--repeats`` times; medians.

    python benchmarks/bench_first_call.py --repeats 3 --out docs/benchmarks-first-call.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics as st
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import machine, write_report  # noqa: E402

CHILD = """
import json, sys, time
t0 = time.perf_counter()
import jax, jaxquant
from jaxquant import io
from jaxquant.cli._common import sample_path
cache = sys.argv[1]
if cache:
    jaxquant.enable_compilation_cache(cache)
image = io.load_image(sample_path())
t1 = time.perf_counter()
r = jaxquant.quantize(jax.random.key(0), image, int(sys.argv[2]))
jax.block_until_ready(r.image)
t2 = time.perf_counter()
r = jaxquant.quantize(jax.random.key(1), image, int(sys.argv[2]))
jax.block_until_ready(r.image)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first": t2 - t1, "second": t3 - t2}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Reads no photographs and takes no data folder: it uses the packaged sample photo.",
    )
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAXQUANT_")}
    results: dict[str, list[dict]] = {"off": [], "cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:

        def child(cache: str) -> dict:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, cache, str(args.k)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            return json.loads(out.stdout.strip().splitlines()[-1])

        for r in range(args.repeats):
            cache = os.path.join(tmp, f"cache{r}")
            results["off"].append(child(""))
            results["cold"].append(child(cache))
            results["warm"].append(child(cache))
            shutil.rmtree(cache, ignore_errors=True)
    labels = {
        "off": "cache off (the default)",
        "cold": "`enable_compilation_cache()`, empty directory",
        "warm": "`enable_compilation_cache()`, filled by an earlier process",
    }
    rows = [
        f"| {labels[name]} | {st.median(x['import'] for x in runs):.2f} | "
        f"{st.median(x['first'] for x in runs):.2f} | {st.median(x['second'] for x in runs):.3f} |"
        for name, runs in results.items()
    ]
    text = "\n".join(
        [
            f"{machine()}. The sample photo (768x512), K={args.k}; medians of "
            f"{args.repeats} fresh processes each, interleaved.",
            "",
            "| process | import s | first quantize s | second quantize s |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    print(text)
    if args.out:
        title = "# The first call of a fresh Python process, with and without the cache"
        write_report(args.out, title, "bench_first_call.py", argv, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
