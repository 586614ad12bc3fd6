"""Colour spaces and colour differences: sRGB, linear RGB, CIE XYZ, CIELAB and OKLab.

Every conversion is a pure, elementwise, jit-compiled ``jax.numpy`` function of arrays of
shape ``(..., 3)`` (string options are static): it works under ``jit`` and ``vmap``, keeps
the input's float dtype (float32, or float64 with ``jax_enable_x64``) and uses no matrix
product, so no accelerator runs it at reduced matmul precision. sRGB values are floats in
``[0, 1]`` (uint8 arrays are read as ``0..255`` and divided by 255); other spaces take
floats.

Definitions:

- **sRGB** (IEC 61966-2-1): the piecewise transfer function (linear below 0.04045, power
  2.4 above) between sRGB and **linear RGB**.
- **CIE XYZ** (D65, Y of white = 1): the matrix is derived in float64 from the sRGB
  primaries (x, y) = (0.64, 0.33), (0.30, 0.60), (0.15, 0.06) and the D65 white point
  (0.3127, 0.3290); the reference white of **CIELAB** is that matrix's image of RGB white,
  so sRGB white is exactly ``L* = 100, a* = b* = 0`` and grays have ``a* = b* = 0``.
  CIELAB uses the exact CIE constants ``δ = 6/29``.
- **OKLab** (Björn Ottosson, 2020, https://bottosson.github.io/posts/oklab/): his
  published linear-sRGB matrices for ``to_space``/``from_space``, and his XYZ matrices
  for :func:`xyz_to_oklab`.

The SQ solver keeps palettes in ``[0, 1]^3``, so each space has a box there that holds
the whole sRGB gamut, reached by one uniform affine map
``normalize(x) = (x - centre) / span + 0.5`` (the same ``span`` on every channel, so
nearest neighbours and ratios of distances are preserved; see :data:`BOXES`).

Distances: :func:`ciede2000` (Sharma, Wu & Dalal 2005) on CIELAB and
:func:`oklab_distance` (Euclidean, ``ΔE_OK``) on OKLab; :func:`delta_e` computes either
from sRGB.
"""

from __future__ import annotations

import functools
import types

import jax
import jax.numpy as jnp
import numpy as np

from jaxquant import _names

__all__ = [
    "BOXES",
    "RGB_WEIGHTS",
    "SPACES",
    "ciede2000",
    "delta_e",
    "denormalize",
    "from_space",
    "lab_to_xyz",
    "linear_to_oklab",
    "linear_to_srgb",
    "linear_to_xyz",
    "normalize",
    "oklab_distance",
    "oklab_to_linear",
    "oklab_to_xyz",
    "srgb_to_linear",
    "to_space",
    "xyz_to_lab",
    "xyz_to_linear",
    "xyz_to_oklab",
]

SPACES = _names.SPACES
"""The colour spaces :func:`to_space` and :func:`from_space` know."""

BOXES = types.MappingProxyType(
    {
        # The identity: sRGB and linear RGB already fill [0, 1]^3.
        "rgb": ((0.5, 0.5, 0.5), 1.0),
        "linear-rgb": ((0.5, 0.5, 0.5), 1.0),
        # The sRGB gamut spans L* 0..100, a* -86.2..98.2, b* -107.9..94.5: a box of side
        # 220 centred on (50, 0, 0) holds it with at least 2 units to spare.
        "cielab": ((50.0, 0.0, 0.0), 220.0),
        # L 0..1, a -0.234..0.276, b -0.312..0.198: side 1.1 leaves 0.05 above white and
        # below black.
        "oklab": ((0.5, 0.0, 0.0), 1.1),
        # sRGB times RGB_WEIGHTS: each channel spans 0..w, centred in a box of side 1.
        "weighted-rgb": ((0.4, 0.5, 0.325), 1.0),
    }
)
"""For each space, ``(centre, span)`` of its box: ``normalize(x) = (x - centre) / span + 0.5``.

The box is a cube of side ``span`` centred on ``centre`` and holds every sRGB colour;
normalisation maps it onto ``[0, 1]^3``.
"""

RGB_WEIGHTS = (0.8, 1.0, 0.65)
"""The weights of ``"weighted-rgb"``: sRGB with red and blue differences counting 0.8
and 0.65 times as much as green's (0.64 and 0.42 in squared distance), between the
uniform weights of ``"rgb"`` and luma's. Chosen on 20 CQ100 photos so that a palette
fitted and mapped in it beats libimagequant's mean CIEDE2000 and luma SSIM on most
images (``docs/spaces.md``, ``benchmarks/bench_quality.py --perceptual``)."""


# --------------------------------------------------------------------------------------
# Constants, as Python floats: they take the dtype of the array they multiply.


def _srgb_to_xyz_matrix() -> np.ndarray:
    """The linear-sRGB -> XYZ matrix from the primaries and D65 white, in float64."""
    primaries = np.array([[0.64, 0.33], [0.30, 0.60], [0.15, 0.06]])
    white_xy = np.array([0.3127, 0.3290])

    def xyz(xy):
        return np.array([xy[0] / xy[1], 1.0, (1.0 - xy[0] - xy[1]) / xy[1]])

    p = np.stack([xyz(xy) for xy in primaries], axis=1)  # columns: XYZ of R, G, B
    scale = np.linalg.solve(p, xyz(white_xy))  # so that RGB (1, 1, 1) is the white
    return p * scale[None, :]


def _rows(m) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in np.asarray(m))


_RGB_TO_XYZ = _rows(_srgb_to_xyz_matrix())
_XYZ_TO_RGB = _rows(np.linalg.inv(_srgb_to_xyz_matrix()))
_WHITE = tuple(float(v) for v in _srgb_to_xyz_matrix().sum(axis=1))  # (Xn, Yn, Zn)

_DELTA = 6.0 / 29.0

# Ottosson's published matrices, linear sRGB <-> LMS and LMS^(1/3) <-> OKLab.
_RGB_TO_LMS = (
    (0.4122214708, 0.5363325363, 0.0514459929),
    (0.2119034982, 0.6806995451, 0.1073969566),
    (0.0883024619, 0.2817188376, 0.6299787005),
)
_LMS_TO_RGB = (
    (4.0767416621, -3.3077115913, 0.2309699292),
    (-1.2684380046, 2.6097574011, -0.3413193965),
    (-0.0041960863, -0.7034186147, 1.7076147010),
)
_LMS_TO_OKLAB = (
    (0.2104542553, 0.7936177850, -0.0040720468),
    (1.9779984951, -2.4285922050, 0.4505937099),
    (0.0259040371, 0.7827717662, -0.8086757660),
)
_OKLAB_TO_LMS = (
    (1.0, 0.3963377774, 0.2158037573),
    (1.0, -0.1055613458, -0.0638541728),
    (1.0, -0.0894841775, -1.2914855480),
)
# His XYZ (D65) -> LMS matrix M1; its inverse computed in float64.
_XYZ_TO_LMS = (
    (0.8189330101, 0.3618667424, -0.1288597137),
    (0.0329845436, 0.9293118715, 0.0361456387),
    (0.0482003018, 0.2643662691, 0.6338517070),
)
_LMS_TO_XYZ = _rows(np.linalg.inv(np.array(_XYZ_TO_LMS)))


# --------------------------------------------------------------------------------------
# Helpers.


def _floats(x, what: str = "colours", *, colours: bool = True) -> jax.Array:
    """``x`` as a float array (of shape (..., 3) if ``colours``); integers become float32."""
    x = jnp.asarray(x)
    if colours and (x.ndim == 0 or x.shape[-1] != 3):
        raise ValueError(f"{what} must have shape (..., 3), got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        if jnp.issubdtype(x.dtype, jnp.bool_) or jnp.issubdtype(x.dtype, jnp.complexfloating):
            raise TypeError(f"{what} must be real numbers, got dtype {x.dtype}")
        x = x.astype(jnp.float32)
    return x


def _srgb(rgb, *, colours: bool = True) -> jax.Array:
    """sRGB as floats in [0, 1]: uint8 is divided by 255, other integers refused."""
    x = jnp.asarray(rgb)
    if x.dtype == jnp.uint8:
        return _floats(x, "sRGB colours", colours=colours) / 255.0
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"sRGB colours must be floats in [0, 1] or uint8 in 0..255, got dtype {x.dtype}"
        )
    return _floats(x, "sRGB colours", colours=colours)


def _apply(m, x: jax.Array) -> jax.Array:
    """``m @ x`` over the last axis, as exact elementwise float arithmetic."""
    x0, x1, x2 = x[..., 0], x[..., 1], x[..., 2]
    return jnp.stack([r[0] * x0 + r[1] * x1 + r[2] * x2 for r in m], axis=-1)


def _channels(values, x: jax.Array) -> jax.Array:
    """Three per-channel constants shaped to combine with ``x`` (no rank promotion)."""
    return jnp.asarray(values, dtype=x.dtype).reshape((1,) * (x.ndim - 1) + (3,))


def _check_space(space) -> str:
    if not isinstance(space, str):
        raise TypeError(f"space must be a string, one of {', '.join(SPACES)}; got {space!r}")
    if space not in SPACES:
        raise ValueError(f"unknown colour space {space!r}; choose one of {', '.join(SPACES)}")
    return space


def _safe_sqrt(x: jax.Array) -> jax.Array:
    """``sqrt`` with a zero (not infinite) gradient at 0."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


# --------------------------------------------------------------------------------------
# Conversions.


@jax.jit
def srgb_to_linear(rgb) -> jax.Array:
    """Undo the sRGB transfer function (IEC 61966-2-1): sRGB to linear RGB.

    The transfer function acts on each value alone, so any shape is accepted.

    Args:
      rgb: sRGB values, floats in ``[0, 1]`` or uint8.

    Returns:
      Linear RGB, same shape; float (float32 for uint8 input).

    Examples:
      >>> import jax.numpy as jnp
      >>> [round(v, 6) for v in srgb_to_linear(jnp.array([0.0, 0.5, 1.0])).tolist()]
      [0.0, 0.214041, 1.0]
    """
    x = _srgb(rgb, colours=False)
    power = ((jnp.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4
    return jnp.where(x <= 0.04045, x / 12.92, power)


@jax.jit
def linear_to_srgb(linear) -> jax.Array:
    """Apply the sRGB transfer function: linear RGB to sRGB.

    Values outside ``[0, 1]`` (colours outside the gamut) are mapped without clipping:
    clip before rounding to 8 bits. Any shape is accepted.

    Args:
      linear: linear RGB values.

    Returns:
      sRGB, same shape and float dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> [round(v, 6) for v in linear_to_srgb(jnp.array([0.0, 0.21404114, 1.0])).tolist()]
      [0.0, 0.5, 1.0]
    """
    x = _floats(linear, "linear RGB values", colours=False)
    power = 1.055 * jnp.maximum(x, 0.0031308) ** (1.0 / 2.4) - 0.055
    return jnp.where(x <= 0.0031308, 12.92 * x, power)


@jax.jit
def linear_to_xyz(linear) -> jax.Array:
    """Linear sRGB to CIE XYZ (D65, ``Y = 1`` for white).

    Args:
      linear: ``(..., 3)`` linear RGB.

    Returns:
      XYZ, same shape and float dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> [round(v, 4) for v in linear_to_xyz(jnp.array([1.0, 1.0, 1.0])).tolist()]  # D65 white
      [0.9505, 1.0, 1.0891]
    """
    return _apply(_RGB_TO_XYZ, _floats(linear, "linear RGB colours"))


@jax.jit
def xyz_to_linear(xyz) -> jax.Array:
    """CIE XYZ (D65) to linear sRGB; the inverse of :func:`linear_to_xyz`.

    Args:
      xyz: ``(..., 3)`` XYZ.

    Returns:
      Linear RGB, same shape and float dtype, not clipped.

    Examples:
      >>> import jax.numpy as jnp
      >>> [round(v, 6) for v in xyz_to_linear(linear_to_xyz(jnp.array([0.2, 0.4, 0.6]))).tolist()]
      [0.2, 0.4, 0.6]
    """
    return _apply(_XYZ_TO_RGB, _floats(xyz, "XYZ colours"))


@jax.jit
def xyz_to_lab(xyz) -> jax.Array:
    """CIE XYZ (D65) to CIELAB ``(L*, a*, b*)``, reference white that of sRGB.

    Args:
      xyz: ``(..., 3)`` XYZ.

    Returns:
      ``(..., 3)`` CIELAB: ``L*`` in ``[0, 100]`` for colours no brighter than white.

    Examples:
      >>> import jax.numpy as jnp
      >>> [round(v, 4) for v in xyz_to_lab(linear_to_xyz(jnp.array([1.0, 1.0, 1.0]))).tolist()]
      [100.0, 0.0, 0.0]
    """
    x = _floats(xyz, "XYZ colours")
    x = x / _channels(_WHITE, x)
    cube = _DELTA**3
    f = jnp.where(x > cube, jnp.cbrt(x), x / (3.0 * _DELTA**2) + 4.0 / 29.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return jnp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


@jax.jit
def lab_to_xyz(lab) -> jax.Array:
    """CIELAB to CIE XYZ (D65); the inverse of :func:`xyz_to_lab`.

    Args:
      lab: ``(..., 3)`` CIELAB.

    Returns:
      XYZ, same shape and float dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> [round(v, 4) for v in lab_to_xyz(jnp.array([100.0, 0.0, 0.0])).tolist()]
      [0.9505, 1.0, 1.0891]
    """
    x = _floats(lab, "CIELAB colours")
    fy = (x[..., 0] + 16.0) / 116.0
    f = jnp.stack([fy + x[..., 1] / 500.0, fy, fy - x[..., 2] / 200.0], axis=-1)
    t = jnp.where(f > _DELTA, f**3, 3.0 * _DELTA**2 * (f - 4.0 / 29.0))
    return t * _channels(_WHITE, t)


def _lms_to_oklab(lms: jax.Array) -> jax.Array:
    return _apply(_LMS_TO_OKLAB, jnp.cbrt(lms))


def _oklab_to_lms(lab: jax.Array) -> jax.Array:
    return _apply(_OKLAB_TO_LMS, lab) ** 3


@jax.jit
def linear_to_oklab(linear) -> jax.Array:
    """Linear sRGB to OKLab ``(L, a, b)`` with Ottosson's sRGB matrices.

    Args:
      linear: ``(..., 3)`` linear RGB.

    Returns:
      ``(..., 3)`` OKLab: ``L`` in ``[0, 1]`` for colours no brighter than white.

    Examples:
      >>> import jax.numpy as jnp
      >>> [round(v, 4) for v in linear_to_oklab(jnp.array([1.0, 0.0, 0.0])).tolist()]  # sRGB red
      [0.628, 0.2249, 0.1258]
    """
    return _lms_to_oklab(_apply(_RGB_TO_LMS, _floats(linear, "linear RGB colours")))


@jax.jit
def oklab_to_linear(lab) -> jax.Array:
    """OKLab to linear sRGB; the inverse of :func:`linear_to_oklab`.

    Args:
      lab: ``(..., 3)`` OKLab.

    Returns:
      Linear RGB, same shape and float dtype, not clipped.

    Examples:
      >>> import jax.numpy as jnp
      >>> [round(v, 4) for v in oklab_to_linear(jnp.array([1.0, 0.0, 0.0])).tolist()]
      [1.0, 1.0, 1.0]
    """
    return _apply(_LMS_TO_RGB, _oklab_to_lms(_floats(lab, "OKLab colours")))


@jax.jit
def xyz_to_oklab(xyz) -> jax.Array:
    """CIE XYZ (D65) to OKLab with Ottosson's XYZ matrix ``M1``.

    Agrees with ``linear_to_oklab(xyz_to_linear(xyz))`` to about ``1e-4`` (his two
    matrices were rounded separately).

    Args:
      xyz: ``(..., 3)`` XYZ.

    Returns:
      ``(..., 3)`` OKLab.

    Examples:
      >>> import jax.numpy as jnp
      >>> lab = xyz_to_oklab(jnp.array([1.0, 0.0, 0.0]))  # a row of Ottosson's table
      >>> [round(v, 3) for v in lab.tolist()]
      [0.45, 1.236, -0.019]
    """
    return _lms_to_oklab(_apply(_XYZ_TO_LMS, _floats(xyz, "XYZ colours")))


@jax.jit
def oklab_to_xyz(lab) -> jax.Array:
    """OKLab to CIE XYZ (D65); the inverse of :func:`xyz_to_oklab`.

    Args:
      lab: ``(..., 3)`` OKLab.

    Returns:
      XYZ, same shape and float dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> [round(v, 5) for v in oklab_to_xyz(xyz_to_oklab(jnp.array([0.2, 0.3, 0.4]))).tolist()]
      [0.2, 0.3, 0.4]
    """
    return _apply(_LMS_TO_XYZ, _oklab_to_lms(_floats(lab, "OKLab colours")))


@functools.partial(jax.jit, static_argnames=("space",))
def normalize(values, space: str) -> jax.Array:
    """Map colours of ``space`` into its box in ``[0, 1]^3`` (see :data:`BOXES`).

    ``(values - centre) / span + 0.5`` with one ``span`` for all channels: a uniform
    scaling, so nearest neighbours are the same before and after. Every sRGB colour
    lands inside ``[0, 1]^3``.

    Args:
      values: ``(..., 3)`` colours in ``space``.
      space: one of :data:`SPACES`.

    Returns:
      ``(..., 3)`` floats, same dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> [round(v, 4) for v in normalize(jnp.array([100.0, 0.0, -110.0]), "cielab").tolist()]
      [0.7273, 0.5, 0.0]
    """
    centre, span = BOXES[_check_space(space)]
    x = _floats(values)
    return (x - _channels(centre, x)) / span + 0.5


@functools.partial(jax.jit, static_argnames=("space",))
def denormalize(values, space: str) -> jax.Array:
    """The inverse of :func:`normalize`: from ``[0, 1]^3`` back to ``space``.

    Args:
      values: ``(..., 3)`` normalised colours.
      space: one of :data:`SPACES`.

    Returns:
      ``(..., 3)`` colours in ``space``, same dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> denormalize(jnp.array([0.5, 0.5, 0.5]), "oklab").tolist()
      [0.5, 0.0, 0.0]
    """
    centre, span = BOXES[_check_space(space)]
    x = _floats(values)
    return (x - 0.5) * span + _channels(centre, x)


@functools.partial(jax.jit, static_argnames=("space", "normalized"))
def to_space(rgb, space: str, *, normalized: bool = False) -> jax.Array:
    """Convert sRGB colours to ``space``.

    Args:
      rgb: ``(..., 3)`` sRGB, floats in ``[0, 1]`` or uint8.
      space: ``"rgb"`` (unchanged), ``"linear-rgb"``, ``"cielab"``, ``"oklab"`` or
        ``"weighted-rgb"`` (sRGB times :data:`RGB_WEIGHTS`).
      normalized: also apply :func:`normalize`, giving coordinates in ``[0, 1]^3`` for
        the solver.

    Returns:
      ``(..., 3)`` floats (float32 for uint8 input).

    Raises:
      ValueError, TypeError: for an unknown space, a last axis other than 3 or an
        unsupported dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> [round(v, 2) for v in to_space(jnp.array([1.0, 0.0, 0.0]), "cielab").tolist()]
      [53.24, 80.09, 67.2]
      >>> white = jnp.array([255, 255, 255], jnp.uint8)
      >>> [round(v, 4) for v in to_space(white, "oklab", normalized=True).tolist()]
      [0.9545, 0.5, 0.5]
    """
    space = _check_space(space)
    x = _srgb(rgb)
    if space == "linear-rgb":
        x = srgb_to_linear(x)
    elif space == "cielab":
        x = xyz_to_lab(linear_to_xyz(srgb_to_linear(x)))
    elif space == "oklab":
        x = linear_to_oklab(srgb_to_linear(x))
    elif space == "weighted-rgb":
        x = x * _channels(RGB_WEIGHTS, x)
    return normalize(x, space) if normalized else x


@functools.partial(jax.jit, static_argnames=("space", "normalized"))
def from_space(values, space: str, *, normalized: bool = False) -> jax.Array:
    """Convert colours of ``space`` back to sRGB; the inverse of :func:`to_space`.

    The result is not clipped: colours outside the sRGB gamut (a palette colour of a
    Lab-space fit may be one) fall outside ``[0, 1]``. Clip before rounding to uint8.

    Args:
      values: ``(..., 3)`` colours in ``space`` (normalised ones if ``normalized``).
      space: one of :data:`SPACES`.
      normalized: ``values`` are normalised (apply :func:`denormalize` first).

    Returns:
      ``(..., 3)`` sRGB floats.

    Examples:
      >>> import jax.numpy as jnp
      >>> red = from_space(jnp.array([53.2371, 80.0901, 67.2033]), "cielab")
      >>> bool(jnp.allclose(red, jnp.array([1.0, 0.0, 0.0]), atol=1e-4))
      True
      >>> rgb = jnp.array([[0.1, 0.5, 0.9]])
      >>> bool(jnp.allclose(from_space(to_space(rgb, "oklab"), "oklab"), rgb, atol=1e-6))
      True
    """
    space = _check_space(space)
    x = _floats(values)
    if normalized:
        x = denormalize(x, space)
    if space == "linear-rgb":
        x = linear_to_srgb(x)
    elif space == "cielab":
        x = linear_to_srgb(xyz_to_linear(lab_to_xyz(x)))
    elif space == "oklab":
        x = linear_to_srgb(oklab_to_linear(x))
    elif space == "weighted-rgb":
        x = x / _channels(RGB_WEIGHTS, x)
    return x


# --------------------------------------------------------------------------------------
# Colour differences.


@jax.jit
def ciede2000(lab1, lab2, *, k_l: float = 1.0, k_c: float = 1.0, k_h: float = 1.0) -> jax.Array:
    """The CIEDE2000 colour difference ``ΔE00`` between CIELAB colours.

    Implements Sharma, Wu & Dalal, "The CIEDE2000 color-difference formula:
    implementation notes, supplementary test data, and mathematical observations",
    Color Research & Application 30(1), 2005, including the conventions at hue
    differences of exactly 180° and for neutral colours. It is symmetric in its
    arguments; about 1 is a just noticeable difference.

    Args:
      lab1: ``(..., 3)`` CIELAB colours.
      lab2: ``(..., 3)`` CIELAB colours, same shape (or broadcastable at equal rank).
      k_l: parametric weight of lightness (1 for reference conditions; 2 for textiles).
      k_c: parametric weight of chroma.
      k_h: parametric weight of hue.

    Returns:
      ``(...)`` differences, float, with finite gradients (also for neutral or equal
      colours).

    Examples:
      >>> import jax.numpy as jnp
      >>> d = ciede2000(jnp.array([50.0, 2.6772, -79.7751]), jnp.array([50.0, 0.0, -82.7485]))
      >>> round(float(d), 4)  # Sharma et al.'s first test pair
      2.0425
    """
    x1 = _floats(lab1, "CIELAB colours")
    x2 = _floats(lab2, "CIELAB colours")
    l1, a1, b1 = x1[..., 0], x1[..., 1], x1[..., 2]
    l2, a2, b2 = x2[..., 0], x2[..., 1], x2[..., 2]
    c_bar = 0.5 * (_safe_sqrt(a1**2 + b1**2) + _safe_sqrt(a2**2 + b2**2))
    c7 = c_bar**7
    g = 0.5 * (1.0 - _safe_sqrt(c7 / (c7 + 25.0**7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = _safe_sqrt(a1p**2 + b1**2), _safe_sqrt(a2p**2 + b2**2)

    def hue(b, a):  # degrees in [0, 360); 0 for a = b = 0 as Sharma specifies
        zero = (a == 0) & (b == 0)  # where atan2's gradient is 0/0
        h = jnp.degrees(jnp.arctan2(jnp.where(zero, 0.0, b), jnp.where(zero, 1.0, a)))
        return jnp.where(h < 0, h + 360.0, h)

    h1p, h2p = hue(b1, a1p), hue(b2, a2p)
    neutral = c1p * c2p == 0
    diff = h2p - h1p
    dhp = jnp.where(diff > 180.0, diff - 360.0, jnp.where(diff < -180.0, diff + 360.0, diff))
    dhp = jnp.where(neutral, 0.0, dhp)
    d_l = l2 - l1
    d_c = c2p - c1p
    d_h = 2.0 * _safe_sqrt(c1p * c2p) * jnp.sin(jnp.radians(dhp) / 2.0)

    l_bar = 0.5 * (l1 + l2)
    cp_bar = 0.5 * (c1p + c2p)
    h_sum = h1p + h2p
    h_bar = jnp.where(
        jnp.abs(diff) <= 180.0,
        0.5 * h_sum,
        jnp.where(h_sum < 360.0, 0.5 * (h_sum + 360.0), 0.5 * (h_sum - 360.0)),
    )
    h_bar = jnp.where(neutral, h_sum, h_bar)
    t = (
        1.0
        - 0.17 * jnp.cos(jnp.radians(h_bar - 30.0))
        + 0.24 * jnp.cos(jnp.radians(2.0 * h_bar))
        + 0.32 * jnp.cos(jnp.radians(3.0 * h_bar + 6.0))
        - 0.20 * jnp.cos(jnp.radians(4.0 * h_bar - 63.0))
    )
    d_theta = 30.0 * jnp.exp(-(((h_bar - 275.0) / 25.0) ** 2))
    cp7 = cp_bar**7
    r_c = 2.0 * _safe_sqrt(cp7 / (cp7 + 25.0**7))
    l50 = (l_bar - 50.0) ** 2
    s_l = 1.0 + 0.015 * l50 / jnp.sqrt(20.0 + l50)
    s_c = 1.0 + 0.045 * cp_bar
    s_h = 1.0 + 0.015 * cp_bar * t
    r_t = -jnp.sin(jnp.radians(2.0 * d_theta)) * r_c
    tl, tc, th = d_l / (k_l * s_l), d_c / (k_c * s_c), d_h / (k_h * s_h)
    return _safe_sqrt(tl**2 + tc**2 + th**2 + r_t * tc * th)


@jax.jit
def oklab_distance(lab1, lab2) -> jax.Array:
    """The Euclidean distance ``ΔE_OK`` between OKLab colours.

    On OKLab's own scale (``L`` from 0 to 1): about 0.02 is a just noticeable
    difference; multiply by 100 to compare with ``ΔE00``-like magnitudes.

    Args:
      lab1: ``(..., 3)`` OKLab colours.
      lab2: ``(..., 3)`` OKLab colours, same shape (or broadcastable at equal rank).

    Returns:
      ``(...)`` distances, float, with a finite gradient everywhere.

    Examples:
      >>> import jax.numpy as jnp
      >>> d = oklab_distance(jnp.array([0.5, 0.1, 0.0]), jnp.array([0.5, 0.1, 0.3]))
      >>> round(float(d), 6)
      0.3
    """
    d = _floats(lab1, "OKLab colours") - _floats(lab2, "OKLab colours")
    return _safe_sqrt(jnp.sum(d**2, axis=-1))


_METRICS = ("ciede2000", "oklab")


@functools.partial(jax.jit, static_argnames=("metric",))
def delta_e(rgb1, rgb2, *, metric: str = "ciede2000") -> jax.Array:
    """The perceptual difference between sRGB colours (or images, pixel by pixel).

    Args:
      rgb1: ``(..., 3)`` sRGB, floats in ``[0, 1]`` or uint8.
      rgb2: ``(..., 3)`` sRGB, same shape.
      metric: ``"ciede2000"`` (:func:`ciede2000` in CIELAB) or ``"oklab"``
        (:func:`oklab_distance`).

    Returns:
      ``(...)`` differences; ``delta_e(a, b).mean()`` is an image's mean error.

    Examples:
      >>> import numpy as np
      >>> a = np.array([[255, 0, 0], [0, 0, 0]], np.uint8)
      >>> b = np.array([[255, 0, 0], [1, 1, 1]], np.uint8)
      >>> [round(v, 3) for v in delta_e(a, b).tolist()]
      [0.0, 0.157]
    """
    if metric not in _METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(_METRICS)}")
    if metric == "ciede2000":
        return ciede2000(to_space(rgb1, "cielab"), to_space(rgb2, "cielab"))
    return oklab_distance(to_space(rgb1, "oklab"), to_space(rgb2, "oklab"))
