"""``jaxquant compare INPUT -k K -o compare.png``: original | quantized | palette swatch.

Captioned with K, MSE, PSNR and the indexed PNG's size; ``--histogram hist.png`` adds
intensity histograms before and after.
"""

from __future__ import annotations

import os
import sys

from jaxquant._checks import seed_key
from jaxquant.cli._common import (
    STDIN,
    UserError,
    display,
    image_suffixes,
    image_threads,
    input_path,
    load_input,
    output,
    shown,
    start_threads,
    stem,
)
from jaxquant.cli._parser import fit_options

__all__ = ["quantize_for_report", "run"]


def quantize_for_report(args, path, image, k: int):
    """``jaxquant.quantize`` with the command's options; errors as :class:`UserError`."""

    import jaxquant

    try:
        return jaxquant.quantize(seed_key(args.seed), image, k, mode=args.mode, **fit_options(args))
    except (ValueError, TypeError, FloatingPointError) as e:
        raise UserError(f"{display(path)}: {e}") from None


def run(args) -> int:
    """Run ``compare`` (``args`` from :func:`jaxquant.cli._parser.build_parser`)."""
    path = input_path(args)
    if args.mode == "vector" and args.k > 256:
        raise UserError(f"-k {args.k}: an indexed PNG holds at most 256 colours; use 256 or fewer")
    suffixes = image_suffixes()
    inputs = [] if os.fspath(path) == STDIN else [path]
    name = stem(path)
    out = output(
        args.output, inputs=inputs, force=args.force, suffixes=suffixes, name=f"{name}.png"
    )
    hist = None
    if args.histogram:
        hist = output(
            args.histogram,
            inputs=inputs,
            others=[out],
            force=args.force,
            suffixes=suffixes,
            name=f"{name}-histogram.png",
        )
    log = sys.stderr if "-" in (os.fspath(out), os.fspath(hist or "")) else sys.stdout

    image, _ = load_input(path, args)
    start_threads(args, image_threads(image))
    from jaxquant import io, report

    result = quantize_for_report(args, path, image, args.k)
    num_bytes = len(io.encode(result))
    caption = report.default_caption(args.k, float(result.mse), num_bytes=num_bytes)
    im = report.compare_image(
        image,
        result.image,
        result.palette,
        caption=f"{caption}\nspace {args.space}, mode {args.mode}",
        levels=args.mode == "channel",
    )
    try:
        size = io.save_image(im, out)
        if hist is not None:
            pooled = args.mode == "global"
            io.save_image(report.histogram_image(image, result.image, pooled=pooled), hist)
    except OSError as e:
        raise UserError(f"{display(e.filename or out)}: cannot write ({e.strerror or e})") from None
    if not args.quiet:
        shown_out = display(shown(args.output, f"{name}.png"))
        lines = [
            f"{display(path)} -> {shown_out}  ({im.width}x{im.height}, {size:,} bytes)",
            f"  K {args.k}, space {args.space}, mode {args.mode}: mse {float(result.mse):.3f}, "
            f"psnr {float(result.psnr):.2f} dB, indexed PNG {num_bytes:,} bytes",
        ]
        if hist is not None:
            lines.append(
                f"  histograms -> {display(shown(args.histogram, name + '-histogram.png'))}"
            )
        print("\n".join(lines), file=log)
    return 0
