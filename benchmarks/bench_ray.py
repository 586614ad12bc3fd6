"""``compress --engine ray`` against local folder mode, side by side: throughput, the
driver's peak memory, and Ray's start-up on its own.

Folders of ``--sizes`` CQ100 photos (repeated under new names past 100), K = ``--k``.
Each command is a fresh process (warm compilation cache: one untimed run of each first),
interleaved, ``--repeats`` times; medians. Rows:

- local folder mode: ``jaxquant compress DIR --out-dir OUT -k K``;
- Ray: the same with ``--engine ray`` (a local Ray instance, ``num_cpus`` = the machine's
  cores, ``--ray-actors`` 1 and 2 by default), which includes starting Ray;
- Ray's start-up alone: ``ray.init(); ray.shutdown()`` in a fresh process.

Peak memory is the driver process's maximum resident set (``os.wait4``'s rusage;
Ray's own processes are not counted: they are the workers). Throughput excludes
nothing: the wall time of the whole command.

    python benchmarks/bench_ray.py --sizes 50 200 --repeats 3 --out docs/benchmarks-ray.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics as st
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import add_data_argument, photos  # noqa: E402
from bench_quality import machine, write_report  # noqa: E402

RAY_START = "import ray; ray.init(include_dashboard=False, log_to_driver=False); ray.shutdown()"
# Ray and Ray Data's own fixed cost, with no jaxquant in it: start, a map_batches over 16
# rows on 2 actors that do nothing (each actor's process imports Ray Data), shut down.
RAY_DATA_NOOP = """
import ray
ray.init(include_dashboard=False, log_to_driver=False)
ray.data.DataContext.get_current().enable_progress_bars = False
class Noop:
    def __call__(self, batch):
        return batch
ds = ray.data.from_items([{"x": i} for i in range(16)], override_num_blocks=2)
list(ds.map_batches(Noop, batch_size=8, concurrency=2).iter_rows())
ray.shutdown()
"""


def timed(cmd: list[str], env) -> tuple[float, float]:
    """Wall seconds and the process's peak RSS in MB."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(ap)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--actors", type=int, nargs="+", default=[1, 2], help="--ray-actors of the Ray rows"
    )
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    files = photos(args.data)
    jq = shutil.which("jaxquant")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folders = {}
        for n in args.sizes:
            folders[n] = tmp / f"in{n}"
            folders[n].mkdir()
            for i in range(n):
                src = files[i % len(files)]
                os.symlink(src.resolve(), folders[n] / f"{i // len(files)}-{src.name}")
        env = {**os.environ, "JAXQUANT_CACHE_DIR": str(tmp / "cache")}

        def run(n, engine, actors=1):
            out = tmp / f"out-{engine}-{n}"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [jq, "compress", str(folders[n]), "--out-dir", str(out), "-k", str(args.k)]
            cmd += ["-q", "--no-progress", "--engine", engine]
            return cmd + (["--ray-actors", str(actors)] if engine == "ray" else [])

        rows = {
            "Ray start-up alone (`ray.init`, `ray.shutdown`)": lambda: [
                sys.executable,
                "-c",
                RAY_START,
            ],
            "Ray Data's fixed cost (start, 2 no-op actors, shut down)": lambda: [
                sys.executable,
                "-c",
                RAY_DATA_NOOP,
            ],
        }
        for n in args.sizes:
            rows[f"local folder mode, {n} photos"] = lambda n=n: run(n, "local")
            for a in args.actors:
                rows[f"`--engine ray --ray-actors {a}`, {n} photos"] = lambda n=n, a=a: run(
                    n, "ray", a
                )
        for make in rows.values():  # warm the compilation cache
            timed(make(), env)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
        for _ in range(args.repeats):
            for name, make in rows.items():
                results[name].append(timed(make(), env))
    lines = [
        f"{machine()}. CQ100 photos (768x512), K={args.k}; medians of {args.repeats} "
        "interleaved runs, a fresh process each, warm compilation cache; local Ray "
        f"(`ray.init()` on {os.cpu_count()} cores).",
        "",
        "| Command | wall s | photos/s | driver peak RSS MB |",
        "|---|---|---|---|",
    ]
    med = {}
    for name, values in results.items():
        wall = st.median(v[0] for v in values)
        rss = st.median(v[1] for v in values)
        med[name] = wall
        n = next((m for m in args.sizes if f" {m} photos" in name), None)
        rate = f"{n / wall:.2f}" if n else ""
        lines.append(f"| {name} | {wall:.2f} | {rate} | {rss:.0f} |")
    lo, hi = min(args.sizes), max(args.sizes)
    if lo != hi:
        lines += ["", f"Per extra photo (from {lo} to {hi} photos, difference of medians):", ""]
        engines = [("local folder mode", "local")] + [
            (f"`--engine ray --ray-actors {a}`", f"ray, {a} actor(s)") for a in args.actors
        ]
        for engine, label in engines:
            per = (med[f"{engine}, {hi} photos"] - med[f"{engine}, {lo} photos"]) / (hi - lo)
            ratio = med[f"{engine}, {hi} photos"] / med[f"local folder mode, {hi} photos"]
            lines.append(
                f"- {label}: {per:.3f} s per photo ({1 / per:.2f} photos/s); "
                f"{hi} photos in {ratio:.2f}x local folder mode's time"
            )
        fixed = med["Ray Data's fixed cost (start, 2 no-op actors, shut down)"]
        for a in args.actors:
            net = med[f"`--engine ray --ray-actors {a}`, {hi} photos"] - fixed
            lines.append(
                f"- ray, {a} actor(s), less Ray Data's own fixed cost ({fixed:.2f} s, reported "
                f"separately): {hi} photos in {net / med[f'local folder mode, {hi} photos']:.2f}x "
                "local folder mode's time"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_report(
            args.out, "# Ray Data engine against local folder mode", "bench_ray.py", argv, text
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
