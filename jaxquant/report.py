"""Visual reports: palette swatches, side-by-side comparisons, GIF sweeps, histograms, charts.

Images and GIFs need only Pillow. The charts (:func:`plot_histograms`,
:func:`plot_errors`) need matplotlib, from the optional ``plot`` extra
(``pip install "jaxquant[plot]"``); it is imported only when a chart is drawn.

Images may be uint8 arrays, float arrays in ``[0, 1]``, JAX arrays or PIL images, of shape
``(H, W)`` or ``(H, W, C)`` with ``C`` in 1..4; palettes are ``(k, C)``. Transparent
images and palettes are shown over a gray checkerboard. Every function that writes a file
writes it atomically (a reader never sees half a file) and returns its size in bytes.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxquant.io import STDOUT, atomic_write, save_image, write_stdout

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "Frame",
    "animate_steps",
    "compare_image",
    "default_caption",
    "histogram_image",
    "palette_steps",
    "palette_swatch",
    "plot_errors",
    "plot_histograms",
    "save_gif",
    "sweep_frames",
]

_BACKGROUND = (255, 255, 255)
_TEXT = (0, 0, 0)
_GAP = 8  # pixels between panels and around the caption
_MIN_SWATCH = 64  # side of the swatch panel when the image is shorter than this
_CHANNEL_COLOURS = {
    1: [(90, 90, 90)],
    2: [(90, 90, 90), (160, 160, 160)],
    3: [(214, 39, 40), (44, 160, 44), (31, 119, 180)],
    4: [(214, 39, 40), (44, 160, 44), (31, 119, 180), (160, 160, 160)],
}
_CHANNEL_NAMES = {
    1: ["gray"],
    2: ["gray", "alpha"],
    3: ["red", "green", "blue"],
    4: ["red", "green", "blue", "alpha"],
}


# --------------------------------------------------------------------------------------
# Helpers.


def _as_uint8(image, what: str = "image") -> np.ndarray:
    """An image or palette as a uint8 array with a channel axis: (H, W, C) or (k, C)."""
    from PIL import Image

    if isinstance(image, Image.Image):
        mode = image.mode if image.mode in ("L", "LA", "RGB", "RGBA") else "RGBA"
        image = np.asarray(image.convert(mode))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating):
            raise TypeError(f"{what} must be uint8 or float in [0, 1], got dtype {arr.dtype}")
        if arr.size and not np.all(np.isfinite(arr)):
            raise ValueError(f"{what} has NaN or infinite values")
        arr = np.clip(np.round(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    return arr


def _image(image, what: str = "image") -> np.ndarray:
    arr = _as_uint8(image, what)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or not 1 <= arr.shape[2] <= 4 or arr.shape[0] * arr.shape[1] == 0:
        raise ValueError(f"{what} must have shape (H, W) or (H, W, C), C in 1..4; got {arr.shape}")
    return arr


def _palette(palette) -> np.ndarray:
    arr = _as_uint8(palette, "palette")
    if arr.ndim != 2 or not 1 <= arr.shape[1] <= 4 or arr.shape[0] == 0:
        raise ValueError(f"palette must have shape (k, C) with k >= 1, C in 1..4; got {arr.shape}")
    return arr


def _rgba(arr: np.ndarray) -> np.ndarray:
    """(..., C) uint8 -> (..., 4) RGBA: gray for C <= 2, opaque when there is no alpha."""
    c = arr.shape[-1]
    rgb = np.repeat(arr[..., :1], 3, axis=-1) if c <= 2 else arr[..., :3]
    alpha = arr[..., -1:] if c in (2, 4) else np.full(arr.shape[:-1] + (1,), 255, np.uint8)
    return np.concatenate([rgb, alpha], axis=-1)


def _checkerboard(width: int, height: int, square: int = 8) -> Image.Image:
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    light = ((x // square + y // square) % 2 == 0)[:, :, None]
    board = np.where(light, np.uint8(230), np.uint8(180)) * np.ones((1, 1, 3), np.uint8)
    return Image.fromarray(board.astype(np.uint8), "RGB")


def _to_rgb(arr: np.ndarray) -> Image.Image:
    """An RGB PIL image of an (H, W, C) uint8 array; alpha over a checkerboard."""
    from PIL import Image

    c = arr.shape[2]
    if c in (1, 3):
        return Image.fromarray(np.ascontiguousarray(_rgba(arr)[:, :, :3]), "RGB")
    top = Image.fromarray(np.ascontiguousarray(_rgba(arr)), "RGBA")
    board = _checkerboard(arr.shape[1], arr.shape[0]).convert("RGBA")
    return Image.alpha_composite(board, top).convert("RGB")


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _caption_size(text: str, font) -> tuple[int, int]:
    from PIL import Image, ImageDraw

    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font)
    return math.ceil(right - left), math.ceil(bottom - top)


def _with_caption(panel: Image.Image, text: str, *, font_size: int) -> Image.Image:
    """``panel`` with ``text`` below it, widened if the text is wider."""
    from PIL import Image, ImageDraw

    if not text:
        return panel
    font = _font(font_size)
    tw, th = _caption_size(text, font)
    width = max(panel.width, tw + 2 * _GAP)
    out = Image.new("RGB", (width, panel.height + th + 2 * _GAP), _BACKGROUND)
    out.paste(panel, (0, 0))
    draw = ImageDraw.Draw(out)
    left, top, _, _ = draw.multiline_textbbox((0, 0), text, font=font)
    draw.multiline_text((_GAP - left, panel.height + _GAP - top), text, fill=_TEXT, font=font)
    return out


def _mse(original: np.ndarray, quantized: np.ndarray) -> float:
    diff = quantized.astype(np.float64) - original.astype(np.float64)
    return float(np.mean(diff**2))


def default_caption(k: int, mse: float, *, num_bytes: int | None = None) -> str:
    """The caption of :func:`compare_image`: ``K = k   MSE = ...   PSNR = ... dB[   n bytes]``.

    Examples:
      >>> default_caption(16, 25.0, num_bytes=1234)
      'K = 16   MSE = 25.00   PSNR = 34.15 dB   1,234 bytes'
    """
    psnr = "inf (lossless)" if mse <= 0 else f"{10.0 * math.log10(255.0**2 / mse):.2f} dB"
    text = f"K = {k}   MSE = {mse:.2f}   PSNR = {psnr}"
    return text if num_bytes is None else f"{text}   {num_bytes:,} bytes"


def _pad(frames: list[Image.Image]) -> list[Image.Image]:
    """Frames on canvases of the largest frame's size (top left), all RGB."""
    from PIL import Image

    width = max(f.width for f in frames)
    height = max(f.height for f in frames)
    out = []
    for f in frames:
        if f.size == (width, height) and f.mode == "RGB":
            out.append(f)
            continue
        canvas = Image.new("RGB", (width, height), _BACKGROUND)
        canvas.paste(f.convert("RGB"), (0, 0))
        out.append(canvas)
    return out


def _frame(frame) -> Image.Image:
    from PIL import Image

    return frame.convert("RGB") if isinstance(frame, Image.Image) else _to_rgb(_image(frame))


def _matplotlib(what: str):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            f'{what} draws a chart with matplotlib: pip install "jaxquant[plot]"'
        ) from None
    return Figure


def _k_axis(ax, ks: np.ndarray) -> None:
    """A log2 x axis labelled with the values of K themselves."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [f"{k:g}" for k in ks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("K")


def _save_figure(fig, path: str | os.PathLike, *, dpi: int) -> int:
    if os.fspath(path) == STDOUT:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        return write_stdout(buffer.getvalue())
    path = Path(path)
    fmt = path.suffix[1:].lower() or "png"
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
        return tmp.stat().st_size


# --------------------------------------------------------------------------------------
# Images.


def palette_swatch(
    palette,
    *,
    cell: int = 24,
    columns: int | None = None,
    levels: bool = False,
) -> Image.Image:
    """A grid of the palette's colours, row by row in palette order.

    Args:
      palette: ``(k, C)`` colours, uint8 or float in ``[0, 1]``, ``C`` in 1..4.
      cell: side of each colour's square in pixels.
      columns: squares per row (default ``min(k, 16)``); cells after the last colour are
        left white. Squares of 8 pixels or more get a light gray outline.
      levels: the palette holds per-channel intensity levels (``channel`` mode), not
        colours: draw one column per channel, its levels in increasing order as shades of
        the channel (red, green, blue; gray for gray and alpha). ``columns`` is then
        ``C``.

    Returns:
      An RGB PIL image of ``columns·cell × ceil(k / columns)·cell`` pixels
      (``C·cell × k·cell`` with ``levels``).

    Examples:
      >>> import numpy as np
      >>> swatch = palette_swatch(np.array([[255, 0, 0], [0, 0, 255]], np.uint8), cell=10)
      >>> swatch.size, swatch.getpixel((5, 5)), swatch.getpixel((15, 5))
      ((20, 10), (255, 0, 0), (0, 0, 255))
    """
    pal = _palette(palette)
    if levels:
        pal, columns = _level_colours(pal), pal.shape[1]
    k = pal.shape[0]
    if not (isinstance(cell, int) and cell >= 1):
        raise ValueError(f"cell must be a positive integer, got {cell!r}")
    columns = min(k, 16) if columns is None else columns
    if not (isinstance(columns, int) and columns >= 1):
        raise ValueError(f"columns must be a positive integer, got {columns!r}")
    rows = -(-k // columns)
    from PIL import Image, ImageDraw

    # Each colour fills its square; a transparent one shows the checkerboard through it.
    grid = np.zeros((rows * columns, 4), np.uint8)
    grid[:k] = _rgba(pal)
    grid = grid.reshape(rows, columns, 4)
    cells = np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)
    out = _to_rgb(np.ascontiguousarray(cells))
    if rows * columns > k:  # unused cells: background, not checkerboard
        pixels = np.asarray(out).copy().reshape(rows, cell, columns, cell, 3)
        unused = np.arange(rows * columns).reshape(rows, columns) >= k
        pixels[unused.nonzero()[0], :, unused.nonzero()[1], :] = _BACKGROUND
        out = Image.fromarray(pixels.reshape(rows * cell, columns * cell, 3), "RGB")
    if cell >= 8:  # outline the squares, so that a white colour shows on white
        draw = ImageDraw.Draw(out)
        for i in range(k):
            x, y = (i % columns) * cell, (i // columns) * cell
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], outline=(200, 200, 200))
    return out


def _level_colours(palette: np.ndarray) -> np.ndarray:
    """(k, C) levels -> (k·C, 3) colours, row by row: each column sorted, in its shade."""
    k, c = palette.shape
    ordered = np.sort(palette, axis=0).astype(np.uint16)
    out = np.zeros((k, c, 3), np.uint16)
    for j in range(c):
        if c >= 3 and j < 3:
            out[:, j, j] = ordered[:, j]
        else:
            out[:, j, :] = ordered[:, j : j + 1]
    return out.reshape(k * c, 3).astype(np.uint8)


def _swatch_panel(palette: np.ndarray, side: int, *, levels: bool) -> Image.Image:
    """The palette as a square ``side × side`` panel, cells as large as fit."""
    from PIL import Image

    k, c = palette.shape
    columns = c if levels else math.ceil(math.sqrt(k))
    rows = k if levels else -(-k // columns)
    cell = max(1, side // max(columns, rows))
    swatch = palette_swatch(palette, cell=cell, columns=columns, levels=levels)
    panel = Image.new("RGB", (max(side, swatch.width), max(side, swatch.height)), _BACKGROUND)
    panel.paste(swatch, ((panel.width - swatch.width) // 2, (panel.height - swatch.height) // 2))
    return panel


def compare_image(
    original,
    quantized,
    palette,
    *,
    caption: str | None = None,
    num_bytes: int | None = None,
    levels: bool = False,
) -> Image.Image:
    """Original | quantized | palette swatch side by side, with a caption below.

    The swatch is a square panel as tall as the images (at least 64 pixels); the image is
    widened if the caption is wider than the panels.

    Args:
      original: the input image, ``(H, W)`` or ``(H, W, C)``.
      quantized: the quantized image, same shape.
      palette: ``(k, C)`` palette (``(k, 1)`` gray levels for ``global`` mode).
      caption: the text below the panels. Default:
        ``"K = k   MSE = ...   PSNR = ... dB"`` (MSE over pixels and channels on the
        0..255 scale, as :func:`jaxquant.quantize` reports it) and
        ``"   n bytes"`` when ``num_bytes`` is given. ``""``: no caption.
      num_bytes: the size of the compressed file, shown in the default caption.
      levels: the palette holds per-channel levels (``channel`` mode); see
        :func:`palette_swatch`.

    Returns:
      An RGB PIL image.

    Raises:
      ValueError: if the images differ in shape.

    Examples:
      >>> import numpy as np
      >>> original = np.zeros((32, 48, 3), np.uint8); original[:, 24:] = 200
      >>> quantized = np.full_like(original, 100)
      >>> palette = np.array([[100, 100, 100]], np.uint8)
      >>> im = compare_image(original, quantized, palette, num_bytes=123)
      >>> im.mode, im.width >= 2 * 48 + 64, im.height > 64
      ('RGB', True, True)
    """
    from PIL import Image

    before, after = _image(original, "original"), _image(quantized, "quantized")
    pal = _palette(palette)
    if before.shape != after.shape:
        raise ValueError(
            f"original and quantized images differ in shape: {before.shape} vs {after.shape}"
        )
    h, w, _ = before.shape
    swatch = _swatch_panel(pal, max(h, _MIN_SWATCH), levels=levels)
    height = max(h, swatch.height)
    panels = Image.new("RGB", (2 * w + swatch.width + 4 * _GAP, height + 2 * _GAP), _BACKGROUND)
    panels.paste(_to_rgb(before), (_GAP, _GAP))
    panels.paste(_to_rgb(after), (2 * _GAP + w, _GAP))
    panels.paste(swatch, (3 * _GAP + 2 * w, _GAP))
    if caption is None:
        caption = default_caption(pal.shape[0], _mse(before, after), num_bytes=num_bytes)
    return _with_caption(panels, caption, font_size=max(12, min(24, height // 16)))


def sweep_frames(
    original,
    results: Sequence[Any],
    *,
    num_bytes: Sequence[int] | None = None,
    levels: bool = False,
) -> list[Image.Image]:
    """One :func:`compare_image` frame per result, captioned with its K, for a GIF.

    Args:
      original: the input image.
      results: quantization results of ``original`` (anything with ``image`` and
        ``palette``, such as :class:`~jaxquant.QuantizeResult`), e.g. one per K of a sweep.
      num_bytes: the compressed size of each result, shown in its caption.
      levels: the palettes hold per-channel levels (``channel`` mode); see
        :func:`palette_swatch`.

    Returns:
      RGB PIL images, all of the same size (the largest frame's; smaller ones are padded
      with white at the right and bottom).

    Examples:
      >>> import jax, numpy as np, jaxquant
      >>> image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
      >>> fast = dict(num_steps=40, batch_size=256)  # a quick fit for the example
      >>> results = [jaxquant.quantize(jax.random.key(0), image, k, **fast) for k in (2, 4)]
      >>> frames = sweep_frames(image, results)
      >>> len(frames), frames[0].size == frames[1].size
      (2, True)
    """
    results = list(results)
    if not results:
        raise ValueError("results is empty: nothing to draw")
    if num_bytes is not None and len(num_bytes) != len(results):
        raise ValueError(f"num_bytes has {len(num_bytes)} sizes for {len(results)} results")
    frames = [
        compare_image(
            original,
            r.image,
            r.palette,
            num_bytes=None if num_bytes is None else int(num_bytes[i]),
            levels=levels,
        )
        for i, r in enumerate(results)
    ]
    return _pad(frames)


def save_gif(
    frames: Sequence[Any],
    path: str | os.PathLike,
    *,
    duration: int | Sequence[int] = 500,
    loop: int = 0,
) -> int:
    """Write frames as an animated GIF, atomically.

    Frames of different sizes are padded with white to the largest. GIF holds at most 256
    colours per frame: Pillow reduces each frame's colours (exactly when it has no more).
    Pillow also merges a frame identical to the previous one into it, adding the
    durations.

    Args:
      frames: PIL images or image arrays (as elsewhere in this module), at least one.
      path: the output file; its directory must exist.
      duration: display time of each frame in milliseconds, one number for all or one per
        frame.
      loop: times to loop, 0 for forever.

    Returns:
      The size of the written file in bytes.

    Examples:
      >>> import numpy as np, os, tempfile
      >>> from PIL import Image
      >>> frames = [np.full((8, 8, 3), v, np.uint8) for v in (0, 128, 255)]
      >>> path = os.path.join(tempfile.mkdtemp(), "fade.gif")
      >>> save_gif(frames, path, duration=100) > 0
      True
      >>> with Image.open(path) as gif:
      ...     gif.n_frames
      3
    """
    frames = [_frame(f) for f in frames]
    if not frames:
        raise ValueError("frames is empty: a GIF needs at least one frame")
    if not isinstance(duration, int):
        duration = [int(d) for d in duration]
        if len(duration) != len(frames):
            raise ValueError(f"duration has {len(duration)} values for {len(frames)} frames")
    frames = _pad(frames)
    if os.fspath(path) != STDOUT and Path(path).suffix.lower() != ".gif":
        raise ValueError(f"{path}: an animation is written as GIF; name the file .gif")
    return save_image(
        frames[0],
        path,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=duration,
        loop=loop,
    )


# --------------------------------------------------------------------------------------
# Histograms.


def _histograms(image: np.ndarray, pooled: bool) -> tuple[np.ndarray, list[str]]:
    """(rows, 256) intensity counts: one row per channel, or one for all channels."""
    c = image.shape[2]
    if pooled:
        return np.bincount(image.reshape(-1), minlength=256)[None, :], ["all channels"]
    counts = np.stack([np.bincount(image[:, :, j].reshape(-1), minlength=256) for j in range(c)])
    return counts, _CHANNEL_NAMES[c]


def histogram_image(
    before,
    after,
    *,
    pooled: bool = False,
    height: int = 80,
) -> Image.Image:
    """Intensity histograms of two images, before (left) and after (right) quantization.

    One row of panels per channel (or one row for all channels pooled, which is what a
    ``global``-mode palette quantizes); each panel is 256 pixels wide, one column per
    intensity, and its bars' heights are proportional to the square root of the counts
    (so that a large uniform background does not flatten the rest), scaled to the panel's
    tallest. After ``channel`` or
    ``global`` quantization to k levels, each right-hand panel has at most k bars.

    Args:
      before: the original image, ``(H, W)`` or ``(H, W, C)``.
      after: the quantized image, same number of channels.
      pooled: one histogram of all channels' intensities instead of one per channel.
      height: height of each panel in pixels.

    Returns:
      An RGB PIL image.

    Examples:
      >>> import numpy as np
      >>> image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
      >>> im = histogram_image(image, image // 64 * 64)
      >>> im.mode, im.width > 512
      ('RGB', True)
    """
    from PIL import Image, ImageDraw

    a, b = _image(before, "before"), _image(after, "after")
    if a.shape[2] != b.shape[2]:
        raise ValueError(f"before and after differ in channels: {a.shape[2]} vs {b.shape[2]}")
    if not (isinstance(height, int) and height >= 8):
        raise ValueError(f"height must be an integer >= 8, got {height!r}")
    (ca, names), (cb, _) = _histograms(a, pooled), _histograms(b, pooled)
    colours = [(90, 90, 90)] if pooled else _CHANNEL_COLOURS[a.shape[2]]
    font = _font(12)
    _, line = _caption_size("Ag", font)
    label_w = max(_caption_size(n, font)[0] for n in names) + 2 * _GAP
    top = line + 2 * _GAP
    row_h = height + _GAP
    width = label_w + 2 * 256 + 3 * _GAP
    out = Image.new("RGB", (width, top + len(names) * row_h + _GAP), _BACKGROUND)
    draw = ImageDraw.Draw(out)
    for title, x0 in (("before", label_w + _GAP), ("after", label_w + 2 * _GAP + 256)):
        draw.text((x0, _GAP), title, fill=_TEXT, font=font)
    for r, name in enumerate(names):
        y1 = top + r * row_h + height  # panel bottom
        draw.text((_GAP, y1 - height // 2 - line // 2), name, fill=_TEXT, font=font)
        for counts, x0 in ((ca[r], label_w + _GAP), (cb[r], label_w + 2 * _GAP + 256)):
            draw.rectangle([x0, y1 - height, x0 + 255, y1], fill=(245, 245, 245))
            root = np.sqrt(counts)
            bars = np.ceil(root / max(float(root.max()), 1.0) * height).astype(int)
            for v in np.flatnonzero(bars):
                draw.line([(x0 + int(v), y1), (x0 + int(v), y1 - int(bars[v]))], fill=colours[r])
    return out


def plot_histograms(
    before,
    after,
    path: str | os.PathLike,
    *,
    pooled: bool = False,
    dpi: int = 100,
) -> int:
    """Intensity histograms before and after quantization as a matplotlib chart.

    The matplotlib counterpart of :func:`histogram_image`: one subplot per channel (or
    one for all channels pooled) with the original's histogram as a filled curve and the
    quantized image's levels as stems, both as fractions of the pixels.

    Args:
      before: the original image.
      after: the quantized image, same number of channels.
      path: output file; the format follows its suffix (``.png``, ``.svg``, ``.pdf``...).
      pooled: one histogram of all channels' intensities.
      dpi: resolution of raster formats.

    Returns:
      The size of the written file in bytes.

    Raises:
      ImportError: without matplotlib (``pip install "jaxquant[plot]"``).

    Examples:
      >>> import numpy as np
      >>> image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
      >>> plot_histograms(image, image // 64 * 64, "hist.png")  # doctest: +SKIP
      31337
    """
    figure = _matplotlib("plot_histograms")
    a, b = _image(before, "before"), _image(after, "after")
    if a.shape[2] != b.shape[2]:
        raise ValueError(f"before and after differ in channels: {a.shape[2]} vs {b.shape[2]}")
    (ca, names), (cb, _) = _histograms(a, pooled), _histograms(b, pooled)
    colours = [(90, 90, 90)] if pooled else _CHANNEL_COLOURS[a.shape[2]]
    fig = figure(figsize=(7, 1.8 * len(names) + 0.6), layout="constrained")
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    levels = np.arange(256)
    for ax, name, hist_a, hist_b, rgb in zip(axes, names, ca, cb, colours, strict=True):
        colour = tuple(v / 255 for v in rgb)
        ax.fill_between(levels, hist_a / hist_a.sum(), step="mid", color=colour, alpha=0.3)
        used = np.flatnonzero(hist_b)
        ax.vlines(used, 0, hist_b[used] / hist_b.sum(), color=colour, linewidth=1.5)
        ax.set_ylabel(name)
        ax.set_xlim(-1, 256)
        ax.set_ylim(bottom=0)
    axes[0].set_title("intensities: original (filled), quantized (lines)")
    axes[-1].set_xlabel("intensity")
    return _save_figure(fig, path, dpi=dpi)


def plot_errors(
    ks: Sequence[int],
    mse: Sequence[float],
    psnr: Sequence[float],
    sizes: Sequence[int] | None,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    dpi: int = 100,
) -> int:
    """MSE and PSNR against K, and file size against K, as a matplotlib chart.

    Left: MSE (log scale) and PSNR (right axis) against K; right: the compressed file's
    size against K (omitted when ``sizes`` is None). K is on a log2 axis.

    Args:
      ks: the palette sizes.
      mse: MSE at each K (0..255 scale).
      psnr: PSNR at each K in dB (infinite values, lossless results, are not drawn).
      sizes: file size in bytes at each K, or None.
      path: output file; the format follows its suffix.
      title: a title above the chart.
      dpi: resolution of raster formats.

    Returns:
      The size of the written file in bytes.

    Raises:
      ImportError: without matplotlib (``pip install "jaxquant[plot]"``).

    Examples:
      >>> ks, mse, psnr = [2, 4, 8], [900.0, 400.0, 200.0], [18.6, 22.1, 25.1]
      >>> plot_errors(ks, mse, psnr, [1000, 2000, 3500], "errors.png")  # doctest: +SKIP
      27512
    """
    figure = _matplotlib("plot_errors")
    xs, mses, psnrs = (np.asarray(v, np.float64) for v in (ks, mse, psnr))
    n = len(xs)
    if n == 0 or mses.shape != (n,) or psnrs.shape != (n,):
        raise ValueError(
            f"ks, mse and psnr must be non-empty and of one length, got {n}, "
            f"{mses.shape}, {psnrs.shape}"
        )
    if sizes is not None and len(sizes) != n:
        raise ValueError(f"sizes has {len(sizes)} values for {n} values of K")
    fig = figure(figsize=(9 if sizes is not None else 5, 3.5), layout="constrained")
    axes = fig.subplots(1, 2 if sizes is not None else 1, squeeze=False)[0]
    ax = axes[0]
    positive = mses > 0  # log scale: lossless points are left out
    ax.plot(xs[positive], mses[positive], "o-", color="tab:red", label="MSE")
    ax.set_yscale("log")
    _k_axis(ax, xs)
    ax.set_ylabel("MSE (0..255 scale)", color="tab:red")
    twin = ax.twinx()
    finite = np.isfinite(psnrs)
    twin.plot(xs[finite], psnrs[finite], "s--", color="tab:blue", label="PSNR")
    twin.set_ylabel("PSNR (dB)", color="tab:blue")
    if sizes is not None:
        axes[1].plot(xs, np.asarray(sizes, np.float64) / 1024, "o-", color="tab:green")
        _k_axis(axes[1], xs)
        axes[1].set_ylabel("file size (KiB)")
        axes[1].set_ylim(bottom=0)
    if title:
        fig.suptitle(title)
    return _save_figure(fig, path, dpi=dpi)


# --------------------------------------------------------------------------------------
# The palette over the SQ steps.


@dataclasses.dataclass(frozen=True)
class Frame:
    """The palette after ``step`` SQ steps and the image it quantizes to.

    Attributes:
      step: SQ steps taken (0: the seeding).
      image: the quantized image, the input's shape and dtype.
      palette: ``(k, C)`` palette, the input's colour type.
      mse: MSE over pixels and channels on the 0..255 scale.
    """

    step: int
    image: np.ndarray
    palette: np.ndarray
    mse: float


def palette_steps(key, image, k: int, *, num_frames: int = 20, **options) -> list[Frame]:
    """The palette of :func:`jaxquant.quantize` as it converges, at evenly spaced steps.

    One compiled scan runs the fit of ``quantize(key, image, k, **options)`` with
    ``SQ(record=True)``, keeping the palette after every step; ``num_frames + 1`` of
    them, from step 0 (the seeding) to the last step, are converted to colours and every
    pixel is remapped to them (:func:`jaxquant.remap`). The last frame is ``quantize``'s
    own palette and image (after its Lloyd polish, if any).

    Args:
      key: a PRNG key.
      image: as for :func:`jaxquant.quantize`.
      k: palette size.
      num_frames: frames after the seeding one (at most the number of steps).
      **options: the fitting options of :func:`jaxquant.quantize` (the solver must be
        :class:`~jaxquant.solvers.SQ` with ``num_steps >= 1``).

    Returns:
      :class:`Frame` s in step order (one frame for an image that has at most ``k``
      colours: the lossless result needs no step).

    Examples:
      >>> import jax, numpy as np
      >>> image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
      >>> frames = palette_steps(jax.random.key(0), image, 4, num_frames=4, num_steps=40)
      >>> [f.step for f in frames], frames[-1].palette.shape
      ([0, 10, 20, 30, 40], (4, 3))
    """
    import jax

    from jaxquant import _checks
    from jaxquant._fit import FitOptions, fit_palette
    from jaxquant._quantize import prepare
    from jaxquant._remap import remap
    from jaxquant.solvers import SQ

    key = _checks.check_key(key)
    num_frames = _checks.check_count("num_frames", num_frames, minimum=1)
    opts = FitOptions.make(k, **options)
    solver = opts.solver
    if not isinstance(solver, SQ):
        raise ValueError("palette_steps animates SQ steps: the solver must be jaxquant.SQ")
    num_steps = solver.sizes[0]
    if num_steps < 1:
        raise ValueError("an animation of the SQ steps needs num_steps >= 1")
    squeeze = not hasattr(image, "mode") and np.ndim(image) == 2
    arr = _checks.as_image_array(image)
    prep = prepare(arr, k, opts)
    fit_options = {**opts.kwargs(), "solver": dataclasses.replace(solver, record=True)}
    fit = fit_palette(key, prep.problem, k, **fit_options)
    if fit.palettes is None:  # lossless: no step ran
        steps, palettes = [0], [fit.palette]
    else:
        count = min(num_frames, num_steps) + 1
        steps = [int(s) for s in np.unique(np.round(np.linspace(0, num_steps, count)))]
        history = fit.palettes[np.array(steps[:-1])]
        palettes = list(jax.vmap(prep.problem.colours_from)(history)) + [fit.palette]
    frames = []
    target = arr[:, :, 0] if squeeze else arr
    for step, palette in zip(steps, palettes, strict=True):
        r = remap(target, palette, space=prep.problem.space, layout=solver.layout)
        frames.append(Frame(step, np.asarray(r.image), np.asarray(r.palette), float(r.mse)))
    return frames


def animate_steps(
    key, image, k: int, path, *, num_frames: int = 20, duration: int = 150, **options
) -> int:
    """Write :func:`palette_steps` as an animated GIF; returns its size in bytes.

    Each frame is original | quantized | palette with the step and MSE below; the last
    frame is shown three times as long.

    Args:
      key: a PRNG key.
      image: as for :func:`jaxquant.quantize`.
      k: palette size.
      path: the output ``.gif``.
      num_frames: frames after the seeding one.
      duration: milliseconds per frame.
      **options: the fitting options of :func:`jaxquant.quantize`.

    Returns:
      The size of the written file in bytes.

    Examples:
      >>> import jax, numpy as np, os, tempfile
      >>> image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
      >>> path = os.path.join(tempfile.mkdtemp(), "steps.gif")
      >>> animate_steps(jax.random.key(0), image, 4, path, num_frames=2, num_steps=40) > 0
      True
    """
    frames = palette_steps(key, image, k, num_frames=num_frames, **options)
    last = frames[-1].step
    pictures = [
        compare_image(
            image,
            f.image,
            f.palette,
            caption=f"K = {k}   step {f.step} / {last}   MSE = {f.mse:.2f}",
        )
        for f in frames
    ]
    durations = [duration] * (len(pictures) - 1) + [3 * duration]
    return save_gif(pictures, path, duration=durations)
