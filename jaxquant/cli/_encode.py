"""Output formats of ``jaxquant compress``: from the flag or the suffix; writing a result.

JAX-free: the format of every output is settled (and refused with one line) before any
work; :func:`write` encodes through :func:`jaxquant.io.encode` and honours
``--skip-if-larger``.
"""

from __future__ import annotations

import os
from pathlib import Path

from jaxquant import _names
from jaxquant.cli._common import UserError, display

__all__ = ["SUFFIXES", "Written", "output_format", "suffixes_for", "write"]

SUFFIXES = _names.SUFFIXES
"""The file suffix of each output format."""

_BY_SUFFIX = _names.FORMAT_BY_SUFFIX


def canonical(fmt: str | None) -> str | None:
    """A format by its current name (``"indexed"`` is ``"png"``)."""
    return None if fmt is None else _names.FORMAT_ALIASES.get(fmt, fmt)


def suffixes_for(fmt: str | None) -> tuple[str, ...]:
    """The suffixes an output of ``fmt`` may have (any of ours for ``None``)."""
    fmt = canonical(fmt)
    return tuple(_BY_SUFFIX) if fmt is None else (SUFFIXES[fmt],)


def output_format(path, fmt: str | None) -> str:
    """The format an output is written in: the flag, else its suffix (``-``: png).

    Raises:
      UserError: when the flag and the suffix disagree.
    """
    fmt = canonical(fmt)
    name = os.fspath(path)
    if name == "-":
        return fmt or "png"
    suffix = Path(name).suffix.lower()
    if fmt is None:
        if suffix not in _BY_SUFFIX:
            raise UserError(f"{display(path)}: name the output .png, .webp or .gif")
        return _BY_SUFFIX[suffix]
    if suffix != SUFFIXES[fmt]:
        raise UserError(
            f"{display(path)}: --format {fmt} writes {SUFFIXES[fmt]} files; name the output "
            f"{SUFFIXES[fmt]} or give another --format"
        )
    return fmt


class Written:
    """What :func:`write` did: ``size`` bytes encoded; ``skipped`` when not written."""

    def __init__(self, size: int, skipped: bool) -> None:
        self.size, self.skipped = size, skipped


def write(result, path, fmt: str, args, *, metadata=None, bytes_in: int | None = None) -> Written:
    """Encode a result and write it atomically (``-``: standard output).

    With ``args.skip_if_larger`` a result that is not smaller than ``bytes_in`` is not
    written (``Written.skipped``). ``OSError`` propagates; encoding errors (e.g. a GIF
    with translucent colours) are :class:`UserError`.
    """
    from jaxquant import io

    try:
        data = io.encode(
            result,
            format=fmt,
            optimize=args.optimize,
            metadata=metadata,
            keep_palette=getattr(args, "keep_palette", False),
        )
    except (ValueError, ImportError) as e:
        raise UserError(f"{display(path)}: {e}") from None
    if args.skip_if_larger and bytes_in is not None and len(data) >= bytes_in:
        return Written(len(data), True)
    if os.fspath(path) == io.STDOUT:
        io.write_stdout(data)
    else:
        with io.atomic_write(Path(path)) as tmp:
            tmp.write_bytes(data)
    return Written(len(data), False)
