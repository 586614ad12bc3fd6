"""The hostile battery: one test (or matrix) per class of fault a hostile user found.

1. files that must never be touched (inputs, another output of the run);
2. special files and links as outputs (the output-path matrix, for every command);
3. transparency (opaque stays opaque, transparent stays transparent, colour keys, PIL);
4. bounded work (FIFOs and devices are never opened, huge k on few colours is instant);
5. tracebacks (names too long, integers past every range);
6. wrong or silent results (truncated data, ``DIR/``, the suffix names the format);
7. messages (one line, control characters escaped, the right flag blamed).

CLI runs share one small configuration (``OPTS``) so their programs are compiled once.
"""

from __future__ import annotations

import contextlib
import io as _io
import os
import stat
import sys
import threading

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import jaxquant
from jaxquant import io
from jaxquant.cli import _parser, main
from tests.test_errors import png_bytes

K = 4
OPTS = ["-k", str(K), "--steps", "20", "--batch-size", "64", "--cache-dir", ""]
API = dict(num_steps=20, batch_size=64)
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _rgb(seed=0, shape=(12, 16, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(_rgb()).save(path)
    return path


def _error(capsys) -> str:
    """The one line a user error prints (and nothing else on stderr)."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("jaxquant: error: "), err
    assert "Traceback" not in err
    return err


def _snapshot(directory):
    """Every entry under a directory with its kind and bytes (links not followed)."""
    out = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            p = os.path.join(root, name)
            st_ = os.lstat(p)
            data = None
            if stat.S_ISREG(st_.st_mode):
                with open(p, "rb") as f:
                    data = f.read()
            elif stat.S_ISLNK(st_.st_mode):
                data = os.readlink(p)
            out[os.path.relpath(p, directory)] = (stat.S_IFMT(st_.st_mode), data)
    return out


# The three commands, each with the flags naming its main output and its secondary one.
COMMANDS = {
    "compress": (["compress", "{src}", *OPTS], "-o", "--animate-steps", ".png", ".gif"),
    "compare": (["compare", "{src}", *OPTS], "-o", "--histogram", ".png", ".png"),
    "sweep": (["sweep", "{src}", "--ks", "2", "--cache-dir", ""], "-o", "--plot", ".gif", ".png"),
}


def _argv(command, src, *extra):
    base = COMMANDS[command][0]
    return [a.format(src=src) for a in base] + [str(x) for x in extra]


# --------------------------------------------------------------------------------------
# 1. Files that must never be touched.


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("which", ["main", "secondary", "link-to-input"])
def test_no_output_may_be_an_input(tmp_path, src, capsys, command, which):
    _, main_flag, second_flag, main_suffix, second_suffix = COMMANDS[command]
    inp = src
    if command == "sweep" and which == "main":  # sweep writes GIF: an input GIF
        inp = tmp_path / "in.gif"
        Image.fromarray(_rgb()).save(inp)
    out = tmp_path / f"out{main_suffix}"
    if which == "main":
        extra = [main_flag, inp]
    elif which == "secondary":
        extra = [main_flag, out, second_flag, inp]
    else:
        link = tmp_path / f"link{main_suffix}"
        if main_suffix != inp.suffix:
            inp = tmp_path / f"in{main_suffix}"
            Image.fromarray(_rgb()).save(inp)
        link.symlink_to(inp)
        extra = [main_flag, link]
    before = _snapshot(tmp_path)
    assert main(_argv(command, inp, *extra, "--force")) == 2
    assert "is an input file; jaxquant never replaces an input" in _error(capsys)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_two_outputs_of_one_run_never_collide(tmp_path, src, capsys, command):
    _, main_flag, second_flag, main_suffix, _ = COMMANDS[command]
    out = tmp_path / f"out{main_suffix}"
    link = tmp_path / f"alias{main_suffix}"
    link.symlink_to(out)  # the same file under another name, not yet written
    for other in (out, link):
        assert main(_argv(command, src, main_flag, out, second_flag, other)) == 2
        assert "is also another output of this run" in _error(capsys)
    assert not out.exists()


def test_batch_never_writes_over_an_input(tmp_path, capsys):
    """An output that is (a link to) another file's input is refused, --force or not."""
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_rgb(1)).save(src / "a.png")
    Image.fromarray(_rgb(2)).save(src / "b.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").symlink_to(src / "b.png")
    before = (src / "b.png").read_bytes()
    assert main(["compress", str(src), "--out-dir", str(out), *OPTS, "--force", "-q"]) == 1
    err = capsys.readouterr().err
    assert "is an input file; jaxquant never replaces an input" in err
    assert (src / "b.png").read_bytes() == before
    assert (out / "b.png").is_file()  # the other file is done


# --------------------------------------------------------------------------------------
# 2. The output-path matrix: every command, every kind of path.


def _make(kind, tmp_path, suffix):
    """An output path of a kind; returns (path argument, file that must get the output)."""
    target = tmp_path / f"target{suffix}"
    if kind == "new":
        return tmp_path / f"new{suffix}", tmp_path / f"new{suffix}"
    if kind == "existing":
        target.write_bytes(b"old")
        return target, target
    if kind == "symlink":
        target.write_bytes(b"old")
        link = tmp_path / f"link{suffix}"
        link.symlink_to(target)
        return link, target
    if kind == "dangling":
        link = tmp_path / f"link{suffix}"
        link.symlink_to(tmp_path / "elsewhere" / f"made{suffix}")
        return link, tmp_path / "elsewhere" / f"made{suffix}"
    if kind == "slash":
        return f"{tmp_path / 'newdir'}/", None  # the file name comes from the input
    if kind == "fifo":
        os.mkfifo(target)
        return target, None
    if kind == "directory":
        d = tmp_path / f"dir{suffix}"
        d.mkdir()
        return d, None
    if kind == "device":
        return "/dev/null", None
    raise AssertionError(kind)


REFUSED = {
    "fifo": "is a FIFO (named pipe); jaxquant writes regular files",
    "directory": "is a directory; give an output file name",
    "device": "is a character device; jaxquant writes regular files",
    "existing": "exists; pass --force to replace it",
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_output_matrix_refusals(tmp_path, src, capsys, command, kind):
    _, flag, _, suffix, _ = COMMANDS[command]
    path, _ = _make(kind, tmp_path, suffix)
    before = _snapshot(tmp_path)
    dev_null = os.stat("/dev/null")
    assert main(_argv(command, src, flag, path)) == 2
    assert REFUSED[kind] in _error(capsys)
    assert _snapshot(tmp_path) == before
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode)
    assert after.st_rdev == dev_null.st_rdev


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("kind", ["new", "symlink", "dangling", "slash", "existing"])
def test_output_matrix_writes(tmp_path, src, capsys, command, kind):
    _, flag, _, suffix, _ = COMMANDS[command]
    path, target = _make(kind, tmp_path, suffix)
    assert main(_argv(command, src, flag, path, "--force", "-q")) == 0, capsys.readouterr().err
    if kind == "slash":
        target = tmp_path / "newdir" / f"in{suffix}"
    with Image.open(target) as im:
        assert im.format == ("PNG" if suffix == ".png" else "GIF")
    if kind in ("symlink", "dangling"):
        assert os.path.islink(path)  # the link stays a link; its target was written
    assert os.listdir(tmp_path).count("in.png") == 1


def test_secondary_outputs_follow_the_same_rules(tmp_path, src, capsys):
    os.mkfifo(tmp_path / "f.gif")
    for flags, words in [
        (["--animate-steps", tmp_path / "f.gif"], "is a FIFO"),
        (["--animate-steps", tmp_path / "x.png"], "must be named .gif"),
        (["--animate-steps", "/dev/null"], "is a character device"),
    ]:
        assert main(_argv("compress", src, "-o", tmp_path / "o.png", *flags)) == 2
        assert words in _error(capsys)
    assert main(_argv("compare", src, "-o", tmp_path / "c.png", "--histogram", tmp_path)) == 2
    assert "is a directory" in _error(capsys)
    assert sorted(os.listdir(tmp_path)) == ["f.gif", "in.png"]


class _Std:
    """A binary standard stream (not a terminal) for in-process runs."""

    def __init__(self, data: bytes = b""):
        self.raw = _io.BytesIO(data)
        self.text = _io.TextIOWrapper(self.raw, write_through=True)


def test_dash_is_standard_input_and_output(tmp_path, src, monkeypatch, capsys):
    stdin, stdout = _Std(src.read_bytes()), _Std()
    monkeypatch.setattr(sys, "stdin", stdin.text)
    monkeypatch.setattr(sys, "stdout", stdout.text)
    assert main(["compress", "-", "-o", "-", *OPTS]) == 0
    data = stdout.raw.getvalue()
    with Image.open(_io.BytesIO(data)) as im:
        assert im.mode == "P"
        assert im.size == (16, 12)
    assert "- -> -" in capsys.readouterr().err  # the summary moved to stderr
    # /dev/stdout is standard output too (never replaced by a regular file).
    monkeypatch.setattr(sys, "stdin", _Std(src.read_bytes()).text)
    assert main(["compare", "-", "-o", "/dev/stdout", *OPTS]) == 0
    assert os.path.islink("/dev/stdout") or stat.S_ISCHR(os.stat("/dev/stdout").st_mode)
    assert os.listdir(tmp_path) == ["in.png"]


def test_dash_refusals(tmp_path, src, monkeypatch, capsys):
    assert main(["compress", "-", str(src), "--out-dir", str(tmp_path / "o"), *OPTS]) == 2
    assert "standard input) is one image" in _error(capsys)
    monkeypatch.setattr(sys, "stdout", _Std().text)
    args = ["compress", str(src), "-o", "-", "--animate-steps", "-", *OPTS]
    assert main(args) == 2
    assert "standard output is already another output" in _error(capsys)


# --------------------------------------------------------------------------------------
# 3. Transparency.


def _rgba_regions(seed=0, h=24, w=32):
    """RGBA noise: rows 0-5 transparent, 6-8 translucent, the rest opaque."""
    rgba = _rgb(seed, (h, w, 4))
    rgba[:6, :, 3] = 0
    rgba[6:9, :, 3] = np.random.default_rng(seed).integers(1, 255, (3, w))
    rgba[9:, :, 3] = 255
    return rgba


def _check_opacity(image, result):
    a = np.asarray(image)[..., -1]
    out = np.asarray(result.image)[..., -1]
    assert (out[a == 255] == 255).all(), "opaque pixels lost opacity"
    assert (out[a == 0] == 0).all(), "transparent pixels became visible"
    palette_alpha = np.asarray(result.palette)[:, -1]
    if not ((a > 0) & (a < 255)).any():
        assert set(palette_alpha) <= {0, 255}, "translucent entries without translucent pixels"


@pytest.mark.parametrize("channels", [2, 4])
def test_opacity_is_exact_and_translucency_gets_few_entries(channels):
    rgba = _rgba_regions()
    image = rgba if channels == 4 else rgba[..., [0, 3]]
    r = jaxquant.quantize(jax.random.key(0), image, 8, **API)
    _check_opacity(image, r)
    alpha = np.asarray(r.palette)[:, -1]
    assert (alpha == 0).sum() == 1
    assert ((alpha > 0) & (alpha < 255)).sum() == 1  # 3 of 24 rows: 1 of 7 entries
    binary = image.copy()
    binary[..., -1] = np.where(image[..., -1] == 0, 0, 255)
    _check_opacity(binary, jaxquant.quantize(jax.random.key(0), binary, 8, **API))


def test_batch_keeps_opacity_like_quantize():
    images = [_rgba_regions(1), _rgba_regions(2)]
    keys = jax.random.split(jax.random.key(0), 2)
    for image, r, key in zip(
        images, jaxquant.quantize_batch(keys, images, 8, **API), keys, strict=True
    ):
        _check_opacity(image, r)
        single = jaxquant.quantize(key, image, 8, **API)
        np.testing.assert_array_equal(r.palette, single.palette)


def test_opacity_budget_edges():
    from jaxquant._fit import opacity_budget

    assert opacity_budget(1, (1.0, 1.0, 1.0)) == (0, 0, 1)
    assert opacity_budget(3, (1.0, 1.0, 1.0)) == (1, 1, 1)
    assert opacity_budget(256, (1.0, 0.0, 0.0)) == (256, 0, 0)
    assert opacity_budget(10, (0.0, 1e-9, 1.0)) == (0, 1, 9)
    assert opacity_budget(10, (0.0, 1.0, 1e-9)) == (0, 9, 1)


# Each new split of k = 6 between the opacity classes compiles its own fits; a dozen
# masks cover the splits that occur (the CI profile's 30 took 30 s for no new case).
@settings(max_examples=12)
@given(
    mask=st.lists(st.sampled_from([0, 128, 255]), min_size=16, max_size=16),
    seed=st.integers(0, 2**16),
)
def test_generated_alpha_masks_keep_opacity(mask, seed):
    """Any mix of transparent, translucent and opaque blocks, k = 6."""
    rgba = _rgb(seed, (16, 16, 4))
    blocks = np.repeat(np.asarray(mask, np.uint8).reshape(4, 4), 4, axis=0).repeat(4, axis=1)
    rgba[..., 3] = np.where(blocks == 128, rgba[..., 3] // 2 + 1, blocks)
    r = jaxquant.quantize(jax.random.key(seed), rgba, 6, **API)
    _check_opacity(rgba, r)


def test_colour_key_transparency_is_kept(tmp_path):
    """tRNS colour keys: 8- and 16-bit gray and 8-bit RGB PNGs keep their transparency."""
    gray = np.array([[0, 7, 200, 7]], np.uint8)
    p8 = tmp_path / "g8.png"
    p8.write_bytes(png_bytes(4, 1, 8, 0, gray, chunks=[(b"tRNS", b"\x00\x07")]))
    np.testing.assert_array_equal(io.load_image(p8)[0, :, 1], [255, 0, 255, 0])
    g16 = np.array([[0, 1000, 40000, 1000]], ">u2")
    p16 = tmp_path / "g16.png"
    p16.write_bytes(png_bytes(4, 1, 16, 0, g16, chunks=[(b"tRNS", (1000).to_bytes(2, "big"))]))
    got = io.load_image(p16)
    np.testing.assert_array_equal(got[0, :, 1], [255, 0, 255, 0])
    assert got[0, 2, 0] == 156  # round(40000 * 255 / 65535)
    rgb = np.array([[[1, 2, 3], [9, 9, 9]]], np.uint8)
    prgb = tmp_path / "rgb.png"
    prgb.write_bytes(png_bytes(2, 1, 8, 2, rgb, chunks=[(b"tRNS", b"\x00\x09\x00\x09\x00\x09")]))
    np.testing.assert_array_equal(io.load_image(prgb)[0, :, 3], [255, 0])
    # ... and the CLI writes it with its transparency.
    out = tmp_path / "o.png"
    assert main(["compress", str(p8), "-o", str(out), *OPTS, "-q"]) == 0
    written = io.load_image(out)
    np.testing.assert_array_equal(written[0, :, -1], [255, 0, 255, 0])
    np.testing.assert_array_equal(written[0, [0, 2], 0], [0, 200])


def test_pil_input_follows_load_image(tmp_path):
    rgba = _rgba_regions()
    for im in (Image.fromarray(rgba), Image.fromarray(rgba[..., [0, 3]], "LA")):
        path = tmp_path / f"{im.mode}.png"
        im.save(path)
        from_file = io.load_image(path)
        a = jaxquant.quantize(jax.random.key(0), im, 8, **API)
        b = jaxquant.quantize(jax.random.key(0), from_file, 8, **API)
        assert np.asarray(a.image).shape == from_file.shape
        np.testing.assert_array_equal(a.image, b.image)
    i16 = Image.fromarray(np.full((4, 4), 40000, np.uint16))
    assert i16.mode.startswith("I")
    r = jaxquant.quantize(jax.random.key(0), i16, 2)
    assert np.asarray(r.image).max() == 156


# --------------------------------------------------------------------------------------
# 4. Bounded work: nothing blocks, trivially lossless k is instant.


def _run_with_deadline(argv, seconds=120):
    """main(argv) in a thread; fails (instead of hanging the suite) if it blocks."""
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("rc", main(argv)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{argv} blocked"
    return box["rc"]


def test_fifo_and_device_inputs_never_block(tmp_path, capsys):
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    assert _run_with_deadline(["compress", str(fifo), "-o", str(tmp_path / "o.png"), *OPTS]) == 2
    assert "is a FIFO (named pipe), not a regular file" in _error(capsys)
    assert _run_with_deadline(["compare", "/dev/zero", "-o", str(tmp_path / "c.png"), *OPTS]) == 2
    assert "is a character device, not a regular file" in _error(capsys)
    with pytest.raises(io.ImageReadError, match="FIFO"):
        io.load_image(fifo)


def test_a_fifo_among_batch_inputs_is_skipped(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_rgb()).save(src / "a.png")
    os.mkfifo(src / "b.png")
    out = tmp_path / "out"
    argv = ["compress", str(src / "a.png"), str(src / "b.png"), "--out-dir", str(out), *OPTS]
    assert _run_with_deadline([*argv, "-q"]) == 1
    assert "b.png: is a FIFO (named pipe), not a regular file" in capsys.readouterr().err
    assert os.listdir(out) == ["a.png"]
    # In a directory, non-regular files are not images: not even reported.
    assert _run_with_deadline(["compress", str(src), "--out-dir", str(out), *OPTS, "-q"]) == 0


def test_any_k_at_or_above_the_distinct_colours_is_lossless_at_once(tmp_path, capsys):
    image = _rgb(3, (48, 128, 3))  # 6,144 pixels, all distinct
    path = tmp_path / "in.png"
    Image.fromarray(image).save(path)
    out = tmp_path / "o.png"
    assert main(["compress", str(path), "-k", "100000", "--format", "rgb", "-o", str(out)]) == 0
    np.testing.assert_array_equal(io.load_image(out), image)
    r = jaxquant.quantize(jax.random.key(0), image, 2**24)  # the largest k
    assert float(r.mse) == 0.0
    assert np.asarray(r.losses).size == 0


# --------------------------------------------------------------------------------------
# 5. No traceback: names the system refuses, integers past every range.


@pytest.mark.parametrize("where", ["input", "output", "secondary"])
def test_names_over_255_bytes(tmp_path, src, capsys, where):
    long = tmp_path / ("a" * 300 + ".png")
    out = tmp_path / "o.png"
    argv = {
        "input": ["compress", str(long), "-o", str(out)],
        "output": ["compress", str(src), "-o", str(long)],
        "secondary": ["compare", str(src), "-o", str(out), "--histogram", str(long)],
    }[where]
    assert main([*argv, *OPTS]) == 2
    assert "name too long" in _error(capsys)


def _int_flags():
    """Every integer flag of every command with its documented range."""
    parser = _parser.build_parser()
    found = []
    for command, sub in parser._subparsers._group_actions[0].choices.items():  # noqa: SLF001
        for action in sub._actions:  # noqa: SLF001
            kind = action.type
            if getattr(kind, "minimum", None) is not None:
                found.append((command, action.option_strings[0], kind.minimum, kind.maximum))
    return found


INT_FLAGS = _int_flags()


def test_every_integer_flag_is_documented_with_its_range():
    with open(os.path.join(os.path.dirname(__file__), "..", "docs", "errors.md")) as f:
        doc = f.read()
    assert len(INT_FLAGS) >= 12
    for _, flag, lo, hi in INT_FLAGS:
        assert f"`{flag}`" in doc, flag
        assert f"{lo:,}..{hi:,}" in doc.replace("\\", ""), (flag, lo, hi)


def _parse(command, flag, value):
    base = {
        "compress": ["compress", "x.png"],
        "compare": ["compare", "x.png"],
        "palette": ["palette", "x.png"],
    }
    argv = [*base.get(command, ["sweep", "x.png"]), "-o", "o.gif"]
    if flag not in ("-k",):
        argv += ["-k", "4"] if command != "sweep" else []
    if flag == "--ks":
        argv += ["--ks", value]
    else:
        argv += [flag, value]
    return _parser.build_parser().parse_args(argv)


@pytest.mark.parametrize(("command", "flag", "lo", "hi"), INT_FLAGS)
def test_integer_flags_at_and_past_their_bounds(command, flag, lo, hi, capsys):
    assert getattr(_parse(command, flag, str(lo)), "k", 4) is not None
    _parse(command, flag, str(hi))
    for bad in (lo - 1, hi + 1, 10**20, 2**64):
        with pytest.raises(SystemExit) as e:
            _parse(command, flag, str(bad))
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert f"must be in {lo:,}..{hi:,}" in err
        assert "Traceback" not in err


@given(value=st.one_of(st.integers(), st.text(max_size=30)))
def test_generated_seed_values_never_traceback(value):
    text = str(value)
    err = _io.StringIO()
    argv = ["compress", "x.png", "-k", "4", "--seed", text]
    with contextlib.redirect_stderr(err):
        try:
            args = _parser.build_parser().parse_args(argv)
        except SystemExit as e:
            code = e.code
        else:
            code = None
    if code is None:
        assert 0 <= args.seed <= _parser.MAX_SEED
    else:
        assert code == 2
        assert "Traceback" not in err.getvalue()


def test_api_integers_past_their_range_raise_value_error():
    image = _rgb()
    for k in (0, -1, 2**24 + 1, 10**20):
        with pytest.raises(ValueError, match="k must be"):
            jaxquant.quantize(jax.random.key(0), image, k)
    with pytest.raises(ValueError, match="num_steps"):
        jaxquant.quantize(jax.random.key(0), image, 4, num_steps=10**20)


# --------------------------------------------------------------------------------------
# 6. Wrong or silent results.


def test_truncated_png_is_an_error_unless_allowed(tmp_path, capsys):
    rows = _rgb(4, (64, 64, 3))
    full = png_bytes(64, 64, 8, 2, rows)
    raw = b"".join(b"\0" + r.tobytes() for r in rows[:10])
    short = full.replace(full[full.index(b"IDAT") - 4 : full.index(b"IEND") - 4], b"")
    body = __import__("zlib").compress(raw)
    crc = __import__("zlib").crc32(b"IDAT" + body) & 0xFFFFFFFF
    idat = len(body).to_bytes(4, "big") + b"IDAT" + body + crc.to_bytes(4, "big")
    cut = short[: short.index(b"IEND") - 4] + idat + short[short.index(b"IEND") - 4 :]
    path = tmp_path / "cut.png"
    path.write_bytes(cut)
    out = tmp_path / "o.png"
    assert main(["compress", str(path), "-o", str(out), *OPTS]) == 2
    assert "stops after 10 of its 64 rows" in _error(capsys)
    assert not out.exists()
    assert main(["compress", str(path), "-o", str(out), *OPTS, "-q", "--allow-truncated"]) == 0
    assert out.exists()


def test_the_suffix_names_the_format(tmp_path, src, capsys):
    out = tmp_path / "c.bmp"
    assert main(["compare", str(src), "-o", str(out), *OPTS, "-q"]) == 0
    with Image.open(out) as im:
        assert im.format == "BMP"
    assert main(["compress", str(src), "-o", str(tmp_path / "x.jpg"), *OPTS]) == 2
    assert "must be named .png" in _error(capsys)


def test_steps_0_with_animate_steps_writes_nothing(tmp_path, src, capsys):
    argv = ["compress", str(src), "-o", str(tmp_path / "o.png"), "--animate-steps"]
    assert main([*argv, str(tmp_path / "a.gif"), *OPTS, "--steps", "0"]) == 2
    assert "--steps 0 runs none" in _error(capsys)
    assert os.listdir(tmp_path) == ["in.png"]


# --------------------------------------------------------------------------------------
# 7. Messages.


def test_output_and_out_dir_together(tmp_path, src, capsys):
    argv = ["compress", str(src), "-o", str(tmp_path / "x.png"), "--out-dir", str(tmp_path)]
    assert main([*argv, *OPTS]) == 2
    assert "give -o (one output file) or --out-dir" in _error(capsys)


def test_non_finite_rank_blames_the_rank(src, capsys):
    with pytest.raises(SystemExit):
        main(["compress", str(src), "-o", "x.png", *OPTS, "--rank", "inf"])
    assert "argument --rank: must be a finite number" in capsys.readouterr().err


def test_numpy_scalars_are_accepted_as_options():
    image = _rgb()
    r = jaxquant.quantize(
        jax.random.key(0),
        image,
        np.int64(4),
        learning_rate=np.float32(0.01),
        num_steps=np.int32(10),
        batch_size=np.int64(32),
    )
    assert np.asarray(r.palette).shape == (4, 3)


NAMES = st.text(
    alphabet=st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=40,
).map(lambda s: s + ".png")


@given(name=st.one_of(NAMES, st.sampled_from(["-x.png", "a\nb.png", "\t.png", "é" * 200 + ".png"])))
def test_generated_file_names_give_one_line_errors(tmp_path_factory, name):
    """Missing inputs of any name (newlines, leading dash, unicode, long): one line."""
    d = tmp_path_factory.mktemp("names")
    missing = os.path.join(d, name)
    err = _io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["compress", "-o", str(d / "o.png"), *OPTS, "--", missing])
    text = err.getvalue()
    assert rc == 2, text
    assert text.count("\n") == 1, text
    assert text.startswith("jaxquant: error: "), text
    assert io.display(missing) in text
    assert os.listdir(d) == []


@given(name=NAMES)
def test_generated_output_names_are_written_exactly(tmp_path_factory, name):
    d = tmp_path_factory.mktemp("out")
    image = _rgb()
    result = jaxquant.remap(image, np.array([[0, 0, 0], [255, 255, 255]], np.uint8))
    path = io.check_output(os.path.join(d, name))
    io.save(result, path)
    assert os.listdir(d) == [name]
    np.testing.assert_array_equal(io.load_image(path), np.asarray(result.image))
