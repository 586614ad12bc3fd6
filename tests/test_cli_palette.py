"""``jaxquant palette`` and ``jaxquant compress --palette``: one palette for many images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from jaxquant import palettes
from jaxquant.cli import main

FAST = ["--steps", "40", "--batch-size", "256", "--cache-dir", ""]


@pytest.fixture
def folder(tmp_path, photo):
    d = tmp_path / "in"
    d.mkdir()
    for i, part in enumerate((photo[:32], photo[32:], photo[:, ::-1])):
        Image.fromarray(np.ascontiguousarray(part)).save(d / f"p{i}.png")
    return d


def _pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA" if "transparency" in im.info else "RGB"))


def _nearest(image: np.ndarray, palette: np.ndarray) -> np.ndarray:
    x = image.reshape(-1, image.shape[-1]).astype(np.int64)
    d = ((x[:, None, :] - palette[None].astype(np.int64)) ** 2).sum(-1)
    return d.min(1)


@pytest.mark.parametrize("suffix", [".gpl", ".png"])  # every format: tests/test_palettes.py
def test_palette_command_writes_each_format(tmp_path, folder, suffix, capsys):
    out = tmp_path / f"pal{suffix}"
    argv = ["palette", str(folder), "-k", "8", "-o", str(out), "--fixed", "#ff00ff", *FAST]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "3 images" in text
    assert "mse" in text
    pal = palettes.read_palette(out)
    assert pal.shape == (8, 3)
    assert pal[0].tolist() == [255, 0, 255]


def test_palette_to_stdout_and_same_as_library(tmp_path, folder, capsys):
    import jax

    import jaxquant

    assert main(["palette", str(folder), "-k", "6", "-o", "-", *FAST, "-q"]) == 0
    printed = palettes.parse_colours(",".join(capsys.readouterr().out.split()))
    files = sorted(folder.iterdir())
    fit = jaxquant.fit_palette(jax.random.key(0), files, 6, num_steps=40, batch_size=256)
    np.testing.assert_array_equal(printed, np.asarray(fit.palette))


def test_compress_with_a_palette_takes_the_exact_nearest(tmp_path, folder):
    pal = tmp_path / "pal.txt"
    assert main(["palette", str(folder), "-k", "8", "-o", str(pal), *FAST, "-q"]) == 0
    colours = palettes.read_palette(pal)
    out = tmp_path / "one.png"
    src = folder / "p0.png"
    argv = ["compress", str(src), "--palette", str(pal), "-o", str(out), "--runs", "0", "-q"]
    assert main(argv) == 0
    got = _pixels(out)
    assert {tuple(c) for c in got.reshape(-1, 3)} <= {tuple(c) for c in colours}
    # every pixel took a colour at the least distance any palette colour has
    chosen = ((got.astype(np.int64) - _pixels(src).astype(np.int64)) ** 2).sum(-1).reshape(-1)
    np.testing.assert_array_equal(chosen, _nearest(_pixels(src), colours))


def test_batch_with_keep_palette_shares_the_palette(tmp_path, folder):
    pal = tmp_path / "pal.png"
    assert main(["palette", str(folder), "-k", "8", "-o", str(pal), *FAST, "-q"]) == 0
    colours = palettes.read_palette(pal)
    out = tmp_path / "out"
    argv = ["compress", str(folder), "--palette", str(pal), "--keep-palette"]
    assert main([*argv, "--out-dir", str(out), "--dither", "ordered", "-q"]) == 0
    for f in sorted(out.iterdir()):
        with Image.open(f) as im:
            assert im.mode == "P"
            np.testing.assert_array_equal(
                np.array(im.getpalette(), np.uint8).reshape(-1, 3)[:8], colours
            )


def test_rgba_palette_on_rgb_and_grey_images(tmp_path, photo):
    pal = tmp_path / "p.txt"
    pal.write_text("#00000000\n#ffffff\n#808080\n#202020\n")
    for name, image in (("rgb.png", photo), ("grey.png", photo[..., 0])):
        src = tmp_path / name
        Image.fromarray(image).save(src)
        out = tmp_path / f"out-{name}"
        assert main(["compress", str(src), "--palette", str(pal), "-o", str(out), "-q"]) == 0
        got = _pixels(out)
        assert got.shape[2] == 3 or (got[..., 3] == 255).all()  # opaque stays opaque


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-k", "4"], "--palette gives the colours; -k does not go with it"),
        (["--quality", "50-90"], "--quality does not go with it"),
        (["--fixed", "#fff"], "--fixed does not go with it"),
    ],
)
def test_palette_flag_conflicts(tmp_path, folder, capsys, extra, message):
    pal = tmp_path / "p.txt"
    pal.write_text("#000\n#fff\n")
    argv = [
        "compress",
        str(folder / "p0.png"),
        "--palette",
        str(pal),
        "-o",
        str(tmp_path / "o.png"),
    ]
    assert main([*argv, *extra]) == 2
    assert message in capsys.readouterr().err


def test_palette_errors(tmp_path, folder, capsys):
    src = str(folder / "p0.png")
    out = str(tmp_path / "o.png")
    bad = tmp_path / "bad.txt"
    bad.write_text("#000\nnot a colour\n")
    big = tmp_path / "big.txt"
    big.write_text("\n".join(f"#{i:06x}" for i in range(300)))
    cases = [
        (["compress", src, "--keep-palette", "-k", "4", "-o", out], "give one"),
        (["compress", src, "--palette", str(tmp_path / "none.txt"), "-o", out], "none.txt"),
        (["compress", src, "--palette", str(bad), "-o", out], "bad.txt line 2"),
        (["compress", src, "--palette", str(big), "-o", out], "300 colours; png holds at most"),
        (["palette", str(tmp_path / "empty"), "-k", "4", "-o", "p.txt"], "no such file"),
        (["palette", src, "-k", "4", "-o", src], "is an input"),
        (["palette", src, "-k", "4", "-o", str(tmp_path / "p.bmp")], ".txt, .json, .gpl or .png"),
        (["palette", src, "-k", "300", "-o", str(tmp_path / "p.png")], "at most 256"),
        (["palette", src, "-k", "4", "-o", str(tmp_path / "p.txt"), "--fixed", "#zz"], "fixed"),
    ]
    (tmp_path / "empty").mkdir()
    cases.append((["palette", str(tmp_path / "empty"), "-k", "4", "-o", "p.txt"], "no image files"))
    cases.pop(4)
    for argv, message in cases:
        assert main([*argv, "--cache-dir", ""]) == 2, argv
        err = capsys.readouterr().err
        assert message in err, (argv, err)
        assert err.count("\n") == 1  # one line, no traceback
    existing = tmp_path / "exists.txt"
    existing.write_text("#000\n")
    assert main(["palette", src, "-k", "2", "-o", str(existing), *FAST]) == 2
    assert "exists" in capsys.readouterr().err
    assert existing.read_text() == "#000\n"  # untouched


def test_encode_keep_palette_writes_every_entry_in_order():
    import io as _io

    import jaxquant

    palette = np.array([[9, 9, 9], [250, 0, 0], [0, 0, 250], [1, 2, 3], [200, 200, 200]], np.uint8)
    image = np.zeros((6, 7, 3), np.uint8)
    image[:, 3:] = [255, 0, 0]  # only entries 0 and 1 are used
    result = jaxquant.remap(image, palette)
    data = jaxquant.io.encode(result, keep_palette=True)
    with Image.open(_io.BytesIO(data)) as im:
        np.testing.assert_array_equal(np.array(im.getpalette(), np.uint8).reshape(-1, 3), palette)
        np.testing.assert_array_equal(np.asarray(im), np.asarray(result.indices))
    with Image.open(_io.BytesIO(jaxquant.io.encode(result))) as im:  # reordered, same pixels
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), np.asarray(result.image))
