"""The ``jaxquant`` command line: ``compress``, ``palette``, ``compare`` and ``sweep``.

Thin: parse (:mod:`jaxquant.cli._parser`, no JAX import, so ``--help`` answers at once),
call the public library, write through :mod:`jaxquant.io`, report. One module per
command: :mod:`~jaxquant.cli.compress` (one file), :mod:`~jaxquant.cli.batch` (many
files), :mod:`~jaxquant.cli.palette` (one palette for many images),
:mod:`~jaxquant.cli.compare`, :mod:`~jaxquant.cli.sweep`.

Exit codes: 0 success; 1 batch mode finished but some files failed; 2 usage or input
error (one line on stderr, no traceback); 98 ``--skip-if-larger`` kept the input (one
file); 99 ``--quality`` could not reach its minimum (one file); 130 interrupted (SIGINT,
Ctrl-C); 143 terminated (SIGTERM). ``docs/errors.md`` lists every message.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings

from jaxquant.cli._common import (
    STDIN,
    Terminated,
    UserError,
    cache_dir,
    display,
    enable_compilation_cache,
)
from jaxquant.cli._parser import DEFAULT_RUNS, PROG, build_parser

__all__ = ["console_main", "main"]


def _dithers(args) -> bool:
    """Whether the flags ask for dithering (``--dither-level 0`` is none)."""
    return args.dither not in (None, "none") and args.dither_level != 0


def _compress(args) -> int:
    if args.sample and args.inputs:
        raise UserError("give INPUT files or --sample, not both")
    if not args.sample and not args.inputs:
        raise UserError("give at least one INPUT file or directory, or --sample")
    if args.palette is not None:
        for flag, given in (
            ("-k", args.k is not None),
            ("--quality", args.quality is not None),
            ("--fixed", args.fixed is not None),
            ("--mode " + args.mode, args.mode != "vector"),
            ("--animate-steps", args.animate_steps is not None),
        ):
            if given:
                raise UserError(f"--palette gives the colours; {flag} does not go with it")
    elif args.keep_palette:
        raise UserError("--keep-palette keeps the colours of --palette FILE; give one")
    elif args.k is None and args.quality is None:
        raise UserError(
            "give the number of colours with -k K, or --quality MIN-MAX, or --palette FILE"
        )
    if args.quality is not None and args.mode != "vector":
        raise UserError("--quality chooses the colours of --mode vector only")
    if args.dither is not None and args.dither != "none" and args.mode != "vector":
        raise UserError("--dither takes --mode vector (a palette of colours)")
    if args.runs:  # given, above 0
        for flag, given in (
            ("--dither " + str(args.dither), _dithers(args)),
            ("--quality", args.quality is not None),
            ("--mode " + args.mode, args.mode != "vector"),
        ):
            if given:
                raise UserError(f"--runs trades error for smaller files; not with {flag}")
    if args.frames or _animated(args):
        from jaxquant.cli import animation

        if args.runs:
            raise UserError("--runs is for still images, not animations")
        return animation.run(args)
    if args.per_frame_palette or args.frame_duration is not None:
        raise UserError("--per-frame-palette and --frame-duration are for animations")
    args.dither = args.dither or "none"
    if args.runs is None:  # the default: on for exact nearest colours, which it trades
        exact = not _dithers(args) and args.quality is None and args.mode == "vector"
        args.runs = DEFAULT_RUNS if exact else 0.0
    if args.ext is not None and (args.output is not None or args.out_dir is not None):
        raise UserError("give --ext (outputs next to the inputs) or -o / --out-dir, not both")
    if args.ext is not None and ("/" in args.ext or os.sep in args.ext or not args.ext.strip(".")):
        raise UserError(f"--ext {args.ext!r}: a file-name suffix such as -fs8.png")
    if args.output is not None and args.out_dir is not None:
        raise UserError(
            "give -o (one output file) or --out-dir (a directory for many inputs), not both"
        )
    if STDIN in args.inputs and (len(args.inputs) > 1 or args.out_dir is not None):
        raise UserError("- (standard input) is one image: give it alone, with -o")
    single = args.sample or (
        len(args.inputs) == 1 and not os.path.isdir(args.inputs[0]) and args.out_dir is None
    )
    if args.sample and args.ext is not None:
        raise UserError("--ext writes next to the input; with --sample give -o")
    if single and args.engine != "local":
        raise UserError(f"--engine {args.engine} is for many inputs: give --out-dir DIR")
    if single:
        from jaxquant.cli import compress

        return compress.run(args)
    if args.output is not None:
        if len(args.inputs) == 1:
            raise UserError(
                f"{display(args.inputs[0])}: is a directory; give --out-dir to compress the "
                "images in it"
            )
        raise UserError("-o names one output file; for many inputs give --out-dir")
    if args.out_dir is None and args.ext is None:
        raise UserError("many inputs (or a directory) need --out-dir (or --ext)")
    from jaxquant.cli import batch

    return batch.run(args)


def _animated(args) -> bool:
    """Whether the one input is an animation (more than one frame) to write as one."""
    if args.sample or len(args.inputs) != 1 or args.inputs[0] == STDIN:
        return False
    if args.output is None or args.out_dir is not None or args.ext is not None:
        return False
    from jaxquant.io import frame_count

    return frame_count(args.inputs[0]) > 1


def _dispatch(args) -> int:
    if args.command == "compress":
        return _compress(args)
    if args.command == "palette":
        from jaxquant.cli import palette

        return palette.run(args)
    if args.command == "compare":
        from jaxquant.cli import compare

        return compare.run(args)
    from jaxquant.cli import sweep

    return sweep.run(args)


def _terminate(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """While running, SIGTERM raises :class:`Terminated` in the main thread (like Ctrl-C)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _attach_values(argv: list[str]) -> list[str]:
    """``--ext -fs8.png`` as ``--ext=-fs8.png``: pngquant's suffixes start with ``-``."""
    out: list[str] = []
    it = iter(argv)
    for a in it:
        if a == "--":
            out += [a, *it]
            break
        if a == "--ext":
            value = next(it, None)
            out.append(a if value is None else f"--ext={value}")
        else:
            out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    0: success; 1: batch mode finished but some files failed; 2: usage or input error
    (one line on stderr, no traceback); 130: interrupted (Ctrl-C); 143: terminated
    (SIGTERM). Either way finished outputs are complete and no temporary file stays.
    """
    args = build_parser().parse_args(_attach_values(sys.argv[1:] if argv is None else argv))
    with warnings.catch_warnings(), _sigterm_as_interrupt():
        # Pillow warns about recoverable damage (corrupt EXIF, oversized tags) and then
        # decodes the image; the CLI reports one line per problem, never warning text.
        warnings.filterwarnings("ignore", module="PIL")
        try:
            enable_compilation_cache(cache_dir(args.cache_dir))
            return _dispatch(args)
        except UserError as e:
            print(f"{PROG}: error: {e}", file=sys.stderr)
            return 2
        except Terminated:
            print(f"{PROG}: terminated", file=sys.stderr)
            return 143
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130


def console_main() -> None:
    """The ``jaxquant`` command: :func:`main`, then a fast exit.

    Once JAX is loaded, the interpreter's teardown (JAX's exit hooks, freeing every
    module) takes about 0.4 s, a sixth of a single-file run
    (``docs/benchmarks-startup.md``). By the time :func:`main` returns, every output is
    complete, closed and renamed into place and every worker thread has finished, so the
    command flushes the standard streams and leaves with ``os._exit``. Set
    ``JAXQUANT_SLOW_EXIT=1`` to exit normally (for profilers and coverage tools, which
    write their data at exit).
    """
    code = main()
    if "jax" not in sys.modules or os.environ.get("JAXQUANT_SLOW_EXIT"):
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)
