"""Seeding: k-means++ and random initializers, edge cases of k vs distinct colours."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxquant import seeding


def _rows_in(palette, pixels) -> bool:
    pix = {tuple(p) for p in np.asarray(pixels).tolist()}
    return all(tuple(r) in pix for r in np.asarray(palette).tolist())


@pytest.mark.parametrize("init", sorted(seeding.INITIALIZERS))
def test_palette_rows_are_pixels(init):
    rng = np.random.default_rng(0)
    pixels = jnp.asarray(rng.random((300, 3)), jnp.float32)
    palette = seeding.get_initializer(init)(jax.random.key(1), pixels, 8)
    assert palette.shape == (8, 3)
    assert _rows_in(palette, pixels)


@pytest.mark.parametrize("init", sorted(seeding.INITIALIZERS))
def test_more_colours_than_distinct_covers_all(init):
    distinct = jnp.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    pixels = jnp.repeat(distinct, 10, axis=0)
    palette = seeding.get_initializer(init)(jax.random.key(0), pixels, 5)
    assert np.all(np.isfinite(palette))
    got = {tuple(r) for r in np.asarray(palette).tolist()}
    assert got == {tuple(r) for r in np.asarray(distinct).tolist()}


@pytest.mark.parametrize("init", sorted(seeding.INITIALIZERS))
def test_zero_weight_pixels_never_chosen(init):
    pixels = jnp.concatenate([jnp.full((50, 3), 0.25), jnp.full((50, 3), 0.75)])
    weights = jnp.concatenate([jnp.ones(50), jnp.zeros(50)])
    palette = seeding.get_initializer(init)(jax.random.key(3), pixels, 4, weights)
    np.testing.assert_array_equal(palette, jnp.full((4, 3), 0.25))


def test_kmeans_plusplus_separates_clusters():
    rng = np.random.default_rng(4)
    centres = np.array([[0.1, 0.1, 0.1], [0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])
    pixels = (centres[:, None] + rng.normal(0, 0.01, (4, 50, 3))).reshape(-1, 3)
    palette = np.asarray(
        seeding.kmeans_plusplus(jax.random.key(0), jnp.asarray(pixels, jnp.float32), 4)
    )
    nearest = np.argmin(((palette[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    assert sorted(nearest.tolist()) == [0, 1, 2, 3]


def test_same_key_same_palette_and_keys_differ():
    pixels = jnp.asarray(np.random.default_rng(5).random((500, 3)), jnp.float32)
    seed = jax.jit(seeding.kmeans_plusplus, static_argnums=2)  # eager: test_jit_matches_eager
    a = seed(jax.random.key(0), pixels, 6)
    b = seed(jax.random.key(0), pixels, 6)
    c = seed(jax.random.key(1), pixels, 6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_jit_matches_eager():
    pixels = jnp.asarray(np.random.default_rng(6).random((200, 3)), jnp.float32)
    key = jax.random.key(2)
    eager = seeding.kmeans_plusplus(key, pixels, 5)
    jitted = jax.jit(seeding.kmeans_plusplus, static_argnums=2)(key, pixels, 5)
    np.testing.assert_array_equal(eager, jitted)


def test_factory_cached_and_names():
    assert seeding.make_kmeans_plusplus(1, 1) is seeding.make_kmeans_plusplus(1, 1.0)
    assert seeding.get_initializer("kmeans++") is seeding.kmeans_plusplus
    with pytest.raises(ValueError, match="choose one of kmeans\\+\\+, kmeans\\+\\+-d1, random"):
        seeding.get_initializer("kmeans")
    with pytest.raises(TypeError):
        seeding.get_initializer(3)
