"""Quantization modes: colours (``vector``), intensities per channel (``channel``) or
intensities shared by all channels (``global``), all fitted by :func:`jaxquant.quantize`.

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
same result for it (``indices`` aside, whose shape follows the mode).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxquant import _checks

__all__ = ["MODES", "quantize_mode"]

MODES = ("vector", "channel", "global")
"""The quantization modes of :func:`quantize_mode`."""


def quantize_mode(key: jax.Array, image, k: int, *, mode: str = "vector", **quantize_kwargs: Any):
    """Quantize an image in one of the :data:`MODES` with the SQ solver.

    ``vector`` is :func:`jaxquant.quantize` itself. ``channel`` calls it once per channel
    on that channel as an ``(H, W)`` image, channel ``j`` with
    ``jax.random.split(key, C)[j]`` (with ``key`` itself when ``C = 1``). ``global`` calls
    it once, with ``key``, on all intensities as one ``(H, W·C)`` single-channel image.

    The result is a :class:`~jaxquant.QuantizeResult` whose fields mean, per mode:

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
    pixels and channels), as for :func:`jaxquant.quantize`. ``loss`` (and the trace
    ``losses``) is the mean over pixels of the objective summed over channels:
    ``Σ_j |x_j − y_j|^rank``. For ``rank = 2`` that is ``‖x − y‖²``, the ``vector``
    objective, so ``loss = C · mse / 255²`` in every mode; for other ranks the ``vector``
    loss, ``‖x − y‖^rank``, differs. ``status`` is the worst of the fits.

    Args:
      key: a PRNG key (``jax.random.key(seed)``). Same key, same result.
      image: as for :func:`jaxquant.quantize`: ``(H, W, C)`` or ``(H, W)``, uint8 or float
        in ``[0, 1]``, ``C`` in 1..4, or a PIL image.
      k: colours (``vector``) or intensity levels (``channel``: per channel; ``global``:
        in all). With ``k`` at least the number of distinct values (colours, intensities
        of each channel, intensities of the whole image) the result is lossless.
      mode: one of :data:`MODES`.
      **quantize_kwargs: passed unchanged to every :func:`jaxquant.quantize` call.

    Returns:
      A :class:`~jaxquant.QuantizeResult`, laid out as in the table above.

    Raises:
      ValueError, TypeError: for an unknown mode and whatever :func:`jaxquant.quantize`
        refuses.

    Examples:
      >>> import jax, numpy as np
      >>> image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
      >>> fast = dict(num_steps=40, batch_size=256)  # a quick fit for the example
      >>> r = quantize_mode(jax.random.key(0), image, 4, mode="channel", **fast)
      >>> r.palette.shape, r.indices.shape
      ((4, 3), (16, 16, 3))
      >>> max(len(np.unique(r.image[..., j])) for j in range(3)) <= 4
      True
      >>> r = quantize_mode(jax.random.key(0), image, 4, mode="global", **fast)
      >>> r.palette.shape, len(np.unique(r.image)) <= 4
      ((4, 1), True)
    """
    # Imported here: quantize() will dispatch to this module by mode.
    from jaxquant._quantize import QuantizeResult, quantize

    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "vector":
        return quantize(key, image, k, **quantize_kwargs)

    key = _checks.check_key(key)
    squeeze = not hasattr(image, "mode") and np.ndim(image) == 2  # as quantize() does
    arr = _checks.as_image_array(image)  # validated (H, W, C)
    h, w, c = arr.shape
    if mode == "channel":
        keys = [key] if c == 1 else list(jax.random.split(key, c))
        parts = [quantize(keys[j], arr[:, :, j], k, **quantize_kwargs) for j in range(c)]
        out = np.stack([np.asarray(p.image) for p in parts], axis=-1)
        palette = jnp.concatenate([p.palette for p in parts], axis=1)
        indices = np.stack([np.asarray(p.indices) for p in parts], axis=-1)
        loss = jnp.sum(jnp.stack([p.loss for p in parts]))
        losses = jnp.sum(jnp.stack([p.losses for p in parts]), axis=0)
        status = jnp.max(jnp.stack([p.status for p in parts]))
    else:
        part = quantize(key, arr.reshape(h, w * c), k, **quantize_kwargs)
        out = np.asarray(part.image).reshape(h, w, c)
        palette = part.palette
        indices = np.asarray(part.indices).reshape(h, w, c)
        # The 1-D fit averages over intensities; per pixel that is C times as much.
        loss, losses, status = part.loss * c, part.losses * c, part.status

    mse = _mse(arr, out)
    psnr = math.inf if mse <= 0 else 10.0 * math.log10(255.0**2 / mse)
    if squeeze:
        out, indices = out[:, :, 0], indices[:, :, 0]
    return QuantizeResult(
        image=jnp.asarray(out),
        palette=palette,
        indices=jnp.asarray(indices.astype(np.int32)),
        loss=loss,
        losses=losses,
        mse=jnp.float32(mse),
        psnr=jnp.float32(psnr),
        status=status,
    )


def _mse(original: np.ndarray, quantized: np.ndarray) -> float:
    """Mean squared error over pixels and channels on the 0..255 scale, in float64."""
    scale = 1.0 if original.dtype == np.uint8 else 255.0
    diff = (quantized.astype(np.float64) - original.astype(np.float64)) * scale
    return float(np.mean(diff**2))
