"""Pillow-style calls: ``quantize_pil`` and ``QuantizeResult.to_pil``, and the messages a
Pillow habit (``quantize(im, 64)``) meets."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from PIL import Image

import jaxquant


@pytest.fixture(scope="module")
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)


def test_quantize_pil_is_quantize_with_a_fixed_key(rgb):
    im = jaxquant.quantize_pil(Image.fromarray(rgb), 16)
    assert im.mode == "P"
    assert im.size == (40, 24)
    assert len(im.getpalette()) == 16 * 3
    ref = jaxquant.quantize(jax.random.key(0), rgb, 16)
    np.testing.assert_array_equal(np.asarray(im), np.asarray(ref.indices))
    np.testing.assert_array_equal(np.asarray(im.convert("RGB")), np.asarray(ref.image))
    again = jaxquant.quantize_pil(rgb, 16)  # an array, the same default seed
    np.testing.assert_array_equal(np.asarray(again), np.asarray(im))
    other = jaxquant.quantize_pil(rgb, 16, seed=1, num_steps=50)
    assert other.mode == "P"


def test_quantize_pil_keeps_transparency_and_grey():
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)
    rgba[:4, :, 3] = 0  # fully transparent rows
    rgba[4:8, :, 3] = 255
    im = jaxquant.quantize_pil(Image.fromarray(rgba, "RGBA"), 32)
    assert im.mode == "P"
    back = np.asarray(im.convert("RGBA"))
    assert np.all(back[:4, :, 3] == 0)
    assert np.all(back[4:8, :, 3] == 255)
    grey = jaxquant.quantize_pil(Image.fromarray(rgba[:, :, 0], "L"), 4)
    pal = np.asarray(grey.getpalette()[: 4 * 3]).reshape(4, 3)
    assert np.all(pal[:, 0] == pal[:, 1])
    assert np.all(pal[:, 1] == pal[:, 2])


def test_to_pil_round_trips_the_quantized_image(rgb):
    result = jaxquant.quantize(jax.random.key(3), rgb, 8, dither="fs")
    im = result.to_pil()
    np.testing.assert_array_equal(np.asarray(im.convert("RGB")), np.asarray(result.image))


def test_to_pil_refuses_what_is_not_one_indexed_image(rgb):
    channel = jaxquant.quantize(jax.random.key(0), rgb, 4, mode="channel")
    with pytest.raises(ValueError, match=r"one palette index per pixel, \(H, W\)"):
        channel.to_pil()
    big = jaxquant.quantize(jax.random.key(0), rgb, 300)
    with pytest.raises(ValueError, match="at most 256 colours"):
        big.to_pil()


@pytest.mark.parametrize(
    ("colors", "error"), [(0, ValueError), (257, ValueError), (True, TypeError)]
)
def test_quantize_pil_colour_counts(rgb, colors, error):
    with pytest.raises(error, match="colors"):
        jaxquant.quantize_pil(rgb, colors)


def test_pillow_habits_get_a_message_that_says_what_goes_where(rgb):
    with pytest.raises(TypeError, match=r"got a PIL image: the key comes first.*quantize_pil"):
        jaxquant.quantize(Image.fromarray(rgb), 64)
    with pytest.raises(TypeError, match=r"array of shape \(24, 40, 3\): the key comes first"):
        jaxquant.quantize(rgb, 64)
    with pytest.raises(TypeError, match="needs k, the number of palette colours"):
        jaxquant.quantize(jax.random.key(0), rgb)
