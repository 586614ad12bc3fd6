"""Error against K: MSE/PSNR and file size for colours, and bars for the three modes.

Reproduces the scikit-learn tutorials' charts: ``error_vs_k.png`` (MSE and PSNR, and the
indexed PNG's size, against K for ``vector`` quantization) and ``error_bars.png`` (mean
absolute and mean squared error against K, bars for the ``vector``, ``channel`` and
``global`` modes). Needs matplotlib (``pip install "jaxquant[plot]"``).

    python examples/error_vs_k.py OUT_DIR
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

import jaxquant
from jaxquant import report

sys.path.insert(0, str(Path(__file__).parent))
from k_sweep_gif import sample  # noqa: E402

MODES = ("vector", "channel", "global")


def main(out_dir, *, ks=(2, 4, 8, 16, 32), size=(240, 160), **options) -> list[Path]:
    from matplotlib.figure import Figure

    image = sample(size)
    key = jax.random.key(0)
    errors = {m: {"mae": [], "mse": [], "psnr": []} for m in MODES}
    sizes = []  # of the indexed PNG of each vector result
    for mode in MODES:
        for k in ks:
            r = jaxquant.quantize(key, image, k, mode=mode, **options)
            diff = np.asarray(r.image, np.float64) - image
            errors[mode]["mae"].append(float(np.mean(np.abs(diff))))
            errors[mode]["mse"].append(float(r.mse))
            errors[mode]["psnr"].append(float(r.psnr))
            if mode == "vector":
                with tempfile.TemporaryDirectory() as tmp:
                    sizes.append(jaxquant.save_png(r, Path(tmp) / "q.png"))
    out = Path(out_dir)
    vector = errors["vector"]
    report.plot_errors(
        ks,
        vector["mse"],
        vector["psnr"],
        sizes,
        out / "error_vs_k.png",
        title="vector quantization of the sample photograph",
    )

    fig = Figure(figsize=(9, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    x = np.arange(len(ks))
    for ax, metric, label in zip(axes, ("mae", "mse"), ("absolute", "squared"), strict=True):
        for i, mode in enumerate(MODES):
            ax.bar(x + (i - 1) * 0.27, errors[mode][metric], 0.27, label=mode)
        ax.set_xticks(x, [str(k) for k in ks])
        ax.set_xlabel("K (colours, or levels per channel / in all)")
        ax.set_ylabel(f"mean {label} error (0..255)")
        ax.set_yscale("log")
    axes[0].legend()
    fig.savefig(out / "error_bars.png", dpi=90)
    return [out / "error_vs_k.png", out / "error_bars.png"]


if __name__ == "__main__":
    print(*main(sys.argv[1] if len(sys.argv) > 1 else "."), sep="\n")
