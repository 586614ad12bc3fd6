"""The argument parser of ``jaxquant``, and the one table from flags to library options.

Free of JAX imports: ``jaxquant --help``, ``--version`` and argument errors answer
without loading JAX. Every integer flag has a range, checked by argparse before any work
(the ranges are listed in ``docs/errors.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any

from jaxquant import __version__, _names
from jaxquant._checks import MAX_K

__all__ = [
    "EXIT_QUALITY",
    "EXIT_SKIPPED",
    "FIT_FLAGS",
    "PROG",
    "SPEEDS",
    "build_parser",
    "fit_options",
    "unit_interval",
]

PROG = "jaxquant"

EXIT_SKIPPED = 98
"""Exit code of ``--skip-if-larger`` when a result was not smaller (pngquant's code)."""

EXIT_QUALITY = 99
"""Exit code when ``--quality MIN-MAX`` cannot reach MIN (pngquant's code)."""

# --speed N: (factor on the tuned number of SQ steps, exact Lloyd steps after them).
# 4 is the library's defaults, as 4 is pngquant's default speed.
SPEEDS = {
    1: (4.0, 4),
    2: (3.0, 3),
    3: (2.0, 2),
    4: (1.0, None),
    5: (0.75, None),
    6: (0.5, None),
    7: (0.35, None),
    8: (0.25, None),
    9: (0.15, None),
    10: (0.1, None),
}

MAX_SEED = (1 << 32) - 1  # jax.random.key keeps 32 bits: larger seeds would collide


def int_range(minimum: int, maximum: int):
    """An argparse type: an integer in ``minimum..maximum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"must be in {minimum:,}..{maximum:,}, got {value:,}"
                if abs(value) < 10**30
                else f"must be in {minimum:,}..{maximum:,}, got a {len(text)}-digit number"
            )
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    parse.minimum, parse.maximum = minimum, maximum  # type: ignore[attr-defined]  # docs, tests
    return parse


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (up to float32's range)."""
    value = _number(text)
    if not 0 < value <= 3.4e38:
        raise argparse.ArgumentTypeError(f"must be a positive number up to 3.4e38, got {text}")
    return value


def unit_interval(text: str) -> float:
    """An argparse type: a number in ``[0, 1]``."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in 0..1, got {text}")
    return value


def runs_level(text: str) -> float:
    """An argparse type: a number in ``[0, 4]`` (``--runs``)."""
    value = _number(text)
    if not 0 <= value <= 4:
        raise argparse.ArgumentTypeError(f"must be a number in 0..4, got {text}")
    return value


# --runs without dithering when not given: about 10% smaller PNGs for 1-3% more MSE
# on CQ100 photos (docs/compression.md, benchmarks/bench_bytes.py).
DEFAULT_RUNS = 1.0


def gpus(text: str) -> float:
    """An argparse type: GPUs per Ray actor, a number in ``[0, 1024]``."""
    value = _number(text)
    if not 0 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"must be a number in 0..1024, got {text}")
    return value


def rank(text: str) -> float:
    """An argparse type: a finite number >= 1."""
    value = _number(text)
    if not value >= 1.0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 1, got {text}")
    return value


@dataclasses.dataclass(frozen=True)
class Flag:
    """One command-line flag that sets one fitting option of the library."""

    flags: tuple[str, ...]
    option: str  # the keyword of jaxquant.quantize / FitOptions.make (also argparse's dest)
    type: Any
    default: Any
    help: str
    choices: tuple[str, ...] | None = None

    def add(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            *self.flags,
            dest=self.option,
            type=self.type,
            default=self.default,
            choices=self.choices,
            help=self.help,
        )


# The one table from flags to the library's fitting options (FitOptions.make): the
# library validates and defaults them; the flags only parse.
FIT_FLAGS: tuple[Flag, ...] = (
    Flag(("--steps",), "num_steps", int_range(0, 10**9), None, "SQ steps (default: tuned)"),
    Flag(
        ("--batch-size",),
        "batch_size",
        int_range(1, 1 << 24),
        None,
        "pixels per SQ step (default: tuned)",
    ),
    Flag(
        ("--optimizer",),
        "optimizer",
        str,
        "adam",
        "SQ optimizer (default adam)",
        _names.OPTIMIZERS,
    ),
    Flag(
        ("--lr",),
        "learning_rate",
        positive_float,
        None,
        "starting learning rate (default: tuned per optimizer and k)",
    ),
    Flag(
        ("--rank",),
        "rank",
        rank,
        2.0,
        "exponent r of the objective E min|x - y|^r (default 2 = k-means)",
    ),
    Flag(
        ("--init",),
        "init",
        str,
        "kmeans++",
        "palette seeding (default kmeans++)",
        _names.INITIALIZERS,
    ),
    Flag(
        ("--lloyd-steps",),
        "num_lloyd_steps",
        int_range(0, 10**6),
        None,
        "exact k-means steps after SQ (default: 1 for rank 2, else 0)",
    ),
    Flag(
        ("--space",),
        "space",
        str,
        "rgb",
        "colour space of the fit (default rgb); cielab and oklab need mode vector",
        _names.SPACES,
    ),
    Flag(
        ("--fixed",),
        "fixed",
        str,
        None,
        "colours the palette must hold exactly, as its first entries, e.g. "
        "'#ffffff,#000000' (#rrggbbaa with alpha); the others are fitted around them",
    ),
)


def fit_options(args: argparse.Namespace) -> dict[str, Any]:
    """The library's fitting options that the parsed flags set."""
    return {flag.option: getattr(args, flag.option) for flag in FIT_FLAGS}


def _add_fit_flags(p: argparse.ArgumentParser, *, mode: bool = True) -> None:
    group = p.add_argument_group("fitting (jaxquant.quantize options)")
    for flag in FIT_FLAGS:
        flag.add(group)  # type: ignore[arg-type]
    if not mode:
        return
    group.add_argument(
        "--mode",
        choices=_names.MODES,
        default="vector",
        help="vector: k colours (default); channel: k levels per channel; "
        "global: k levels shared by all channels",
    )


def _add_distributed(p: argparse.ArgumentParser, what: str) -> None:
    dist = p.add_argument_group(f"several processes (jax.distributed): {what}")
    dist.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0")
    dist.add_argument("--num-processes", type=int_range(1, 1 << 16), help="processes in the job")
    dist.add_argument("--process-id", type=int_range(0, (1 << 16) - 1), help="this process's index")


def _add_run_flags(p: argparse.ArgumentParser, *, verbose: bool = False) -> None:
    p.add_argument("--seed", type=int_range(0, MAX_SEED), default=0, help="random seed (default 0)")
    p.add_argument(
        "--cache-dir",
        default=None,
        help="persistent compilation cache ('' disables; default "
        "$JAXQUANT_CACHE_DIR or ~/.cache/jaxquant/xla)",
    )
    p.add_argument(
        "--threads",
        type=int_range(1, 4096),
        default=None,
        metavar="N",
        help="CPU compute threads (default: 1 for one image up to 1 MP, which keeps a busy "
        "machine from slowing it; one per core for larger images and for many images)",
    )
    p.add_argument(
        "-f",
        "--force",
        "--overwrite",
        dest="force",
        action="store_true",
        help="replace existing output files (refused by default; in batch mode they are "
        "skipped, so an interrupted run resumes)",
    )
    talk = p.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    if verbose:
        talk.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            help="also print the fit's options, where the time went, and the palette's use",
        )


def _k(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument(
        "-k", "--colors", dest="k", type=int_range(1, MAX_K), required=True, help=help_text
    )


def _allow_truncated(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-truncated",
        action="store_true",
        help="decode images whose data ends early (missing rows come out black) instead "
        "of refusing them",
    )


def _single_input(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "input", nargs="?", help="input image file (any format Pillow reads; - for stdin)"
    )
    _allow_truncated(p)
    p.add_argument("--sample", action="store_true", help="use the built-in sample photograph")
    p.add_argument(
        "--max-pixels",
        type=int_range(1, 1 << 40),
        default=None,
        help="refuse images with more pixels than this (default 178956970)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (no JAX import)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Colour quantization and image compression by Stochastic Quantization.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser(
        "compress",
        help="quantize images to k colours and write indexed PNGs",
        description="Quantize an image to K colours and write it as an indexed PNG; "
        "or many images (files or directories) into --out-dir.",
    )
    c.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="image files (any format Pillow reads), directories of images, or - for "
        "standard input",
    )
    c.add_argument(
        "--sample", action="store_true", help="use the built-in sample photograph as input"
    )
    c.add_argument(
        "-k",
        "--colors",
        dest="k",
        type=int_range(1, MAX_K),
        default=None,
        help="number of palette colours (1-256 for png/webp/gif output); required unless "
        "--quality is given (then the most colours it may use)",
    )
    c.add_argument(
        "-o",
        "--output",
        help="output file (one input): .png, .webp or .gif; - for standard output; DIR/ "
        "for DIR/<input name>.png",
    )
    c.add_argument(
        "--format",
        choices=_names.FORMATS + tuple(_names.FORMAT_ALIASES),
        default=None,
        help="png: indexed PNG, up to 256 colours; webp: lossless WebP; gif: GIF; rgb: the "
        "quantized image as a truecolour PNG (any -k, larger files). Default: from the "
        "output's suffix (.png, .webp, .gif), png for - and --out-dir",
    )
    c.add_argument(
        "--ext",
        metavar="SUFFIX",
        help="write each output next to its input, named <input stem>SUFFIX (e.g. "
        "-fs8.png, as pngquant does); instead of -o / --out-dir",
    )
    out = c.add_argument_group("output (pngquant's conventions)")
    out.add_argument(
        "--dither",
        choices=_names.DITHERS,
        default=None,
        help="none: nearest colours (default, smallest error and files); fs: "
        "Floyd-Steinberg error diffusion; ordered: blue-noise ordered dithering (the "
        "default for animations: it does not flicker)",
    )
    out.add_argument(
        "--dither-level",
        type=unit_interval,
        default=None,
        metavar="0..1",
        help="dithering strength (default 0.85 for fs, 1 for ordered; 0 = no dithering)",
    )
    out.add_argument(
        "--runs",
        type=runs_level,
        default=None,
        metavar="0..4",
        help="smaller files: a pixel keeps its left neighbour's colour when that adds at "
        "most LEVEL times the image's mean error (default 1 without dithering, for about "
        "10%% smaller PNGs; 0 = every pixel its exactly nearest colour). Not with --dither, "
        "--quality or animations",
    )
    out.add_argument(
        "--quality",
        metavar="MIN-MAX",
        help="instead of -k: the fewest colours (up to -k, default 256) that reach quality "
        "MAX (0-100, pngquant's scale); fail with exit code 99 if even then below MIN. "
        "MAX alone, MIN- and -MAX also work",
    )
    out.add_argument(
        "--speed",
        type=int_range(1, 10),
        default=None,
        help="1 (slowest, best) .. 10 (fastest, rougher): scales the SQ steps and adds "
        "Lloyd steps at 1-3 (default 4: the tuned defaults); --steps/--lloyd-steps win",
    )
    out.add_argument(
        "--skip-if-larger",
        action="store_true",
        help="do not write a result that is not smaller than the input file (exit code 98 "
        "for one file; counted as skipped in batch mode)",
    )
    out.add_argument(
        "--optimize",
        action="store_true",
        help="search harder for the smallest file, and run oxipng when installed "
        "(pip install 'jaxquant[optimize]')",
    )
    out.add_argument(
        "--strip",
        action="store_true",
        help="drop the input's colour metadata (ICC profile, gamma, sRGB) instead of "
        "copying it into the output",
    )
    out.add_argument(
        "--palette",
        metavar="FILE",
        help="remap to this palette instead of fitting one (.txt, .json, .gpl, or an "
        "image: a palette PNG's entries, any other image's colours), e.g. from "
        "'jaxquant palette'; replaces -k",
    )
    out.add_argument(
        "--keep-palette",
        action="store_true",
        help="write each PNG's palette exactly as --palette gives it, every entry in "
        "order, so that images share index values (default: reordered for size)",
    )
    anim = c.add_argument_group(
        "animations: an animated GIF, APNG or WebP input, or --frames, to one animation"
    )
    anim.add_argument(
        "--frames",
        action="store_true",
        help="the INPUTs (files, or the image files of directories, sorted by name) are "
        "the frames of one animation, written to -o as .gif, .png (APNG) or .webp",
    )
    anim.add_argument(
        "--frame-duration",
        type=int_range(1, 655_350),
        default=None,
        metavar="MS",
        help="milliseconds per frame (default: the input's own; 100 for --frames)",
    )
    anim.add_argument(
        "--per-frame-palette",
        action="store_true",
        help="fit a palette to each frame on its own (default: one palette for every "
        "frame, which is smaller and does not flicker)",
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
        type=int_range(1, 4096),
        default=8,
        help="most images per compiled call in batch mode (default 8)",
    )
    c.add_argument(
        "--workers",
        type=int_range(1, 256),
        default=None,
        help="threads reading and writing files in batch mode (default: CPU count, max 8)",
    )
    c.add_argument("--no-progress", action="store_true", help="no progress bar in batch mode")
    eng = c.add_argument_group("batch mode on a Ray cluster (pip install 'jaxquant[ray]')")
    eng.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process (default); ray: Ray Data actors, on the cluster at "
        "--address or a local Ray instance",
    )
    eng.add_argument("--address", metavar="ADDR", help="a Ray cluster's address (ray://...)")
    eng.add_argument(
        "--ray-actors",
        type=int_range(1, 100_000),
        default=2,
        help="Ray actors compressing at once (default 2: while one computes, the other "
        "decodes and encodes; each loads its programs once)",
    )
    eng.add_argument(
        "--ray-gpus",
        type=gpus,
        default=0.0,
        help="GPUs per Ray actor (default 0)",
    )
    c.add_argument(
        "--max-pixels",
        type=int_range(1, 1 << 40),
        default=None,
        help="refuse images with more pixels than this, checked from the file header "
        "(default 178956970, Pillow's decompression-bomb limit)",
    )
    _allow_truncated(c)
    _add_distributed(c, "each takes its own share of the files")
    _add_fit_flags(c)
    _add_run_flags(c, verbose=True)
    c.add_argument(
        "--animate-steps",
        metavar="GIF",
        help="also write the palette converging over the SQ steps as an animated GIF "
        "(one input, mode vector)",
    )
    c.add_argument(
        "--animate-frames",
        type=int_range(1, 10_000),
        default=20,
        help="frames of --animate-steps after the seeding one (default 20)",
    )

    pal = sub.add_parser(
        "palette",
        help="one palette of K colours for many images, written to a palette file",
        description="Fit one palette of K colours to every image given (files and "
        "directories of images), streaming them so that memory holds one image at a time, "
        "and write it as a palette file (.txt, .json, .gpl, or a swatch .png) for "
        "'jaxquant compress --palette'.",
    )
    pal.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files or directories of images"
    )
    _k(pal, "number of palette colours")
    pal.add_argument(
        "-o",
        "--output",
        required=True,
        help="palette file: .txt, .json, .gpl or .png (a swatch image, up to 256 colours); "
        "- for .txt lines on standard output",
    )
    pal.add_argument(
        "-r", "--recursive", action="store_true", help="descend into subdirectories of inputs"
    )
    pal.add_argument(
        "--sample-size",
        type=int_range(1, 1 << 26),
        default=None,
        help="pixels sampled (by weight, over all images) for the fit (default 262144)",
    )
    pal.add_argument(
        "--passes",
        type=int_range(0, 1000),
        default=None,
        help="exact k-means passes over every pixel of every image after the fit "
        "(default 2; each reads the images again)",
    )
    _add_distributed(pal, "each reads its own share of the files, all fit one palette")
    _add_fit_flags(pal, mode=False)
    _add_run_flags(pal)

    cmp = sub.add_parser(
        "compare",
        help="original | quantized | palette side by side, as an image",
        description="Quantize an image to K colours and draw original | quantized | "
        "palette swatch, captioned with K, MSE, PSNR and the indexed PNG's size.",
    )
    _single_input(cmp)
    _k(cmp, "number of palette colours (levels per channel for --mode channel)")
    cmp.add_argument(
        "-o", "--output", required=True, help="output image (.png, .gif, .jpg, .webp, ...)"
    )
    cmp.add_argument(
        "--histogram",
        metavar="PATH",
        help="also write intensity histograms before/after (pooled over channels for "
        "--mode global) as an image",
    )
    _add_fit_flags(cmp)
    _add_run_flags(cmp)

    s = sub.add_parser(
        "sweep",
        help="an animation across K, and a chart of errors and size vs K",
        description="Quantize an image for each K and write an animated GIF with one "
        "frame per K (and, with --plot, MSE/PSNR and file size against K).",
    )
    _single_input(s)
    s.add_argument(
        "--ks",
        type=int_range(1, 256),
        nargs="+",
        default=[2, 4, 8, 16, 32, 64],
        metavar="K",
        help="palette sizes, 1-256 (default 2 4 8 16 32 64)",
    )
    s.add_argument("-o", "--output", required=True, help="output .gif")
    s.add_argument(
        "--plot", metavar="PATH", help="chart of MSE/PSNR and size vs K (needs matplotlib)"
    )
    s.add_argument(
        "--duration",
        type=int_range(1, 60_000),
        default=700,
        help="milliseconds per frame (default 700)",
    )
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_fit_flags(s)
    _add_run_flags(s)
    return parser
