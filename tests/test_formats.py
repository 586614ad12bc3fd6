"""Output formats of ``io.encode`` / ``io.save``: round trips, names, metadata, optimize."""

from __future__ import annotations

import io as _io
import sys
import typing
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp
from PIL import Image

import jaxquant
from jaxquant import _png, io

FORMATS = ("png", "webp", "gif", "rgb", "indexed")


class Result(typing.NamedTuple):
    """The fields of a QuantizeResult that encoding reads, built with NumPy."""

    image: np.ndarray
    palette: np.ndarray
    indices: np.ndarray


def result(indices, palette) -> Result:
    indices, palette = np.asarray(indices), np.asarray(palette)
    return Result(palette[indices], palette, indices)


def rgba(image: np.ndarray) -> np.ndarray:
    """An (H, W, C) uint8 image as RGBA, as Pillow's ``convert("RGBA")`` gives it."""
    image = image.reshape(image.shape[0], image.shape[1], -1)
    c = image.shape[2]
    colour = np.repeat(image[:, :, :1], 3, axis=2) if c <= 2 else image[:, :, :3]
    alpha = image[:, :, -1:] if c in (2, 4) else np.full(image.shape[:2] + (1,), 255, np.uint8)
    return np.concatenate([colour, alpha], axis=2)


def decode(data: bytes) -> np.ndarray:
    with Image.open(_io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGBA"))


def decoded_palette(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(indices, RGBA palette) of a palette PNG or a GIF."""
    with Image.open(_io.BytesIO(data)) as im:
        assert im.mode == "P"
        indices = np.asarray(im)
        rgb = np.array(im.getpalette("RGB"), np.uint8).reshape(-1, 3)
        alpha = np.full(len(rgb), 255, np.uint8)
        t = im.info.get("transparency")
        if isinstance(t, bytes):
            alpha[: len(t)] = np.frombuffer(t, np.uint8)
        elif t is not None:
            alpha[t] = 0
    return indices, np.concatenate([rgb, alpha[:, None]], axis=1)


def check_round_trip(r: Result, fmt: str) -> bytes:
    """Encode ``r`` as ``fmt`` and check the decoded file is ``r.image`` exactly."""
    data = io.encode(r, format=fmt)
    expected = rgba(io._to_uint8(r.image))
    got = decode(data)
    if fmt == "gif":  # one transparent index: invisible colours may differ
        visible = expected[:, :, 3] > 0
        np.testing.assert_array_equal(got[visible], expected[visible])
        np.testing.assert_array_equal(got[:, :, 3], expected[:, :, 3])
    else:
        np.testing.assert_array_equal(got, expected)
    if fmt in ("png", "indexed", "gif") and np.asarray(r.indices).ndim == 2:
        indices, palette = decoded_palette(data)
        decoded = palette[indices]
        if fmt == "gif":
            np.testing.assert_array_equal(decoded[visible], expected[visible])
        else:
            np.testing.assert_array_equal(decoded, expected)
        # The same partition of the pixels: indices differ only by a permutation.
        pairs = np.unique(np.stack([indices.ravel(), np.asarray(r.indices).ravel()]), axis=1)
        assert len(np.unique(pairs[0])) == pairs.shape[1] or fmt == "gif"
    return data


RNG = np.random.default_rng(0)


def _mixed_alpha() -> Result:
    palette = np.array(
        [[255, 0, 0, 255], [0, 0, 0, 0], [0, 255, 0, 128], [0, 0, 255, 255], [9, 9, 9, 1]],
        np.uint8,
    )
    return result(RNG.integers(0, 5, (9, 11)), palette)


CASES = {
    "rgb": result(RNG.integers(0, 16, (20, 30)), RNG.integers(0, 256, (16, 3), dtype=np.uint8)),
    "rgba_mixed": _mixed_alpha(),
    "rgba_binary": result(
        RNG.integers(0, 3, (8, 8)),
        np.array([[0, 0, 0, 0], [1, 2, 3, 255], [200, 200, 200, 255]], np.uint8),
    ),
    "gray": result(RNG.integers(0, 4, (5, 6)), np.array([[0], [80], [160], [255]], np.uint8)),
    "gray_alpha": result(
        RNG.integers(0, 3, (4, 9)), np.array([[0, 0], [100, 255], [200, 50]], np.uint8)
    ),
    "one_colour": result(np.zeros((3, 4), np.int32), np.array([[10, 20, 30]], np.uint8)),
    "two_colours": result(
        RNG.integers(0, 2, (32, 32)), np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
    ),
    "k256": result(RNG.integers(0, 256, (40, 50)), RNG.permutation(256 * 3).reshape(256, 3) % 256),
    "1x1": result(np.zeros((1, 1), np.int32), np.array([[1, 2, 3]], np.uint8)),
    "3x7": result(RNG.integers(0, 3, (3, 7)), RNG.integers(0, 256, (3, 3), dtype=np.uint8)),
    "float": result(
        RNG.integers(0, 3, (4, 5)), np.array([[0.0, 0.5, 1.0], [1, 1, 1], [0.2, 0, 0]], np.float32)
    ),
    "unused_and_duplicate": result(
        RNG.integers(0, 2, (6, 6)), np.array([[5, 5, 5], [5, 5, 5], [7, 7, 7]], np.uint8)
    ),
}
CASES["k256"] = result(CASES["k256"].indices, CASES["k256"].palette.astype(np.uint8))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_format_round_trips(case, fmt):
    r = CASES[case]
    if fmt == "gif" and case == "rgba_mixed" or fmt == "gif" and case == "gray_alpha":
        with pytest.raises(ValueError, match="translucent"):
            io.encode(r, format=fmt)
        return
    check_round_trip(r, fmt)


def test_png_bit_depth_and_chunks():
    data = io.encode(CASES["two_colours"])
    assert data[24] == 1  # IHDR bit depth
    assert b"tRNS" not in data
    data = io.encode(CASES["rgba_binary"])
    indices, palette = decoded_palette(data)
    assert palette[0, 3] == 0  # transparent entries first: tRNS as short as it can be
    assert data[24] in (2, 8)


def test_candidates_compared_on_strips_of_a_large_image(monkeypatch):
    # Large images compare encodings on strips of rows; shrink the limits to get there.
    monkeypatch.setattr(_png, "_SMALL", 100)
    monkeypatch.setattr(_png, "_STRIP", 3)
    palette = RNG.integers(0, 256, (40, 3), dtype=np.uint8)
    smooth = (np.add.outer(np.arange(61), np.arange(47)) // 3) % 40
    check_round_trip(result(smooth, palette), "png")
    check_round_trip(result(RNG.integers(0, 3, (61, 47)), palette[:3]), "png")


def test_optimize_trims_and_keeps_pixels():
    pytest.importorskip("oxipng")
    r = CASES["unused_and_duplicate"]
    data = check_round_trip(r, "png")
    small = io.encode(r, optimize=True)
    assert len(small) <= len(data)
    np.testing.assert_array_equal(decode(small), rgba(r.image))


def test_real_results_round_trip(photo):
    r = jaxquant.remap(photo, photo.reshape(-1, 3)[::97][:40])
    for fmt in FORMATS:
        check_round_trip(r, fmt)


def test_truecolour_fallback_for_many_colours():
    image = RNG.integers(0, 256, (30, 30, 3), dtype=np.uint8)  # ~900 colours
    r = Result(image, np.zeros((4, 3), np.uint8), np.zeros((30, 30, 3), np.int32))
    with Image.open(_io.BytesIO(io.encode(r, format="png"))) as im:
        assert im.mode == "RGB"
    check_round_trip(r, "webp")
    with pytest.raises(ValueError, match="at most 256 colours"):
        io.encode(r, format="gif")


def test_more_than_256_entries_refused():
    r = result(np.zeros((2, 2), np.int32), np.zeros((300, 3), np.uint8))
    for fmt in ("png", "gif"):
        with pytest.raises(ValueError, match="at most 256 colours"):
            io.encode(r, format=fmt)
    check_round_trip(r, "rgb")


def test_unknown_format_and_options():
    r = CASES["rgb"]
    with pytest.raises(ValueError, match="unknown format 'jpeg'; choose one of png"):
        io.encode(r, format="jpeg")
    with pytest.raises(ValueError, match="compress_level"):
        io.encode(r, compress_level=10)
    with pytest.raises(TypeError, match="metadata"):
        io.encode(r, metadata=[1])  # type: ignore[arg-type]


# Names: the format from the suffix, or given and agreeing with it.


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("a.png", None, "png"),
        ("a.PNG", None, "png"),
        ("a.webp", None, "webp"),
        ("a.gif", None, "gif"),
        ("a.png", "rgb", "rgb"),
        ("a.png", "indexed", "png"),
        ("-", None, "png"),
        ("-", "webp", "webp"),
    ],
)
def test_output_format(name, fmt, expected):
    assert io.output_format(name, format=fmt) == expected


@pytest.mark.parametrize(
    ("name", "fmt", "match"),
    [
        ("out.jpg", None, "name the output .png, .webp or .gif"),
        ("out", None, "no suffix"),
        ("out.gif", "png", "format 'png' writes .png files"),
        ("out.webp", "rgb", "format 'rgb' writes .png files"),
        ("out.png", "gif", "format 'gif' writes .gif files"),
        ("out.png", "tiff", "unknown format"),
    ],
)
def test_save_refuses_names_that_disagree(tmp_path, name, fmt, match):
    with pytest.raises(ValueError, match=match) as e:
        io.save(CASES["rgb"], tmp_path / name, format=fmt)
    if "unknown format" not in match:
        assert name in str(e.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["a.png", "a.webp", "a.gif"])
def test_save_writes_the_suffix_format(tmp_path, name):
    r = CASES["rgba_binary"]
    path = tmp_path / name
    size = io.save(r, path)
    assert size == path.stat().st_size
    assert path.read_bytes() == io.encode(r, format=io.output_format(path))
    with Image.open(path) as im:
        assert im.format == {".png": "PNG", ".webp": "WEBP", ".gif": "GIF"}[path.suffix]


def test_save_png_and_stdout(tmp_path, capsysbinary):
    r = CASES["gray"]
    assert jaxquant.save_png(r, tmp_path / "a.png") > 0
    io.save(r, "-")
    out = capsysbinary.readouterr().out
    assert out == (tmp_path / "a.png").read_bytes()
    io.save(r, "-", format="gif")
    assert capsysbinary.readouterr().out[:3] == b"GIF"


# Metadata.


def _srgb_profile() -> bytes:
    ImageCms = pytest.importorskip("PIL.ImageCms")
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_metadata_round_trips_through_png(tmp_path):
    icc = _srgb_profile()
    meta = {
        "icc_profile": icc,
        "gamma": 0.45455,
        "chromaticity": (0.3127, 0.329, 0.64, 0.33, 0.3, 0.6, 0.15, 0.06),
        "dpi": (300, 300),
    }
    for fmt in ("png", "rgb"):
        path = tmp_path / f"{fmt}.png"
        io.save(CASES["rgb"], path, format=fmt, metadata=meta)
        got = io.read_metadata(path)
        assert got["icc_profile"] == icc
        assert got["gamma"] == pytest.approx(0.45455)
        assert got["chromaticity"] == pytest.approx(meta["chromaticity"])
        assert got["dpi"] == (300, 300)
        assert "srgb" not in got
        check = decode(path.read_bytes())
        np.testing.assert_array_equal(check, rgba(CASES["rgb"].image))


def test_srgb_chunk_and_sources():
    data = io.encode(CASES["rgb"], metadata={"srgb": 0, "gamma": 0.45455})
    assert io.read_metadata(data) == {"srgb": 0, "gamma": pytest.approx(0.45455)}
    with Image.open(_io.BytesIO(data)) as im:
        assert io.read_metadata(im)["srgb"] == 0
    assert io.read_metadata(_io.BytesIO(data))["srgb"] == 0
    # The metadata chunks come before PLTE, as the PNG specification asks.
    assert data.index(b"sRGB") < data.index(b"PLTE") < data.index(b"IDAT")
    assert io.read_metadata(io.encode(CASES["rgb"])) == {}
    with pytest.raises(ValueError, match="rendering intent"):
        io.encode(CASES["rgb"], metadata={"srgb": 7})
    with pytest.raises(io.ImageReadError, match="not a recognised image"):
        io.read_metadata(b"not an image")


def test_metadata_in_webp_and_gif():
    icc = _srgb_profile()
    meta = {"icc_profile": icc, "gamma": 0.5}
    assert io.read_metadata(io.encode(CASES["rgb"], format="webp", metadata=meta)) == {
        "icc_profile": icc
    }
    assert io.read_metadata(io.encode(CASES["rgb"], format="gif", metadata=meta)) == {}


def test_insert_chunks_keeps_a_valid_png():
    data = _png.insert_chunks(io.encode(CASES["3x7"]), [(b"gAMA", (45455).to_bytes(4, "big"))])
    pos = 8
    while pos < len(data):  # every CRC is right
        n = int.from_bytes(data[pos : pos + 4], "big")
        body = data[pos + 4 : pos + 8 + n]
        assert int.from_bytes(data[pos + 8 + n : pos + 12 + n], "big") == zlib.crc32(body)
        pos += 12 + n
    assert pos == len(data)


# optimize=True: oxipng, or a clear error without it.


def test_optimize_with_oxipng(photo):
    pytest.importorskip("oxipng")
    r = jaxquant.remap(photo, photo.reshape(-1, 3)[::37][:64])
    for fmt in ("png", "rgb"):
        plain = io.encode(r, format=fmt)
        small = io.encode(r, format=fmt, optimize=True, metadata={"gamma": 0.45455})
        assert len(small) <= len(plain) + 16  # + the gAMA chunk
        np.testing.assert_array_equal(decode(small), rgba(np.asarray(r.image)))
        with Image.open(_io.BytesIO(small)) as im:
            assert im.mode == ("P" if fmt == "png" else "RGB")
            assert im.info["gamma"] == pytest.approx(0.45455)
    # WebP's slowest method; GIF has nothing to optimize.
    check = io.encode(r, format="webp", optimize=True)
    np.testing.assert_array_equal(decode(check), rgba(np.asarray(r.image)))
    assert io.encode(r, format="gif", optimize=True) == io.encode(r, format="gif")


def test_optimize_without_oxipng(monkeypatch):
    monkeypatch.setitem(sys.modules, "oxipng", None)  # import oxipng raises ImportError
    with pytest.raises(ImportError, match=r'pip install "jaxquant\[optimize\]"'):
        io.encode(CASES["rgb"], optimize=True)
    io.encode(CASES["rgb"], format="webp", optimize=True)  # needs no oxipng
    assert io.encode(CASES["rgb"])  # the default needs no oxipng


# Any small image and palette.


@hs.composite
def small_results(draw):
    c = draw(hs.sampled_from([1, 2, 3, 4]))
    k = draw(hs.integers(1, 40))
    h, w = draw(hs.integers(1, 12)), draw(hs.integers(1, 12))
    palette = draw(hnp.arrays(np.uint8, (k, c), elements=hs.integers(0, 255)))
    indices = draw(hnp.arrays(np.int32, (h, w), elements=hs.integers(0, k - 1)))
    return result(indices, palette)


@given(small_results(), hs.sampled_from(FORMATS))
def test_random_results_round_trip(r, fmt):
    alpha = r.palette[np.unique(r.indices), -1] if r.palette.shape[1] in (2, 4) else None
    if fmt == "gif" and alpha is not None and np.any((alpha > 0) & (alpha < 255)):
        with pytest.raises(ValueError, match="translucent"):
            io.encode(r, format=fmt)
        return
    check_round_trip(r, fmt)


@given(small_results())
def test_random_results_encode_the_same_with_effort_max(r):
    rgb, alpha = io._split_palette(r.palette)
    data = _png.encode_indexed(r.indices, rgb, alpha, effort="max")
    np.testing.assert_array_equal(decode(data), rgba(r.image))
