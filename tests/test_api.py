"""API conventions, after dm_pix: every public callable is enumerated and checked.

Also the architecture's rules: no import cycle and no cross-module underscore import in
``jaxquant/`` (parsed from the sources), the CLI's parser free of JAX, and the JAX-free
name tables agreeing with the modules that implement them.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import pkgutil
import subprocess
import sys

import pytest

import jaxquant
from jaxquant import _names

PACKAGE = pathlib.Path(jaxquant.__file__).parent
PUBLIC_MODULES = [
    "jaxquant",
    "jaxquant.animation",
    "jaxquant.colour",
    "jaxquant.dataset",
    "jaxquant.io",
    "jaxquant.kernels",
    "jaxquant.losses",
    "jaxquant.palettes",
    "jaxquant.problem",
    "jaxquant.raydata",
    "jaxquant.report",
    "jaxquant.seeding",
    "jaxquant.sklearn",
    "jaxquant.soft",
    "jaxquant.solvers",
]


def _public(module_name: str):
    module = importlib.import_module(module_name)
    for name in module.__all__:
        yield f"{module_name}.{name}", getattr(module, name)


PUBLIC = dict(item for m in PUBLIC_MODULES for item in _public(m))
FUNCTIONS = {
    name: obj
    for name, obj in PUBLIC.items()
    if inspect.isfunction(obj) or (callable(obj) and hasattr(obj, "__wrapped__"))
}


def _params(fn):
    return list(inspect.signature(fn).parameters.values())


def test_all_is_sorted_and_complete():
    # jaxquant.sklearn loads lazily like the others but stays out of __all__, so that
    # `from jaxquant import *` works without scikit-learn.
    names = sorted([*jaxquant._EXPORTS, *jaxquant._SUBMODULES])
    assert names == sorted([*jaxquant.__all__, "sklearn"])
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        assert list(module.__all__) == sorted(module.__all__), module_name
        for name in module.__all__:
            assert hasattr(module, name), f"{module_name}.{name}"


def test_every_module_is_importable_and_documented():
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="jaxquant."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        assert inspect.getdoc(module), f"{info.name} has no docstring"


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_objects_have_docstrings(name):
    obj = PUBLIC[name]
    if inspect.ismodule(obj) or callable(obj):
        assert inspect.getdoc(obj), f"{name} has no docstring"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_random_functions_take_the_key_first(name):
    params = _params(FUNCTIONS[name])
    names = [p.name for p in params]
    if "key" in names:
        assert names[0] == "key", f"{name}: key must be the first argument"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_options_are_keyword_only(name):
    """Data arguments are positional; options (with defaults) are keyword-only.

    Exempt: the Loss/Initializer protocols' ``weights`` (part of the protocol's call),
    factories (``make_*``), whose parameters are what they make, as in optax, and
    ``enable_compilation_cache(path=None)``, whose one argument is its data (as in
    ``jax.experimental.compilation_cache.set_cache_dir(path)``), ``quantize``'s ``k``
    (required: its ``None`` default only lets ``quantize(image, 64)`` say that the key
    comes first) and ``quantize_pil``'s ``colors`` (Pillow's ``im.quantize(colors)``).
    """
    fn = FUNCTIONS[name]
    if name.rsplit(".", 1)[1].startswith("make_"):
        return
    exempt = {"weights", "mass"} | (
        {"path"} if name.endswith("enable_compilation_cache") else set()
    )
    exempt |= {"jaxquant.quantize": {"k"}, "jaxquant.quantize_pil": {"colors"}}.get(name, set())
    positional = [
        p.name
        for p in _params(fn)
        if p.default is not p.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.name not in exempt
    ]
    assert positional == [], f"{name}: options {positional} must be keyword-only"


def test_entry_points_take_key_image_k():
    for fn in (jaxquant.quantize, jaxquant.kmeans, jaxquant.fit_palette, jaxquant.quantize_batch):
        names = [p.name for p in _params(fn) if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert names[0] == "key", fn.__name__
        assert names[2] == "k", fn.__name__


@pytest.mark.parametrize(
    "name",
    sorted(n for n in FUNCTIONS if n.split(".")[1] in ("colour", "report", "kernels")),
)
def test_module_functions_have_examples(name):
    assert "Examples:" in inspect.getdoc(FUNCTIONS[name])


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        out[".".join(rel.parts).removesuffix(".__init__")] = path
    return out


def test_no_import_cycles_and_no_private_imports_across_modules():
    """Parse every module: edges between modules, and underscore names taken across them."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    private = []
    for m, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bound = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jaxquant"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    target = full if full in mods else node.module
                    if full in mods:
                        bound[alias.asname or alias.name] = full
                    if target in mods and target != m:
                        edges[m].add(target)
                    named = alias.name.startswith("_") and not alias.name.startswith("__")
                    if named and full not in mods and m != "jaxquant" and target != m:
                        private.append(f"{m} imports {full}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in mods and alias.name != m:
                        edges[m].add(alias.name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                target = bound.get(node.value.id)
                attr = node.attr
                if target and attr.startswith("_") and not attr.startswith("__"):
                    private.append(f"{m} uses {target}.{attr}")
    assert private == []
    # The package's own __init__ may import anything (lazily); no other cycle.
    cycles = []

    def visit(node, stack):
        for nxt in edges[node]:
            if nxt == "jaxquant":
                continue
            if nxt in stack:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif len(stack) < len(mods):
                visit(nxt, stack + [nxt])

    for m in mods:
        if m != "jaxquant":
            visit(m, [m])
    assert cycles == []


def test_help_version_and_argument_errors_do_not_import_jax():
    code = (
        "import sys\n"
        "from jaxquant.cli import main\n"
        "for argv in (['--help'], ['compress', '--help'], ['--version'],\n"
        "             ['compress', '-k', 'x']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "import jaxquant\n"
        "print('jax' in sys.modules, 'optax' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip().splitlines()[-1] == "False False"


def test_name_tables_agree_with_their_implementations():
    from jaxquant import colour, io, kernels, seeding, solvers
    from jaxquant._modes import MODES

    assert tuple(solvers._OPTIMIZERS) == _names.OPTIMIZERS == jaxquant.OPTIMIZERS
    assert tuple(seeding.INITIALIZERS) == _names.INITIALIZERS
    assert colour.SPACES == _names.SPACES == tuple(colour.BOXES)
    assert kernels.LAYOUTS == _names.LAYOUTS
    assert MODES == _names.MODES
    assert io.FORMATS == _names.FORMATS


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = jaxquant.nope
    assert "quantize" in dir(jaxquant)
