"""Peak memory of ``jaxquant compress`` on large images, one fresh process per size.

For each size (megapixels) a photo-like PNG is written once (the packaged sample photo
scaled up with bilinear interpolation plus light noise, so it has many distinct colours,
like a real photo). Then, for each K, a child process reads it, quantizes it and writes
the indexed PNG, reporting its peak resident memory (``VmHWM``) after each stage:

- ``base``: Python, JAX and jaxquant imported;
- ``load``: ``load_image`` (the decoded ``(H, W, C)`` uint8 array);
- ``quantize``: ``quantize`` (prepare, fit, assignment, expansion to all pixels);
- ``save``: ``save_png``.

The peak is a high-water mark, so each stage's value includes the earlier ones. The
table reports bytes per pixel above ``base``: the O(N) host arrays (pixels, the
deduplication's sort and inverse index, the indices and quantized image) dominate; the
assignment itself is chunked and needs O(chunk · K).

    python benchmarks/bench_memory.py --sizes 1 4 16 50 --ks 16 256 --out /tmp/mem.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time


def _peak_mib() -> float:
    """This process's peak resident memory so far, in MiB.

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this process's own
    address space. ``ru_maxrss`` would also count the parent's RSS at fork time (the
    kernel carries it across ``exec``), so a child of a big process would report the
    parent's size.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 / 1024 / 1024 if sys.platform == "darwin" else 1 / 1024  # bytes on macOS
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def make_image(path: str, megapixels: float, seed: int = 0) -> tuple[int, int]:
    """Write a photo-like RGB PNG of about ``megapixels`` MP; returns ``(width, height)``."""
    from importlib import resources

    import numpy as np
    from PIL import Image

    with Image.open(resources.files("jaxquant") / "data" / "sample.png") as im:
        src = im.convert("RGB")
    width = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    height = int(round(megapixels * 1e6 / width))
    big = np.asarray(src.resize((width, height), Image.Resampling.BILINEAR))
    rng = np.random.default_rng(seed)
    # Noise in row blocks to keep the generator's memory small.
    out = np.empty_like(big)
    for r in range(0, height, 256):
        block = big[r : r + 256].astype(np.int16)
        block += rng.integers(-3, 4, block.shape, dtype=np.int16)
        out[r : r + 256] = np.clip(block, 0, 255).astype(np.uint8)
    Image.fromarray(out).save(path, compress_level=1)
    return width, height


def child(path: str, k: int, steps: int) -> None:
    """Run one measurement in this (fresh) process; print a JSON line."""
    import jax

    import jaxquant

    stages = {"base": _peak_mib()}
    t0 = time.perf_counter()
    image = jaxquant.load_image(path, max_pixels=10**9)
    stages["load"] = _peak_mib()
    t1 = time.perf_counter()
    result = jaxquant.quantize(jax.random.key(0), image, k, num_steps=steps)
    jax.block_until_ready(result.image)
    stages["quantize"] = _peak_mib()
    t2 = time.perf_counter()
    out = os.path.join(os.path.dirname(path), f"out{k}.png")
    jaxquant.save_png(result, out, compress_level=1)
    stages["save"] = _peak_mib()
    t3 = time.perf_counter()
    h, w, c = image.shape
    print(
        json.dumps(
            dict(
                pixels=h * w,
                channels=c,
                k=k,
                stages=stages,
                seconds=dict(load=t1 - t0, quantize=t2 - t1, save=t3 - t2),
                psnr=float(result.psnr),
            )
        )
    )


def measure(path: str, k: int, steps: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", path, "--k", str(k), "--steps", str(steps)],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu")),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child failed for {path} k={k}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(rows: list[dict], steps: int) -> str:
    import jax

    lines = [
        f"Machine: {os.cpu_count()} CPU cores ({platform.machine()}), {platform.system()}, "
        f"JAX {jax.__version__} on cpu; {steps} SQ steps; photo-like RGB PNGs. Peak RSS "
        "(MiB) is the process's high-water mark after each stage; B/px is "
        "(peak - base) per pixel.",
        "",
        "| MP | K | base MiB | after load | after quantize | after save | B/px load | "
        "B/px total | load s | quantize s | save s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, n = r["stages"], r["pixels"]
        load_px = (s["load"] - s["base"]) * 2**20 / n
        total_px = (s["save"] - s["base"]) * 2**20 / n
        lines.append(
            f"| {n / 1e6:.1f} | {r['k']} | {s['base']:.0f} | {s['load']:.0f} | "
            f"{s['quantize']:.0f} | {s['save']:.0f} | {load_px:.1f} | "
            f"{total_px:.1f} | {r['seconds']['load']:.1f} | "
            f"{r['seconds']['quantize']:.1f} | {r['seconds']['save']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Reads no photographs and takes no data folder: it uses "
        "the packaged sample photo, scaled up.",
    )
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 4, 16, 50])
    parser.add_argument("--ks", type=int, nargs="+", default=[16, 256])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", help="also write the Markdown table here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--make", help=argparse.SUPPRESS)
    parser.add_argument("--mp", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.k, args.steps)
        return
    if args.make:
        make_image(args.make, args.mp)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mp in args.sizes:
            path = os.path.join(tmp, f"img{mp:g}.png")
            # In a child, so this process stays small.
            subprocess.run([sys.executable, __file__, "--make", path, "--mp", str(mp)], check=True)
            for k in args.ks:
                rows.append(measure(path, k, args.steps))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            os.unlink(path)
    text = table(rows, args.steps)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
