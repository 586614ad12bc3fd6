"""Global vs channel-wise quantization of intensities, with histograms before and after.

Reproduces the MiniBatchKMeans tutorial: ``global`` mode fits one set of K intensities
shared by all channels, ``channel`` mode K intensities per channel. Writes
``global.png`` and ``channel.png`` (original | quantized | levels) and their intensity
histograms ``global_hist.png`` (pooled over channels) and ``channel_hist.png``.

    python examples/global_vs_channel.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax

import jaxquant
from jaxquant import report

sys.path.insert(0, str(Path(__file__).parent))
from k_sweep_gif import sample  # noqa: E402


def main(out_dir, *, k=4, size=(240, 160), **options) -> list[Path]:
    image = sample(size)
    out, paths = Path(out_dir), []
    for mode in ("global", "channel"):
        r = jaxquant.quantize(jax.random.key(0), image, k, mode=mode, **options)
        caption = f"{mode}: K = {k}   MSE = {float(r.mse):.1f}   PSNR = {float(r.psnr):.2f} dB"
        report.compare_image(
            image, r.image, r.palette, caption=caption, levels=mode == "channel"
        ).save(out / f"{mode}.png")
        report.histogram_image(image, r.image, pooled=mode == "global").save(
            out / f"{mode}_hist.png"
        )
        paths += [out / f"{mode}.png", out / f"{mode}_hist.png"]
    return paths


if __name__ == "__main__":
    print(*main(sys.argv[1] if len(sys.argv) > 1 else "."), sep="\n")
