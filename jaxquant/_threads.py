"""How many threads XLA's CPU backend computes with: :func:`set_cpu_threads`.

JAX sizes the CPU backend's pool of compute threads once, when the backend starts, to the
number of cores the process may run on, and offers no setting for it. jaxquant's
single-image programs are loops of small steps (an SQ step touches 2048 pixels), which
gain nothing from a second thread and lose when one of the cores is busy: each step then
waits for the thread that shares the busy core. On the 2-core machine of
``docs/benchmarks.md``, one thread made a K=256 ``quantize`` as fast on an idle machine
and twice as fast while another process kept a core busy; batches of images (``vmap``)
and 12 MP images still gain from every core.

JAX-free at import: the command line sets the pool before JAX is imported.
"""

from __future__ import annotations

import os

__all__ = ["cpu_threads", "set_cpu_threads"]


def _backends_started() -> bool:
    import sys

    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # pragma: no cover - a JAX without the helper
        return _pool_threads() > 0


def _pool_threads() -> int:
    """Threads of XLA's CPU compute pool in this process (Linux; 0 when unknown)."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0
    count = 0
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                count += f.read().strip() == "tf_XLAEigen"
        except OSError:
            continue
    return count


def cpu_threads() -> int | None:
    """Threads in XLA's CPU compute pool of this process, once JAX's backend has
    started (Linux); ``None`` when it has not started or the count cannot be read."""
    if not _backends_started():
        return None
    return _pool_threads() or None


def set_cpu_threads(n: int | None) -> int | None:
    """Start JAX's CPU backend with ``n`` compute threads (before any JAX computation).

    JAX gives its CPU backend one compute thread per core the process may use, counted
    when the backend starts, and has no setting for it. This starts the backend while
    the calling thread may use only ``n`` cores, then gives every thread of the process
    its cores back, so the ``n`` threads are free to run on any core. The command line
    calls it with ``--threads`` (default 1 for one image up to 1 MP; see
    ``docs/scaling.md``).

    Call it before anything computes with JAX (``jax.devices()``, any array): the pool
    cannot be resized later. Linux only: elsewhere it leaves the backend alone.

    Args:
      n: compute threads, ``>= 1`` (more than the usable cores means all of them); ``None``
        starts the backend with JAX's default (every usable core).

    Returns:
      The threads of the pool (as read from ``/proc``), or ``None`` when the platform
      has no CPU affinity (the backend is then started with JAX's default).

    Raises:
      RuntimeError: JAX's backends have started already.
      ValueError: ``n`` is not a positive integer.

    Examples:
      >>> import jaxquant
      >>> jaxquant.set_cpu_threads(1)  # doctest: +SKIP
      1
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive integer or None, got {n!r}")
    if _backends_started():
        raise RuntimeError(
            "JAX's backends have started already; call jaxquant.set_cpu_threads before "
            "anything computes with JAX (e.g. at the top of the program)"
        )
    import jax

    if not hasattr(os, "sched_setaffinity"):
        jax.devices()
        return None
    if n is None:
        jax.devices()
        return _pool_threads() or None
    allowed = os.sched_getaffinity(0)
    if n < len(allowed):
        os.sched_setaffinity(0, sorted(allowed)[:n])
    try:
        jax.devices()
    finally:
        _restore_affinity(allowed)
    return _pool_threads() or None


def _restore_affinity(allowed: set[int]) -> None:
    """Every thread of the process may run on ``allowed`` again."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        tasks = ["0"]
    for tid in tasks:
        try:
            os.sched_setaffinity(int(tid), allowed)
        except OSError:  # the thread has ended
            continue
