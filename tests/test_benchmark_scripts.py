"""The benchmark scripts run from a clone: ``--help`` works, ``--data`` says where CQ100
comes from, and a missing or empty data folder is one line, exit status 2."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))
# Scripts that read no photographs: the packaged sample photo, or synthetic data.
NO_DATA = {"bench_first_call.py", "bench_kernels.py", "bench_memory.py"}
# Required arguments other than --data, for the scripts that have some.
REQUIRED = {"gallery_dither.py": ["--out", "unused"], "compare_revisions.py": ["--old", "."]}


def _data_module():
    spec = importlib.util.spec_from_file_location("bench_data", BENCHMARKS / "_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(args, cwd):
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_every_script_is_listed():
    assert len(SCRIPTS) > 20
    assert NO_DATA <= set(SCRIPTS)
    assert set(REQUIRED) <= set(SCRIPTS)


def test_photos_lists_pngs_sorted_and_limited(tmp_path):
    data = _data_module()
    for name in ("b.png", "a.PNG", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "d.png").mkdir()
    assert [p.name for p in data.photos(tmp_path)] == ["a.PNG", "b.png"]
    assert [p.name for p in data.photos(tmp_path, 1)] == ["a.PNG"]


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_photos_exits_with_one_line(tmp_path, capsys, make):
    data = _data_module()
    folder = tmp_path / "img"
    if make == "empty":
        folder.mkdir()
        (folder / "notes.txt").write_text("no photos here")
    with pytest.raises(SystemExit) as exit_info:
        data.photos(folder)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert str(folder) in err
    assert "error:" in err


def test_help_names_cq100_source_and_licence():
    data = _data_module()
    for needle in ("Celebi", "033019", "data.mendeley.com/datasets/vw5ys9hfxw", "CC BY-SA 4.0"):
        assert needle in data.CQ100


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_script_help_and_missing_data(script, tmp_path):
    """``--help`` works from any directory; a data folder with no PNG is one line."""
    helped = _run([str(BENCHMARKS / script), "--help"], cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    text = " ".join(helped.stdout.split())  # argparse wraps lines
    if script in NO_DATA:
        assert "--data" not in text
        assert "Reads no photographs" in text
        return
    assert "--data DIR" in text
    assert "Celebi" in text
    assert "CC BY-SA 4.0" in text
    empty = tmp_path / "empty"
    empty.mkdir()
    failed = _run(
        [str(BENCHMARKS / script), "--data", str(empty), *REQUIRED.get(script, [])], cwd=tmp_path
    )
    assert failed.returncode == 2, failed.stderr
    assert failed.stdout == ""
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(empty) in lines[0]
    assert "no PNG photographs" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # nothing written
