"""The objective: values, and that its gradient is SQ's generalised gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxquant import losses
from tests import reference as ref
from tests.conftest import TOL


@pytest.mark.parametrize("rank", [1.0, 1.5, 2.0, 3.0])
def test_gradient_is_sq_formula(rank):
    rng = np.random.default_rng(int(rank * 10))
    pixels = rng.random((200, 3)).astype(np.float32)
    palette = rng.random((7, 3)).astype(np.float32)
    loss = losses.make_power_loss(rank)
    grad = jax.grad(loss)(jnp.asarray(palette), jnp.asarray(pixels))
    np.testing.assert_allclose(grad, ref.sq_gradient(palette, pixels, rank), rtol=2e-4, atol=1e-6)


def test_gradient_touches_only_nearest_colours():
    pixels = jnp.array([[0.1, 0.1, 0.1], [0.12, 0.1, 0.1]])
    palette = jnp.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.5, 0.5, 0.5]])
    grad = jax.grad(losses.squared_loss)(palette, pixels)
    assert np.all(np.asarray(grad[1:]) == 0)
    assert np.all(np.asarray(grad[0]) < 0)


@pytest.mark.parametrize("rank", [1.0, 2.0, 3.0])
def test_loss_matches_reference(rank):
    rng = np.random.default_rng(1)
    pixels = rng.random((300, 3)).astype(np.float32)
    palette = rng.random((5, 3)).astype(np.float32)
    weights = rng.random(300).astype(np.float32)
    value = losses.make_power_loss(rank)(jnp.asarray(palette), jnp.asarray(pixels), weights)
    np.testing.assert_allclose(value, ref.power_loss(palette, pixels, rank, weights), rtol=1e-4)


def test_zero_distance_has_finite_gradient():
    palette = jnp.array([[0.5, 0.5, 0.5], [0.0, 0.0, 0.0]])
    pixels = jnp.array([[0.5, 0.5, 0.5]])
    for rank in (1.0, 1.5, 3.0):
        grad = jax.grad(losses.make_power_loss(rank))(palette, pixels)
        assert np.all(np.isfinite(grad))
        assert np.all(np.asarray(grad) == 0)


def test_factory_is_cached_and_validates():
    assert losses.make_power_loss(3) is losses.make_power_loss(3.0)
    assert losses.make_power_loss(2.0) is losses.squared_loss
    with pytest.raises(ValueError, match="rank"):
        losses.make_power_loss(0.5)
    with pytest.raises(ValueError, match="delta"):
        losses.make_huber_loss(0.0)


def test_squared_distances_and_nearest():
    rng = np.random.default_rng(2)
    x, y = rng.random((50, 3)).astype(np.float32), rng.random((9, 3)).astype(np.float32)
    np.testing.assert_allclose(losses.squared_distances(x, y), ref.sq_dists(x, y), **TOL["reorder"])
    idx, d = losses.nearest(jnp.asarray(x), jnp.asarray(y))
    ref_idx, ref_d = ref.assign(x, y)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(d, ref_d, **TOL["reorder"])


def test_huber_is_quadratic_then_linear():
    palette = jnp.zeros((1, 1))
    near = losses.make_huber_loss(1.0)(palette, jnp.array([[0.5]]))
    far = losses.make_huber_loss(1.0)(palette, jnp.array([[3.0]]))
    np.testing.assert_allclose(near, 0.125)
    np.testing.assert_allclose(far, 2.5)
    assert np.all(np.isfinite(jax.grad(losses.huber_loss)(palette, jnp.zeros((1, 1)))))


def test_loss_jit_matches_eager():
    rng = np.random.default_rng(3)
    x, y = (
        jnp.asarray(rng.random((64, 3)), jnp.float32),
        jnp.asarray(rng.random((4, 3)), jnp.float32),
    )
    loss = losses.make_power_loss(3.0)
    np.testing.assert_allclose(jax.jit(loss)(y, x), loss(y, x), **TOL["program"])
    np.testing.assert_allclose(
        jax.jit(jax.grad(loss))(y, x), jax.grad(loss)(y, x), **TOL["reorder"]
    )
