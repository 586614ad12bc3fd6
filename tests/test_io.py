"""Indexed PNG output and image reading."""

from __future__ import annotations

import os
import stat

import jax
import numpy as np
import pytest
from PIL import Image

import jaxquant
from jaxquant import io
from tests.conftest import FAST


@pytest.mark.parametrize(("k", "bits"), [(2, 1), (4, 2), (16, 4), (17, 8), (256, 8)])
def test_png_is_indexed_with_smallest_bit_depth(tmp_path, photo, k, bits):
    # The encoding is under test, not the fit: remap to a palette of k photo colours.
    palette = photo.reshape(-1, 3)[:: photo.shape[0] * photo.shape[1] // k][:k]
    r = jaxquant.remap(photo, palette)
    path = tmp_path / "out.png"
    size = jaxquant.save_png(r, path)
    assert size == os.path.getsize(path)
    with Image.open(path) as im:
        assert im.mode == "P"
        assert len(im.getpalette()) // 3 == k
        decoded = np.asarray(im.convert("RGB"))
        raw = path.read_bytes()
        assert raw[24] == bits  # IHDR bit depth byte
    np.testing.assert_array_equal(decoded, np.asarray(r.image))
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_grayscale_and_float_results(tmp_path, photo):
    r = jaxquant.quantize(jax.random.key(0), photo[:, :, 1], 4, **FAST)
    jaxquant.save_png(r, tmp_path / "g.png")
    with Image.open(tmp_path / "g.png") as im:
        np.testing.assert_array_equal(np.asarray(im.convert("L")), np.asarray(r.image))
    f = jaxquant.quantize(jax.random.key(0), photo.astype(np.float32) / 255, 4, **FAST)
    jaxquant.save_png(f, tmp_path / "f.png")
    with Image.open(tmp_path / "f.png") as im:
        expected = np.round(np.asarray(f.image) * 255).astype(np.uint8)
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), expected)


def test_rgba_palette_keeps_transparency(tmp_path):
    image = np.zeros((4, 4, 4), np.uint8)
    image[:2] = (255, 0, 0, 255)
    r = jaxquant.quantize(jax.random.key(0), image, 2, **FAST)
    jaxquant.save_png(r, tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as im:
        np.testing.assert_array_equal(np.asarray(im.convert("RGBA")), image)


def test_failed_write_leaves_nothing(tmp_path, photo):
    r = jaxquant.quantize(jax.random.key(0), photo, 4, **FAST)
    target = tmp_path / "keep.png"
    target.write_bytes(b"original")

    def crash():
        with io.atomic_write(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        crash()
    assert target.read_bytes() == b"original"
    assert os.listdir(tmp_path) == ["keep.png"]
    jaxquant.save_png(r, target)
    with Image.open(target) as im:
        assert im.mode == "P"


def test_more_than_256_colours_refused():
    with pytest.raises(ValueError, match="at most 256 colours"):
        io.to_pil(np.zeros((2, 2), np.int32), np.zeros((300, 3), np.uint8))


@pytest.mark.parametrize(
    ("mode", "channels"), [("RGB", 3), ("L", 1), ("P", 3), ("CMYK", 3), ("I;16", 1), ("LA", 2)]
)
def test_load_image_modes(tmp_path, photo, mode, channels):
    im = Image.fromarray(photo)
    if mode == "I;16":
        im = Image.fromarray(photo[:, :, 0].astype(np.uint16) * 257)
    elif mode == "LA":
        la = np.stack([photo[:, :, 0], np.full(photo.shape[:2], 128, np.uint8)], axis=-1)
        im = Image.fromarray(la, mode="LA")
    else:
        im = im.convert(mode)
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    im.save(path)
    arr = jaxquant.load_image(path)
    assert arr.dtype == np.uint8
    assert arr.shape == (*photo.shape[:2], channels)
    if mode == "I;16":
        np.testing.assert_array_equal(arr[:, :, 0], photo[:, :, 0])


def test_load_image_applies_exif_orientation(tmp_path):
    im = Image.new("RGB", (4, 2), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    im.save(tmp_path / "r.jpg", exif=exif)
    assert jaxquant.load_image(tmp_path / "r.jpg").shape == (4, 2, 3)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "no such file"),
        (b"", "not a recognised image"),
        (b"<html></html>", "not a recognised"),
    ],
)
def test_load_image_errors_name_the_file(tmp_path, content, match):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(io.ImageReadError, match=match) as e:
        jaxquant.load_image(path)
    assert str(path) in str(e.value)


def test_truncated_png(tmp_path, photo):
    path = tmp_path / "t.png"
    Image.fromarray(photo).save(path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(io.ImageReadError, match="t.png"):
        jaxquant.load_image(path)


def test_written_files_follow_the_umask(tmp_path):
    image = np.zeros((4, 4, 3), np.uint8)
    r = jaxquant.quantize(jax.random.key(0), image, 2, num_steps=1, batch_size=4)
    path = tmp_path / "out.png"
    jaxquant.save_png(r, path)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
