"""K-means in sRGB, CIELAB and OKLab side by side (the classic "K-means in Lab" view).

Quantizes the sample photograph to K colours in each space and writes
``lab_vs_rgb.png``: one row per space (original | quantized | palette) captioned with the
MSE in sRGB and the mean CIEDE2000 difference.

    python examples/lab_vs_rgb.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np
from PIL import Image

import jaxquant
from jaxquant import colour, report

sys.path.insert(0, str(Path(__file__).parent))
from k_sweep_gif import sample  # noqa: E402


def main(out_dir, *, k=8, spaces=("rgb", "cielab", "oklab"), size=(240, 160), **options) -> Path:
    image = sample(size)
    rows = []
    for space in spaces:
        r = jaxquant.quantize(jax.random.key(0), image, k, space=space, **options)
        de = float(np.mean(colour.delta_e(image, r.image)))
        caption = f"{space}: K = {k}   MSE = {float(r.mse):.1f}   mean dE00 = {de:.2f}"
        rows.append(report.compare_image(image, r.image, r.palette, caption=caption))
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for row in rows:
        sheet.paste(row, (0, y))
        y += row.height
    path = Path(out_dir) / "lab_vs_rgb.png"
    sheet.save(path)
    return path


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else "."))
