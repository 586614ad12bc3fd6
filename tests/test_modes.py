"""Quantization modes: vector, channel and global, through the same SQ solver."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxquant
from jaxquant._modes import MODES
from tests.conftest import FAST, TOL

KEY = jax.random.key(0)
# Every test uses k = 4 and images of 256 (or 768) values per fit, so that the whole file
# compiles five programs: one per (bucket, channels, dtype).
K = 4


@pytest.fixture(scope="module")
def small(photo) -> np.ndarray:
    """The sample photograph subsampled to 16x16: 256 pixels, 3 channels."""
    return np.ascontiguousarray(photo[::4, ::6])


def _distinct_per_channel(image: np.ndarray) -> list[int]:
    return [len(np.unique(image[..., j])) for j in range(image.shape[-1])]


def _check_layout(result, image: np.ndarray, k: int, mode: str) -> None:
    """The invariants of each mode's result (see jaxquant._modes.s table)."""
    out = np.asarray(result.image)
    palette = np.asarray(result.palette)
    indices = np.asarray(result.indices)
    c = 1 if image.ndim == 2 else image.shape[-1]
    assert out.shape == image.shape
    assert out.dtype == image.dtype
    assert indices.dtype == np.int32
    assert indices.min() >= 0
    assert indices.max() < k
    if mode == "vector":
        assert palette.shape == (k, c)
        assert indices.shape == image.shape[:2]
        colours = np.unique(out.reshape(-1, c), axis=0)
        assert len(colours) <= k
    elif mode == "channel":
        assert palette.shape == (k, c)
        assert indices.shape == image.shape
        out3, idx3 = out.reshape(*out.shape[:2], c), indices.reshape(*out.shape[:2], c)
        for j in range(c):
            np.testing.assert_array_equal(out3[..., j], palette[idx3[..., j], j])
        assert max(_distinct_per_channel(out3)) <= k
    else:
        assert palette.shape == (k, 1)
        assert indices.shape == image.shape
        np.testing.assert_array_equal(out, palette[indices, 0])
        assert len(np.unique(out)) <= k
    # mse and psnr against the input, on the 0..255 scale.
    scale = 1.0 if image.dtype == np.uint8 else 255.0
    mse = np.mean(((out.astype(np.float64) - image.astype(np.float64)) * scale) ** 2)
    np.testing.assert_allclose(float(result.mse), mse, rtol=1e-4, atol=1e-4)
    if mse > 0:
        np.testing.assert_allclose(float(result.psnr), 10 * np.log10(255**2 / mse), rtol=1e-4)
    else:
        assert float(result.psnr) == np.inf
    assert int(result.status) == 0


@pytest.mark.parametrize("mode", MODES)
def test_layout_and_invariants(small, mode):
    result = jaxquant.quantize(KEY, small, K, mode=mode, **FAST)
    _check_layout(result, small, K, mode)
    # Fewer levels than distinct values: the quantization is lossy.
    assert float(result.mse) > 0


@pytest.mark.parametrize("mode", MODES)
def test_loss_is_comparable_across_modes(small, mode):
    # For rank 2 the loss is the mean over pixels of the squared distance summed over
    # channels, on the [0, 1] scale: C * mse / 255^2 in every mode.
    result = jaxquant.quantize(KEY, small, K, mode=mode, **FAST)
    want = 3 * float(result.mse) / 255.0**2
    np.testing.assert_allclose(float(result.loss), want, rtol=1e-4)
    assert result.losses.shape == (FAST["num_steps"],)


def test_vector_mode_is_quantize(small):
    got = jaxquant.quantize(KEY, small, K, mode="vector", **FAST)
    want = jaxquant.quantize(KEY, small, K, **FAST)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_channel_mode_fits_each_channel_with_a_split_key(small):
    got = jaxquant.quantize(KEY, small, K, mode="channel", **FAST)
    keys = jax.random.split(KEY, 3)
    for j in range(3):
        want = jaxquant.quantize(keys[j], small[:, :, j], K, **FAST)
        np.testing.assert_array_equal(got.image[..., j], want.image)
        np.testing.assert_array_equal(got.palette[:, j], want.palette[:, 0])
        np.testing.assert_array_equal(got.indices[..., j], want.indices)


def test_global_mode_fits_all_intensities_as_one_set(small):
    h, w, c = small.shape
    got = jaxquant.quantize(KEY, small, K, mode="global", **FAST)
    want = jaxquant.quantize(KEY, small.reshape(h, w * c), K, **FAST)
    np.testing.assert_array_equal(got.image, np.asarray(want.image).reshape(h, w, c))
    np.testing.assert_array_equal(got.palette, want.palette)


def test_channel_mode_is_lossless_with_k_at_least_each_channels_levels():
    rng = np.random.default_rng(0)
    # Each channel has its own K levels; the image has far more than K colours.
    levels = rng.choice(256, size=(K, 3), replace=False)
    image = np.stack([levels[rng.integers(0, K, (16, 16)), j] for j in range(3)], axis=-1)
    image = image.astype(np.uint8)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > K
    result = jaxquant.quantize(KEY, image, K, mode="channel", **FAST)
    np.testing.assert_array_equal(result.image, image)
    assert float(result.mse) == 0.0
    assert float(result.psnr) == np.inf
    # The same k is lossy for colours, and for one level set shared by all channels.
    assert float(jaxquant.quantize(KEY, image, K, mode="vector", **FAST).mse) > 0
    assert float(jaxquant.quantize(KEY, image, K, mode="global", **FAST).mse) > 0


def test_global_mode_is_lossless_with_k_at_least_the_distinct_intensities():
    rng = np.random.default_rng(1)
    image = rng.choice(np.array([0, 40, 41, 255], np.uint8), size=(16, 16, 3))
    result = jaxquant.quantize(KEY, image, K, mode="global", **FAST)
    np.testing.assert_array_equal(result.image, image)
    assert float(result.mse) == 0.0
    assert sorted(np.asarray(result.palette)[:, 0].tolist()) == [0, 40, 41, 255]


@pytest.mark.slow
def test_channel_mode_k_256_is_lossless_on_any_uint8_image():
    image = np.random.default_rng(2).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    result = jaxquant.quantize(KEY, image, 256, mode="channel", num_steps=0)
    np.testing.assert_array_equal(result.image, image)


@pytest.mark.parametrize("shape", [(16, 16), (16, 16, 1)])
def test_grayscale_is_the_same_1d_problem_in_every_mode(shape):
    image = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    want = jaxquant.quantize(KEY, image, K, **FAST)
    for mode in MODES:
        got = jaxquant.quantize(KEY, image, K, mode=mode, **FAST)
        _check_layout(got, image, K, mode)
        np.testing.assert_array_equal(got.image, want.image)
        np.testing.assert_array_equal(got.palette, want.palette)
        np.testing.assert_allclose(float(got.mse), float(want.mse), **TOL["reorder"])


def test_float_images_keep_dtype_and_range():
    image = np.random.default_rng(4).random((16, 16, 3)).astype(np.float32)
    result = jaxquant.quantize(KEY, image, K, mode="channel", **FAST)
    _check_layout(result, image, K, "channel")
    assert result.palette.dtype == np.float32
    assert 0.0 <= float(np.min(result.image)) <= float(np.max(result.image)) <= 1.0


def test_rgba_channel_mode_quantizes_alpha_as_a_channel():
    image = np.random.default_rng(5).integers(0, 256, (16, 16, 4), dtype=np.uint8)
    result = jaxquant.quantize(KEY, image, K, mode="channel", **FAST)
    _check_layout(result, image, K, "channel")


def test_pil_image_is_accepted():
    from PIL import Image

    image = np.random.default_rng(6).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    got = jaxquant.quantize(KEY, Image.fromarray(image), K, mode="global", **FAST)
    want = jaxquant.quantize(KEY, image, K, mode="global", **FAST)
    np.testing.assert_array_equal(got.image, want.image)


def test_same_key_same_result_different_key_different_result(small):
    a = jaxquant.quantize(KEY, small, K, mode="channel", **FAST)
    b = jaxquant.quantize(KEY, small, K, mode="channel", **FAST)
    c = jaxquant.quantize(jax.random.key(1), small, K, mode="channel", **FAST)
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.palette, c.palette)


def test_errors():
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="vector, channel, global"):
        jaxquant.quantize(KEY, image, 2, mode="planar")
    with pytest.raises(ValueError, match="channels"):
        jaxquant.quantize(KEY, np.zeros((4, 4, 5), np.uint8), 2, mode="channel")
    with pytest.raises(ValueError, match="k must be in 1.."):
        jaxquant.quantize(KEY, image, 0, mode="global")
    with pytest.raises(TypeError, match="key"):
        jaxquant.quantize(0, image, 2, mode="channel")
    with pytest.raises(TypeError):
        jaxquant.quantize(KEY, image, 2, mode="channel", no_such_option=1)


@given(
    # Shapes whose fits fall in the buckets the tests above compiled (and RGBA).
    shape=st.sampled_from([(16, 16, 3), (16, 16, 1), (8, 8, 4), (10, 9)]),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_at_most_k_values(shape, mode, seed):
    rng = np.random.default_rng(seed)
    # Few or many distinct values, so both lossless and lossy fits occur.
    image = rng.integers(0, rng.choice([3, 256]), shape).astype(np.uint8)
    result = jaxquant.quantize(jax.random.key(seed), image, K, mode=mode, **FAST)
    _check_layout(result, image, K, mode)
    c = 1 if image.ndim == 2 else image.shape[-1]
    distinct = {
        "vector": len(np.unique(image.reshape(-1, c), axis=0)),
        "channel": max(_distinct_per_channel(image.reshape(-1, c))),
        "global": len(np.unique(image)),
    }[mode]
    if distinct <= K:
        np.testing.assert_array_equal(result.image, image)
