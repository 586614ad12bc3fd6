#!/usr/bin/env bash
# The GPU check (issue 18): in under 4 minutes on a machine with an accelerator, run the
# tests that compare the kernel layouts (loop, matrix, gemm) on it, then measure single-
# image and batch throughput at K = 16, 64, 256 (benchmarks/bench_accelerator.py).
#
#   benchmarks/gpu_check.sh [OUTDIR]       # OUTDIR: where the table and logs go
#
# Needs jax (with the accelerator's plugin), optax, numpy, pillow, tqdm, pytest and
# hypothesis importable; it runs jaxquant from this checkout (no install). Exits non-zero
# when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
outdir="${1:-${OUT:-/tmp/jaxquant-gpu-check}}"
mkdir -p "$outdir"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 - <<'EOF' | tee "$outdir/devices.txt"
import jax
print("JAX", jax.__version__, "backend", jax.default_backend(), jax.devices())
EOF
# The layout tests, on the accelerator (one process: they share compiled programs).
timeout 150 python3 -m pytest -q -p no:cacheprovider -o addopts="" -n 0 \
  tests/test_solver.py tests/test_vectors.py -k "layout or gemm or matrix or assign" \
  2>&1 | tee "$outdir/tests.log"
timeout 150 python3 benchmarks/bench_accelerator.py --out "$outdir/benchmarks-accelerator.md" \
  2>&1 | tee "$outdir/bench.log"
