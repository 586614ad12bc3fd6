"""Two checkouts of jaxquant side by side: the same results, and their times, call by call.

For a refactor that must change nothing (0.1 -> 0.2's pipeline redesign), this runs
``quantize(key(0), image, k)`` of each checkout in its own warm process, alternating
between them call by call (so drifting load hits both alike), on CQ100 photos at each K:
it counts the images whose MSE is bit-for-bit equal, and reports the first call
(compile included) and the median warm call of each.

    git worktree add /tmp/jaxquant-old <commit>
    python benchmarks/compare_revisions.py --old /tmp/jaxquant-old --images 100
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import add_data_argument, photos  # noqa: E402

_WORKER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import jax, numpy as np
import jaxquant
from PIL import Image
images = {}
for line in sys.stdin:
    path, k = line.rsplit(" ", 1)
    if path not in images:
        images[path] = np.asarray(Image.open(path).convert("RGB"))
    start = time.perf_counter()
    result = jaxquant.quantize(jax.random.key(0), images[path], int(k))
    np.asarray(result.image)
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, "mse": float(result.mse)}), flush=True)
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="root of the other checkout")
    p.add_argument("--new", default=os.path.join(os.path.dirname(__file__), ".."))
    add_data_argument(p)
    p.add_argument("--images", type=int, default=20, help="every n-th image, n in all")
    p.add_argument("--ks", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    files = [f.name for f in photos(args.data)]
    files = files[:: max(1, len(files) // args.images)][: args.images]
    roots = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
    workers = {
        name: subprocess.Popen(
            [sys.executable, "-c", _WORKER, root],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, root in roots.items()
    }

    def call(name: str, path: str, k: int) -> dict:
        worker = workers[name]
        worker.stdin.write(f"{path} {k}\n")
        worker.stdin.flush()
        return json.loads(worker.stdout.readline())

    print(f"old {roots['old']}\nnew {roots['new']}\n{len(files)} images of {args.data}")
    for k in args.ks:
        first = {
            name: call(name, os.path.join(args.data, files[0]), k)["seconds"] for name in roots
        }
        times: dict[str, list[float]] = {name: [] for name in roots}
        equal = 0
        for f in files:
            path = os.path.join(args.data, f)
            for rep in range(args.repeats):
                order = ("old", "new") if rep % 2 == 0 else ("new", "old")
                results = {name: call(name, path, k) for name in order}
                for name in order:
                    times[name].append(results[name]["seconds"])
            equal += results["old"]["mse"] == results["new"]["mse"]
        old, new = (statistics.median(times[n]) for n in ("old", "new"))
        print(
            f"K={k}: identical MSE on {equal}/{len(files)} images; first call "
            f"{first['old']:.2f} s -> {first['new']:.2f} s; warm median {1e3 * old:.1f} -> "
            f"{1e3 * new:.1f} ms ({new / old:.3f}x)",
            flush=True,
        )
    for worker in workers.values():
        worker.stdin.close()
        worker.wait()


if __name__ == "__main__":
    main()
