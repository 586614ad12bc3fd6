"""PIL images as arrays: one rule for files (``io.load_image``) and for PIL input to the API.

- 1-bit, 8-bit and 16-bit grayscale: ``C = 1``; 16-bit samples are rounded to 8 bits
  (``round(v · 255 / 65535)``).
- Gray with transparency (LA, La, or L / 16-bit gray with a ``tRNS`` colour key):
  gray + alpha (``C = 2``) if any pixel is not fully opaque, else gray.
- RGB, CMYK, YCbCr, LAB, HSV and palette images without transparency: RGB (``C = 3``).
- Colour with transparency (RGBA, RGBa, PA, P or RGB with a ``tRNS`` key): RGBA
  (``C = 4``) if any pixel is not fully opaque, else RGB.
- The colour of fully transparent pixels is invisible and set to 0, so that it cannot
  pull palette colours or take palette entries.
- 32-bit float images and 32-bit integer ones outside 0..65535 are refused.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_array"]

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _gray16(im) -> np.ndarray:
    """16-bit (or 32-bit integer) gray samples as float64, range-checked."""
    a = np.asarray(im, dtype=np.float64)
    if im.mode == "I" and a.size and (a.min() < 0 or a.max() > 65535):
        raise ValueError("32-bit integer samples outside 0..65535 are not supported")
    return a


def _with_alpha(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``colour`` (H, W, C) with ``alpha`` appended, or ``colour`` alone if all opaque."""
    if alpha.min() == 255:
        return np.ascontiguousarray(colour)
    out = np.concatenate([colour, alpha[:, :, None]], axis=2)
    out[alpha == 0] = 0  # invisible colour: zero, so it cannot pull palette colours
    return out


def _key(im):
    """The ``tRNS`` colour key of an L, I;16 or RGB image, or ``None``."""
    key = im.info.get("transparency")
    return None if isinstance(key, bytes) else key


def to_array(im) -> np.ndarray:
    """A PIL image as a uint8 ``(H, W, C)`` array, by the rules in the module docstring.

    Raises:
      ValueError: for 32-bit float images and out-of-range 32-bit integer ones.
    """
    mode = im.mode
    if mode == "F":
        raise ValueError(
            "32-bit float images are not supported (no defined range); convert to 8 or 16 bits"
        )
    if mode in _SIXTEEN_BIT:
        a = _gray16(im)
        gray = np.round(a * (255.0 / 65535.0)).astype(np.uint8)[:, :, None]
        key = _key(im)
        if key is None:
            return gray
        return _with_alpha(gray, np.where(a == key, 0, 255).astype(np.uint8))
    if mode in ("L", "1"):
        gray = np.asarray(im if mode == "L" else im.convert("L"))
        key = _key(im) if mode == "L" else None
        if key is None:
            return gray[:, :, None]
        return _with_alpha(gray[:, :, None], np.where(gray == key, 0, 255).astype(np.uint8))
    if mode in ("LA", "La"):
        la = np.asarray(im.convert("LA"))
        return _with_alpha(la[:, :, :1], la[:, :, 1])
    has_alpha = mode in ("RGBA", "PA", "RGBa") or (
        mode in ("P", "RGB") and "transparency" in im.info
    )
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"))
        return _with_alpha(rgba[:, :, :3], rgba[:, :, 3])
    return np.asarray(im if mode == "RGB" else im.convert("RGB"))
