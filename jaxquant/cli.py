"""Command-line interface: ``jaxquant compress``, ``compare`` and ``sweep``.

Thin: parse, call the library, write, report.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from importlib import resources
from pathlib import Path

__all__ = ["main"]

PROG = "jaxquant"


class UserError(Exception):
    """An error caused by the user's input: reported on one line, exit code 2."""


def _cache_dir(flag: str | None) -> str | None:
    if flag is not None:
        return flag or None
    env = os.environ.get("JAXQUANT_CACHE_DIR")
    if env is not None:
        return env or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxquant", "xla")


def _enable_compilation_cache(path: str | None) -> None:
    """Turn on JAX's persistent compilation cache so a second run starts warm."""
    if not path:
        return
    import jax

    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return  # an unwritable cache only costs compile time; never fail the run for it
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _rank(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 1.0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Flags every quantizing command shares: seed, SQ size, compile cache, quiet."""
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--steps", type=_non_negative_int, default=None, help="SQ steps (default: tuned)"
    )
    p.add_argument(
        "--batch-size", type=_positive_int, default=None, help="pixels per SQ step (default: tuned)"
    )
    p.add_argument(
        "--cache-dir",
        default=None,
        help="persistent compilation cache ('' disables; default "
        "$JAXQUANT_CACHE_DIR or ~/.cache/jaxquant/xla)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")


def _parser() -> argparse.ArgumentParser:
    from jaxquant._solver import OPTIMIZERS
    from jaxquant.seeding import INITIALIZERS

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Colour quantization and image compression by Stochastic Quantization.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = sub.add_parser(
        "compress",
        help="quantize an image to k colours and write an indexed PNG",
        description="Quantize an image to K colours and write it as an indexed PNG.",
    )
    c.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="image files (any format Pillow reads) or directories of images",
    )
    c.add_argument(
        "--sample", action="store_true", help="use the built-in sample photograph as input"
    )
    c.add_argument(
        "-k",
        "--colors",
        dest="k",
        type=_positive_int,
        required=True,
        help="number of palette colours (1-256 for PNG output)",
    )
    c.add_argument("-o", "--output", help="output PNG path (one input file)")
    c.add_argument(
        "--format",
        choices=("indexed", "rgb"),
        default="indexed",
        help="indexed: palette PNG, up to 256 colours (default); rgb: the quantized image "
        "as a truecolour PNG (any -k, larger files)",
    )
    c.add_argument(
        "--out-dir",
        help="output directory for many inputs: mirrors each input directory's tree, "
        "one .png per image",
    )
    c.add_argument(
        "-r", "--recursive", action="store_true", help="descend into subdirectories of inputs"
    )
    c.add_argument(
        "--batch-images",
        type=_positive_int,
        default=8,
        help="most images per compiled call in batch mode (default 8)",
    )
    c.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="threads reading and writing files in batch mode (default: CPU count, max 8)",
    )
    c.add_argument("--no-progress", action="store_true", help="no progress bar in batch mode")
    dist = c.add_argument_group(
        "several processes (jax.distributed): each takes its own share of the files"
    )
    dist.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0")
    dist.add_argument("--num-processes", type=_positive_int, help="processes in the job")
    dist.add_argument("--process-id", type=_non_negative_int, help="this process's index")
    add_run_options(c)
    c.add_argument(
        "--optimizer", choices=OPTIMIZERS, default="adam", help="SQ optimizer (default adam)"
    )
    c.add_argument(
        "--lr",
        type=_positive_float,
        default=None,
        help="starting learning rate (default: tuned per optimizer)",
    )
    c.add_argument(
        "--rank",
        type=_rank,
        default=2.0,
        help="exponent r of the objective E min|x - y|^r (default 2 = k-means)",
    )
    c.add_argument(
        "--init",
        choices=sorted(INITIALIZERS),
        default="kmeans++",
        help="palette seeding (default kmeans++)",
    )
    c.add_argument(
        "--lloyd-steps",
        type=_non_negative_int,
        default=None,
        help="exact k-means steps after SQ (default: tuned)",
    )
    c.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs (batch mode skips them by default, so an "
        "interrupted run resumes) and allow an output to replace its input",
    )
    c.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=None,
        help="refuse images with more pixels than this, checked from the file header "
        "(default 178956970, Pillow's decompression-bomb limit)",
    )
    from jaxquant import _cli_reports

    _cli_reports.add_quantize_options(c)
    c.add_argument(
        "--animate-steps",
        metavar="GIF",
        help="also write the palette converging over the SQ steps as an animated GIF "
        "(one input, mode vector)",
    )
    c.add_argument(
        "--animate-frames",
        type=_positive_int,
        default=20,
        help="frames of --animate-steps after the seeding one (default 20)",
    )
    _cli_reports.add_commands(sub)
    return parser


def fit_options(args) -> dict:
    """The ``quantize`` options that ``compress``'s flags set (single-file and batch mode)."""
    return dict(
        num_steps=args.steps,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        learning_rate=args.lr,
        rank=args.rank,
        init=args.init,
        num_lloyd_steps=args.lloyd_steps,
        space=args.space,
    )


def _compress(args) -> int:
    if args.sample and args.inputs:
        raise UserError("give INPUT files or --sample, not both")
    if not args.sample and not args.inputs:
        raise UserError("give at least one INPUT file or directory, or --sample")
    if args.k > 256 and args.format == "indexed":
        raise UserError(
            f"-k {args.k}: an indexed PNG holds at most 256 colours; use -k 256 or fewer, "
            "or --format rgb to write the quantized image as a truecolour PNG"
        )
    distributed = (args.coordinator, args.num_processes, args.process_id)
    if any(v is not None for v in distributed) and any(v is None for v in distributed):
        raise UserError("--coordinator, --num-processes and --process-id go together")
    single = args.sample or (
        len(args.inputs) == 1 and not Path(args.inputs[0]).is_dir() and args.out_dir is None
    )
    if single:
        if args.output is None:
            raise UserError("give the output file with -o (or --out-dir for many inputs)")
        if args.coordinator is not None:
            raise UserError("--coordinator and friends need --out-dir (batch mode)")
        return _compress_one(args)
    if args.output is not None:
        if len(args.inputs) == 1:
            raise UserError(
                f"{args.inputs[0]}: is a directory; give --out-dir to compress the images in it"
            )
        raise UserError("-o names one output file; for many inputs give --out-dir")
    if args.out_dir is None:
        raise UserError("many inputs (or a directory) need --out-dir")
    if args.mode != "vector" or args.animate_steps:
        raise UserError("--mode channel/global and --animate-steps take one input file")
    from jaxquant import _cli_batch

    return _cli_batch.run(args, UserError)


def _compress_one(args) -> int:
    import jax

    import jaxquant
    from jaxquant.io import ImageReadError, load_image, remove_stale_temps

    if args.sample:
        src = resources.files("jaxquant") / "data" / "sample.png"
        in_path = Path(str(src))
    else:
        in_path = Path(args.inputs[0])
    out_path = Path(args.output)
    if out_path.is_dir():
        raise UserError(f"{out_path}: is a directory; give an output file name")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{out_path.parent}: cannot create ({e.strerror or e})") from None
    try:
        same = out_path.exists() and os.path.samefile(in_path, out_path)
    except OSError:
        same = False
    if same and not args.overwrite:
        raise UserError(f"{out_path}: output is the input file; pass --overwrite to replace it")
    remove_stale_temps([out_path])  # left beside it by a killed run

    try:
        image = load_image(in_path, max_pixels=args.max_pixels)
    except ImageReadError as e:
        raise UserError(str(e)) from None
    bytes_in = in_path.stat().st_size

    start = time.perf_counter()
    try:
        result = jaxquant.quantize(
            jax.random.key(args.seed), image, args.k, mode=args.mode, **fit_options(args)
        )
    except (ValueError, TypeError, FloatingPointError) as e:
        raise UserError(f"{in_path}: {e}") from None
    elapsed = time.perf_counter() - start
    from jaxquant import _cli_reports

    try:
        if args.mode == "vector" and args.format == "indexed":
            bytes_out = jaxquant.save_png(result, out_path)
        else:  # levels combine across channels: indexed only if <= 256 colours result
            bytes_out = _cli_reports.save_result(
                result, out_path, mode=args.mode, truecolour=args.format == "rgb"
            )
    except OSError as e:
        raise UserError(f"{out_path}: cannot write ({e.strerror or e})") from None
    if args.animate_steps:
        if args.mode != "vector":
            raise UserError("--animate-steps animates the palette of --mode vector only")
        try:
            _cli_reports.animate_steps(
                jax.random.key(args.seed),
                image,
                args.k,
                args.animate_steps,
                num_frames=args.animate_frames,
                space=args.space,
                num_steps=args.steps,
                batch_size=args.batch_size,
                optimizer=args.optimizer,
                learning_rate=args.lr,
                init=args.init,
            )
        except ValueError as e:
            raise UserError(f"{args.animate_steps}: {e}") from None
        except OSError as e:
            raise UserError(f"{args.animate_steps}: cannot write ({e.strerror or e})") from None
    if not args.quiet:
        h, w = image.shape[:2]
        used = len(set(map(int, jax.numpy.unique(result.indices))))
        print(f"{in_path} -> {out_path}")
        print(f"  size      {w}x{h}, {image.shape[2]} channel(s)")
        print(f"  palette   {args.k} colours ({used} used)")
        print(f"  mse       {float(result.mse):.3f}  (0..255 scale, mean over channels)")
        print(f"  psnr      {float(result.psnr):.2f} dB")
        print(f"  bytes     {bytes_in:,} -> {bytes_out:,}  (ratio {bytes_in / bytes_out:.2f}x)")
        print(f"  time      {elapsed:.3f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    0: success; 1: batch mode finished but some files failed; 2: usage or input error
    (one line on stderr, no traceback); 130: interrupted.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    _enable_compilation_cache(_cache_dir(args.cache_dir))
    with warnings.catch_warnings():
        # Pillow warns about recoverable damage (corrupt EXIF, oversized tags) and then
        # decodes the image; the CLI reports one line per problem, never warning text.
        warnings.filterwarnings("ignore", module="PIL")
        try:
            if args.command == "compress":
                return _compress(args)
            from jaxquant import _cli_reports

            if args.command in _cli_reports.COMMANDS:
                return _cli_reports.run(args)
        except UserError as e:
            print(f"{PROG}: error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
