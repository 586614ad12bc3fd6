"""The store of compiled programs (``jaxquant.enable_compilation_cache``) and warm starts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import optax
import pytest

import jaxquant
from jaxquant import _cache, _checks, _fit, _ops, _remap

# A fit configuration no other test uses: a program another test compiled through
# jax.jit may have come from the test suite's JAX cache, and JAX hands the same
# executable to a later lower().compile() in the process, where it does not serialize.
FAST = dict(num_steps=37, batch_size=256)
IMAGE = np.random.default_rng(3).integers(0, 256, (20, 24, 3), dtype=np.uint8)


@pytest.fixture
def store(tmp_path):
    """The store on in a fresh directory for one test, then off again."""
    where = jaxquant.enable_compilation_cache(tmp_path / "cache")
    yield os.path.join(where, "programs")
    jaxquant.enable_compilation_cache("")


def _programs(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".jaxprog"))


def _fresh(program: _cache.StoredProgram) -> _cache.StoredProgram:
    """The same function in a new wrapper: what a new process sees (nothing in memory)."""
    return _cache.StoredProgram(program.jitted.__wrapped__, static_argnames=program.static_argnames)


def _fit_args(k=8, **options):
    opts = _fit.FitOptions.make(k, **options)
    problem = _fit.as_colour_set(IMAGE, k, opts)
    static = dict(k=k, init=opts.init, seed_sample_size=opts.seed_sample_size, fixed=opts.fixed)
    return (jax.random.key(0), problem, opts.solver), static


def test_enable_returns_the_directory_and_turns_off(tmp_path):
    where = jaxquant.enable_compilation_cache(tmp_path / "c")
    try:
        assert where == os.fspath(tmp_path / "c")
        assert _cache.program_dir() == os.path.join(where, "programs")
        assert jax.config.values["jax_compilation_cache_dir"] == where
    finally:
        assert jaxquant.enable_compilation_cache("") is None
    assert _cache.program_dir() is None


def test_unwritable_cache_is_off_not_an_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert jaxquant.enable_compilation_cache(blocker / "cache") is None
    assert _cache.program_dir() is None


def test_default_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("JAXQUANT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _cache.default_cache_dir() == os.path.join(tmp_path, "jaxquant", "xla")
    monkeypatch.setenv("JAXQUANT_CACHE_DIR", str(tmp_path / "mine"))
    assert _cache.default_cache_dir() == str(tmp_path / "mine")


def test_stored_program_is_loaded_and_gives_the_same_result(store):
    args, static = _fit_args(**FAST)
    first = _fresh(_fit._fit_jit)
    out = first(*args, **static)
    assert len(_programs(store)) == 1
    expected = _fit._fit_jit.jitted(*args, **static)
    # A new wrapper (as in a new process) loads the program instead of tracing it.
    second = _fresh(_fit._fit_jit)
    again = second(*args, **static)
    assert (second.compiled, len(second._loaded)) == (0, 1)
    for a, b, c in zip(*map(jax.tree.leaves, (expected, out, again)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_array_equal(np.asarray(a), np.asarray(c))


def test_keys_differ_by_static_arguments_and_shapes(store):
    program = _fresh(_fit._fit_jit)
    args, static = _fit_args(k=8, **FAST)
    key_8 = program._key(args, static)
    args_4, static_4 = _fit_args(k=4, **FAST)
    assert program._key(args_4, static_4) != key_8
    big = np.tile(IMAGE, (10, 1, 1))  # past the 4096-row bucket of IMAGE
    bigger = (args[0], _fit.as_colour_set(big, 8, _fit.FitOptions.make(8)))
    assert program._key(bigger + args[2:], static) != key_8
    assert program._key(args, static) == key_8  # and the same call, the same key


def test_keys_follow_the_jax_configuration(store):
    program = _fresh(_fit._fit_jit)
    args, static = _fit_args(**FAST)
    before = program._key(args, static)
    with jax.numpy_rank_promotion("warn"):  # conftest sets "raise"
        during = program._key(args, static)
    assert during != before
    assert program._key(args, static) == before


def test_untrusted_calls_go_to_jit_and_store_nothing(store):
    program = _fresh(_fit._fit_jit)

    def my_init(key, x, k, weights=None):  # defined here: its source is not in the key
        return x[:k]

    args, static = _fit_args(**FAST)
    assert program._key(args, static) is not None
    assert program._key(args, {**static, "init": my_init}) is None
    custom = _fit.FitOptions.make(8, optimizer=optax.adam(0.01), **FAST).solver
    assert program._key((args[0], args[1], custom), static) is None
    assert program._key(args, {**static, "not_static": 1}) is None
    out = jaxquant.fit_palette(jax.random.key(0), IMAGE, 8, optimizer=optax.adam(0.01), **FAST)
    assert out.palette.shape == (8, 3)
    assert _programs(store) == []


def test_traced_calls_use_jit(store):
    fit = jax.jit(lambda key: jaxquant.fit_palette(key, IMAGE, 8, **FAST).palette)
    eager = jaxquant.fit_palette(jax.random.key(1), IMAGE, 8, **FAST).palette
    np.testing.assert_array_equal(np.asarray(fit(jax.random.key(1))), np.asarray(eager))


def test_a_corrupt_program_is_replaced(store):
    args, static = _fit_args(**FAST)
    _fresh(_fit._fit_jit)(*args, **static)
    expected = _fit._fit_jit.jitted(*args, **static).palette
    (name,) = _programs(store)
    with open(os.path.join(store, name), "wb") as f:
        f.write(b"not a program")
    program = _fresh(_fit._fit_jit)
    np.testing.assert_array_equal(np.asarray(program(*args, **static).palette), expected)
    (again,) = _programs(store)
    assert os.path.getsize(os.path.join(store, again)) > 1000


def test_the_store_keeps_the_most_recent_programs(store, monkeypatch):
    monkeypatch.setattr(_cache, "MAX_PROGRAMS", 1)
    program = _fresh(_remap._assign_jit)
    problem = _fit.as_colour_set(IMAGE, 8, _fit.FitOptions.make(8))
    for k in (2, 3):
        program(problem, np.asarray(IMAGE.reshape(-1, 3)[:k]))
    assert len(_programs(store)) == 1


def test_seed_key_equals_jax_random_key():
    for seed in (0, 1, 7, 12345, 2**31 - 1, 2**31, 2**40, -3):
        np.testing.assert_array_equal(
            np.asarray(jax.random.key_data(_checks.seed_key(seed))),
            np.asarray(jax.random.key_data(jax.random.key(seed))),
        )


def test_to_device_copies_without_changing_values():
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    y = _ops.to_device(x)
    assert isinstance(y, jax.Array)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(y), x)
    assert _ops.to_device(y) is y
    assert _ops.to_device(np.float64(2.5), np.float32).dtype == np.float32


@pytest.mark.slow
def test_a_fresh_process_with_the_cache_compiles_nothing_for_a_seen_shape(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        import jax, numpy as np
        import jaxquant
        jaxquant.enable_compilation_cache(sys.argv[1])
        from jaxquant import _fit, _remap
        image = np.random.default_rng(3).integers(0, 256, (40, 48, 3), dtype=np.uint8)
        r = jaxquant.quantize(jax.random.key(0), image, 8, num_steps=40, batch_size=256)
        programs = (_fit._fit_jit, _remap._assign_jit)
        print(
            sum(p.compiled for p in programs),
            sum(len(p._loaded) for p in programs),
            sum(p.jitted._cache_size() for p in programs),  # traced through jit
        )
        print(np.asarray(r.palette).tolist())
        """
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    runs = [
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / "cache")],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=True,
        ).stdout.splitlines()
        for _ in range(2)
    ]
    assert runs[0][0] == "2 2 0"  # compiled both (through lower) and stored them
    assert runs[1][0] == "0 2 0"  # loaded both: nothing traced or compiled
    assert runs[0][1] == runs[1][1]
