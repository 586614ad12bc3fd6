"""The solver: exact chunked assignment, Lloyd steps, SQ steps under optax optimizers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxquant
from jaxquant import _solver, losses
from tests import reference as ref


@pytest.mark.parametrize("k", [1, 5, 256, 300])
def test_assign_uint8_exact(k):
    rng = np.random.default_rng(k)
    pixels = rng.integers(0, 256, (1000, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
    palette[-1] = palette[0]  # a duplicate: ties go to the lowest index
    idx, d = jaxquant.assign(jnp.asarray(pixels), jnp.asarray(palette), chunk_size=256)
    ref_idx, ref_d = ref.assign(pixels, palette)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(d, ref_d.astype(np.int64))


@pytest.mark.parametrize("c", [1, 3, 4])
def test_assign_float_exact(c):
    rng = np.random.default_rng(c)
    pixels = rng.random((513, c)).astype(np.float32)
    palette = rng.random((17, c)).astype(np.float32)
    idx, d = jaxquant.assign(jnp.asarray(pixels), jnp.asarray(palette), chunk_size=64)
    ref_idx, ref_d = ref.assign(pixels, palette)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(d, ref_d, rtol=1e-5, atol=1e-7)


@given(
    seed=st.integers(0, 2**31 - 1),
    shape=st.sampled_from([(64, 3), (256, 3), (128, 1)]),
    k=st.sampled_from([2, 5, 9]),
)
def test_lloyd_step_never_increases_loss(seed, shape, k):
    rng = np.random.default_rng(seed)
    colours = jnp.asarray(rng.random(shape), jnp.float32)
    weights = jnp.asarray(rng.integers(0, 5, shape[0]), jnp.float32)
    palette = jnp.asarray(rng.random((k, shape[1])), jnp.float32)
    new, before, _ = jaxquant.lloyd_step(palette, colours, weights)
    _, after, _ = jaxquant.lloyd_step(new, colours, weights)
    # float32 means of up to 256 colours: a relative 1e-5 of slack.
    assert float(after) <= float(before) * (1 + 1e-5) + 1e-9


def test_lloyd_matches_numpy_reference():
    rng = np.random.default_rng(7)
    colours = rng.random((400, 3)).astype(np.float32)
    palette = colours[:6].copy()
    new, _, counts = jaxquant.lloyd_step(jnp.asarray(palette), jnp.asarray(colours), jnp.ones(400))
    idx, _ = ref.assign(colours, palette)
    expected = np.array([colours[idx == j].mean(0) for j in range(6)])
    np.testing.assert_allclose(new, expected, rtol=1e-5)
    np.testing.assert_array_equal(counts, np.bincount(idx, minlength=6))


def _fit(optimizer, lr=None, num_steps=60, k=8, tol=0.0):
    rng = np.random.default_rng(0)
    colours = jnp.asarray(rng.random((2048, 3)), jnp.float32)
    weights = jnp.ones(2048, jnp.float32)
    palette0 = colours[:k] * 0.2  # a poor start the optimizer must improve on
    if isinstance(optimizer, str):
        optimizer = jaxquant.make_optimizer(
            optimizer, _solver.default_learning_rate(optimizer, k) if lr is None else lr, num_steps
        )
    state, trace = jaxquant.sq_fit(
        jax.random.key(0),
        palette0,
        colours,
        weights,
        loss=losses.squared_loss,
        optimizer=optimizer,
        num_steps=num_steps,
        batch_size=256,
        tol=tol,
    )
    before = losses.squared_loss(palette0, colours)
    after = losses.squared_loss(state.palette, colours)
    return state, trace, float(before), float(after)


@pytest.mark.parametrize("name", jaxquant.OPTIMIZERS)
def test_every_optimizer_decreases_loss(name):
    state, trace, before, after = _fit(name)
    assert after < 0.5 * before
    assert trace.shape == (60,)
    assert np.all((np.asarray(state.palette) >= 0) & (np.asarray(state.palette) <= 1))


def test_custom_optax_chain_runs_unchanged():
    opt = optax.chain(
        optax.clip_by_global_norm(1.0), optax.adam(optax.cosine_decay_schedule(0.05, 60))
    )
    _, _, before, after = _fit(opt)
    assert after < 0.5 * before


def test_early_stop_skips_steps():
    state, trace, _, _ = _fit("adam", num_steps=400, tol=0.05)
    assert int(state.num_steps) < 400
    # after stopping, the trace repeats the smoothed loss
    assert np.all(np.asarray(trace[int(state.num_steps) :]) == np.asarray(trace[-1]))


def test_state_structure_stable_across_steps():
    rng = np.random.default_rng(1)
    colours = jnp.asarray(rng.random((256, 3)), jnp.float32)
    opt = optax.adam(0.01)
    palette = colours[:4]
    state = _solver.SQState(
        palette,
        opt.init(palette),
        jnp.float32(0),
        jnp.float32(jnp.inf),
        jnp.bool_(False),
        jnp.int32(0),
    )
    new, _ = jaxquant.sq_step(
        state,
        jax.random.key(0),
        colours,
        jnp.cumsum(jnp.ones(256)),
        loss=losses.squared_loss,
        optimizer=opt,
        batch_size=32,
    )
    assert jax.tree.structure(new) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(state), strict=True):
        assert a.shape == b.shape
        assert a.dtype == b.dtype


def test_unknown_optimizer_lists_names():
    with pytest.raises(
        ValueError, match="valid names: sgd, momentum, nesterov, adagrad, rmsprop, adam"
    ):
        jaxquant.make_optimizer("lbfgs", 0.1, 10)


@pytest.mark.parametrize(("n", "chunk"), [(8191, 1000), (6144, 4096), (7, 3)])
def test_assign_any_row_count_and_chunk(n, chunk):
    # Chunks need not divide n: the last one is padded, and the padding is dropped.
    rng = np.random.default_rng(n)
    pixels = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (17, 3), dtype=np.uint8)
    idx, d = jaxquant.assign(pixels, palette, chunk_size=chunk)
    ref_idx, ref_d = ref.assign(pixels, palette)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(d, ref_d)


@pytest.fixture(params=[True, False], ids=["palette-loop", "distance-matrix"])
def layout(request, monkeypatch):
    """Both nearest-colour kernels: the CPU's palette loop and the accelerators' matrix."""
    monkeypatch.setattr(losses, "_PALETTE_LOOP", request.param)
    return request.param


@pytest.mark.parametrize("k", [1, 7, 256, 300])
def test_assign_layouts_exact(layout, k):
    rng = np.random.default_rng(k)
    pixels = rng.integers(0, 256, (777, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
    palette[-1] = palette[0]  # ties go to the lowest index
    ref_idx, ref_d = ref.assign(pixels, palette)
    fn = jax.jit(lambda p, q: jaxquant.assign(p, q, chunk_size=200))
    idx, d = fn(pixels, palette)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(d, ref_d)
    # Floats: random colours (integer ties scaled to floats are not exact ties).
    xf, yf = rng.random((777, 3)).astype(np.float32), rng.random((k, 3)).astype(np.float32)
    yf[-1] = yf[0]
    ref_idx, ref_d = ref.assign(xf, yf)
    fidx, fd = fn(xf, yf)
    np.testing.assert_array_equal(fidx, ref_idx)
    np.testing.assert_allclose(fd, ref_d, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("k", [3, 64, 256, 2000])
def test_nearest_index_fast_layouts(layout, k):
    # The packed search may call near-ties equal (within a relative 2^(bits-23));
    # everywhere else it is the exact nearest colour.
    rng = np.random.default_rng(k)
    pixels = rng.random((2048, 3)).astype(np.float32)
    palette = rng.random((k, 3)).astype(np.float32)
    idx = np.asarray(jax.jit(losses._nearest_index_fast)(pixels, palette))
    d = ref.sq_dists(pixels, palette)
    ref_idx = d.argmin(1)
    best = d[np.arange(len(d)), ref_idx]
    assert np.all(d[np.arange(len(d)), idx] <= best * (1 + 2.0**-12) + 1e-12)
    assert np.mean(idx == ref_idx) > 0.99


def test_assign_vmap_equals_loop(layout):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (4, 300, 3), dtype=np.uint8)
    palettes = rng.integers(0, 256, (4, 20, 3), dtype=np.uint8)
    idx, d = jax.jit(jax.vmap(lambda p, q: jaxquant.assign(p, q, chunk_size=128)))(pixels, palettes)
    for i in range(4):
        ref_idx, ref_d = ref.assign(pixels[i], palettes[i])
        np.testing.assert_array_equal(idx[i], ref_idx)
        np.testing.assert_array_equal(d[i], ref_d)
