"""Many images at once: ``quantize_batch`` and file sharding between processes.

Images are prepared one by one on the host (:func:`jaxquant._quantize.prepare`: a colour
set padded to a size bucket), grouped by the shape of their sets, and each group runs as
``vmap`` of :func:`~jaxquant.fit_palette` and of :func:`~jaxquant.remap`, with the image
axis sharded over the local devices. Group sizes are padded up to a power of two (and a
multiple of the device count) by repeating an image whose result is dropped, so a folder
of mixed sizes compiles at most ``buckets × (log2(max_batch) + 1)`` programs of each.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxquant import _checks, _modes
from jaxquant._cache import StoredProgram
from jaxquant._fit import FitOptions, fit_palette, splits_by_opacity
from jaxquant._quantize import Prepared, lossless_result, prepare, quantize, quantize_prepared
from jaxquant._remap import QuantizeResult, build_result, remap

__all__ = ["quantize_batch", "shard_files"]

_DEFAULT_MAX_BATCH = 16


def _pow2_at_least(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def group_size(n: int, num_devices: int) -> int:
    """Images per program for a group of ``n``: a power of two, a multiple of the devices."""
    size = _pow2_at_least(n)
    return -(-size // num_devices) * num_devices


_FIT_STATIC = ("impl", "k", "init", "seed_sample_size", "fixed")


@functools.partial(StoredProgram, static_argnames=_FIT_STATIC)
def _fit_many(key_data, problems, solver, *, impl, k, init, seed_sample_size, fixed=()):
    # Keys travel as their uint32 data: indexing and sharding them on the host is NumPy,
    # where a typed key array would compile an eager gather per group shape.
    def fit(key, problem):
        return fit_palette(
            key,
            problem,
            k,
            solver=solver,
            init=init,
            seed_sample_size=seed_sample_size,
            fixed=fixed,
        )

    return jax.vmap(fit)(jax.random.wrap_key_data(key_data, impl=impl), problems)


@functools.partial(StoredProgram, static_argnames=("loss", "layout"))
def _remap_many(problems, palettes, *, loss, layout):
    return jax.vmap(lambda p, palette: remap(p, palette, loss=loss, layout=layout))(
        problems, palettes
    )


def _keys(key, n: int) -> jax.Array:
    """One key per image: ``split(key, n)``, or ``key`` itself if it holds ``n`` keys."""
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape == (n,):
            return key
        if key.shape != ():
            raise ValueError(f"key must be one PRNG key or {n} keys, got shape {key.shape}")
    return jax.random.split(_checks.check_key(key), n)


def quantize_batch(
    key: jax.Array,
    images,
    k: int,
    *,
    mode: str = "vector",
    max_batch: int = _DEFAULT_MAX_BATCH,
    devices: Sequence[jax.Device] | None = None,
    **options: Any,
) -> QuantizeResult | list[QuantizeResult]:
    """Quantize many images to ``k`` colours each, in a few compiled, sharded programs.

    Image ``i`` gets the key ``jax.random.split(key, len(images))[i]`` (or ``key[i]``
    when ``key`` holds one key per image) and the same result as
    ``quantize(keys[i], images[i], k, ...)`` up to floating-point noise: the computation
    is the same, run under ``vmap`` with the image axis sharded across ``devices``.
    Images are grouped by colour-count bucket (see :func:`jaxquant.problem.bucket_size`),
    so images of different sizes share programs; at most ``max_batch`` images run per
    program.

    Unlike :func:`~jaxquant.quantize`, a diverged fit does not raise: check each
    result's ``status`` (one bad image does not cost the others their results).

    Args:
      key: a PRNG key, split into one key per image; or an array of ``len(images)`` keys.
      images: a stacked ``(B, H, W, C)`` (or ``(B, H, W)``) array, or a sequence of
        images of any sizes (arrays or PIL images, as for :func:`~jaxquant.quantize`).
      k: palette size.
      mode: as for :func:`~jaxquant.quantize`. Modes other than ``"vector"`` fit each
        image's channels (or intensities) separately and run image by image, without
        batching; their diverged fits raise ``FloatingPointError``.
      max_batch: most images per compiled call (memory grows with it).
      devices: devices to shard the image axis over (default: all local devices).
      **options: the fitting options of :func:`~jaxquant.quantize`.

    Returns:
      For a stacked array, one :class:`~jaxquant.QuantizeResult` whose fields have a
      leading image axis; for a sequence, a list of results, one per image.

    Raises:
      TypeError, ValueError: for invalid arguments or images (the message names the
        image's position).

    Examples:
      >>> import jax, numpy as np
      >>> import jaxquant
      >>> images = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), np.uint8)
      >>> r = jaxquant.quantize_batch(jax.random.key(0), images, 8, num_steps=50)
      >>> r.image.shape, r.palette.shape, r.mse.shape
      ((3, 16, 16, 3), (3, 8, 3), (3,))
    """
    max_batch = _checks.check_count("max_batch", max_batch, minimum=1)
    stacked = not isinstance(images, (list, tuple))
    if stacked:
        images = np.asarray(images)
        if images.ndim not in (3, 4):
            raise ValueError(
                "images must be a stacked (B, H, W[, C]) array or a sequence of images, "
                f"got shape {images.shape}"
            )
    n = len(images)
    if n == 0:
        raise ValueError("images is empty")
    _checks.check_choice("mode", mode, _modes.MODES)
    opts = FitOptions.make(k, **options)
    keys = _keys(key, n)
    if mode != "vector":
        results = []
        for i, image in enumerate(images):
            try:
                results.append(quantize(keys[i], image, k, mode=mode, **options))
            except (TypeError, ValueError) as e:
                raise type(e)(f"image {i}: {e}") from None
    else:
        preps = []
        for i, image in enumerate(images):
            try:
                preps.append(prepare(image, k, opts))
            except (TypeError, ValueError) as e:
                raise type(e)(f"image {i}: {e}") from None
        results = _run(keys, preps, k, opts, mesh=_mesh(devices), max_batch=max_batch)
    if not stacked:
        return results
    # Stacked with NumPy on the host: an eager jnp.stack compiles a program per shape.
    fields = zip(*results, strict=True)
    return QuantizeResult(*(jnp.asarray(np.stack([np.asarray(x) for x in f])) for f in fields))


def _mesh(devices: Sequence[jax.Device] | None) -> Mesh:
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must name at least one device")
    return Mesh(np.array(devices), ("images",))


def _run(
    keys: jax.Array,
    preps: Sequence[Prepared],
    k: int,
    opts: FitOptions,
    *,
    mesh: Mesh,
    max_batch: int,
) -> list[QuantizeResult]:
    """Fit prepared images (any mix of buckets): one host-side result per image."""
    results: list[Any] = [None] * len(preps)
    groups: dict[Any, list[int]] = {}
    for i, prep in enumerate(preps):
        if prep.lossless(k, opts.fixed):
            results[i] = lossless_result(prep, k, opts.fixed)
            continue
        if splits_by_opacity(prep.problem, k):
            # Transparent, translucent and opaque pixels are fitted apart (host side).
            results[i] = quantize_prepared(keys[i], prep, k, opts, check=False)
            continue
        leaves, treedef = jax.tree_util.tree_flatten(prep.problem)
        signature = (treedef, tuple((x.shape, np.dtype(x.dtype).str) for x in leaves))
        groups.setdefault(signature, []).append(i)
    sharding = NamedSharding(mesh, PartitionSpec("images"))
    key_data, impl = np.asarray(jax.random.key_data(keys)), jax.random.key_impl(keys)
    loss = getattr(opts.solver, "objective", None)
    layout = getattr(opts.solver, "layout", None)
    pending = []
    for members in groups.values():
        for start in range(0, len(members), max_batch):
            part = members[start : start + max_batch]
            size = group_size(len(part), mesh.size)
            order = part + [part[-1]] * (size - len(part))  # padding repeats the last image
            problems = jax.tree_util.tree_map(
                lambda *xs: np.stack(xs), *(preps[i].problem for i in order)
            )
            group_keys = key_data[np.array(order)]
            problems, group_keys = jax.device_put((problems, group_keys), sharding)
            fits = _fit_many(
                group_keys,
                problems,
                opts.solver,
                impl=impl,
                k=k,
                init=opts.init,
                seed_sample_size=opts.seed_sample_size,
                fixed=opts.fixed,
            )
            remapped = _remap_many(problems, fits.palette, loss=loss, layout=layout)
            pending.append((part, fits, remapped))  # dispatched asynchronously
    for part, fits, remapped in pending:
        fits, remapped = jax.device_get((fits, remapped))
        for row, i in enumerate(part):
            prep = preps[i]
            results[i] = build_result(
                remapped.indices[row],
                fits.palette[row],
                remapped.mse[row],
                remapped.loss[row],
                fits.status[row],
                shape=prep.image.shape,
                dtype=prep.image.dtype,
                squeeze=prep.squeeze,
                inverse=prep.inverse,
                losses=fits.losses[row],
            )
    return results


def shard_files(
    files: Sequence[Any],
    *,
    process_index: int | None = None,
    process_count: int | None = None,
) -> list[Any]:
    """This process's share of a file list: every ``process_count``-th file.

    Every process of a ``jax.distributed`` job calls this with the same list (in any
    order: it is sorted first) and gets a disjoint share; together the shares cover the
    list exactly once. Defaults come from ``jax.process_index()`` and
    ``jax.process_count()`` (1 process: the whole list).

    Args:
      files: paths (or any sortable items), the same on every process.
      process_index: this process's index (default ``jax.process_index()``).
      process_count: number of processes (default ``jax.process_count()``).

    Returns:
      The sorted files ``i, i + n, i + 2n, ...`` for index ``i`` and count ``n``.

    Examples:
      >>> shard_files(["c", "a", "b", "d", "e"], process_index=1, process_count=2)
      ['b', 'd']
    """
    count = jax.process_count() if process_count is None else process_count
    index = jax.process_index() if process_index is None else process_index
    count = _checks.check_count("process_count", count, minimum=1)
    if not (isinstance(index, (int, np.integer)) and 0 <= index < count):
        raise ValueError(f"process_index must be in [0, {count}), got {index!r}")
    ordered = sorted(files, key=lambda f: os.fspath(f) if isinstance(f, os.PathLike) else f)
    return ordered[int(index) :: count]
