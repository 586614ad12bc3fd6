"""What every command shares: the user-error type, inputs, outputs, the compile cache."""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

from jaxquant.io import display  # JAX-free, like this module

__all__ = [
    "STDIN",
    "Terminated",
    "UserError",
    "display",
    "shown",
    "stem",
    "cache_dir",
    "enable_compilation_cache",
    "image_suffixes",
    "input_path",
    "load_input",
    "quality_flag",
    "output",
    "sample_path",
    "check_distributed",
    "palette_flag",
    "read_palette_flag",
    "start_distributed",
    "image_threads",
    "start_threads",
]


class UserError(Exception):
    """An error caused by the user's input: reported on one line, exit code 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread and handled like Ctrl-C (exit code 143)."""


STDIN = "-"
"""The INPUT name that means standard input (and ``-o -`` standard output)."""


def sample_path() -> Path:
    """The built-in sample photograph (CQ100, CC0; ``jaxquant/data/ATTRIBUTION.md``)."""
    return Path(str(resources.files("jaxquant") / "data" / "sample.png"))


def cache_dir(flag: str | None) -> str | None:
    """The compilation cache directory: the flag, the environment or the default."""
    from jaxquant._cache import default_cache_dir

    if flag is not None:
        return flag or None
    return default_cache_dir() or None


# One image up to this many pixels computes on one thread by default (``--threads``):
# its programs are loops of small steps that a second thread does not speed up and a
# busy core slows down. Larger images spend their time assigning every pixel, which
# every core speeds up (2-core machine, K = 256, idle, one thread vs two: 2 MP 0.37 vs
# 0.33 s, 12 MP 0.96 vs 0.90 s, 24 MP 1.82 vs 1.66 s; 0.4 MP level at 0.13 s).
SINGLE_THREAD_PIXELS = 1 << 20


def image_threads(image) -> int | None:
    """The default compute threads for one image: 1 up to :data:`SINGLE_THREAD_PIXELS`
    pixels, one per core (``None``) above."""
    import numpy as np

    shape = np.shape(image)
    return 1 if int(np.prod(shape[:2])) <= SINGLE_THREAD_PIXELS else None


def start_threads(args, default: int | None) -> None:
    """Start JAX's CPU backend with ``--threads`` compute threads, or ``default``
    (``None``: one per core) when the flag is not given (:func:`jaxquant.set_cpu_threads`).

    A no-op once JAX's backends have started (a test or a caller in the same process).
    """
    from jaxquant._threads import set_cpu_threads

    threads = getattr(args, "threads", None)
    threads = default if threads is None else threads
    try:
        set_cpu_threads(threads)
    except RuntimeError:
        pass


def enable_compilation_cache(path: str | None) -> None:
    """Keep compiled programs on disk so a second run starts warm
    (:func:`jaxquant.enable_compilation_cache`; before JAX is imported this only sets
    JAX's environment variables, so a command that fails on its arguments never pays for
    importing JAX)."""
    from jaxquant._cache import enable_compilation_cache as enable

    if path:
        enable(path)


def load_input(path: Path, args):
    """Read an input image (``-``: standard input): ``(image, bytes read)``.

    A bad file is a :class:`UserError` naming it. Uses ``args.max_pixels`` and
    ``args.allow_truncated``.
    """
    import io

    from jaxquant.io import ImageReadError, check_input, load_image

    options = dict(max_pixels=args.max_pixels, allow_truncated=args.allow_truncated)
    try:
        if os.fspath(path) == STDIN:
            if sys.stdin is None or sys.stdin.isatty():
                raise UserError("-: standard input is a terminal; pipe an image into it")
            data = sys.stdin.buffer.read()
            stream = io.BytesIO(data)
            stream.name = "-"  # named in error messages
            return load_image(stream, **options), len(data)
        checked = check_input(path)
        size = checked.stat().st_size
        return load_image(checked, **options), size
    except ImageReadError as e:
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"{display(path)}: cannot read ({e.strerror or e})") from None


def input_path(args) -> Path:
    """The single input of ``compare``/``sweep``: INPUT or ``--sample``, exactly one."""
    if args.sample == (args.input is not None):
        raise UserError("give exactly one of INPUT or --sample")
    return sample_path() if args.sample else Path(args.input)


def shown(given: str, name: str) -> str:
    """An output as the user named it (``DIR/`` with the file name it gets)."""
    return os.path.join(given, name) if given.endswith(("/", os.sep)) else given


def stem(path: Path) -> str:
    """The output name stem for an input (``stdin`` for ``-``)."""
    return "stdin" if os.fspath(path) == STDIN else path.stem


def output(
    path,
    *,
    inputs=(),
    others=(),
    force: bool = False,
    suffixes=None,
    name: str | None = None,
    stdout: bool = True,
) -> Path:
    """:func:`jaxquant.io.check_output`, failing as a :class:`UserError`.

    Standard output (``-``) is refused when it is a terminal (binary data) or already
    taken by another output of the run.
    """
    from jaxquant.io import STDOUT, OutputError, check_output

    try:
        checked = check_output(
            path,
            inputs=inputs,
            others=others,
            force=force,
            suffixes=suffixes,
            name=name,
            stdout=stdout,
        )
    except OutputError as e:
        raise UserError(str(e)) from None
    if os.fspath(checked) == STDOUT:
        if any(os.fspath(o) == STDOUT for o in others):
            raise UserError(f"{display(path)}: standard output is already another output")
        if sys.stdout is None or sys.stdout.isatty():
            raise UserError(
                f"{display(path)}: standard output is a terminal; redirect it to a file "
                "or a pipe (binary image data)"
            )
    return checked


def image_suffixes() -> tuple[str, ...]:
    """The suffixes Pillow can write (for report images)."""
    from PIL import Image

    Image.init()
    return tuple(sorted(s for s, fmt in Image.EXTENSION.items() if fmt in Image.SAVE))


def quality_flag(text: str | None):
    """``--quality`` as a :class:`jaxquant.quality.Quality` (``None`` when not given).

    Raises:
      UserError: for a value :func:`jaxquant.quality.parse_quality` refuses.
    """
    if text is None:
        return None
    from jaxquant.quality import parse_quality  # JAX-free

    try:
        return parse_quality(text)
    except ValueError as e:
        raise UserError(f"--quality {text}: {e}") from None


def check_distributed(args) -> bool:
    """Whether ``--coordinator``, ``--num-processes`` and ``--process-id`` ask for a
    ``jax.distributed`` job (all three, consistent, or none)."""
    given = (args.coordinator, args.num_processes, args.process_id)
    if all(v is None for v in given):
        return False
    if any(v is None for v in given):
        raise UserError("--coordinator, --num-processes and --process-id go together")
    if args.process_id >= args.num_processes:
        raise UserError(
            f"--process-id {args.process_id} must be below --num-processes {args.num_processes}"
        )
    return True


def start_distributed(args) -> None:
    """Join the ``jax.distributed`` job the flags name (:func:`check_distributed` first)."""
    import jax

    try:
        jax.distributed.initialize(
            coordinator_address=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
        )
    except Exception as e:  # noqa: BLE001 - any failure here is the user's setup
        raise UserError(f"--coordinator {args.coordinator}: cannot start ({e})") from None


def read_palette_flag(path: str):
    """The colours of ``--palette FILE`` (uint8 ``(k, 3|4)``), or a :class:`UserError`."""
    from jaxquant import palettes

    try:
        return palettes.read_palette(path)
    except ValueError as e:  # PaletteError and image errors name the file
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"{display(path)}: cannot read ({e.strerror or e})") from None


def palette_flag(args, fmt: str):
    """``--palette FILE`` read and checked against the output format (``None`` if not
    given); ``--keep-palette`` checked too."""
    given = None if args.palette is None else read_palette_flag(args.palette)
    if given is not None and fmt != "rgb" and len(given) > 256:
        raise UserError(
            f"{display(args.palette)}: {len(given):,} colours; {fmt} holds at most 256 "
            "(--format rgb writes a truecolour PNG)"
        )
    if args.keep_palette and fmt != "png":
        raise UserError(f"--keep-palette keeps a PNG's palette; {fmt} output has none to keep")
    return given
