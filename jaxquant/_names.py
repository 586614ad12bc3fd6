"""Names of the built-in choices, free of any JAX import.

The command line builds its parser from these tuples, so ``jaxquant --help`` and argument
errors answer without loading JAX. The modules that implement each choice take their
names from here; ``tests/test_api.py`` checks that the two agree.
"""

from __future__ import annotations

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
"""Built-in SQ optimizers (:data:`jaxquant.solvers.OPTIMIZERS`)."""

INITIALIZERS = ("kmeans++", "kmeans++-d1", "random")
"""Built-in seedings (:data:`jaxquant.seeding.INITIALIZERS`)."""

SPACES = ("rgb", "linear-rgb", "cielab", "oklab", "weighted-rgb")
"""Colour spaces a palette can be fitted in (:data:`jaxquant.colour.SPACES`)."""

MODES = ("vector", "channel", "global")
"""Quantization modes of :func:`jaxquant.quantize`."""

LAYOUTS = ("loop", "matrix", "gemm")
"""Layouts of the nearest-colour search (:data:`jaxquant.kernels.LAYOUTS`)."""

FORMATS = ("png", "webp", "gif", "rgb")
"""Output encodings of :func:`jaxquant.io.save`: indexed (palette) PNG, lossless WebP,
GIF, and the quantized image as a truecolour PNG (any palette size)."""

FORMAT_ALIASES = {"indexed": "png"}
"""Older names of formats, still accepted (``"indexed"`` was 0.2's name for ``"png"``)."""
SUFFIXES = {"png": ".png", "rgb": ".png", "webp": ".webp", "gif": ".gif"}
"""The file suffix of each output format."""
FORMAT_BY_SUFFIX = {".png": "png", ".webp": "webp", ".gif": "gif"}
"""The output format each suffix names."""

DITHERS = ("none", "fs", "ordered")
"""Dithering of :func:`jaxquant.remap` (:data:`jaxquant.dither.DITHERS`): none,
Floyd-Steinberg error diffusion, ordered (a blue-noise threshold map)."""

IMAGE_SUFFIXES = frozenset(
    ".png .jpg .jpeg .jpe .jfif .bmp .dib .gif .tif .tiff .webp .ppm .pgm .pbm .pnm .tga "
    ".jp2 .j2k .ico .pcx .sgi .im .qoi".split()
)
"""The suffixes of the files a folder input is read for (folders of images)."""
