"""The command line, called as main([...]) on tiny images in tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import jaxquant
from jaxquant.cli import main

FAST = ["--steps", "40", "--batch-size", "256", "--cache-dir", ""]


@pytest.fixture
def small_png(tmp_path, photo):
    path = tmp_path / "in.png"
    Image.fromarray(photo).save(path)
    return path


def test_compress_writes_indexed_png(tmp_path, small_png, capsys):
    out = tmp_path / "sub" / "out.png"
    before = small_png.read_bytes()
    assert main(["compress", str(small_png), "-k", "8", "-o", str(out), *FAST]) == 0
    text = capsys.readouterr().out
    for word in ("palette", "mse", "psnr", "bytes", "ratio", "time"):
        assert word in text
    with Image.open(out) as im:
        assert im.mode == "P"
        assert len(im.getpalette()) // 3 == 8
        assert len(np.unique(np.asarray(im))) <= 8
    assert small_png.read_bytes() == before  # the input is untouched


def test_compress_sample(tmp_path, capsys):
    out = tmp_path / "s.png"
    assert main(["compress", "--sample", "-k", "4", "-o", str(out), *FAST, "-q"]) == 0
    assert capsys.readouterr().out == ""
    with Image.open(out) as im:
        assert im.mode == "P"
        assert im.size == (768, 512)


def test_options_are_passed(tmp_path, small_png):
    out = tmp_path / "o.png"
    args = [
        "--optimizer",
        "sgd",
        "--rank",
        "3",
        "--init",
        "random",
        "--lloyd-steps",
        "0",
        "--seed",
        "3",
        "--lr",
        "0.5",
    ]
    assert main(["compress", str(small_png), "-k", "4", "-o", str(out), *FAST, *args]) == 0
    assert out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compress", "{missing}", "-k", "4", "-o", "{out}"], "no such file"),
        (["compress", "{text}", "-k", "4", "-o", "{out}"], "not a recognised image"),
        (["compress", "{dir}", "-k", "4", "-o", "{out}"], "is a directory"),
        (["compress", "{png}", "-k", "300", "-o", "{out}"], "at most 256 colours"),
        (["compress", "{png}", "-k", "4", "-o", "{png}"], "is an input file"),
        (
            ["compress", "-k", "4", "-o", "{out}"],
            "at least one INPUT file or directory, or --sample",
        ),
    ],
)
def test_user_errors_one_line_exit_2(tmp_path, small_png, capsys, args, message):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    names = dict(
        missing=tmp_path / "nope.png",
        text=text,
        dir=tmp_path,
        png=small_png,
        out=tmp_path / "out.png",
    )
    argv = [a.format(**{k: str(v) for k, v in names.items()}) for a in args]
    before = small_png.read_bytes()
    assert main([*argv, *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxquant: error: ")
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert not (tmp_path / "out.png").exists()
    assert small_png.read_bytes() == before


def test_an_existing_output_is_refused_unless_forced(tmp_path, small_png, capsys):
    out = tmp_path / "o.png"
    out.write_bytes(b"keep me")
    args = ["compress", str(small_png), "-k", "8", "-o", str(out), *FAST]
    assert main(args) == 2
    assert f"jaxquant: error: {out}: exists; pass --force to replace it" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    for force in ("--force", "-f", "--overwrite"):
        assert main([*args, force, "-q"]) == 0
        with Image.open(out) as im:
            assert im.mode == "P"


@pytest.mark.parametrize("name", ["o.jpg", "o.PNG.bmp", "o"])
def test_an_output_must_be_named_for_what_it_holds(tmp_path, small_png, capsys, name):
    out = tmp_path / name
    assert main(["compress", str(small_png), "-k", "8", "-o", str(out), *FAST]) == 2
    assert "the output must be named .png" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("command", ["compress", "compare"])
def test_every_k_flag_has_a_help_text(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "number of palette colours" in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"jaxquant {jaxquant.__version__}"


@pytest.mark.parametrize(
    "bad", [["-k", "0"], ["-k", "x"], ["--steps", "-1"], ["--optimizer", "lbfgs"]]
)
def test_bad_arguments_exit_2(tmp_path, small_png, capsys, bad):
    with pytest.raises(SystemExit) as e:
        main(
            [
                "compress",
                str(small_png),
                "-o",
                str(tmp_path / "o.png"),
                *(bad + (["-k", "4"] if bad[0] != "-k" else [])),
            ]
        )
    assert e.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
