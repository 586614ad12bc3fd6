"""The examples run (reduced where they take options)."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_custom_optimizer_example(capsys):
    _load("custom_optimizer").main(k=8)
    out = capsys.readouterr().out
    assert out.count("mse") == 3
