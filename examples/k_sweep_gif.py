"""An animation of the sample photograph quantized to K = 1, 5, 10, 20 and 40 colours.

Reproduces the OpenCV k-means tutorial's sweep of K as a GIF: each frame shows
original | quantized | palette with K, MSE, PSNR and the indexed PNG's size.

    python examples/k_sweep_gif.py OUT_DIR      # writes OUT_DIR/k_sweep.gif
"""

from __future__ import annotations

import sys
import tempfile
from importlib import resources
from pathlib import Path

import jax
import numpy as np
from PIL import Image

import jaxquant
from jaxquant import report


def sample(size: tuple[int, int]) -> np.ndarray:
    """The built-in sample photograph, resized to ``size`` (width, height)."""
    with Image.open(resources.files("jaxquant") / "data" / "sample.png") as im:
        return np.asarray(im.convert("RGB").resize(size, Image.Resampling.LANCZOS))


def main(out_dir, *, ks=(1, 5, 10, 20, 40), size=(240, 160), **options) -> Path:
    image = sample(size)
    results = [jaxquant.quantize(jax.random.key(0), image, k, **options) for k in ks]
    with tempfile.TemporaryDirectory() as tmp:  # the indexed PNG each result makes
        sizes = [jaxquant.save_png(r, Path(tmp) / f"{i}.png") for i, r in enumerate(results)]
    frames = report.sweep_frames(image, results, num_bytes=sizes)
    path = Path(out_dir) / "k_sweep.gif"
    report.save_gif(frames, path, duration=800)
    return path


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else "."))
