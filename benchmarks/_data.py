"""Where the benchmarks' photographs come from: CQ100, and one clear line when it is missing.

Every benchmark that reads photographs takes ``--data DIR`` (a folder of PNG files) through
``add_data_argument`` and lists them with ``photos``, which exits with one line naming the
folder when it does not exist or holds no PNG files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# ../shared/data/cq100/img beside the checkout, as this project's machines lay it out.
DEFAULT_DATA = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "cq100" / "img")

CQ100 = (
    "CQ100: 100 photographs (768x512 PNG) for colour quantization research, from "
    "M. E. Celebi and M. L. Perez-Delgado, 'CQ100: A High-Quality Image Dataset for Color "
    "Quantization Research', Journal of Electronic Imaging 32(3) 033019, 2023; download it "
    "from https://data.mendeley.com/datasets/vw5ys9hfxw/3 (PPM files: convert them to PNG, "
    "e.g. with ImageMagick's `mogrify -format png *.ppm`). Licence: CC BY-SA 4.0 for the "
    "set; each image's own licence (CC BY-SA, CC BY, CC0 or public domain), author and "
    "source are in the dataset's metadata.csv."
)

DATA_HELP = f"folder of PNG photographs, CQ100's img/ folder by default ({DEFAULT_DATA})"


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--data DIR`` to ``parser``, and say where CQ100 comes from in its ``--help``."""
    parser.add_argument("--data", default=DEFAULT_DATA, metavar="DIR", help=DATA_HELP)
    parser.epilog = f"{parser.epilog}\n\n{CQ100}" if parser.epilog else CQ100


def photos(folder: str | Path, limit: int | None = None) -> list[Path]:
    """The PNG files in ``folder``, sorted by name, at most ``limit`` of them.

    Exits with one line (``<script>: error: <folder>: ...``, status 2, as argparse does)
    when the folder is missing or holds no PNG file.
    """
    folder = Path(folder)
    script = Path(sys.argv[0]).name or "benchmark"
    where = "see --help for where CQ100 comes from"
    if not folder.is_dir():
        problem = "no such folder of photographs"
        files = []
    else:
        problem = "no PNG photographs in it"
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())
    if not files:
        print(f"{script}: error: {folder}: {problem} ({where})", file=sys.stderr)
        raise SystemExit(2)
    return files[:limit] if limit is not None else files
