"""What is fitted: a weighted set of colours, the problem every solver consumes.

A :class:`ColourSet` is ``n`` rows of colours ``(n, c)`` with non-negative weights
``(n,)`` and the number of valid rows (the rows after it are padding of weight 0), in
one colour space. It is a pytree: ``jit`` traces it, ``vmap`` batches it (a stack of
sets of one shape), and its static fields (the space, whether the weights are uniform)
choose the compiled program.

Build one from an image (:meth:`ColourSet.from_image`, traceable), from an image's
distinct colours with their counts (:meth:`ColourSet.deduplicated`, on the host), from
several images (:meth:`ColourSet.from_images`) or from raw vectors
(:meth:`ColourSet.from_vectors`). Rows are padded up to a *bucket* size
(:func:`bucket_size`) so that sets of similar sizes share one compiled program.

The colours keep their type (uint8, or floats in ``[0, 1]``, sRGB with an optional
alpha channel last); solvers work on :meth:`ColourSet.coordinates`, the colours in the
set's space mapped into ``[0, 1]^c``, and :meth:`ColourSet.colours_from` maps a palette
of coordinates back to colours of the set's type (clipped to the gamut, rounded for
uint8).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxquant import _checks, _names
from jaxquant import colour as _colour
from jaxquant._sampling import draw

__all__ = [
    "ColourSet",
    "bucket_size",
    "check_space",
    "colour_channels",
    "draw_rows",
    "from_coordinates",
    "has_few_colours",
    "pack_codes",
    "to_coordinates",
    "unpack_codes",
]


_MIN_BUCKET = 4096


def bucket_size(n: int) -> int:
    """The padded size for ``n`` rows: ``2^m`` or ``1.5·2^m``, at least 4096.

    At most 33% padding, and a dozen sizes cover 4096 to 1M colours, so a folder of photos
    compiles a handful of programs. Every set of up to 4096 rows (an icon, a sprite, a
    thumbnail) shares the smallest bucket: 4096 is also the seeding sample, so such sets
    are seeded on all their rows, and assigning 4096 rows costs well under a millisecond.

    Examples:
      >>> [bucket_size(n) for n in (1, 4096, 4097, 6145, 393216)]
      [4096, 4096, 6144, 8192, 393216]
    """
    size = _MIN_BUCKET
    while size < n:
        # 256 -> 384 -> 512 -> 768 -> 1024 ...
        size = size + size // 2 if size & (size - 1) == 0 else size + size // 3
    return size


# --------------------------------------------------------------------------------------
# Coordinates. Solvers work on normalized coordinates in [0, 1]^c (see
# jaxquant.colour.BOXES): colour channels converted, alpha (the last of 2 or 4 channels)
# kept as it is, so it weighs as one more coordinate on the same [0, 1] scale.


def colour_channels(c: int, *, alpha: bool = True) -> int:
    """How many of ``c`` channels are colour: all but the alpha of 2 or 4 (with ``alpha``)."""
    return c - 1 if alpha and c in (2, 4) else c


def check_space(space, channels: int, *, alpha: bool = True) -> str:
    """Validate a colour space against a number of channels."""
    space = _checks.check_choice("colour space", space, _names.SPACES)
    if space in ("cielab", "oklab") and colour_channels(channels, alpha=alpha) != 3:
        raise ValueError(
            f"space {space!r} needs an RGB or RGBA image, got {channels} channel(s); "
            "use space 'rgb' or 'linear-rgb' for grayscale"
        )
    if space != "rgb" and channels > 4:
        raise ValueError(f"space {space!r} needs colours of 1 to 4 channels, got {channels}")
    return space


def to_coordinates(rgb: jax.Array, space: str, *, alpha: bool = False) -> jax.Array:
    """``(n, c)`` sRGB floats in ``[0, 1]`` -> normalized coordinates of ``space``.

    ``"rgb"`` is the identity; ``"linear-rgb"`` applies the sRGB transfer function to
    every colour value (so it also takes grayscale). With ``alpha`` the last of 2 or 4
    channels is opacity: the colour coordinates are premultiplied by it, as
    libimagequant does, so that every fully transparent pixel is the same point (its
    colour is invisible) and a translucent pixel's colour counts as much as it shows.
    """
    m = colour_channels(rgb.shape[-1], alpha=alpha)
    col, opacity = rgb[..., :m], rgb[..., m:]
    if space == "linear-rgb":
        col = _colour.srgb_to_linear(col)
    elif space != "rgb":
        col = _colour.to_space(col, space, normalized=True)
    if not alpha or m == rgb.shape[-1]:
        return col if m == rgb.shape[-1] else jnp.concatenate([col, opacity], axis=-1)
    return jnp.concatenate([col * opacity, opacity], axis=-1)


# Opacity below which a premultiplied colour cannot be recovered: half a level of 255.
_MIN_OPACITY = 0.5 / 255


def from_coordinates(values: jax.Array, space: str, *, alpha: bool = False) -> jax.Array:
    """The inverse of :func:`to_coordinates`, not clipped (the colour of an entry with
    no opacity is 0)."""
    m = colour_channels(values.shape[-1], alpha=alpha)
    col, opacity = values[..., :m], values[..., m:]
    if alpha and m < values.shape[-1]:
        visible = opacity > _MIN_OPACITY
        col = jnp.where(visible, col / jnp.where(visible, opacity, 1.0), 0.0)
    if space == "linear-rgb":
        col = _colour.linear_to_srgb(col)
    elif space != "rgb":
        col = _colour.from_space(col, space, normalized=True)
    return col if m == values.shape[-1] else jnp.concatenate([col, opacity], axis=-1)


# --------------------------------------------------------------------------------------
# Host helpers.


def pack_codes(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels ``(n, c)``, ``c <= 4``, packed into one uint32 code each (row order)."""
    codes = np.zeros(pixels.shape[0], np.uint32)
    c = pixels.shape[1]
    for j in range(c):
        codes |= pixels[:, j].astype(np.uint32) << np.uint32(8 * (c - 1 - j))
    return codes


def unpack_codes(codes: np.ndarray, c: int) -> np.ndarray:
    """The inverse of :func:`pack_codes`."""
    shifts = np.array([8 * (c - 1 - j) for j in range(c)], np.uint32)
    return ((codes[:, None] >> shifts[None, :]) & 0xFF).astype(np.uint8)


# A probe of pixels spread over the whole image (a photo's first rows are often a flat
# sky or border): np.unique of 16k pixels costs about 1 ms.
_PROBE_PIXELS = 16384


def has_few_colours(image, k: int) -> bool:
    """Whether an image may have no more than ``k`` distinct colours (host side).

    Probes 16,384 pixels spread over the image. Exact in the direction that matters:
    more than ``k`` distinct colours among the probe means more than ``k`` in the image.

    Examples:
      >>> import numpy as np
      >>> has_few_colours(np.zeros((8, 8, 3), np.uint8), 1)
      True
    """
    pixels = np.asarray(image)
    pixels = pixels.reshape(-1, pixels.shape[-1] if pixels.ndim == 3 else 1)
    probe = pixels[:: max(1, pixels.shape[0] // _PROBE_PIXELS)]
    if probe.dtype == np.uint8 and probe.shape[1] <= 4:
        return len(np.unique(pack_codes(probe))) <= k
    return len(np.unique(probe, axis=0)) <= k


def _pad(xp, colours, weights, rows: int):
    n = colours.shape[0]
    if rows == n:
        return colours, weights
    colours = xp.concatenate([colours, xp.zeros((rows - n,) + colours.shape[1:], colours.dtype)])
    weights = xp.concatenate([weights, xp.zeros((rows - n,), weights.dtype)])
    return colours, weights


def _check_weights(weights, n: int, traced: bool):
    xp = jnp if traced else np
    w = xp.asarray(weights)
    if w.shape not in ((n,),):
        raise ValueError(f"weights must have one value per pixel ({n}), got shape {w.shape}")
    if not traced:
        w = w.astype(np.float64)
        if not (np.all(np.isfinite(w)) and np.all(w >= 0)):
            raise ValueError("weights must be finite and non-negative")
        if not np.any(w > 0):
            raise ValueError("weights must not all be 0")
    return w.astype(xp.float32)


# --------------------------------------------------------------------------------------
# The colour set.


@dataclasses.dataclass(frozen=True)
class ColourSet:
    """A weighted set of colours in one colour space (a pytree).

    Attributes:
      colours: ``(n, c)`` colours: uint8, or floats in ``[0, 1]``; sRGB (plus alpha as
        the last of 2 or 4 channels) or, for vectors, any values of that type.
      weights: ``(n,)`` non-negative float32 weights (pixel counts); 0 marks padding.
      num_valid: ``()`` int32: rows ``[0, num_valid)`` are real, the rest padding.
      space: static: the colour space solvers fit in (one of
        :data:`jaxquant.colour.SPACES`).
      uniform: static: the weights are 1 on the valid rows and 0 after them (an image's
        pixels, not deduplicated), so rows can be drawn uniformly without a search.
      alpha: static: the last of 2 or 4 channels is opacity (images with transparency);
        coordinates are premultiplied by it and assignments respect it (see
        :func:`jaxquant.remap`).

    Examples:
      >>> import numpy as np
      >>> image = np.zeros((10, 20, 3), np.uint8)
      >>> s = ColourSet.from_image(image)
      >>> s.colours.shape, int(s.num_valid), s.uniform
      ((4096, 3), 200, True)
      >>> d, inverse = ColourSet.deduplicated(image)
      >>> int(d.num_valid), float(d.weights[0]), inverse.shape
      (1, 200.0, (200,))
    """

    colours: Any
    weights: Any
    num_valid: Any
    space: str = "rgb"
    uniform: bool = False
    alpha: bool = False

    def __post_init__(self):
        shape = getattr(self.colours, "shape", None)
        if shape is None or len(shape) != 2 or shape[1] < 1:
            raise ValueError(f"colours must have shape (n, c), got {shape}")
        wshape = getattr(self.weights, "shape", None)
        if wshape != (shape[0],):
            raise ValueError(f"weights must have shape ({shape[0]},), got {wshape}")
        dtype = np.dtype(self.colours.dtype)
        if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
            raise TypeError(f"colours must be uint8 or float (in [0, 1]), got dtype {dtype}")
        check_space(self.space, shape[1], alpha=self.alpha)
        if self.alpha and shape[1] not in (2, 4):
            raise ValueError(
                f"alpha needs 2 or 4 channels (gray or RGB, then alpha), got {shape[1]}"
            )

    # -- builders --------------------------------------------------------------------

    @classmethod
    def from_image(
        cls, image, *, space: str = "rgb", weights=None, bucket: bool = True
    ) -> ColourSet:
        """Every pixel of an image as one row (traceable: works under ``jit``/``vmap``).

        Args:
          image: ``(H, W, C)`` or ``(H, W)`` array, uint8 or float in ``[0, 1]``, with 1
            to 4 channels; or a PIL image. Values are checked (no NaN, floats in range)
            only when the image is concrete.
          space: the colour space to fit in.
          weights: optional ``(H, W)`` (or ``(H·W,)``) non-negative pixel weights.
          bucket: pad the rows to :func:`bucket_size` (``H·W``) with zero weights, so
            images of similar sizes share compiled programs.

        Returns:
          A :class:`ColourSet` (NumPy arrays for concrete input, traced ones otherwise).
        """
        traced = _checks.is_traced(image) or _checks.is_traced(weights)
        arr: Any
        if traced:
            arr = jnp.asarray(image)
            h, w, c = _checks.check_image_shape(arr.shape)
            _checks.check_image_dtype(arr.dtype)
            xp: Any = jnp
        else:
            arr = _checks.as_image_array(image)
            h, w, c = arr.shape
            xp = np
        n = h * w
        pixels = arr.reshape(n, c)
        if weights is None:
            wts = xp.ones((n,), xp.float32)
        else:
            wts = _check_weights(xp.reshape(xp.asarray(weights), (-1,)), n, traced)
        colours, wts = _pad(xp, pixels, wts, bucket_size(n) if bucket else n)
        return cls(colours, wts, np.int32(n), space, weights is None, c in (2, 4))

    @classmethod
    def deduplicated(
        cls, image, *, space: str = "rgb", bucket: bool = True
    ) -> tuple[ColourSet, np.ndarray]:
        """An image's distinct colours, weighted by their pixel counts (host side).

        Not traceable (the number of distinct colours is data). The colours are sorted
        (``np.unique``); a photo of 400k pixels typically has 50k-250k of them, and
        deduplicating it costs 35-70 ms.

        Args:
          image: as for :meth:`from_image` (concrete).
          space: the colour space to fit in.
          bucket: pad the rows to :func:`bucket_size` with zero weights.

        Returns:
          ``(colour_set, inverse)``: ``inverse`` is the ``(H·W,)`` int32 row of every
          pixel, so ``colour_set.colours[inverse]`` is the image's pixels.
        """
        arr = _checks.as_image_array(image)
        h, w, c = arr.shape
        pixels = arr.reshape(h * w, c)
        if arr.dtype == np.uint8:
            uniq, inverse, counts = np.unique(
                pack_codes(pixels), return_inverse=True, return_counts=True
            )
            colours = unpack_codes(uniq, c)
        else:
            colours, inverse, counts = np.unique(
                pixels, axis=0, return_inverse=True, return_counts=True
            )
        u = colours.shape[0]
        colours, weights = _pad(
            np, colours, counts.astype(np.float32), bucket_size(u) if bucket else u
        )
        inverse = inverse.reshape(-1).astype(np.int32)
        return cls(colours, weights, np.int32(u), space, False, c in (2, 4)), inverse

    @classmethod
    def from_images(
        cls, images, *, space: str = "rgb", weights=None, bucket: bool = True
    ) -> ColourSet:
        """The pixels of several images as one set (host side): one palette for all.

        Every pixel counts once (a large image weighs more than a small one); ``weights``
        scale each image's pixels. The images may have different sizes but must share
        the number of channels and the dtype. Memory grows with the total number of
        pixels.

        Args:
          images: a sequence of images (arrays or PIL images, as for
            :meth:`from_image`), or a stacked ``(B, H, W[, C])`` array.
          space: the colour space to fit in.
          weights: optional ``(B,)`` non-negative weight per image.
          bucket: pad the rows to :func:`bucket_size` with zero weights.

        Returns:
          A :class:`ColourSet`.
        """
        arrays = [_checks.as_image_array(im) for im in images]
        if not arrays:
            raise ValueError("images is empty")
        c, dtype = arrays[0].shape[2], arrays[0].dtype
        for i, a in enumerate(arrays):
            if a.shape[2] != c or a.dtype != dtype:
                raise ValueError(
                    f"image {i} has {a.shape[2]} channel(s) of {a.dtype}, image 0 has {c} of "
                    f"{dtype}: every image of one colour set must match"
                )
        pixels = np.concatenate([a.reshape(-1, c) for a in arrays])
        n = pixels.shape[0]
        if weights is None:
            wts = np.ones((n,), np.float32)
        else:
            per_image = np.asarray(weights, np.float64).reshape(-1)
            if per_image.shape != (len(arrays),):
                raise ValueError(
                    f"weights must have one value per image ({len(arrays)}), got "
                    f"shape {per_image.shape}"
                )
            counts = [a.shape[0] * a.shape[1] for a in arrays]
            wts = _check_weights(np.repeat(per_image, counts), n, False)
        colours, wts = _pad(np, pixels, wts, bucket_size(n) if bucket else n)
        return cls(colours, wts, np.int32(n), space, weights is None, c in (2, 4))

    @classmethod
    def from_vectors(
        cls,
        vectors,
        weights=None,
        *,
        space: str = "rgb",
        alpha: bool = False,
        bucket: bool = True,
    ) -> ColourSet:
        """Raw ``(n, c)`` vectors as a set (traceable): uint8, or floats in ``[0, 1]``.

        Args:
          vectors: ``(n, c)`` array with ``c >= 1`` (``space`` other than ``"rgb"``
            needs colours of 1 to 4 channels).
          weights: optional ``(n,)`` non-negative weights.
          space: the colour space to fit in.
          alpha: the last of 2 or 4 channels is opacity (as for images with alpha).
          bucket: pad the rows to :func:`bucket_size` with zero weights.

        Returns:
          A :class:`ColourSet`.
        """
        traced = _checks.is_traced(vectors) or _checks.is_traced(weights)
        xp: Any = jnp if traced else np
        x = xp.asarray(vectors)
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"vectors must have shape (n, c) with n, c >= 1, got {x.shape}")
        _checks.check_image_dtype(x.dtype)
        if not traced and x.dtype != np.uint8:
            if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
                raise ValueError("float vectors must be finite, with values in [0, 1]")
        n = x.shape[0]
        wts = xp.ones((n,), xp.float32) if weights is None else _check_weights(weights, n, traced)
        colours, wts = _pad(xp, x, wts, bucket_size(n) if bucket else n)
        return cls(colours, wts, np.int32(n), space, weights is None, alpha)

    # -- what solvers use ------------------------------------------------------------

    @property
    def num_rows(self) -> int:
        """Rows including padding (static)."""
        return int(self.colours.shape[0])

    @property
    def channels(self) -> int:
        """Channels per colour (static)."""
        return int(self.colours.shape[1])

    @property
    def integer(self) -> bool:
        """Whether the colours are uint8 (static)."""
        return np.dtype(self.colours.dtype) == np.uint8

    @property
    def float_dtype(self):
        """The dtype of the coordinates: float32, or float64 for float64 colours (x64)."""
        if np.dtype(self.colours.dtype) == np.float64:
            return jax.dtypes.canonicalize_dtype(np.float64)  # float32 unless x64 is on
        return np.dtype(np.float32)

    def coordinates(self, rows: jax.Array | None = None) -> jax.Array:
        """Float coordinates in ``[0, 1]^c`` of every row, or of ``colours[rows]``.

        uint8 colours are divided by 255 (float32; float colours keep float32 or
        float64); then the colour channels are mapped into the space's box
        (:func:`to_coordinates`). Converting only the rows a step draws keeps a
        minibatch's cost independent of ``n``.
        """
        x = jnp.asarray(self.colours)
        if rows is not None:
            x = x[rows]
        x = x.astype(jnp.float32) / 255.0 if self.integer else x.astype(self.float_dtype)
        return to_coordinates(x, self.space, alpha=self.alpha)

    def colours_from(self, coordinates: jax.Array) -> jax.Array:
        """A palette of coordinates as colours of this set's type (the output palette).

        Converted back to sRGB, clipped to ``[0, 1]`` (NaN becomes 0) and, for uint8
        sets, rounded (never truncated) to uint8.
        """
        p = jnp.clip(jnp.nan_to_num(coordinates.astype(self.float_dtype)), 0.0, 1.0)
        if self.space != "rgb" or self.alpha:
            p = jnp.clip(
                jnp.nan_to_num(from_coordinates(p, self.space, alpha=self.alpha)), 0.0, 1.0
            )
        return jnp.round(p * 255.0).astype(jnp.uint8) if self.integer else p

    def palette_coordinates(self, palette: jax.Array) -> jax.Array:
        """The coordinates of a palette of this set's colour type (as :meth:`coordinates`)."""
        p = jnp.asarray(palette)
        dtype = self.float_dtype
        p = p.astype(dtype) / 255.0 if p.dtype == jnp.uint8 else p.astype(dtype)
        return to_coordinates(p, self.space, alpha=self.alpha)

    def sampling_cdf(self) -> jax.Array:
        """What :func:`draw_rows` draws from: the valid count if uniform, else the CDF."""
        if self.uniform:
            return jnp.asarray(self.num_valid, jnp.int32)
        return jnp.cumsum(jnp.asarray(self.weights, jnp.float32))

    def lossless_palette(self, k: int) -> jax.Array:
        """The first ``k`` rows, repeating the last valid one: the optimal palette when
        ``num_valid <= k`` (only then; rows are the distinct colours after deduplication).
        """
        idx = jnp.minimum(jnp.arange(k), jnp.maximum(jnp.asarray(self.num_valid) - 1, 0))
        return jnp.asarray(self.colours)[idx]


def draw_rows(key: jax.Array, cdf: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Row indices drawn from :meth:`ColourSet.sampling_cdf` (by weight; 0 never drawn)."""
    return draw(key, cdf, shape)


def _flatten(s: ColourSet):
    children = (s.colours, s.weights, s.num_valid)
    keys = tuple(jax.tree_util.GetAttrKey(n) for n in ("colours", "weights", "num_valid"))
    return tuple(zip(keys, children, strict=True)), (s.space, s.uniform, s.alpha)


def _unflatten(aux, children) -> ColourSet:
    # Bypasses __init__: JAX rebuilds pytrees with placeholder leaves (tracers, None,
    # sentinel objects) that the constructor's checks must not see.
    s = object.__new__(ColourSet)
    for name, value in zip(("colours", "weights", "num_valid"), children, strict=True):
        object.__setattr__(s, name, value)
    object.__setattr__(s, "space", aux[0])
    object.__setattr__(s, "uniform", aux[1])
    object.__setattr__(s, "alpha", aux[2])
    return s


jax.tree_util.register_pytree_with_keys(ColourSet, _flatten, _unflatten)
