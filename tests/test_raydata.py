"""Ray Data: jaxquant.raydata and ``compress --engine ray`` against a real local Ray.

Slow (a local Ray instance starts in seconds and its actors compile their programs);
skipped when Ray is not installed (``pip install "jaxquant[ray]"``; CI installs it).
"""

from __future__ import annotations

import io
import os
import signal
import time

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray")

from jaxquant import raydata  # noqa: E402
from jaxquant.cli import main  # noqa: E402
from jaxquant.cli.ray_engine import MANIFEST  # noqa: E402

# One local Ray instance for the module: its tests stay on one pytest-xdist worker
# (`--dist loadgroup` in .ci/run).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

FIT = dict(num_steps=20, batch_size=64)
CLI_FIT = ["-k", "4", "--steps", "20", "--batch-size", "64", "--cache-dir", ""]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def images(tmp_path):
    """A small tree of PNGs (two sizes, one grey) and one file that is not an image."""
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for i in range(7):
        shape = (24, 32, 3) if i % 2 else (20, 20, 3)
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        folder = src / "sub" if i > 4 else src
        Image.fromarray(pixels).save(folder / f"im{i}.png")
    Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(src / "grey.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return src


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im)


def test_compress_files_rows_and_a_corrupt_file(local_ray, images):
    files = sorted(str(p) for p in images.rglob("*.png"))
    rows = list(
        raydata.compress_files(files, 4, images_per_batch=3, cache_dir="", **FIT).iter_rows()
    )
    assert sorted(r["path"] for r in rows) == files  # one row per file, none twice
    by_path = {r["path"]: r for r in rows}
    broken = by_path[str(images / "broken.png")]
    assert broken["status"] == "failed"
    assert "broken.png" in broken["error"]
    for path, row in by_path.items():
        if path.endswith("broken.png"):
            continue
        assert row["status"] == "ok", row["error"]
        decoded = _decode(row["data"])
        with Image.open(path) as im:
            assert decoded.shape[:2] == (im.height, im.width)
        assert row["bytes_in"] == os.path.getsize(path)
        assert 0 <= row["mse"] < 1e4


def test_a_dataset_of_decoded_images(local_ray, images):
    """ray.data.read_images's Dataset (an ``image`` column) works, keyed by the pixels
    when it has no paths, and gives what the same image gives from a file."""
    import jaxquant

    files = sorted(str(p) for p in images.glob("im*.png"))
    arrays = [jaxquant.load_image(f) for f in files]
    ds = ray.data.from_items([{"image": a} for a in arrays])
    rows = list(raydata.compress_files(ds, 4, cache_dir="", **FIT).iter_rows())
    assert len(rows) == len(files)
    decoded = sorted(_decode(r["data"]).tobytes() for r in rows)
    assert all(r["status"] == "ok" for r in rows)
    # named as its file is: the same bytes as from the file
    named = ray.data.from_items(
        [{"image": a, "name": f} for a, f in zip(arrays, files, strict=True)]
    )
    from_arrays = {
        r["name"]: r["data"]
        for r in raydata.compress_files(named, 4, cache_dir="", **FIT).iter_rows()
    }
    from_files = {
        r["path"]: r["data"]
        for r in raydata.compress_files(files, 4, cache_dir="", **FIT).iter_rows()
    }
    assert from_arrays == from_files
    assert len(decoded) == len(files)


def test_results_do_not_depend_on_batches_or_actors(local_ray, images):
    files = sorted(str(p) for p in images.rglob("im*.png"))
    runs = [
        {
            r["path"]: r["data"]
            for r in raydata.compress_files(
                files, 4, images_per_batch=size, concurrency=actors, cache_dir="", **FIT
            ).iter_rows()
        }
        for size, actors in ((1, 1), (4, 2))
    ]
    assert runs[0] == runs[1]


def _actor_pids() -> list[int]:
    """The processes of live Compressor actors (their title names the class)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if b"MapBatches(Compressor)" in cmdline:
                pids.append(int(entry))
    return pids


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the actor through /proc")
def test_a_killed_worker_is_redone_and_every_output_is_written_once(local_ray, tmp_path):
    rng = np.random.default_rng(1)
    src = tmp_path / "many"
    src.mkdir()
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(src / f"{i}.png")
    files = sorted(str(p) for p in src.iterdir())
    before = set(_actor_pids())  # actors of earlier datasets may still be stopping
    ds = raydata.compress_files(files, 4, images_per_batch=2, cache_dir="", **FIT)
    rows = iter(ds.iter_rows())
    got = [next(rows)]  # the actor is up and has compiled its program
    mine = sorted(set(_actor_pids()) - before)
    assert mine  # (under load, an earlier dataset's actor may still be starting: all go)
    for pid in mine:
        os.kill(pid, signal.SIGKILL)
    got += list(rows)
    assert sorted(r["path"] for r in got) == files  # every file once: none lost, none twice
    for row in got:
        assert row["status"] == "ok", row["error"]
        assert _decode(row["data"]).shape == (24, 24)  # indexed PNG: palette indices


def test_cli_engine_ray_writes_what_local_mode_writes(local_ray, images, tmp_path, capsys):
    local, remote = tmp_path / "local", tmp_path / "ray"
    args = ["compress", str(images), "-r", *CLI_FIT, "--no-progress"]
    assert main([*args, "--out-dir", str(local)]) == 1  # broken.png fails
    assert main([*args, "--out-dir", str(remote), "--engine", "ray"]) == 1
    err = capsys.readouterr().err
    assert "broken.png: not a recognised image file" in err or "broken.png" in err
    outputs = sorted(p.relative_to(local) for p in local.rglob("*.png"))
    assert outputs == sorted(p.relative_to(remote) for p in remote.rglob("*.png"))
    assert len(outputs) == 8
    for rel in outputs:
        assert (local / rel).read_bytes() == (remote / rel).read_bytes(), rel
    manifest = (remote / MANIFEST).read_text().splitlines()
    assert manifest[0] == "file\treason"
    assert len(manifest) == 2
    assert manifest[1].startswith(str(images / "broken.png") + "\t")
    assert not list(remote.rglob("*.tmp"))
    # Resume: finished outputs are skipped, the broken file is reported again.
    before = {rel: os.stat(remote / rel).st_mtime_ns for rel in outputs}
    time.sleep(0.01)
    assert main([*args, "--out-dir", str(remote), "--engine", "ray"]) == 1
    assert "8 skipped" in capsys.readouterr().out
    assert before == {rel: os.stat(remote / rel).st_mtime_ns for rel in outputs}
    # Without the broken file the manifest goes.
    (images / "broken.png").unlink()
    assert main([*args, "--out-dir", str(remote), "--engine", "ray"]) == 0
    assert not (remote / MANIFEST).exists()


def test_cli_engine_ray_refusals(tmp_path, capsys):
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(image)
    assert (
        main(["compress", str(image), "-k", "4", "-o", str(tmp_path / "o.png"), "--engine", "ray"])
        == 2
    )
    assert "--engine ray is for many inputs" in capsys.readouterr().err
    out = ["--out-dir", str(tmp_path / "out"), "--engine", "ray"]
    assert main(["compress", str(tmp_path), "--quality", "50-90", *out]) == 2
    assert "--quality does not go with --engine ray" in capsys.readouterr().err


LAUNCH = (  # Ctrl-C's handler restored, as in a terminal (see tests/test_interrupt.py)
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from jaxquant.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
    ids=["SIGTERM", "SIGINT"],
)
def test_cli_engine_ray_signals_exit_as_local_mode_does(tmp_path, sig, code, word):
    """ray.init installs its own SIGTERM/SIGINT handlers (a C++ stack dump, exit 15);
    the command keeps its own: the writes started finish, exit 143 / 130, no traceback."""
    import subprocess
    import sys

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    rng = np.random.default_rng(2)
    for i in range(80):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(src / f"{i:02d}.png")
    cmd = [sys.executable, "-c", LAUNCH, "compress", str(src), "--out-dir", str(out)]
    cmd += [*CLI_FIT, "--batch-images", "1", "--ray-actors", "1", "--no-progress"]
    cmd += ["--engine", "ray"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and sum(1 for p in out.iterdir() if p.suffix == ".png") >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be signalled"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    assert "received at time" not in stderr, stderr[-2000:]
    assert f"{word}; finished outputs are complete, re-run to resume" in stderr, stderr
    done = sorted(p for p in out.iterdir() if p.suffix == ".png")
    assert 2 <= len(done) < 80
    for path in done:
        assert _decode(path.read_bytes()).shape == (8, 8)  # complete, never half-written
    assert not list(out.glob("*.tmp"))
    assert not (out / MANIFEST).exists()  # no manifest for an interrupted run
