"""``jaxquant compress`` with many files: tree mirroring, skip/resume, failures, processes."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from jaxquant import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# One small configuration for every test here, so they share compiled programs.
OPTS = ["-k", "4", "--steps", "20", "--batch-size", "64", "--cache-dir", ""]


def _image(path, seed, size=(16, 12)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


@pytest.fixture
def tree(tmp_path):
    """in/a.png, in/b.jpg, in/sub/c.png, in/sub/deeper/d.bmp, in/notes.txt, in/.hidden.png"""
    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    _image(src / "a.png", 0)
    _image(src / "b.jpg", 1)
    _image(src / "sub" / "c.png", 2, size=(20, 10))
    _image(src / "sub" / "deeper" / "d.bmp", 3)
    (src / "notes.txt").write_text("not an image")
    _image(src / ".hidden.png", 4)
    return src


def _digest(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _pngs(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))


def test_directory_recursive_mirrors_the_tree(tree, tmp_path, capsys):
    before = _digest(tree)
    out = tmp_path / "out"
    assert cli.main(["compress", str(tree), "-r", "--out-dir", str(out), *OPTS]) == 0
    assert _pngs(out) == ["a.png", "b.png", "sub/c.png", "sub/deeper/d.png"]
    for name in _pngs(out):
        with Image.open(out / name) as im:
            assert im.mode == "P"
            assert len(im.getcolors()) <= 4
    with Image.open(out / "sub" / "c.png") as im:
        assert im.size == (20, 10)
    assert _digest(tree) == before  # inputs untouched
    text = capsys.readouterr().out
    assert "4 done, 0 failed, 0 skipped" in text
    assert "ratio" in text
    assert "images/s" in text
    assert not list(out.rglob("*.tmp"))


def test_directory_without_recursive_takes_its_own_files(tree, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["compress", str(tree), "--out-dir", str(out), *OPTS, "-q"]) == 0
    assert _pngs(out) == ["a.png", "b.png"]
    # ... and says what it left out (the hidden file is not a subdirectory).
    err = capsys.readouterr().err
    assert f"jaxquant: note: {tree}: 1 subdirectory not entered (use --recursive)" in err


def test_a_run_that_skips_everything_prints_no_nan(tree, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["compress", str(tree), "--out-dir", str(out), *OPTS]
    assert cli.main(args) == 0
    capsys.readouterr()
    assert cli.main(args) == 0  # every output exists: all skipped
    text = capsys.readouterr().out
    assert "0 done, 0 failed, 2 skipped" in text
    assert "nan" not in text
    assert "ratio" not in text  # no bytes to compare


def test_existing_outputs_are_skipped_then_overwritten(tree, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["compress", str(tree), "--out-dir", str(out), *OPTS]
    assert cli.main(args) == 0
    (out / "a.png").unlink()  # as if the first run had been interrupted before a.png
    stamp = (out / "b.png").stat().st_mtime_ns
    capsys.readouterr()
    assert cli.main(args) == 0
    assert "1 done, 0 failed, 1 skipped" in capsys.readouterr().out
    assert (out / "b.png").stat().st_mtime_ns == stamp
    assert cli.main([*args, "--overwrite"]) == 0
    assert "2 done, 0 failed, 0 skipped" in capsys.readouterr().out


def test_bad_files_are_reported_and_skipped(tree, tmp_path, capsys):
    (tree / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (tree / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    missing = tmp_path / "missing.png"
    code = cli.main(["compress", str(tree), str(missing), "--out-dir", str(out), *OPTS])
    assert code == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("jaxquant: error:")]
    assert len(errors) == 3
    assert any(str(tree / "broken.png") in line for line in errors)
    assert any(str(tree / "empty.jpg") in line for line in errors)
    assert any(f"{missing}: no such file" in line for line in errors)
    assert "Traceback" not in captured.err
    assert "2 done, 3 failed" in captured.out
    assert _pngs(out) == ["a.png", "b.png"]


def test_a_file_gets_the_same_result_whatever_else_is_in_the_run(tree, tmp_path):
    alone, together = tmp_path / "alone", tmp_path / "together"
    assert cli.main(["compress", str(tree / "a.png"), "--out-dir", str(alone), *OPTS]) == 0
    assert cli.main(["compress", str(tree), "-r", "--out-dir", str(together), *OPTS]) == 0
    assert (alone / "a.png").read_bytes() == (together / "a.png").read_bytes()


def test_colliding_outputs_are_refused(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _image(src / "x.png", 0)
    _image(src / "x.jpg", 1)
    out = tmp_path / "out"
    assert cli.main(["compress", str(src), "--out-dir", str(out), *OPTS]) == 1
    assert "same output" in capsys.readouterr().err
    assert _pngs(out) == ["x.png"]


def test_output_dir_inside_the_input_tree_is_not_an_input(tree, capsys):
    out = tree / "quantized"
    args = ["compress", str(tree), "-r", "--out-dir", str(out), *OPTS]
    assert cli.main(args) == 0
    assert cli.main(args) == 0  # the outputs are not picked up as new inputs
    assert "0 done, 0 failed, 4 skipped" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "need --out-dir"),
        (["-o", "x.png"], "-o names one output"),
        (["--out-dir", "OUT", "--coordinator", "localhost:1"], "go together"),
    ],
)
def test_batch_usage_errors(tree, tmp_path, capsys, extra, message):
    extra = [str(tmp_path / "f") if e == "OUT" else e for e in extra]
    assert cli.main(["compress", str(tree), str(tree / "a.png"), *extra, *OPTS]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxquant: error:")
    assert message in err


def test_out_dir_that_is_a_file(tree, tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert cli.main(["compress", str(tree), "--out-dir", str(target), *OPTS]) == 2
    assert "not a directory" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_split_the_files(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        _image(src / f"img{i}.png", i)
    out = tmp_path / "out"
    port = _free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jaxquant.cli",
                "compress",
                str(src),
                "--out-dir",
                str(out),
                *OPTS,
                "--coordinator",
                f"127.0.0.1:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(i),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, stderr) in zip(procs, outs, strict=True):
        assert p.returncode == 0, stderr[-2000:]
    done = [int(stdout.split("images")[1].split("done")[0]) for stdout, _ in outs]
    assert sorted(done) == [2, 3]  # none done twice: the shares add up to the total ...
    assert _pngs(out) == [f"img{i}.png" for i in range(5)]  # ... and none lost


@pytest.mark.slow
@pytest.mark.parametrize("store", ["1", "0"])
def test_persistent_cache_second_run_compiles_nothing(tmp_path, store):
    """A second process on an image of a known bucket compiles nothing: with jaxquant's
    program store it does not even trace (no compile log at all); with JAX's cache alone
    (``JAXQUANT_PROGRAM_STORE=0``) it traces and finds the programs there."""
    for i in range(2):
        _image(tmp_path / f"img{i}.png", i, size=(30, 20))
    cache = tmp_path / "cache"
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_LOG_COMPILES="1")
    env["JAXQUANT_PROGRAM_STORE"] = store
    logs = []
    for i in range(2):
        args = ["compress", str(tmp_path / f"img{i}.png"), "-o", str(tmp_path / f"o{i}.png")]
        args += [*OPTS[:-2], "--cache-dir", str(cache)]
        proc = subprocess.run(
            [sys.executable, "-m", "jaxquant.cli", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        logs.append(proc.stderr)
    for program in ("fit_problem", "assign_colour_set"):
        assert f"Compiling jit({program})" in logs[0]
        assert f"cache hit for 'jit_{program}'" not in logs[0]
        if store == "1":  # loaded from the store: neither traced nor compiled
            assert f"jit({program})" not in logs[1]
        else:  # a new image of a known bucket: the fit and the remap from JAX's cache
            assert logs[1].count(f"Compiling jit({program})") == 1
            assert logs[1].count(f"cache hit for 'jit_{program}'") == 1
    if store == "1":
        assert len(os.listdir(cache / "programs")) >= 2


def test_format_rgb_writes_truecolour_for_any_k(tree, tmp_path, capsys):
    out = tmp_path / "big.png"
    args = ["compress", str(tree / "sub" / "c.png"), "-o", str(out), "--cache-dir", ""]
    assert cli.main([*args, "-k", "300", "--steps", "20", "--batch-size", "64"]) == 2
    assert "--format rgb" in capsys.readouterr().err
    assert not out.exists()
    code = cli.main([*args, "-k", "300", "--steps", "20", "--batch-size", "64", "--format", "rgb"])
    assert code == 0
    with Image.open(out) as im:
        assert im.mode == "RGB"
        assert im.size == (20, 10)
    # Batch mode writes truecolour too.
    outdir = tmp_path / "outdir"
    code = cli.main(["compress", str(tree), "--out-dir", str(outdir), *OPTS, "--format", "rgb"])
    assert code == 0
    with Image.open(outdir / "a.png") as im:
        assert im.mode == "RGB"
        assert len(im.getcolors()) <= 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--mode", "channel"], "take one input file"),
     (["--animate-steps", "x.gif"], "take one input file")],
)  # fmt: skip
def test_single_file_options_are_refused_in_batch_mode(tree, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert cli.main(["compress", str(tree), "--out-dir", str(out), *OPTS, *extra]) == 2
    assert message in capsys.readouterr().err
