"""Reading images and writing quantized ones: indexed PNG, written atomically."""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["ImageReadError", "atomic_write", "load_image", "save_png", "to_pil"]


class ImageReadError(ValueError):
    """An input file could not be read as an image; the message names the file."""


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as a uint8 array of shape (H, W, C).

    The EXIF orientation is applied. Grayscale images (1-bit, 8-bit and 16-bit) give
    ``C = 1``; images with an alpha channel that is not fully opaque give RGBA
    (``C = 4``); everything else (palette, CMYK, YCbCr, ...) is converted to RGB. 16-bit
    samples are rounded to 8 bits.

    Args:
      path: the file.

    Returns:
      A ``(H, W, C)`` uint8 NumPy array.

    Raises:
      ImageReadError: if the file is missing, unreadable or not a supported image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return _to_array(im)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a directory, not an image file") from None
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not a recognised image file") from None
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"{path}: refused, too many pixels ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"{path}: cannot decode image ({e})") from None


def _to_array(im) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        return np.clip(np.round(a * (255.0 / top)), 0, 255).astype(np.uint8)[:, :, None]
    if mode in ("1", "L"):
        return np.asarray(im.convert("L"))[:, :, None]
    if mode == "F":
        raise ValueError("32-bit float images are not supported")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in im.info
    )
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"))
        if rgba[:, :, 3].min() < 255:
            return rgba
        return np.ascontiguousarray(rgba[:, :, :3])
    return np.asarray(im.convert("RGB"))


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


def save_png(result, path: str | os.PathLike, *, compress_level: int = 9) -> int:
    """Write a quantization result as an indexed PNG (mode ``P``), atomically.

    The PNG holds the ``k`` palette colours and one index per pixel, at the smallest bit
    depth Pillow allows for ``k`` (1, 2, 4 or 8 bits per pixel).

    Args:
      result: a :class:`~jaxquant.QuantizeResult` for one image (anything with
        ``indices`` (H, W) and ``palette`` (k, C)).
      path: the output file; its directory must exist.
      compress_level: zlib level 0-9.

    Returns:
      The size of the written file in bytes.

    Examples:
      >>> import jax, numpy as np, jaxquant, tempfile, os
      >>> image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
      >>> r = jaxquant.quantize(jax.random.key(0), image, 4)
      >>> path = os.path.join(tempfile.mkdtemp(), "out.png")
      >>> jaxquant.save_png(r, path) > 0
      True
    """
    im = to_pil(result.indices, result.palette)
    path = Path(path)
    with atomic_write(path) as tmp:
        im.save(tmp, format="PNG", compress_level=compress_level)
    return path.stat().st_size
