"""jaxquant: colour quantization and image compression by Stochastic Quantization in JAX.

The pieces (``docs/architecture.md``): a :class:`ColourSet` is the problem, a solver
(:class:`SQ`, :class:`Lloyd`) fits a palette to it, :func:`fit_palette` seeds, solves and
finishes, :func:`remap` assigns every pixel, and :mod:`jaxquant.io` writes the result.
:func:`quantize` composes them with host-side speed-ups; :func:`quantize_batch` runs
many images at once.

Names are imported lazily (on first use), so ``import jaxquant`` and the command line's
``--help`` do not load JAX.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# name -> module that defines it
_EXPORTS = {
    "ColourSet": "jaxquant.problem",
    "FitOptions": "jaxquant._fit",
    "FitResult": "jaxquant.solvers",
    "Lloyd": "jaxquant.solvers",
    "LloydState": "jaxquant.solvers",
    "OPTIMIZERS": "jaxquant.solvers",
    "QuantizeResult": "jaxquant._remap",
    "SQ": "jaxquant.solvers",
    "SQState": "jaxquant.solvers",
    "Solver": "jaxquant.solvers",
    "Status": "jaxquant.solvers",
    "assign": "jaxquant.kernels",
    "enable_compilation_cache": "jaxquant._cache",
    "fit_palette": "jaxquant._fit",
    "kmeans": "jaxquant._quantize",
    "lloyd_step": "jaxquant.solvers",
    "load_image": "jaxquant.io",
    "make_optimizer": "jaxquant.solvers",
    "paper_options": "jaxquant._quantize",
    "quantize": "jaxquant._quantize",
    "quantize_batch": "jaxquant._batch",
    "quantize_pil": "jaxquant._quantize",
    "quantize_to_quality": "jaxquant.quality",
    "quantize_ste": "jaxquant.soft",
    "remap": "jaxquant._remap",
    "save": "jaxquant.io",
    "save_png": "jaxquant.io",
    "set_cpu_threads": "jaxquant._threads",
    "shard_files": "jaxquant._batch",
    "soft_quantize": "jaxquant.soft",
}
_SUBMODULES = (
    "animation",
    "colour",
    "dataset",
    "dither",
    "io",
    "kernels",
    "losses",
    "palettes",
    "problem",
    "quality",
    "raydata",
    "report",
    "seeding",
    "sklearn",  # not in __all__: it needs scikit-learn (pip install "jaxquant[sklearn]")
    "soft",
    "solvers",
)

__all__ = [
    "ColourSet",
    "FitOptions",
    "FitResult",
    "Lloyd",
    "LloydState",
    "OPTIMIZERS",
    "QuantizeResult",
    "SQ",
    "SQState",
    "Solver",
    "Status",
    "animation",
    "assign",
    "colour",
    "dataset",
    "dither",
    "enable_compilation_cache",
    "fit_palette",
    "io",
    "kernels",
    "kmeans",
    "lloyd_step",
    "load_image",
    "losses",
    "make_optimizer",
    "palettes",
    "paper_options",
    "problem",
    "quality",
    "quantize",
    "quantize_batch",
    "quantize_pil",
    "quantize_ste",
    "quantize_to_quality",
    "raydata",
    "remap",
    "report",
    "save",
    "save_png",
    "seeding",
    "set_cpu_threads",
    "shard_files",
    "soft",
    "soft_quantize",
    "solvers",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"jaxquant.{name}")
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'jaxquant' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from jaxquant import (
        colour,
        dither,
        io,
        kernels,
        losses,
        problem,
        quality,
        report,
        seeding,
        soft,
        solvers,
    )
    from jaxquant._batch import quantize_batch, shard_files
    from jaxquant._cache import enable_compilation_cache
    from jaxquant._fit import FitOptions, fit_palette
    from jaxquant._quantize import kmeans, paper_options, quantize, quantize_pil
    from jaxquant._remap import QuantizeResult, remap
    from jaxquant._threads import set_cpu_threads
    from jaxquant.io import load_image, save, save_png
    from jaxquant.kernels import assign
    from jaxquant.problem import ColourSet
    from jaxquant.quality import quantize_to_quality
    from jaxquant.soft import quantize_ste, soft_quantize
    from jaxquant.solvers import (
        OPTIMIZERS,
        SQ,
        FitResult,
        Lloyd,
        LloydState,
        Solver,
        SQState,
        Status,
        lloyd_step,
        make_optimizer,
    )
