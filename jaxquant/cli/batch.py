"""``jaxquant compress INPUT... --out-dir DIR`` (or ``--ext SUFFIX``): many files,
batched, sharded, resumable.

The pipeline keeps the device busy while threads do the file work: images are read and
decoded by a thread pool one chunk ahead, each chunk is quantized by
:func:`jaxquant.quantize_batch` (bucketed, ``vmap``-ed, sharded over the local devices),
and PNGs are encoded and written atomically by the same pool. Outputs that already
exist are skipped (so an interrupted run resumes where it stopped) unless ``--force``.
A bad file is reported on one line and skipped; the exit code is 1 if any file failed.
With ``--ext`` each output goes next to its input; with ``--dither`` the fitted palettes
are dithered image by image (one compiled program per image size); with ``--quality``
images are fitted one by one (each chooses its own number of colours); with
``--skip-if-larger`` a result not smaller than its input is counted as skipped.

Each image's key is ``fold_in(key(seed), crc32(output path relative to --out-dir))``:
a file's result depends on the seed and its name only, not on which other files are in
the run, the batch it lands in, or the number of processes.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import dataclasses
import importlib.util
import math
import os
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

from jaxquant import _names
from jaxquant._checks import seed_key
from jaxquant.cli import _encode
from jaxquant.cli._common import (
    Terminated,
    UserError,
    check_distributed,
    display,
    palette_flag,
    quality_flag,
    start_distributed,
    start_threads,
)

__all__ = ["IMAGE_SUFFIXES", "Job", "Summary", "collect", "run"]

IMAGE_SUFFIXES = _names.IMAGE_SUFFIXES


@dataclasses.dataclass(frozen=True, order=True)
class Job:
    """One input file and where its output goes (ordered by output path: unique)."""

    rel: Path  # output path relative to --out-dir (with --ext: the output path itself)
    src: Path


@dataclasses.dataclass
class Summary:
    """Counts of a batch run, printed at the end."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    psnr_sum: float = 0.0
    psnr_count: int = 0  # finite PSNRs only (lossless images have inf)
    lossless: int = 0
    larger: int = 0  # --skip-if-larger: results not smaller than their input, not written

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
        lines = [
            f"{process}images    {self.done} done, {self.failed} failed, "
            f"{self.skipped} skipped (output exists)"
            + (f", {self.larger} kept (result not smaller)" if self.larger else ""),
        ]
        if self.done:  # nothing to average over when every file was skipped or failed
            ratio = self.bytes_in / self.bytes_out if self.bytes_out else math.inf
            lines.append(
                f"{process}bytes     {self.bytes_in:,} -> {self.bytes_out:,}  (ratio {ratio:.2f}x)"
            )
            lossless = f" (+{self.lossless} lossless)" if self.lossless else ""
            if self.psnr_count:
                psnr = f"{self.psnr_sum / self.psnr_count:.2f} dB mean{lossless}"
            else:
                psnr = f"inf (all {self.lossless} lossless)"
            lines.append(f"{process}psnr      {psnr}")
        lines.append(f"{process}time      {wall:.2f} s  ({rate:.2f} images/s)")
        return lines


def _inside(real: str, directory: str) -> bool:
    return real == directory or real.startswith(directory + os.sep)


def collect(
    inputs,
    out_dir: Path | None,
    *,
    recursive: bool,
    suffix: str = ".png",
    ext: str | None = None,
) -> tuple[list[Job], list[tuple[str, str]], list[tuple[str, int]]]:
    """Expand inputs into jobs.

    A file input writes ``out_dir/<stem><suffix>``; a directory input ``D`` writes
    ``out_dir/<path relative to D>`` (with ``suffix``) for each image in it (by suffix;
    hidden files skipped; subdirectories with ``recursive``). Files inside ``out_dir``
    are never inputs. With ``ext`` (and no ``out_dir``) every output is
    ``<input stem><ext>`` next to its input, and files already named so are not
    inputs. Two inputs mapping to one output: the second is an error.

    Returns:
      ``(jobs, errors, unvisited)``: errors as ``(path, reason)``, and for each
      directory input without ``recursive`` the number of subdirectories not entered.
    """
    out_real = None if out_dir is None else os.path.realpath(out_dir)
    jobs: list[Job] = []
    errors: list[tuple[str, str]] = []
    unvisited: list[tuple[str, int]] = []
    seen: dict[Path, Path] = {}

    def add(src: Path, rel: Path) -> None:
        rel = src.with_name(src.stem + ext) if ext is not None else rel.with_suffix(suffix)
        if rel in seen:
            where = rel if out_dir is None else out_dir / rel
            errors.append((str(src), f"same output {where} as {seen[rel]}; skipped"))
            return
        seen[rel] = src
        jobs.append(Job(rel, src))

    for item in inputs:
        path = Path(item)
        if os.path.isdir(path):
            if out_real is not None and _inside(os.path.realpath(path), out_real):
                reason = (
                    "is the --out-dir or inside it (outputs are never inputs); "
                    "give another --out-dir"
                )
                errors.append((str(path), reason))
                continue
            walker = path.rglob("*") if recursive else path.iterdir()
            found = []
            subdirs = 0
            for f in walker:
                rel = f.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if not recursive and f.is_dir():
                    subdirs += 1
                    continue
                if f.suffix.lower() not in IMAGE_SUFFIXES or not f.is_file():
                    continue
                if out_real is not None and _inside(os.path.realpath(f), out_real):
                    continue
                if ext is not None and f.name.endswith(ext):
                    continue  # an output of an earlier --ext run
                found.append((f, rel))
            if subdirs:
                unvisited.append((str(path), subdirs))
            for f, rel in sorted(found):
                add(f, rel)
        else:
            problem = _not_readable(path)
            if problem is None:
                add(path, Path(path.name))
            else:
                errors.append((str(path), problem))
    return jobs, errors, unvisited


def _not_readable(path: Path) -> str | None:
    """Why a named input file cannot be read without blocking (``None``: it can)."""
    from jaxquant.io import special_kind

    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "no such file or directory"
    except OSError as e:
        return f"cannot read ({e.strerror or e})"
    kind = special_kind(st.st_mode)
    return None if kind is None else f"is {kind}, not a regular file; skipped"


def _output_problem(dst: Path, inputs: set[tuple[int, int]]) -> str | None:
    """Why an output path is refused (``None``: it may be written or skipped).

    Symbolic links count for their targets: a link to an input is refused, a link to a
    regular file (or nowhere) is written through.
    """
    from jaxquant.io import special_kind

    try:
        st = os.stat(dst)
    except FileNotFoundError:
        return None
    except OSError as e:
        return f"cannot write {display(dst)} ({e.strerror or e})"
    if (st.st_dev, st.st_ino) in inputs:
        return f"output {display(dst)} is an input file; jaxquant never replaces an input"
    kind = special_kind(st.st_mode)
    if kind is not None:
        return f"output {display(dst)} is {kind}; jaxquant writes regular files"
    return None


def _to_quality(key, image, quality, k: int, options):
    """The result of ``--quality`` for one image, or the reason it has none."""
    from jaxquant.quality import QualityError, quantize_to_quality

    try:
        return quantize_to_quality(key, image, quality, max_colors=k, **options)
    except QualityError as e:
        return str(e)


def _key_data(rel: Path) -> int:
    return zlib.crc32(rel.as_posix().encode()) & 0x7FFFFFFF


def _load(job: Job, space: str, max_pixels: int | None):
    """Read one image (thread pool): ``(image, bytes_in)``, or the reason it failed."""
    from jaxquant.io import ImageReadError, load_image
    from jaxquant.problem import check_space

    try:
        image = load_image(job.src, max_pixels=max_pixels)
        check_space(space, image.shape[2])
        return image, job.src.stat().st_size
    except ImageReadError as e:
        text = str(e)
        prefix = f"{display(job.src)}: "
        return text[len(prefix) :] if text.startswith(prefix) else text
    except OSError as e:
        return f"cannot read ({e.strerror or e})"
    except (ValueError, TypeError) as e:
        return str(e)


def run(args) -> int:
    """Batch mode of ``jaxquant compress`` (see the module docstring)."""
    if args.mode != "vector" or args.animate_steps:
        raise UserError("--mode channel/global and --animate-steps take one input file")
    distributed = check_distributed(args)
    out_dir = None if args.out_dir is None else Path(args.out_dir)
    if out_dir is not None and os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"{display(out_dir)}: exists and is not a directory")
    fmt = _encode.canonical(args.format)
    if args.ext is not None:
        fmt = _encode.output_format(args.ext, fmt)
    fmt = fmt or "png"
    if fmt != "rgb" and args.k is not None and args.k > 256:
        raise UserError(
            f"-k {args.k}: {fmt} holds at most 256 colours; use -k 256 or fewer, or "
            "--format rgb to write the quantized images as truecolour PNGs"
        )
    quality = quality_flag(args.quality)
    given = palette_flag(args, fmt)
    k = args.k if args.k is not None else (256 if given is None else len(given))
    if args.engine == "ray":
        for flag, used in (
            ("--palette", given is not None),
            ("--quality", quality is not None),
            ("--coordinator", distributed),
        ):
            if used:
                raise UserError(f"{flag} does not go with --engine ray (yet); use --engine local")
        if importlib.util.find_spec("ray") is None:
            raise UserError("--engine ray needs Ray: pip install 'jaxquant[ray]'")

    import jax

    import jaxquant
    from jaxquant.cli.compress import speed_options

    try:  # every option checked before a file is read
        options = speed_options(args, k)
        jaxquant.FitOptions.make(k, **options)
    except (ValueError, TypeError) as e:
        raise UserError(str(e)) from None
    if distributed:
        start_distributed(args)
    start_threads(args, None)
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"{display(out_dir)}: cannot create ({e.strerror or e})") from None
        if not os.access(out_dir, os.W_OK | os.X_OK):
            raise UserError(f"{display(out_dir)}: not writable")

    from tqdm import tqdm

    from jaxquant.io import read_metadata, remove_stale_temps

    def target(job: Job) -> Path:
        return job.rel if out_dir is None else out_dir / job.rel

    start = time.perf_counter()
    jobs, errors, unvisited = collect(
        args.inputs,
        out_dir,
        recursive=args.recursive,
        suffix=_encode.SUFFIXES[fmt],
        ext=args.ext,
    )
    index, count = jax.process_index(), jax.process_count()
    process = f"[{index}/{count}] " if count > 1 else ""
    jobs = jaxquant.shard_files(jobs, process_index=index, process_count=count)
    if index != 0:  # report collection problems once
        errors, unvisited = [], []
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
            bar.write(f"jaxquant: error: {display(path)}: {reason}", file=sys.stderr)
            if job:
                bar.update(1)

    def write(job: Job, size: int, result) -> None:
        """Encode and write one output, then count it (runs on the thread pool)."""
        dst = target(job)
        try:
            metadata = None
            if not args.strip:
                with contextlib.suppress(OSError, ValueError):
                    metadata = read_metadata(job.src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            written = _encode.write(result, dst, fmt, args, metadata=metadata, bytes_in=size)
        except UserError as e:
            fail(job.src, str(e))
            return
        except OSError as e:
            fail(job.src, f"cannot write {display(dst)} ({e.strerror or e})")
            return
        except Exception as e:  # noqa: BLE001 - a thread's error must not vanish
            fail(job.src, f"cannot write {display(dst)} ({type(e).__name__}: {e})")
            return
        with lock:
            if written.skipped:
                summary.larger += 1
            else:
                summary.add(size, written.size, float(result.psnr))
            bar.update(1)

    for path, reason in errors:
        fail(path, reason, job=False)
    for path, subdirs in unvisited:
        noun = "subdirectory" if subdirs == 1 else "subdirectories"
        bar.write(
            f"jaxquant: note: {display(path)}: {subdirs} {noun} not entered (use --recursive)",
            file=sys.stderr,
        )

    remove_stale_temps(target(job) for job in jobs)  # left by a killed run
    inputs = set()
    for job in jobs:
        with contextlib.suppress(OSError):
            st = os.stat(job.src)
            inputs.add((st.st_dev, st.st_ino))
    todo = []
    for job in jobs:
        dst = target(job)
        problem = _output_problem(dst, inputs)
        if problem is not None:
            fail(job.src, problem)
        elif os.path.exists(dst) and not args.force:
            summary.skipped += 1
            bar.update(1)
        else:
            todo.append(job)

    if args.engine == "ray":
        from jaxquant.cli import ray_engine

        interrupted = ray_engine.run(args, todo, target, k, fmt, options, fail, bar, summary, lock)
        bar.close()
        return _finish(args, summary, start, process, interrupted)
    base = seed_key(args.seed)
    chunk = args.batch_images * max(1, jax.local_device_count())
    workers = args.workers or min(8, os.cpu_count() or 1)
    interrupted = ""
    with futures.ThreadPoolExecutor(workers) as pool:
        chunks = [todo[i : i + chunk] for i in range(0, len(todo), chunk)]

        def submit(jobs_c):
            return [pool.submit(_load, job, args.space, args.max_pixels) for job in jobs_c]

        loading = submit(chunks[0]) if chunks else []
        try:
            for c, jobs_c in enumerate(chunks):
                loaded = [f.result() for f in loading]
                if c + 1 < len(chunks):  # read the next chunk while this one computes
                    loading = submit(chunks[c + 1])
                ready, images, sizes = [], [], []
                for job, item in zip(jobs_c, loaded, strict=True):
                    if isinstance(item, str):
                        fail(job.src, item)
                        continue
                    images.append(item[0])
                    sizes.append(item[1])
                    ready.append(job)
                if not ready:
                    continue
                keys = jax.vmap(lambda d: jax.random.fold_in(base, d))(
                    jax.numpy.asarray([_key_data(j.rel) for j in ready], jax.numpy.uint32)
                )
                results: Any
                if given is not None:  # one palette for every image: remap only
                    from jaxquant.palettes import match_image

                    results = [
                        jaxquant.remap(
                            *match_image(image, given),
                            space=args.space,
                            dither=args.dither,
                            dither_level=args.dither_level,
                            runs=args.runs,
                        )
                        for image in images
                    ]
                elif quality is None:
                    results = jaxquant.quantize_batch(keys, images, k, max_batch=chunk, **options)
                else:  # each image its own number of colours: one by one
                    results = [
                        _to_quality(key_i, image, quality, k, options)
                        for key_i, image in zip(keys, images, strict=True)
                    ]
                for job, result, size, image in zip(ready, results, sizes, images, strict=True):
                    if isinstance(result, str):
                        fail(job.src, result)
                        continue
                    if int(result.status) != jaxquant.Status.OK:
                        fail(job.src, "the fit diverged (non-finite palette); lower --lr")
                        continue
                    if (args.dither != "none" or args.runs) and given is None:
                        result = jaxquant.remap(
                            image,
                            result.palette,
                            space=args.space,
                            dither=args.dither,
                            dither_level=args.dither_level,
                            runs=args.runs,
                        )
                    pool.submit(write, job, size, result)
        except KeyboardInterrupt as e:
            interrupted = "terminated" if isinstance(e, Terminated) else "interrupted"
            for f in loading:
                f.cancel()
        # Leaving the pool waits for the writes already submitted (each atomic, each
        # counted by its own thread), so the summary is exact even after Ctrl-C.
    bar.close()
    return _finish(args, summary, start, process, interrupted)


def _finish(args, summary: Summary, start: float, process: str, interrupted: str) -> int:
    """Print the summary; the exit code."""
    wall = time.perf_counter() - start
    if interrupted:
        print(
            f"jaxquant: {interrupted}; finished outputs are complete, re-run to resume",
            file=sys.stderr,
        )
    if not args.quiet or interrupted:
        for line in summary.lines(wall, process):
            print(line)
    if interrupted:
        return 143 if interrupted == "terminated" else 130
    return 1 if summary.failed else 0
