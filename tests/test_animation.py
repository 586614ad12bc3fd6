"""Animations: frames in, one shared palette, no flicker in still areas, exact round trips."""

from __future__ import annotations

import io as _io

import jax
import numpy as np
import pytest
from PIL import Image, ImageSequence

import jaxquant
from jaxquant import animation
from jaxquant.cli import main
from tests.conftest import FAST

CLI_FAST = ["--steps", "40", "--batch-size", "256", "--cache-dir", ""]


@pytest.fixture
def frames(photo):
    """Six frames: a still background with a patch moving across it."""
    patch = photo[:16, :24][::-1].copy()
    out = []
    for t in range(6):
        frame = photo.copy()
        frame[20:36, 6 * t : 6 * t + 24] = patch
        out.append(frame)
    return out


def _decode(data: bytes) -> list[np.ndarray]:
    with Image.open(_io.BytesIO(data)) as im:
        return [np.asarray(f.convert("RGBA")) for f in ImageSequence.Iterator(im)]


@pytest.mark.parametrize("dither", ["none", "ordered"])
def test_shared_palette_does_not_flicker(frames, dither):
    results = animation.quantize_frames(jax.random.key(0), frames, 16, dither=dither, **FAST)
    palettes = {np.asarray(r.palette).tobytes() for r in results}
    assert len(palettes) == 1
    assert animation.flicker(frames, [np.asarray(r.image) for r in results]) == 0.0


def test_per_frame_palettes_are_each_fitted(frames):
    results = animation.quantize_frames(
        jax.random.key(0), frames, 16, shared=False, dither="none", **FAST
    )
    assert len({np.asarray(r.palette).tobytes() for r in results}) > 1
    want = jaxquant.quantize(jax.random.split(jax.random.key(0), 6)[2], frames[2], 16, **FAST)
    np.testing.assert_array_equal(np.asarray(results[2].image), np.asarray(want.image))


def test_flicker_closed_form():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0] = 9  # one pixel moves; three stay still
    out_a, out_b = a.copy(), a.copy()
    out_b[1, 1] = 5  # one still pixel changes colour
    assert animation.flicker([a, b], [out_a, out_b]) == pytest.approx(1 / 3)
    assert np.isnan(animation.flicker([a, b + 1], [out_a, out_b]))


@pytest.mark.parametrize("fmt", animation.ANIMATION_FORMATS)
def test_round_trip_is_exact(frames, fmt):
    results = animation.quantize_frames(jax.random.key(1), frames, 12, **FAST)
    data = animation.encode_animation(results, durations=[40, 50, 60, 70, 80, 90], format=fmt)
    decoded = _decode(data)
    assert len(decoded) == 6
    for got, r in zip(decoded, results, strict=True):
        np.testing.assert_array_equal(got[..., :3], np.asarray(r.image))
    with Image.open(_io.BytesIO(data)) as im:
        if fmt != "webp":
            assert im.info["duration"] == 40


def test_transparency(frames):
    rgba = [
        np.dstack([f, np.where(np.arange(96) < 10, 0, 255).astype(np.uint8)[None].repeat(64, 0)])
        for f in frames
    ]
    results = animation.quantize_frames(jax.random.key(0), rgba, 8, **FAST)
    for fmt in ("gif", "png"):
        decoded = _decode(animation.encode_animation(results, format=fmt))
        for got in decoded:
            assert (got[:, :10, 3] == 0).all()
            assert (got[:, 10:, 3] == 255).all()
    translucent = [f.copy() for f in rgba]
    for f in translucent:
        f[:, :10, 3] = 128
    results = animation.quantize_frames(jax.random.key(0), translucent, 8, **FAST)
    with pytest.raises(ValueError, match="translucent"):
        animation.encode_animation(results, format="gif")
    decoded = _decode(animation.encode_animation(results, format="png"))
    assert (decoded[0][:, :10, 3] == 128).all()


def test_load_frames(tmp_path, frames):
    images = [Image.fromarray(f) for f in frames]
    gif = tmp_path / "a.gif"
    images[0].save(gif, save_all=True, append_images=images[1:], duration=70, loop=3)
    got = jaxquant.io.load_frames(gif)
    assert len(got.frames) == 6
    assert got.durations == [70] * 6
    assert got.loop == 3
    assert got.frames[0].shape == (64, 96, 3)
    apng = tmp_path / "a.png"
    images[0].save(apng, save_all=True, append_images=images[1:], duration=50)
    got = jaxquant.io.load_frames(apng)
    np.testing.assert_array_equal(got.frames[4], frames[4])  # lossless
    still = tmp_path / "s.png"
    images[0].save(still)
    assert len(jaxquant.io.load_frames(still).frames) == 1
    assert jaxquant.io.frame_count(gif) == 6
    assert jaxquant.io.frame_count(still) == 1


def test_errors(frames):
    with pytest.raises(ValueError, match="at least one frame"):
        animation.quantize_frames(jax.random.key(0), [], 4)
    with pytest.raises(ValueError, match="frame 1 is"):
        animation.quantize_frames(jax.random.key(0), [frames[0], frames[1][:10]], 4)
    results = animation.quantize_frames(jax.random.key(0), frames[:2], 4, **FAST)
    with pytest.raises(ValueError, match="durations"):
        animation.encode_animation(results, durations=[1, 2, 3])
    with pytest.raises(ValueError, match="name an animation"):
        animation.save_animation(results, "x.bmp")


def test_cli_animated_gif_to_gif_and_apng(tmp_path, frames, capsys):
    images = [Image.fromarray(f) for f in frames]
    src = tmp_path / "in.gif"
    images[0].save(src, save_all=True, append_images=images[1:], duration=80, loop=0)
    for name in ("out.gif", "out.png"):
        out = tmp_path / name
        assert main(["compress", str(src), "-k", "16", "-o", str(out), *CLI_FAST]) == 0
        text = capsys.readouterr().out
        assert "6 of 96x64" in text
        assert "flicker   0.00%" in text
        with Image.open(out) as im:
            assert im.n_frames == 6
            assert im.info["duration"] == 80


def test_cli_frames_folder(tmp_path, frames, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:03d}.png")
    out = tmp_path / "a.gif"
    argv = [
        "compress",
        "--frames",
        str(folder),
        "-k",
        "16",
        "-o",
        str(out),
        "--frame-duration",
        "40",
    ]
    assert main([*argv, *CLI_FAST, "-q"]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 6
        assert im.info["duration"] == 40
    Image.fromarray(frames[0][:32]).save(folder / "999.png")
    assert main([*argv, "--force", *CLI_FAST]) == 2
    assert "frames must have one size" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--quality", "50-90"], "--quality does not go with it"),
        (["-k", "300"], "at most 256 colours"),
        (["--format", "rgb"], "gif, png or webp"),
    ],
)
def test_cli_animation_refusals(tmp_path, frames, capsys, extra, message):
    images = [Image.fromarray(f) for f in frames]
    src = tmp_path / "in.gif"
    images[0].save(src, save_all=True, append_images=images[1:])
    argv = ["compress", str(src), "-o", str(tmp_path / "o.gif"), *CLI_FAST]
    if "-k" not in extra:
        argv += ["-k", "8"]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "o.gif").exists()
