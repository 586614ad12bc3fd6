"""``jaxquant compress``'s pngquant conventions: dithering, formats, --ext, --skip-if-larger,
--speed, --quality, --strip, -v; called as main([...]) on tiny images in tmp_path."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from jaxquant.cli import main
from jaxquant.cli._parser import EXIT_QUALITY, EXIT_SKIPPED, SPEEDS
from jaxquant.cli.compress import speed_preset

FAST = ["--steps", "40", "--batch-size", "256", "--cache-dir", ""]


@pytest.fixture
def small_png(tmp_path, photo):
    path = tmp_path / "in.png"
    Image.fromarray(photo).save(path)
    return path


def _decoded(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_runs_are_on_by_default_and_make_a_smaller_file(tmp_path, small_png, capsys):
    outs = {}
    for label, extra in (("default", []), ("exact", ["--runs", "0"]), ("more", ["--runs", "4"])):
        outs[label] = tmp_path / f"{label}.png"
        assert (
            main(
                ["compress", str(small_png), "-k", "8", "-o", str(outs[label]), *FAST, "-v", *extra]
            )
            == 0
        )
    printed = capsys.readouterr().out
    assert printed.count("runs 1,") == 1
    assert printed.count("runs 4,") == 1
    size = {label: os.path.getsize(path) for label, path in outs.items()}
    assert size["more"] < size["default"] < size["exact"]
    # the same palette, other choices along the rows
    colours = [{tuple(c) for c in _decoded(p).reshape(-1, 3)} for p in outs.values()]
    assert colours[0] <= colours[1]
    assert colours[2] <= colours[1]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dither", "fs"], "not with --dither fs"),
        (["--quality", "50-90"], "not with --quality"),
        (["--mode", "channel"], "not with --mode channel"),
    ],
)
def test_runs_conflicts(tmp_path, small_png, capsys, extra, message):
    argv = ["compress", str(small_png), "-o", str(tmp_path / "o.png"), "--runs", "1", *FAST]
    if "--quality" not in extra:
        argv += ["-k", "8"]
    assert main([*argv, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("method", ["fs", "ordered"])
def test_dither_writes_a_dithered_image(tmp_path, small_png, capsys, method):
    plain, dithered = tmp_path / "plain.png", tmp_path / "d.png"
    assert main(["compress", str(small_png), "-k", "4", "-o", str(plain), *FAST, "-q"]) == 0
    args = ["compress", str(small_png), "-k", "4", "-o", str(dithered), "--dither", method]
    assert main([*args, *FAST]) == 0
    assert "mse" in capsys.readouterr().out
    a, b = _decoded(plain), _decoded(dithered)
    assert len(np.unique(b.reshape(-1, 3), axis=0)) <= 4
    assert (a != b).any()  # the same palette, other choices


def test_dither_level_zero_is_no_dithering(tmp_path, small_png):
    outs = []
    for extra in ([], ["--dither", "fs", "--dither-level", "0"]):
        out = tmp_path / f"o{len(outs)}.png"
        argv = ["compress", str(small_png), "-k", "6", "-o", str(out), *FAST, "-q", *extra]
        assert main(argv) == 0
        outs.append(_decoded(out))
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize(("name", "mode"), [("o.png", "P"), ("o.gif", "P"), ("o.webp", None)])
def test_the_format_follows_the_suffix(tmp_path, small_png, name, mode):
    out = tmp_path / name
    assert main(["compress", str(small_png), "-k", "8", "-o", str(out), *FAST, "-q"]) == 0
    with Image.open(out) as im:
        assert im.format == {"png": "PNG", "gif": "GIF", "webp": "WEBP"}[name.split(".")[1]]
        if mode:
            assert im.mode == mode
    assert len(np.unique(_decoded(out).reshape(-1, 3), axis=0)) <= 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "{d}/o.png", "--format", "gif"], "must be named .gif"),
        (["-o", "{d}/o.jpg"], ".png"),
        (["--ext", "-x.png", "-o", "{d}/o.png"], "not both"),
        (["--ext", "a/b.png"], "file-name suffix"),
        (["--mode", "channel", "--dither", "fs", "-o", "{d}/o.png"], "--mode vector"),
        (["--mode", "channel", "--quality", "50-90", "-o", "{d}/o.png"], "--mode vector"),
        (["--quality", "90-50", "-o", "{d}/o.png"], "--quality 90-50"),
        (["--quality", "abc", "-o", "{d}/o.png"], "--quality abc"),
    ],
)
def test_bad_output_options_are_one_line(tmp_path, small_png, capsys, args, message):
    before = small_png.read_bytes()
    argv = ["compress", str(small_png), "-k", "8", *(a.format(d=tmp_path) for a in args)]
    assert main([*argv, *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxquant: error: ")
    assert message in err
    assert err.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["in.png"]
    assert small_png.read_bytes() == before


def test_k_or_quality_is_required(tmp_path, small_png, capsys):
    assert main(["compress", str(small_png), "-o", str(tmp_path / "o.png"), *FAST]) == 2
    assert "-k K, or --quality" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--dither-level", "2"], ["--dither", "floyd"], ["--speed", "11"]])
def test_bad_flag_values_exit_2(tmp_path, small_png, capsys, bad):
    with pytest.raises(SystemExit) as e:
        main(["compress", str(small_png), "-k", "4", "-o", str(tmp_path / "o.png"), *bad])
    assert e.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_ext_writes_next_to_each_input(tmp_path, photo, capsys):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(photo).save(a)
    Image.fromarray(photo[::-1]).save(b)
    assert main(["compress", str(a), "-k", "4", "--ext", "-fs8.png", *FAST, "-q"]) == 0
    assert (tmp_path / "a-fs8.png").exists()
    # Many inputs (batch mode): each next to its own; earlier outputs are not inputs.
    assert main(["compress", str(tmp_path), "-k", "4", "--ext", "-fs8.png", *FAST, "-q", "-f"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["a-fs8.png", "a.png", "b-fs8.png", "b.png"]


def test_skip_if_larger_keeps_the_input(tmp_path, capsys):
    # A one-pixel grey PNG (no palette chunk) cannot shrink: nothing is written, exit 98.
    src = tmp_path / "tiny.png"
    Image.new("L", (1, 1)).save(src)
    out = tmp_path / "o.png"
    code = main(["compress", str(src), "-k", "2", "-o", str(out), "--skip-if-larger", *FAST])
    assert code == EXIT_SKIPPED == 98
    err = capsys.readouterr().err
    assert "not smaller than the input" in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_skip_if_larger_writes_what_is_smaller(tmp_path, small_png):
    out = tmp_path / "o.png"
    argv = ["compress", str(small_png), "-k", "4", "-o", str(out), "--skip-if-larger", *FAST]
    assert main([*argv, "-q"]) == 0
    assert out.stat().st_size < small_png.stat().st_size


def test_skip_if_larger_in_batch_mode_is_counted(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.new("L", (1, 1)).save(src / "t.png")
    out = tmp_path / "out"
    argv = ["compress", str(src), "-k", "2", "--out-dir", str(out), "--skip-if-larger"]
    assert main([*argv, *FAST, "--no-progress"]) == 0
    assert "1 kept (result not smaller)" in capsys.readouterr().out
    assert not (out / "t.png").exists()


def test_speed_presets():
    assert speed_preset(None, 64, {"num_steps": None}) == {"num_steps": None}
    assert speed_preset(4, 64, {"num_steps": None, "num_lloyd_steps": None}) == {
        "num_steps": None,
        "num_lloyd_steps": None,
    }
    slow = speed_preset(1, 64, {"num_steps": None, "num_lloyd_steps": None})
    fast = speed_preset(10, 64, {"num_steps": None, "num_lloyd_steps": None})
    assert slow["num_steps"] > 1000 > 100 >= fast["num_steps"]
    assert slow["num_lloyd_steps"] == SPEEDS[1][1]
    # Explicit options win over the preset.
    assert speed_preset(1, 64, {"num_steps": 7, "num_lloyd_steps": 0}) == {
        "num_steps": 7,
        "num_lloyd_steps": 0,
    }


def test_speed_runs(tmp_path, small_png):
    out = tmp_path / "o.png"
    argv = ["compress", str(small_png), "-k", "4", "-o", str(out), "--speed", "10"]
    assert main([*argv, "--cache-dir", "", "-q"]) == 0
    assert out.exists()


def test_verbose_says_more(tmp_path, small_png, capsys):
    out = tmp_path / "o.png"
    argv = ["compress", str(small_png), "-k", "4", "-o", str(out), *FAST, "-v"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    for word in ("options", "timings", "metadata", "dither none"):
        assert word in text
    with pytest.raises(SystemExit):
        main([*argv, "-q"])  # -q and -v exclude each other


def test_quality_picks_k_and_reports_it(tmp_path, small_png, capsys):
    out = tmp_path / "o.png"
    argv = ["compress", str(small_png), "--quality", "0-40", "-o", str(out), *FAST]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "quality" in text
    with Image.open(out) as im:
        assert len(im.getpalette()) // 3 < 256


def test_quality_below_minimum_exits_99_and_writes_nothing(tmp_path, small_png, capsys):
    out = tmp_path / "o.png"
    argv = ["compress", str(small_png), "-k", "2", "--quality", "99-100", "-o", str(out), *FAST]
    assert main(argv) == EXIT_QUALITY == 99
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "quality" in err
    assert not out.exists()


def test_metadata_is_kept_unless_stripped(tmp_path, photo):
    src = tmp_path / "icc.png"
    icc = b"\x00" * 128 + b"fake but carried"  # PNG stores the profile as given
    Image.fromarray(photo).save(src, icc_profile=icc)
    kept, stripped = tmp_path / "k.png", tmp_path / "s.png"
    assert main(["compress", str(src), "-k", "4", "-o", str(kept), *FAST, "-q"]) == 0
    assert main(["compress", str(src), "-k", "4", "-o", str(stripped), *FAST, "-q", "--strip"]) == 0
    with Image.open(kept) as im:
        assert im.info.get("icc_profile") == icc
    with Image.open(stripped) as im:
        assert "icc_profile" not in im.info


def test_the_command_exits_fast_with_its_code_and_complete_output(tmp_path, small_png):
    # `jaxquant` (console_main) leaves with os._exit once JAX is loaded: the exit code,
    # the summary on stdout and the output file must all survive that.
    import subprocess
    import sys

    out = tmp_path / "o.png"
    cmd = [sys.executable, "-m", "jaxquant.cli", "compress", str(small_png), *FAST]
    done = subprocess.run([*cmd, "-k", "4", "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"-> {out}" in done.stdout
    with Image.open(out) as im:
        assert im.mode == "P"
    bad = tmp_path / "q.png"
    done = subprocess.run(
        [*cmd, "-k", "2", "--quality", "99-100", "-o", str(bad)], capture_output=True, text=True
    )
    assert done.returncode == EXIT_QUALITY
    assert "below the minimum 99" in done.stderr
    assert not bad.exists()
