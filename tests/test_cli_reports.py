"""jaxquant compare, sweep and compress --space/--mode/--animate-steps: outputs and errors."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from PIL import Image

import jaxquant
from jaxquant import cli, report
from tests.conftest import TOL

# The shared fit configuration of tests/conftest.py's FAST, k = 4 and 16x16 images: the
# same compiled programs as tests/test_spaces.py.
FAST = ["--steps", "40", "--batch-size", "256", "--cache-dir", ""]
SIDE = 16
PANELS_WIDTH = 2 * SIDE + 64 + 4 * 8  # two images, the 64-pixel swatch, four gaps


@pytest.fixture
def rgb(tmp_path, photo):
    path = tmp_path / "in.png"
    Image.fromarray(np.ascontiguousarray(photo[::4, ::6])).save(path)
    return path


@pytest.fixture
def gray(tmp_path, photo):
    path = tmp_path / "gray.png"
    Image.fromarray(np.ascontiguousarray(photo[::4, ::6, 1])).save(path)
    return path


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("jaxquant: error: ")
    assert "Traceback" not in err
    return err


def test_compare_writes_the_three_panels_with_a_caption(rgb, tmp_path, capsys):
    out = tmp_path / "sub" / "compare.png"
    assert (
        cli.main(["compare", str(rgb), "-k", "4", "-o", str(out), "--space", "cielab", *FAST]) == 0
    )
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.width >= PANELS_WIDTH  # wider if the caption is
        assert im.height > 64 + 2 * 8  # the panels and a caption below them
        pixels = np.asarray(im.convert("RGB"))
    # The original sits at the top left, after the gap, unchanged.
    with Image.open(rgb) as src:
        np.testing.assert_array_equal(pixels[8 : 8 + SIDE, 8 : 8 + SIDE], np.asarray(src))
    printed = capsys.readouterr().out
    assert "space cielab, mode vector" in printed
    assert "indexed PNG" in printed


def test_compare_channel_mode_with_histograms(rgb, tmp_path):
    out, hist = tmp_path / "compare.jpg", tmp_path / "hist.png"
    argv = ["compare", str(rgb), "-k", "4", "-o", str(out), "--mode", "channel", "-q"]
    assert cli.main([*argv, "--histogram", str(hist), *FAST]) == 0
    with Image.open(out) as im:
        assert im.format == "JPEG"
        assert im.width >= PANELS_WIDTH  # wider if the caption is
    with Image.open(hist) as im:
        assert im.format == "PNG"
        assert im.width > 2 * 256
        assert im.height > 3 * 80  # one row of panels per channel


def test_sweep_writes_one_frame_per_k_and_a_chart(rgb, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    gif, chart = tmp_path / "sweep.gif", tmp_path / "errors.png"
    argv = ["sweep", str(rgb), "--ks", "4", "2", "4", "-o", str(gif), "--plot", str(chart)]
    assert cli.main([*argv, "--no-progress", *FAST]) == 0
    with Image.open(gif) as im:
        assert im.format == "GIF"
        assert im.n_frames == 2  # K = 2 and 4, each once
        assert im.width >= PANELS_WIDTH  # wider if the caption is
    with Image.open(chart) as im:
        assert im.format == "PNG"
        assert im.width > 300
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[2:4]] == ["2", "4"]


def test_compress_space_and_global_mode(rgb, tmp_path):
    out = tmp_path / "lab.png"
    assert (
        cli.main(["compress", str(rgb), "-k", "4", "-o", str(out), "--space", "oklab", *FAST]) == 0
    )
    with Image.open(out) as im:
        assert im.mode == "P"
    want = jaxquant.quantize(
        jax.random.key(0),
        np.asarray(Image.open(rgb)),
        4,
        space="oklab",
        num_steps=40,
        batch_size=256,
        runs=1,  # the command line's default
    )
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), want.image)
    out = tmp_path / "global.png"
    assert (
        cli.main(["compress", str(rgb), "-k", "4", "-o", str(out), "--mode", "global", *FAST]) == 0
    )
    with Image.open(out) as im:
        image = np.asarray(im.convert("RGB"))
    assert len(np.unique(image)) <= 4  # four intensities shared by all channels


def test_compress_animate_steps(rgb, tmp_path):
    out, gif = tmp_path / "out.png", tmp_path / "steps.gif"
    argv = ["compress", str(rgb), "-k", "4", "-o", str(out), "-q"]
    assert cli.main([*argv, "--animate-steps", str(gif), "--animate-frames", "4", *FAST]) == 0
    with Image.open(gif) as im:
        assert im.n_frames == 5  # the seeding and four frames of 10 steps
        assert im.width >= PANELS_WIDTH  # wider if the caption is


@pytest.mark.parametrize("options", [{}, {"rank": 3.0, "num_lloyd_steps": 2}])
def test_palette_steps_end_at_quantizes_result(photo, options):
    image = np.ascontiguousarray(photo[::4, ::6])
    frames = report.palette_steps(
        jax.random.key(0), image, 4, num_frames=4, num_steps=40, batch_size=256, **options
    )
    assert [f.step for f in frames] == [0, 10, 20, 30, 40]
    want = jaxquant.quantize(jax.random.key(0), image, 4, num_steps=40, batch_size=256, **options)
    np.testing.assert_array_equal(frames[-1].palette, want.palette)
    np.testing.assert_array_equal(frames[-1].image, want.image)
    np.testing.assert_allclose(frames[-1].mse, float(want.mse), **TOL["reorder"])
    assert frames[0].mse > frames[-1].mse  # SQ improves on the seeding


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["compare", "{missing}", "-k", "4", "-o", "{out}"], "{missing}: no such file"),
        (["compare", "{gray}", "-k", "4", "-o", "{out}", "--space", "cielab"], "RGB or RGBA"),
        (["compare", "{rgb}", "-k", "300", "-o", "{out}"], "at most 256 colours"),
        (["compare", "{rgb}", "-k", "4", "-o", "{tmp}"], "is a directory"),
        (["sweep", "{bad}", "-o", "{gif}"], "{bad}: not a recognised image file"),
        (
            ["sweep", "{rgb}", "--ks", "2", "-o", "{gif}", "--space", "oklab", "--mode", "channel"],
            "needs mode 'vector'",
        ),
        (["sweep", "{rgb}", "-o", "{out}"], "the output must be named .gif"),
        (["compare", "{rgb}", "--sample", "-k", "4", "-o", "{out}"], "exactly one of INPUT"),
        (
            [
                "compress",
                "{rgb}",
                "-k",
                "4",
                "-o",
                "{out}",
                "--mode",
                "global",
                "--animate-steps",
                "{out}",
            ],
            "mode vector only",
        ),
        (
            ["compress", "{rgb}", "{gray}", "-k", "4", "--out-dir", "{tmp}", "--mode", "channel"],
            "take one input file",
        ),
    ],
)
def test_user_errors_are_one_line(argv, reason, rgb, gray, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    names = dict(
        rgb=rgb,
        gray=gray,
        tmp=tmp_path,
        out=tmp_path / "o.png",
        gif=tmp_path / "o.gif",
        bad=bad,
        missing=tmp_path / "missing.png",
    )
    argv = [a.format(**names) for a in argv]
    assert cli.main([*argv, "--cache-dir", ""]) == 2
    assert reason.format(**names) in _error(capsys)


def test_compress_batch_mode_reports_gray_images_in_cielab(rgb, gray, tmp_path, capsys):
    out_dir = tmp_path / "out"
    argv = ["compress", str(rgb), str(gray), "--out-dir", str(out_dir), "-k", "4"]
    assert cli.main([*argv, "--space", "cielab", "--no-progress", *FAST]) == 1
    assert (out_dir / "in.png").exists()
    assert not (out_dir / "gray.png").exists()
    assert "RGB or RGBA" in capsys.readouterr().err


def test_animate_steps_gets_every_fit_flag(rgb, tmp_path, monkeypatch):
    """--animate-steps animates the fit that -o gets: --rank, --lloyd-steps and the rest."""
    seen = {}
    real = report.animate_steps

    def spy(key, image, k, path, **options):
        seen.update(options)
        return real(key, image, k, path, **options)

    monkeypatch.setattr(report, "animate_steps", spy)
    gif, out = tmp_path / "a.gif", tmp_path / "o.png"
    argv = ["compress", str(rgb), "-k", "4", "-o", str(out), "--animate-steps", str(gif)]
    flags = ["--rank", "3", "--lloyd-steps", "2", "--animate-frames", "2", "-q"]
    assert cli.main([*argv, *flags, *FAST]) == 0
    assert seen["rank"] == 3.0
    assert seen["num_lloyd_steps"] == 2
    assert seen["num_steps"] == 40
    assert seen["num_frames"] == 2
    with Image.open(gif) as im:
        assert im.n_frames == 3


def test_animate_steps_mode_is_checked_before_any_output(rgb, tmp_path, capsys):
    gif, out = tmp_path / "a.gif", tmp_path / "o.png"
    argv = ["compress", str(rgb), "-k", "4", "-o", str(out), "--animate-steps", str(gif)]
    assert cli.main([*argv, "--mode", "global", *FAST]) == 2
    assert "mode vector only" in _error(capsys)
    assert not out.exists()
    assert not gif.exists()
