"""Nothing lost: a batch run killed halfway (SIGINT, SIGKILL) and then run again.

Each test starts ``jaxquant compress`` on a folder of tiny images in a subprocess, waits
until the first outputs appear (so the run is mid-batch), signals it, checks that every
output present is a complete PNG, and re-runs the same command to finish the rest (the
re-run loads its program from the first run's compilation cache).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_FILES = 240
# Python ignores SIGINT when started with it ignored (background jobs of a shell without
# job control): restore the KeyboardInterrupt handler, as in an interactive terminal.
LAUNCH = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from jaxquant.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(NUM_FILES):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(src / f"{i:03d}.png")
    return src


def _cache(out) -> str:
    """The test run's compilation cache (tests/conftest.py), else one beside the outputs.

    Either way the re-run loads its programs from the first run's cache; the shared one
    also lets the second test load the first's.
    """
    shared = os.environ.get("JAXQUANT_TEST_XLA_CACHE")
    return os.path.abspath(shared) if shared else str(out) + ".cache"


def _command(src, out):
    return [
        sys.executable, "-c", LAUNCH, "compress", str(src), "--out-dir", str(out),
        "-k", "4", "--steps", "20", "--batch-size", "64", "--cache-dir", _cache(out),
        "--batch-images", "1", "--workers", "1", "--no-progress",
    ]  # fmt: skip


def _start_and_signal(src, out, sig):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen(
        _command(src, out), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and sum(1 for p in out.iterdir() if p.suffix == ".png") >= 3:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout, stderr


def _check_outputs(out):
    """Every .png present decodes completely; returns their names."""
    names = sorted(p.name for p in out.iterdir() if p.suffix == ".png")
    for name in names:
        with Image.open(out / name) as im:
            im.load()  # raises on a truncated file
            assert im.mode == "P"
            assert im.size == (8, 8)
    return names


def _rerun_completes(src, out):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        _command(src, out), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code", "word", "rerun"),
    [(signal.SIGINT, 130, "interrupted", True), (signal.SIGTERM, 143, "terminated", False)],
    ids=["SIGINT", "SIGTERM"],
)
def test_interrupted_batch_summarises_and_resumes(folder, tmp_path, sig, code, word, rerun):
    """Ctrl-C and SIGTERM alike: exit 130/143, an exact summary, no temporary left."""
    out = tmp_path / "out"
    got, stdout, stderr = _start_and_signal(folder, out, sig)
    assert got == code, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    assert f"{word}; finished outputs are complete, re-run to resume" in stderr, stderr
    done = _check_outputs(out)
    assert 3 <= len(done) < NUM_FILES
    # Each write is counted by its own thread, and the pool is drained before the
    # summary: the count is exact.
    reported = int(stdout.split("images")[1].split("done")[0])
    assert reported == len(done), stdout
    assert "0 failed, 0 skipped" in stdout, stdout
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    if not rerun:
        return
    stdout = _rerun_completes(folder, out)
    assert f"{NUM_FILES - len(done)} done, 0 failed, {len(done)} skipped" in stdout
    assert len(_check_outputs(out)) == NUM_FILES
    assert sorted(os.listdir(out)) == [f"{i:03d}.png" for i in range(NUM_FILES)]


@pytest.mark.slow
def test_sigkill_mid_batch_loses_nothing(folder, tmp_path):
    out = tmp_path / "out"
    code, _, _ = _start_and_signal(folder, out, signal.SIGKILL)
    assert code == -signal.SIGKILL
    done = _check_outputs(out)  # no partial .png: writes are atomic
    assert 3 <= len(done) < NUM_FILES
    # A temporary file may remain from a write cut short; the re-run removes it.
    stdout = _rerun_completes(folder, out)
    assert f"{NUM_FILES - len(done)} done, 0 failed, {len(done)} skipped" in stdout
    assert sorted(os.listdir(out)) == [f"{i:03d}.png" for i in range(NUM_FILES)]
    assert len(_check_outputs(out)) == NUM_FILES


def test_stale_temporaries_are_removed_only_for_our_outputs(tmp_path):
    from jaxquant.io import remove_stale_temps

    for name in (".a.png.k2j3h4g5.tmp", ".b.png.zz99xx11.tmp", ".a.png", "a.png.tmp", "c.png"):
        (tmp_path / name).write_bytes(b"x")
    assert remove_stale_temps([tmp_path / "a.png", tmp_path / "missing" / "d.png"]) == 1
    assert sorted(os.listdir(tmp_path)) == [".a.png", ".b.png.zz99xx11.tmp", "a.png.tmp", "c.png"]


def test_temporaries_of_long_names_fit_and_are_removed(tmp_path):
    """A 250-byte output name: its temporary stays under 255 bytes, and is found again."""
    from jaxquant import io

    target = tmp_path / ("é" * 120 + ".png")  # 244 bytes in UTF-8
    seen = []
    with io.atomic_write(target) as tmp:
        seen.append(tmp.name)
        assert len(os.fsencode(tmp.name)) < 255
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done"
    (tmp_path / seen[0]).write_bytes(b"left by a killed run")
    assert io.remove_stale_temps([target]) == 1
    assert os.listdir(tmp_path) == [target.name]
