"""One palette for many images: the streaming fit over lists, folders and iterators."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import weakref

import jax
import numpy as np
import pytest
from PIL import Image

import jaxquant
from jaxquant import dataset
from jaxquant.solvers import FitResult, Status
from tests.conftest import FAST

SMALL = dict(sample_size=2048, **FAST)


def _images(n=4, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = 20 + 4 * i, 30 - 2 * i
        base = rng.integers(0, 256, (1, 1, 3))
        out.append(np.clip(base + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8))
    return out


def _save(folder, images):
    paths = []
    for i, image in enumerate(images):
        path = folder / f"im{i}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def test_folder_paths_arrays_and_callable_agree(tmp_path):
    images = _images()
    paths = _save(tmp_path, images)
    key = jax.random.key(0)
    fits = [
        jaxquant.fit_palette(key, tmp_path, 8, **SMALL),
        jaxquant.fit_palette(key, [str(p) for p in paths], 8, **SMALL),
        jaxquant.fit_palette(key, images, 8, **SMALL),
        jaxquant.fit_palette(key, lambda: iter(images), 8, **SMALL),
        jaxquant.fit_palette(key, images[::-1], 8, **SMALL),  # the order does not matter
    ]
    for fit in fits[1:]:
        np.testing.assert_array_equal(np.asarray(fit.palette), np.asarray(fits[0].palette))
        np.testing.assert_allclose(fit.pass_mse, fits[0].pass_mse, rtol=1e-9)
    first = fits[0]
    assert isinstance(first, dataset.DatasetFit)
    assert first.num_images == 4
    assert first.num_pixels == sum(i.shape[0] * i.shape[1] for i in images)
    assert first.sample_size == 2048
    assert first.pass_mse.shape == (dataset.NUM_PASSES,)
    assert first.pass_mse[1] <= first.pass_mse[0] * (1 + 1e-6)  # Lloyd never loses


def _fixed_fit(palette):
    def fit(key, problem, k, **options):
        return FitResult(
            jax.numpy.asarray(palette), jax.numpy.zeros((0,)), np.int32(0), np.int32(Status.OK)
        )

    return fit


def _lloyd_reference(pixels, palette):
    d = ((pixels[:, None, :].astype(np.int64) - palette[None].astype(np.int64)) ** 2).sum(-1)
    labels = d.argmin(1)
    mse = d[np.arange(len(pixels)), labels].mean() / pixels.shape[1]
    new = palette.astype(np.float64).copy()
    for j in range(len(palette)):
        if (labels == j).any():
            new[j] = pixels[labels == j].mean(0)
    return np.round(new).astype(np.uint8), mse


@pytest.mark.parametrize("chunk_size", [64, 1 << 12])
def test_a_pass_is_an_exact_lloyd_step_over_all_pixels(chunk_size):
    images = _images(3, seed=1)
    start = np.array([[0, 0, 0], [90, 90, 90], [160, 120, 80], [250, 250, 250]], np.uint8)
    fit = dataset.fit_images(
        jax.random.key(0),
        images,
        4,
        fit=_fixed_fit(start),
        options={},
        num_passes=1,
        chunk_size=chunk_size,
    )
    pixels = np.concatenate([i.reshape(-1, 3) for i in images])
    want, mse = _lloyd_reference(pixels, start)
    np.testing.assert_allclose(np.asarray(fit.palette), want, atol=1)  # float32 sums
    np.testing.assert_allclose(fit.pass_mse[0], mse, rtol=1e-5)


def test_weights_count_as_repeats():
    a, b = _images(2, seed=2)
    start = np.array([[20, 20, 20], [128, 128, 128], [230, 230, 230]], np.uint8)
    common = dict(fit=_fixed_fit(start), options={}, num_passes=1)
    weighted = dataset.fit_images(jax.random.key(0), [a, b], 3, weights=[2, 1], **common)
    repeated = dataset.fit_images(jax.random.key(0), [a, a, b], 3, **common)
    np.testing.assert_array_equal(np.asarray(weighted.palette), np.asarray(repeated.palette))
    np.testing.assert_allclose(weighted.pass_mse, repeated.pass_mse, rtol=1e-6)


def test_zero_weight_images_do_not_count():
    a, b = _images(2, seed=3)
    key = jax.random.key(1)
    alone = jaxquant.fit_palette(key, [a, a[::-1]], 8, weights=[1, 1], **SMALL)
    ignored = jaxquant.fit_palette(key, [a, b, a[::-1]], 8, weights=[1, 0, 1], **SMALL)
    np.testing.assert_array_equal(np.asarray(alone.palette), np.asarray(ignored.palette))


def test_never_holds_all_images():
    alive = []
    most = [0]

    def images():
        rng = np.random.default_rng(0)
        for _ in range(12):  # arrays are freed by reference counting: no gc needed
            most[0] = max(most[0], sum(r() is not None for r in alive))
            image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            alive.append(weakref.ref(image))
            yield image

    fit = jaxquant.fit_palette(jax.random.key(0), images, 8, sample_size=256, **FAST)
    assert fit.num_images == 12
    assert most[0] <= 1  # at most the previous image is still referenced


def test_iterator_is_read_once():
    images = _images(3)
    fit = jaxquant.fit_palette(jax.random.key(0), iter(images), 8, **SMALL)
    assert fit.pass_mse.shape == (0,)
    assert fit.num_images == 3
    with pytest.raises(ValueError, match="read only once"):
        jaxquant.fit_palette(jax.random.key(0), iter(images), 8, num_passes=1, **SMALL)


def test_formats_merge():
    rgb, grey = _images(2, seed=4)
    grey = grey[..., :1]
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 128, np.uint8)], -1)
    fit = jaxquant.fit_palette(jax.random.key(0), [grey, rgb, rgba], 8, **SMALL)
    assert np.asarray(fit.palette).shape == (8, 4)
    floats = jaxquant.fit_palette(
        jax.random.key(0), [rgb, rgb.astype(np.float32) / 255], 8, **SMALL
    )
    assert np.asarray(floats.palette).dtype == np.float32


def test_fixed_colours_survive_the_passes():
    fit = jaxquant.fit_palette(jax.random.key(0), _images(), 8, fixed="#ff00ff,#000", **SMALL)
    assert np.asarray(fit.palette)[:2].tolist() == [[255, 0, 255], [0, 0, 0]]


def test_small_lists_fit_in_memory_as_before():
    images = _images(2)
    fit = jaxquant.fit_palette(jax.random.key(0), images, 8, **FAST)
    assert not isinstance(fit, dataset.DatasetFit)
    assert dataset.is_image_set(images, sample_size=100)
    assert not dataset.is_image_set(images)


def test_errors_name_the_problem(tmp_path):
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="no image files in this folder"):
        jaxquant.fit_palette(key, tmp_path, 4)
    with pytest.raises(ValueError, match="no such file or folder"):
        jaxquant.fit_palette(key, tmp_path / "missing", 4)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(jaxquant.io.ImageReadError, match="bad.png"):
        jaxquant.fit_palette(key, tmp_path, 4)
    images = _images(2)
    with pytest.raises(ValueError, match="weights has 3 values for 2 images"):
        jaxquant.fit_palette(key, images, 4, weights=[1, 1, 1], **SMALL)
    with pytest.raises(ValueError, match=r"weights\[1\] \(image 1\) must be a finite number"):
        jaxquant.fit_palette(key, images, 4, weights=[1, -1], **SMALL)
    with pytest.raises(ValueError, match="every image has weight 0"):
        jaxquant.fit_palette(key, images, 4, weights=[0, 0], **SMALL)
    with pytest.raises(ValueError, match="image 1: "):
        jaxquant.fit_palette(key, [images[0], np.zeros((2, 2, 5))], 4, **SMALL)
    with pytest.raises(TypeError, match="options of a set of images"):
        jaxquant.fit_palette(key, images[0], 4, weights=[1])


_DEVICES = textwrap.dedent(
    """
    import jax, numpy as np, jaxquant
    from tests.test_dataset import _images
    images = _images(6, seed=5)
    assert len(jax.local_devices()) == 4
    out = []
    for d in (jax.local_devices()[:1], jax.local_devices()):
        f = jaxquant.fit_palette(jax.random.key(0), images, 16, sample_size=2048,
                                 num_steps=40, batch_size=256, devices=d)
        out.append((np.asarray(f.palette).astype(int), f.pass_mse))
    assert np.abs(out[0][0] - out[1][0]).max() <= 1, (out[0][0], out[1][0])
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-5)
    print("ok")
    """
)

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_four_devices_agree_with_one():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    out = subprocess.run(
        [sys.executable, "-c", _DEVICES], env=env, cwd=_ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")


_PROCESS = textwrap.dedent(
    """
    import json, sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    port, pid, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=pid)
    import numpy as np, jaxquant
    from jaxquant import dataset
    share = jaxquant.shard_files(dataset.folder_images(folder))
    f = jaxquant.fit_palette(jax.random.key(0), share, 16, sample_size=2048,
                             num_steps=40, batch_size=256)
    print(json.dumps({"palette": np.asarray(f.palette).tolist(), "mse": f.pass_mse.tolist(),
                      "images": f.num_images, "share": len(share)}))
    jax.distributed.shutdown()
    """
)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_agree_with_one(tmp_path):
    import json

    images = _images(5, seed=6)
    _save(tmp_path, images)
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS, port, str(pid), str(tmp_path)],
            cwd=_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pid in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    results = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
    one = jaxquant.fit_palette(jax.random.key(0), tmp_path, 16, sample_size=2048, **FAST)
    assert [r["share"] for r in results] == [3, 2]
    assert all(r["images"] == 5 for r in results)
    assert results[0]["palette"] == results[1]["palette"]  # every process, the same
    got = np.array(results[0]["palette"])
    assert np.abs(got - np.asarray(one.palette).astype(int)).max() <= 1
    np.testing.assert_allclose(results[0]["mse"], one.pass_mse, rtol=1e-5)
