"""Test configuration: strict JAX promotion, hypothesis profiles, shared fixtures."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

# One persistent compilation cache for the test runs: the pytest-xdist workers share the
# programs they compile (a program compiled by one is loaded by the other), and the slow
# run reuses the fast run's. Compiling is most of the suite's time. Keyed by JAX on the
# whole program, its flags and the versions, so it is never stale; set the variable to
# "" to compile everything afresh.
_XLA_CACHE = os.environ.setdefault(
    "JAXQUANT_TEST_XLA_CACHE", os.path.join(os.path.dirname(__file__), "..", ".jax-test-cache")
)
# The command line's default cache (also in the subprocesses tests start) is the same
# directory, so no test writes to the user's ~/.cache and started commands start warm.
os.environ["JAXQUANT_CACHE_DIR"] = os.path.abspath(_XLA_CACHE) if _XLA_CACHE else ""
if _XLA_CACHE:
    jax.config.update("jax_compilation_cache_dir", os.path.abspath(_XLA_CACHE))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under ``--dist loadgroup`` (CI's one run of the fast and slow tests), a fast test
    without an ``xdist_group`` of its own goes with its file, as ``--dist loadfile``
    deals them: the tests of a file share compiled programs. Slow tests are dealt one by
    one, so that a file of long ones does not hold one worker while the other idles.
    First, before xdist reads the groups."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group(item.path.stem))


@pytest.fixture(autouse=True)
def _program_store_off():
    """Every test starts and ends with jaxquant's program store off (a test or a CLI call
    that turns it on must not change the programs of the tests after it)."""
    from jaxquant import _cache

    _cache.enable_compilation_cache("")
    yield
    _cache.enable_compilation_cache("")


# deadline=None: the first example of a shape compiles, which takes seconds.
settings.register_profile(
    "default",
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=30)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# One table of tolerances, by what is compared; a looser one at a call site says why.
TOL = {
    # float32 and float64 values through the same computation (sums over ~1e5 pixels lose
    # ~1e-6 relative per term in float32).
    np.float32: dict(rtol=1e-5, atol=1e-6),
    np.float64: dict(rtol=1e-10, atol=1e-12),
    # float32 reductions summed in another order: vmap vs a loop, chunks, padding rows.
    "reorder": dict(rtol=1e-5),
    # the same float32 arithmetic in another program (a jitted call against the eager one,
    # a result computed twice by different public paths).
    "program": dict(rtol=1e-6),
    # float32 squared distances against a float64 NumPy reference.
    "distance": dict(rtol=1e-5, atol=1e-7),
}

# One small fit configuration shared by most tests, so they share compiled programs.
FAST = dict(num_steps=40, batch_size=256)

CQ100 = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cq100", "img")


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """The packaged sample photograph, downscaled to 96x64 (6144 pixels)."""
    from importlib import resources

    from PIL import Image

    with Image.open(resources.files("jaxquant") / "data" / "sample.png") as im:
        return np.asarray(im.convert("RGB").resize((96, 64), Image.Resampling.BILINEAR))


def blobs(rng: np.random.Generator, centres: np.ndarray, n: int, spread: float) -> np.ndarray:
    """``n`` uint8 pixels around each centre (rows of ``centres``), clipped to 0..255."""
    pts = centres[:, None, :] + rng.normal(0, spread, (len(centres), n, centres.shape[1]))
    return np.clip(np.round(pts), 0, 255).astype(np.uint8).reshape(-1, centres.shape[1])
