"""The public pipeline: ColourSet -> fit_palette -> remap, composing into quantize.

The JAX contract of the traceable pieces: ``fit_palette`` and ``remap`` under ``jit`` and
``vmap`` (over keys and over a stack of images) give the eager results.
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxquant
from jaxquant.problem import ColourSet
from tests import reference as ref
from tests.conftest import FAST, TOL

RGB, GRAY = np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.uint8)


def _equal(a, b) -> None:
    for name in ("image", "palette", "indices"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("mse", "psnr", "loss"):
        np.testing.assert_allclose(
            float(getattr(a, name)), float(getattr(b, name)), **TOL["program"]
        )


def test_remap_of_fit_palette_is_quantize(photo):
    key = jax.random.key(3)
    fit = jaxquant.fit_palette(key, photo, 8, **FAST)
    result = jaxquant.quantize(key, photo, 8, **FAST)
    _equal(jaxquant.remap(photo, fit.palette), result)
    np.testing.assert_array_equal(fit.losses, result.losses)
    assert int(fit.num_steps) == FAST["num_steps"]


def test_remap_of_fit_palette_is_quantize_in_a_colour_space(photo):
    key = jax.random.key(4)
    fit = jaxquant.fit_palette(key, photo, 8, space="oklab", **FAST)
    result = jaxquant.quantize(key, photo, 8, space="oklab", **FAST)
    _equal(jaxquant.remap(photo, fit.palette, space="oklab"), result)


def test_fit_palette_and_remap_under_jit(photo):
    key = jax.random.key(0)
    eager_fit = jaxquant.fit_palette(key, photo, 8, **FAST)
    fit = jax.jit(functools.partial(jaxquant.fit_palette, k=8, **FAST))
    jitted = fit(key, photo)
    np.testing.assert_array_equal(jitted.palette, eager_fit.palette)
    np.testing.assert_array_equal(jitted.losses, eager_fit.losses)
    eager = jaxquant.remap(photo, eager_fit.palette)
    _equal(jax.jit(jaxquant.remap)(photo, eager_fit.palette), eager)


def test_vmap_over_keys(photo):
    keys = jax.random.split(jax.random.key(1), 3)
    fit = jax.vmap(lambda key: jaxquant.fit_palette(key, photo, 8, **FAST))(keys)
    assert fit.palette.shape == (3, 8, 3)
    for i in range(3):
        one = jaxquant.fit_palette(keys[i], photo, 8, **FAST)
        np.testing.assert_array_equal(fit.palette[i], one.palette)


def test_vmap_over_a_stack_of_images(photo):
    stack = np.stack([photo, photo[::-1], photo[:, ::-1]])
    key = jax.random.key(2)
    fits = jax.vmap(lambda im: jaxquant.fit_palette(key, im, 8, **FAST))(stack)
    results = jax.jit(jax.vmap(jaxquant.remap))(stack, fits.palette)
    for i in range(3):
        fit = jaxquant.fit_palette(key, stack[i], 8, **FAST)
        np.testing.assert_array_equal(fits.palette[i], fit.palette)
        _equal(jax.tree.map(lambda x, i=i: x[i], results), jaxquant.remap(stack[i], fit.palette))


def test_grad_through_remap_loss_is_defined():
    """remap's loss is differentiable in a float palette (the assignment held fixed)."""
    rng = np.random.default_rng(0)
    image = rng.random((6, 8, 3)).astype(np.float32)
    palette = jnp.asarray(rng.random((4, 3)).astype(np.float32))
    g = jax.grad(lambda p: jaxquant.remap(image, p).loss)(palette)
    assert g.shape == (4, 3)
    assert bool(jnp.all(jnp.isfinite(g)))


def test_remap_is_the_exact_nearest_colour():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (9, 3), dtype=np.uint8)
    palette[8] = palette[2]  # a duplicate: ties go to the lowest index
    r = jaxquant.remap(image, palette)
    idx, d = ref.assign(image.reshape(-1, 3), palette)
    np.testing.assert_array_equal(np.asarray(r.indices).reshape(-1), idx)
    np.testing.assert_array_equal(r.image, palette[idx].reshape(image.shape))
    np.testing.assert_allclose(float(r.mse), d.mean() / 3, **TOL["program"])
    assert r.losses.shape == (0,)
    # A float palette for a uint8 image is rounded; for a float image, kept.
    rf = jaxquant.remap(image, palette / 255.0)
    np.testing.assert_array_equal(rf.palette, palette)
    fl = jaxquant.remap(image / 255.0, palette)
    np.testing.assert_array_equal(np.asarray(fl.indices), np.asarray(r.indices))
    assert fl.image.dtype == jnp.float32


def test_remap_in_a_space_assigns_in_that_space():
    rng = np.random.default_rng(6)
    image = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (6, 3), dtype=np.uint8)
    r = jaxquant.remap(image, palette, space="cielab")
    lab = np.asarray(jaxquant.colour.to_space(image.reshape(-1, 3), "cielab"), np.float64)
    plab = np.asarray(jaxquant.colour.to_space(palette, "cielab"), np.float64)
    np.testing.assert_array_equal(np.asarray(r.indices).reshape(-1), ref.assign(lab, plab)[0])


@pytest.mark.parametrize(
    ("palette", "error", "match"),
    [
        (np.zeros((4, 4), np.uint8), ValueError, r"shape \(k, 3\)"),
        (np.zeros((0, 3), np.uint8), ValueError, r"shape \(k, 3\)"),
        (np.full((2, 3), 2.0), ValueError, r"values in \[0, 1\]"),
        (np.full((2, 3), np.nan), ValueError, "finite"),
        (np.zeros((2, 3), np.int32), TypeError, "uint8 or float"),
    ],
)
def test_remap_refuses_bad_palettes(palette, error, match):
    with pytest.raises(error, match=match):
        jaxquant.remap(np.zeros((4, 4, 3), np.uint8), palette)


def test_quantize_refuses_tracers_and_points_to_the_traceable_pieces(photo):
    with pytest.raises(TypeError, match="not traceable.*fit_palette"):
        jax.jit(jaxquant.quantize, static_argnums=2)(jax.random.key(0), photo, 4)


def test_colour_set_builders():
    rng = np.random.default_rng(7)
    image = rng.integers(0, 4, (10, 12, 3), dtype=np.uint8) * 80
    s = ColourSet.from_image(image)
    assert (s.num_rows, int(s.num_valid), s.uniform) == (4096, 120, True)
    np.testing.assert_array_equal(s.weights[:120], 1)
    np.testing.assert_array_equal(s.weights[120:], 0)
    d, inverse = ColourSet.deduplicated(image)
    np.testing.assert_array_equal(np.asarray(d.colours)[inverse], image.reshape(-1, 3))
    assert float(np.sum(d.weights)) == 120
    assert not d.uniform
    both = ColourSet.from_images([image, image[:5]], weights=[1.0, 2.0])
    assert int(both.num_valid) == 180
    assert float(np.sum(both.weights)) == 120 + 2 * 60
    v = ColourSet.from_vectors(rng.random((300, 7)).astype(np.float32))
    assert (v.channels, int(v.num_valid), v.num_rows) == (7, 300, 4096)
    w = ColourSet.from_image(image, weights=np.arange(120.0).reshape(10, 12))
    assert not w.uniform
    assert float(w.weights[5]) == 5.0
    # A pytree: jit traces it, vmap batches it, and its static fields choose the program.
    leaves, treedef = jax.tree.flatten(s)
    assert len(leaves) == 3
    assert jax.tree.unflatten(treedef, leaves).space == "rgb"
    traced = jax.jit(lambda im: ColourSet.from_image(im).colours)(image)
    np.testing.assert_array_equal(traced, s.colours)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (
            lambda: ColourSet.from_image(np.zeros((4, 4), np.uint8), space="cielab"),
            ValueError,
            "RGB",
        ),
        (lambda: ColourSet.from_images([]), ValueError, "empty"),
        (
            lambda: ColourSet.from_images(
                [np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.uint8)]
            ),
            ValueError,
            "must match",
        ),
        (lambda: ColourSet.from_vectors(np.full((3, 2), 2.0)), ValueError, r"\[0, 1\]"),
        (
            lambda: ColourSet.from_image(RGB, weights=-np.ones(4)),
            ValueError,
            "non-negative",
        ),
        (
            lambda: ColourSet.from_image(np.zeros((2, 2, 3), np.uint8), space="hsv"),
            ValueError,
            "hsv",
        ),
    ],
)
def test_colour_set_refuses_bad_input(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_fit_palette_on_vectors_and_several_images(photo):
    rng = np.random.default_rng(8)
    vectors = ColourSet.from_vectors(rng.random((500, 5)).astype(np.float32))
    fit = jaxquant.fit_palette(jax.random.key(0), vectors, 4, **FAST)
    assert fit.palette.shape == (4, 5)
    assert fit.palette.dtype == jnp.float32
    shared = jaxquant.fit_palette(jax.random.key(0), [photo, photo[::2, ::2]], 6, **FAST)
    assert shared.palette.shape == (6, 3)
    assert shared.palette.dtype == jnp.uint8


def test_lossless_fit_is_immediate_for_any_k():
    image = np.random.default_rng(9).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    start = time.perf_counter()
    r = jaxquant.quantize(jax.random.key(0), image, 100_000)
    assert time.perf_counter() - start < 5  # no fit, no k-sized program
    assert r.palette.shape == (100_000, 3)
    np.testing.assert_array_equal(r.image, image)
    assert float(r.mse) == 0.0
    assert r.losses.shape == (0,)


def test_kmeans_is_quantize_with_the_lloyd_solver(photo):
    a = jaxquant.kmeans(jax.random.key(0), photo, 8, num_steps=20)
    b = jaxquant.quantize(jax.random.key(0), photo, 8, solver=jaxquant.Lloyd(num_steps=20))
    _equal(a, b)
    assert a.losses.shape == (20,)


def test_fit_options_are_resolved_in_one_place():
    opts = jaxquant.FitOptions.make(256, space="oklab")
    assert opts.solver == jaxquant.SQ().resolve(256)
    assert opts.space == "oklab"
    assert opts.seed_sample_size == 4096
    assert jaxquant.FitOptions.make(256) == jaxquant.FitOptions.make(256)
    with pytest.raises(ValueError, match="in space 'rgb', not 'oklab'"):
        jaxquant.fit_palette(
            jax.random.key(0), ColourSet.from_vectors(np.zeros((4, 3))), 2, space="oklab"
        )
