"""``jaxquant sweep INPUT --ks 2 4 8 16 -o sweep.gif``: one frame per K.

``--plot errors.png`` adds MSE/PSNR and file size against K (matplotlib, the ``plot``
extra). K is a static shape, so each K is its own compiled program: the sweep runs them
one after the other, with a progress bar, and the persistent compilation cache
(``--cache-dir``) makes a second run start warm.
"""

from __future__ import annotations

import os
import sys

from jaxquant.cli._common import (
    STDIN,
    UserError,
    display,
    image_suffixes,
    input_path,
    load_input,
    output,
    shown,
    start_threads,
    stem,
)
from jaxquant.cli.compare import quantize_for_report

__all__ = ["run"]


def run(args) -> int:
    """Run ``sweep`` (``args`` from :func:`jaxquant.cli._parser.build_parser`)."""
    path = input_path(args)
    start_threads(args, 1)
    inputs = [] if os.fspath(path) == STDIN else [path]
    name = stem(path)
    out = output(
        args.output, inputs=inputs, force=args.force, suffixes=(".gif",), name=f"{name}.gif"
    )
    plot = None
    if args.plot:
        plot = output(
            args.plot,
            inputs=inputs,
            others=[out],
            force=args.force,
            suffixes=image_suffixes(),
            name=f"{name}-errors.png",
        )
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UserError(
                f'{display(plot)}: --plot draws with matplotlib: pip install "jaxquant[plot]"'
            ) from None
    log = sys.stderr if "-" in (os.fspath(out), os.fspath(plot or "")) else sys.stdout

    from tqdm import tqdm

    from jaxquant import io, report

    image, _ = load_input(path, args)
    ks = sorted(set(args.ks))
    results, sizes = [], []
    bar = tqdm(
        ks,
        unit="K",
        disable=True if (args.quiet or args.no_progress) else None,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    for k in bar:
        bar.set_postfix_str(f"K={k}")
        result = quantize_for_report(args, path, image, k)
        results.append(result)
        sizes.append(len(io.encode(result)))
    bar.close()
    frames = report.sweep_frames(image, results, num_bytes=sizes, levels=args.mode == "channel")
    mse = [float(r.mse) for r in results]
    psnr = [float(r.psnr) for r in results]
    try:
        size = report.save_gif(frames, out, duration=args.duration)
        if plot is not None:
            title = f"{display(name)}: space {args.space}, mode {args.mode}"
            report.plot_errors(ks, mse, psnr, sizes, plot, title=title)
    except OSError as e:
        raise UserError(f"{display(e.filename or out)}: cannot write ({e.strerror or e})") from None
    if not args.quiet:
        shown_out = display(shown(args.output, f"{name}.gif"))
        lines = [
            f"{display(path)} -> {shown_out}  ({len(frames)} frames, {size:,} bytes)",
            f"  {'K':>5}  {'MSE':>10}  {'PSNR':>8}  {'PNG bytes':>10}",
        ]
        for k, m, p, b in zip(ks, mse, psnr, sizes, strict=True):
            lines.append(f"  {k:>5}  {m:>10.3f}  {p:>8.2f}  {b:>10,}")
        if plot is not None:
            lines.append(f"  chart -> {display(shown(args.plot, name + '-errors.png'))}")
        print("\n".join(lines), file=log)
    return 0
