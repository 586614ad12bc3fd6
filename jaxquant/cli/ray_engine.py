"""``jaxquant compress SRC --out-dir DST --engine ray``: batch mode on Ray Data actors.

The driver (this process) lists the files, skips finished outputs (resume) exactly as
local batch mode does, and hands the rest to :func:`jaxquant.raydata.compress_files`:
``--ray-actors`` actors (``--ray-gpus`` GPUs each) on the cluster at ``--address``, or
on a local Ray instance, read, fit, remap and encode ``--batch-images`` files at a time.
The encoded files stream back and the driver writes each one atomically (temporary
file, ``fsync``, rename), so a worker killed mid-batch never leaves a half-written
output: Ray restarts the actor and re-runs the batch, and each output is written once.
A file that cannot be read or compressed is reported (one line, as in local mode) and
listed in ``DST/jaxquant-failures.tsv`` (``file<TAB>reason``; removed when a later run
has no failures); the exit code is then 1.
"""

from __future__ import annotations

import concurrent.futures as futures
import os
import signal
import threading
from pathlib import Path

from jaxquant.cli._common import cache_dir, display

__all__ = ["MANIFEST", "run"]

MANIFEST = "jaxquant-failures.tsv"


def _start(address: str | None) -> bool:
    """Connect to Ray (or start a local instance); whether this call did."""
    import logging
    import warnings

    import ray

    # Ray's C++ core logs a warning-as-error line for every actor whose constructor
    # arguments sit in the object store (Ray Data puts them there); real failures still
    # surface as Python exceptions. Set RAY_BACKEND_LOG_LEVEL yourself to see them.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    if ray.is_initialized():
        return False
    # ray.init replaces SIGTERM's handler (with sys.exit, and its C++ core with a stack
    # dump) and SIGINT's; the command's own handlers (Terminated, KeyboardInterrupt: let
    # started writes finish, exit 143 / 130) must stay in force.
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with warnings.catch_warnings():
        # Ray starts its processes by fork + exec, which runs no Python (nor JAX) code in
        # the child; JAX's at-fork warning does not apply.
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called")
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    for signum, handler in handlers.items():
        if handler is not None:
            signal.signal(signum, handler)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the command has its own
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    return True


def _reason(src: Path, error: str) -> str:
    for prefix in (f"{display(src)}: ", f"{src}: "):
        if error.startswith(prefix):
            return error[len(prefix) :]
    return error


def run(args, todo, target, k: int, fmt: str, options: dict, fail, bar, summary, lock) -> str:
    """Compress ``todo`` (batch mode's jobs) on Ray; ``""``, or how it was interrupted."""
    from jaxquant import raydata
    from jaxquant.cli._common import Terminated
    from jaxquant.io import atomic_write

    failures: list[tuple[str, str]] = []

    def failed(src: Path, reason: str) -> None:
        failures.append((os.fspath(src), reason))
        fail(src, reason)

    def put(job, row) -> None:
        dst = target(job)
        data = row["data"]
        try:
            if args.skip_if_larger and len(data) >= row["bytes_in"]:
                with lock:
                    summary.larger += 1
                    bar.update(1)
                return
            dst.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(dst) as tmp:
                tmp.write_bytes(data)
        except OSError as e:
            failed(job.src, f"cannot write {display(dst)} ({e.strerror or e})")
            return
        with lock:
            summary.add(int(row["bytes_in"]), len(data), float(row["psnr"]))
            bar.update(1)

    interrupted = ""
    started = False
    if todo:
        started = _start(args.address)
        by_name = {job.rel.as_posix(): job for job in todo}
        ds = raydata.compress_files(
            [os.fspath(job.src) for job in todo],
            k,
            names=list(by_name),
            concurrency=args.ray_actors,
            num_gpus=args.ray_gpus or None,
            images_per_batch=args.batch_images,
            seed=args.seed,
            format=fmt,
            optimize=args.optimize,
            keep_metadata=not args.strip,
            dither=args.dither,
            dither_level=args.dither_level,
            runs=args.runs,
            max_pixels=args.max_pixels,
            cache_dir=cache_dir(args.cache_dir) or "",
            **options,
        )
        seen: set[str] = set()
        workers = args.workers or min(8, os.cpu_count() or 1)
        with futures.ThreadPoolExecutor(workers) as pool:
            try:
                for row in ds.iter_rows():
                    name = str(row["name"])
                    if name in seen:  # never twice, whatever the engine re-runs
                        continue
                    seen.add(name)
                    job = by_name[name]
                    if row["status"] != "ok":
                        failed(job.src, _reason(job.src, str(row["error"])))
                    else:
                        pool.submit(put, job, row)
            except KeyboardInterrupt as e:
                interrupted = "terminated" if isinstance(e, Terminated) else "interrupted"
    if started:  # the command exits with os._exit: Ray's own atexit would not run
        import ray

        ray.shutdown()
    if args.out_dir is not None and not interrupted:
        _manifest(Path(args.out_dir), failures)
    return interrupted


def _manifest(out_dir: Path, failures: list[tuple[str, str]]) -> None:
    """Write the failures beside the outputs (or remove a previous run's list)."""
    from jaxquant.io import atomic_write

    path = out_dir / MANIFEST
    if not failures:
        if path.exists():
            path.unlink()
        return
    lines = ["file\treason"] + [
        f"{src}\t{reason}".replace("\n", " ") for src, reason in sorted(failures)
    ]
    with atomic_write(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
