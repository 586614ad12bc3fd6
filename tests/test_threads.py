"""``set_cpu_threads``: JAX's CPU backend started with n compute threads, every thread of the
process free to run on every core afterwards; the command line's ``--threads``."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import jaxquant

LINUX = hasattr(os, "sched_setaffinity") and os.path.isdir("/proc/self/task")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not LINUX, reason="CPU affinity is Linux's")
def test_one_thread_then_every_core_back():
    done = _python(
        "import os, jaxquant\n"
        "before = os.sched_getaffinity(0)\n"
        "print(jaxquant.set_cpu_threads(1))\n"
        "import jax, jax.numpy as jnp\n"
        "jnp.ones(3).sum().block_until_ready()\n"
        "tasks = os.listdir('/proc/self/task')\n"
        "print(all(os.sched_getaffinity(int(t)) == before for t in tasks))\n"
        "try:\n"
        "    jaxquant.set_cpu_threads(2)\n"
        "except RuntimeError as e:\n"
        "    print('refused:', e)\n"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "1"
    assert lines[1] == "True"
    assert lines[2].startswith("refused: JAX's backends have started already")


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_counts_are_refused(bad):
    with pytest.raises(ValueError, match="positive integer"):
        jaxquant.set_cpu_threads(bad)


def test_refused_once_jax_computes():
    import jax.numpy as jnp

    jnp.zeros(1).block_until_ready()  # this process's backend is running
    with pytest.raises(RuntimeError, match="before anything computes"):
        jaxquant.set_cpu_threads(1)


def test_cli_threads_flag(tmp_path):
    out = tmp_path / "out.png"
    done = subprocess.run(
        [sys.executable, "-m", "jaxquant.cli", "compress", "--sample", "-k", "8", "-o", str(out),
         "--threads", "1", "-q", "--steps", "20"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0
    bad = subprocess.run(
        [sys.executable, "-m", "jaxquant.cli", "compress", "--sample", "-k", "8", "-o", str(out),
         "--threads", "0", "-f"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2  # argparse's usage, then one error line
    assert "error: argument --threads: must be in 1..4,096, got 0" in bad.stderr


def test_one_image_default_threads_by_size():
    from jaxquant.cli._common import SINGLE_THREAD_PIXELS, image_threads

    assert image_threads(np.zeros((512, 768, 3), np.uint8)) == 1
    assert image_threads(np.zeros((1, SINGLE_THREAD_PIXELS, 4), np.uint8)) == 1
    assert image_threads(np.zeros((2, SINGLE_THREAD_PIXELS // 2 + 1), np.uint8)) is None


def test_cli_compare_with_threads(tmp_path):
    out = tmp_path / "cmp.png"
    done = subprocess.run(
        [sys.executable, "-m", "jaxquant.cli", "compare", "--sample", "-k", "8", "-o", str(out),
         "--threads", "1", "--steps", "20"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0
