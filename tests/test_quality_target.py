"""Quality targets (jaxquant.quality): the scale, the parser, palette reduction, the search."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxquant
from jaxquant import quality as jq
from jaxquant.quality import (
    Quality,
    QualityError,
    mse_to_quality,
    parse_quality,
    quality_to_mse,
    quantize_to_quality,
    reduce_palette,
)

FAST = {"num_steps": 60, "batch_size": 256}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("65-80", (65, 80)),
        ("80", (0, 80)),
        ("-80", (0, 80)),
        ("50-", (50, 100)),
        (" 0-100 ", (0, 100)),
        (70, (0, 70)),
        ((10, 20), (10, 20)),
    ],
)
def test_parse_quality_takes_pngquants_forms(text, expected):
    assert parse_quality(text) == Quality(*expected)


@pytest.mark.parametrize(
    "text", ["90-50", "abc", "", "-", "101", "-1-5", "5-101", "1.5", True, None, (1, 2.5)]
)
def test_parse_quality_refuses_the_rest(text):
    with pytest.raises(ValueError, match=r"quality|MIN|integer"):
        parse_quality(text)


def test_the_scale_has_its_ends_and_falls():
    assert quality_to_mse(0) == np.inf
    assert quality_to_mse(100) == 0.0
    values = [quality_to_mse(q) for q in range(101)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    # the calibrated constant: quality 80 is the plain MSE of pngquant's Q80 on photos
    assert quality_to_mse(80) == pytest.approx(6.09 * jq.SCALE, rel=0.01)
    with pytest.raises(ValueError, match="from 0 to 100"):
        quality_to_mse(101)
    with pytest.raises(ValueError, match="nan"):
        mse_to_quality(float("nan"))


@given(st.integers(0, 100))
def test_mse_to_quality_inverts_the_scale(q):
    assert mse_to_quality(quality_to_mse(q)) == q
    if 0 < q:
        assert mse_to_quality(quality_to_mse(q) * 1.001 + 1e-6) == q - 1


@given(st.floats(0, 1e6), st.floats(0, 1e6))
def test_quality_is_monotone_in_the_mse(a, b):
    lo, hi = sorted((a, b))
    assert mse_to_quality(lo) >= mse_to_quality(hi)


def test_reduce_palette_merges_the_closest_heavy_pairs():
    p = np.array([[0, 0, 0], [2, 0, 0], [200, 0, 0], [255, 0, 0]], np.uint8)
    # weighted means: (0+2)/2 = 1 and (200 + 3*255)/4 = 241.25
    assert reduce_palette(p, np.array([1, 1, 1, 3]), 2).tolist() == [[1, 0, 0], [241, 0, 0]]
    assert reduce_palette(p, np.ones(4), 4).tolist() == p.tolist()
    # an unused entry is merged first, whatever its colour
    assert reduce_palette(p, np.array([5, 0, 5, 5]), 3).tolist() == [
        [0, 0, 0],
        [200, 0, 0],
        [255, 0, 0],
    ]


def test_reduce_palette_keeps_opacity_classes_apart():
    p = np.array([[0, 0, 0, 0], [10, 10, 10, 255], [12, 12, 12, 255], [11, 11, 11, 128]], np.uint8)
    out = reduce_palette(p, np.array([10, 1, 1, 1]), 3)
    alphas = sorted(out[:, 3].tolist())
    assert alphas == [0, 128, 255]


def test_reduce_palette_float_and_errors():
    p = np.array([[0.0], [0.1], [0.9], [1.0]], np.float32)
    out = reduce_palette(p, np.ones(4), 2)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.sort(out[:, 0]), [0.05, 0.95], atol=1e-6)
    with pytest.raises(ValueError, match="k must be"):
        reduce_palette(p, np.ones(4), 5)
    with pytest.raises(ValueError, match="disagree"):
        reduce_palette(p, np.ones(3), 2)


def _few_colours(n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    colours = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    return colours[rng.integers(0, n, (24, 32))]


def test_quality_100_keeps_exactly_the_colours_an_image_has():
    image = _few_colours(5)
    r = quantize_to_quality(jax.random.key(0), image, "100", max_colors=16, **FAST)
    assert r.palette.shape[0] == 5
    assert float(r.mse) == 0.0
    np.testing.assert_array_equal(np.asarray(r.image), image)


def test_the_fewest_colours_that_reach_the_target(photo):
    key = jax.random.key(0)
    r = quantize_to_quality(key, photo, "0-40", max_colors=64, **FAST)
    k = r.palette.shape[0]
    assert 1 < k < 64
    assert mse_to_quality(r.mse) >= 40
    # the photo (packaged sample, 96x64) has quality 57 with 64 colours
    # the result is a real quantization by its own palette
    again = jaxquant.remap(photo, r.palette)
    np.testing.assert_array_equal(np.asarray(again.image), np.asarray(r.image))
    assert int(np.asarray(r.indices).max()) < k
    # one colour fewer, reduced the same way, misses the target
    full = jaxquant.quantize(key, photo, 64, **FAST)
    counts = np.bincount(np.asarray(full.indices).ravel(), minlength=64)
    fewer = jaxquant.remap(photo, reduce_palette(np.asarray(full.palette), counts, k - 1))
    assert mse_to_quality(fewer.mse) < 40
    # a lower target needs no more colours
    low = quantize_to_quality(key, photo, "0-20", max_colors=64, **FAST)
    assert low.palette.shape[0] <= k


def test_short_of_the_target_but_above_the_minimum_uses_every_colour(photo):
    r = quantize_to_quality(jax.random.key(0), photo, "0-99", max_colors=8, **FAST)
    assert r.palette.shape[0] == 8
    assert mse_to_quality(r.mse) < 99


def test_below_the_minimum_raises_quality_error(photo):
    with pytest.raises(QualityError, match="below the minimum 95") as info:
        quantize_to_quality(jax.random.key(0), photo, "95-100", max_colors=4, **FAST)
    assert info.value.minimum == 95
    assert info.value.quality < 95
    assert isinstance(info.value, ValueError)


def test_the_search_compiles_one_remap(photo, monkeypatch):
    shapes = []
    real = jaxquant.remap

    def spy(image, palette, **kw):
        shapes.append(np.shape(palette))
        return real(image, palette, **kw)

    monkeypatch.setattr("jaxquant._remap.remap", spy)
    quantize_to_quality(jax.random.key(0), photo, "0-20", max_colors=32, **FAST)
    assert len(shapes) >= 4
    assert set(shapes) == {(32, 3)}


def test_dithering_applies_to_the_chosen_palette(photo):
    r = quantize_to_quality(jax.random.key(0), photo, "0-20", max_colors=32, dither="fs", **FAST)
    k = r.palette.shape[0]
    assert k < 32
    assert int(np.asarray(r.indices).max()) < k
    palette = np.asarray(r.palette)
    np.testing.assert_array_equal(np.asarray(r.image), palette[np.asarray(r.indices)])


def test_bad_arguments(photo):
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="mode 'vector'"):
        quantize_to_quality(key, photo, "50", mode="channel")
    with pytest.raises(ValueError, match="max_colors"):
        quantize_to_quality(key, photo, "50", max_colors=0)
    with pytest.raises(TypeError, match="max_colors"):
        quantize_to_quality(key, photo, "50", max_colors=2.0)
    with pytest.raises(ValueError, match="from 0 to 100"):
        quantize_to_quality(key, photo, "50-120")


def test_exported_from_the_package():
    assert jaxquant.quantize_to_quality is quantize_to_quality
    assert jaxquant.quality is jq
