"""``jaxquant palette INPUT... -k K -o FILE``: one palette for many images, as a file.

The inputs (image files, directories of images) are streamed through
:func:`jaxquant.fit_palette` (a weighted sample of all their pixels, SQ on it, then exact
k-means passes over every pixel; :mod:`jaxquant.dataset`), and the palette is written by
:func:`jaxquant.palettes.write_palette` (atomically; ``-`` prints ``.txt`` lines). With
``--coordinator`` and friends, each process of a ``jax.distributed`` job reads its own
share of the files and every process fits the same palette; process 0 writes it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from jaxquant._checks import seed_key
from jaxquant.cli._common import (
    UserError,
    check_distributed,
    display,
    start_distributed,
    start_threads,
)
from jaxquant.cli._parser import fit_options

__all__ = ["collect_images", "run"]


def collect_images(inputs, *, recursive: bool) -> list[Path]:
    """The image files the inputs name: files as given, directories' images by suffix
    (hidden ones skipped, sorted; subdirectories with ``recursive``)."""
    from jaxquant import _names

    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if os.path.isdir(path):
            walker = path.rglob("*") if recursive else path.iterdir()
            found = sorted(
                f
                for f in walker
                if not any(part.startswith(".") for part in f.relative_to(path).parts)
                and f.suffix.lower() in _names.IMAGE_SUFFIXES
                and f.is_file()
            )
            if not found:
                raise UserError(f"{display(path)}: no image files in this directory")
            files += found
        elif os.path.isfile(path):
            files.append(path)
        elif os.path.lexists(path):
            raise UserError(f"{display(path)}: not a regular file or a directory")
        else:
            raise UserError(f"{display(path)}: no such file or directory")
    seen: set[str] = set()
    unique = []
    for f in files:  # a file named twice counts once
        real = os.path.realpath(f)
        if real not in seen:
            seen.add(real)
            unique.append(f)
    return unique


def run(args) -> int:
    """Fit and write one palette (``args`` from :func:`~jaxquant.cli._parser.build_parser`)."""
    from jaxquant import palettes
    from jaxquant.io import OutputError, check_output

    distributed = check_distributed(args)
    files = collect_images(args.inputs, recursive=args.recursive)
    try:
        out = check_output(
            args.output, inputs=files, force=args.force, suffixes=palettes.PALETTE_SUFFIXES
        )
    except OutputError as e:
        raise UserError(str(e)) from None
    if args.k > 256 and Path(os.fspath(out)).suffix.lower() == ".png":
        raise UserError(f"{display(out)}: a swatch .png holds at most 256 colours; use .txt")
    t0 = time.perf_counter()
    import jax

    import jaxquant
    from jaxquant.io import ImageReadError

    options = fit_options(args)
    try:
        jaxquant.FitOptions.make(args.k, **options)
    except (ValueError, TypeError) as e:
        raise UserError(str(e)) from None
    if distributed:
        start_distributed(args)
    start_threads(args, None)
    share = jaxquant.shard_files(files)
    fit: Any  # a dataset.DatasetFit: paths always stream
    try:
        fit = jaxquant.fit_palette(
            seed_key(args.seed),
            share,
            args.k,
            sample_size=args.sample_size,
            num_passes=args.passes,
            **options,
        )
    except ImageReadError as e:
        raise UserError(str(e)) from None
    except (ValueError, TypeError) as e:
        raise UserError(str(e)) from None
    if int(fit.status) != jaxquant.Status.OK:
        raise UserError("the fit diverged (non-finite palette); lower --lr")
    if jax.process_index() == 0:
        try:
            palettes.write_palette(out, fit.palette)
        except OSError as e:
            raise UserError(f"{display(out)}: cannot write ({e.strerror or e})") from None
    if not args.quiet and jax.process_index() == 0:
        log = sys.stderr if os.fspath(out) == "-" else sys.stdout
        mse = ", ".join(f"{m:.2f}" for m in fit.pass_mse) or "no pass"
        print(
            "\n".join(
                [
                    f"{fit.num_images} images ({fit.num_pixels:,} pixels) -> {display(out)}",
                    f"  palette   {args.k} colours, fitted to a sample of "
                    f"{fit.sample_size:,} pixels",
                    f"  mse       {mse}  (all pixels, before each k-means pass)",
                    f"  time      {time.perf_counter() - t0:.2f} s",
                ]
            ),
            file=log,
        )
    return 0
