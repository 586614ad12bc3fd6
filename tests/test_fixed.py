"""Fixed colours (``fixed=``): present exactly, first, while the rest fit around them."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxquant
from jaxquant import seeding, solvers
from jaxquant.quality import reduce_palette
from tests.conftest import FAST, blobs

WB = "#ffffff,#000000"


def _image(seed=0, shape=(24, 32, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("solver", [None, jaxquant.Lloyd(num_steps=5)], ids=["sq", "lloyd"])
def test_fixed_first_and_exact(solver):
    kw = FAST if solver is None else {"solver": solver}
    fit = jaxquant.fit_palette(jax.random.key(0), _image(), 8, fixed=WB + ",#12345f", **kw)
    p = np.asarray(fit.palette)
    assert p.shape == (8, 3)
    assert p.dtype == np.uint8
    assert p[:3].tolist() == [[255, 255, 255], [0, 0, 0], [18, 52, 95]]
    assert len({tuple(r) for r in p[3:]}) == 5  # the others are fitted, not copies


def test_float_image_keeps_float_values():
    image = _image().astype(np.float32) / 255
    fit = jaxquant.fit_palette(jax.random.key(0), image, 6, fixed=[[0.3, 0.2, 0.1]], **FAST)
    np.testing.assert_array_equal(np.asarray(fit.palette)[0], np.float32([0.3, 0.2, 0.1]))


def test_the_rest_fit_around_them():
    # Three tight clusters; one centre fixed: the two free entries take the other two.
    rng = np.random.default_rng(1)
    centres = np.array([[30, 30, 30], [220, 40, 40], [40, 200, 220]])
    image = blobs(rng, centres, 600, 4.0).reshape(60, 30, 3)
    r = jaxquant.quantize(jax.random.key(0), image, 3, fixed=[[30, 30, 30]], **FAST)
    p = np.asarray(r.palette).astype(int)
    assert p[0].tolist() == [30, 30, 30]
    free = sorted(p[1:].tolist())
    for got, want in zip(free, sorted(centres[1:].tolist()), strict=True):
        assert np.abs(np.subtract(got, want)).max() <= 2
    assert float(r.mse) < 60  # about the clusters' own spread (3 · 4²)


def test_jit_matches_eager():
    image = _image(3)
    fit = functools.partial(jaxquant.fit_palette, k=8, fixed=WB, **FAST)
    eager = fit(jax.random.key(2), image)
    jitted = jax.jit(fit)(jax.random.key(2), image)
    np.testing.assert_array_equal(np.asarray(eager.palette), np.asarray(jitted.palette))


def test_vmap_over_keys():
    image = _image(4)
    fit = functools.partial(jaxquant.fit_palette, k=8, fixed=WB, **FAST)
    many = jax.vmap(lambda key: fit(key, image).palette)(jax.random.split(jax.random.key(0), 3))
    assert (np.asarray(many)[:, :2] == [[255, 255, 255], [0, 0, 0]]).all()


def test_batch_matches_one_by_one():
    images = [_image(5), _image(6), _image(7, (16, 16, 3))]
    keys = jax.random.split(jax.random.key(0), 3)
    batch = jaxquant.quantize_batch(keys, images, 8, fixed="#ff00ff", **FAST)
    for key, image, got in zip(keys, images, batch, strict=True):
        want = jaxquant.quantize(key, image, 8, fixed="#ff00ff", **FAST)
        np.testing.assert_array_equal(np.asarray(got.palette), np.asarray(want.palette))
        assert np.asarray(got.palette)[0].tolist() == [255, 0, 255]


def test_remap_uses_fixed_entries():
    image = np.zeros((8, 8, 3), np.uint8)
    image[:4] = 255
    image[4:, :, 0] = np.arange(8, dtype=np.uint8)[None, :] * 30
    r = jaxquant.quantize(jax.random.key(0), image, 4, fixed=WB, **FAST)
    assert (np.asarray(r.indices)[:4] == 0).all()  # white pixels on the fixed white


def test_all_fixed():
    r = jaxquant.quantize(jax.random.key(0), _image(), 2, fixed=WB)
    assert np.asarray(r.palette).tolist() == [[255, 255, 255], [0, 0, 0]]
    assert set(np.unique(np.asarray(r.indices))) <= {0, 1}


@pytest.mark.parametrize(
    ("fixed", "k"), [([[255, 0, 0]], 4), ([[200, 200, 200]], 2), ([[0, 0, 0]], 3)]
)
def test_lossless_with_fixed(fixed, k):
    # Two colours; a fixed colour that is new (needs k >= 3) or one of them (k >= 2).
    image = np.zeros((4, 4, 3), np.uint8)
    image[2:] = 200
    r = jaxquant.quantize(jax.random.key(0), image, k, fixed=fixed)
    assert float(r.mse) == 0.0
    np.testing.assert_array_equal(np.asarray(r.image), image)
    p = np.asarray(r.palette)
    assert p.shape == (k, 3)
    assert p[0].tolist() == fixed[0]
    np.testing.assert_array_equal(p[np.asarray(r.indices)], image)


def test_lossless_under_jit_puts_fixed_first():
    colours = jaxquant.ColourSet.from_vectors(np.array([[10, 20, 30], [40, 50, 60]], np.uint8))
    fit = jax.jit(functools.partial(jaxquant.fit_palette, k=4, fixed="#fff", **FAST))
    p = np.asarray(fit(jax.random.key(0), colours).palette)
    assert p[:3].tolist() == [[255, 255, 255], [10, 20, 30], [40, 50, 60]]


def test_alpha_classes():
    image = _image(8, (30, 30, 4))
    image[:10, :, 3] = 0
    image[10:20, :, 3] = 255
    fixed = "#00000000,#ff0000,#00ff0080"
    r = jaxquant.quantize(jax.random.key(0), image, 12, fixed=fixed, **FAST)
    p = np.asarray(r.palette)
    assert p[:3].tolist() == [[0, 0, 0, 0], [255, 0, 0, 255], [0, 255, 0, 128]]
    assert (p[3:, 3] != 0).all()  # the fixed transparent entry is the only one
    out = np.asarray(r.image)
    assert (out[:10, :, 3] == 0).all()
    assert (out[10:20, :, 3] == 255).all()


def test_opaque_fixed_on_rgba_and_grey():
    rgba = _image(9, (16, 16, 4))
    rgba[..., 3] = 255
    fit = jaxquant.fit_palette(jax.random.key(0), rgba, 6, fixed="#102030", **FAST)
    assert np.asarray(fit.palette)[0].tolist() == [16, 32, 48, 255]
    grey = _image(10, (16, 16, 1))
    fit = jaxquant.fit_palette(jax.random.key(0), grey, 4, fixed="#808080", **FAST)
    assert np.asarray(fit.palette)[0].tolist() == [128]


def test_quality_target_keeps_fixed(photo):
    r = jaxquant.quantize_to_quality(
        jax.random.key(0), photo, "0-20", max_colors=32, fixed=WB, **FAST
    )
    p = np.asarray(r.palette)
    assert p.shape[0] < 32
    assert p[:2].tolist() == [[255, 255, 255], [0, 0, 0]]


def test_reduce_palette_keeps_fixed_entries():
    rng = np.random.default_rng(0)
    palette = rng.integers(0, 256, (20, 3), dtype=np.uint8)
    counts = rng.integers(1, 100, 20)
    out = reduce_palette(palette, counts, 4, fixed=3)
    np.testing.assert_array_equal(out[:3], palette[:3])
    assert out.shape == (4, 3)
    np.testing.assert_array_equal(reduce_palette(palette, counts, 3, fixed=3), palette[:3])


def test_frozen_lloyd_step_closed_form():
    colours = jnp.array([[0.0], [0.2], [0.9], [1.0]])
    palette = jnp.array([[0.1], [0.8]])
    frozen = jnp.array([True, False])
    new, _, counts = solvers.lloyd_step(palette, colours, jnp.ones(4), frozen=frozen)
    np.testing.assert_allclose(np.asarray(new), [[0.1], [0.95]], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(counts), [2, 2])


def test_kmeans_plusplus_seeds_around_fixed():
    rng = np.random.default_rng(2)
    centres = np.array([[20, 20, 20], [230, 30, 30], [30, 230, 30], [30, 30, 230]])
    pixels = jnp.asarray(blobs(rng, centres, 200, 3.0) / 255.0, jnp.float32)
    fixed = jnp.asarray(centres[:2] / 255.0, jnp.float32)
    palette = seeding.kmeans_plusplus(jax.random.key(0), pixels, 4, fixed=fixed)
    np.testing.assert_array_equal(np.asarray(palette[:2]), np.asarray(fixed))
    # the two seeded rows come from the two clusters without a fixed colour
    near = np.argmin(((np.asarray(palette[2:])[:, None] * 255 - centres) ** 2).sum(-1), 1)
    assert sorted(near.tolist()) == [2, 3]


def test_seed_around_other_initializers():
    pixels = jnp.asarray(_image(12).reshape(-1, 3) / 255.0, jnp.float32)
    fixed = jnp.array([[1.0, 1.0, 1.0]])
    out = seeding.seed_around(jax.random.key(0), pixels, 5, init=seeding.random_init, fixed=fixed)
    assert out.shape == (5, 3)
    np.testing.assert_array_equal(np.asarray(out[0]), [1.0, 1.0, 1.0])


@jax.tree_util.register_static
class _NoFrozen:
    """A solver following the protocol but unable to freeze entries."""

    def resolve(self, k):
        return self

    def __call__(self, key, problem, palette):
        return jaxquant.Lloyd(num_steps=2)(key, problem, palette)


def test_solver_without_frozen_refused_only_with_fixed():
    image = _image(13)
    jaxquant.fit_palette(jax.random.key(0), image, 4, solver=_NoFrozen())  # fine
    with pytest.raises(TypeError, match="'frozen' keyword"):
        jaxquant.fit_palette(jax.random.key(0), image, 4, solver=_NoFrozen(), fixed=WB)


@pytest.mark.parametrize(
    ("fixed", "shape", "error", "message"),
    [
        ("#fff,#000,#f00", (8, 8, 3), ValueError, "3 fixed colours do not fit in a palette of 2"),
        ("#ggg", (8, 8, 3), ValueError, "fixed: "),
        ([[0, 0, 300]], (8, 8, 3), ValueError, "integers must be in 0..255"),
        ([[0.0, 1.5, 0.0]], (8, 8, 3), ValueError, "finite and in"),
        ("#ff000080", (8, 8, 3), ValueError, "#ff000080 is not opaque"),
        ("#ff0000", (8, 8, 1), ValueError, "#ff0000 is not grey"),
        ([[1, 2]], (8, 8, 3), ValueError, "#0102 is not opaque"),
        (np.zeros((2, 5)), (8, 8, 3), ValueError, "1-4 channels"),
        ([[True, False, True]], (8, 8, 3), TypeError, "numbers or hex strings"),
    ],
)
def test_bad_fixed(fixed, shape, error, message):
    with pytest.raises(error, match=message):
        jaxquant.fit_palette(jax.random.key(0), _image(14, shape), 2, fixed=fixed, **FAST)


def test_channel_mode_refuses_fixed():
    with pytest.raises(ValueError, match="mode 'vector'"):
        jaxquant.quantize(jax.random.key(0), _image(), 4, mode="channel", fixed=WB)


@settings(max_examples=3)  # fixed colours are static: every example compiles a fit
@given(
    st.lists(st.tuples(*[st.integers(0, 255)] * 3), min_size=1, max_size=4, unique=True),
    st.integers(0, 2**31 - 1),
)
def test_any_fixed_colours_present_exactly(fixed, seed):
    image = _image(seed % 1000, (12, 12, 3))
    fit = jaxquant.fit_palette(jax.random.key(seed), image, 6, fixed=np.array(fixed), **FAST)
    np.testing.assert_array_equal(np.asarray(fit.palette)[: len(fixed)], np.array(fixed))
