"""jaxquant.colour: published reference values, round trips, the solver's box, JAX contract."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxquant import colour
from tests.conftest import TOL

# Sharma, Wu & Dalal (2005), Table 1: L1, a1, b1, L2, a2, b2, ΔE00.
SHARMA = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]

# sRGB -> CIELAB as tabulated to 4 decimals by common calculators (B. Lindbloom's, EasyRGB),
# which use a 4-to-7-digit rounded matrix and white (0.95047, 1, 1.08883). Ours is derived
# from the primaries and D65 chromaticity in float64, white Z = 1.08906: the two
# conventions differ by up to 0.008 here, hence the 0.01 tolerance.
LAB_REFERENCE = [
    ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((1.0, 0.0, 0.0), (53.2408, 80.0925, 67.2032)),
    ((0.0, 1.0, 0.0), (87.7347, -86.1827, 83.1793)),
    ((0.0, 0.0, 1.0), (32.2970, 79.1875, -107.8602)),
]

# sRGB -> OKLab with Ottosson's matrices, as tabulated in CSS Color 4 (5 decimals).
OKLAB_REFERENCE = [
    ((1.0, 1.0, 1.0), (1.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((1.0, 0.0, 0.0), (0.62796, 0.22486, 0.12585)),
    ((0.0, 1.0, 0.0), (0.86644, -0.23389, 0.17950)),
    ((0.0, 0.0, 1.0), (0.45201, -0.03246, -0.31153)),
]

# XYZ -> OKLab, the table in Ottosson's post "A perceptual color space for image
# processing" (2020), 3 decimals.
OTTOSSON_XYZ = [
    ((0.950, 1.000, 1.089), (1.000, 0.000, 0.000)),
    ((1.000, 0.000, 0.000), (0.450, 1.236, -0.019)),
    ((0.000, 1.000, 0.000), (0.922, -0.671, 0.263)),
    ((0.000, 0.000, 1.000), (0.153, -1.415, -0.449)),
]


def all_srgb(step: int = 1) -> np.ndarray:
    """Every ``step``-th level per channel (0 and 255 always included), as uint8 (n, 3)."""
    levels = np.unique(np.r_[np.arange(0, 256, step), 255]).astype(np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1)
    return grid.reshape(-1, 3)


@functools.cache
def _jitted(space: str):
    to = jax.jit(functools.partial(colour.to_space, space=space))
    back = jax.jit(functools.partial(colour.from_space, space=space))
    return to, back


# --------------------------------------------------------------------------------------
# Published reference values.


def test_ciede2000_matches_sharma_test_data():
    data = np.array(SHARMA, np.float32)
    got = np.asarray(colour.ciede2000(data[:, 0:3], data[:, 3:6]))
    # The table is rounded to 4 decimals (5e-5); float32 adds ~2e-6.
    np.testing.assert_allclose(got, data[:, 6], rtol=0, atol=6e-5)


def test_ciede2000_sharma_pairs_are_symmetric():
    data = np.array(SHARMA, np.float32)
    forward = colour.ciede2000(data[:, 0:3], data[:, 3:6])
    backward = colour.ciede2000(data[:, 3:6], data[:, 0:3])
    np.testing.assert_array_equal(forward, backward)


@pytest.mark.parametrize(("rgb", "lab"), LAB_REFERENCE)
def test_srgb_to_cielab_reference(rgb, lab):
    got = colour.to_space(jnp.array(rgb), "cielab")
    np.testing.assert_allclose(got, lab, rtol=0, atol=0.01)


@pytest.mark.parametrize(("rgb", "lab"), OKLAB_REFERENCE)
def test_srgb_to_oklab_reference(rgb, lab):
    got = colour.to_space(jnp.array(rgb), "oklab")
    np.testing.assert_allclose(got, lab, rtol=0, atol=2e-5)


@pytest.mark.parametrize(("xyz", "lab"), OTTOSSON_XYZ)
def test_xyz_to_oklab_matches_ottossons_table(xyz, lab):
    got = colour.xyz_to_oklab(jnp.array(xyz))
    np.testing.assert_allclose(got, lab, rtol=0, atol=6e-4)
    np.testing.assert_allclose(colour.oklab_to_xyz(got), xyz, rtol=0, atol=1e-5)


def test_grays_are_neutral_and_white_is_exact():
    gray = jnp.linspace(0.0, 1.0, 11)[:, None] * jnp.ones((1, 3))
    # a* = 500 (f(X) - f(Y)): one float32 ulp of f is 3e-5 there.
    for space, atol in (("cielab", 1e-4), ("oklab", 1e-6)):
        out = np.asarray(colour.to_space(gray, space))
        np.testing.assert_allclose(out[:, 1:], 0.0, atol=atol)
        assert np.all(np.diff(out[:, 0]) > 0)
    np.testing.assert_allclose(colour.to_space(jnp.ones(3), "cielab"), [100, 0, 0], atol=1e-4)
    np.testing.assert_allclose(colour.linear_to_xyz(jnp.ones(3))[1], 1.0, atol=1e-7)


def test_srgb_transfer_function_known_values():
    # 0.04045 is the spec's knee, where the two pieces meet at 0.0031308.
    x = jnp.array([0.0, 0.04045, 0.5, 1.0])
    np.testing.assert_allclose(
        colour.srgb_to_linear(x), [0.0, 0.0031308, 0.2140411, 1.0], rtol=1e-5, atol=1e-7
    )


def test_uint8_is_read_as_0_to_255():
    u8 = np.array([[0, 128, 255]], np.uint8)
    f = u8.astype(np.float32) / 255.0
    for space in colour.SPACES:
        np.testing.assert_array_equal(colour.to_space(u8, space), colour.to_space(f, space))


# --------------------------------------------------------------------------------------
# Round trips and the solver's box.


def _round_trip_errors(space: str, rgb_u8: np.ndarray, chunk: int = 1 << 20):
    to, back = _jitted(space)
    worst, mismatches = 0.0, 0
    for start in range(0, len(rgb_u8), chunk):
        u8 = rgb_u8[start : start + chunk]
        x = u8.astype(np.float32) / 255.0
        rgb = np.asarray(back(to(jnp.asarray(x))))
        worst = max(worst, float(np.abs(rgb - x).max()))
        rounded = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
        mismatches += int(np.any(rounded != u8, axis=1).sum())
    return worst, mismatches


@pytest.mark.parametrize("space", colour.SPACES)
def test_round_trip_dense_grid(space):
    worst, mismatches = _round_trip_errors(space, all_srgb(step=5))
    assert worst < 1e-4
    assert mismatches == 0


@pytest.mark.slow
@pytest.mark.parametrize("space", colour.SPACES)
def test_round_trip_every_srgb_colour(space):
    # Measured maxima in float32: rgb 7e-8, linear-rgb 9e-8, cielab 1e-5, oklab 2.5e-5.
    worst, mismatches = _round_trip_errors(space, all_srgb(step=1))
    assert worst < 1e-4
    assert mismatches == 0


def _normalized_range(space: str, rgb_u8: np.ndarray, chunk: int = 1 << 20):
    fn = jax.jit(functools.partial(colour.to_space, space=space, normalized=True))
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for start in range(0, len(rgb_u8), chunk):
        out = np.asarray(fn(jnp.asarray(rgb_u8[start : start + chunk])))
        lo, hi = np.minimum(lo, out.min(axis=0)), np.maximum(hi, out.max(axis=0))
    return lo, hi


@pytest.mark.parametrize("space", colour.SPACES)
def test_srgb_gamut_lands_inside_unit_cube(space):
    lo, hi = _normalized_range(space, all_srgb(step=5))
    assert np.all(lo >= 0.0)
    assert np.all(hi <= 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("space", colour.SPACES)
def test_every_srgb_colour_lands_inside_unit_cube(space):
    lo, hi = _normalized_range(space, all_srgb(step=1))
    assert np.all(lo >= 0.0)
    assert np.all(hi <= 1.0)


@pytest.mark.parametrize("space", ["cielab", "oklab"])
def test_box_is_tight_enough_to_use_the_cube(space):
    # A box much larger than the gamut would waste the solver's [0, 1] resolution:
    # the gamut spans at least 80% of the widest normalised axis.
    lo, hi = _normalized_range(space, all_srgb(step=15))
    assert (hi - lo).max() >= 0.8


@pytest.mark.parametrize("space", colour.SPACES)
def test_normalize_is_uniform_and_invertible(space):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.random((50, 3)), jnp.float32)
    y = colour.to_space(x, space)
    z = colour.normalize(y, space)
    _, span = colour.BOXES[space]
    # Every pairwise distance shrinks by the same factor: nearest neighbours are kept.
    dy = jnp.linalg.norm(y[:, None, :] - y[None, :, :], axis=-1)
    dz = jnp.linalg.norm(z[:, None, :] - z[None, :, :], axis=-1)
    np.testing.assert_allclose(dz * span, dy, rtol=1e-5, atol=1e-5 * span)
    np.testing.assert_allclose(colour.denormalize(z, space), y, rtol=1e-6, atol=1e-6 * span)
    # One program or two: equal up to one float32 rounding (XLA may fuse x * w - c).
    np.testing.assert_allclose(colour.to_space(x, space, normalized=True), z, rtol=0, atol=2e-7)
    back = colour.from_space(z, space, normalized=True)
    np.testing.assert_allclose(back, x, rtol=0, atol=1e-4)


def test_from_space_does_not_clip_out_of_gamut_colours():
    # Lab (50, 0, -120) is bluer than sRGB blue: some channel leaves [0, 1].
    rgb = np.asarray(colour.from_space(jnp.array([50.0, 0.0, -120.0]), "cielab"))
    assert rgb.min() < 0.0 or rgb.max() > 1.0
    lab = colour.to_space(jnp.asarray(rgb), "cielab")
    np.testing.assert_allclose(lab, [50.0, 0.0, -120.0], atol=1e-3)


# --------------------------------------------------------------------------------------
# Distances.


def test_oklab_distance_is_euclidean():
    a = jnp.array([[0.5, 0.1, -0.1], [0.2, 0.0, 0.0]])
    b = jnp.array([[0.5, 0.4, 0.3], [0.2, 0.0, 0.0]])
    np.testing.assert_allclose(colour.oklab_distance(a, b), [0.5, 0.0], atol=1e-7)


def test_delta_e_matches_the_distances_in_each_space():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    got = colour.delta_e(a, b)
    assert got.shape == (4, 5)
    want = colour.ciede2000(colour.to_space(a, "cielab"), colour.to_space(b, "cielab"))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)  # one fused program
    got = colour.delta_e(a, b, metric="oklab")
    want = colour.oklab_distance(colour.to_space(a, "oklab"), colour.to_space(b, "oklab"))
    np.testing.assert_allclose(got, want, **TOL["distance"])
    np.testing.assert_array_equal(colour.delta_e(a, a), np.zeros((4, 5), np.float32))


def test_distances_have_finite_gradients():
    p = jnp.array([[50.0, 0.0, 0.0], [50.0, 0.0, 0.0], [50.0, 1.0, 2.0], [50.0, 2.49, -0.001]])
    q = jnp.array([[50.0, 0.0, 0.0], [50.0, 1.0, 0.0], [50.0, 1.0, 2.0], [50.0, -2.49, 0.001]])
    # Rows: equal and neutral, one neutral, equal, hues exactly 180 degrees apart. The
    # distances are rowwise, so the gradient of the sum holds each row's gradient.
    grad = jax.grad(lambda a: colour.ciede2000(a, q).sum())(p)
    assert np.all(np.isfinite(grad))
    grad = jax.grad(lambda a: colour.oklab_distance(a, q / 100).sum())(p / 100)
    assert np.all(np.isfinite(grad))


# --------------------------------------------------------------------------------------
# The JAX contract.


@pytest.mark.parametrize("space", colour.SPACES)
def test_jit_matches_op_by_op(space):
    x = jnp.asarray(np.random.default_rng(3).random((64, 3)), jnp.float32)
    to, back = _jitted(space)
    with jax.disable_jit():
        eager = colour.to_space(x, space)
        eager_back = colour.from_space(eager, space)
    # XLA may fuse the cube root and power differently: a few float32 ulps on Lab's
    # 0..100 scale.
    np.testing.assert_allclose(to(x), eager, rtol=2e-6, atol=1e-4)
    np.testing.assert_allclose(back(eager), eager_back, rtol=0, atol=1e-5)


def test_ciede2000_jit_matches_op_by_op():
    data = jnp.asarray(np.array(SHARMA, np.float32))
    with jax.disable_jit():
        eager = colour.ciede2000(data[:, 0:3], data[:, 3:6])
    np.testing.assert_allclose(colour.ciede2000(data[:, 0:3], data[:, 3:6]), eager, atol=1e-5)


@pytest.mark.parametrize("space", colour.SPACES)
def test_vmap_matches_batch(space):
    x = jnp.asarray(np.random.default_rng(4).random((8, 5, 3)), jnp.float32)
    batch = colour.to_space(x, space)
    mapped = jax.vmap(lambda image: colour.to_space(image, space))(x)
    np.testing.assert_allclose(mapped, batch, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.float32, jnp.uint8])
def test_dtype_is_kept(dtype):
    x = jnp.zeros((2, 3), dtype)
    want = jnp.float32 if dtype == jnp.uint8 else dtype
    for space in colour.SPACES:
        out = jax.eval_shape(functools.partial(colour.to_space, space=space, normalized=True), x)
        assert out.dtype == want
        back = functools.partial(colour.from_space, space=space, normalized=True)
        assert jax.eval_shape(back, out).dtype == want


# --------------------------------------------------------------------------------------
# Errors.


def test_unknown_space_is_refused():
    with pytest.raises(ValueError, match="oklab"):
        colour.to_space(jnp.zeros(3), "hsv")
    with pytest.raises(TypeError, match="space"):
        colour.from_space(jnp.zeros(3), 3)
    with pytest.raises(ValueError, match="metric"):
        colour.delta_e(jnp.zeros(3), jnp.zeros(3), metric="cie76")


def test_bad_shapes_and_dtypes_are_refused():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        colour.to_space(jnp.zeros((4, 4)), "cielab")
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        colour.ciede2000(jnp.float32(1.0), jnp.zeros(3))
    with pytest.raises(TypeError, match="uint8"):
        colour.to_space(jnp.zeros(3, jnp.int32), "rgb")


# --------------------------------------------------------------------------------------
# Properties.

_unit = st.floats(0.0, 1.0, allow_nan=False, width=32)


@given(
    rgb=st.lists(st.tuples(_unit, _unit, _unit), min_size=8, max_size=8),
    space=st.sampled_from(colour.SPACES),
)
def test_property_round_trip_and_box(rgb, space):
    x = jnp.asarray(np.array(rgb, np.float32))
    to, back = _jitted(space)
    z = colour.normalize(to(x), space)
    assert bool(jnp.all((z >= 0) & (z <= 1)))
    np.testing.assert_allclose(back(to(x)), x, rtol=0, atol=1e-4)


_lab = st.tuples(
    st.floats(0.0, 100.0, width=32),
    st.floats(-128.0, 127.0, width=32),
    st.floats(-128.0, 127.0, width=32),
)


@given(pairs=st.lists(st.tuples(_lab, _lab), min_size=8, max_size=8))
def test_property_ciede2000_symmetric_non_negative_zero_on_diagonal(pairs):
    a = jnp.asarray(np.array([p for p, _ in pairs], np.float32))
    b = jnp.asarray(np.array([q for _, q in pairs], np.float32))
    d = colour.ciede2000(a, b)
    assert bool(jnp.all(d >= 0))
    np.testing.assert_array_equal(d, colour.ciede2000(b, a))
    np.testing.assert_array_equal(colour.ciede2000(a, a), np.zeros(8, np.float32))
