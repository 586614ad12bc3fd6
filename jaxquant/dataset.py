"""One palette for a set of images: streamed, weighted, over local devices and processes.

:func:`jaxquant.fit_palette` comes here for a folder, a list of files, an iterator or a
callable giving images, and for a list of arrays with more pixels than ``sample_size``
(or with ``weights``). The images are read one at a time, so memory holds one image and
the sample, whatever the number of images:

1. **Sample.** A weighted reservoir of ``sample_size`` pixels over every image
   (Efraimidis & Spirakis: each pixel of an image of weight ``w`` gets the key
   ``log(u) / w`` and the ``sample_size`` largest keys are kept). The uniform ``u`` of an
   image's pixels come from a generator seeded by the fit's key and a hash of the image's
   pixels, so the sample, and the palette, depend on the set of images and the key, not
   on their order nor on how they are split among processes. With no more pixels than
   ``sample_size`` in all, every pixel is kept, with its image's weight.
2. **Fit.** :func:`jaxquant.fit_palette` on the sample (SQ, seeding, fixed colours and
   the opacity classes of images with alpha as for one image).
3. **Passes.** ``num_passes`` exact Lloyd iterations over all pixels of all images:
   each reads the images again, assigns every pixel to its nearest entry
   (:func:`jaxquant._remap.assign_colour_set`, opacity classes kept) in chunks of
   ``chunk_size`` rows per local device under :func:`jax.shard_map`, sums each entry's
   coordinates and weights with ``psum`` over the devices, adds the chunks on the host in
   float64 and, in a ``jax.distributed`` job, over the processes; then moves each entry
   to the mean of its pixels (fixed entries stay).

Formats are merged: grey images join colour ones as RGB, opaque ones join images with
alpha as fully opaque, and uint8 ones join float ones divided by 255; the palette is
uint8 unless some image was float.

In a ``jax.distributed`` job every process passes its own share of the images (e.g.
:func:`jaxquant.shard_files`); the samples and the statistics are gathered
(``multihost_utils.process_allgather``) so every process ends with the same palette.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from jaxquant import _checks, _names, io
from jaxquant._remap import assign_colour_set
from jaxquant.problem import ColourSet

__all__ = [
    "CHUNK_SIZE",
    "DatasetFit",
    "IMAGE_SUFFIXES",
    "NUM_PASSES",
    "SAMPLE_SIZE",
    "fit_images",
    "folder_images",
    "is_image_set",
    "streams",
]

SAMPLE_SIZE = 1 << 18
"""Pixels in the sample the palette is first fitted to (the default ``sample_size``)."""

NUM_PASSES = 2
"""Exact Lloyd passes over all pixels after the sample fit (the default ``num_passes``)."""

CHUNK_SIZE = 1 << 17
"""Rows per device in one step of a pass."""


class DatasetFit(NamedTuple):
    """The palette of a set of images and how it was made.

    The first five fields are those of :class:`~jaxquant.solvers.FitResult`.

    Attributes:
      palette: ``(k, c)`` uint8 (float32 if any image was float), sRGB.
      losses: the sample fit's loss trace.
      num_steps: the sample fit's steps.
      status: the sample fit's :class:`~jaxquant.solvers.Status`.
      palettes: ``None``.
      pass_mse: ``(num_passes,)`` float64: the weighted MSE over all pixels (sRGB, 0..255
        scale, per channel) of the palette going into each pass.
      num_images: images read (in all processes).
      num_pixels: pixels read (in all processes).
      sample_size: pixels in the sample.
    """

    palette: jax.Array
    losses: jax.Array
    num_steps: jax.Array
    status: jax.Array
    palettes: None
    pass_mse: np.ndarray
    num_images: int
    num_pixels: int
    sample_size: int


# --------------------------------------------------------------------------------------
# Sources: what a set of images can be.


def folder_images(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder, sorted (by suffix, :data:`IMAGE_SUFFIXES`; hidden
    files and subfolders skipped)."""
    path = Path(folder)
    return sorted(
        f
        for f in path.iterdir()
        if not f.name.startswith(".") and f.suffix.lower() in _names.IMAGE_SUFFIXES and f.is_file()
    )


IMAGE_SUFFIXES = _names.IMAGE_SUFFIXES


def _is_path(x) -> bool:
    return isinstance(x, (str, os.PathLike))


def streams(data) -> bool:
    """Whether ``data`` must be streamed whatever its size: a path (folder or file), a
    list holding paths, an iterator, or a callable that returns images."""
    if _is_path(data):
        return True
    if isinstance(data, (list, tuple)):
        return any(_is_path(x) for x in data)
    if hasattr(data, "shape") or hasattr(data, "mode"):
        return False  # an array or a PIL image
    return callable(data) or isinstance(data, Iterator)


def is_image_set(data, *, sample_size: int = SAMPLE_SIZE) -> bool:
    """Whether :func:`jaxquant.fit_palette` fits ``data`` here: it :func:`streams`, or it
    is a list of concrete arrays with more than ``sample_size`` pixels in all."""
    if streams(data):
        return True
    if not isinstance(data, (list, tuple)) or not data:
        return False
    if any(_checks.is_traced(x) for x in data):
        return False
    total = 0
    for x in data:
        if hasattr(x, "mode") and not hasattr(x, "shape"):  # a PIL image: size is (w, h)
            total += math.prod(x.size)
        else:
            total += math.prod(np.shape(x)[:2])
    return total > sample_size


@dataclasses.dataclass
class _Source:
    """Images to read, once or again."""

    open: Callable[[], Iterable[Any]]
    again: bool  # can be read more than once
    what: str


def _source(data) -> _Source:
    if _is_path(data):
        path = Path(data)
        if path.is_dir():
            files = folder_images(path)
            if not files:
                raise ValueError(f"{io.display(path)}: no image files in this folder")
            return _Source(lambda: files, True, io.display(path))
        if path.is_file():
            return _Source(lambda: [path], True, io.display(path))
        raise ValueError(f"{io.display(path)}: no such file or folder")
    if isinstance(data, (list, tuple)):
        if not data:
            raise ValueError("the list of images is empty")
        return _Source(lambda: data, True, "the images")
    if isinstance(data, Iterator):
        used: list[bool] = []

        def once():
            if used:
                raise ValueError(
                    "the image iterator was already read; pass a callable that returns a "
                    "fresh iterator to read the images again"
                )
            used.append(True)
            return data

        return _Source(once, False, "the images")
    if callable(data):
        return _Source(data, True, "the images")
    raise TypeError(
        "images must be a folder, a file, a list of images or paths, an iterator or a "
        f"callable returning images; got {type(data).__name__}"
    )


def _name(item, index: int) -> str:
    return io.display(item) if _is_path(item) else f"image {index}"


def _read(item, index: int) -> np.ndarray:
    """One image as ``(n, c)`` pixel rows (a path is read with :func:`io.load_image`)."""
    if _is_path(item):
        image = io.load_image(item)
    else:
        try:
            image = _checks.as_image_array(item)
        except (TypeError, ValueError) as e:
            raise type(e)(f"image {index}: {e}") from None
    return image.reshape(-1, image.shape[-1])


# --------------------------------------------------------------------------------------
# Formats: channels and types merged over the images.


@dataclasses.dataclass(frozen=True)
class _Format:
    colour: int = 0  # 1 grey, 3 RGB; 0 before any image
    alpha: bool = False
    floating: bool = False

    @staticmethod
    def of(rows: np.ndarray) -> _Format:
        c = rows.shape[1]
        return _Format(3 if c >= 3 else 1, c in (2, 4), rows.dtype != np.uint8)

    def merge(self, other: _Format) -> _Format:
        return _Format(
            max(self.colour, other.colour),
            self.alpha or other.alpha,
            self.floating or other.floating,
        )

    @property
    def channels(self) -> int:
        return self.colour + self.alpha

    @property
    def dtype(self):
        return np.float32 if self.floating else np.uint8

    def convert(self, rows: np.ndarray) -> np.ndarray:
        """Rows of any format contained in this one, in this one."""
        have = _Format.of(rows)
        if self.floating and not have.floating:
            rows = rows.astype(np.float32) / np.float32(255)
        elif self.floating:
            rows = rows.astype(np.float32, copy=False)
        colour = rows[:, : have.colour]
        if have.colour < self.colour:
            colour = np.repeat(colour, self.colour, axis=1)
        parts = [colour]
        if self.alpha:
            if have.alpha:
                parts.append(rows[:, -1:])
            else:
                full = 1.0 if self.floating else 255
                parts.append(np.full((rows.shape[0], 1), full, rows.dtype))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


# --------------------------------------------------------------------------------------
# The weighted reservoir.


_BLOCK = 1 << 16  # pixels of an image keyed at a time (bounds the temporaries)


class _Reservoir:
    """The ``size`` pixels of largest key ``log(u) / w`` seen so far, with their weights.

    Candidates above the current threshold (the smallest kept key) wait in a pending
    list of at most ``size / 4`` rows and are merged in one partition, so memory is
    ``O(size)`` and the merges cost ``O(size)`` per ``size / 4`` candidates.
    """

    def __init__(self, size: int, seed: int):
        self.size = size
        self.seed = seed
        self.format = _Format()
        self.keys = np.zeros((0,), np.float64)
        self.rows = np.zeros((0, 0), np.uint8)
        self.weights = np.zeros((0,), np.float32)
        self.threshold = -np.inf
        self.pending: list[tuple[np.ndarray, np.ndarray, float]] = []
        self.num_pending = 0
        self.num_images = 0
        self.num_pixels = 0

    def upgrade(self, fmt: _Format) -> None:
        if fmt != self.format:
            self.flush()
            if self.rows.shape[0]:
                self.rows = fmt.convert(self.rows)
            else:
                self.rows = np.zeros((0, fmt.channels), fmt.dtype)
            self.format = fmt

    def add(self, rows: np.ndarray, weight: float) -> None:
        self.num_images += 1
        self.num_pixels += rows.shape[0]
        self.upgrade(self.format.merge(_Format.of(rows)))
        if weight <= 0 or rows.shape[0] == 0:
            return
        digest = zlib.crc32(np.ascontiguousarray(rows).data)
        rng = np.random.default_rng([self.seed, digest, rows.shape[0], rows.shape[1]])
        for start in range(0, rows.shape[0], _BLOCK):
            block = rows[start : start + _BLOCK]
            keys = np.log1p(-rng.random(block.shape[0])) / weight  # log(u), u in (0, 1]
            if self.threshold > -np.inf:
                keep = keys > self.threshold
                if not keep.any():
                    continue
                keys, block = keys[keep], block[keep]
            self.pending.append((keys, self.format.convert(block), weight))
            self.num_pending += keys.shape[0]
            if self.num_pending >= max(self.size // 4, 1):
                self.flush()

    def flush(self) -> None:
        """Merge the pending candidates into the kept ``size``."""
        if not self.pending:
            return
        keys = np.concatenate([self.keys, *(p[0] for p in self.pending)])
        rows = np.concatenate([self.rows, *(p[1] for p in self.pending)])
        weights = np.concatenate(
            [self.weights, *(np.full(p[0].shape, p[2], np.float32) for p in self.pending)]
        )
        self.pending, self.num_pending = [], 0
        self._keep(keys, rows, weights)

    def _keep(self, keys, rows, weights) -> None:
        if keys.shape[0] > self.size:
            top = np.argpartition(-keys, self.size - 1)[: self.size]
            keys, rows, weights = keys[top], rows[top], weights[top]
        self.keys, self.rows, self.weights = keys, rows, weights
        if keys.shape[0] >= self.size:
            self.threshold = float(keys.min())

    def canonical(self) -> None:
        """Sort by key, then by colour: the same order whatever the order of arrival."""
        self.flush()
        order = np.lexsort((*self.rows.T[::-1], -self.keys))
        self.keys, self.rows, self.weights = (
            self.keys[order],
            self.rows[order],
            self.weights[order],
        )

    def gather(self) -> None:
        """Merge the reservoirs of every process of a ``jax.distributed`` job."""
        from jax.experimental import multihost_utils

        self.flush()
        flags = np.array([self.format.colour, self.format.alpha, self.format.floating])
        every = np.asarray(multihost_utils.process_allgather(flags))
        fmt = _Format(int(every[:, 0].max()), bool(every[:, 1].any()), bool(every[:, 2].any()))
        self.upgrade(fmt)
        n = self.keys.shape[0]
        keys = np.full((self.size,), -np.inf)
        keys[:n] = self.keys
        rows = np.zeros((self.size, fmt.channels), fmt.dtype)
        rows[:n] = self.rows
        weights = np.zeros((self.size,), np.float64)
        weights[:n] = self.weights
        counts = np.array([n, self.num_images, self.num_pixels], np.int64)
        g_keys, g_weights, g_counts = _allgather64(keys, weights, counts)
        g_rows = np.asarray(multihost_utils.process_allgather(rows))
        valid = np.concatenate([np.arange(self.size) < c for c in g_counts[:, 0]])
        self._keep(
            g_keys.reshape(-1)[valid],
            g_rows.reshape(-1, fmt.channels)[valid],
            g_weights.reshape(-1)[valid].astype(np.float32),
        )
        self.num_images = int(g_counts[:, 1].sum())
        self.num_pixels = int(g_counts[:, 2].sum())


# --------------------------------------------------------------------------------------
# Lloyd passes.


@functools.partial(jax.jit, static_argnames=("space", "alpha", "mesh", "layout"))
def _pass_stats(palette, colours, weights, *, space, alpha, mesh, layout):
    """Per-entry coordinate sums, weights and the sRGB squared error of a chunk."""
    k, c = palette.shape

    def local(palette, colours, weights):
        problem = ColourSet(colours, weights, np.int32(colours.shape[0]), space, False, alpha)
        labels, mse, _ = assign_colour_set(problem, palette, layout=layout)
        total = jnp.sum(weights)
        x = problem.coordinates()
        sums = jax.ops.segment_sum(weights[:, None] * x, labels, num_segments=k)
        counts = jax.ops.segment_sum(weights, labels, num_segments=k)
        sse = mse * jnp.maximum(total, 1e-30) * c
        return jax.lax.psum((sums, counts, sse), "d")

    spec = PartitionSpec("d")
    return jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(PartitionSpec(), spec, spec),
        out_specs=PartitionSpec(),
        check_vma=False,  # the search's loops carry unvarying initial values
    )(palette, colours, weights)


class _Pass:
    """One Lloyd pass: statistics of chunks of ``rows`` rows, dispatched as they fill."""

    def __init__(self, palette, template: ColourSet, fmt: _Format, mesh: Mesh, chunk: int, layout):
        self.palette = jnp.asarray(palette)
        self.template = template
        self.fmt = fmt
        self.mesh = mesh
        self.rows = chunk * mesh.size
        self.fill = 0
        self._new_buffer()
        self.layout = layout
        self.pending: list[Any] = []
        k = palette.shape[0]
        self.sums = np.zeros((k, fmt.channels), np.float64)
        self.counts = np.zeros((k,), np.float64)
        self.sse = 0.0
        self.total = 0.0

    def _new_buffer(self) -> None:
        # A fresh buffer per chunk: on the CPU a device array may share the host memory
        # it was made from, and the previous chunk may still be in flight.
        self.buffer = np.zeros((self.rows, self.fmt.channels), self.fmt.dtype)
        self.weights = np.zeros((self.rows,), np.float32)

    def add(self, rows: np.ndarray, weight: float, name: str) -> None:
        if weight <= 0:
            return
        if self.fmt.merge(_Format.of(rows)) != self.fmt:
            raise ValueError(f"{name}: the images changed between passes (another format)")
        rows = self.fmt.convert(rows)
        start = 0
        while start < rows.shape[0]:
            take = min(self.rows - self.fill, rows.shape[0] - start)
            self.buffer[self.fill : self.fill + take] = rows[start : start + take]
            self.weights[self.fill : self.fill + take] = weight
            self.fill += take
            start += take
            if self.fill == self.rows:
                self._dispatch()

    def _dispatch(self) -> None:
        self.weights[self.fill :] = 0.0
        out = _pass_stats(
            self.palette,
            jnp.asarray(self.buffer),
            jnp.asarray(self.weights),
            space=self.template.space,
            alpha=self.template.alpha,
            mesh=self.mesh,
            layout=self.layout,
        )
        self.pending.append(out)
        if len(self.pending) > 2:  # bound what is in flight
            self._collect(self.pending.pop(0))
        self.fill = 0
        self._new_buffer()

    def _collect(self, out) -> None:
        sums, counts, sse = jax.device_get(out)
        self.sums += sums
        self.counts += counts
        self.sse += float(sse)

    def finish(self) -> tuple[np.ndarray, np.ndarray, float]:
        if self.fill:
            self._dispatch()
        while self.pending:
            self._collect(self.pending.pop(0))
        return self.sums, self.counts, self.sse


def _allgather64(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """``process_allgather`` of 64-bit arrays, exactly (sent as uint32 pairs: without
    x64, JAX would cast them to 32 bits)."""
    from jax.experimental import multihost_utils

    words = tuple(np.ascontiguousarray(a).view(np.uint32) for a in arrays)
    gathered = multihost_utils.process_allgather(words)
    return tuple(
        np.ascontiguousarray(np.asarray(g)).view(a.dtype).reshape((-1, *a.shape))
        for g, a in zip(gathered, arrays, strict=True)
    )


def _gather_sum(sums, counts, sse):
    """Sums over the processes of a ``jax.distributed`` job (the same on each)."""
    if jax.process_count() == 1:
        return sums, counts, sse
    g_sums, g_counts, g_sse = _allgather64(sums, counts, np.array([sse], np.float64))
    return g_sums.sum(axis=0), g_counts.sum(axis=0), float(g_sse.sum())


def _moved(palette, template: ColourSet, sums, counts, frozen: np.ndarray):
    """The palette after a pass: each entry at the mean of its pixels' coordinates."""
    old = np.asarray(palette)
    coords = np.asarray(template.palette_coordinates(palette), np.float64)
    move = (counts > 0) & ~frozen
    coords[move] = sums[move] / counts[move, None]
    new = np.array(template.colours_from(jnp.asarray(coords, template.float_dtype)))
    if template.alpha:  # every entry keeps its opacity class
        full = 255 if template.integer else 1.0
        a = old[:, -1]
        new[a == full, -1] = full
        new[a == 0] = old[a == 0]
        mid = (a > 0) & (a < full)
        low, high = (1, 254) if template.integer else (1 / 255, 254 / 255)
        new[mid, -1] = np.clip(new[mid, -1], low, high)
    new[~move] = old[~move]
    return new


# --------------------------------------------------------------------------------------
# The fit.


def _weights_of(weights, index: int, name: str) -> float:
    if weights is None:
        return 1.0
    if index >= len(weights):
        raise ValueError(f"weights has {len(weights)} values, but there are more images")
    w = weights[index]
    if isinstance(w, bool) or not _checks.is_number(w) or not math.isfinite(w) or w < 0:
        raise ValueError(f"weights[{index}] ({name}) must be a finite number >= 0, got {w!r}")
    return float(w)


def _each(source: _Source, weights) -> Iterator[tuple[np.ndarray, float, str]]:
    count = 0
    for index, item in enumerate(source.open()):
        name = _name(item, index)
        w = _weights_of(weights, index, name)
        yield _read(item, index), w, name
        count += 1
    if weights is not None and count != len(weights):
        raise ValueError(f"weights has {len(weights)} values for {count} images")


def _mesh(devices: Sequence[jax.Device] | None) -> Mesh:
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must name at least one device")
    return Mesh(np.array(devices), ("d",))


def fit_images(
    key: jax.Array,
    images,
    k: int,
    *,
    fit: Callable[..., Any],
    options: dict[str, Any],
    num_fixed: int = 0,
    weights: Sequence[float] | None = None,
    sample_size: int = SAMPLE_SIZE,
    num_passes: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    devices: Sequence[jax.Device] | None = None,
) -> DatasetFit:
    """The engine behind :func:`jaxquant.fit_palette` for sets of images (see the module).

    Args:
      key: a PRNG key.
      images: a folder or file path, a list of images (arrays, PIL images) or paths, an
        iterator of them (read once: no passes), or a callable returning a fresh
        iterable of them each time it is called.
      k: palette size.
      fit: the function fitting the sample, ``fit(key, colour_set, k, **options)``
        (:func:`jaxquant.fit_palette`).
      options: its fitting options (:meth:`jaxquant.FitOptions.kwargs`).
      num_fixed: the leading palette entries that are fixed colours (never moved).
      weights: one non-negative weight per image (in the order read; a folder's files
        sorted by name); every pixel of an image counts that much. Default 1.
      sample_size: pixels in the sample.
      num_passes: exact Lloyd passes over all pixels; default :data:`NUM_PASSES`, or 0
        for an iterator (it can be read only once).
      chunk_size: rows per device in one step of a pass.
      devices: the local devices a pass runs on (default all).

    Returns:
      A :class:`DatasetFit`.
    """
    source = _source(images)
    sample_size = _checks.check_count("sample_size", sample_size, minimum=1, maximum=1 << 26)
    chunk_size = _checks.check_count("chunk_size", chunk_size, minimum=1, maximum=1 << 24)
    if num_passes is None:
        num_passes = NUM_PASSES if source.again else 0
    num_passes = _checks.check_count("num_passes", num_passes, minimum=0, maximum=1000)
    if num_passes and not source.again:
        raise ValueError(
            "an iterator of images can be read only once, so no Lloyd pass can run; pass "
            "num_passes=0, or a callable that returns a fresh iterator"
        )
    if weights is not None:
        weights = list(weights)
    mesh = _mesh(devices)
    seed = [int(v) for v in np.asarray(jax.random.key_data(key)).reshape(-1)]
    reservoir = _Reservoir(sample_size, int(np.random.SeedSequence(seed).generate_state(1)[0]))
    for rows, w, _ in _each(source, weights):
        reservoir.add(rows, w)
    reservoir.flush()
    if jax.process_count() > 1:
        reservoir.gather()
    if reservoir.num_images == 0:
        raise ValueError(f"{source.what}: no images")
    if reservoir.keys.shape[0] == 0:
        raise ValueError(f"{source.what}: every image has weight 0")
    reservoir.canonical()
    fmt = reservoir.format
    space = options.get("space") or "rgb"
    whole = reservoir.num_pixels <= sample_size  # every pixel kept: keep the weights
    sample = ColourSet.from_vectors(
        reservoir.rows,
        reservoir.weights.astype(np.float32) if whole and weights is not None else None,
        space=space,
        alpha=fmt.alpha,
    )
    del reservoir.rows
    result = fit(key, sample, k, **options)
    palette = np.asarray(result.palette)
    frozen = np.arange(k) < num_fixed
    pass_mse = []
    layout = getattr(options.get("solver"), "layout", None)
    for _ in range(num_passes):
        stats = _Pass(palette, sample, fmt, mesh, chunk_size, layout)
        for rows, w, name in _each(source, weights):
            stats.add(rows, w, name)
        sums, counts, sse = _gather_sum(*stats.finish())
        total = float(counts.sum())
        pass_mse.append(float(sse) / max(total, 1e-30) / fmt.channels)
        palette = _moved(palette, sample, sums, counts, frozen)
    return DatasetFit(
        palette=jnp.asarray(palette),
        losses=result.losses,
        num_steps=result.num_steps,
        status=result.status,
        palettes=None,
        pass_mse=np.asarray(pass_mse, np.float64),
        num_images=reservoir.num_images,
        num_pixels=reservoir.num_pixels,
        sample_size=int(sample.num_valid),
    )
