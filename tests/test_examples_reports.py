"""The report examples run, reduced (16x16 image, k = 4, short fits), and write valid images."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest
from PIL import Image

from tests.conftest import FAST

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"
SIZE = (16, 16)


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_k_sweep_gif(tmp_path):
    path = _load("k_sweep_gif").main(tmp_path, ks=(2, 4), size=SIZE, **FAST)
    with Image.open(path) as im:
        assert im.format == "GIF"
        assert im.n_frames == 2
        assert im.width >= 2 * SIZE[0] + 64


@pytest.mark.slow
def test_error_vs_k(tmp_path):
    pytest.importorskip("matplotlib")
    paths = _load("error_vs_k").main(tmp_path, ks=(4,), size=SIZE, **FAST)
    assert [p.name for p in paths] == ["error_vs_k.png", "error_bars.png"]
    for path in paths:
        with Image.open(path) as im:
            assert im.format == "PNG"
            assert im.width > 300


@pytest.mark.slow
def test_global_vs_channel(tmp_path):
    paths = _load("global_vs_channel").main(tmp_path, k=4, size=SIZE, **FAST)
    assert [p.name for p in paths] == [
        "global.png",
        "global_hist.png",
        "channel.png",
        "channel_hist.png",
    ]
    with Image.open(paths[1]) as pooled, Image.open(paths[3]) as per_channel:
        assert per_channel.height > pooled.height  # three rows of histograms, not one


@pytest.mark.slow
def test_lab_vs_rgb(tmp_path):
    path = _load("lab_vs_rgb").main(tmp_path, k=4, size=SIZE, **FAST)
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.height >= 3 * (64 + 16)  # one row per space
