"""Many images at once: ``quantize_batch``, the bucketed dispatcher and file sharding.

Images are prepared one by one on the host (:func:`jaxquant._quantize.prepare`: colours
padded to a size bucket with zero weights), grouped by (bucket, dtype, channels,
sampling), and each group runs as one ``vmap``-ed program whose image axis is sharded
over the local devices. Group sizes are padded up to a power of two (and a multiple of
the device count) by repeating an image whose result is dropped, so a folder of mixed
sizes compiles at most ``buckets × (log2(max_batch) + 1)`` programs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxquant import _checks, _modes
from jaxquant._quantize import (
    Prepared,
    QuantizeResult,
    _config,
    _finish,
    _fit_many,
    _FitOut,
    check_space,
    prepare,
    quantize,
)
from jaxquant.losses import Loss
from jaxquant.seeding import Initializer

__all__ = ["quantize_batch", "shard_files"]

_DEFAULT_MAX_BATCH = 16


def _pow2_at_least(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def _group_size(n: int, num_devices: int) -> int:
    """Images per program for a group of ``n``: a power of two, a multiple of the devices."""
    size = _pow2_at_least(n)
    return -(-size // num_devices) * num_devices


def _mesh(devices: Sequence[jax.Device] | None) -> Mesh:
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must name at least one device")
    return Mesh(np.array(devices), ("images",))


def _dispatch(
    keys: jax.Array,
    preps: Sequence[Prepared],
    learning_rate: float,
    config,
    mesh: Mesh,
) -> _FitOut:
    """Run one group of same-bucket images as one program, sharded over ``mesh``.

    Returns the device outputs for the padded group (the first ``len(preps)`` rows are
    the images' results).
    """
    n = len(preps)
    size = _group_size(n, mesh.size)
    order = list(range(n)) + [n - 1] * (size - n)  # padding repeats the last image
    colours = np.stack([preps[i].colours for i in order])
    weights = np.stack([preps[i].weights for i in order])
    keys = keys[np.array(order)]
    sharding = NamedSharding(mesh, PartitionSpec("images"))
    colours, weights, keys = jax.device_put((colours, weights, keys), sharding)
    return _fit_many(keys, colours, weights, jnp.float32(learning_rate), config=config)


def _run(
    keys: jax.Array,
    preps: Sequence[Prepared],
    learning_rate: float,
    config,
    *,
    mesh: Mesh,
    max_batch: int = _DEFAULT_MAX_BATCH,
) -> list[_FitOut]:
    """Fit prepared images (any mix of buckets); one host-side ``_FitOut`` per image."""
    groups: dict[tuple, list[int]] = {}
    for i, prep in enumerate(preps):
        signature = (prep.colours.shape, prep.colours.dtype.str, prep.inverse is None)
        groups.setdefault(signature, []).append(i)
    pending = []
    for (_, _, uniform), members in groups.items():
        group_config = dataclasses.replace(config, uniform=uniform)
        for start in range(0, len(members), max_batch):
            part = members[start : start + max_batch]
            out = _dispatch(
                keys[np.array(part)], [preps[i] for i in part], learning_rate, group_config, mesh
            )
            pending.append((part, out))  # dispatched asynchronously; collect below
    results: list[Any] = [None] * len(preps)
    for part, out in pending:
        host = jax.device_get(out)
        for row, i in enumerate(part):
            results[i] = _FitOut(*(np.asarray(field[row]) for field in host))
    return results


def quantize_batch(
    key: jax.Array,
    images,
    k: int,
    *,
    num_steps: int | None = None,
    batch_size: int | None = None,
    optimizer: str | optax.GradientTransformation = "adam",
    learning_rate: float | None = None,
    rank: float = 2.0,
    loss: Loss | None = None,
    init: str | Initializer | Callable = "kmeans++",
    num_lloyd_steps: int | None = None,
    tol: float = 0.0,
    max_batch: int = _DEFAULT_MAX_BATCH,
    devices: Sequence[jax.Device] | None = None,
    space: str = "rgb",
    mode: str = "vector",
) -> QuantizeResult | list[QuantizeResult]:
    """Quantize many images to ``k`` colours each, in a few compiled, sharded programs.

    Image ``i`` gets the key ``jax.random.split(key, len(images))[i]`` and the same
    result as ``quantize(keys[i], images[i], k, ...)`` up to floating-point noise: the
    computation is the same, run under ``vmap`` with the image axis sharded across
    ``devices``. Images are grouped by colour-count bucket (see
    :func:`~jaxquant._quantize.bucket_size`), so images of different sizes share
    programs; at most ``max_batch`` images run per program.

    Unlike :func:`~jaxquant.quantize`, a diverged fit does not raise: check each
    result's ``status`` (one bad image does not cost the others their results).

    Args:
      key: a PRNG key, split into one key per image.
      images: a stacked ``(B, H, W, C)`` (or ``(B, H, W)``) array, or a sequence of
        images of any sizes (arrays or PIL images, as for :func:`~jaxquant.quantize`).
      k: palette size.
      num_steps, batch_size, optimizer, learning_rate, rank, loss, init,
        num_lloyd_steps, tol, space, mode: as for :func:`~jaxquant.quantize`. Modes
        other than ``"vector"`` fit each image's channels (or intensities) separately
        and run image by image (``quantize(keys[i], images[i], k, mode=mode, ...)``),
        without batching; their diverged fits raise ``FloatingPointError``.
      max_batch: most images per compiled call (memory grows with it).
      devices: devices to shard the image axis over (default: all local devices).

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
    key = _checks.check_key(key)
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
    if not isinstance(mode, str) or mode not in _modes.MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(_modes.MODES)}")
    options = dict(
        num_steps=num_steps,
        batch_size=batch_size,
        optimizer=optimizer,
        learning_rate=learning_rate,
        rank=rank,
        loss=loss,
        init=init,
        num_lloyd_steps=num_lloyd_steps,
        tol=tol,
        space=space,
    )
    config, lr = _config(k, lloyd_tol=0.0, **options)
    keys = jax.random.split(key, n)
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
                preps.append(prepare(image, config.k))
                check_space(config.space, preps[-1].shape[2])
            except (TypeError, ValueError) as e:
                raise type(e)(f"image {i}: {e}") from None
        outs = _run(keys, preps, lr, config, mesh=_mesh(devices), max_batch=max_batch)
        results = [_finish(p, o, raise_on_error=False) for p, o in zip(preps, outs, strict=True)]
    if not stacked:
        return results
    return QuantizeResult(*(jnp.stack(field) for field in zip(*results, strict=True)))


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
