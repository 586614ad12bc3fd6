"""Palette files and colour names: read, write and parse palettes (NumPy and Pillow only).

A palette is a ``(k, 3)`` (RGB) or ``(k, 4)`` (RGBA) uint8 array, the form
:func:`jaxquant.fit_palette` returns for uint8 images and :func:`jaxquant.remap` takes.
Files, chosen by suffix (:data:`PALETTE_SUFFIXES`):

- ``.txt``: one colour per line, ``#rrggbb``, ``#rrggbbaa``, ``#rgb`` or ``r g b [a]``
  (spaces or commas); blank lines and lines starting with ``;`` or ``//`` are comments.
- ``.json``: a list of colours, each a hex string or a list of 3-4 integers (or an
  object with that list under ``"palette"``).
- ``.gpl``: a GIMP palette (``GIMP Palette``, ``Name:``, ``Columns:``, ``# comments``,
  then ``r g b name`` lines); alpha is not stored.
- images (``.png``, ``.gif``, ``.webp``, ...): on reading, a palette image's entries in
  order (with their ``tRNS`` alpha), or for any other image its distinct colours (at
  most :data:`MAX_COLOURS`); on writing (``.png``, up to 256 colours), a swatch image:
  an indexed PNG of 16x16 squares, 16 a row, whose palette is exactly ``palette`` in
  order.

Errors are :class:`PaletteError` (a :class:`ValueError`), one line naming the file and,
for text files, the line.

Examples:
  >>> import numpy as np
  >>> parse_colours("#ffffff,#000,#ff000080").tolist()
  [[255, 255, 255, 255], [0, 0, 0, 255], [255, 0, 0, 128]]
  >>> parse_colours("#0a0b0c").tolist()
  [[10, 11, 12]]
  >>> print(format_colours(np.array([[255, 0, 16]], np.uint8)))
  #ff0010
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from jaxquant import _checks

__all__ = [
    "MAX_COLOURS",
    "PALETTE_SUFFIXES",
    "PaletteError",
    "format_colours",
    "match_image",
    "palette_bytes",
    "parse_colour",
    "parse_colours",
    "read_palette",
    "write_palette",
]

MAX_COLOURS = _checks.MAX_K
"""The most colours a palette file may hold (the most a palette may have)."""

TEXT_SUFFIXES = (".txt", ".json", ".gpl")
PALETTE_SUFFIXES = (*TEXT_SUFFIXES, ".png")
"""The suffixes :func:`write_palette` writes; :func:`read_palette` reads these and any
image Pillow opens."""

_SWATCH = 16  # pixels a side of one colour's square in a swatch image
_PER_ROW = 16
_HEX = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")


class PaletteError(ValueError):
    """A palette file or colour that cannot be read, with the file (and line) named."""


def parse_colour(text: str) -> tuple[int, ...]:
    """One colour: ``#rgb``, ``#rgba``, ``#rrggbb`` or ``#rrggbbaa`` (the ``#`` optional).

    Returns:
      ``(r, g, b)`` or ``(r, g, b, a)``, each 0-255.

    Raises:
      PaletteError: if ``text`` is not one of these forms.
    """
    match = _HEX.fullmatch(text.strip())
    if match is None:
        raise PaletteError(f"{text.strip()!r} is not a colour (#rrggbb, #rrggbbaa or #rgb)")
    digits = match.group(1)
    if len(digits) <= 4:
        digits = "".join(c * 2 for c in digits)
    return tuple(int(digits[i : i + 2], 16) for i in range(0, len(digits), 2))


def _stack(colours: list[tuple[int, ...]], where: str) -> np.ndarray:
    """Colours of 3 or 4 values as one uint8 array (RGBA if any has alpha)."""
    if not colours:
        raise PaletteError(f"{where}: no colours")
    if len(colours) > MAX_COLOURS:
        raise PaletteError(f"{where}: {len(colours):,} colours, more than {MAX_COLOURS:,}")
    if any(len(c) == 4 for c in colours):
        colours = [c if len(c) == 4 else (*c, 255) for c in colours]
    return np.array(colours, np.uint8)


def parse_colours(text: str) -> np.ndarray:
    """Comma-separated colours (``'#ffffff,#000000'``) as a ``(n, 3)`` or ``(n, 4)`` array.

    The result is RGBA (opaque where no alpha was given) when any colour has alpha.
    """
    parts = [p for p in text.split(",") if p.strip()]
    return _stack([parse_colour(p) for p in parts], "the colour list")


def format_colours(palette) -> str:
    """A palette as ``.txt`` lines: ``#rrggbb`` (``#rrggbbaa`` for RGBA), one a line."""
    palette = _as_palette(palette, "palette")
    return "\n".join("#" + bytes(row).hex() for row in palette)


def match_image(image, palette) -> tuple[np.ndarray, np.ndarray]:
    """An image and a palette file's colours made to fit each other, for remapping.

    Palettes are RGB or RGBA, so a grey image becomes RGB; if either has alpha, both do
    (an image without alpha is fully opaque, a palette without alpha too). The pixels
    and the colours are otherwise unchanged.

    Args:
      image: ``(H, W, C)`` uint8 or float image, ``C`` 1-4.
      palette: ``(k, 3)`` or ``(k, 4)`` colours (uint8, or floats in ``[0, 1]``).

    Returns:
      ``(image, palette)`` with the same channels (3 or 4) and the image's dtype kind.

    Examples:
      >>> im, pal = match_image(np.zeros((1, 2, 1), np.uint8), np.array([[9, 9, 9, 128]]))
      >>> im.shape, pal.tolist()
      ((1, 2, 4), [[9, 9, 9, 128]])
    """
    pal = _as_palette(palette, "palette")
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    c = arr.shape[2]
    colour, alpha = arr[..., : 1 if c <= 2 else 3], arr[..., (1 if c <= 2 else 3) :]
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    with_alpha = alpha.shape[2] == 1 or pal.shape[1] == 4
    if with_alpha and alpha.shape[2] == 0:
        full = 255 if arr.dtype == np.uint8 else 1.0
        alpha = np.full(arr.shape[:2] + (1,), full, arr.dtype)
    if with_alpha and pal.shape[1] == 3:
        pal = np.concatenate([pal, np.full((pal.shape[0], 1), 255, np.uint8)], axis=1)
    out = np.concatenate([colour, alpha], axis=2) if with_alpha else colour
    return out, pal


def _as_palette(palette, what: str) -> np.ndarray:
    """``palette`` as a ``(k, 3|4)`` uint8 array (floats in [0, 1] are scaled)."""
    arr = np.asarray(palette)
    if arr.ndim != 2 or arr.shape[1] not in (3, 4) or arr.shape[0] < 1:
        raise ValueError(f"{what} must be a (k, 3) or (k, 4) array of colours, got {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"{what}: float colours must be finite and in [0, 1]")
        return np.round(arr * 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer) and arr.min() >= 0 and arr.max() <= 255:
        return arr.astype(np.uint8)
    raise ValueError(f"{what} must be uint8, integers in 0..255 or floats in [0, 1]")


def _numbers(text: str, where: str) -> tuple[int, ...]:
    values = [v for v in re.split(r"[\s,]+", text.strip()) if v]
    try:
        numbers = tuple(int(v) for v in values)
    except ValueError:
        raise PaletteError(f"{where}: {text.strip()!r} is not a colour") from None
    if len(numbers) not in (3, 4) or not all(0 <= v <= 255 for v in numbers):
        raise PaletteError(f"{where}: {text.strip()!r} is not 3 or 4 numbers in 0..255")
    return numbers


def _read_txt(text: str, name: str) -> np.ndarray:
    colours = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith((";", "//")):
            continue
        where = f"{name} line {number}"
        if line.startswith("#") or _HEX.fullmatch(line) and not re.search(r"[\s,]", line):
            try:
                colours.append(parse_colour(line))
            except PaletteError as e:
                raise PaletteError(f"{where}: {e}") from None
        else:
            colours.append(_numbers(line, where))
    return _stack(colours, name)


def _read_json(text: str, name: str) -> np.ndarray:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise PaletteError(f"{name}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if isinstance(data, dict):
        data = data.get("palette")
    if not isinstance(data, list):
        raise PaletteError(f"{name}: expected a list of colours (or {{'palette': [...]}})")
    colours = []
    for i, item in enumerate(data):
        where = f"{name} entry {i}"
        if isinstance(item, str):
            try:
                colours.append(parse_colour(item))
            except PaletteError as e:
                raise PaletteError(f"{where}: {e}") from None
        elif (
            isinstance(item, list)
            and len(item) in (3, 4)
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in item)
        ):
            colours.append(tuple(item))
        else:
            raise PaletteError(f"{where}: {item!r} is not a colour (a hex string or 3-4 ints)")
    return _stack(colours, name)


def _read_gpl(text: str, name: str) -> np.ndarray:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "GIMP Palette":
        raise PaletteError(f"{name}: not a GIMP palette (the first line must be 'GIMP Palette')")
    colours = []
    for number, line in enumerate(lines[1:], 2):
        line = line.strip()
        if not line or line.startswith("#") or re.match(r"(Name|Columns)\s*:", line):
            continue
        fields = line.split(None, 3)
        colours.append(_numbers(" ".join(fields[:3]), f"{name} line {number}"))
    return _stack(colours, name)


def _read_image(path: str, name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode == "P":
                raw = im.getpalette() or []
                rgb = np.array(raw, np.uint8).reshape(-1, 3)
                trns = im.info.get("transparency")
                if isinstance(trns, bytes):
                    alpha = np.full(len(rgb), 255, np.uint8)
                    alpha[: len(trns)] = np.frombuffer(trns, np.uint8)[: len(rgb)]
                    return np.concatenate([rgb, alpha[:, None]], axis=1)
                if isinstance(trns, int) and 0 <= trns < len(rgb):
                    alpha = np.full(len(rgb), 255, np.uint8)
                    alpha[trns] = 0
                    return np.concatenate([rgb, alpha[:, None]], axis=1)
                return rgb
            has_alpha = "A" in im.getbands() or "transparency" in im.info
            pixels = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise PaletteError(f"{name}: not a palette file or an image Pillow reads ({e})") from None
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    if len(colours) > MAX_COLOURS:
        raise PaletteError(
            f"{name}: has {len(colours):,} distinct colours; a palette image has at most "
            f"{MAX_COLOURS:,}"
        )
    return colours


def read_palette(path) -> np.ndarray:
    """The palette in a ``.txt``, ``.json`` or ``.gpl`` file or an image (see the module).

    Returns:
      ``(k, 3)`` uint8, or ``(k, 4)`` when the file gives alpha.

    Raises:
      PaletteError: the file cannot be read or holds no valid palette (one line, naming
        the file and, for text files, the line).
    """
    name = os.fspath(path)
    suffix = Path(name).suffix.lower()
    if suffix in TEXT_SUFFIXES:
        try:
            with open(name, encoding="utf-8-sig") as f:
                text = f.read(1 << 26)
        except UnicodeDecodeError:
            raise PaletteError(f"{name}: not a text file (UTF-8)") from None
        except OSError as e:
            raise PaletteError(f"{name}: cannot read ({e.strerror or e})") from None
        reader = {".txt": _read_txt, ".json": _read_json, ".gpl": _read_gpl}[suffix]
        return reader(text, name)
    if not os.path.isfile(name):
        raise PaletteError(f"{name}: no such file" if not os.path.exists(name) else
                           f"{name}: not a regular file")  # fmt: skip
    return _read_image(name, name)


def palette_bytes(palette, suffix: str, *, name: str = "palette") -> bytes:
    """The file :func:`write_palette` writes for ``suffix``, as bytes."""
    palette = _as_palette(palette, "palette")
    suffix = suffix.lower()
    if suffix == ".txt":
        return (format_colours(palette) + "\n").encode()
    if suffix == ".json":
        hexes = ["#" + bytes(row).hex() for row in palette]
        return (json.dumps(hexes, indent=0) + "\n").encode()
    if suffix == ".gpl":
        lines = ["GIMP Palette", f"Name: {name}", f"Columns: {_PER_ROW}", "#"]
        if palette.shape[1] == 4:
            lines.insert(3, "# alpha is not stored in a GIMP palette")
        lines += [f"{r:3d} {g:3d} {b:3d}\t#{r:02x}{g:02x}{b:02x}" for r, g, b in palette[:, :3]]
        return ("\n".join(lines) + "\n").encode()
    if suffix not in PALETTE_SUFFIXES:
        raise ValueError(
            f"unknown palette file suffix {suffix!r}; use one of {', '.join(PALETTE_SUFFIXES)}"
        )
    return _swatch(palette)


def _swatch(palette: np.ndarray) -> bytes:
    import io as _io

    from PIL import Image

    k = len(palette)
    if k > 256:
        raise ValueError(
            f"a palette image holds at most 256 colours; write {k} colours as .txt, .json or .gpl"
        )
    rows = -(-k // _PER_ROW)
    cols = min(k, _PER_ROW)
    cells = np.arange(rows * cols).reshape(rows, cols)
    cells = np.where(cells < k, cells, k - 1).astype(np.uint8)  # the last row is filled in
    pixels = np.repeat(np.repeat(cells, _SWATCH, axis=0), _SWATCH, axis=1)
    im = Image.fromarray(pixels, "L").convert("P")  # "L" keeps the values as indices
    im.putpalette(palette[:, :3].tobytes(), "RGB")
    params: dict = {"optimize": False}
    if palette.shape[1] == 4:
        params["transparency"] = palette[:, 3].tobytes()
    buffer = _io.BytesIO()
    im.save(buffer, format="PNG", **params)
    return buffer.getvalue()


def write_palette(path, palette) -> None:
    """Write ``palette`` to ``path``, in the format of its suffix (see the module).

    The write is atomic (:func:`jaxquant.io.atomic_write`); ``"-"`` writes ``.txt``
    lines to standard output. Floats in ``[0, 1]`` are rounded to uint8.

    Raises:
      ValueError: an unknown suffix, or more than 256 colours for a ``.png``.
      OSError: the file cannot be written.
    """
    from jaxquant import io

    name = os.fspath(path)
    suffix = ".txt" if name == "-" else Path(name).suffix
    data = palette_bytes(palette, suffix, name=Path(name).stem if name != "-" else "palette")
    if name == "-":
        io.write_stdout(data)
        return
    with io.atomic_write(name) as tmp:
        tmp.write_bytes(data)
