"""Dithering (jaxquant.dither and remap/quantize(dither=...)): closed forms and properties."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxquant
from jaxquant import dither, kernels

GRAYS = np.array([[0], [85], [170], [255]], np.uint8)


def _flat(value: float, h: int = 48, w: int = 64) -> np.ndarray:
    return np.full((h, w, 1), value, np.float32)


@settings(max_examples=15, deadline=None)
@given(value=st.floats(0.02, 0.98), three=st.booleans())
def test_error_diffusion_keeps_the_mean_of_a_flat_area(value, three):
    palette = np.array([[0.0], [0.4], [1.0]] if three else [[0.0], [1.0]], np.float32)
    labels = np.asarray(dither.error_diffusion(_flat(value), palette, max_error=1.0))
    inner = palette[labels[8:-8, 8:-8], 0]  # away from the edges, where error is lost
    assert abs(inner.mean() - value) < 0.02
    # ... and only the two entries around the value are used (no noise from far ones).
    around = (palette[:, 0] >= palette[palette[:, 0] <= value, 0].max() - 1e-6) & (
        palette[:, 0] <= palette[palette[:, 0] >= value, 0].min() + 1e-6
    )
    assert set(np.unique(labels[8:-8, 8:-8])) <= set(np.flatnonzero(around))


def test_error_diffusion_keeps_colour_means_in_rgb():
    rng = np.random.default_rng(0)
    palette = rng.uniform(0, 1, (24, 3)).astype(np.float32)
    colour = np.array([0.42, 0.55, 0.31], np.float32)
    x = np.broadcast_to(colour, (64, 64, 3)).copy()
    labels = np.asarray(dither.error_diffusion(x, palette, max_error=1.0, candidates=24))
    mean = palette[labels[8:-8, 8:-8]].reshape(-1, 3).mean(0)
    nearest = palette[np.argmin(((palette - colour) ** 2).sum(1))]
    assert np.abs(mean - colour).max() < 0.03
    assert np.abs(mean - colour).max() < np.abs(nearest - colour).max()


def test_ordered_keeps_the_mean_exactly_per_tile():
    palette = np.array([[0.0], [1.0]], np.float32)
    for value in (0.125, 0.25, 0.5, 0.75):
        labels = np.asarray(dither.ordered(_flat(value, 64, 64), palette))
        assert labels.mean() == value


def test_level_zero_is_the_nearest_colour():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (20, 30, 3)).astype(np.float32)
    palette = rng.uniform(0, 1, (12, 3)).astype(np.float32)
    nearest = np.asarray(kernels.assign(x.reshape(-1, 3), palette)[0]).reshape(20, 30)
    for f in (dither.error_diffusion, dither.ordered):
        np.testing.assert_array_equal(np.asarray(f(x, palette, level=0.0)), nearest)
    image = (x * 255).astype(np.uint8)
    plain = jaxquant.remap(image, GRAYS.repeat(3, 1))
    for method in ("fs", "ordered"):
        zero = jaxquant.remap(image, GRAYS.repeat(3, 1), dither=method, dither_level=0)
        np.testing.assert_array_equal(zero.indices, plain.indices)
        assert float(zero.mse) == float(plain.mse)


def test_ordered_is_deterministic_and_tiles():
    rng = np.random.default_rng(2)
    tile = rng.uniform(0, 1, (64, 64, 3)).astype(np.float32)
    palette = rng.uniform(0, 1, (16, 3)).astype(np.float32)
    labels = np.asarray(dither.ordered(np.tile(tile, (2, 3, 1)), palette))
    np.testing.assert_array_equal(
        labels, np.asarray(dither.ordered(np.tile(tile, (2, 3, 1)), palette))
    )
    first = labels[:64, :64]
    for i in range(2):
        for j in range(3):
            np.testing.assert_array_equal(labels[64 * i : 64 * i + 64, 64 * j : 64 * j + 64], first)


def test_ordered_bayer_and_custom_maps():
    palette = np.array([[0.0], [1.0]], np.float32)
    labels = np.asarray(dither.ordered(_flat(0.5, 16, 16), palette, threshold="bayer"))
    assert labels.mean() == 0.5
    assert (labels[:8, :8] == labels[8:, 8:]).all()
    custom = np.array([[0.25, 0.75]], np.float32)
    np.testing.assert_array_equal(
        np.asarray(dither.ordered(_flat(0.5, 2, 4), palette, threshold=custom)),
        [[0, 1, 0, 1], [0, 1, 0, 1]],
    )
    with pytest.raises(ValueError, match="threshold map"):
        dither.ordered(_flat(0.5, 2, 2), palette, threshold="paisley")


def test_blue_noise_is_a_permutation_of_thresholds():
    m = dither.blue_noise(32)
    ranks = np.sort((m * 32 * 32 - 0.5).round().astype(int).ravel())
    np.testing.assert_array_equal(ranks, np.arange(32 * 32))
    np.testing.assert_array_equal(m, dither.blue_noise(32))
    # Blue noise: any threshold's points are spread out, none adjacent to many others.
    low = m < 0.1
    neighbours = sum(np.roll(low, s, a) for s in (1, -1) for a in (0, 1))
    assert (neighbours[low] <= 1).mean() > 0.9


def test_error_cannot_run_away():
    # A palette far from the image: without clipping the error would grow without end.
    palette = np.array([[0.0], [0.1]], np.float32)
    labels = np.asarray(dither.error_diffusion(_flat(0.6), palette, max_error=1.0))
    assert (labels == 1).all()


def test_tall_images_scan_the_short_way_and_keep_means():
    palette = np.array([[0.0], [1.0]], np.float32)
    labels = np.asarray(dither.error_diffusion(_flat(0.3, 96, 24), palette, max_error=1.0))
    assert labels.shape == (96, 24)
    assert abs(palette[labels[8:-8, 4:-4], 0].mean() - 0.3) < 0.03


@pytest.mark.parametrize("method", ["fs", "ordered"])
def test_remap_dither_under_jit_and_vmap(method):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (3, 12, 16, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (8, 3), dtype=np.uint8)
    loop = [jaxquant.remap(im, palette, dither=method) for im in images]

    def one(im):
        return jaxquant.remap(im, palette, dither=method).indices

    def same(a, b):  # inlined in a larger program, XLA may round a near tie otherwise
        assert np.mean(np.asarray(a) != np.asarray(b)) <= 0.01

    same(jax.jit(one)(jnp.asarray(images[0])), loop[0].indices)
    batched = jax.vmap(one)(jnp.asarray(images))
    for b, r in zip(batched, loop, strict=True):
        same(b, r.indices)


def test_dithered_mse_is_the_images_mse():
    rng = np.random.default_rng(4)
    ramp = np.linspace(0, 255, 96)[None, :, None] * np.ones((40, 1, 3))
    image = np.clip(ramp + rng.normal(0, 3, ramp.shape), 0, 255).astype(np.uint8)
    for method in ("fs", "ordered"):
        r = jaxquant.remap(image, GRAYS.repeat(3, 1), dither=method)
        expected = np.mean((np.asarray(r.image).astype(float) - image) ** 2)
        assert float(r.mse) == pytest.approx(expected, rel=1e-5)
        np.testing.assert_array_equal(
            np.asarray(r.image), GRAYS.repeat(3, 1)[np.asarray(r.indices)]
        )


def test_dithering_a_ramp_keeps_local_means():
    ramp = np.repeat(np.linspace(0, 255, 128)[None, :, None], 32, 0).astype(np.uint8)
    plain = np.asarray(jaxquant.remap(ramp, GRAYS).image, float)
    for method in ("fs", "ordered"):
        out = np.asarray(jaxquant.remap(ramp, GRAYS, dither=method, dither_level=1.0).image, float)
        # Column means over the rows follow the ramp much better than plain bands do.
        err = np.abs(out[4:-4].mean(0) - ramp[4:-4].mean(0)).mean()
        err_plain = np.abs(plain[4:-4].mean(0) - ramp[4:-4].mean(0)).mean()
        assert err < err_plain / 2, (method, err, err_plain)


@pytest.mark.parametrize("method", ["fs", "ordered"])
def test_dithering_keeps_opacity_exact(method):
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (24, 32, 4), dtype=np.uint8)
    image[:8, :, 3] = 0
    image[8:16, :, 3] = 255
    r = jaxquant.quantize(jax.random.key(0), image, 12, dither=method)
    alpha = np.asarray(r.image)[..., 3]
    assert (alpha[:8] == 0).all()
    assert (alpha[8:16] == 255).all()


def test_quantize_dither_equals_remap_of_its_palette():
    rng = np.random.default_rng(6)
    image = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    r = jaxquant.quantize(jax.random.key(0), image, 8, dither="fs")
    again = jaxquant.remap(image, r.palette, dither="fs")
    np.testing.assert_array_equal(r.indices, again.indices)
    assert float(r.mse) == float(again.mse)


def test_bad_dither_arguments():
    image = np.zeros((4, 4, 3), np.uint8)
    palette = np.zeros((2, 3), np.uint8)
    with pytest.raises(ValueError, match="unknown dither 'floyd'"):
        jaxquant.remap(image, palette, dither="floyd")
    for level in (-0.1, 1.5, float("nan"), "1", True):
        with pytest.raises(ValueError, match="dither_level"):
            jaxquant.remap(image, palette, dither="fs", dither_level=level)
    with pytest.raises(ValueError, match="colour set"):
        jaxquant.remap(jaxquant.ColourSet.from_image(image), palette, dither="fs")
    with pytest.raises(ValueError, match="mode 'vector'"):
        jaxquant.quantize(jax.random.key(0), image + 1, 2, mode="channel", dither="ordered")
    with pytest.raises(ValueError, match="candidates"):
        dither.error_diffusion(_flat(0.5, 2, 2), np.zeros((2, 1), np.float32), candidates=0)


def _runs_reference(x, palette, nearest, level):
    """favour_runs in plain NumPy, pixel by pixel."""
    d = ((x[:, :, None, :] - palette[None, None]) ** 2).sum(-1)
    h, w = nearest.shape
    d_near = np.take_along_axis(d, nearest[..., None], -1)[..., 0]
    slack = level * d_near.mean()
    out = nearest.copy()
    for i in range(h):
        for j in range(1, w):
            if d[i, j, out[i, j - 1]] <= d_near[i, j] + slack:
                out[i, j] = out[i, j - 1]
    return out


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), level=st.sampled_from([0.0, 0.3, 1.0, 4.0]))
def test_favour_runs_matches_a_reference_and_bounds_each_error(seed, level):
    rng = np.random.default_rng(seed)
    x = rng.random((6, 9, 3)).astype(np.float32)
    palette = rng.random((5, 3)).astype(np.float32)
    d = ((x[:, :, None, :] - palette[None, None]) ** 2).sum(-1)
    nearest = d.argmin(-1)
    got = np.asarray(dither.favour_runs(x, palette, nearest, level=level))
    np.testing.assert_array_equal(got, _runs_reference(x, palette, nearest, level))
    d_near = d.min(-1)
    chosen = np.take_along_axis(d, got[..., None], -1)[..., 0]
    assert (chosen <= d_near + level * d_near.mean() + 1e-6).all()
    if level == 0:
        np.testing.assert_array_equal(got, nearest)


def test_runs_make_smaller_files_for_a_little_more_error(photo):
    palette = np.asarray(jaxquant.quantize(jax.random.key(0), photo, 16, num_steps=40).palette)
    exact = jaxquant.remap(photo, palette)
    runs = jaxquant.remap(photo, palette, runs=1)
    assert float(exact.mse) < float(runs.mse) < 1.2 * float(exact.mse)
    assert len(jaxquant.io.encode(runs)) < len(jaxquant.io.encode(exact))
    # more runs: fewer changes of index along the rows
    changes = [int((np.diff(np.asarray(r.indices), axis=1) != 0).sum()) for r in (exact, runs)]
    assert changes[1] < changes[0]
    again = jaxquant.quantize(jax.random.key(0), photo, 16, num_steps=40, runs=1)
    np.testing.assert_array_equal(np.asarray(again.indices), np.asarray(runs.indices))
    assert float(again.mse) == pytest.approx(float(runs.mse), rel=1e-6)


def test_runs_keep_opacity_exact():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (24, 32, 4), dtype=np.uint8)
    image[:8, :, 3] = 0
    image[8:16, :, 3] = 255
    r = jaxquant.quantize(jax.random.key(0), image, 12, runs=4)
    alpha = np.asarray(r.image)[..., 3]
    assert (alpha[:8] == 0).all()
    assert (alpha[8:16] == 255).all()


def test_bad_runs_arguments():
    image = np.zeros((4, 4, 3), np.uint8)
    palette = np.zeros((2, 3), np.uint8)
    for runs in (-0.1, 4.5, float("nan"), "1", True):
        with pytest.raises(ValueError, match="runs must be"):
            jaxquant.remap(image, palette, runs=runs)
    with pytest.raises(ValueError, match="without dithering"):
        jaxquant.remap(image, palette, dither="fs", runs=1)
    with pytest.raises(ValueError, match="colour set"):
        jaxquant.remap(jaxquant.ColourSet.from_image(image), palette, runs=1)
    with pytest.raises(ValueError, match="mode 'vector'"):
        jaxquant.quantize(jax.random.key(0), image + 1, 2, mode="channel", runs=1)
    with pytest.raises(ValueError, match="nearest must have shape"):
        dither.favour_runs(_flat(0.5, 2, 3), np.zeros((2, 1), np.float32), np.zeros((3, 2)))
