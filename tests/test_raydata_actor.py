"""jaxquant.raydata.Compressor called directly, without Ray: the actor's logic is plain
Python (the Ray tests, marked slow, are in test_raydata.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from jaxquant import raydata

FIT = dict(num_steps=20, batch_size=64, cache_dir="")


def test_a_batch_of_paths_with_a_bad_file(tmp_path):
    rng = np.random.default_rng(0)
    good = tmp_path / "a.png"
    Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(good)
    bad = tmp_path / "b.png"
    bad.write_bytes(b"not an image")
    out = raydata.Compressor(4, runs=1, **FIT)({"path": np.array([str(good), str(bad)])})
    assert list(out["status"]) == ["ok", "failed"]
    with Image.open(io.BytesIO(out["data"][0])) as im:
        assert im.mode == "P"
        assert im.size == (10, 12)
    assert out["bytes_in"][0] == good.stat().st_size
    assert "b.png" in out["error"][1]
    assert out["data"][1] == b""
    assert np.isnan(out["mse"][1])


def test_bytes_and_arrays_give_what_the_path_gives(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "a.png"
    pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    actor = raydata.Compressor(4, **FIT)
    name = np.array([str(path)])
    from_path = actor({"path": name})["data"][0]
    from_bytes = actor({"path": name, "bytes": np.array([path.read_bytes()], dtype=object)})
    from_array = actor({"image": np.array([pixels]), "name": name})
    assert from_bytes["data"][0] == from_path
    assert from_array["data"][0] == from_path


def test_bad_arguments_fail_in_the_constructor():
    with pytest.raises(ValueError, match="without dithering"):
        raydata.Compressor(4, dither="fs", runs=1, **FIT)
    raydata.Compressor(4, dither="fs", dither_level=0, runs=1, **FIT)  # level 0: no dithering
    with pytest.raises(ValueError, match="num_steps"):
        raydata.Compressor(4, num_steps=-1, cache_dir="")
    with pytest.raises(ValueError, match="an 'image' or a 'path' column"):
        raydata.Compressor(4, **FIT)({"bytes": np.array([b""], dtype=object)})
