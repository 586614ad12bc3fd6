"""Vectors of any dimension through the kernels, seeding, fit_palette and remap.

Above :data:`jaxquant.kernels.GEMM_CHANNELS` channels the default layout is ``"gemm"``
(the expanded form, one matrix product); these tests hold it to NumPy's brute force.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxquant
from jaxquant import kernels, losses, seeding
from jaxquant.problem import ColourSet
from tests import reference as ref


def test_default_layout_follows_the_channels():
    assert kernels.resolve_layout(None, channels=kernels.GEMM_CHANNELS + 1) == "gemm"
    assert kernels.resolve_layout(None, channels=3) == kernels.resolve_layout(None)
    assert kernels.resolve_layout("loop", channels=300) == "loop"  # a named layout is kept


@pytest.mark.parametrize("layout", [*kernels.LAYOUTS, None])
def test_uint8_vectors_assign_exactly_in_every_layout(layout):
    """Integer vectors: the GEMM's float32 scores are exact integers, so ties and all."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (500, 12), dtype=np.uint8)
    palette = rng.integers(0, 256, (9, 12), dtype=np.uint8)
    palette[-1] = palette[2]  # ties go to the lowest index
    pixels[:5] = palette[2]
    idx, d = jax.jit(lambda p, q: kernels.assign(p, q, chunk_size=128, layout=layout))(
        pixels, palette
    )
    ref_idx, ref_d = ref.assign(pixels, palette)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(d, ref_d)
    assert d.dtype == np.int32


@pytest.mark.parametrize("c", [64, 300])
def test_float_vectors_distances_are_exact_and_ranks_near_exact(c):
    rng = np.random.default_rng(c)
    pixels = rng.random((3000, c)).astype(np.float32)
    palette = rng.random((40, c)).astype(np.float32)
    idx, d = kernels.assign(pixels, palette, chunk_size=1024)  # default: gemm
    idx = np.asarray(idx)
    full = ref.sq_dists(pixels, palette)
    best = full.min(1)
    # the distance returned is the direct one, to the colour returned ...
    np.testing.assert_allclose(d, full[np.arange(len(idx)), idx], rtol=1e-5)
    # ... which is the nearest, or within float32 rounding of it
    assert np.all(full[np.arange(len(idx)), idx] <= best * (1 + 1e-5))
    assert np.mean(idx == full.argmin(1)) > 0.999
    near = np.asarray(kernels.nearest_index(pixels, palette))
    assert np.all(full[np.arange(len(near)), near] <= best * (1 + 1e-4))


def test_squared_distances_of_many_channels():
    rng = np.random.default_rng(1)
    x, y = rng.random((50, 100)).astype(np.float32), rng.random((7, 100)).astype(np.float32)
    y[0] = x[0]
    d = np.asarray(losses.squared_distances(x, y))
    assert d.min() >= 0.0
    np.testing.assert_allclose(d, ref.sq_dists(x, y), rtol=1e-4, atol=1e-4)


def _blobs(n_per, centres, scale, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate(
        [c + scale * rng.standard_normal((n_per, centres.shape[1])) for c in centres]
    )
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def test_seeding_and_fit_find_separated_clusters_in_256_dimensions():
    rng = np.random.default_rng(2)
    centres = rng.random((6, 256))
    x = _blobs(300, centres, 0.01)
    pal = np.asarray(seeding.kmeans_plusplus(jax.random.key(0), jax.numpy.asarray(x), 6))
    assert len({int(np.argmin(ref.sq_dists(p[None], centres))) for p in pal}) == 6
    fit = jaxquant.fit_palette(jax.random.key(0), ColourSet.from_vectors(x), 6, num_steps=100)
    assert fit.palette.shape == (6, 256)
    found = np.asarray(fit.palette)
    # every true centre has a fitted one within the blobs' spread
    assert ref.sq_dists(centres, found).min(1).max() < 256 * 0.01**2 * 2
    ref_inertia = ref.sq_dists(x, ref.kmeans(x, 6, iters=20)).min(1).sum()
    inertia = ref.sq_dists(x, found).min(1).sum()
    assert inertia <= ref_inertia * 1.01


def test_remap_of_vectors_is_the_exact_assignment():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (700, 48), dtype=np.uint8)
    s = ColourSet.from_vectors(x)
    fit = jaxquant.fit_palette(jax.random.key(0), s, 8, num_steps=50)
    r = jaxquant.remap(s, fit.palette)
    ref_idx, ref_d = ref.assign(x, np.asarray(fit.palette))
    np.testing.assert_array_equal(np.asarray(r.indices)[:700], ref_idx)
    np.testing.assert_allclose(float(r.mse), ref_d.mean() / 48, rtol=1e-5)
