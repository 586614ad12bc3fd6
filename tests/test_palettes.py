"""Palette files: every format round-trips; bad files get one-line errors naming them."""

import numpy as np
import pytest

from jaxquant import palettes


@pytest.mark.parametrize("k", [1, 2, 5, 16, 17, 256])
@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("suffix", palettes.PALETTE_SUFFIXES)
def test_round_trip(tmp_path, k, channels, suffix):
    pal = np.random.default_rng(k).integers(0, 256, (k, channels), dtype=np.uint8)
    path = tmp_path / f"p{suffix}"
    palettes.write_palette(path, pal)
    back = palettes.read_palette(path)
    expected = pal[:, :3] if suffix == ".gpl" else pal  # GIMP palettes hold no alpha
    np.testing.assert_array_equal(back, expected)


def test_image_colours(tmp_path):
    from PIL import Image

    pixels = np.zeros((4, 4, 3), np.uint8)
    pixels[0, 0] = [255, 0, 0]
    Image.fromarray(pixels).save(tmp_path / "rgb.png")
    assert palettes.read_palette(tmp_path / "rgb.png").tolist() == [[0, 0, 0], [255, 0, 0]]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.txt", "#fff\nnope\n", "a.txt line 2: 'nope' is not a colour"),
        ("a.txt", "1 2 300\n", "a.txt line 1: '1 2 300' is not 3 or 4 numbers in 0..255"),
        ("a.txt", "; only a comment\n", "a.txt: no colours"),
        ("a.json", "[1, 2", "a.json: not valid JSON"),
        ("a.json", '["#fff", [1, 2]]', "a.json entry 1"),
        ("a.gpl", "0 0 0\n", "a.gpl: not a GIMP palette"),
        ("a.png", "not an image", "a.png: not a palette file or an image"),
    ],
)
def test_bad_files(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(palettes.PaletteError, match="^" + str(tmp_path)) as e:
        palettes.read_palette(path)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_parse_colours():
    assert palettes.parse_colours("#000, #ffffff").tolist() == [[0, 0, 0], [255, 255, 255]]
    with pytest.raises(palettes.PaletteError, match="'#12' is not a colour"):
        palettes.parse_colours("#000,#12")


def test_write_refuses_too_many_for_png(tmp_path):
    with pytest.raises(ValueError, match="at most 256 colours"):
        palettes.write_palette(tmp_path / "p.png", np.zeros((257, 3), np.uint8))
    palettes.write_palette(tmp_path / "p.txt", np.zeros((257, 3), np.uint8))
    assert palettes.read_palette(tmp_path / "p.txt").shape == (257, 3)
