"""A small indexed-PNG writer (NumPy + zlib) that searches for the smallest file.

Pillow writes a palette image at the smallest bit depth with no row filter; at 16 colours
that 4-bit file was 1.14x pngquant's bytes on CQ100 photos, where this writer's is 0.94x
(``docs/benchmarks-bytes.md``). The palette is ordered so that neighbouring pixels get
close index values (a chain through the palette along the pixels' most frequent
neighbours), entries with transparency first (so ``tRNS`` is as short as it can be);
candidate encodings (bit depth 1/2/4/8, row filter none or sub, zlib strategy) are
compared at zlib level 6 (on strips of rows for a large image) and the best one is
compressed in full. With ``effort="max"`` the palette is also trimmed to the entries in
use (identical ones merged) and more candidates (adaptive and up filters) are compressed
in full. The decoded image is the same; only index values and palette order change.

Why the order matters: with filter none, deflate's output is the same for any
permutation of byte values (LZ77 matches and Huffman code lengths do not depend on which
value is which), so order only pays through the sub/adaptive filters, which code the
difference to the left or upper neighbour: close indices make small, repetitive
residuals (at K=256 about 2% fewer bytes than filter none).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["chunk", "encode_indexed", "insert_chunks", "metadata_chunks", "prepare"]

SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Candidate encodings are compared at zlib level 6 (about 3x faster than 9, nearly the
# same ranking) on the whole image up to _SMALL pixels, else on _STRIPS strips of _STRIP
# rows spread over it. (Four strips of 24 rows picked the wrong filter on CQ100 photos.)
_STRIP = 64
_STRIPS = 8
_SMALL = 1 << 20


def chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data.

    Examples:
      >>> chunk(b"IEND", b"").hex()
      '0000000049454e44ae426082'
    """
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def insert_chunks(png: bytes, chunks: list[tuple[bytes, bytes]]) -> bytes:
    """``png`` with ``chunks`` (type, data) inserted right after ``IHDR``.

    Ancillary chunks that must precede ``PLTE`` and ``IDAT`` (``iCCP``, ``sRGB``,
    ``gAMA``, ``cHRM``, ``pHYs``) may all go there.
    """
    if not chunks:
        return png
    if png[:8] != SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError("not a PNG file starting with IHDR")
    end = 8 + 12 + int.from_bytes(png[8:12], "big")
    return png[:end] + b"".join(chunk(k, d) for k, d in chunks) + png[end:]


def metadata_chunks(metadata: dict | None) -> list[tuple[bytes, bytes]]:
    """PNG chunks for colour metadata (keys as :func:`jaxquant.io.read_metadata` gives).

    ``icc_profile`` becomes ``iCCP`` (and then ``sRGB`` is left out: the PNG
    specification allows one or the other), ``srgb`` (rendering intent 0-3) ``sRGB``,
    ``gamma`` (e.g. 0.45455) ``gAMA``, ``chromaticity`` (white point and the three
    primaries, 8 numbers) ``cHRM``, ``dpi`` (x, y) ``pHYs``. Unknown keys are ignored.
    """
    if not metadata:
        return []
    out: list[tuple[bytes, bytes]] = []
    chroma = metadata.get("chromaticity")
    if chroma is not None:
        values = [round(float(v) * 100000) for v in chroma]
        if len(values) != 8 or not all(0 <= v < 2**31 for v in values):
            raise ValueError(f"metadata chromaticity must be 8 numbers in [0, 1), got {chroma}")
        out.append((b"cHRM", struct.pack(">8I", *values)))
    gamma = metadata.get("gamma")
    if gamma is not None:
        g = round(float(gamma) * 100000)
        if not 0 < g < 2**31:
            raise ValueError(f"metadata gamma must be positive, got {gamma}")
        out.append((b"gAMA", struct.pack(">I", g)))
    icc = metadata.get("icc_profile")
    if icc:
        out.append((b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(bytes(icc), 9)))
    elif metadata.get("srgb") is not None:
        intent = int(metadata["srgb"])
        if not 0 <= intent <= 3:
            raise ValueError(f"metadata srgb (rendering intent) must be 0..3, got {intent}")
        out.append((b"sRGB", bytes([intent])))
    dpi = metadata.get("dpi")
    if dpi is not None:
        x, y = (round(float(v) / 0.0254) for v in dpi)
        if 0 < x < 2**31 and 0 < y < 2**31:
            out.append((b"pHYs", struct.pack(">IIB", x, y, 1)))
    return out


# Counts over the pixels are taken in blocks of about this many pixels, so that encoding
# a 50 MP image needs a few bytes per pixel beyond the indices, not 40.
_BLOCK = 1 << 20


def _blocks(h: int, w: int):
    """``(start, stop)`` row ranges of about :data:`_BLOCK` pixels covering ``h`` rows."""
    step = max(1, _BLOCK // max(w, 1))
    return ((s, min(s + step, h)) for s in range(0, h, step))


def _counts(indices: np.ndarray, k: int) -> np.ndarray:
    """How many pixels use each of ``k`` entries (blockwise ``bincount``)."""
    out = np.zeros(k, np.int64)
    for s, e in _blocks(*indices.shape):
        out += np.bincount(indices[s:e].ravel(), minlength=k)[:k]
    return out


def _chain(indices: np.ndarray, k: int) -> np.ndarray:
    """A palette order in which entries that are often neighbours are adjacent.

    Greedy: start from the most frequent entry and grow a chain at either end by the
    unused entry most often next to (left/right/above/below) that end's entry.
    """
    if k <= 2:
        return np.arange(k)
    h, _ = indices.shape
    pairs = np.zeros(k * k, np.int64)
    for s, e in _blocks(*indices.shape):
        block = indices[s : min(e + 1, h)].astype(np.int32)  # one more row: pairs below
        rows = e - s
        pairs += np.bincount((block[:rows, :-1] * k + block[:rows, 1:]).ravel(), minlength=k * k)
        if block.shape[0] > 1:
            pairs += np.bincount((block[:-1] * k + block[1:]).ravel(), minlength=k * k)
    m = pairs.reshape(k, k)
    m = m + m.T
    np.fill_diagonal(m, -1)
    free = np.ones(k, bool)
    start = int(_counts(indices, k).argmax())
    free[start] = False
    left, right = [start], [start]
    for _ in range(k - 1):
        a = np.where(free, m[left[-1]], -2)
        b = np.where(free, m[right[-1]], -2)
        if a.max() > b.max():
            j = int(a.argmax())
            left.append(j)
        else:
            j = int(b.argmax())
            right.append(j)
        free[j] = False
    return np.array(left[:0:-1] + right, np.int64)


def _pack(rows: np.ndarray, bits: int) -> np.ndarray:
    """8-bit index rows packed to ``bits`` bits per pixel (first pixel in the high bits)."""
    if bits == 8:
        return rows
    per = 8 // bits
    h, w = rows.shape
    padded = np.zeros((h, -(-w // per) * per), np.uint8)
    padded[:, :w] = rows
    shifts = (8 - bits * np.arange(1, per + 1)).astype(np.uint8)
    groups = padded.reshape(h, -1, per) << shifts
    return np.bitwise_or.reduce(groups, axis=2).astype(np.uint8)


def _filter(rows: np.ndarray, kind: str, above: np.ndarray | None = None) -> np.ndarray:
    """Rows with their PNG filter byte: ``none`` (0), ``sub`` (1), ``up`` (2) or
    ``adaptive`` (per row, the filter with the smallest sum of signed residuals)."""
    h = rows.shape[0]
    if kind == "none":
        return np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1)
    prev = np.empty_like(rows)
    prev[1:] = rows[:-1]
    prev[:1] = 0 if above is None else above
    left = np.zeros_like(rows)
    left[:, 1:] = rows[:, :-1]
    sub = rows - left
    if kind == "sub":
        return np.concatenate([np.ones((h, 1), np.uint8), sub], axis=1)
    up = rows - prev
    if kind == "up":
        return np.concatenate([np.full((h, 1), 2, np.uint8), up], axis=1)
    li, pi = left.astype(np.int16), prev.astype(np.int16)
    ul = np.zeros_like(pi)
    ul[:, 1:] = pi[:, :-1]
    p = li + pi - ul
    pa, pb, pc = np.abs(p - li), np.abs(p - pi), np.abs(p - ul)
    pred = np.where((pa <= pb) & (pa <= pc), li, np.where(pb <= pc, pi, ul))
    paeth = (rows - pred.astype(np.uint8)).astype(np.uint8)
    avg = (rows - ((li + pi) >> 1).astype(np.uint8)).astype(np.uint8)
    options = np.stack([rows, sub, up, avg, paeth])
    cost = np.abs(options.view(np.int8).astype(np.int32)).sum(axis=2)
    best = cost.argmin(axis=0)
    chosen = options[best, np.arange(h)]
    return np.concatenate([best[:, None].astype(np.uint8), chosen], axis=1)


_STRATEGIES = {
    "default": zlib.Z_DEFAULT_STRATEGY,
    "filtered": zlib.Z_FILTERED,
    "rle": zlib.Z_RLE,
}


def _deflate(raw: bytes, level: int, strategy: str) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, 15, 9, _STRATEGIES[strategy])
    return c.compress(raw) + c.flush()


def _candidates(k: int, effort: str) -> list[tuple[int, str, str]]:
    """(bits, filter, strategy) encodings to compare for a ``k``-entry palette."""
    low = next(b for b in (1, 2, 4, 8) if k <= 1 << b)
    out = [(8, "none", "default")]
    if low < 8:
        out.append((low, "none", "default"))
    if k > 16 or effort == "max":
        out.append((8, "sub", "filtered"))
    if effort == "max":
        out += [(8, "adaptive", "filtered"), (8, "up", "filtered"), (8, "none", "filtered")]
        if low < 8:
            out += [(low, "sub", "filtered"), (low, "adaptive", "filtered")]
    return out


def _sample(rows: np.ndarray) -> list[np.ndarray]:
    """Strips of rows on which to compare candidates (all rows for a small image)."""
    h, w = rows.shape
    if h * w <= _SMALL or h <= 2 * _STRIP * _STRIPS:
        return [rows]
    starts = np.linspace(0, h - _STRIP, _STRIPS).astype(int)
    return [rows[s : s + _STRIP] for s in starts]


def prepare(
    indices: np.ndarray,
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    *,
    trim: bool = True,
    keep: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and palette ordered (and trimmed) for compression.

    With ``trim``, entries no pixel uses are dropped and identical ones merged. Entries
    with transparency come first, the rest in :func:`_chain` order. With ``keep``, the
    palette stays as given: every entry, in order.

    Returns:
      ``(rows, palette)``: ``(H, W)`` uint8 indices and the ``(n, 3)`` (or ``(n, 4)``
      with ``alpha``) uint8 palette, with ``palette[rows]`` equal to the input's colours.
    """
    k = rgb.shape[0]
    entries = rgb if alpha is None else np.concatenate([rgb, alpha[:, None]], axis=1)
    idx = indices if indices.dtype == np.uint8 else indices.astype(np.uint8)
    if keep:
        return idx, entries
    lut = np.arange(k, dtype=np.uint8)  # input index -> index after trimming
    if trim:
        used = np.flatnonzero(_counts(idx, k))
        entries, inverse = np.unique(entries[used], axis=0, return_inverse=True)
        lut[used] = inverse.ravel()
        idx = lut[idx]
    n = entries.shape[0]
    order = _chain(idx, n)
    if entries.shape[1] == 4:
        order = order[np.argsort(entries[order, 3] == 255, kind="stable")]
    rank = np.empty(n, np.uint8)
    rank[order] = np.arange(n)
    return rank[idx], entries[order]


def encode_indexed(
    indices: np.ndarray,
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    *,
    level: int = 9,
    effort: str = "fast",
    keep_palette: bool = False,
) -> bytes:
    """The smallest palette PNG this writer finds for ``rgb[indices]`` (with ``alpha``).

    With ``keep_palette`` the ``PLTE`` (and ``tRNS``) chunk is the palette as given,
    every entry in order, and the pixels keep their indices.

    Args:
      indices: ``(H, W)`` integer indices into the palette.
      rgb: ``(k, 3)`` uint8 palette colours, ``k <= 256``.
      alpha: ``(k,)`` uint8 opacity of each entry, or ``None`` (all opaque).
      level: zlib level 0-9.
      effort: ``"fast"`` (a few candidates, compared on a sample of rows) or ``"max"``
        (more candidates, each compressed in full).

    Returns:
      The PNG file (signature to ``IEND``); decoding it gives back ``rgb[indices]`` and
      ``alpha[indices]``, with the palette reordered (and, for ``effort="max"``,
      trimmed).
    """
    h, w = indices.shape
    rows, palette = prepare(indices, rgb, alpha, trim=effort == "max", keep=keep_palette)
    n = palette.shape[0]

    chunks = [chunk(b"PLTE", palette[:, :3].tobytes())]
    if palette.shape[1] == 4:
        translucent = np.flatnonzero(palette[:, 3] != 255)
        if translucent.size:  # entries after the last translucent one are opaque
            chunks.append(chunk(b"tRNS", palette[: translucent[-1] + 1, 3].tobytes()))

    candidates = _candidates(n, effort)
    if len(candidates) > 1 and effort != "max":
        sample = _sample(rows)

        def cost(candidate: tuple[int, str, str]) -> int:
            bits, kind, strategy = candidate
            return sum(
                len(_deflate(_filter(_pack(s, bits), kind).tobytes(), min(level, 6), strategy))
                for s in sample
            )

        candidates = [min(candidates, key=cost)]
    encoded = []
    for bits, kind, strategy in candidates:
        # zlib 9 on filtered rows takes up to 10x level 8's time for 0.3% fewer bytes.
        lvl = level if effort == "max" or kind == "none" else min(level, 8)
        data = _deflate(_filter(_pack(rows, bits), kind).tobytes(), lvl, strategy)
        encoded.append((len(data), bits, data))
    _, bits, data = min(encoded, key=lambda e: e[:2])
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, 3, 0, 0, 0))
    return SIGNATURE + ihdr + b"".join(chunks) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
