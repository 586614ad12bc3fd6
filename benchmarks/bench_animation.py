"""Animations: one shared palette against per-frame palettes and Pillow's GIF writer.

Two frame sequences made from CQ100 photos (``--size``, ``--frames`` frames):

- ``sprite``: a still photo with a smaller photo moving across it (most pixels still);
- ``pan``: a window sliding slowly across a photo (a camera pan: few pixels still).

Each is written as an animated GIF by jaxquant (K colours: one palette shared by every
frame, or one per frame; no dithering, ordered, Floyd-Steinberg) and by Pillow's own GIF
writer on the same RGB frames (its default: each frame converted to an adaptive palette
of 256 colours), and by Pillow with ``quantize(K)`` per frame. Every GIF is decoded again
and scored: bytes, mean MSE to the source frames (0..255 scale), and flicker, the
fraction of pixels equal in two consecutive source frames whose decoded colour changes
(:func:`jaxquant.animation.flicker`). Times are wall clock of one run (after a warm-up run of
each jaxquant configuration on the same frames: compiling is not counted).

Usage::

    python benchmarks/bench_animation.py --k 64 --out docs/benchmarks-animation.md \\
        --gallery docs/gallery
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import jax
import numpy as np
from PIL import Image, ImageSequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import add_data_argument, photos  # noqa: E402
from bench_quality import machine  # noqa: E402

from jaxquant import animation  # noqa: E402


def sprite(files, size, n):
    w, h = size
    bg = np.asarray(Image.open(files[3]).convert("RGB").resize((w, h)))
    obj = np.asarray(Image.open(files[7]).convert("RGB").resize((w // 4, h // 4)))
    out = []
    for t in range(n):
        frame = bg.copy()
        x = int((w - w // 4) * t / max(n - 1, 1))
        y = int(h / 2 + h / 6 * np.sin(2 * np.pi * t / n)) - h // 8
        frame[y : y + h // 4, x : x + w // 4] = obj
        out.append(frame)
    return out


def pan(files, size, n):
    w, h = size
    big = np.asarray(Image.open(files[11]).convert("RGB").resize((w + 2 * n, h)))
    return [np.ascontiguousarray(big[:, 2 * t : 2 * t + w]) for t in range(n)]


def decode(data: bytes) -> list[np.ndarray]:
    with Image.open(io.BytesIO(data)) as im:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]


def pillow_gif(frames, k=None) -> bytes:
    images = [Image.fromarray(f) for f in frames]
    if k is not None:
        images = [im.quantize(k) for im in images]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=80)
    return buffer.getvalue()


def mse(frames, decoded) -> float:
    return float(
        np.mean(
            [
                np.mean((a.astype(float) - b.astype(float)) ** 2)
                for a, b in zip(frames, decoded, strict=True)
            ]
        )
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(ap)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--size", type=int, nargs=2, default=[384, 256])
    ap.add_argument("--out")
    ap.add_argument("--gallery", help="also write the sprite sequence's GIFs here")
    args = ap.parse_args(argv)
    files = photos(args.data)
    k = args.k
    key = jax.random.key(0)
    configs = [
        ("jaxquant, shared palette, no dither", True, "none"),
        ("jaxquant, shared palette, ordered (default)", True, "ordered"),
        ("jaxquant, shared palette, Floyd-Steinberg", True, "fs"),
        ("jaxquant, palette per frame, no dither", False, "none"),
        ("jaxquant, palette per frame, ordered", False, "ordered"),
        ("jaxquant, palette per frame, Floyd-Steinberg", False, "fs"),
    ]
    lines = [
        "# Animations",
        "",
        f"Written by `python benchmarks/bench_animation.py --k {k} --frames {args.frames} "
        f"--size {args.size[0]} {args.size[1]}`.",
        "",
        f"{machine()}. {args.frames} frames of {args.size[0]}x{args.size[1]} from CQ100 "
        "photos; every GIF decoded and scored against the source frames. Flicker: the "
        "share of pixels still in the source between two frames whose colour changes.",
        "",
    ]
    for name, make in (("sprite", sprite), ("pan", pan)):
        frames = make(files, tuple(args.size), args.frames)
        rows = []
        for label, shared, dither in configs:
            animation.quantize_frames(key, frames, k, shared=shared, dither=dither)  # compile
            t = time.perf_counter()
            results = animation.quantize_frames(key, frames, k, shared=shared, dither=dither)
            data = animation.encode_animation(results, durations=80)
            seconds = time.perf_counter() - t
            rows.append((label, data, seconds))
            if (
                args.gallery
                and name == "sprite"
                and label.endswith(("(default)", "frame, Floyd-Steinberg"))
            ):
                tag = "shared-ordered" if shared else "per-frame-fs"
                Path(args.gallery, f"animation-{tag}.gif").write_bytes(data)
        for label, colours in (
            ("Pillow GIF writer (its adaptive 256-colour palette per frame)", None),
            (f"Pillow quantize({k}) per frame", k),
        ):
            t = time.perf_counter()
            data = pillow_gif(frames, colours)
            rows.append((label, data, time.perf_counter() - t))
        shared_bytes = len(rows[1][1])
        lines += [
            f"## {name}",
            "",
            "| writer | bytes | vs jaxquant shared+ordered | mean MSE | flicker | s |",
            "|---|---|---|---|---|---|",
        ]
        for label, data, seconds in rows:
            decoded = decode(data)
            assert len(decoded) == len(frames), label
            f = animation.flicker(frames, decoded)
            flick = "n/a (nothing still)" if f != f else f"{f:.2%}"
            lines.append(
                f"| {label} | {len(data):,} | {len(data) / shared_bytes:.2f}x | "
                f"{mse(frames, decoded):.1f} | {flick} | {seconds:.2f} |"
            )
            print(lines[-1], flush=True)
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
