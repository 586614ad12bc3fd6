"""quantize_batch: equal to quantize per image, ragged buckets, devices, file sharding."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxquant
from jaxquant import _batch
from jaxquant.problem import ColourSet
from tests.conftest import FAST, TOL

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _images(shape, n=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def _assert_same(batched: jaxquant.QuantizeResult, single: jaxquant.QuantizeResult):
    # The same computation under vmap: palettes and assignments identical, float
    # reductions (loss) within float32 noise.
    np.testing.assert_array_equal(batched.palette, single.palette)
    np.testing.assert_array_equal(batched.indices, single.indices)
    np.testing.assert_array_equal(batched.image, single.image)
    np.testing.assert_allclose(batched.loss, single.loss, **TOL["reorder"])
    np.testing.assert_allclose(batched.mse, single.mse, **TOL["reorder"])
    assert int(batched.status) == int(single.status)


def test_batch_equals_quantize_per_image():
    images = _images((12, 20, 3), n=3)
    key = jax.random.key(3)
    r = jaxquant.quantize_batch(key, images, 6, **FAST)
    assert r.image.shape == images.shape
    assert r.image.dtype == np.uint8
    assert r.palette.shape == (3, 6, 3)
    assert r.indices.shape == (3, 12, 20)
    assert r.losses.shape == (3, FAST["num_steps"])
    assert r.mse.shape == (3,)
    for i, k in enumerate(jax.random.split(key, 3)):
        single = jaxquant.quantize(k, images[i], 6, **FAST)
        _assert_same(jax.tree.map(lambda x, i=i: x[i], r), single)


@pytest.mark.slow
def test_batch_without_jit_equals_quantize():
    images = _images((6, 5, 3), n=2, seed=1)
    key = jax.random.key(0)
    opts = dict(num_steps=3, batch_size=16)
    with jax.disable_jit():
        r = jaxquant.quantize_batch(key, images, 3, **opts)
    for i, k in enumerate(jax.random.split(key, 2)):
        single = jaxquant.quantize(k, images[i], 3, **opts)
        # Eager and compiled float32 arithmetic may round differently: the palettes may
        # differ by one level, the error by little.
        np.testing.assert_allclose(
            np.asarray(r.palette[i], np.int32), np.asarray(single.palette, np.int32), atol=1
        )
        np.testing.assert_allclose(r.mse[i], single.mse, rtol=0.05)


def test_ragged_list_equals_quantize_per_image(photo):
    rng = np.random.default_rng(2)
    small = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    images = [photo[:40, :50], small, photo[:41, :49]]
    key = jax.random.key(1)
    results = jaxquant.quantize_batch(key, images, 6, **FAST)
    assert isinstance(results, list)
    assert len(results) == 3
    for image, result, k in zip(images, results, jax.random.split(key, 3), strict=True):
        assert result.image.shape == image.shape
        _assert_same(result, jaxquant.quantize(k, image, 6, **FAST))


def test_grayscale_and_float_stacks():
    gray = _images((10, 12), n=2)
    r = jaxquant.quantize_batch(jax.random.key(0), gray, 4, **FAST)
    assert r.image.shape == gray.shape
    assert r.palette.shape == (2, 4, 1)
    floats = gray.astype(np.float32) / 255
    r = jaxquant.quantize_batch(jax.random.key(0), floats, 4, **FAST)
    assert r.image.dtype == np.float32
    assert r.image.shape == gray.shape


@pytest.mark.parametrize(("n", "bigger", "uniform"), [(300, 4096, False), (5000, 16384, True)])
def test_padding_changes_nothing(n, bigger, uniform):
    # The same colours padded with zero weights to a larger bucket: same fit (below and
    # above the 4096-colour seeding subsample; weighted and uniform sampling). 300 rows
    # unpadded against the smallest bucket; 5000 rows in their bucket (6144, with k = 8
    # the 96 x 64 photo's program) against a larger one.
    pixels = np.random.default_rng(n).integers(0, 256, (n, 3), dtype=np.uint8)
    opts = FAST
    key = jax.random.key(0)
    small = ColourSet.from_vectors(pixels, bucket=n > 4096)
    if not uniform:  # weighted rows, as after deduplication
        small = ColourSet(small.colours, small.weights * 2, small.num_valid, uniform=False)
    big = ColourSet(
        np.concatenate([small.colours, np.zeros((bigger - small.num_rows, 3), np.uint8)]),
        np.concatenate([small.weights, np.zeros(bigger - small.num_rows, np.float32)]),
        small.num_valid,
        uniform=uniform,
    )
    a = jaxquant.fit_palette(key, small, 8, **opts)
    b = jaxquant.fit_palette(key, big, 8, **opts)
    np.testing.assert_array_equal(a.palette, b.palette)
    np.testing.assert_allclose(a.losses, b.losses, **TOL["reorder"])
    ra, rb = jaxquant.remap(small, a.palette), jaxquant.remap(big, b.palette)
    np.testing.assert_array_equal(ra.indices[:n], rb.indices[:n])
    np.testing.assert_allclose(ra.mse, rb.mse, **TOL["reorder"])


def test_mixed_sizes_compile_one_program_per_bucket_and_group_size():
    rng = np.random.default_rng(5)
    # Two buckets (6144 and 8192 pixels), two images each.
    sizes = [(64, 90), (70, 80), (80, 100), (90, 90)]
    first = [rng.integers(0, 256, (*s, 3), dtype=np.uint8) for s in sizes]
    opts = dict(num_steps=10, batch_size=64)
    before = _batch._fit_many._cache_size()
    jaxquant.quantize_batch(jax.random.key(0), first, 5, **opts)
    after_first = _batch._fit_many._cache_size()
    assert after_first - before <= 2
    # New images, new sizes, same buckets and group sizes: nothing compiles.
    second = [rng.integers(0, 256, (s[0] - 1, s[1], 3), dtype=np.uint8) for s in sizes]
    jaxquant.quantize_batch(jax.random.key(1), second, 5, **opts)
    assert _batch._fit_many._cache_size() == after_first


def test_group_sizes():
    assert [_batch.group_size(n, 1) for n in (1, 2, 3, 5, 8, 9)] == [1, 2, 4, 8, 8, 16]
    assert [_batch.group_size(n, 4) for n in (1, 2, 3, 5, 8)] == [4, 4, 4, 8, 8]
    assert [_batch.group_size(n, 3) for n in (1, 4)] == [3, 6]


def test_max_batch_splits_groups():
    images = _images((12, 20, 3), n=3)
    a = jaxquant.quantize_batch(jax.random.key(0), images, 6, max_batch=2, **FAST)
    b = jaxquant.quantize_batch(jax.random.key(0), images, 6, **FAST)
    np.testing.assert_array_equal(a.palette, b.palette)


def test_diverged_images_report_status_without_raising():
    broken = optax.scale(float("nan"))
    r = jaxquant.quantize_batch(jax.random.key(0), _images((8, 8, 3), n=2), 4, optimizer=broken)
    assert np.all(np.asarray(r.status) == jaxquant.Status.DIVERGED)


def test_bad_inputs_name_the_image():
    good = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="image 1: .*NaN"):
        jaxquant.quantize_batch(jax.random.key(0), [good, np.full((4, 4, 3), np.nan)], 2)
    with pytest.raises(ValueError, match="empty"):
        jaxquant.quantize_batch(jax.random.key(0), [], 2)
    with pytest.raises(ValueError, match="stacked"):
        jaxquant.quantize_batch(jax.random.key(0), np.zeros((4, 4), np.uint8), 2)
    with pytest.raises(ValueError, match="max_batch"):
        jaxquant.quantize_batch(jax.random.key(0), [good], 2, max_batch=0)


@given(
    files=st.lists(st.text(min_size=1, max_size=6), unique=True, max_size=30),
    count=st.integers(1, 5),
)
def test_shard_files_is_a_partition(files, count):
    shares = [shard_files_sorted(files, i, count) for i in range(count)]
    flat = [f for share in shares for f in share]
    assert sorted(flat) == sorted(files)  # every file once, none twice
    assert max(map(len, shares)) - min(map(len, shares)) <= 1  # balanced


def shard_files_sorted(files, index, count):
    # Each process may list the files in its own order: shuffle per process.
    order = np.random.default_rng(index).permutation(len(files))
    return jaxquant.shard_files([files[i] for i in order], process_index=index, process_count=count)


def test_shard_files_defaults_and_errors():
    assert jaxquant.shard_files(["b", "a"]) == ["a", "b"]  # one process: everything
    with pytest.raises(ValueError, match="process_index"):
        jaxquant.shard_files(["a"], process_index=2, process_count=2)


_FOUR_DEVICES = textwrap.dedent(
    """
    import jax, numpy as np, jaxquant
    RTOL = {rtol!r}
    from jax.sharding import NamedSharding, PartitionSpec
    from jaxquant import _batch, _quantize
    assert jax.local_device_count() == 4, jax.local_devices()
    images = np.random.default_rng(0).integers(0, 256, (6, 12, 16, 3), dtype=np.uint8)
    key = jax.random.key(0)
    opts = dict(num_steps=20, batch_size=64)
    four = jaxquant.quantize_batch(key, images, 5, **opts)
    one = jaxquant.quantize_batch(key, images, 5, devices=jax.local_devices()[:1], **opts)
    for a, b in zip(four, one):
        np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=RTOL)
    np.testing.assert_array_equal(four.palette, one.palette)
    fit = jaxquant.FitOptions.make(5, **opts)
    preps = [_quantize.prepare(im, 5, fit) for im in images[:4]]
    problems = jax.tree.map(lambda *xs: np.stack(xs), *[p.problem for p in preps])
    sharding = NamedSharding(_batch._mesh(None), PartitionSpec("images"))
    data = jax.random.key_data(jax.random.split(key, 4))
    problems, data = jax.device_put((problems, data), sharding)
    out = _batch._fit_many(
        data, problems, fit.solver, impl="threefry2x32", k=5, init=fit.init, seed_sample_size=4096
    )
    shards = out.palette.addressable_shards
    assert len(out.palette.sharding.device_set) == 4
    assert sorted(s.data.shape[0] for s in shards) == [1, 1, 1, 1], shards
    print("ok")
    """
)


@pytest.mark.slow
def test_four_cpu_devices_same_results_and_split_work():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-c", _FOUR_DEVICES.format(rtol=TOL["reorder"]["rtol"])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
