"""Start-up and whole-command time: ``jaxquant`` against ``pngquant``, as a user runs them.

Every row is a fresh process timed from outside (wall clock, ``subprocess``), repeated
``--repeats`` times with the commands interleaved, reported as medians:

- ``jaxquant --help`` and ``python -c "import jaxquant"`` (no JAX loaded), and
  ``python -c "import jax"``, the floor under any command that computes;
- one photo, ``compress IN -k K -o OUT``: with an empty compilation cache
  (``--cache-dir ''``, every program compiled), with a warm cache (the default after a
  first run: JAX's persistent cache and jaxquant's program store), and with JAX's cache
  alone (``JAXQUANT_PROGRAM_STORE=0``: the programs are traced to be found), against
  ``pngquant K`` (its default dithering) and ``pngquant --nofs K`` on the same file, and
  jaxquant ``--dither fs``;
- folders of ``--folder`` photos (e.g. 20 and 100): ``compress DIR --out-dir OUT`` (warm
  cache) against ``pngquant --nofs`` run once per file (a shell loop) and once with every
  file (``pngquant --ext .png K FILES...`` into a copy); with two or more sizes, the
  time per extra photo (the difference of the largest and smallest folder's medians,
  divided by the difference in photos), which is folder mode's steady throughput once
  start-up is paid.

Usage::

    python benchmarks/bench_startup.py --repeats 5 --folder 20 100 --out docs/benchmarks-startup.md
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


def timed(cmd: list[str], env=None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(ap)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--folder", type=int, nargs="+", default=[20, 100], help="photos in the folder rows"
    )
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    files = photos(args.data)
    jq = shutil.which("jaxquant")
    pq = shutil.which("pngquant")
    if jq is None or pq is None:
        raise SystemExit("needs jaxquant and pngquant (pip install pngquant-cli) on PATH")
    photo = files[len(files) // 2]
    k = str(args.k)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        folders = {}
        for n in args.folder:
            folders[n] = tmp / f"in{n}"
            folders[n].mkdir()
            for f in files[:n]:
                shutil.copy(f, folders[n] / f.name)
        env = {**os.environ, "JAXQUANT_CACHE_DIR": str(cache)}
        out = str(tmp / "o.png")

        def jaxquant_one(*extra, cache_dir=None):
            flags = ["--cache-dir", cache_dir] if cache_dir is not None else []
            return [jq, "compress", str(photo), "-k", k, "-o", out, "--force", "-q", *flags, *extra]

        def folder_run(n):
            shutil.rmtree(tmp / "out", ignore_errors=True)
            return [jq, "compress", str(folders[n]), "-k", k, "--out-dir", str(tmp / "out"), "-q"]

        def pq_loop(n):
            each = f'"{pq}" --nofs --force --output "{tmp}/pq.png" {k} "$f"'
            script = f'for f in "{folders[n]}"/*.png; do {each}; done'
            return ["sh", "-c", script]

        def pq_all(n):
            shutil.rmtree(tmp / "pqall", ignore_errors=True)
            shutil.copytree(folders[n], tmp / "pqall")
            names = [str(p) for p in sorted((tmp / "pqall").glob("*.png"))]
            return [pq, "--nofs", "--force", "--ext", "-q.png", k, *names]

        one = str(photo)
        rows = {
            "`jaxquant --help`": lambda: [jq, "--help"],
            '`python -c "import jaxquant"`': lambda: [sys.executable, "-c", "import jaxquant"],
            f"jaxquant, one photo, K={k}, empty compile cache": lambda: jaxquant_one(cache_dir=""),
            '`python -c "import jax"` (the floor of any JAX command)': lambda: [
                sys.executable,
                "-c",
                "import jax",
            ],
            f"jaxquant, one photo, K={k}, warm cache": jaxquant_one,
            f"jaxquant, one photo, K={k}, warm JAX cache only (`JAXQUANT_PROGRAM_STORE=0`)": (
                lambda: jaxquant_one()
            ),
            "jaxquant `--dither fs`, one photo, warm cache": lambda: jaxquant_one("--dither", "fs"),
            f"pngquant {k} (dithered), one photo": lambda: [pq, "-f", "-o", out, k, one],
            f"pngquant --nofs {k}, one photo": lambda: [pq, "--nofs", "-f", "-o", out, k, one],
        }
        for n in args.folder:
            rows[f"jaxquant, folder of {n}, warm cache"] = lambda n=n: folder_run(n)
            rows[f"pngquant --nofs, folder of {n}, one process per file"] = lambda n=n: pq_loop(n)
            rows[f"pngquant --nofs, folder of {n}, one process"] = lambda n=n: pq_all(n)
        envs = {name: env for name in rows}
        for name in rows:
            if "JAXQUANT_PROGRAM_STORE=0" in name:
                envs[name] = {**env, "JAXQUANT_PROGRAM_STORE": "0"}
        # fill the persistent cache (each command once), then measure interleaved
        for name, make in rows.items():
            subprocess.run(
                make(), env=envs[name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        times: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(args.repeats):
            for name, make in rows.items():
                times[name].append(timed(make(), env=envs[name]))
    med = {name: st.median(v) for name, v in times.items()}
    lines = [
        f"{machine()}. Photo: CQ100 {photo.name} (768x512); medians of "
        f"{args.repeats} interleaved runs, wall clock of a fresh process each.",
        "",
        "| Command | Median s | Min s |",
        "|---|---|---|",
    ]
    for name, v in times.items():
        lines.append(f"| {name} | {med[name]:.2f} | {min(v):.2f} |")
    sizes = sorted(set(args.folder))
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        lines += [
            "",
            f"Time per extra photo, from the folders of {lo} and {hi} (difference of medians "
            f"/ {hi - lo}), and the steady throughput it gives:",
            "",
            "| Command | s per photo | photos per s |",
            "|---|---|---|",
        ]
        for label, fmt in (
            ("jaxquant folder mode", "jaxquant, folder of {}, warm cache"),
            (
                "pngquant --nofs, one process per file",
                "pngquant --nofs, folder of {}, one process per file",
            ),
            ("pngquant --nofs, one process", "pngquant --nofs, folder of {}, one process"),
        ):
            per = (med[fmt.format(hi)] - med[fmt.format(lo)]) / (hi - lo)
            lines.append(f"| {label} | {per:.3f} | {1 / per:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_report(args.out, "# Start-up and whole-command time", "bench_startup.py", argv, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
