"""Compress images on a Ray cluster with Ray Data (``pip install "jaxquant[ray]"``).

A :class:`Compressor` is a stateful Ray Data actor: it imports jaxquant and turns on the
compilation cache once, then takes batches of images (an ``image`` column of arrays, as
``ray.data.read_images`` gives) or of image files (a ``path`` column, and either the
file's ``bytes`` or nothing, in which case it reads the path itself), fits and
remaps them with :func:`jaxquant.quantize_batch` (one compiled program per size bucket,
reused across batches) and returns one row per file: the encoded output (``data``), its
``mse`` and ``psnr``, the input's size (``bytes_in``), and a ``status`` (``"ok"`` or
``"failed"``) with the ``error`` of a file that could not be read or compressed. A bad
file is a row, never an exception, so Ray never retries it.

:func:`compress_files` builds the pipeline from paths or from any Ray ``Dataset`` with a
``path`` column (``ray.data.read_binary_files(..., include_paths=True)`` reads local
folders and every filesystem pyarrow supports: S3, GCS, HDFS...). ``concurrency``,
``num_gpus`` and ``images_per_batch`` are yours to set, as in any ``map_batches``. Ray Data
restarts a killed actor and re-runs its batch; since results are rows, whoever consumes
them (``jaxquant compress --engine ray`` writes each output atomically on the driver)
never sees a half-written file or a row twice.

Each image's key is ``fold_in(key(seed), crc32(name))``, where ``name`` is the ``name``
column (default: the path), so a file's result depends neither on its batch nor on its
worker; ``jaxquant compress --engine ray`` names files by their output path, as local
folder mode does, and writes the same files.

``jax.distributed`` stays what it is for (collectives between hosts, one palette for a
dataset: :mod:`jaxquant.dataset`); this module is for many independent images.
"""

from __future__ import annotations

import concurrent.futures as futures
import hashlib
import io as _io
import os
import zlib
from typing import Any

import numpy as np

__all__ = ["Compressor", "compress_files", "key_of"]


def key_of(name: str) -> int:
    """The 31-bit number an image's key is folded with: ``crc32(name)``."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


class Compressor:
    """A Ray Data actor that compresses batches of image files (``map_batches``).

    Args:
      k: palette size.
      seed: the base key's seed.
      format: ``"png"``, ``"webp"``, ``"gif"`` or ``"rgb"`` (:func:`jaxquant.io.encode`).
      optimize, keep_metadata: :func:`jaxquant.io.encode`'s ``optimize``; whether the
        input's colour metadata (ICC profile, gamma, sRGB) is copied.
      dither, dither_level, runs: as for :func:`jaxquant.remap`.
      max_pixels: the decoder's limit (:func:`jaxquant.io.load_image`).
      cache_dir: :func:`jaxquant.enable_compilation_cache`'s directory (``None``: the
        default one; ``""``: none).
      threads: JAX's CPU compute threads in this actor (:func:`jaxquant.set_cpu_threads`);
        ``None``: the CPUs Ray gave the actor (at least 1), so that actors sharing a
        machine do not each start one thread per core. Left as it is when JAX already
        runs in the actor's process (the pool cannot be resized).
      **options: fitting options (:meth:`jaxquant.FitOptions.make`).
    """

    def __init__(
        self,
        k: int,
        *,
        seed: int = 0,
        format: str = "png",
        optimize: bool = False,
        keep_metadata: bool = True,
        dither: str = "none",
        dither_level: float | None = None,
        runs: float = 0.0,
        max_pixels: int | None = None,
        cache_dir: str | None = None,
        threads: int | None = None,
        **options: Any,
    ):
        import jaxquant
        from jaxquant._checks import seed_key
        from jaxquant._remap import check_dither
        from jaxquant.dither import check_runs

        try:
            jaxquant.set_cpu_threads(threads or _actor_cpus())
        except RuntimeError:  # JAX already runs in this process (an actor reused, a test)
            pass
        jaxquant.enable_compilation_cache(cache_dir)
        jaxquant.FitOptions.make(k, **options)  # a bad option fails here, once
        self.k = k
        self.key = seed_key(seed)
        self.format = format
        self.optimize = optimize
        self.keep_metadata = keep_metadata
        self.remap: dict[str, Any] = dict(
            dither=dither, dither_level=dither_level, runs=runs, space=options.get("space")
        )
        runs = check_runs(runs)
        method, _ = check_dither(dither, dither_level)  # level 0 is no dithering
        if runs and method != "none":
            raise ValueError(f"runs={runs:g} applies without dithering (dither='none')")
        self.needs_remap = method != "none" or runs > 0
        self.max_pixels = max_pixels
        self.options = options
        self.pool = futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1))

    def _read(self, path: str, data) -> tuple[np.ndarray, int, dict | None]:
        from jaxquant import io
        from jaxquant.problem import check_space

        source: Any = path
        if data is not None:
            source = _io.BytesIO(bytes(data))
            source.name = path  # named in error messages
        image = io.load_image(source, max_pixels=self.max_pixels)
        check_space(self.options.get("space") or "rgb", image.shape[2])  # a grey image
        size = len(data) if data is not None else os.path.getsize(path)
        metadata = None
        if self.keep_metadata:
            try:
                metadata = io.read_metadata(_io.BytesIO(bytes(data)) if data is not None else path)
            except (OSError, ValueError):
                metadata = None
        return image, size, metadata

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import jax

        import jaxquant
        from jaxquant import _checks, io
        from jaxquant.problem import check_space

        arrays = batch.get("image")  # decoded images (ray.data.read_images)
        if arrays is None and "path" not in batch:
            raise ValueError("a batch needs an 'image' or a 'path' column")
        n = len(arrays) if arrays is not None else len(batch["path"])
        paths = [str(p) for p in batch["path"]] if "path" in batch else [""] * n
        if "name" in batch:
            names = [str(name) for name in batch["name"]]
        elif "path" in batch or arrays is None:
            names = paths
        else:  # no name: the pixels name the image (the same image, the same key)
            names = [hashlib.sha256(np.asarray(a).tobytes()).hexdigest() for a in arrays]
        contents = batch.get("bytes")
        out: dict[str, list] = {
            "data": [b""] * n,
            "mse": [float("nan")] * n,
            "psnr": [float("nan")] * n,
            "bytes_in": [0] * n,
            "status": ["failed"] * n,
            "error": [""] * n,
        }

        def read(i: int):
            try:
                if arrays is not None:
                    image = _checks.as_image_array(arrays[i])
                    check_space(self.options.get("space") or "rgb", image.shape[2])
                    return image, image.nbytes, None
                return self._read(paths[i], None if contents is None else contents[i])
            except (OSError, ValueError) as e:  # ImageReadError is a ValueError
                return str(e)

        ready, images, metas = [], [], []
        # Decoding and encoding release the GIL: threads overlap them (as local batch
        # mode's thread pool does), and the programs use the cores in between.
        for i, item in enumerate(self.pool.map(read, range(n))):
            if isinstance(item, str):
                out["error"][i] = item
                continue
            image, size, metadata = item
            out["bytes_in"][i] = size
            ready.append(i)
            images.append(image)
            metas.append(metadata)
        if images:
            keys = jax.vmap(lambda d: jax.random.fold_in(self.key, d))(
                jax.numpy.asarray([key_of(names[i]) for i in ready], jax.numpy.uint32)
            )
            results: list[Any]
            try:
                # a list of images gives a list of results
                results = list(jaxquant.quantize_batch(keys, images, self.k, **self.options))
            except (ValueError, TypeError) as e:  # a batch-wide problem: every file says so
                results = [str(e)] * len(images)
            finished = []
            for image, result in zip(images, results, strict=True):
                if not isinstance(result, str):
                    if int(result.status) != jaxquant.Status.OK:
                        result = "the fit diverged (non-finite palette)"
                    elif self.needs_remap:
                        result = jaxquant.remap(image, result.palette, **self.remap)
                finished.append(result)

            def encode(item):
                result, metadata = item
                if isinstance(result, str):
                    return result
                try:
                    return io.encode(
                        result, format=self.format, optimize=self.optimize, metadata=metadata
                    )
                except (ValueError, ImportError) as e:
                    return str(e)

            encoded = self.pool.map(encode, zip(finished, metas, strict=True))
            for i, result, data in zip(ready, finished, encoded, strict=True):
                if isinstance(data, str):
                    out["error"][i] = f"{io.display(paths[i])}: {data}"
                    continue
                out["data"][i] = data
                out["mse"][i] = float(result.mse)
                out["psnr"][i] = float(result.psnr)
                out["status"][i] = "ok"
        columns: dict[str, np.ndarray] = {"path": np.asarray(paths, dtype=object)}
        if "name" in batch:
            columns["name"] = np.asarray(names, dtype=object)
        columns["data"] = np.asarray(out["data"], dtype=object)
        columns["mse"] = np.asarray(out["mse"], np.float64)
        columns["psnr"] = np.asarray(out["psnr"], np.float64)
        columns["bytes_in"] = np.asarray(out["bytes_in"], np.int64)
        columns["status"] = np.asarray(out["status"], dtype=object)
        columns["error"] = np.asarray(out["error"], dtype=object)
        return columns


def _actor_cpus() -> int:
    """The CPUs Ray assigned to this worker, at least 1 (1 outside Ray)."""
    try:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    except Exception:  # noqa: BLE001 - not in a Ray worker
        return 1
    return max(1, round(cpus))


def compress_files(
    files,
    k: int,
    *,
    names=None,
    concurrency: int = 1,
    images_per_batch: int = 8,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    **options: Any,
):
    """A Ray ``Dataset`` of compressed files: one row per input (see :class:`Compressor`).

    Args:
      files: paths (a list of strings), or a Ray ``Dataset`` with an ``image`` column
        (arrays: ``ray.data.read_images``) or a ``path`` column and optionally ``bytes``
        (``ray.data.read_binary_files(src, include_paths=True)``), and optionally
        ``name`` (what each image's key is made from; default the path, or for arrays
        without a path a digest of the pixels).
      k: palette size.
      names: with a list of paths, one name per path (default: the paths).
      concurrency: actors (or ``(min, max)`` for an autoscaling pool).
      images_per_batch: files per batch (one ``quantize_batch`` call; ``map_batches``'
        ``batch_size``). ``batch_size`` in ``options`` is SQ's, pixels per step.
      num_cpus, num_gpus: resources of each actor (``num_gpus=1``: one GPU each).
      **options: :class:`Compressor`'s arguments.

    Returns:
      A lazy ``Dataset`` with columns ``path`` (and ``name``), ``data``, ``mse``,
      ``psnr``, ``bytes_in``, ``status``, ``error``; iterate it (``iter_rows``) or write
      it with any Ray Data sink.
    """
    import ray.data

    if isinstance(files, ray.data.Dataset):
        ds = files
    else:
        files = [os.fspath(f) for f in files]
        names = files if names is None else [str(n) for n in names]
        if len(names) != len(files):
            raise ValueError(f"{len(names)} names for {len(files)} files")
        items = [{"path": f, "name": n} for f, n in zip(files, names, strict=True)]
        # one block per batch, so that every actor of the pool gets work
        blocks = max(1, -(-len(items) // images_per_batch))
        ds = ray.data.from_items(items, override_num_blocks=blocks)
        if isinstance(concurrency, int):
            concurrency = min(concurrency, blocks)  # no actor without a batch
    remote: dict[str, Any] = {}
    if num_cpus is not None:
        remote["num_cpus"] = num_cpus
    if num_gpus is not None:
        remote["num_gpus"] = num_gpus
    return ds.map_batches(
        Compressor,
        fn_constructor_args=(k,),
        fn_constructor_kwargs=options,
        batch_size=images_per_batch,
        batch_format="numpy",
        concurrency=concurrency,
        **remote,
    )
