"""quantize in colour spaces: sRGB palettes, exact assignment in the space, modes, batches."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxquant
from jaxquant import _modes, colour
from tests.conftest import FAST, TOL

KEY = jax.random.key(0)
SLOW = pytest.mark.slow
# One k and 256-pixel images throughout, so that each space compiles few programs.
K = 4


@pytest.fixture(scope="module")
def small(photo) -> np.ndarray:
    """The sample photograph subsampled to 16x16: 256 pixels, 3 channels."""
    return np.ascontiguousarray(photo[::4, ::6])


def _brute_force(rgb: np.ndarray, palette: np.ndarray, space: str) -> np.ndarray:
    """(n, k) squared distances in ``space`` (its own units), in float64."""
    a = np.asarray(colour.to_space(rgb, space), np.float64)
    b = np.asarray(colour.to_space(palette, space), np.float64)
    return np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)


# rgb and linear-rgb run the same code as cielab (rgb: also test_rgb_space_is_the_default_path).
@pytest.mark.parametrize(
    "space",
    [pytest.param("rgb", marks=SLOW), pytest.param("linear-rgb", marks=SLOW), "cielab", "oklab"],
)
def test_palette_is_srgb_uint8_and_assignment_exact_in_the_space(small, space):
    r = jaxquant.quantize(KEY, small, K, space=space, **FAST)
    palette, indices, image = np.asarray(r.palette), np.asarray(r.indices), np.asarray(r.image)
    assert palette.dtype == np.uint8
    assert palette.shape == (K, 3)
    assert image.dtype == np.uint8
    assert image.shape == small.shape
    np.testing.assert_array_equal(image, palette[indices])
    assert int(r.status) == 0
    # Every pixel's colour is a nearest palette colour in the space (float64 reference;
    # 1e-4 relative covers the float32 conversions of the fit).
    pixels = small.reshape(-1, 3)
    d = _brute_force(pixels, palette, space)
    chosen = d[np.arange(len(d)), indices.reshape(-1)]
    np.testing.assert_allclose(chosen, d.min(axis=1), rtol=1e-4, atol=1e-9)
    # mse and psnr are measured in sRGB on the 0..255 scale, whatever the space.
    mse = np.mean((image.astype(np.float64) - small.astype(np.float64)) ** 2)
    np.testing.assert_allclose(float(r.mse), mse, **TOL["reorder"])
    np.testing.assert_allclose(float(r.psnr), 10 * np.log10(255**2 / mse), **TOL["reorder"])
    # loss is the k-means objective in the space's normalized coordinates.
    _, span = colour.BOXES[space]
    np.testing.assert_allclose(float(r.loss), np.mean(d.min(axis=1)) / span**2, rtol=1e-4)


def test_perceptual_spaces_assign_differently_from_rgb(small):
    # The check above could pass by accident if assignment were done in sRGB: here, a
    # fair share of pixels have a different nearest colour in CIELAB than in sRGB.
    r = jaxquant.quantize(KEY, small, K, space="cielab", **FAST)
    pixels, palette = small.reshape(-1, 3), np.asarray(r.palette)
    in_rgb = _brute_force(pixels, palette, "rgb").argmin(axis=1)
    in_lab = _brute_force(pixels, palette, "cielab").argmin(axis=1)
    assert np.mean(in_rgb != in_lab) > 0.02
    np.testing.assert_array_equal(np.asarray(r.indices).reshape(-1), in_lab)


def test_rgb_space_is_the_default_path(small):
    got = jaxquant.quantize(KEY, small, K, space="rgb", **FAST)
    want = jaxquant.quantize(KEY, small, K, **FAST)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    # ... the exact integer assignment in sRGB.
    d = _brute_force(small.reshape(-1, 3), np.asarray(got.palette), "rgb")
    np.testing.assert_array_equal(np.asarray(got.indices).reshape(-1), d.argmin(axis=1))


@pytest.mark.parametrize(
    "space",
    [pytest.param(s, marks=SLOW) for s in ("rgb", "linear-rgb", "cielab")] + ["oklab"],
)
def test_k_at_least_distinct_is_lossless(space):
    rng = np.random.default_rng(0)
    colours = np.array([[0, 0, 0], [255, 255, 255], [250, 3, 7], [1, 2, 3]], np.uint8)
    image = colours[rng.integers(0, 4, (16, 16))]
    image[0, :4] = colours
    r = jaxquant.quantize(KEY, image, K, space=space, **FAST)
    np.testing.assert_array_equal(r.image, image)
    assert float(r.mse) == 0.0
    assert float(r.loss) == 0.0


@SLOW
def test_float_images_keep_dtype_and_range(small):
    image = small.astype(np.float32) / 255.0
    r = jaxquant.quantize(KEY, image, K, space="oklab", **FAST)
    assert r.image.dtype == np.float32
    assert r.palette.dtype == np.float32
    assert 0.0 <= float(np.min(r.palette)) <= float(np.max(r.palette)) <= 1.0
    np.testing.assert_array_equal(r.image, np.asarray(r.palette)[np.asarray(r.indices)])
    d = _brute_force(image.reshape(-1, 3), np.asarray(r.palette), "oklab")
    chosen = d[np.arange(len(d)), np.asarray(r.indices).reshape(-1)]
    np.testing.assert_allclose(chosen, d.min(axis=1), rtol=1e-4, atol=1e-9)


@SLOW
def test_rgba_keeps_alpha_as_a_coordinate(small):
    rng = np.random.default_rng(1)
    alpha = np.where(rng.random(small.shape[:2]) < 0.5, 0, 255).astype(np.uint8)
    image = np.concatenate([small, alpha[:, :, None]], axis=-1)
    r = jaxquant.quantize(KEY, image, K, space="cielab", **FAST)
    assert r.palette.shape == (K, 4)
    assert r.image.shape == image.shape
    # Alpha weighs like a whole box side: no pixel is given the wrong transparency.
    np.testing.assert_array_equal(np.asarray(r.image)[..., 3], alpha)


@SLOW
def test_linear_rgb_takes_grayscale_and_the_intensity_modes(small):
    gray = small[:, :, 1]
    r = jaxquant.quantize(KEY, gray, K, space="linear-rgb", **FAST)
    assert r.image.shape == gray.shape
    assert len(np.unique(np.asarray(r.image))) <= K
    for mode in ("channel", "global"):
        got = jaxquant.quantize(KEY, small, K, space="linear-rgb", mode=mode, **FAST)
        parts = [
            jaxquant.quantize(kj, part, K, space="linear-rgb", **FAST)
            for kj, part in _modes.split(KEY, small, mode)
        ]
        want = _modes.combine(small, mode, parts, squeeze=False)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


def test_batch_passes_space(small):
    images = np.stack([small, small[::-1]])
    keys = jax.random.split(KEY, 2)
    got = jaxquant.quantize_batch(KEY, images, K, space="oklab", **FAST)
    for i in range(2):
        want = jaxquant.quantize(keys[i], images[i], K, space="oklab", **FAST)
        # The same computation under vmap: equal up to float noise in the last bit,
        # which may move a palette colour by one level.
        np.testing.assert_allclose(
            np.asarray(got.palette[i], np.int32), np.asarray(want.palette, np.int32), atol=1
        )


@SLOW
def test_batch_passes_mode(small):
    images = np.stack([small, small[::-1]])
    keys = jax.random.split(KEY, 2)
    got = jaxquant.quantize_batch(KEY, list(images), K, mode="global", **FAST)
    for i in range(2):
        want = jaxquant.quantize(keys[i], images[i], K, mode="global", **FAST)
        np.testing.assert_array_equal(got[i].image, want.image)


def test_errors(small):
    gray = small[:, :, 0]
    with pytest.raises(ValueError, match="RGB or RGBA"):
        jaxquant.quantize(KEY, gray, K, space="cielab")
    with pytest.raises(ValueError, match="unknown colour space"):
        jaxquant.quantize(KEY, small, K, space="hsv")
    with pytest.raises(ValueError, match="needs mode 'vector'"):
        jaxquant.quantize(KEY, small, K, space="oklab", mode="channel")
    with pytest.raises(ValueError, match="alpha"):
        jaxquant.quantize(KEY, np.zeros((4, 4, 4), np.uint8), K, space="linear-rgb", mode="global")
    with pytest.raises(ValueError, match="unknown mode"):
        jaxquant.quantize(KEY, small, K, mode="planar")
    with pytest.raises(ValueError, match="image 1: .*RGB or RGBA"):
        jaxquant.quantize_batch(KEY, [small, gray], K, space="cielab")
    with pytest.raises(ValueError, match="unknown mode"):
        jaxquant.quantize_batch(KEY, [small], K, mode="planar")
