"""Validation of user input, with messages a user understands.

Static problems (types, shapes, ``k``) raise ``TypeError``/``ValueError`` before anything
is compiled; value problems found inside compiled code become a status in the result.
"""

from __future__ import annotations

import numbers

import jax
import numpy as np


def check_k(k) -> int:
    """``k`` as a Python int >= 1."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        if isinstance(k, numbers.Real) and float(k).is_integer() and not isinstance(k, bool):
            k = int(k)
        else:
            raise TypeError(f"k must be an integer number of colours, got {k!r}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return k


def check_count(name: str, value, *, minimum: int) -> int:
    """A non-negative (or positive) integer option such as ``num_steps``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def check_key(key) -> jax.Array:
    """A PRNG key: a typed key from ``jax.random.key`` or a legacy ``uint32[2]`` key."""
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key must be a single PRNG key, got shape {key.shape}")
        return key
    arr = np.asarray(key) if not isinstance(key, jax.Array) else key
    if arr.shape == (2,) and arr.dtype == np.uint32:
        return jax.random.wrap_key_data(jax.numpy.asarray(arr))
    raise TypeError(
        "key must be a PRNG key, e.g. jax.random.key(0) "
        f"(got {type(key).__name__} {getattr(arr, 'dtype', '')}{getattr(arr, 'shape', '')})"
    )


def as_image_array(image) -> np.ndarray:
    """An image as a NumPy array of shape (H, W, C): uint8, or float in [0, 1].

    PIL images are converted to RGB (or kept as L for grayscale). Arrays of shape (H, W)
    are treated as single-channel.
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a runtime dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        mode = "L" if image.mode in ("1", "L", "I;16", "I", "F") else "RGB"
        image = np.asarray(image.convert(mode))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got shape {arr.shape}")
    h, w, c = arr.shape
    if not 1 <= c <= 4:
        raise ValueError(f"image must have 1 to 4 channels, got {c} (shape {arr.shape})")
    if h * w == 0:
        raise ValueError(f"image is empty (shape {arr.shape})")
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ValueError("image has NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"float images must have values in [0, 1], got [{lo:g}, {hi:g}]; "
                "divide 0..255 data by 255 or pass uint8"
            )
        return arr
    raise TypeError(f"image must be uint8 or float (values in [0, 1]), got dtype {arr.dtype}")
