"""``jaxquant compress INPUT -k K -o OUTPUT.png``: one image to an indexed PNG."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from jaxquant.cli._common import UserError, load_input, output, sample_path
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
    out_path = output(args.output, inputs=[in_path], force=args.force, suffixes=(".png",))
    gif = None
    if args.animate_steps:
        gif = output(args.animate_steps, inputs=[in_path], force=args.force, suffixes=(".gif",))
        if gif.resolve() == out_path.resolve():
            raise UserError(f"{gif}: --animate-steps names the -o file; give another name")

    import jax

    import jaxquant
    from jaxquant.io import remove_stale_temps

    remove_stale_temps([p for p in (out_path, gif) if p is not None])  # left by a killed run
    image = load_input(in_path, max_pixels=args.max_pixels)
    bytes_in = in_path.stat().st_size
    options = fit_options(args)
    key = jax.random.key(args.seed)
    start = time.perf_counter()
    try:
        result = jaxquant.quantize(key, image, args.k, mode=args.mode, **options)
    except (ValueError, TypeError, FloatingPointError) as e:
        raise UserError(f"{in_path}: {e}") from None
    elapsed = time.perf_counter() - start
    try:
        bytes_out = jaxquant.save(result, out_path, format=args.format)
    except OSError as e:
        raise UserError(f"{out_path}: cannot write ({e.strerror or e})") from None
    if gif is not None:
        from jaxquant import report

        try:
            report.animate_steps(key, image, args.k, gif, num_frames=args.animate_frames, **options)
        except ValueError as e:
            raise UserError(f"{gif}: {e}") from None
        except OSError as e:
            raise UserError(f"{gif}: cannot write ({e.strerror or e})") from None
    if not args.quiet:
        h, w = image.shape[:2]
        used = len(np.unique(np.asarray(result.indices)))
        print(f"{in_path} -> {out_path}")
        print(f"  size      {w}x{h}, {image.shape[2]} channel(s)")
        print(f"  palette   {args.k} colours ({used} used)")
        print(f"  mse       {float(result.mse):.3f}  (0..255 scale, mean over channels)")
        print(f"  psnr      {float(result.psnr):.2f} dB")
        print(f"  bytes     {bytes_in:,} -> {bytes_out:,}  (ratio {bytes_in / bytes_out:.2f}x)")
        print(f"  time      {elapsed:.3f} s")
        if gif is not None:
            print(f"  steps     -> {gif}")
    return 0
