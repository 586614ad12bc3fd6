"""Quantization modes: colours (``vector``), intensities per channel (``channel``) or
intensities shared by all channels (``global``).

- ``vector`` (the default) quantizes pixels as points of ``C``-dimensional colour space:
  ``k`` colours. The right choice for photographs: colours are correlated across
  channels, so ``k`` colours cover them far better than a grid of intensities.
- ``channel`` quantizes each channel on its own as a 1-D set of intensities: ``k`` levels
  per channel, up to ``k^C`` distinct colours, ``C·log2(k)`` bits per pixel. It suits
  images whose channels are independent (multispectral bands, separately meaningful
  alpha): a posterization with fitted, non-uniform levels.
- ``global`` quantizes every intensity of every channel as one 1-D set: one palette of
  ``k`` levels shared by all channels (an optimised bit-depth reduction). It suits
  images whose channels share a range and distribution (near-gray images, scans).

A single-channel image is the same 1-D problem in every mode, and every mode returns the
same result for it (``indices`` aside, whose shape follows the mode). This module splits
an image into those 1-D problems and combines their results; :func:`jaxquant.quantize`
fits each part.

The result's fields per mode:

============  ==================  ===================  ===========================
mode          ``palette``         ``indices``          ``image``
============  ==================  ===================  ===========================
``vector``    ``(k, C)`` colours  ``(H, W)``           ``palette[indices]``
``channel``   ``(k, C)``: column  image's shape:       ``image[..., j] =
              ``j`` holds channel one index per        palette[indices[..., j], j]``
              ``j``'s levels      intensity
``global``    ``(k, 1)`` levels   image's shape        ``palette[indices, 0]``
============  ==================  ===================  ===========================

``mse`` and ``psnr`` compare ``image`` with the input on the 0..255 scale (mean over
pixels and channels). ``loss`` (and the trace ``losses``) is the mean over pixels of the
objective summed over channels: ``Σ_j |x_j − y_j|^rank``. For ``rank = 2`` that is
``‖x − y‖²``, the ``vector`` objective, so ``loss = C · mse / 255²`` in every mode; for
other ranks the ``vector`` loss, ``‖x − y‖^rank``, differs. ``status`` is the worst of
the fits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxquant import _checks, _names
from jaxquant._remap import QuantizeResult

__all__ = ["MODES", "check_mode", "combine", "split"]

MODES = _names.MODES
"""The quantization modes."""


def check_mode(mode, space: str | None, channels: int) -> str:
    """Validate a mode, and the colour space for it, against an image's channels."""
    mode = _checks.check_choice("mode", mode, MODES)
    space = space or "rgb"
    if mode != "vector" and space in ("cielab", "oklab"):
        raise ValueError(
            f"space {space!r} needs mode 'vector': {mode} mode quantizes intensities "
            "one at a time; use space 'rgb' or 'linear-rgb'"
        )
    if space == "linear-rgb" and mode != "vector" and channels in (2, 4):
        raise ValueError(
            f"space 'linear-rgb' with mode {mode!r} would linearize the alpha channel; "
            "use space 'rgb' or mode 'vector' for images with alpha"
        )
    return mode


def split(key: jax.Array, image: np.ndarray, mode: str) -> list[tuple[jax.Array, np.ndarray]]:
    """The 1-D problems of ``channel`` or ``global`` mode: ``(key, (H, W') image)`` pairs.

    ``channel``: one per channel, channel ``j`` with ``jax.random.split(key, C)[j]``
    (``key`` itself when ``C = 1``). ``global``: one, with ``key``, of all intensities as
    one ``(H, W·C)`` single-channel image.
    """
    h, w, c = image.shape
    if mode == "channel":
        keys = [key] if c == 1 else list(jax.random.split(key, c))
        return [(keys[j], image[:, :, j]) for j in range(c)]
    return [(key, image.reshape(h, w * c))]


def combine(
    original: np.ndarray, mode: str, parts: Sequence[QuantizeResult], *, squeeze: bool
) -> QuantizeResult:
    """The result of ``mode`` from the results of :func:`split`'s problems."""
    h, w, c = original.shape
    if mode == "channel":
        out = np.stack([np.asarray(p.image) for p in parts], axis=-1)
        # NumPy on the host: eager jax.numpy ops would compile a program per shape.
        palette = np.concatenate([np.asarray(p.palette) for p in parts], axis=1)
        indices = np.stack([np.asarray(p.indices) for p in parts], axis=-1)
        loss = np.sum([np.asarray(p.loss) for p in parts], axis=0)
        losses = np.sum([np.asarray(p.losses) for p in parts], axis=0)
        status = np.max([np.asarray(p.status) for p in parts])
    else:
        (part,) = parts
        out = np.asarray(part.image).reshape(h, w, c)
        palette = np.asarray(part.palette)
        indices = np.asarray(part.indices).reshape(h, w, c)
        # The 1-D fit averages over intensities; per pixel that is C times as much.
        loss, losses = np.asarray(part.loss) * c, np.asarray(part.losses) * c
        status = np.asarray(part.status)
    mse = _mse(original, out)
    psnr = math.inf if mse <= 0 else 10.0 * math.log10(255.0**2 / mse)
    if squeeze:
        out, indices = out[:, :, 0], indices[:, :, 0]
    return QuantizeResult(
        image=jnp.asarray(out),
        palette=jnp.asarray(palette),
        indices=jnp.asarray(indices.astype(np.int32)),
        loss=jnp.asarray(np.float32(loss)),
        losses=jnp.asarray(losses.astype(np.float32)),
        mse=jnp.asarray(np.float32(mse)),
        psnr=jnp.asarray(np.float32(psnr)),
        status=jnp.asarray(np.int32(status)),
    )


def _mse(original: np.ndarray, quantized: np.ndarray) -> float:
    """Mean squared error over pixels and channels on the 0..255 scale, in float64."""
    scale = 1.0 if original.dtype == np.uint8 else 255.0
    diff = (quantized.astype(np.float64) - original.astype(np.float64)) * scale
    return float(np.mean(diff**2))
