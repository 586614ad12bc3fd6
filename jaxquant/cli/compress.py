"""``jaxquant compress INPUT -k K -o OUTPUT``: one image to an indexed PNG, WebP or GIF.

``INPUT`` may be ``-`` (standard input) and ``-o -`` writes to standard output (the
summary then goes to standard error); ``-o DIR/`` writes ``DIR/<input stem>.png``;
``--ext SUFFIX`` writes ``<input stem>SUFFIX`` next to the input. ``--quality MIN-MAX``
chooses the number of colours; ``--dither`` how pixels take them; ``--skip-if-larger``
keeps the input when the result is not smaller (exit code 98).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from jaxquant._checks import seed_key
from jaxquant.cli import _encode
from jaxquant.cli._common import (
    STDIN,
    UserError,
    display,
    image_threads,
    load_input,
    output,
    palette_flag,
    quality_flag,
    sample_path,
    shown,
    start_threads,
    stem,
)
from jaxquant.cli._parser import EXIT_QUALITY, EXIT_SKIPPED, SPEEDS, fit_options

__all__ = ["run", "speed_options", "speed_preset"]


def speed_preset(speed: int | None, k: int, options: dict) -> dict:
    """Fit options with ``--speed`` applied: the tuned SQ steps scaled, Lloyd steps added
    at speeds 1-3 (:data:`~jaxquant.cli._parser.SPEEDS`); options already set win."""
    options = dict(options)
    if speed is None:
        return options
    factor, lloyd = SPEEDS[speed]
    if options.get("num_steps") is None and factor != 1.0:
        import jaxquant

        base = jaxquant.FitOptions.make(k, **options).solver.num_steps
        options["num_steps"] = max(1, round(base * factor))
    if options.get("num_lloyd_steps") is None and lloyd is not None:
        options["num_lloyd_steps"] = lloyd
    return options


def speed_options(args, k: int) -> dict:
    """The fit options the flags set, ``--speed`` included."""
    return speed_preset(args.speed, k, fit_options(args))


def run(args) -> int:
    """Compress one image (``args`` from :func:`jaxquant.cli._parser.build_parser`)."""
    in_path = sample_path() if args.sample else Path(args.inputs[0])
    if args.ext is not None:
        if os.fspath(in_path) == STDIN:
            raise UserError("--ext names outputs after their inputs; standard input has none")
        args.output = os.fspath(in_path.with_name(in_path.stem + args.ext))
    if args.output is None:
        raise UserError("give the output file with -o (or --out-dir for many inputs, or --ext)")
    if args.coordinator is not None:
        raise UserError("--coordinator and friends need --out-dir (batch mode)")
    if args.animate_steps and args.mode != "vector":
        raise UserError("--animate-steps animates the palette of --mode vector only")
    if args.animate_steps and args.num_steps == 0:
        raise UserError("--animate-steps animates the SQ steps; --steps 0 runs none")
    inputs = [] if os.fspath(in_path) == STDIN else [in_path]
    fmt = _encode.canonical(args.format)
    default_name = stem(in_path) + _encode.SUFFIXES[fmt or "png"]
    out_path = output(
        args.output,
        inputs=inputs,
        force=args.force,
        suffixes=_encode.suffixes_for(fmt),
        name=default_name,
    )
    fmt = _encode.output_format(out_path, fmt)
    given = palette_flag(args, fmt)
    if fmt != "rgb" and args.k is not None and args.k > 256:
        raise UserError(
            f"-k {args.k}: {fmt} holds at most 256 colours; use -k 256 or fewer, or "
            "--format rgb to write the quantized image as a truecolour PNG"
        )
    gif = None
    if args.animate_steps:
        gif = output(
            args.animate_steps,
            inputs=inputs,
            others=[out_path],
            force=args.force,
            suffixes=(".gif",),
            name=stem(in_path) + ".gif",
        )
    quality = quality_flag(args.quality)
    to_stdout = os.fspath(out_path) == "-" or os.fspath(gif or "") == "-"
    log = sys.stderr if to_stdout else sys.stdout

    t0 = time.perf_counter()
    # Read first: a bad input is reported before JAX is imported (a second saved).
    from jaxquant.io import read_metadata, remove_stale_temps

    image, bytes_in = load_input(in_path, args)
    metadata = None
    if not args.strip and os.fspath(in_path) != STDIN:
        try:
            metadata = read_metadata(in_path)
        except (OSError, ValueError):
            metadata = None  # colour metadata is a courtesy; the image itself was read
    t_load = time.perf_counter() - t0
    start_threads(args, image_threads(image))
    import jax

    import jaxquant

    remove_stale_temps([p for p in (out_path, gif) if p is not None])  # left by a killed run
    t_import = time.perf_counter() - t0 - t_load
    k_max = args.k if args.k is not None else (256 if given is None else len(given))
    options = speed_options(args, k_max)
    key = seed_key(args.seed)
    dither = dict(dither=args.dither, dither_level=args.dither_level)
    start = time.perf_counter()
    try:
        if given is not None:
            from jaxquant.palettes import match_image

            k = len(given)
            image, matched = match_image(image, given)
            result = jaxquant.remap(image, matched, space=args.space, runs=args.runs, **dither)
        elif quality is not None:
            from jaxquant.quality import QualityError, quantize_to_quality

            try:
                result = quantize_to_quality(
                    key, image, quality, max_colors=k_max, **dither, **options
                )
            except QualityError as e:
                print(f"jaxquant: {display(in_path)}: {e}", file=sys.stderr)
                return EXIT_QUALITY
            k = int(result.palette.shape[0])
        else:
            k = k_max
            result = jaxquant.quantize(
                key, image, k, mode=args.mode, runs=args.runs, **dither, **options
            )
    except (ValueError, TypeError, FloatingPointError) as e:
        raise UserError(f"{display(in_path)}: {e}") from None
    jax.block_until_ready(result.image)
    elapsed = time.perf_counter() - start
    try:
        written = _encode.write(result, out_path, fmt, args, metadata=metadata, bytes_in=bytes_in)
    except OSError as e:
        raise UserError(f"{display(out_path)}: cannot write ({e.strerror or e})") from None
    t_write = time.perf_counter() - start - elapsed
    if gif is not None and not written.skipped:
        from jaxquant import report

        try:
            report.animate_steps(key, image, k, gif, num_frames=args.animate_frames, **options)
        except ValueError as e:
            raise UserError(f"{display(gif)}: {e}") from None
        except OSError as e:
            raise UserError(f"{display(gif)}: cannot write ({e.strerror or e})") from None
    out_name = display(shown(args.output, default_name))
    if written.skipped:
        print(
            f"jaxquant: {display(in_path)}: skipped: the result ({written.size:,} bytes) is "
            f"not smaller than the input ({bytes_in:,} bytes); {out_name} not written",
            file=sys.stderr,
        )
        return EXIT_SKIPPED
    if not args.quiet:
        h, w = image.shape[:2]
        used = len(np.unique(np.asarray(result.indices)))
        colours = f"{k} colours ({used} used)"
        if given is not None:
            colours += f" from {display(args.palette)}"
        if quality is not None:
            from jaxquant.quality import mse_to_quality

            colours += f", quality {mse_to_quality(float(result.mse))} (asked {args.quality})"
        lines = [
            f"{display(in_path)} -> {out_name}",
            f"  size      {w}x{h}, {image.shape[2]} channel(s)",
            f"  palette   {colours}",
            f"  mse       {float(result.mse):.3f}  (0..255 scale, mean over channels)",
            f"  psnr      {float(result.psnr):.2f} dB",
            f"  bytes     {bytes_in:,} -> {written.size:,}  (ratio {bytes_in / written.size:.2f}x,"
            f" {fmt})",
            f"  time      {elapsed:.3f} s",
        ]
        if args.verbose:
            fit = {name: value for name, value in options.items() if value is not None}
            lines += [
                f"  options   mode {args.mode}, dither {args.dither}"
                + (f" (level {args.dither_level})" if args.dither_level is not None else "")
                + (f", runs {args.runs:g}" if args.runs else "")
                + (f", speed {args.speed}" if args.speed is not None else "")
                + "".join(f", {name} {value}" for name, value in sorted(fit.items())),
                f"  timings   import {t_import:.3f} s, read {t_load:.3f} s, fit "
                f"{elapsed:.3f} s, encode+write {t_write:.3f} s",
                "  metadata  "
                + ("stripped" if args.strip else ", ".join(sorted(metadata or {})) or "none"),
            ]
        if gif is not None:
            lines.append(
                f"  steps     -> {display(shown(args.animate_steps, stem(in_path) + '.gif'))}"
            )
        print("\n".join(lines), file=log)
    return 0
