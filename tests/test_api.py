"""API conventions, after dm_pix: docstrings, key first, keyword-only options."""

from __future__ import annotations

import inspect

import pytest

import jaxquant

PUBLIC = [getattr(jaxquant, name) for name in jaxquant.__all__]
CALLABLES = [obj for obj in PUBLIC if callable(obj) and not inspect.isclass(obj)]
RANDOM = [
    jaxquant.quantize,
    jaxquant.kmeans,
    jaxquant.sq_fit,
    jaxquant.seeding.kmeans_plusplus,
    jaxquant.seeding.random_init,
]


def test_all_is_sorted_and_complete():
    assert list(jaxquant.__all__) == sorted(jaxquant.__all__)
    for name in jaxquant.__all__:
        assert hasattr(jaxquant, name)


@pytest.mark.parametrize(
    "obj",
    PUBLIC
    + [getattr(jaxquant.losses, n) for n in jaxquant.losses.__all__]
    + [getattr(jaxquant.seeding, n) for n in jaxquant.seeding.__all__],
    ids=lambda o: getattr(o, "__name__", repr(o)[:20]),
)
def test_public_objects_have_docstrings(obj):
    if inspect.ismodule(obj) or callable(obj):
        assert inspect.getdoc(obj), f"{obj} has no docstring"


@pytest.mark.parametrize("fn", RANDOM, ids=lambda f: f.__name__)
def test_key_is_first(fn):
    assert next(iter(inspect.signature(fn).parameters)) == "key"


@pytest.mark.parametrize("fn", [jaxquant.quantize, jaxquant.kmeans], ids=lambda f: f.__name__)
def test_options_are_keyword_only(fn):
    params = list(inspect.signature(fn).parameters.values())
    positional = [p.name for p in params if p.kind is not p.KEYWORD_ONLY]
    assert positional == ["key", "image", "k"]


@pytest.mark.parametrize(
    ("module", "name"),
    [(m, n) for m in (jaxquant.colour, jaxquant.report) for n in m.__all__],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_module_functions_have_examples_and_keyword_only_options(module, name):
    obj = getattr(module, name)
    if not callable(obj):
        return
    doc = inspect.getdoc(obj)
    assert doc
    assert "Examples:" in doc
    params = inspect.signature(obj).parameters.values()
    options = [p.name for p in params if p.default is not p.empty and p.kind != p.KEYWORD_ONLY]
    assert options == [], f"{name}: options {options} must be keyword-only"
