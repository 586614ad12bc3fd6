"""The differentiable-quantization examples: their pieces, and reduced runs of each."""

from __future__ import annotations

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxquant
from jaxquant.problem import ColourSet
from tests.conftest import TOL

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


online_kmeans = _load("online_kmeans")
learn_palette = _load("learn_palette")
train_tiny_model = _load("train_tiny_model")

# Reduced runs share one image size and k, so quantize's compiled program is shared.
WIDTH, K = "48", "8"


# --------------------------------------------------------------------------------------
# online_kmeans: MacQueen's rule as an optax transformation.


def _macqueen_numpy(palette, stream):
    """MacQueen (1967), transcribed: move the nearest centre 1/n of the way to x."""
    y = palette.astype(np.float64).copy()
    n = np.ones(len(y))
    for x in stream.astype(np.float64):
        j = np.argmin(((y - x) ** 2).sum(1))
        n[j] += 1
        y[j] += (x - y[j]) / n[j]
    return y, n


@jax.jit
def _sq_on_stream(palette, stream):
    """SQ with batch_size=1 fed one given pixel per step (a one-colour set)."""
    solver = jaxquant.SQ(batch_size=1, optimizer=online_kmeans.macqueen(0.5))
    state = solver.init(ColourSet.from_vectors(stream[:1]), palette)

    def step(state, x):
        # The set of one row: the step's minibatch of one is that row.
        state, _ = solver.step(state, jax.random.key(0), ColourSet.from_vectors(x[None, :]))
        return state, None

    state, _ = jax.lax.scan(step, state, stream)
    return state.palette, state.opt_state[0].counts


def test_macqueen_transform_is_macqueens_algorithm_at_batch_size_one():
    rng = np.random.default_rng(0)
    stream = rng.random((400, 3)).astype(np.float32)
    palette = rng.random((5, 3)).astype(np.float32)
    got, counts = _sq_on_stream(palette, stream)
    want, n = _macqueen_numpy(palette, stream)
    np.testing.assert_array_equal(counts, n)
    np.testing.assert_allclose(got, want, **TOL[np.float32])
    # Each centre is the running mean of its seed and its samples.
    idx = np.zeros(len(stream), int)
    y = palette.astype(np.float64).copy()
    members = [[p.copy()] for p in y]
    for i, x in enumerate(stream.astype(np.float64)):
        idx[i] = np.argmin(((y - x) ** 2).sum(1))
        members[idx[i]].append(x)
        y[idx[i]] = np.mean(members[idx[i]], axis=0)
    np.testing.assert_allclose(got, y, **TOL[np.float32])


def test_scale_by_macqueen_counts_chosen_rows_only():
    t = online_kmeans.scale_by_macqueen(initial_count=2.0)
    state = t.init(jnp.zeros((3, 3)))
    grads = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [0.0, 0.0, -6.0]])
    updates, state = t.update(grads, state, None)
    np.testing.assert_array_equal(state.counts, [3.0, 2.0, 3.0])
    np.testing.assert_allclose(updates, grads / 3.0)
    updates, state = t.update(grads, state, None)
    np.testing.assert_array_equal(state.counts, [4.0, 2.0, 4.0])
    np.testing.assert_allclose(updates, grads / 4.0)


@pytest.mark.slow
def test_online_kmeans_example_runs(capsys):
    rows = online_kmeans.main(["--size", WIDTH, "--seeds", "1", "--samples", "4096"])
    out = capsys.readouterr().out
    assert out.count("\n| ") == len(rows) + 1  # header + one line per method
    assert len(rows) == 7
    assert all(np.isfinite(r.mse) and r.mse > 0 for r in rows)
    assert {r.batch_size for r in rows if "macqueen" in r.name} == {1, 512}


# --------------------------------------------------------------------------------------
# learn_palette: losses in JAX, and a reduced run.


def test_ssim_and_edge_weights():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.random((24, 24, 3)), jnp.float32)
    assert float(learn_palette.ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    noisy = [jnp.clip(x + s * jnp.asarray(rng.normal(size=x.shape)), 0, 1) for s in (0.05, 0.2)]
    s1, s2 = (float(learn_palette.ssim(n, x)) for n in noisy)
    assert 1.0 > s1 > s2
    w = learn_palette.edge_weights(x)
    assert w.shape == (24, 24)
    assert float(jnp.mean(w)) == pytest.approx(1.0, rel=1e-5)
    flat = learn_palette.edge_weights(jnp.full((8, 8, 3), 0.5))
    np.testing.assert_allclose(flat, 1.0, **TOL["reorder"])  # no edges: uniform weights


@pytest.mark.slow
def test_learn_palette_example_improves_its_loss(tmp_path, capsys):
    results = learn_palette.main([str(tmp_path), "--width", WIDTH, "-k", K, "--steps", "60"])
    before, after = results["before"], results["after"]
    assert after["edge-weighted MSE"] < before["edge-weighted MSE"]
    for name in ("original.png", "before.png", "after.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "learned (after)" in capsys.readouterr().out


# --------------------------------------------------------------------------------------
# train_tiny_model: a learned dither, reduced.


def test_bayer_pattern_is_balanced_and_tiles():
    p = np.asarray(train_tiny_model.bayer_pattern(6, 9))
    assert p.shape == (6, 9, 1)
    assert np.all(np.abs(p) < 0.5)
    np.testing.assert_array_equal(p[4:6, 4:8, 0], p[0:2, 0:4, 0])
    assert np.mean(train_tiny_model.BAYER4) == pytest.approx(0.0)


@pytest.mark.slow
def test_train_tiny_model_example_learns_a_dither(tmp_path):
    results = train_tiny_model.main(
        ["--width", WIDTH, "-k", K, "--steps", "150", "--out", str(tmp_path)]
    )
    plain = results["plain quantization (no dither)"]
    assert results["learned dither, trained through soft"] < plain
    assert len(list(tmp_path.glob("*.png"))) == 5
