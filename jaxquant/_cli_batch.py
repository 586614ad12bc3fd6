"""``jaxquant compress`` on many files: collect, shard, batch, write, report.

The pipeline keeps the device busy while threads do the file work: images are read and
decoded by a thread pool one chunk ahead, each chunk is quantized by the bucketed,
sharded batch dispatcher (:mod:`jaxquant._batch`), and PNGs are encoded and written
atomically by the same pool. Outputs that already exist are skipped (so an interrupted
run resumes where it stopped) unless ``--overwrite``. A bad file is reported on one line
and skipped; the exit code is 1 if any file failed.

Each image's key is ``fold_in(key(seed), crc32(output path relative to --out-dir))``:
a file's result depends on the seed and its name only, not on which other files are in
the run, the batch it lands in, or the number of processes.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import math
import os
import sys
import threading
import time
import zlib
from pathlib import Path

__all__ = ["IMAGE_SUFFIXES", "collect", "run"]

IMAGE_SUFFIXES = frozenset(
    ".png .jpg .jpeg .jpe .jfif .bmp .dib .gif .tif .tiff .webp .ppm .pgm .pbm .pnm .tga "
    ".jp2 .j2k .ico .pcx .sgi .im .qoi".split()
)


@dataclasses.dataclass(frozen=True, order=True)
class Job:
    """One input file and where its output goes (ordered by output path: unique)."""

    rel: Path  # output path relative to --out-dir (suffix .png)
    src: Path


@dataclasses.dataclass
class Summary:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    psnr_sum: float = 0.0
    psnr_count: int = 0  # finite PSNRs only (lossless images have inf)
    lossless: int = 0

    def add(self, bytes_in: int, bytes_out: int, psnr: float) -> None:
        self.done += 1
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out
        if math.isfinite(psnr):
            self.psnr_sum += psnr
            self.psnr_count += 1
        else:
            self.lossless += 1

    def lines(self, wall: float, process: str) -> list[str]:
        rate = self.done / wall if wall > 0 else 0.0
        ratio = self.bytes_in / self.bytes_out if self.bytes_out else math.nan
        psnr = self.psnr_sum / self.psnr_count if self.psnr_count else math.nan
        lossless = f" (+{self.lossless} lossless)" if self.lossless else ""
        return [
            f"{process}images    {self.done} done, {self.failed} failed, "
            f"{self.skipped} skipped (output exists)",
            f"{process}bytes     {self.bytes_in:,} -> {self.bytes_out:,}  (ratio {ratio:.2f}x)",
            f"{process}psnr      {psnr:.2f} dB mean{lossless}",
            f"{process}time      {wall:.2f} s  ({rate:.2f} images/s)",
        ]


def collect(inputs, out_dir: Path, *, recursive: bool) -> tuple[list[Job], list[tuple[str, str]]]:
    """Expand inputs into jobs; returns ``(jobs, errors)`` with errors as (path, reason).

    A file input writes ``out_dir/<stem>.png``; a directory input ``D`` writes
    ``out_dir/<path relative to D>.png`` for each image in it (by suffix; hidden files
    skipped; subdirectories with ``recursive``). Files inside ``out_dir`` are never
    inputs. Two inputs mapping to one output: the second is an error.
    """
    out_real = os.path.realpath(out_dir)
    jobs: list[Job] = []
    errors: list[tuple[str, str]] = []
    seen: dict[Path, Path] = {}

    def add(src: Path, rel: Path) -> None:
        rel = rel.with_suffix(".png")
        if rel in seen:
            errors.append((str(src), f"same output {out_dir / rel} as {seen[rel]}; skipped"))
            return
        seen[rel] = src
        jobs.append(Job(rel, src))

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            real = os.path.realpath(path)
            if real == out_real or real.startswith(out_real + os.sep):
                reason = (
                    "is the --out-dir or inside it (outputs are never inputs); "
                    "give another --out-dir, or name the files with --overwrite"
                )
                errors.append((str(path), reason))
                continue
            walker = path.rglob("*") if recursive else path.iterdir()
            found = []
            for f in walker:
                rel = f.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if f.suffix.lower() not in IMAGE_SUFFIXES or not f.is_file():
                    continue
                real = os.path.realpath(f)
                if real == out_real or real.startswith(out_real + os.sep):
                    continue
                found.append((f, rel))
            for f, rel in sorted(found):
                add(f, rel)
        elif path.exists():
            add(path, Path(path.name))
        else:
            errors.append((str(path), "no such file or directory"))
    return jobs, errors


def _key_data(rel: Path) -> int:
    return zlib.crc32(rel.as_posix().encode()) & 0x7FFFFFFF


def _load(job: Job, k: int, space: str = "rgb", max_pixels: int | None = None):
    """Read and prepare one image (thread pool): ``(prepared, bytes_in)`` or a reason."""
    from jaxquant._quantize import check_space, prepare
    from jaxquant.io import ImageReadError, load_image

    try:
        image = load_image(job.src, max_pixels=max_pixels)
        size = job.src.stat().st_size
        check_space(space, image.shape[2])
        return prepare(image, k), size
    except ImageReadError as e:
        text = str(e)
        prefix = f"{job.src}: "
        return text[len(prefix) :] if text.startswith(prefix) else text
    except OSError as e:
        return f"cannot read ({e.strerror or e})"
    except (ValueError, TypeError) as e:
        return str(e)


def _write(result, dst: Path, *, truecolour: bool = False) -> int:
    from jaxquant._cli_reports import save_result
    from jaxquant.io import save_png

    dst.parent.mkdir(parents=True, exist_ok=True)
    if truecolour:
        return save_result(result, dst, truecolour=True)
    return save_png(result, dst)


def run(args, user_error: type[Exception]) -> int:
    """Batch mode of ``jaxquant compress`` (see the module docstring)."""
    import jax

    if args.coordinator is not None:
        try:
            jax.distributed.initialize(
                coordinator_address=args.coordinator,
                num_processes=args.num_processes,
                process_id=args.process_id,
            )
        except Exception as e:  # noqa: BLE001 - any failure here is the user's setup
            raise user_error(f"--coordinator {args.coordinator}: cannot start ({e})") from None

    from tqdm import tqdm

    from jaxquant import _batch, _quantize
    from jaxquant._quantize import Status, _finish
    from jaxquant.cli import fit_options

    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise user_error(f"{out_dir}: exists and is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise user_error(f"{out_dir}: cannot create ({e.strerror or e})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise user_error(f"{out_dir}: not writable")

    try:
        config, lr = _quantize._config(
            args.k, loss=None, tol=0.0, lloyd_tol=0.0, **fit_options(args)
        )
    except (ValueError, TypeError) as e:
        raise user_error(str(e)) from None

    start = time.perf_counter()
    jobs, errors = collect(args.inputs, out_dir, recursive=args.recursive)
    index, count = jax.process_index(), jax.process_count()
    process = f"[{index}/{count}] " if count > 1 else ""
    jobs = _batch.shard_files(jobs, process_index=index, process_count=count)
    errors = errors if index == 0 else []  # report collection errors once
    summary = Summary()
    bar = tqdm(
        total=len(jobs),
        unit="img",
        disable=True if (args.quiet or args.no_progress) else None,
        file=sys.stderr,
        dynamic_ncols=True,
    )

    lock = threading.Lock()  # the summary and the bar are shared with the writer threads

    def fail(path, reason: str, *, job: bool = True) -> None:
        with lock:
            summary.failed += 1
            bar.write(f"jaxquant: error: {path}: {reason}", file=sys.stderr)
            if job:
                bar.update(1)

    def write(job: Job, size: int, result) -> None:
        """Encode and write one output, then count it (runs on the thread pool)."""
        try:
            written = _write(result, out_dir / job.rel, truecolour=args.format == "rgb")
        except OSError as e:
            fail(job.src, f"cannot write {out_dir / job.rel} ({e.strerror or e})")
            return
        except Exception as e:  # noqa: BLE001 - a thread's error must not vanish
            fail(job.src, f"cannot write {out_dir / job.rel} ({type(e).__name__}: {e})")
            return
        with lock:
            summary.add(size, written, float(result.psnr))
            bar.update(1)

    for path, reason in errors:
        fail(path, reason, job=False)

    from jaxquant.io import remove_stale_temps

    remove_stale_temps(out_dir / job.rel for job in jobs)  # left by a killed run
    todo = []
    for job in jobs:
        dst = out_dir / job.rel
        if dst.exists() and not args.overwrite:
            if os.path.samefile(dst, job.src):
                fail(job.src, "output is the input file; pass --overwrite to replace it")
            else:
                summary.skipped += 1
            bar.update(1)
        else:
            todo.append(job)

    base = jax.random.key(args.seed)
    mesh = _batch._mesh(None)
    chunk = args.batch_images * max(1, mesh.size)
    workers = args.workers or min(8, os.cpu_count() or 1)
    interrupted = False
    space = config.space
    max_pixels = getattr(args, "max_pixels", None)
    with futures.ThreadPoolExecutor(workers) as pool:
        chunks = [todo[i : i + chunk] for i in range(0, len(todo), chunk)]
        loading = (
            [pool.submit(_load, job, config.k, space, max_pixels) for job in chunks[0]]
            if chunks
            else []
        )
        try:
            for c, jobs_c in enumerate(chunks):
                loaded = [f.result() for f in loading]
                if c + 1 < len(chunks):  # read the next chunk while this one computes
                    loading = [
                        pool.submit(_load, job, config.k, space, max_pixels)
                        for job in chunks[c + 1]
                    ]
                ready, preps, sizes = [], [], []
                for job, item in zip(jobs_c, loaded, strict=True):
                    if isinstance(item, str):
                        fail(job.src, item)
                        continue
                    preps.append(item[0])
                    sizes.append(item[1])
                    ready.append(job)
                if not ready:
                    continue
                keys = jax.vmap(lambda d: jax.random.fold_in(base, d))(
                    jax.numpy.asarray([_key_data(j.rel) for j in ready], jax.numpy.uint32)
                )
                outs = _batch._run(keys, preps, lr, config, mesh=mesh, max_batch=chunk)
                for job, prep, out, size in zip(ready, preps, outs, sizes, strict=True):
                    result = _finish(prep, out, raise_on_error=False)
                    if int(result.status) != Status.OK:
                        fail(job.src, "the fit diverged (non-finite palette); lower --lr")
                        continue
                    pool.submit(write, job, size, result)
        except KeyboardInterrupt:
            interrupted = True
            for f in loading:
                f.cancel()
        # Leaving the pool waits for the writes already submitted (each atomic, each
        # counted by its own thread), so the summary is exact even after Ctrl-C.
    bar.close()
    wall = time.perf_counter() - start
    if interrupted:
        print(
            "jaxquant: interrupted; finished outputs are complete, re-run to resume",
            file=sys.stderr,
        )
    if not args.quiet or interrupted:
        for line in summary.lines(wall, process):
            print(line)
    if interrupted:
        return 130
    return 1 if summary.failed else 0
