"""jaxquant: colour quantization and image compression by Stochastic Quantization in JAX."""

from jaxquant import colour, losses, report, seeding, soft
from jaxquant._batch import quantize_batch, shard_files
from jaxquant._quantize import QuantizeResult, Status, kmeans, paper_options, quantize
from jaxquant._solver import (
    OPTIMIZERS,
    SQState,
    assign,
    lloyd_step,
    make_optimizer,
    sq_fit,
    sq_step,
)
from jaxquant.io import load_image, save_png
from jaxquant.soft import quantize_ste, soft_quantize

__version__ = "0.1.0"

__all__ = [
    "OPTIMIZERS",
    "QuantizeResult",
    "SQState",
    "Status",
    "assign",
    "colour",
    "kmeans",
    "lloyd_step",
    "load_image",
    "losses",
    "make_optimizer",
    "paper_options",
    "quantize",
    "quantize_batch",
    "quantize_ste",
    "report",
    "save_png",
    "seeding",
    "shard_files",
    "soft",
    "soft_quantize",
    "sq_fit",
    "sq_step",
]
