"""``jaxquant compress INPUT -k K -o OUTPUT.png``: one image to an indexed PNG.

``INPUT`` may be ``-`` (standard input) and ``-o -`` writes the PNG to standard output
(the summary then goes to standard error); ``-o DIR/`` writes ``DIR/<input stem>.png``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from jaxquant.cli._common import (
    STDIN,
    UserError,
    display,
    load_input,
    output,
    sample_path,
    shown,
    stem,
)
from jaxquant.cli._parser import fit_options

__all__ = ["run"]


def run(args) -> int:
    """Compress one image (``args`` from :func:`jaxquant.cli._parser.build_parser`)."""
    in_path = sample_path() if args.sample else Path(args.inputs[0])
    if args.output is None:
        raise UserError("give the output file with -o (or --out-dir for many inputs)")
    if args.coordinator is not None:
        raise UserError("--coordinator and friends need --out-dir (batch mode)")
    if args.animate_steps and args.mode != "vector":
        raise UserError("--animate-steps animates the palette of --mode vector only")
    if args.animate_steps and args.num_steps == 0:
        raise UserError("--animate-steps animates the SQ steps; --steps 0 runs none")
    inputs = [] if os.fspath(in_path) == STDIN else [in_path]
    out_path = output(
        args.output,
        inputs=inputs,
        force=args.force,
        suffixes=(".png",),
        name=stem(in_path) + ".png",
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
    to_stdout = os.fspath(out_path) == "-" or os.fspath(gif or "") == "-"
    log = sys.stderr if to_stdout else sys.stdout

    import jax

    import jaxquant
    from jaxquant.io import remove_stale_temps

    remove_stale_temps([p for p in (out_path, gif) if p is not None])  # left by a killed run
    image, bytes_in = load_input(in_path, args)
    options = fit_options(args)
    key = jax.random.key(args.seed)
    start = time.perf_counter()
    try:
        result = jaxquant.quantize(key, image, args.k, mode=args.mode, **options)
    except (ValueError, TypeError, FloatingPointError) as e:
        raise UserError(f"{display(in_path)}: {e}") from None
    elapsed = time.perf_counter() - start
    try:
        bytes_out = jaxquant.save(result, out_path, format=args.format)
    except OSError as e:
        raise UserError(f"{display(out_path)}: cannot write ({e.strerror or e})") from None
    if gif is not None:
        from jaxquant import report

        try:
            report.animate_steps(key, image, args.k, gif, num_frames=args.animate_frames, **options)
        except ValueError as e:
            raise UserError(f"{display(gif)}: {e}") from None
        except OSError as e:
            raise UserError(f"{display(gif)}: cannot write ({e.strerror or e})") from None
    if not args.quiet:
        h, w = image.shape[:2]
        used = len(np.unique(np.asarray(result.indices)))
        lines = [
            f"{display(in_path)} -> {display(shown(args.output, stem(in_path) + '.png'))}",
            f"  size      {w}x{h}, {image.shape[2]} channel(s)",
            f"  palette   {args.k} colours ({used} used)",
            f"  mse       {float(result.mse):.3f}  (0..255 scale, mean over channels)",
            f"  psnr      {float(result.psnr):.2f} dB",
            f"  bytes     {bytes_in:,} -> {bytes_out:,}  (ratio {bytes_in / bytes_out:.2f}x)",
            f"  time      {elapsed:.3f} s",
        ]
        if gif is not None:
            lines.append(
                f"  steps     -> {display(shown(args.animate_steps, stem(in_path) + '.gif'))}"
            )
        print("\n".join(lines), file=log)
    return 0
