"""Validation of user input, with messages a user understands.

Static problems (types, shapes, ``k``) raise ``TypeError``/``ValueError`` before anything
is compiled; value problems found inside compiled code become a status in the result.
Free of JAX imports at module level: the command line validates its arguments with these
before it loads JAX.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

# The most palette colours: more than any 8-bit RGB image has distinct colours (2^24).
# A k-row palette is allocated, so a k of 10^20 must fail here, not in a memory error.
MAX_K = 1 << 24

_F32_MAX = float(np.finfo(np.float32).max)


def is_traced(x) -> bool:
    """Whether ``x`` is a JAX tracer (inside ``jit``, ``vmap``, ``grad``...)."""
    import jax

    return isinstance(x, jax.core.Tracer)


def check_k(k) -> int:
    """``k`` as a Python int in ``1..MAX_K``."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        if is_number(k) and math.isfinite(k) and float(k).is_integer():
            k = int(k)
        else:
            raise TypeError(f"k must be an integer number of colours, got {k!r}")
    k = int(k)
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be in 1..{MAX_K:,}, got {k:,}")
    return k


def check_count(name: str, value, *, minimum: int, maximum: int | None = None) -> int:
    """An integer option such as ``num_steps``, in ``minimum..maximum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum:,}, got {value:,}")
    return value


def is_number(value) -> bool:
    """A real Python or NumPy number (not a bool, not an array)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive(name: str, value, *, maximum: float = _F32_MAX) -> float:
    """A finite number in ``(0, maximum]`` (float32's range by default)."""
    if not is_number(value) or not 0 < float(value) <= maximum:
        raise ValueError(f"{name} must be a positive number up to {maximum:.3g}, got {value!r}")
    return float(value)


def check_non_negative(name: str, value) -> float:
    """A finite number ``>= 0``."""
    if not is_number(value) or not (float(value) >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_choice(name: str, value, choices) -> str:
    """One of ``choices`` (strings); the message lists them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value


def seed_key(seed: int):
    """``jax.random.key(seed)``, built without compiling anything where that is exact.

    With the default ``threefry2x32`` keys a seed in ``[0, 2^31)`` has the key data
    ``[0, seed]``; wrapping it copies two words, where ``jax.random.key`` runs two small
    compiled programs (and a fresh process's first MLIR lowering). Other seeds and key
    implementations go through ``jax.random.key``.
    """
    import jax

    seed = int(seed)
    impl = getattr(jax.config, "values", {}).get("jax_default_prng_impl")
    if impl == "threefry2x32" and 0 <= seed < 2**31:
        data = jax.device_put(np.array([0, seed], np.uint32))
        return jax.random.wrap_key_data(data, impl="threefry2x32")
    return jax.random.key(seed)


def check_key(key):
    """A PRNG key: a typed key from ``jax.random.key`` or a legacy ``uint32[2]`` key.

    Tracers pass (shapes are checked); a batch of keys is refused (``vmap`` to batch).
    """
    import jax

    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key must be a single PRNG key, got shape {key.shape}")
        return key
    if hasattr(key, "mode") and hasattr(key, "getbands"):  # a PIL image
        raise TypeError(
            "key must be a PRNG key, got a PIL image: the key comes first, "
            "quantize(jax.random.key(0), image, k); or call jaxquant.quantize_pil(image, k) "
            "for a PIL image back (Pillow's im.quantize(k))"
        )
    arr = key if isinstance(key, jax.Array) else np.asarray(key)
    if arr.ndim >= 2:
        raise TypeError(
            f"key must be a PRNG key, got an array of shape {arr.shape}: the key comes "
            "first, e.g. quantize(jax.random.key(0), image, k)"
        )
    if arr.shape == (2,) and arr.dtype == np.uint32:
        return jax.random.wrap_key_data(arr if isinstance(arr, jax.Array) else jax.device_put(arr))
    raise TypeError(
        "key must be a PRNG key, e.g. jax.random.key(0) "
        f"(got {type(key).__name__} {getattr(arr, 'dtype', '')}{getattr(arr, 'shape', '')})"
    )


def check_image_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(H, W, C)`` of an image of shape ``(H, W)`` or ``(H, W, C)`` with 1-4 channels."""
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3:
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got shape {shape}")
    h, w, c = shape
    if not 1 <= c <= 4:
        raise ValueError(f"image must have 1 to 4 channels, got {c} (shape {shape})")
    if h * w == 0:
        raise ValueError(f"image is empty (shape {shape})")
    return h, w, c


def check_image_dtype(dtype) -> np.dtype:
    """uint8 or a float dtype."""
    dtype = np.dtype(dtype)
    if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
        raise TypeError(f"image must be uint8 or float (values in [0, 1]), got dtype {dtype}")
    return dtype


def as_image_array(image) -> np.ndarray:
    """An image as a NumPy array of shape (H, W, C): uint8, or float in [0, 1].

    PIL images follow :func:`jaxquant.io.load_image`'s rules (alpha kept, 16-bit gray
    rounded). Arrays of shape (H, W) are treated as single-channel.
    """
    from PIL import Image

    from jaxquant import _pil

    if isinstance(image, Image.Image):
        image = _pil.to_array(image)
    arr = np.asarray(image)
    h, w, c = check_image_shape(arr.shape)
    arr = arr.reshape(h, w, c)
    check_image_dtype(arr.dtype)
    if arr.dtype == np.uint8:
        return arr
    if not np.all(np.isfinite(arr)):
        raise ValueError("image has NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"float images must have values in [0, 1], got [{lo:g}, {hi:g}]; "
            "divide 0..255 data by 255 or pass uint8"
        )
    return arr
