"""The kernels and solvers: exact chunked assignment in both layouts, Lloyd, SQ under optax."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxquant
from jaxquant import kernels, losses, solvers
from jaxquant.problem import ColourSet
from tests import reference as ref
from tests.conftest import TOL


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
    np.testing.assert_allclose(d, ref_d, **TOL["distance"])


_LLOYD_STEP = jax.jit(jaxquant.lloyd_step)  # one program per shape, not one per operation


@given(
    seed=st.integers(0, 2**31 - 1),
    shape=st.sampled_from([(256, 3), (128, 1)]),
    k=st.sampled_from([2, 9]),
)
def test_lloyd_step_never_increases_loss(seed, shape, k):
    rng = np.random.default_rng(seed)
    colours = jnp.asarray(rng.random(shape), jnp.float32)
    weights = jnp.asarray(rng.integers(0, 5, shape[0]), jnp.float32)
    palette = jnp.asarray(rng.random((k, shape[1])), jnp.float32)
    new, before, _ = _LLOYD_STEP(palette, colours, weights)
    _, after, _ = _LLOYD_STEP(new, colours, weights)
    # float32 means of up to 256 colours: a relative 1e-5 of slack.
    assert float(after) <= float(before) * (1 + 1e-5) + 1e-9


def test_lloyd_matches_numpy_reference():
    rng = np.random.default_rng(7)
    colours = rng.random((400, 3)).astype(np.float32)
    palette = colours[:6].copy()
    new, _, counts = jaxquant.lloyd_step(jnp.asarray(palette), jnp.asarray(colours), jnp.ones(400))
    idx, _ = ref.assign(colours, palette)
    expected = np.array([colours[idx == j].mean(0) for j in range(6)])
    np.testing.assert_allclose(new, expected, **TOL["reorder"])
    np.testing.assert_array_equal(counts, np.bincount(idx, minlength=6))


def test_lloyd_step_relocates_empty_entries_onto_the_farthest_colours():
    """Entries with no colours move onto the farthest colours, distinct ones, as
    scikit-learn's KMeans relocates empty clusters; frozen entries never move."""
    rng = np.random.default_rng(3)
    colours = rng.random((302, 3)) * 0.2
    colours[[40, 301]] = [[0.9, 0.9, 0.9], [0.9, 0.1, 0.9]]  # far from everything else
    colours = jnp.asarray(colours, jnp.float32)
    palette = jnp.asarray([[0.1, 0.1, 0.1], [5.0, 5.0, 5.0], [6.0, 6.0, 6.0], [7.0, 7.0, 7.0]])
    w = jnp.ones(302)
    kept, _, counts = jaxquant.lloyd_step(palette, colours, w)
    np.testing.assert_array_equal(kept[1:], palette[1:])  # without relocate: left alone
    new, _, _ = jaxquant.lloyd_step(palette, colours, w, relocate=True, chunk_size=64)
    moved = {tuple(np.round(np.asarray(row, np.float64), 4).tolist()) for row in new[1:3]}
    assert moved == {(0.9, 0.9, 0.9), (0.9, 0.1, 0.9)}  # the two far colours, once each
    idx, _ = ref.assign(np.asarray(colours), np.asarray(new))
    assert set(idx) >= {0, 1, 2}
    frozen = jnp.asarray([False, True, False, False])
    pinned, _, _ = jaxquant.lloyd_step(palette, colours, w, relocate=True, frozen=frozen)
    np.testing.assert_array_equal(pinned[1], palette[1])


@pytest.mark.parametrize("k", [16, 64, 256])
def test_no_palette_entry_is_left_without_pixels(photo, k):
    """An image with at least k distinct colours uses every entry (issue 18)."""
    assert len(np.unique(photo.reshape(-1, 3), axis=0)) >= k
    for seed in range(2):
        result = jaxquant.quantize(jax.random.key(seed), photo, k, num_steps=200)
        assert len(np.unique(np.asarray(result.indices))) == k


def _fit(optimizer, lr=None, num_steps=60, k=8, tol=0.0):
    rng = np.random.default_rng(0)
    colours = rng.random((2048, 3)).astype(np.float32)
    problem = ColourSet.from_vectors(colours)
    palette0 = jnp.asarray(colours[:k]) * 0.2  # a poor start the optimizer must improve on
    solver = jaxquant.SQ(
        num_steps=num_steps,
        batch_size=256,
        optimizer=optimizer,
        learning_rate=lr,
        tol=tol,
        num_lloyd_steps=0,
    )
    fit = solver(jax.random.key(0), problem, palette0)
    before = losses.squared_loss(palette0, jnp.asarray(colours))
    after = losses.squared_loss(fit.palette, jnp.asarray(colours))
    return fit, float(before), float(after)


@pytest.mark.parametrize("name", jaxquant.OPTIMIZERS)
def test_every_optimizer_decreases_loss(name):
    fit, before, after = _fit(name)
    assert after < 0.5 * before
    assert fit.losses.shape == (60,)
    assert int(fit.num_steps) == 60
    assert int(fit.status) == jaxquant.Status.OK
    assert np.all((np.asarray(fit.palette) >= 0) & (np.asarray(fit.palette) <= 1))


def test_custom_optax_chain_runs_unchanged():
    opt = optax.chain(
        optax.clip_by_global_norm(1.0), optax.adam(optax.cosine_decay_schedule(0.05, 60))
    )
    _, before, after = _fit(opt)
    assert after < 0.5 * before


def test_early_stop_skips_steps():
    fit, _, _ = _fit("adam", num_steps=400, tol=0.05)
    assert int(fit.num_steps) < 400
    # after stopping, the trace repeats the smoothed loss
    assert np.all(np.asarray(fit.losses[int(fit.num_steps) :]) == np.asarray(fit.losses[-1]))


def test_state_structure_stable_across_steps():
    rng = np.random.default_rng(1)
    problem = ColourSet.from_vectors(rng.random((256, 3)).astype(np.float32))
    solver = jaxquant.SQ(num_steps=10, batch_size=32, optimizer=optax.adam(0.01))
    state = solver.init(problem, problem.coordinates()[:4])
    new, loss = jax.jit(solver.step)(state, jax.random.key(0), problem)
    assert loss.shape == ()
    assert jax.tree.structure(new) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(state), strict=True):
        assert a.shape == b.shape
        assert a.dtype == b.dtype
    assert int(new.num_steps) == 1


def test_step_loop_matches_the_solver_contract():
    """A loop of init/step of your own: every step keeps the palette in the cube."""
    rng = np.random.default_rng(2)
    problem = ColourSet.from_vectors(rng.random((512, 3)).astype(np.float32))
    for solver in (jaxquant.SQ(num_steps=20, batch_size=64), jaxquant.Lloyd(num_steps=5)):
        state = solver.init(problem, problem.coordinates()[:6])
        step = jax.jit(solver.step)
        losses_seen = []
        for i in range(5):
            state, value = step(state, jax.random.key(i), problem)
            losses_seen.append(float(value))
            assert np.all((np.asarray(state.palette) >= 0) & (np.asarray(state.palette) <= 1))
        assert int(state.num_steps) == 5
        assert losses_seen[-1] <= losses_seen[0] * 1.5  # SQ is noisy; Lloyd is monotone


def test_unknown_optimizer_lists_names():
    with pytest.raises(
        ValueError, match="choose one of sgd, momentum, nesterov, adagrad, rmsprop, adam"
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


@pytest.fixture(params=kernels.LAYOUTS)
def layout(request):
    """Both nearest-colour kernels: the CPU's palette loop and the accelerators' matrix."""
    return request.param


@pytest.mark.parametrize("k", [1, 7, 256, 300])
def test_assign_layouts_exact(layout, k):
    rng = np.random.default_rng(k)
    pixels = rng.integers(0, 256, (777, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
    palette[-1] = palette[0]  # ties go to the lowest index
    ref_idx, ref_d = ref.assign(pixels, palette)
    fn = jax.jit(lambda p, q: jaxquant.assign(p, q, chunk_size=200, layout=layout))
    idx, d = fn(pixels, palette)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(d, ref_d)
    # Floats: random colours (integer ties scaled to floats are not exact ties).
    xf, yf = rng.random((777, 3)).astype(np.float32), rng.random((k, 3)).astype(np.float32)
    yf[-1] = yf[0]
    ref_idx, ref_d = ref.assign(xf, yf)
    fidx, fd = fn(xf, yf)
    np.testing.assert_array_equal(fidx, ref_idx)
    np.testing.assert_allclose(fd, ref_d, **TOL["distance"])


@pytest.mark.parametrize("k", [3, 64, 256, 2000])
def test_nearest_index_layouts(layout, k):
    # The packed search may call near-ties equal (within a relative 2^(bits-23));
    # everywhere else it is the exact nearest colour.
    rng = np.random.default_rng(k)
    pixels = rng.random((2048, 3)).astype(np.float32)
    palette = rng.random((k, 3)).astype(np.float32)
    idx = np.asarray(
        jax.jit(lambda p, q: kernels.nearest_index(p, q, layout=layout))(pixels, palette)
    )
    d = ref.sq_dists(pixels, palette)
    ref_idx = d.argmin(1)
    best = d[np.arange(len(d)), ref_idx]
    assert np.all(d[np.arange(len(d)), idx] <= best * (1 + 2.0**-12) + 1e-12)
    assert np.mean(idx == ref_idx) > 0.99


def test_assign_vmap_equals_loop(layout):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (4, 300, 3), dtype=np.uint8)
    palettes = rng.integers(0, 256, (4, 20, 3), dtype=np.uint8)
    assign = jax.vmap(lambda p, q: jaxquant.assign(p, q, chunk_size=128, layout=layout))
    idx, d = jax.jit(assign)(pixels, palettes)
    for i in range(4):
        ref_idx, ref_d = ref.assign(pixels[i], palettes[i])
        np.testing.assert_array_equal(idx[i], ref_idx)
        np.testing.assert_array_equal(d[i], ref_d)


def test_layouts_give_the_same_fit(layout):
    """SQ and its Lloyd polish in either layout: the same palette up to float noise."""
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    loop = jaxquant.fit_palette(jax.random.key(0), image, 8, num_steps=40, layout="loop")
    other = jaxquant.fit_palette(jax.random.key(0), image, 8, num_steps=40, layout=layout)
    assert np.abs(np.asarray(loop.palette, int) - np.asarray(other.palette, int)).max() <= 1


def test_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="unknown layout 'gpu'; choose one of loop, matrix"):
        jaxquant.assign(np.zeros((2, 3), np.uint8), np.zeros((1, 3), np.uint8), layout="gpu")
    with pytest.raises(ValueError, match="unknown layout"):
        jaxquant.SQ(layout="gpu")


def test_solvers_are_hashable_values_and_pytrees():
    a, b = jaxquant.SQ(num_steps=10), jaxquant.SQ(num_steps=10)
    assert a == b
    assert hash(a) == hash(b)
    assert jaxquant.SQ(num_steps=10, learning_rate=0.1) != jaxquant.SQ(num_steps=10)
    leaves, treedef = jax.tree.flatten(jaxquant.SQ(learning_rate=0.1))
    assert leaves == [0.1]  # the learning rate is the one traced field
    assert jax.tree.leaves(jaxquant.Lloyd()) == []
    resolved = jaxquant.SQ().resolve(64)
    assert (resolved.num_steps, resolved.batch_size, resolved.num_lloyd_steps) == (750, 1024, 1)
    assert resolved.learning_rate == pytest.approx(solvers.default_learning_rate("adam", 64))
    assert jaxquant.SQ(rank=3.0).resolve(16).num_lloyd_steps == 0
    assert resolved.resolve(64) is resolved


def test_traced_learning_rate_compiles_once():
    rng = np.random.default_rng(5)
    problem = ColourSet.from_vectors(rng.random((300, 3)).astype(np.float32))
    palette = problem.coordinates()[:4]

    @jax.jit
    def run(solver):
        return solver(jax.random.key(0), problem, palette).palette

    base = jaxquant.SQ(num_steps=20, batch_size=32).resolve(4)
    outs = [run(dataclasses.replace(base, learning_rate=lr)) for lr in (0.01, 0.02, 0.04)]
    assert run._cache_size() == 1
    assert not np.allclose(outs[0], outs[2])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(num_steps=-1), "num_steps must be at least 0"),
        (dict(batch_size=0), "batch_size must be at least 1"),
        (dict(rank=0.5), "rank must be a finite number >= 1"),
        (dict(rank=float("inf")), "rank must be a finite number >= 1"),
        (dict(learning_rate=-1.0), "learning_rate must be a positive number"),
        (dict(learning_rate=float("inf")), "learning_rate must be a positive number"),
        (dict(optimizer=optax.sgd(0.1), learning_rate=0.1), "applies to built-in optimizer"),
        (dict(optimizer="lbfgs"), "unknown optimizer 'lbfgs'"),
        (dict(loss=losses.squared_loss, rank=3.0), "pass either rank or loss"),
        (dict(tol=-1.0), "tol must be a finite number >= 0"),
    ],
)
def test_solver_options_are_checked_once_at_construction(options, message):
    with pytest.raises((ValueError, TypeError), match=message):
        jaxquant.SQ(**options)


def test_learning_rate_accepts_numpy_and_jax_scalars():
    for lr in (np.float32(0.01), np.float64(0.02), jnp.float32(0.03), 1):
        assert jaxquant.SQ(learning_rate=lr).learning_rate == lr
