"""``--quality MIN-MAX`` against pngquant's, side by side on CQ100 photos.

For each photo and target ``Q``, ``pngquant --nofs --quality 0-Q`` and
``jaxquant.quantize_to_quality(key, image, "0-Q")`` (no dithering either way), both
written as PNG (jaxquant with its default writer). Reports medians of: the colours
chosen, the plain sRGB MSE of the decoded file (0..255 scale), jaxquant's quality of
both results (:func:`jaxquant.quality.mse_to_quality`), the bytes, and the time
(jaxquant warm: the second call; pngquant: the whole process).

    python benchmarks/bench_quality_target.py --limit 10 --qualities 60 80 90
"""

from __future__ import annotations

import argparse
import statistics as st
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import add_data_argument, photos  # noqa: E402
from bench_quality import machine  # noqa: E402

import jaxquant  # noqa: E402
from jaxquant import io  # noqa: E402
from jaxquant.quality import mse_to_quality, quantize_to_quality  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(ap)
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--qualities", type=int, nargs="+", default=[60, 80, 90])
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    files = photos(args.data)
    files = files[:: max(1, len(files) // args.limit)][: args.limit]
    key = jax.random.key(0)
    rows = {
        q: {n: [] for n in ("jk", "pk", "jm", "pm", "jq", "pq", "jb", "pb", "jt", "pt")}
        for q in args.qualities
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "p.png"
        for f in files:
            image = jaxquant.load_image(f)
            ref = image.astype(np.float64)
            for q in args.qualities:
                r = rows[q]
                t = time.perf_counter()
                p = subprocess.run(
                    [
                        "pngquant",
                        "--nofs",
                        "--force",
                        "--quality",
                        f"0-{q}",
                        "-o",
                        str(out),
                        str(f),
                    ],
                    capture_output=True,
                )
                r["pt"].append(time.perf_counter() - t)
                if p.returncode != 0:
                    continue
                with Image.open(out) as im:
                    r["pk"].append(len(im.getpalette()) // 3)
                    decoded = np.asarray(im.convert("RGB"), np.float64)
                r["pm"].append(float(((decoded - ref) ** 2).mean()))
                r["pq"].append(mse_to_quality(r["pm"][-1]))
                r["pb"].append(out.stat().st_size)
                quantize_to_quality(key, image, f"0-{q}")  # compile
                t = time.perf_counter()
                res = quantize_to_quality(key, image, f"0-{q}")
                jax.block_until_ready(res.image)
                r["jt"].append(time.perf_counter() - t)
                r["jk"].append(int(res.palette.shape[0]))
                r["jm"].append(float(res.mse))
                r["jq"].append(mse_to_quality(float(res.mse)))
                r["jb"].append(len(io.encode(res)))
    med = st.median
    lines = [
        f"{machine()}. {len(files)} CQ100 photos (768x512), every "
        f"{max(1, 100 // args.limit)}th; medians; no dithering on either side.",
        "",
        "| asked | colours jaxquant / pngquant | plain MSE jaxquant / pngquant | quality (ours) "
        "jaxquant / pngquant | bytes jaxquant / pngquant (median ratio) | time jaxquant warm / "
        "pngquant |",
        "|---|---|---|---|---|---|",
    ]
    for q, r in rows.items():
        ratio = med(a / b for a, b in zip(r["jb"], r["pb"], strict=True))
        lines.append(
            f"| 0-{q} | {med(r['jk']):.0f} / {med(r['pk']):.0f} | {med(r['jm']):.1f} / "
            f"{med(r['pm']):.1f} | {med(r['jq']):.0f} / {med(r['pq']):.0f} | {ratio:.3f} | "
            f"{med(r['jt']):.2f} s / {med(r['pt']):.2f} s |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
