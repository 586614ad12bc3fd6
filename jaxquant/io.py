"""Reading images and writing quantized ones: every output format, written atomically.

One writer for results, :func:`save` (indexed or truecolour PNG: ``format``), one for
any PIL image such as a report (:func:`save_image`, the format from the suffix), both on
:func:`atomic_write`: a reader never sees half a file, and a failed write leaves the
previous file as it was.
"""

from __future__ import annotations

import contextlib
import functools
import io as _io
import os
import tempfile
from pathlib import Path

import numpy as np

from jaxquant import _checks, _names

__all__ = [
    "FORMATS",
    "ImageReadError",
    "MAX_PIXELS",
    "OutputError",
    "atomic_write",
    "check_output",
    "encode",
    "image_format",
    "load_image",
    "remove_stale_temps",
    "save",
    "save_image",
    "save_png",
    "to_pil",
]

FORMATS = _names.FORMATS
"""Encodings of :func:`save`: ``"indexed"`` (palette PNG) and ``"rgb"`` (truecolour PNG)."""


class ImageReadError(ValueError):
    """An input file could not be read as an image; the message names the file."""


class OutputError(ValueError):
    """An output path is refused (see :func:`check_output`); the message names it."""


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(
    path: str | os.PathLike,
    *,
    inputs=(),
    force: bool = False,
    suffixes: tuple[str, ...] | None = None,
) -> Path:
    """Check an output path before any work is done, and create its directory.

    The rules, the same for every command and every output of a run:

    - an output that is one of the ``inputs`` (the same file, through any link) is
      refused, ``force`` or not: jaxquant never modifies an input;
    - an existing directory is refused;
    - ``suffixes`` (lower case, e.g. ``(".png",)``), when given, must include the
      path's: a file holds what its name says;
    - an existing file is refused unless ``force``;
    - a missing parent directory is created.

    Args:
      path: the output path.
      inputs: the run's input files.
      force: allow replacing an existing file.
      suffixes: the suffixes this output may have.

    Returns:
      The path.

    Raises:
      OutputError: naming the path and the reason.
    """
    path = Path(path)
    for src in inputs:
        if _same_file(path, Path(src)):
            raise OutputError(f"{path}: is an input file; jaxquant never replaces an input")
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; give an output file name")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise OutputError(
            f"{path}: the output must be named {' or '.join(suffixes)} "
            f"(got {path.suffix or 'no suffix'!r})"
        )
    if path.exists() and not force:
        raise OutputError(f"{path}: exists; pass --force to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{path.parent}: cannot create ({e.strerror or e})") from None
    return path


# Pillow's own limit (``Image.MAX_IMAGE_PIXELS``, 89.5 MP) warns from there and refuses
# twice that. jaxquant's default is Pillow's hard limit, so a 100-MP panorama goes
# through without a warning; a photo-like 8-bit RGB image needs about 50 bytes per pixel
# at peak (benchmarks/bench_memory.py), so the default needs about 9 GB at most.
MAX_PIXELS = 178_956_970
"""Default ``max_pixels`` of :func:`load_image` (and ``--max-pixels``): 2 x 89,478,485."""

# Peak bytes per pixel of load + quantize + save, measured by benchmarks/bench_memory.py
# (rounded up): a declared size needing more than the machine's memory is refused.
_BYTES_PER_PIXEL = 64


def load_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as a uint8 array of shape (H, W, C).

    What each kind of image gives (docs/errors.md has the full table):

    - 1-bit, 8-bit and 16-bit grayscale: ``C = 1``; 16-bit samples are rounded to
      8 bits (``round(v · 255 / 65535)``).
    - RGB, CMYK, YCbCr, LAB, HSV and palette images without transparency: RGB (``C = 3``).
      16-bit RGB PNGs arrive from Pillow as the high byte of each sample (truncated,
      error below one level).
    - Images with an alpha channel or palette transparency (RGBA, LA, PA, P with
      ``tRNS``): RGBA (``C = 4``) if any pixel is not fully opaque, else RGB. The colour
      of fully transparent pixels is invisible and set to 0, so that it cannot pull
      palette colours or take palette entries.
    - The EXIF orientation is applied.
    - Multi-frame files (animated GIF/PNG/WebP, multi-page TIFF) are refused: one
      indexed PNG holds one frame. Camera MPO files (a JPEG with embedded previews)
      give their first, primary picture.
    - 32-bit float images and 32-bit integer ones outside 0..65535 are refused.

    The size is checked from the header, before any pixel is decoded.

    Args:
      path: the file.
      max_pixels: refuse images with more pixels than this (default :data:`MAX_PIXELS`,
        about 179 MP). A value above Pillow's ``Image.MAX_IMAGE_PIXELS`` raises that
        process-wide limit to it, since Pillow would refuse the image first. Whatever
        the limit, an image whose declared size needs more memory than the machine
        has is refused.

    Returns:
      A ``(H, W, C)`` uint8 NumPy array.

    Raises:
      ImageReadError: if the file is missing, unreadable, too large or not a supported
        image; the message starts with the path.

    Examples:
      >>> import numpy as np, tempfile, os, jaxquant
      >>> from PIL import Image
      >>> path = os.path.join(tempfile.mkdtemp(), "gray.png")
      >>> Image.fromarray(np.zeros((2, 3), np.uint8)).save(path)
      >>> jaxquant.load_image(path).shape
      (2, 3, 1)
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    limit = (
        MAX_PIXELS
        if max_pixels is None
        else _checks.check_count("max_pixels", max_pixels, minimum=1)
    )
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < limit:
        Image.MAX_IMAGE_PIXELS = limit
    try:
        with Image.open(path) as im:
            _check_size(path, im.size, limit)
            frames = getattr(im, "n_frames", 1)
            if frames > 1 and im.format != "MPO":
                raise ImageReadError(
                    f"{path}: has {frames} frames ({im.format} animation or pages); "
                    "jaxquant quantizes single images: extract one frame first"
                )
            return _to_array(ImageOps.exif_transpose(im))
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a directory, not an image file") from None
    except NotADirectoryError:
        raise ImageReadError(f"{path}: no such file (a parent is not a directory)") from None
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not a recognised image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow's check fires on frames and tiles too; the warning arrives here only
        # when warnings are errors.
        raise ImageReadError(f"{path}: refused, too many pixels ({e})") from None
    except MemoryError:
        raise ImageReadError(f"{path}: not enough memory to decode this image") from None
    except Exception as e:  # noqa: BLE001 - Pillow's decoders raise many kinds on bad data
        reason = str(e) or type(e).__name__
        raise ImageReadError(f"{path}: cannot decode image ({reason})") from None


def _check_size(path: Path, size: tuple[int, int], limit: int) -> None:
    """Refuse a declared size over ``limit`` or over the machine's memory (no allocation)."""
    w, h = size
    n = w * h
    if n == 0:
        raise ImageReadError(f"{path}: image is empty ({w}x{h})")
    if n > limit:
        raise ImageReadError(
            f"{path}: refused, {w}x{h} = {n:,} pixels is over the limit of {limit:,} "
            "(a decompression bomb?); raise it with --max-pixels (max_pixels) if the image "
            "is genuine"
        )
    memory = _physical_memory()
    need = n * _BYTES_PER_PIXEL
    if memory is not None and need > memory:
        raise ImageReadError(
            f"{path}: refused, {w}x{h} = {n:,} pixels needs about {need / 2**30:.0f} GiB of "
            f"memory, more than this machine has ({memory / 2**30:.0f} GiB)"
        )


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return None


def _to_array(im) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(im, dtype=np.float64)
        if mode == "I" and a.size and (a.min() < 0 or a.max() > 65535):
            raise ValueError("32-bit integer samples outside 0..65535 are not supported")
        # 16-bit samples (PGM with maxval > 255 arrives as mode I).
        return np.round(a * (255.0 / 65535.0)).astype(np.uint8)[:, :, None]
    if mode == "F":
        raise ValueError(
            "32-bit float images are not supported (no defined range); convert to 8 or 16 bits"
        )
    if mode == "L":  # no convert(): it would copy the decoded image once more
        return np.asarray(im)[:, :, None]
    if mode == "1":
        return np.asarray(im.convert("L"))[:, :, None]
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    if has_alpha:
        rgba = np.array(im.convert("RGBA"))
        if rgba[:, :, 3].min() == 255:
            return np.ascontiguousarray(rgba[:, :, :3])
        rgba[rgba[:, :, 3] == 0] = 0
        return rgba
    return np.asarray(im if mode == "RGB" else im.convert("RGB"))


def to_pil(indices, palette):
    """An indexed (mode ``P``) PIL image from ``(H, W)`` indices and a ``(k, C)`` palette.

    Float palettes (``[0, 1]``) are rounded to 8 bits; 1-channel palettes become gray
    entries and 4-channel ones carry per-entry transparency.
    """
    from PIL import Image

    indices = np.asarray(indices)
    palette = np.asarray(palette)
    if indices.ndim != 2:
        raise ValueError(f"indices must have shape (H, W), got {indices.shape}")
    if palette.ndim != 2 or not 1 <= palette.shape[1] <= 4:
        raise ValueError(f"palette must have shape (k, C) with C in 1..4, got {palette.shape}")
    k = palette.shape[0]
    if k > 256:
        raise ValueError(
            f"an indexed PNG holds at most 256 colours, the palette has {k}; "
            "use k <= 256 or save the quantized image as RGB"
        )
    if palette.dtype != np.uint8:
        palette = np.clip(np.round(palette.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    c = palette.shape[1]
    if c == 1:
        rgb, alpha = np.repeat(palette, 3, axis=1), None
    elif c == 2:
        rgb, alpha = np.repeat(palette[:, :1], 3, axis=1), palette[:, 1]
    else:
        rgb, alpha = palette[:, :3], (palette[:, 3] if c == 4 else None)
    im = Image.fromarray(indices.astype(np.uint8), mode=None)
    im = im.convert("P") if im.mode != "P" else im
    if alpha is None:
        im.putpalette(rgb.tobytes(), "RGB")
    else:
        im.putpalette(np.concatenate([rgb, alpha[:, None]], axis=1).tobytes(), "RGBA")
    return im


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On any error the temporary file is removed and ``path`` is left as it was: readers
    never see a half-written file. The file gets the permissions a plain ``open`` would
    give it (``0o666`` less the umask), not ``mkstemp``'s private ``0o600``.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_stale_temps(paths) -> int:
    """Delete temporary files that :func:`atomic_write` left beside ``paths``.

    A process killed with SIGKILL (or by a power cut) between creating the temporary
    file and renaming it leaves ``.<name>.<random>.tmp`` beside the output; the output
    itself is either absent or its previous complete version. Call this before writing
    ``paths`` again; only temporaries of these names are touched, so processes writing
    other files into the same directory are not disturbed.

    Args:
      paths: output paths.

    Returns:
      The number of files removed.
    """
    by_dir: dict[Path, set[str]] = {}
    for p in map(Path, paths):
        by_dir.setdefault(p.parent, set()).add(p.name)
    removed = 0
    for directory, names in by_dir.items():
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            n = entry.name
            if not (n.startswith(".") and n.endswith(".tmp")):
                continue
            if n[1:-4].rpartition(".")[0] in names:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed += 1
    return removed


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    # Reading the umask means setting it; do it once (not per file: writer threads).
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def encode(result, *, format: str = "indexed", compress_level: int = 9) -> bytes:
    """A quantization result as PNG bytes.

    ``"indexed"``: a palette PNG (mode ``P``) at the smallest bit depth Pillow allows for
    the palette (1, 2, 4 or 8 bits per pixel); ``vector`` results hold their ``k``
    palette colours, and ``channel``/``global`` results (whose levels combine across
    channels) are indexed when the image has at most 256 distinct colours, truecolour
    otherwise. ``"rgb"``: the quantized image as a truecolour PNG (gray, gray+alpha,
    RGB or RGBA), for any palette size.

    Args:
      result: a :class:`~jaxquant.QuantizeResult` for one image (anything with
        ``image``, ``indices`` and ``palette``).
      format: one of :data:`FORMATS`.
      compress_level: zlib level 0-9.

    Returns:
      The encoded file.

    Raises:
      ValueError: for an indexed ``vector`` result with more than 256 colours, or an
        unknown format.
    """
    from PIL import Image

    _checks.check_choice("format", format, FORMATS)
    level = _checks.check_count("compress_level", compress_level, minimum=0, maximum=9)
    indices = np.asarray(result.indices)
    if format == "indexed" and indices.ndim == 2:
        im = to_pil(indices, result.palette)
    else:
        image = np.asarray(result.image)
        if image.dtype != np.uint8:
            image = np.clip(np.round(image.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
        image = image.reshape(image.shape[0], image.shape[1], -1)
        c = image.shape[2]
        colours, inverse = np.unique(image.reshape(-1, c), axis=0, return_inverse=True)
        if format == "indexed" and len(colours) <= 256:
            im = to_pil(inverse.reshape(image.shape[:2]), colours)
        else:
            modes = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
            im = Image.fromarray(image if c > 1 else image[:, :, 0], modes[c])
    buffer = _io.BytesIO()
    im.save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def save(
    result, path: str | os.PathLike, *, format: str = "indexed", compress_level: int = 9
) -> int:
    """Write a quantization result as a PNG file, atomically (see :func:`encode`).

    Args:
      result: a :class:`~jaxquant.QuantizeResult` for one image.
      path: the output file, named ``.png``; its directory must exist.
      format: ``"indexed"`` (palette PNG, the default) or ``"rgb"`` (truecolour PNG).
      compress_level: zlib level 0-9.

    Returns:
      The size of the written file in bytes.

    Raises:
      ValueError: for a path not ending in ``.png`` (jaxquant writes PNG), or what
        :func:`encode` refuses.
      OSError: if the file cannot be written.

    Examples:
      >>> import numpy as np, jaxquant, tempfile, os
      >>> image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
      >>> grays = np.array([[0, 0, 0], [128, 128, 128], [255, 255, 255]], np.uint8)
      >>> r = jaxquant.remap(image, grays)
      >>> path = os.path.join(tempfile.mkdtemp(), "out.png")
      >>> jaxquant.save(r, path) > 0
      True
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: jaxquant writes PNG files; name the output .png")
    data = encode(result, format=format, compress_level=compress_level)
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return len(data)


def save_png(result, path: str | os.PathLike, *, compress_level: int = 9) -> int:
    """Write a result as an indexed PNG: ``save(result, path, format="indexed")``.

    Args:
      result: a :class:`~jaxquant.QuantizeResult` for one image.
      path: the output ``.png`` file; its directory must exist.
      compress_level: zlib level 0-9.

    Returns:
      The size of the written file in bytes.
    """
    return save(result, path, format="indexed", compress_level=compress_level)


def save_image(image, path: str | os.PathLike, **params) -> int:
    """Write a PIL image atomically in the format its suffix names (PNG, GIF, JPEG...).

    Args:
      image: a PIL image (e.g. from :mod:`jaxquant.report`).
      path: the output file; its suffix chooses the format among those Pillow writes.
      **params: passed to ``PIL.Image.Image.save`` (e.g. ``save_all=True`` and
        ``append_images`` for an animation).

    Returns:
      The size of the written file in bytes.

    Raises:
      ValueError: for a suffix Pillow cannot write.
      OSError: if the file cannot be written.

    Examples:
      >>> import os, tempfile
      >>> from PIL import Image
      >>> save_image(Image.new("RGB", (4, 4)), os.path.join(tempfile.mkdtemp(), "a.gif")) > 0
      True
    """
    path = Path(path)
    fmt = image_format(path)
    with atomic_write(path) as tmp:
        image.save(tmp, format=fmt, **params)
    return path.stat().st_size


def image_format(path: str | os.PathLike) -> str:
    """The Pillow format a path's suffix names, e.g. ``"PNG"`` for ``x.png``.

    Raises:
      ValueError: for a suffix Pillow cannot write.
    """
    from PIL import Image

    Image.init()
    suffix = Path(path).suffix.lower()
    fmt = Image.EXTENSION.get(suffix)
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(
            f"{path}: unknown image suffix {suffix or '(none)'!r}; name the file .png, "
            ".gif, .jpg, .webp, .bmp or .tiff"
        )
    return fmt
