"""``jaxquant compress ANIM.gif -k K -o OUT.gif`` (or ``--frames INPUT...``): an animation.

An animated GIF, APNG or WebP input is read frame by frame (:func:`jaxquant.io.load_frames`),
or the INPUTs are the frames (``--frames``); one palette is fitted to every frame together
(``--per-frame-palette``: one each), the frames are remapped with ordered dithering unless
``--dither`` says otherwise, and the animation is written as GIF, APNG (``.png``) or WebP
(:func:`jaxquant.animation.save_animation`, atomically).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from jaxquant._checks import seed_key
from jaxquant.cli._common import UserError, display, output, read_palette_flag
from jaxquant.cli._parser import EXIT_SKIPPED

__all__ = ["run"]

_SUFFIXES = (".gif", ".png", ".apng", ".webp")


def _refuse(args) -> None:
    for flag, given in (
        ("--quality", args.quality is not None),
        ("--out-dir", args.out_dir is not None),
        ("--ext", args.ext is not None),
        ("--sample", args.sample),
        ("--animate-steps", args.animate_steps is not None),
        ("--mode " + args.mode, args.mode != "vector"),
        ("--coordinator", args.coordinator is not None),
    ):
        if given:
            raise UserError(f"an animation is written to one -o file; {flag} does not go with it")
    if args.output is None:
        raise UserError("give the animation's output file with -o (.gif, .png or .webp)")
    if args.palette is not None and (args.k is not None or args.fixed is not None):
        raise UserError("--palette gives the colours; -k and --fixed do not go with it")
    if args.palette is None and args.k is None:
        raise UserError("give the number of colours with -k K, or --palette FILE")
    if args.k is not None and args.k > 256:
        raise UserError(f"-k {args.k}: a GIF or APNG holds at most 256 colours")


def _read(args, inputs: list[Path]):
    from jaxquant.io import ImageReadError, load_frames, load_image

    try:
        if not args.frames:
            frames, durations, loop = load_frames(inputs[0], max_pixels=args.max_pixels)
        else:
            frames = [load_image(p, max_pixels=args.max_pixels) for p in inputs]
            durations, loop = [100] * len(frames), 0
    except ImageReadError as e:
        raise UserError(str(e)) from None
    if args.frames:
        first = frames[0]
        for path, frame in zip(inputs, frames, strict=True):
            if frame.shape[:2] != first.shape[:2]:
                raise UserError(
                    f"{display(path)}: {frame.shape[1]}x{frame.shape[0]}, but the first frame "
                    f"is {first.shape[1]}x{first.shape[0]}: frames must have one size"
                )
        channels = max(f.shape[2] for f in frames)
        frames = [_widen(f, channels) for f in frames]
    if args.frame_duration is not None:
        durations = [args.frame_duration] * len(frames)
    return frames, durations, loop


def _widen(frame: np.ndarray, channels: int) -> np.ndarray:
    """A frame with ``channels`` channels (grey to RGB, opaque alpha added)."""
    c = frame.shape[2]
    if c == channels:
        return frame
    colour, alpha = frame[..., : 1 if c <= 2 else 3], frame[..., (1 if c <= 2 else 3) :]
    want_colour = 1 if channels <= 2 else 3
    if colour.shape[2] < want_colour:
        colour = np.repeat(colour, want_colour, axis=2)
    if channels in (2, 4) and alpha.shape[2] == 0:
        alpha = np.full(frame.shape[:2] + (1,), 255, np.uint8)
    return np.concatenate([colour, alpha], axis=2)


def run(args) -> int:
    """Write one animation (``args`` from :func:`~jaxquant.cli._parser.build_parser`)."""
    _refuse(args)
    if args.frames:
        from jaxquant.cli.palette import collect_images

        inputs = collect_images(args.inputs, recursive=args.recursive)
    else:
        inputs = [Path(args.inputs[0])]
    out = output(args.output, inputs=inputs, force=args.force, suffixes=_SUFFIXES)
    from jaxquant.animation import ANIMATION_FORMATS, animation_format

    if args.format is not None and args.format not in ANIMATION_FORMATS:
        raise UserError(f"--format {args.format}: an animation is written as gif, png or webp")
    try:
        fmt = animation_format(out, format=args.format)
    except ValueError as e:
        raise UserError(str(e)) from None
    given = None if args.palette is None else read_palette_flag(args.palette)
    t0 = time.perf_counter()

    from jaxquant.animation import encode_animation, flicker, quantize_frames
    from jaxquant.cli.compress import speed_options
    from jaxquant.io import atomic_write, write_stdout

    frames, durations, loop = _read(args, inputs)
    k = args.k if given is None else len(given)
    dither = args.dither or "ordered"
    palette = None
    if given is not None:
        from jaxquant.palettes import match_image

        pairs = [match_image(f, given) for f in frames]
        frames, palette = [p[0] for p in pairs], pairs[0][1]
    try:
        results = quantize_frames(
            seed_key(args.seed),
            frames,
            k,
            shared=not args.per_frame_palette,
            dither=dither,
            dither_level=args.dither_level,
            palette=palette,
            **({} if given is not None else speed_options(args, k)),
        )
        data = encode_animation(results, durations=durations, loop=loop, format=fmt)
    except (ValueError, TypeError, FloatingPointError) as e:
        raise UserError(f"{display(inputs[0])}: {e}") from None
    bytes_in = sum(os.path.getsize(p) for p in inputs)
    if args.skip_if_larger and len(data) >= bytes_in:
        print(
            f"jaxquant: {display(inputs[0])}: skipped: the animation ({len(data):,} bytes) is "
            f"not smaller than the input ({bytes_in:,} bytes); {display(out)} not written",
            file=sys.stderr,
        )
        return EXIT_SKIPPED
    try:
        if os.fspath(out) == "-":
            write_stdout(data)
        else:
            with atomic_write(out) as tmp:
                tmp.write_bytes(data)
    except OSError as e:
        raise UserError(f"{display(out)}: cannot write ({e.strerror or e})") from None
    if not args.quiet:
        h, w = frames[0].shape[:2]
        mse = float(np.mean([float(r.mse) for r in results]))
        still = flicker(frames, [np.asarray(r.image) for r in results])
        source = display(inputs[0]) + (f" and {len(inputs) - 1} more" if len(inputs) > 1 else "")
        kind = "one per frame" if args.per_frame_palette else "shared by every frame"
        lines = [
            f"{source} -> {display(out)}",
            f"  frames    {len(frames)} of {w}x{h}, {sum(durations) / 1000:.2f} s",
            f"  palette   {k} colours, {kind}; dither {dither}",
            f"  mse       {mse:.3f}  (mean over frames)",
            f"  flicker   {still:.2%} of still pixels change colour between frames"
            if still == still
            else "  flicker   no still pixels",
            f"  bytes     {bytes_in:,} -> {len(data):,}  ({fmt})",
            f"  time      {time.perf_counter() - t0:.2f} s",
        ]
        print("\n".join(lines), file=sys.stderr if os.fspath(out) == "-" else sys.stdout)
    return 0
