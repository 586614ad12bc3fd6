"""What every command shares: the user-error type, inputs, outputs, the compile cache."""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

__all__ = [
    "UserError",
    "cache_dir",
    "enable_compilation_cache",
    "image_suffixes",
    "input_path",
    "load_input",
    "output",
    "sample_path",
]


class UserError(Exception):
    """An error caused by the user's input: reported on one line, exit code 2."""


def sample_path() -> Path:
    """The built-in sample photograph (CQ100, CC0; ``jaxquant/data/ATTRIBUTION.md``)."""
    return Path(str(resources.files("jaxquant") / "data" / "sample.png"))


def cache_dir(flag: str | None) -> str | None:
    """The persistent compilation cache directory: the flag, the environment or the default."""
    if flag is not None:
        return flag or None
    env = os.environ.get("JAXQUANT_CACHE_DIR")
    if env is not None:
        return env or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxquant", "xla")


_CACHE_SETTINGS = {
    "jax_persistent_cache_min_compile_time_secs": 0.0,
    "jax_persistent_cache_min_entry_size_bytes": 0,
}


def enable_compilation_cache(path: str | None) -> None:
    """Turn on JAX's persistent compilation cache so a second run starts warm.

    Before JAX is imported this only sets JAX's environment variables, so a command that
    fails on its arguments never pays for importing JAX.
    """
    if not path:
        return
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return  # an unwritable cache only costs compile time; never fail the run for it
    settings = {"jax_compilation_cache_dir": path, **_CACHE_SETTINGS}
    if "jax" in sys.modules:
        import jax

        for name, value in settings.items():
            jax.config.update(name, value)
    else:
        for name, value in settings.items():
            os.environ[name.upper()] = str(value)


def load_input(path: Path, *, max_pixels: int | None = None):
    """Read an input image; a bad file is a :class:`UserError` naming it."""
    from jaxquant.io import ImageReadError, load_image

    try:
        return load_image(path, max_pixels=max_pixels)
    except ImageReadError as e:
        raise UserError(str(e)) from None


def input_path(args) -> Path:
    """The single input of ``compare``/``sweep``: INPUT or ``--sample``, exactly one."""
    if args.sample == (args.input is not None):
        raise UserError("give exactly one of INPUT or --sample")
    return sample_path() if args.sample else Path(args.input)


def output(path, *, inputs=(), force: bool = False, suffixes=None) -> Path:
    """:func:`jaxquant.io.check_output`, failing as a :class:`UserError`."""
    from jaxquant.io import OutputError, check_output

    try:
        return check_output(path, inputs=inputs, force=force, suffixes=suffixes)
    except OutputError as e:
        raise UserError(str(e)) from None


def image_suffixes() -> tuple[str, ...]:
    """The suffixes Pillow can write (for report images)."""
    from PIL import Image

    Image.init()
    return tuple(sorted(s for s, fmt in Image.EXTENSION.items() if fmt in Image.SAVE))
