"""Fuzzing the contract: malformed files and arbitrary arrays never crash.

- ``load_image`` on random bytes and on mutated or truncated valid files (PNG, JPEG, GIF,
  BMP, TIFF, WebP): a ``(H, W, C)`` uint8 array with ``C`` in 1, 3, 4, or
  ``ImageReadError`` naming the file.
- The CLI (``main([...])``) on such files: exit 0 and a valid indexed PNG, or exit 2
  (one file) / 1 (batch) with one ``jaxquant: error: <path>: ...`` line per bad file and
  never a traceback.
- ``quantize`` on arrays of any dtype (bool, ints, float16/32/64, complex) and shape
  (0-size, 1-D to 5-D, 0 to 6 channels, NaN/inf/out-of-range values): a result
  satisfying the invariants, or ``TypeError``/``ValueError`` with a message.

Run ``pytest tests/test_fuzz.py --hypothesis-show-statistics`` to see how many inputs
were tried; docs/errors.md records a run.
"""

from __future__ import annotations

import contextlib
import io as _io
import os
import tempfile

import jax
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import jaxquant
from jaxquant import io
from jaxquant.cli import main

OPTS = ["-k", "4", "--steps", "20", "--batch-size", "64", "--cache-dir", ""]
# Decoded images stay tiny (one colour-count bucket, few compilations).
MAX_PIXELS = 256


def _templates() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    out = {}
    for fmt, mode in (
        ("PNG", "RGB"), ("PNG", "P"), ("PNG", "RGBA"), ("PNG", "L"), ("JPEG", "RGB"),
        ("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"), ("WEBP", "RGB"),
    ):  # fmt: skip
        im = Image.fromarray(rgb)
        im = im.quantize(16) if mode == "P" else im.convert(mode)
        buf = _io.BytesIO()
        im.save(buf, format=fmt)
        out[f"{fmt}-{mode}"] = buf.getvalue()
    return out


TEMPLATES = _templates()


@st.composite
def malformed_files(draw) -> bytes:
    kind = draw(st.sampled_from(["random", "truncate", "mutate", "splice"]))
    if kind == "random":
        return draw(st.binary(max_size=600))
    data = bytearray(TEMPLATES[draw(st.sampled_from(sorted(TEMPLATES)))])
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data)))])
    if kind == "mutate":
        for _ in range(draw(st.integers(1, 8))):
            # Headers matter most: bias positions to the first 64 bytes half the time.
            hi = 64 if draw(st.booleans()) else len(data)
            pos = draw(st.integers(0, min(hi, len(data)) - 1))
            data[pos] = draw(st.integers(0, 255))
        return bytes(data)
    pos = draw(st.integers(0, len(data)))
    return bytes(data[:pos]) + draw(st.binary(min_size=1, max_size=64)) + bytes(data[pos:])


def _check_loaded(path) -> None:
    try:
        arr = jaxquant.load_image(path, max_pixels=MAX_PIXELS)
    except io.ImageReadError as e:
        message = str(e)
    else:
        message = None
    if message is not None:
        assert message.startswith(f"{path}: ")
        assert "\n" not in message
        return
    assert arr.dtype == np.uint8
    assert arr.ndim == 3
    assert arr.shape[2] in (1, 3, 4)
    assert 0 < arr.shape[0] * arr.shape[1] <= MAX_PIXELS


@settings(max_examples=400, suppress_health_check=list(HealthCheck))
@given(data=malformed_files(), suffix=st.sampled_from([".png", ".jpg", ".gif", ".bin"]))
def test_fuzz_load_image(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f" + suffix)
        with open(path, "wb") as f:
            f.write(data)
        _check_loaded(path)


def _run_cli(argv):
    out, err = _io.StringIO(), _io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@settings(max_examples=40, suppress_health_check=list(HealthCheck))
@given(data=malformed_files())
def test_fuzz_cli_single_file(data):
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.png"), os.path.join(tmp, "out.png")
        with open(src, "wb") as f:
            f.write(data)
        args = ["compress", src, "-o", dst, "--max-pixels", str(MAX_PIXELS), *OPTS]
        code, _, err = _run_cli(args)
        assert "Traceback" not in err
        if code == 0:
            with Image.open(dst) as im:
                im.load()
                assert im.mode == "P"
        else:
            assert code == 2
            assert err.startswith(f"jaxquant: error: {src}: ")
            assert err.count("\n") == 1
            assert not os.path.exists(dst)
        assert [n for n in os.listdir(tmp) if n.endswith(".tmp")] == []


@settings(max_examples=10, suppress_health_check=list(HealthCheck))
@given(files=st.lists(malformed_files(), min_size=1, max_size=4))
def test_fuzz_cli_batch(files):
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in"), os.path.join(tmp, "out")
        os.mkdir(src)
        for i, data in enumerate(files):
            with open(os.path.join(src, f"{i}.png"), "wb") as f:
                f.write(data)
        args = ["compress", src, "--out-dir", dst, "--max-pixels", str(MAX_PIXELS), *OPTS]
        code, out, err = _run_cli([*args, "--no-progress", "--batch-images", "1"])
        assert "Traceback" not in err
        errors = [ln for ln in err.splitlines() if ln.startswith("jaxquant: error: ")]
        assert len(errors) == len(err.splitlines())
        written = sorted(os.listdir(dst))
        assert len(written) + len(errors) == len(files)
        assert code == (1 if errors else 0)
        assert f"{len(written)} done, {len(errors)} failed" in out
        for name in written:
            with Image.open(os.path.join(dst, name)) as im:
                im.load()


DTYPES = [
    np.bool_, np.uint8, np.int8, np.int16, np.uint16, np.int32, np.int64,
    np.float16, np.float32, np.float64, np.complex64,
]  # fmt: skip


@st.composite
def arrays(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    ndim = draw(st.integers(0, 5))
    shape = tuple(draw(st.integers(0, 3)) for _ in range(ndim))
    if ndim == 3 and draw(st.booleans()):  # more channel counts, incl. invalid
        shape = shape[:2] + (draw(st.integers(0, 6)),)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype.kind == "f":
        a = rng.random(shape)
        special = draw(st.sampled_from([None, None, np.nan, np.inf, -np.inf, 1.5, -0.5, 255.0]))
        if special is not None and a.size:
            a.flat[draw(st.integers(0, a.size - 1))] = special
        return a.astype(dtype)
    if dtype.kind == "c":
        return (rng.random(shape) + 1j * rng.random(shape)).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), shape, endpoint=True).astype(
        dtype
    )


@settings(max_examples=60, suppress_health_check=list(HealthCheck))
@given(image=arrays())
def test_fuzz_quantize_arrays(image):
    k = 4
    try:
        r = jaxquant.quantize(jax.random.key(0), image, k, num_steps=20, batch_size=64)
    except (TypeError, ValueError) as e:
        r, message = None, str(e)
    if r is None:
        assert message  # a message a user can act on, never an empty one
        return
    assert image.dtype == np.uint8 or image.dtype.kind == "f"
    assert r.image.shape == image.shape
    # float64 comes back as float32 unless jax_enable_x64 (JAX's canonical dtype).
    assert r.image.dtype == jax.dtypes.canonicalize_dtype(image.dtype)
    assert int(r.status) == jaxquant.Status.OK
    indices = np.asarray(r.indices)
    assert indices.shape == image.shape[:2]
    assert indices.min() >= 0
    assert indices.max() < k
    palette = np.asarray(r.palette)
    assert palette.shape[0] == k
    assert np.all(np.isfinite(palette.astype(np.float64)))
    expected = palette[indices]
    np.testing.assert_array_equal(np.asarray(r.image), expected.reshape(image.shape))
    assert np.isfinite(float(r.mse))
    assert float(r.mse) >= 0
    if len({tuple(p) for p in image.reshape(-1, indices.size).T}) <= k:
        assert float(r.mse) == 0.0
