"""Soft assignment, the straight-through estimator and the soft loss: values and limits."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxquant
from jaxquant import losses, soft
from tests import reference as ref
from tests.conftest import TOL

PUBLIC = [getattr(soft, name) for name in soft.__all__]
# Jitted once at module level: eager dispatch compiles every primitive per shape, which
# costs more than one program per function. The eager paths are tested explicitly below.
SOFT_Q = jax.jit(soft.soft_quantize, static_argnames="rank")
SOFT_A = jax.jit(soft.soft_assign, static_argnames="rank")
SOFT_L = jax.jit(soft.soft_loss, static_argnames="rank")
STE = jax.jit(soft.quantize_ste)
TINY = [1e-3, 1e-6, 1e-12, 1e-19, 1e-30, 0.0]


def _data(seed: int, n: int = 64, k: int = 5, c: int = 3):
    rng = np.random.default_rng(seed)
    return rng.random((n, c)).astype(np.float32), rng.random((k, c)).astype(np.float32)


def _hard(pixels, palette):
    return palette[ref.assign(pixels, palette)[0]]


def _margin(pixels, palette, rank=2.0):
    """Gap between the nearest and second-nearest ``distance^rank`` of every pixel."""
    d = np.sort(np.sqrt(ref.sq_dists(pixels, palette)) ** rank, axis=1)
    return d[:, 1] - d[:, 0]


# --------------------------------------------------------------------------------------
# API conventions (tests/test_api.py covers jaxquant.__all__; these are the soft module's).


@pytest.mark.parametrize("fn", PUBLIC, ids=lambda f: f.__name__)
def test_docstring_with_example(fn):
    doc = inspect.getdoc(fn)
    assert doc
    assert "Examples:" in doc


@pytest.mark.parametrize("fn", [soft.soft_assign, soft.soft_quantize, soft.soft_loss])
def test_options_are_keyword_only(fn):
    params = inspect.signature(fn).parameters.values()
    keyword_only = {p.name for p in params if p.kind is p.KEYWORD_ONLY}
    assert keyword_only == {"temperature", "rank"}


def test_exported_at_top_level():
    assert jaxquant.soft_quantize is soft.soft_quantize
    assert jaxquant.quantize_ste is soft.quantize_ste


# --------------------------------------------------------------------------------------
# soft_assign / soft_quantize


@pytest.mark.parametrize("rank", [1.0, 2.0, 3.0])
def test_weights_are_a_softmin_of_distance_to_the_rank(rank):
    pixels, palette = _data(0)
    t = 0.05
    w = np.asarray(SOFT_A(pixels, palette, temperature=t, rank=rank))
    d = np.sqrt(ref.sq_dists(pixels, palette)) ** rank
    expected = np.exp(-(d - d.min(1, keepdims=True)) / t)
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(w, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(w.sum(1), 1.0, **TOL["program"])
    np.testing.assert_allclose(
        SOFT_Q(pixels, palette, temperature=t, rank=rank),
        expected @ palette.astype(np.float64),
        rtol=1e-4,
        atol=1e-6,
    )


def test_temperature_zero_is_exactly_the_hard_quantization():
    pixels, palette = _data(1)
    out = SOFT_Q(pixels, palette, temperature=0.0)
    np.testing.assert_array_equal(out, _hard(pixels, palette))
    onehot = SOFT_A(pixels, palette, temperature=0.0)
    np.testing.assert_array_equal(np.argmax(onehot, 1), ref.assign(pixels, palette)[0])


def test_converges_to_hard_quantization_as_temperature_falls():
    pixels, palette = _data(2, n=256)
    hard = _hard(pixels, palette)
    errors = [
        float(np.max(np.abs(SOFT_Q(pixels, palette, temperature=t) - hard)))
        for t in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-7)
    ]
    assert all(a >= b for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[0] > 0.1  # a warm temperature really blends colours
    # Exact once exp(−margin / T) underflows; the smallest margin here is > 1e-5.
    assert _margin(pixels, palette).min() > 1e-5
    assert errors[-1] == 0.0


@given(seed=st.integers(0, 2**16), rank=st.sampled_from([1.0, 2.0, 3.0]))
def test_soft_error_is_bounded_by_the_margin(seed, rank):
    # ‖soft − hard‖ <= Σ_{j≠nearest} w_j ‖y_j − y*‖ <= (k−1)·exp(−margin/T)·√c.
    pixels, palette = _data(seed, n=32, k=4)
    t = 1e-3
    err = np.abs(np.asarray(SOFT_Q(pixels, palette, temperature=t, rank=rank)))
    err = np.linalg.norm(err - _hard(pixels, palette), axis=1)
    bound = 3 * np.exp(-_margin(pixels, palette, rank) / t) * np.sqrt(3)
    assert np.all(err <= bound + 1e-6)


@given(seed=st.integers(0, 2**16), log_t=st.floats(-8, 1))
def test_soft_quantize_stays_in_the_palettes_box(seed, log_t):
    # A convex combination of palette colours: within their per-channel range.
    pixels, palette = _data(seed, n=16, k=3)
    out = np.asarray(SOFT_Q(pixels, palette, temperature=10.0**log_t))
    assert np.all(out >= palette.min(0) - 1e-6)
    assert np.all(out <= palette.max(0) + 1e-6)


def _awkward():
    """Exact ties, a pixel on a colour, duplicate colours: the cases that make NaNs."""
    palette = jnp.array([[0.0, 0, 0], [1.0, 1, 1], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]])
    image = jnp.array([[[0.25, 0.25, 0.25], [0.5, 0.5, 0.5]], [[0.75, 0.75, 0.75], [0, 0, 0]]])
    return image, palette


@pytest.mark.parametrize("rank", [1.0, 2.0, 3.0])
def test_tiny_temperatures_are_finite_everywhere(rank):
    image, palette = _awkward()

    def f(x, p, t):
        return jnp.sum(SOFT_Q(x, p, temperature=t, rank=rank) ** 2)

    grad = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))
    hard = _hard(np.asarray(image).reshape(-1, 3), np.asarray(palette)).reshape(2, 2, 3)
    for t in TINY:
        value, grads = grad(image, palette, jnp.float32(t))
        for g in (value, *grads):
            assert np.all(np.isfinite(g)), (t, g)
        if 0 < t <= 1e-6:
            # Exact three-way ties (0.25 and 0.75: colour 0 or 1 and the duplicate 0.5s)
            # blend equally at every temperature; every other pixel is hard.
            out = np.asarray(SOFT_Q(image, palette, temperature=t, rank=rank))
            np.testing.assert_allclose(out[0, 0], 1 / 3, **TOL["program"])
            np.testing.assert_allclose(out[1, 0], 2 / 3, **TOL["program"])
            np.testing.assert_array_equal(out[:, 1], hard[:, 1])


def test_options_are_validated():
    pixels, palette = _data(0)
    with pytest.raises(ValueError, match="temperature"):
        soft.soft_quantize(pixels, palette, temperature=-1.0)
    with pytest.raises(ValueError, match="scalar"):
        soft.soft_quantize(pixels, palette, temperature=jnp.ones(2))
    with pytest.raises(ValueError, match="rank"):
        soft.soft_quantize(pixels, palette, temperature=1.0, rank=0.5)
    with pytest.raises(TypeError, match="float"):
        soft.quantize_ste((pixels * 255).astype(np.uint8), palette)
    with pytest.raises(ValueError, match="channels"):
        soft.quantize_ste(pixels[:, :2], palette)
    with pytest.raises(ValueError, match=r"\(k, c\)"):
        soft.soft_quantize(pixels, palette[0], temperature=1.0)
    with pytest.raises(ValueError, match="temperature"):
        soft.make_soft_loss(-1.0)
    with pytest.raises(ValueError, match="rank"):
        soft.make_soft_loss(1.0, rank=0.0)


def test_dtypes_are_kept_and_mixed_floats_promote_explicitly():
    pixels, palette = _data(0, n=8)
    for fn in (STE, lambda x, p: SOFT_Q(x, p, temperature=0.1)):
        assert fn(pixels, palette).dtype == jnp.float32
        assert fn(pixels.astype(jnp.bfloat16), palette.astype(jnp.bfloat16)).dtype == (jnp.bfloat16)
        with jax.enable_x64(True):
            # Strict promotion is on (conftest): the cast must be explicit inside.
            out = fn(jnp.asarray(pixels, jnp.float64), jnp.asarray(palette, jnp.float32))
            assert out.dtype == jnp.float64


def test_any_leading_shape():
    pixels, palette = _data(3, n=24)
    flat = SOFT_Q(pixels, palette, temperature=0.01)
    for shape in [(4, 6, 3), (2, 3, 4, 3)]:
        x = pixels.reshape(shape)
        np.testing.assert_array_equal(SOFT_Q(x, palette, temperature=0.01), flat.reshape(shape))
        np.testing.assert_array_equal(STE(x, palette), _hard(pixels, palette).reshape(shape))
        assert SOFT_A(x, palette, temperature=0.01).shape == shape[:-1] + (5,)


# --------------------------------------------------------------------------------------
# quantize_ste


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_ste_forward_is_bit_exact_hard_quantization(jit):
    pixels, palette = _data(4, n=500, k=16)
    fn = jax.jit(soft.quantize_ste) if jit else soft.quantize_ste
    out = np.asarray(fn(pixels, palette))
    np.testing.assert_array_equal(out, _hard(pixels, palette))
    idx, _ = jaxquant.assign(jnp.asarray(pixels), jnp.asarray(palette))
    np.testing.assert_array_equal(out, palette[np.asarray(idx)])


def test_ste_ties_go_to_the_lowest_index():
    palette = jnp.array([[0.0], [1.0], [0.0]])
    image = jnp.array([[0.5], [0.0]])
    g = jax.jit(jax.grad(lambda p: jnp.sum(STE(image, p))))(palette)
    np.testing.assert_array_equal(g.ravel(), [2.0, 0.0, 0.0])


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_ste_backward(jit):
    pixels, palette = _data(5, n=200, k=6)
    cot = np.random.default_rng(6).normal(size=pixels.shape).astype(np.float32)

    def f(x, p):
        return jnp.sum(soft.quantize_ste(x, p) * cot)

    gx, gp = (jax.jit(jax.grad(f, (0, 1))) if jit else jax.grad(f, (0, 1)))(pixels, palette)
    # The image: straight through (identity).
    np.testing.assert_array_equal(gx, cot)
    # The palette: each colour gets the sum of its pixels' cotangents.
    idx = ref.assign(pixels, palette)[0]
    expected = np.zeros(palette.shape)
    np.add.at(expected, idx, cot)
    np.testing.assert_allclose(gp, expected, **TOL[np.float32])


def test_ste_palette_gradient_is_sq_gradient_of_reconstruction_error():
    # With the image held fixed, mean ‖STE(x) − x‖² has exactly the SQ loss's gradient.
    pixels, palette = _data(7, n=300, k=8)

    def reconstruction(p):
        return jnp.mean(jnp.sum((soft.quantize_ste(pixels, p) - pixels) ** 2, -1))

    np.testing.assert_allclose(
        jax.jit(jax.grad(reconstruction))(palette),
        ref.sq_gradient(palette, pixels, 2.0),
        rtol=2e-4,
        atol=1e-6,
    )


# --------------------------------------------------------------------------------------
# soft_loss / make_soft_loss


@pytest.mark.parametrize("rank", [1.0, 2.0, 3.0])
def test_soft_loss_is_bracketed_and_tends_to_the_sq_loss(rank):
    pixels, palette = _data(8, n=128, k=6)
    weights = np.random.default_rng(9).random(128).astype(np.float32)
    sq = ref.power_loss(palette, pixels, rank, weights)
    for t in (1e-1, 1e-2, 1e-3):
        value = float(SOFT_L(palette, pixels, weights, temperature=t, rank=rank))
        assert sq - t * np.log(6) - 1e-6 <= value <= sq + 1e-6
    np.testing.assert_allclose(
        SOFT_L(palette, pixels, weights, temperature=0.0, rank=rank), sq, rtol=1e-5
    )
    np.testing.assert_allclose(
        soft.make_soft_loss(1e-6, rank=rank)(palette, pixels, weights), sq, rtol=1e-4
    )


@pytest.mark.parametrize("rank", [1.0, 2.0, 3.0])
def test_soft_loss_gradient_is_responsibility_weighted_sq_gradient(rank):
    pixels, palette = _data(10, n=64, k=4)
    t = 0.05
    w = np.asarray(SOFT_A(pixels, palette, temperature=t, rank=rank), np.float64)
    diff = palette[None, :, :].astype(np.float64) - pixels[:, None, :]
    dist = np.linalg.norm(diff, axis=-1, keepdims=True)
    per = rank * dist ** (rank - 2) * diff  # SQ gradient of every (pixel, colour) pair
    expected = np.sum(w[:, :, None] * per, axis=0) / len(pixels)
    grad = jax.jit(jax.grad(soft.soft_loss), static_argnames="rank")(
        palette, pixels, temperature=t, rank=rank
    )
    np.testing.assert_allclose(grad, expected, rtol=2e-4, atol=1e-6)


def test_soft_loss_moves_dead_colours_where_sq_does_not():
    pixels, palette = _data(11, n=64, k=3)
    palette = np.concatenate([palette, np.full((1, 3), 3.0, np.float32)])  # nobody's nearest
    assert np.all(np.asarray(jax.jit(jax.grad(losses.squared_loss))(palette, pixels))[-1] == 0)
    soft_grad = jax.jit(jax.grad(soft.make_soft_loss(1.0)))(palette, pixels)
    assert np.all(np.asarray(soft_grad)[-1] > 0)


def test_make_soft_loss_is_cached_and_named():
    loss = soft.make_soft_loss(0.01, rank=3)
    assert loss is soft.make_soft_loss(0.01, rank=3.0)
    assert loss is not soft.make_soft_loss(0.02, rank=3.0)
    assert loss.__name__ == "soft_loss_t0.01_r3"
    assert inspect.getdoc(loss)
