"""jaxquant.report: swatches, comparisons, GIFs, histograms and charts are valid images."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, NamedTuple

import numpy as np
import pytest
from PIL import Image

from jaxquant import report
from jaxquant.report import _GAP


class Result(NamedTuple):
    """Stands in for a QuantizeResult: report functions read only image and palette."""

    image: Any
    palette: Any


def _posterize(image: np.ndarray, k: int) -> Result:
    """A k-colour result without a fit: every pixel takes the nearest of k grays."""
    palette = np.round(np.linspace(0, 255, k)).astype(np.uint8)
    gray = image.mean(axis=-1)
    index = np.abs(gray[..., None] - palette.astype(np.float64)).argmin(axis=-1)
    return Result(
        np.repeat(palette[index][..., None], 3, axis=-1), np.repeat(palette[:, None], 3, 1)
    )


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)


def _reopen(path) -> Image.Image:
    """The image file decoded in full (so a truncated file fails), then closed."""
    with Image.open(path) as im:
        im.load()
    return im


# --------------------------------------------------------------------------------------
# Swatches.


def test_palette_swatch_layout_and_colours():
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [9, 9, 9]])
    swatch = report.palette_swatch(palette.astype(np.uint8), cell=10, columns=3)
    assert swatch.mode == "RGB"
    assert swatch.size == (30, 20)
    for i, colour in enumerate(palette):
        x, y = (i % 3) * 10 + 5, (i // 3) * 10 + 5
        assert swatch.getpixel((x, y)) == tuple(colour)
    assert swatch.getpixel((25, 15)) == (255, 255, 255)  # the unused sixth cell
    assert swatch.getpixel((10, 0)) == (200, 200, 200)  # outline: white shows on white


def test_palette_swatch_default_columns_and_float_gray_palettes():
    swatch = report.palette_swatch(np.linspace(0.0, 1.0, 20)[:, None], cell=4)
    assert swatch.size == (16 * 4, 2 * 4)
    assert swatch.getpixel((2, 2)) == (0, 0, 0)
    assert swatch.getpixel((3 * 4 + 2, 4 + 2)) == (255, 255, 255)  # index 19


def test_palette_swatch_shows_transparency_over_a_checkerboard():
    palette = np.array([[255, 0, 0, 255], [255, 0, 0, 0]], np.uint8)
    swatch = report.palette_swatch(palette, cell=16)
    assert swatch.getpixel((8, 8)) == (255, 0, 0)
    assert swatch.getpixel((16 + 4, 4)) in {(230, 230, 230), (180, 180, 180)}


def test_palette_swatch_levels_draws_sorted_channel_shades():
    levels = np.array([[200, 10, 30], [50, 250, 0]], np.uint8)  # (k=2, C=3)
    swatch = report.palette_swatch(levels, cell=10, levels=True)
    assert swatch.size == (30, 20)
    assert swatch.getpixel((5, 5)) == (50, 0, 0)
    assert swatch.getpixel((5, 15)) == (200, 0, 0)
    assert swatch.getpixel((15, 5)) == (0, 10, 0)
    assert swatch.getpixel((25, 15)) == (0, 0, 30)


@pytest.mark.parametrize(
    ("palette", "error"),
    [
        (np.zeros((0, 3), np.uint8), ValueError),
        (np.zeros((2, 5), np.uint8), ValueError),
        (np.zeros((2, 3), np.int64), TypeError),
        (np.full((2, 3), np.nan), ValueError),
    ],
)
def test_palette_swatch_refuses_bad_palettes(palette, error):
    with pytest.raises(error):
        report.palette_swatch(palette)


# --------------------------------------------------------------------------------------
# Comparisons and sweeps.


def test_compare_image_holds_both_images_and_the_swatch(image):
    result = _posterize(image, 4)
    im = report.compare_image(image, result.image, result.palette, num_bytes=1234)
    assert im.mode == "RGB"
    h, w, _ = image.shape
    assert im.width >= 2 * w + 64 + 4 * _GAP
    assert im.height > 64 + 2 * _GAP  # the swatch panel is at least 64 high, plus caption
    pixels = np.asarray(im)
    np.testing.assert_array_equal(pixels[_GAP : _GAP + h, _GAP : _GAP + w], image)
    x = 2 * _GAP + w
    np.testing.assert_array_equal(pixels[_GAP : _GAP + h, x : x + w], result.image)


def test_compare_image_caption():
    caption = report.default_caption(16, 25.0, num_bytes=1234)
    assert caption == "K = 16   MSE = 25.00   PSNR = 34.15 dB   1,234 bytes"
    assert report.default_caption(4, 0.0) == "K = 4   MSE = 0.00   PSNR = inf (lossless)"
    image = np.zeros((70, 20, 3), np.uint8)
    palette = np.zeros((1, 3), np.uint8)
    bare = report.compare_image(image, image, palette, caption="")
    default = report.compare_image(image, image, palette)
    long = report.compare_image(image, image, palette, caption="a much longer caption " * 5)
    assert bare.height == 70 + 2 * _GAP
    assert default.height > bare.height
    assert long.width > default.width  # the canvas widens to hold the caption


@pytest.mark.parametrize("shape", [(30, 20), (30, 20, 1), (30, 20, 4)])
def test_compare_image_grayscale_float_and_rgba(shape):
    original = np.random.default_rng(1).random(shape).astype(np.float32)
    quantized = np.round(original * 3) / 3
    c = 1 if len(shape) == 2 else shape[2]
    palette = np.linspace(0.0, 1.0, 4)[:, None] * np.ones((1, c))
    im = report.compare_image(original, quantized, palette)
    assert im.mode == "RGB"
    if c == 1:  # grays are drawn as grays: the original is exact after rounding to uint8
        want = np.round(original.reshape(30, 20) * 255).astype(np.uint8)
        np.testing.assert_array_equal(np.asarray(im)[_GAP : _GAP + 30, _GAP : _GAP + 20, 0], want)


def test_compare_image_refuses_mismatched_shapes(image):
    with pytest.raises(ValueError, match="shape"):
        report.compare_image(image, image[:10], np.zeros((2, 3), np.uint8))


def test_sweep_frames_one_frame_per_result_all_one_size(image):
    results = [_posterize(image, k) for k in (2, 4, 8, 64)]
    frames = report.sweep_frames(image, results, num_bytes=[100, 200, 300, 40000])
    assert len(frames) == 4
    assert len({f.size for f in frames}) == 1
    assert all(f.mode == "RGB" for f in frames)
    # The frames differ: each shows its own quantized image.
    assert len({f.tobytes() for f in frames}) == 4


def test_sweep_frames_errors(image):
    with pytest.raises(ValueError, match="empty"):
        report.sweep_frames(image, [])
    with pytest.raises(ValueError, match="num_bytes"):
        report.sweep_frames(image, [_posterize(image, 2)], num_bytes=[1, 2])


# --------------------------------------------------------------------------------------
# GIFs.


def test_save_gif_writes_every_frame(tmp_path, image):
    frames = report.sweep_frames(image, [_posterize(image, k) for k in (2, 4, 8)])
    path = tmp_path / "sweep.gif"
    size = report.save_gif(frames, path, duration=[100, 200, 300])
    assert size == os.path.getsize(path)
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 3
        assert gif.size == frames[0].size
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
        assert durations == [100, 200, 300]
    assert sorted(os.listdir(tmp_path)) == ["sweep.gif"]  # no temporary file left


def test_save_gif_pads_frames_of_different_sizes_and_accepts_arrays(tmp_path):
    frames = [np.zeros((10, 20, 3), np.uint8), np.full((30, 8), 0.5, np.float32)]
    path = tmp_path / "mixed.gif"
    report.save_gif(frames, path)
    with Image.open(path) as gif:
        assert gif.size == (20, 30)
        assert gif.n_frames == 2


def test_save_gif_replaces_atomically_and_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "out.gif"
    report.save_gif([np.zeros((4, 4, 3), np.uint8)], path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="duration"):
        report.save_gif([np.zeros((4, 4, 3), np.uint8)] * 2, path, duration=[1, 2, 3])
    with pytest.raises(ValueError, match="empty"):
        report.save_gif([], path)
    assert path.read_bytes() == before
    with pytest.raises(FileNotFoundError):
        report.save_gif([np.zeros((4, 4, 3), np.uint8)], tmp_path / "missing" / "out.gif")
    assert sorted(os.listdir(tmp_path)) == ["out.gif"]


# --------------------------------------------------------------------------------------
# Histograms.


def _bar_columns(im: Image.Image, colour) -> tuple[set, set]:
    """x positions of bars of ``colour`` in the before and after panels."""
    pixels = np.asarray(im)
    xs = np.flatnonzero(np.all(pixels == np.array(colour, np.uint8), axis=-1).any(axis=0))
    after_x0 = im.width - _GAP - 256
    return {x for x in xs if x < after_x0}, {x - after_x0 for x in xs if x >= after_x0}


def test_histogram_image_after_panel_has_one_bar_per_level(image):
    levels = np.array([0, 60, 61, 255], np.uint8)
    after = levels[np.random.default_rng(2).integers(0, 4, image.shape)]
    im = report.histogram_image(image, after, height=40)
    assert im.mode == "RGB"
    before_x, after_x = _bar_columns(im, (214, 39, 40))  # red channel
    assert after_x == {0, 60, 61, 255}
    assert len(before_x) > 100  # random intensities: bars nearly everywhere


def test_histogram_image_rows_per_channel_or_pooled(image):
    per_channel = report.histogram_image(image, image, height=40)
    pooled = report.histogram_image(image, image, height=40, pooled=True)
    gray = report.histogram_image(image[..., 0], image[..., 0], height=40)
    assert per_channel.width > 2 * 256
    assert per_channel.height - pooled.height == 2 * (40 + _GAP)
    assert gray.height == pooled.height
    with pytest.raises(ValueError, match="channels"):
        report.histogram_image(image, image[..., 0])


# --------------------------------------------------------------------------------------
# Charts (matplotlib, optional).


def test_report_does_not_import_matplotlib():
    code = "import sys, jaxquant.report; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_charts_without_matplotlib_say_how_to_install_it(monkeypatch, tmp_path, image):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails
    with pytest.raises(ImportError, match=r'pip install "jaxquant\[plot\]"'):
        report.plot_errors([2, 4], [10.0, 5.0], [38.0, 41.0], None, tmp_path / "e.png")
    with pytest.raises(ImportError, match=r'pip install "jaxquant\[plot\]"'):
        report.plot_histograms(image, image, tmp_path / "h.png")
    assert not list(tmp_path.iterdir())


def test_plot_errors_writes_png_and_svg(tmp_path):
    pytest.importorskip("matplotlib")
    ks = [2, 4, 8, 16, 256]
    mse = [900.0, 400.0, 200.0, 100.0, 0.0]  # the last is lossless: not on the log axis
    psnr = [18.6, 22.1, 25.1, 28.1, float("inf")]
    path = tmp_path / "errors.png"
    size = report.plot_errors(ks, mse, psnr, [1000, 2000, 3500, 5000, 9000], path, title="t")
    assert size == os.path.getsize(path)
    im = _reopen(path)
    assert im.format == "PNG"
    assert im.width > im.height
    narrow = report.plot_errors(ks, mse, psnr, None, tmp_path / "mse.png")
    assert narrow > 0
    assert _reopen(tmp_path / "mse.png").width < im.width
    report.plot_errors(ks, mse, psnr, None, tmp_path / "errors.svg")
    assert b"<svg" in (tmp_path / "errors.svg").read_bytes()[:1000]
    assert sorted(os.listdir(tmp_path)) == ["errors.png", "errors.svg", "mse.png"]


def test_plot_errors_refuses_mismatched_lengths(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="one length"):
        report.plot_errors([2, 4], [1.0], [40.0, 41.0], None, tmp_path / "e.png")
    with pytest.raises(ValueError, match="sizes"):
        report.plot_errors([2, 4], [1.0, 0.5], [40.0, 41.0], [1], tmp_path / "e.png")


@pytest.mark.parametrize("pooled", [False, True])
def test_plot_histograms_writes_a_png(tmp_path, image, pooled):
    pytest.importorskip("matplotlib")
    after = _posterize(image, 4).image
    path = tmp_path / "hist.png"
    size = report.plot_histograms(image, after, path, pooled=pooled)
    assert size == os.path.getsize(path)
    im = _reopen(path)
    assert im.format == "PNG"
    assert im.height > 100
