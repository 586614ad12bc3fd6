"""Animations: the frames of a GIF, APNG or WebP (or a list of frames) to an animation.

One palette fitted to every frame together (:func:`jaxquant.fit_palette` over the list
of frames) is what keeps an animation from flickering: a pixel that stays the same in
the input takes the same colour in every frame, as long as its choice depends only on
the pixel and its place. Ordered dithering (``"ordered"``, the default here) keeps that
property; error diffusion does not (an error carried in from a changing area changes
the choice), and neither do per-frame palettes. :func:`flicker` measures it.

Examples:
  >>> import jax, numpy as np
  >>> frames = [np.full((8, 8, 3), 40 * i, np.uint8) for i in range(3)]
  >>> results = quantize_frames(jax.random.key(0), frames, 4)
  >>> len(results), results[0].palette.shape
  (3, (4, 3))
  >>> data = encode_animation(results, durations=[100] * 3)
  >>> data[:6]
  b'GIF89a'
"""

from __future__ import annotations

import io as _io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxquant import _checks, io
from jaxquant._fit import fit_palette
from jaxquant._quantize import quantize
from jaxquant._remap import QuantizeResult, remap
from jaxquant.solvers import Status

__all__ = [
    "ANIMATION_FORMATS",
    "animation_format",
    "encode_animation",
    "flicker",
    "quantize_frames",
    "save_animation",
]

ANIMATION_FORMATS = ("gif", "png", "webp")
"""Formats an animation is written in: GIF, APNG (``.png``) and lossless WebP."""

_BY_SUFFIX = {".gif": "gif", ".png": "png", ".apng": "png", ".webp": "webp"}


def _check_frames(frames) -> list[np.ndarray]:
    frames = list(frames)
    if not frames:
        raise ValueError("an animation needs at least one frame")
    out = []
    for i, frame in enumerate(frames):
        try:
            out.append(_checks.as_image_array(frame))
        except (TypeError, ValueError) as e:
            raise type(e)(f"frame {i}: {e}") from None
    shape = out[0].shape
    for i, frame in enumerate(out):
        if frame.shape != shape:
            raise ValueError(f"frame {i} is {frame.shape}, frame 0 {shape}: frames must agree")
    return out


def quantize_frames(
    key: jax.Array,
    frames: Sequence[Any],
    k: int,
    *,
    shared: bool = True,
    dither: str = "ordered",
    dither_level: float | None = None,
    palette=None,
    **options: Any,
) -> list[QuantizeResult]:
    """Quantize the frames of an animation, with one palette for all of them by default.

    Args:
      key: a PRNG key.
      frames: images of one shape (arrays or PIL images, as :func:`jaxquant.quantize`).
      k: palette size.
      shared: one palette fitted to every frame together (no flicker in static areas),
        or one palette per frame (``False``: each frame fitted on its own).
      dither: ``"ordered"`` (default: it does not flicker), ``"none"`` or ``"fs"``.
      dither_level: as for :func:`jaxquant.remap`.
      palette: a ``(k, c)`` palette to remap every frame to instead of fitting one
        (``k`` must then be its length).
      **options: the fitting options of :func:`jaxquant.fit_palette` (``fixed``,
        ``space``, ``num_steps``, ...).

    Returns:
      One :class:`~jaxquant.QuantizeResult` per frame (with ``shared``, all with the
      same palette).

    Raises:
      ValueError, TypeError: for frames of different shapes and bad options.
      FloatingPointError: if a fit diverged.
    """
    images = _check_frames(frames)
    key = _checks.check_key(key)
    space = options.get("space")
    if palette is not None:
        shared_palette = np.asarray(palette)
        if shared_palette.shape[0] != k:
            raise ValueError(f"k = {k} but the palette has {shared_palette.shape[0]} colours")
    elif shared:
        fit = fit_palette(key, images if len(images) > 1 else images[0], k, **options)
        if int(fit.status) != Status.OK:
            raise FloatingPointError(
                "the fit diverged (non-finite palette); lower the learning rate"
            )
        shared_palette = np.asarray(fit.palette)
    else:
        keys = jax.random.split(key, len(images))
        return [
            quantize(keys[i], image, k, dither=dither, dither_level=dither_level, **options)
            for i, image in enumerate(images)
        ]
    return [
        remap(image, shared_palette, space=space, dither=dither, dither_level=dither_level)
        for image in images
    ]


def flicker(frames_in: Sequence[np.ndarray], frames_out: Sequence[np.ndarray]) -> float:
    """How often a still pixel changes colour: of the pixels equal in two consecutive
    input frames, the fraction whose output differs between them (0: no flicker).

    Returns ``nan`` when no pixel stays still.
    """
    still = changed = 0
    for i in range(1, len(frames_in)):
        a, b = np.asarray(frames_in[i - 1]), np.asarray(frames_in[i])
        same = (a == b).reshape(a.shape[0], a.shape[1], -1).all(axis=2)
        oa, ob = np.asarray(frames_out[i - 1]), np.asarray(frames_out[i])
        moved = (oa != ob).reshape(oa.shape[0], oa.shape[1], -1).any(axis=2)
        still += int(same.sum())
        changed += int((same & moved).sum())
    return changed / still if still else float("nan")


def _uint8(palette) -> np.ndarray:
    p = np.asarray(palette)
    if p.dtype != np.uint8:
        p = np.round(np.clip(p, 0, 1) * 255).astype(np.uint8)
    return p


def _paletted(result, what: str):
    """``(indices uint8 (H, W), rgb (n, 3), alpha (n,) or None)`` of a vector result."""
    indices = np.asarray(result.indices)
    palette = _uint8(result.palette)
    if indices.ndim != 2 or palette.ndim != 2:
        raise ValueError(f"{what}: an animation frame must be a result of mode 'vector'")
    if palette.shape[0] > 256:
        raise ValueError(f"{what}: {palette.shape[0]} colours; a GIF or APNG holds at most 256")
    if palette.shape[1] in (1, 2):  # grey
        grey = palette[:, :1]
        palette = np.concatenate([np.repeat(grey, 3, 1), palette[:, 1:]], axis=1)
    alpha = palette[:, 3] if palette.shape[1] == 4 else None
    return indices.astype(np.uint8), palette[:, :3], alpha


def encode_animation(
    results: Sequence[Any],
    *,
    durations: Sequence[int] | int = 100,
    loop: int = 0,
    format: str = "gif",
) -> bytes:
    """Frames as the bytes of an animated GIF, APNG or WebP.

    Each frame is written with its own result's palette, in its order; frames sharing
    a palette (:func:`quantize_frames`) write it once (GIF: the global colour table) and
    keep their index values. GIF and APNG frames store only the rectangle that changed
    (Pillow's writer).

    Args:
      results: one result per frame (``indices``, ``palette``; ``image`` for WebP).
      durations: milliseconds per frame (one value, or one per frame).
      loop: times to play (0: for ever).
      format: ``"gif"``, ``"png"`` (APNG) or ``"webp"`` (lossless).

    Returns:
      The file's bytes.

    Raises:
      ValueError: translucent colours in a GIF, more than 256 colours (GIF, APNG), an
        unknown format or durations that do not match.
    """
    from PIL import Image

    _checks.check_choice("format", format, ANIMATION_FORMATS)
    results = list(results)
    if not results:
        raise ValueError("an animation needs at least one frame")
    if isinstance(durations, (int, np.integer)):
        durations = [int(durations)] * len(results)
    durations = [int(d) for d in durations]
    if len(durations) != len(results) or any(d < 1 for d in durations):
        raise ValueError(f"durations must be {len(results)} positive numbers of milliseconds")
    buffer = _io.BytesIO()
    params: dict[str, Any] = {"save_all": True, "duration": durations, "loop": int(loop)}
    if format == "webp":
        frames = [Image.fromarray(_frame_pixels(r)) for r in results]
        frames[0].save(
            buffer, format="WEBP", append_images=frames[1:], lossless=True, exact=True, **params
        )
        return buffer.getvalue()
    images = []
    transparency = []
    for i, result in enumerate(results):
        indices, rgb, alpha = _paletted(result, f"frame {i}")
        im = Image.fromarray(indices, "L").convert("P")
        im.putpalette(rgb.tobytes(), "RGB")
        if format == "gif" and alpha is not None:
            used = np.zeros(len(rgb), bool)
            used[np.unique(indices)] = True
            if np.any(used & (alpha > 0) & (alpha < 255)):
                raise ValueError(
                    f"frame {i}: a GIF cannot hold translucent colours; write APNG or WebP"
                )
            clear = np.flatnonzero(alpha == 0)
            if clear.size:
                merged = indices.copy()
                merged[np.isin(indices, clear)] = clear[0]
                im = Image.fromarray(merged, "L").convert("P")
                im.putpalette(rgb.tobytes(), "RGB")
                im.info["transparency"] = int(clear[0])
                transparency.append(int(clear[0]))
        elif alpha is not None:
            im.info["transparency"] = alpha.tobytes()
            transparency.append(alpha.tobytes())
        images.append(im)
    if format == "gif":
        if transparency:
            params["transparency"] = transparency[0]
        params["disposal"] = 1 if not transparency else 2
        images[0].save(buffer, format="GIF", append_images=images[1:], optimize=False, **params)
    else:
        if transparency:
            params["transparency"] = transparency[0]
        images[0].save(buffer, format="PNG", append_images=images[1:], **params)
    return buffer.getvalue()


def _frame_pixels(result) -> np.ndarray:
    image = np.asarray(result.image)
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] in (1, 2):
        image = np.concatenate([np.repeat(image[..., :1], 3, 2), image[..., 1:]], axis=2)
    return image.reshape(image.shape[0], image.shape[1], -1).squeeze()


def animation_format(path, *, format: str | None = None) -> str:
    """The animation format ``path``'s suffix names (``.gif``, ``.png``/``.apng``,
    ``.webp``), or ``format`` if given and it agrees."""
    suffix = Path(os.fspath(path)).suffix.lower()
    named = _BY_SUFFIX.get(suffix)
    if format is not None:
        _checks.check_choice("format", format, ANIMATION_FORMATS)
        if named is not None and named != format:
            raise ValueError(f"{io.display(path)}: a {format} animation is not named {suffix}")
        return format
    if named is None:
        raise ValueError(
            f"{io.display(path)}: name an animation .gif, .png (APNG) or .webp (got "
            f"{suffix or 'no suffix'!r})"
        )
    return named


def save_animation(
    results: Sequence[Any],
    path,
    *,
    durations: Sequence[int] | int = 100,
    loop: int = 0,
    format: str | None = None,
) -> int:
    """Write :func:`encode_animation`'s bytes atomically to ``path`` (its suffix names
    the format); returns the size in bytes."""
    fmt = animation_format(path, format=format)
    data = encode_animation(results, durations=durations, loop=loop, format=fmt)
    if os.fspath(path) == io.STDOUT:
        return io.write_stdout(data)
    with io.atomic_write(Path(path)) as tmp:
        tmp.write_bytes(data)
    return len(data)
