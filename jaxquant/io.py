"""Reading images and writing quantized ones: every output format, written atomically.

One writer for results, :func:`save` (:func:`encode` to bytes): a palette PNG as small
as jaxquant's own writer makes it (``jaxquant._png``; oxipng on top with
``optimize=True``), lossless WebP, GIF or a truecolour PNG, the format from the suffix
(:func:`output_format`), with the input's colour metadata when given
(:func:`read_metadata`). One for any PIL image such as a report (:func:`save_image`).
Both write through :func:`atomic_write`: a reader never sees half a file, and a failed
write leaves the previous file as it was.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import io as _io
import os
import stat
import sys
import tempfile
import typing
import zlib
from pathlib import Path

import numpy as np

from jaxquant import _checks, _names, _pil, _png

__all__ = [
    "FORMATS",
    "Frames",
    "ImageReadError",
    "MAX_PIXELS",
    "OXIPNG_LEVEL",
    "OutputError",
    "STDOUT",
    "atomic_write",
    "check_input",
    "check_output",
    "display",
    "encode",
    "frame_count",
    "image_format",
    "load_frames",
    "load_image",
    "output_format",
    "read_metadata",
    "remove_stale_temps",
    "save",
    "save_image",
    "save_png",
    "special_kind",
    "to_pil",
    "write_stdout",
]

FORMATS = _names.FORMATS
"""Encodings of :func:`save`: ``"png"`` (palette PNG; ``"indexed"`` is its older name),
``"webp"`` (lossless), ``"gif"`` and ``"rgb"`` (truecolour PNG)."""


class ImageReadError(ValueError):
    """An input file could not be read as an image; the message names the file."""


class OutputError(ValueError):
    """An output path is refused (see :func:`check_output`); the message names it."""


STDOUT = "-"
"""The output (and input) name that means standard output (standard input)."""

# Paths that are the process's own standard output under another name.
_STDOUT_ALIASES = ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1")


def display(path) -> str:
    """A path as one printable line: control characters (a newline...) escaped.

    Examples:
      >>> print(display("a\\nb.png"))
      a\\nb.png
    """
    text = path if isinstance(path, str) else os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def special_kind(mode: int) -> str | None:
    """What a file of ``st_mode`` is when it is not a regular file (``None`` if it is)."""
    if stat.S_ISREG(mode):
        return None
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _stat(path: Path, what: str, error: type[ValueError]) -> os.stat_result | None:
    """``os.stat`` (following links), or ``None`` if nothing is there; other failures raise."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise error(f"{display(path)}: {what} name too long ({e.strerror})") from None
        if e.errno == errno.ENOTDIR:
            parent = next((p for p in path.parents if p.exists()), path.parent)
            if what == "input":
                raise error(
                    f"{display(path)}: no such file ({display(parent)} is not a directory)"
                ) from None
            raise error(
                f"{display(parent)}: is not a directory (a parent of the output {display(path)})"
            ) from None
        if e.errno == errno.ELOOP:
            raise error(f"{display(path)}: too many levels of symbolic links") from None
        if e.errno == errno.EACCES:
            raise error(f"{display(path)}: permission denied") from None
        raise error(f"{display(path)}: cannot read ({e.strerror or e})") from None


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_output(
    path: str | os.PathLike,
    *,
    inputs=(),
    others=(),
    force: bool = False,
    suffixes: tuple[str, ...] | None = None,
    name: str | None = None,
    stdout: bool = True,
) -> Path:
    """Check an output path before any work is done; returns where to write.

    The rules, the same for every command and every output of a run
    (``docs/errors.md``):

    - ``-`` is standard output (``/dev/stdout`` and ``/dev/fd/1`` too), where ``stdout``
      allows it;
    - a path ending in ``/`` names a directory: the file ``name`` inside it (the
      directory is created);
    - a symbolic link is written through, to its target (dangling or not);
    - an output that is one of the ``inputs``, or the same file as one of the ``others``
      (the run's other outputs), is refused, ``force`` or not: jaxquant never modifies an
      input, and two outputs never overwrite each other;
    - directories, FIFOs, devices and sockets are refused: a rename would replace them
      with a regular file;
    - ``suffixes`` (lower case, e.g. ``(".png",)``), when given, must include the name's
      suffix: a file holds what its name says;
    - an existing regular file is refused unless ``force``;
    - a missing parent directory is created.

    Args:
      path: the output path.
      inputs: the run's input files.
      others: the run's other output paths.
      force: allow replacing an existing regular file.
      suffixes: the suffixes this output may have.
      name: the file name to use when ``path`` names a directory (ends in ``/``).
      stdout: whether ``-`` (standard output) is allowed.

    Returns:
      The path to write (a link's target), or ``Path("-")`` for standard output.

    Raises:
      OutputError: naming the path and the reason.
    """
    text = path if isinstance(path, str) else os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text == STDOUT or text in _STDOUT_ALIASES:
        if not stdout:
            raise OutputError(f"{display(text)}: this output cannot go to standard output")
        return Path(STDOUT)
    if not text:
        raise OutputError("the output path is empty")
    if text.endswith(("/", os.sep)):
        if name is None:
            raise OutputError(f"{display(text)}: names a directory; give an output file name")
        st = _stat(Path(text), "output", OutputError)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{display(text)}: exists and is not a directory")
        text = os.path.join(text, name)
    given = Path(text)
    target = Path(os.path.realpath(given))
    for src in inputs:
        if os.fspath(src) != STDOUT and _same(target, Path(src)):
            raise OutputError(
                f"{display(given)}: is an input file; jaxquant never replaces an input"
            )
    for other in others:
        if os.fspath(other) != STDOUT and _same(target, Path(other)):
            raise OutputError(f"{display(given)}: is also another output of this run")
    st = _stat(target, "output", OutputError)
    if st is not None:
        kind = special_kind(st.st_mode)
        if kind == "a directory":
            raise OutputError(
                f"{display(given)}: is a directory; give an output file name "
                "(or end it with / to write into it)"
            )
        if kind is not None:
            raise OutputError(
                f"{display(given)}: is {kind}; jaxquant writes regular files "
                "(use - for standard output)"
            )
    if suffixes is not None and given.suffix.lower() not in suffixes:
        if len(suffixes) <= 4:
            named = (
                ", ".join(suffixes[:-1]) + " or " + suffixes[-1] if suffixes[1:] else suffixes[0]
            )
        else:
            named = "with an image suffix Pillow writes (.png, .gif, .jpg, .webp, ...)"
        raise OutputError(
            f"{display(given)}: the output must be named {named} "
            f"(got {given.suffix or 'no suffix'!r})"
        )
    if st is not None and not force:
        raise OutputError(f"{display(given)}: exists; pass --force to replace it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{display(target.parent)}: cannot create ({e.strerror or e})") from None
    return target


def check_input(path) -> Path:
    """An input path that can be read without hanging: a regular file, or ``-`` (stdin).

    Raises:
      ImageReadError: for a missing file, a directory, a FIFO, a device or a socket, and
        for names the system refuses, naming the path.
    """
    text = path if isinstance(path, str) else os.fspath(path)
    if text == STDOUT:
        return Path(STDOUT)
    p = Path(text)
    st = _stat(p, "input", ImageReadError)
    if st is None:
        raise ImageReadError(f"{display(p)}: no such file")
    kind = special_kind(st.st_mode)
    if kind == "a directory":
        raise ImageReadError(f"{display(p)}: is a directory, not an image file")
    if kind is not None:
        raise ImageReadError(
            f"{display(p)}: is {kind}, not a regular file (read a stream with - as INPUT)"
        )
    return p


# Pillow's own limit (``Image.MAX_IMAGE_PIXELS``, 89.5 MP) warns from there and refuses
# twice that. jaxquant's default is Pillow's hard limit, so a 100-MP panorama goes
# through without a warning; a photo-like 8-bit RGB image needs about 50 bytes per pixel
# at peak (benchmarks/bench_memory.py), so the default needs about 9 GB at most.
MAX_PIXELS = 178_956_970
"""Default ``max_pixels`` of :func:`load_image` (and ``--max-pixels``): 2 x 89,478,485."""

# Peak bytes per pixel of load + quantize + save, measured by benchmarks/bench_memory.py
# (rounded up): a declared size needing more than the machine's memory is refused.
_BYTES_PER_PIXEL = 64


def load_image(
    path: str | os.PathLike | typing.BinaryIO,
    *,
    max_pixels: int | None = None,
    allow_truncated: bool = False,
) -> np.ndarray:
    """Read an image file as a uint8 array of shape (H, W, C).

    What each kind of image gives (docs/errors.md has the full table):

    - 1-bit, 8-bit and 16-bit grayscale: ``C = 1``; 16-bit samples are rounded to
      8 bits (``round(v · 255 / 65535)``).
    - Gray with transparency (LA, or a ``tRNS`` colour key in an 8- or 16-bit gray PNG):
      gray + alpha (``C = 2``) if any pixel is not fully opaque, else gray.
    - RGB, CMYK, YCbCr, LAB, HSV and palette images without transparency: RGB (``C = 3``).
      16-bit RGB PNGs arrive from Pillow as the high byte of each sample (truncated,
      error below one level).
    - Colour with transparency (RGBA, PA, P or RGB with ``tRNS``): RGBA (``C = 4``) if
      any pixel is not fully opaque, else RGB. The colour of fully transparent pixels is
      invisible and set to 0, so that it cannot pull palette colours or take entries.
    - The EXIF orientation is applied.
    - Multi-frame files (animated GIF/PNG/WebP, multi-page TIFF) are refused: one
      indexed PNG holds one frame. Camera MPO files (a JPEG with embedded previews)
      give their first, primary picture.
    - 32-bit float images and 32-bit integer ones outside 0..65535 are refused.
    - Truncated or damaged pixel data is an error, unless ``allow_truncated``: a PNG
      whose image data ends early (Pillow would fill the missing rows with black) or a
      file cut short.

    Only regular files are opened (a FIFO or a device would block or never end), or
    standard input for ``"-"``. The size is checked from the header, before any pixel is
    decoded.

    Args:
      path: the file, ``"-"`` for standard input, or a binary file object.
      max_pixels: refuse images with more pixels than this (default :data:`MAX_PIXELS`,
        about 179 MP). A value above Pillow's ``Image.MAX_IMAGE_PIXELS`` raises that
        process-wide limit to it, since Pillow would refuse the image first. Whatever
        the limit, an image whose declared size needs more memory than the machine
        has is refused.
      allow_truncated: decode what a truncated file holds (missing rows are black).

    Returns:
      A ``(H, W, C)`` uint8 NumPy array.

    Raises:
      ImageReadError: if the file is missing, not a regular file, unreadable, too large,
        truncated or not a supported image; the message starts with the path.

    Examples:
      >>> import numpy as np, tempfile, os, jaxquant
      >>> from PIL import Image
      >>> path = os.path.join(tempfile.mkdtemp(), "gray.png")
      >>> Image.fromarray(np.zeros((2, 3), np.uint8)).save(path)
      >>> jaxquant.load_image(path).shape
      (2, 3, 1)
    """
    from PIL import Image, ImageFile, ImageOps

    limit = (
        MAX_PIXELS
        if max_pixels is None
        else _checks.check_count("max_pixels", max_pixels, minimum=1)
    )
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < limit:
        Image.MAX_IMAGE_PIXELS = limit
    source: typing.Any
    if hasattr(path, "read"):
        name, source = getattr(path, "name", "<stream>"), path
    else:
        checked = check_input(path)
        name = display(checked)
        source = _io.BytesIO(sys.stdin.buffer.read()) if name == STDOUT else checked
    with _decoding(name), Image.open(source) as im:
        _check_size(name, im.size, limit)
        frames = getattr(im, "n_frames", 1)
        if frames > 1 and im.format != "MPO":
            raise ImageReadError(
                f"{name}: has {frames} frames ({im.format} animation or pages); "
                "jaxquant quantizes single images: extract one frame first (or write an "
                "animation: jaxquant compress IN -o OUT.gif, docs/palettes.md)"
            )
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = allow_truncated
        try:
            im.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous
        if im.format == "PNG" and not allow_truncated:
            _check_png_data(name, source)
        return _pil.to_array(ImageOps.exif_transpose(im))


@contextlib.contextmanager
def _decoding(name: str):
    """Pillow's errors while decoding ``name``, as one-line :class:`ImageReadError` errors."""
    from PIL import Image, UnidentifiedImageError

    try:
        yield
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{name}: no such file") from None
    except PermissionError:
        raise ImageReadError(f"{name}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{name}: not a recognised image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow's check fires on frames and tiles too; the warning arrives here only
        # when warnings are errors.
        raise ImageReadError(f"{name}: refused, too many pixels ({e})") from None
    except MemoryError:
        raise ImageReadError(f"{name}: not enough memory to decode this image") from None
    except OSError as e:
        if "truncated" in str(e):
            raise ImageReadError(
                f"{name}: the image data is truncated ({e}); --allow-truncated decodes "
                "what is there"
            ) from None
        raise ImageReadError(f"{name}: cannot decode image ({e.strerror or e})") from None
    except Exception as e:  # noqa: BLE001 - Pillow's decoders raise many kinds on bad data
        reason = str(e) or type(e).__name__
        raise ImageReadError(f"{name}: cannot decode image ({reason})") from None


class Frames(typing.NamedTuple):
    """The frames of an animation (:func:`load_frames`).

    Attributes:
      frames: ``(H, W, C)`` uint8 arrays, one per frame, every one the whole picture as
        shown at its turn (GIF disposal and APNG blending applied); ``C`` is 3, or 4 if
        any pixel of any frame is not fully opaque (fully transparent pixels' colour 0).
      durations: milliseconds each frame is shown.
      loop: how many times the animation plays (0: for ever).
    """

    frames: list
    durations: list
    loop: int


def frame_count(path) -> int:
    """The number of frames of an image file (1 for a still image or one Pillow cannot
    open: reading it will say why). Camera MPO files count as one."""
    from PIL import Image

    try:
        with Image.open(check_input(path)) as im:
            return 1 if im.format == "MPO" else int(getattr(im, "n_frames", 1))
    except Exception:  # noqa: BLE001 - load_image reports the problem with its own message
        return 1


def load_frames(path, *, max_pixels: int | None = None) -> Frames:
    """Every frame of an animated GIF, PNG (APNG) or WebP, or of a one-frame image.

    Args:
      path: the file (a regular file; not standard input).
      max_pixels: refuse frames larger than this (default :data:`MAX_PIXELS`); the
        frames together must also fit the machine's memory.

    Returns:
      :class:`Frames`.

    Raises:
      ImageReadError: as :func:`load_image`, naming the file.
    """
    from PIL import Image, ImageSequence

    limit = (
        MAX_PIXELS
        if max_pixels is None
        else _checks.check_count("max_pixels", max_pixels, minimum=1)
    )
    checked = check_input(path)
    name = display(checked)
    with _decoding(name), Image.open(checked) as im:
        _check_size(name, im.size, limit)
        count = getattr(im, "n_frames", 1)
        need, memory = im.size[0] * im.size[1] * count * 8, _physical_memory()
        if memory is not None and need > memory:  # the frames in, the frames out
            raise ImageReadError(
                f"{name}: refused, {count:,} frames of {im.size[0]}x{im.size[1]} need about "
                f"{need / 2**30:.0f} GiB of memory, more than this machine has"
            )
        frames, durations = [], []
        for frame in ImageSequence.Iterator(im):
            rgba = np.array(frame.convert("RGBA"))
            rgba[rgba[..., 3] == 0] = 0  # an invisible colour is no colour
            frames.append(rgba)
            durations.append(int(frame.info.get("duration", im.info.get("duration", 100)) or 100))
        loop = int(im.info.get("loop", 0) or 0)
    if all((f[..., 3] == 255).all() for f in frames):
        frames = [np.ascontiguousarray(f[..., :3]) for f in frames]
    return Frames(frames, durations, loop)


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _check_png_data(name: str, source) -> None:
    """Refuse a PNG whose zlib image data ends before the rows its header declares.

    Pillow decodes such a file without a word and leaves the missing rows black.
    ``source`` is the path or the binary stream the image was read from.
    """
    try:
        if isinstance(source, Path):
            data = source.read_bytes()[8:]
        else:
            source.seek(8)
            data = source.read()
    except (OSError, ValueError, AttributeError):
        return  # not seekable: Pillow's own checks are all we have
    pos, idat, header = 0, [], None
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or len(header) < 13 or header[12] != 0:
        return  # interlaced (Adam7) images: Pillow's own checks only
    width, height = int.from_bytes(header[0:4], "big"), int.from_bytes(header[4:8], "big")
    row_bytes = 1 + -(-(width * header[8] * _PNG_CHANNELS.get(header[9], 1)) // 8)
    expected = height * row_bytes
    decompressor = zlib.decompressobj()
    try:
        got = len(decompressor.decompress(b"".join(idat), expected + 1))
    except zlib.error as e:
        raise ImageReadError(f"{name}: damaged image data ({e})") from None
    if got < expected:
        raise ImageReadError(
            f"{name}: the image data stops after {got // row_bytes} of its {height} rows "
            "(truncated); --allow-truncated decodes what is there"
        )


def _check_size(path: str, size: tuple[int, int], limit: int) -> None:
    """Refuse a declared size over ``limit`` or over the machine's memory (no allocation)."""
    w, h = size
    n = w * h
    if n == 0:
        raise ImageReadError(f"{path}: image is empty ({w}x{h})")
    if n > limit:
        raise ImageReadError(
            f"{path}: refused, {w}x{h} = {n:,} pixels is over the limit of {limit:,} "
            "(a decompression bomb?); raise it with --max-pixels (max_pixels) if the image "
            "is genuine"
        )
    memory = _physical_memory()
    need = n * _BYTES_PER_PIXEL
    if memory is not None and need > memory:
        raise ImageReadError(
            f"{path}: refused, {w}x{h} = {n:,} pixels needs about {need / 2**30:.0f} GiB of "
            f"memory, more than this machine has ({memory / 2**30:.0f} GiB)"
        )


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return None


def to_pil(indices, palette):
    """An indexed (mode ``P``) PIL image from ``(H, W)`` indices and a ``(k, C)`` palette.

    Float palettes (``[0, 1]``) are rounded to 8 bits; 1-channel palettes become gray
    entries and 4-channel ones carry per-entry transparency.
    """
    from PIL import Image

    indices = np.asarray(indices)
    palette = np.asarray(palette)
    if indices.ndim != 2:
        raise ValueError(f"indices must have shape (H, W), got {indices.shape}")
    if palette.ndim != 2 or not 1 <= palette.shape[1] <= 4:
        raise ValueError(f"palette must have shape (k, C) with C in 1..4, got {palette.shape}")
    k = palette.shape[0]
    if k > 256:
        raise ValueError(
            f"an indexed PNG holds at most 256 colours, the palette has {k}; "
            "use k <= 256 or save the quantized image as RGB"
        )
    if palette.dtype != np.uint8:
        palette = np.clip(np.round(palette.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    c = palette.shape[1]
    if c == 1:
        rgb, alpha = np.repeat(palette, 3, axis=1), None
    elif c == 2:
        rgb, alpha = np.repeat(palette[:, :1], 3, axis=1), palette[:, 1]
    else:
        rgb, alpha = palette[:, :3], (palette[:, 3] if c == 4 else None)
    im = Image.fromarray(indices.astype(np.uint8), mode=None)
    im = im.convert("P") if im.mode != "P" else im
    if alpha is None:
        im.putpalette(rgb.tobytes(), "RGB")
    else:
        im.putpalette(np.concatenate([rgb, alpha[:, None]], axis=1).tobytes(), "RGBA")
    return im


# Temporary names stay within the 255-byte limit of most file systems for any output
# name: a long name is shortened to a prefix of its bytes and a digest of the rest.
_TEMP_NAME_BYTES = 160


def _temp_prefix(name: str) -> str:
    """The prefix of :func:`atomic_write`'s temporaries for an output named ``name``."""
    raw = os.fsencode(name)
    if len(raw) > _TEMP_NAME_BYTES:
        digest = hashlib.sha1(raw).hexdigest()[:16]
        head = raw[:_TEMP_NAME_BYTES].decode("utf-8", "ignore") or "out"
        name = f"{os.fsdecode(head.encode())}~{digest}"
    return f".{name}."


def _writable_target(path: Path) -> Path:
    """Where a write to ``path`` lands: a symlink's target (dangling or not).

    Raises:
      OutputError: if that is a directory, a FIFO, a device or a socket, which a rename
        would replace with a regular file.
    """
    target = Path(os.path.realpath(path))
    st = _stat(target, "output", OutputError)
    if st is not None:
        kind = special_kind(st.st_mode)
        if kind is not None:
            raise OutputError(f"{display(path)}: is {kind}; jaxquant writes regular files")
    return target


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On any error the temporary file is removed and ``path`` is left as it was: readers
    never see a half-written file. A symbolic link is written through: its target is
    replaced (atomically, beside the target) and the link stays. A directory, FIFO,
    device or socket is refused (:class:`OutputError`) rather than replaced. The file
    gets the permissions a plain ``open`` would give it (``0o666`` less the umask), not
    ``mkstemp``'s private ``0o600``.
    """
    path = _writable_target(Path(path))
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_stale_temps(paths) -> int:
    """Delete temporary files that :func:`atomic_write` left beside ``paths``.

    A process killed with SIGKILL (or by a power cut) between creating the temporary
    file and renaming it leaves ``.<name>.<random>.tmp`` beside the output (a long name
    shortened); the output itself is either absent or its previous complete version.
    Call this before writing ``paths`` again; only temporaries of these names are
    touched, so processes writing other files into the same directory are not disturbed.

    Args:
      paths: output paths (symbolic links count for their targets).

    Returns:
      The number of files removed.
    """
    by_dir: dict[Path, set[str]] = {}
    for p in map(Path, paths):
        if os.fspath(p) == STDOUT:
            continue
        p = Path(os.path.realpath(p))
        by_dir.setdefault(p.parent, set()).add(_temp_prefix(p.name))
    removed = 0
    for directory, prefixes in by_dir.items():
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            n = entry.name
            if not n.endswith(".tmp"):
                continue
            head, _, random = n[:-4].rpartition(".")
            if random and "." not in random and f"{head}." in prefixes:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed += 1
    return removed


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    # Reading the umask means setting it; do it once (not per file: writer threads).
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_SUFFIXES = _names.SUFFIXES
_BY_SUFFIX = _names.FORMAT_BY_SUFFIX

OXIPNG_LEVEL = 4
"""The ``oxipng`` preset that ``optimize=True`` runs (0-6; 4 is about 1 s for 768x512)."""

_WEBP_MAX = 16383  # the largest width or height a WebP file holds
_GIF_MAX = 65535


def _format_name(format: str) -> str:
    """A format by its current name (``"indexed"`` is ``"png"``), checked."""
    name = _names.FORMAT_ALIASES.get(format, format) if isinstance(format, str) else format
    return _checks.check_choice("format", name, FORMATS)


def output_format(path: str | os.PathLike, *, format: str | None = None) -> str:
    """The format :func:`save` writes ``path`` in: ``format`` if given, else the suffix.

    ``.png`` is ``"png"``, ``.webp`` ``"webp"``, ``.gif`` ``"gif"``; ``"-"`` (standard
    output) is ``"png"`` unless ``format`` says otherwise. An explicit ``format`` must
    agree with the suffix (``"rgb"``, a truecolour PNG, is named ``.png``).

    Raises:
      ValueError: naming the file, for an unknown suffix, an unknown format or a format
        that disagrees with the suffix.

    Examples:
      >>> output_format("out.webp"), output_format("-"), output_format("a.png", format="rgb")
      ('webp', 'png', 'rgb')
    """
    name = None if format is None else _format_name(format)
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text == STDOUT:
        return name or "png"
    suffix = Path(text).suffix.lower()
    if name is None:
        if suffix not in _BY_SUFFIX:
            raise ValueError(
                f"{display(text)}: name the output .png, .webp or .gif "
                f"(got {suffix or 'no suffix'!r}), or give the format"
            )
        return _BY_SUFFIX[suffix]
    if suffix != _SUFFIXES[name]:
        raise ValueError(
            f"{display(text)}: format {name!r} writes {_SUFFIXES[name]} files; name the output "
            f"{_SUFFIXES[name]} (got {suffix or 'no suffix'!r})"
        )
    return name


def _to_uint8(a) -> np.ndarray:
    """uint8 samples as they are; float ones (``[0, 1]``) rounded to 8 bits."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a
    return np.clip(np.round(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def _split_palette(palette) -> tuple[np.ndarray, np.ndarray | None]:
    """A ``(k, C)`` palette as ``(k, 3)`` uint8 RGB and ``(k,)`` alpha (``None``: opaque)."""
    palette = np.asarray(palette)
    if palette.ndim != 2 or not 1 <= palette.shape[1] <= 4:
        raise ValueError(f"palette must have shape (k, C) with C in 1..4, got {palette.shape}")
    k = palette.shape[0]
    if k > 256:
        raise ValueError(
            f"an indexed PNG holds at most 256 colours, the palette has {k}; "
            "use k <= 256 or save the quantized image as RGB"
        )
    palette = _to_uint8(palette)
    c = palette.shape[1]
    if c <= 2:
        return np.repeat(palette[:, :1], 3, axis=1), (palette[:, 1] if c == 2 else None)
    return palette[:, :3], (palette[:, 3] if c == 4 else None)


def _result_image(result) -> np.ndarray:
    """The quantized image of a result as uint8 ``(H, W, C)``."""
    image = _to_uint8(result.image)
    return image.reshape(image.shape[0], image.shape[1], -1)


def _palette_of(result) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """``(indices, rgb, alpha)`` of a result as a palette image, or ``None`` if it has
    more than 256 colours (``channel``/``global`` results; vector ones raise)."""
    indices = np.asarray(result.indices)
    if indices.ndim == 2:
        rgb, alpha = _split_palette(result.palette)
        if indices.size and (indices.min() < 0 or indices.max() >= rgb.shape[0]):
            raise ValueError(f"indices must lie in 0..{rgb.shape[0] - 1}")
        return indices, rgb, alpha
    image = _result_image(result)
    colours, inverse = np.unique(image.reshape(-1, image.shape[2]), axis=0, return_inverse=True)
    if len(colours) > 256:
        return None
    rgb, alpha = _split_palette(colours)
    return inverse.reshape(image.shape[:2]), rgb, alpha


def _pil_image(image: np.ndarray):
    from PIL import Image

    modes = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
    c = image.shape[2]
    return Image.fromarray(np.ascontiguousarray(image if c > 1 else image[:, :, 0]), modes[c])


def _truecolour_png(image: np.ndarray, level: int) -> bytes:
    buffer = _io.BytesIO()
    _pil_image(image).save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def _decoded(data: bytes) -> tuple[str, np.ndarray]:
    """The mode and the RGBA pixels of an encoded image (to check a re-encoding)."""
    from PIL import Image

    with Image.open(_io.BytesIO(data)) as im:
        return im.mode, np.asarray(im.convert("RGBA"))


def _oxipng(data: bytes, *, palette: bool) -> bytes:
    """``data`` re-encoded by oxipng, if smaller and decoding to the same pixels.

    The colour type is kept (a palette stays a palette, truecolour stays truecolour);
    oxipng may reorder, trim or repack the palette.
    """
    try:
        import oxipng
    except ImportError:
        raise ImportError(
            'optimize=True needs oxipng: pip install "jaxquant[optimize]" (the pyoxipng package)'
        ) from None
    out = oxipng.optimize_from_memory(
        data,
        level=OXIPNG_LEVEL,
        color_type_reduction=False,
        grayscale_reduction=False,
        palette_reduction=palette,
        strip=oxipng.StripChunks.none(),
    )
    if len(out) >= len(data):
        return data
    mode, pixels = _decoded(out)
    before_mode, before = _decoded(data)
    if mode != before_mode or not np.array_equal(pixels, before):
        return data  # never trade pixels for bytes
    return out


def _webp(image: np.ndarray, metadata: dict | None, *, optimize: bool) -> bytes:
    h, w = image.shape[:2]
    if max(h, w) > _WEBP_MAX:
        raise ValueError(
            f"a WebP image is at most {_WEBP_MAX} pixels wide and high, this one is {w}x{h}; "
            "use format 'png'"
        )
    c = image.shape[2]
    if c <= 2:  # WebP has no gray: the gray levels as equal R, G, B
        image = np.concatenate([np.repeat(image[:, :, :1], 3, axis=2), image[:, :, 1:]], axis=2)
    # method 6 is 0.3-0.7% smaller than 4 on CQ100 photos, and 30-60x slower (4-7 s).
    method = 6 if optimize else 4
    params: dict[str, typing.Any] = {
        "lossless": True,
        "quality": 100,
        "method": method,
        "exact": True,
    }
    icc = (metadata or {}).get("icc_profile")
    if icc:
        params["icc_profile"] = bytes(icc)
    buffer = _io.BytesIO()
    _pil_image(image).save(buffer, format="WEBP", **params)
    return buffer.getvalue()


def _gif(result) -> bytes:
    parts = _palette_of(result)
    if parts is None:
        raise ValueError("a GIF holds at most 256 colours; this result has more (use webp or rgb)")
    indices, rgb, alpha = parts
    h, w = indices.shape
    if max(h, w) > _GIF_MAX:
        raise ValueError(f"a GIF is at most {_GIF_MAX} pixels wide and high, this one is {w}x{h}")
    used = np.zeros(rgb.shape[0], bool)
    used[np.unique(indices)] = True
    if alpha is not None and np.any(used & (alpha > 0) & (alpha < 255)):
        raise ValueError(
            "a GIF cannot hold translucent colours (its transparency is all or nothing), "
            "and this palette has some; use format 'png' or 'webp'"
        )
    if alpha is not None:
        clear = alpha == 0
        if clear.any():  # a GIF has one transparent index: one colour for all of them
            rgb = rgb.copy()
            rgb[clear] = rgb[np.flatnonzero(clear)[0]]
    rows, palette = _png.prepare(indices, rgb, alpha)
    from PIL import Image

    im = Image.fromarray(rows, "L").convert("P")  # "L" keeps the values as indices
    im.putpalette(palette[:, :3].tobytes(), "RGB")
    params: dict[str, typing.Any] = {"optimize": False}
    if palette.shape[1] == 4 and palette[0, 3] == 0:
        params["transparency"] = 0  # prepare puts the one transparent entry first
    buffer = _io.BytesIO()
    im.save(buffer, format="GIF", **params)
    return buffer.getvalue()


def encode(
    result,
    *,
    format: str = "png",
    compress_level: int = 9,
    optimize: bool = False,
    metadata: dict | None = None,
    keep_palette: bool = False,
) -> bytes:
    """A quantization result as the bytes of an image file.

    Formats (:data:`FORMATS`; ``"indexed"`` is the older name of ``"png"``):

    - ``"png"``: a palette PNG, as small as jaxquant's own writer (:mod:`jaxquant._png`)
      makes it: the palette ordered so that neighbouring
      pixels have close indices, bit depth (1/2/4/8), row filter and zlib strategy
      chosen by trial on a sample of rows (about 0.1 s for 768x512). ``vector``
      results hold their ``k`` colours; ``channel``/``global`` results (whose levels
      combine across channels) are indexed when the image has at most 256 distinct
      colours, truecolour otherwise. Decoding gives back ``result.image`` exactly;
      index values may differ by the palette permutation.
    - ``"webp"``: lossless WebP (``quality=100``, ``method=4``, about 0.1 s for
      768x512; invisible colours kept exactly, ``exact=True``); gray images are stored
      as RGB.
    - ``"gif"``: GIF with the palette; the fully transparent entry becomes the
      transparency index (several become one, with the first one's invisible colour).
      Translucent colours cannot be stored in a GIF and are refused.
    - ``"rgb"``: the quantized image as a truecolour PNG (gray, gray+alpha, RGB or
      RGBA), for any palette size.

    Args:
      result: a :class:`~jaxquant.QuantizeResult` for one image (anything with
        ``image``, ``indices`` and ``palette``).
      format: one of :data:`FORMATS` (or ``"indexed"``).
      compress_level: zlib level 0-9 (PNG).
      optimize: spend more time for fewer bytes: PNG (``png``, ``rgb``) is re-encoded by
        oxipng (:data:`OXIPNG_LEVEL`; about 1 s for 768x512), kept only if smaller and
        decoding to the same pixels; needs ``pip install "jaxquant[optimize]"``. WebP
        uses ``method=6`` (0.3-0.7% smaller, 4-7 s for 768x512). GIF ignores it.
      metadata: colour metadata to write, as :func:`read_metadata` returns it
        (``icc_profile``, ``gamma``, ``srgb``, ``chromaticity``, ``dpi``); ``None``
        writes none. PNG writes them all (``iCCP`` instead of ``sRGB`` when both are
        given); WebP only the ICC profile; GIF holds none, they are dropped.
      keep_palette: ``png`` of a ``vector`` result: write the palette exactly as
        ``result.palette``, every entry in order, and the pixels with their indices
        (images sharing one palette then share their ``PLTE`` chunk and index values);
        slightly larger files, and ``optimize`` does not run oxipng (which may reorder
        the palette).

    Returns:
      The encoded file.

    Raises:
      ValueError: for a ``vector`` result with more than 256 colours in ``png`` or
        ``gif``, translucent colours in ``gif``, a WebP over 16383 pixels wide or high,
        an unknown format or bad metadata.
      ImportError: for ``optimize=True`` without oxipng, naming the extra to install.

    Examples:
      >>> import numpy as np, jaxquant
      >>> image = np.zeros((2, 3, 3), np.uint8); image[0] = 255
      >>> r = jaxquant.remap(image, np.array([[0, 0, 0], [255, 255, 255]], np.uint8))
      >>> data = encode(r)
      >>> data[:8], data[24]  # a PNG at 1 bit per pixel
      (b'\\x89PNG\\r\\n\\x1a\\n', 1)
      >>> encode(r, format="gif")[:3]
      b'GIF'
    """
    fmt = _format_name(format)
    level = _checks.check_count("compress_level", compress_level, minimum=0, maximum=9)
    if not isinstance(optimize, (bool, np.bool_)):
        raise TypeError(f"optimize must be True or False, got {optimize!r}")
    if metadata is not None and not isinstance(metadata, typing.Mapping):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    if fmt == "webp":
        return _webp(_result_image(result), metadata, optimize=bool(optimize))
    if fmt == "gif":
        return _gif(result)
    parts = _palette_of(result) if fmt == "png" else None
    keep = bool(keep_palette) and parts is not None and np.asarray(result.indices).ndim == 2
    if parts is not None:
        data = _png.encode_indexed(*parts, level=level, keep_palette=keep)
    else:
        data = _truecolour_png(_result_image(result), level)
    if optimize and not keep:
        data = _oxipng(data, palette=parts is not None)
    return _png.insert_chunks(data, _png.metadata_chunks(dict(metadata or {})))


def save(
    result,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    compress_level: int = 9,
    optimize: bool = False,
    metadata: dict | None = None,
    keep_palette: bool = False,
) -> int:
    """Write a quantization result, atomically, in the format ``path`` names.

    See :func:`encode` for the formats and options. A symbolic link is written through
    to its target; ``"-"`` writes to standard output.

    Args:
      result: a :class:`~jaxquant.QuantizeResult` for one image.
      path: the output file (its directory must exist), named ``.png``, ``.webp`` or
        ``.gif``, or ``"-"``.
      format: one of :data:`FORMATS`; ``None`` chooses from the suffix (``"-"``:
        ``"png"``). An explicit format must agree with the suffix (``"rgb"``:
        ``.png``); see :func:`output_format`.
      compress_level: zlib level 0-9 (PNG).
      optimize: re-encode PNG with oxipng (see :func:`encode`).
      metadata: colour metadata to write (see :func:`read_metadata`); ``None`` writes
        none.
      keep_palette: write a PNG's palette exactly as ``result.palette`` (see
        :func:`encode`).

    Returns:
      The size of the written file in bytes.

    Raises:
      ValueError: for a suffix that names no format or disagrees with ``format``, what
        :func:`encode` refuses, and (:class:`OutputError`) a path that is a directory,
        FIFO, device or socket.
      OSError: if the file cannot be written.

    Examples:
      >>> import numpy as np, jaxquant, tempfile, os
      >>> image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
      >>> grays = np.array([[0, 0, 0], [128, 128, 128], [255, 255, 255]], np.uint8)
      >>> r = jaxquant.remap(image, grays)
      >>> path = os.path.join(tempfile.mkdtemp(), "out.png")
      >>> jaxquant.save(r, path) > 0
      True
    """
    fmt = output_format(path, format=format)
    data = encode(
        result,
        format=fmt,
        compress_level=compress_level,
        optimize=optimize,
        metadata=metadata,
        keep_palette=keep_palette,
    )
    if os.fspath(path) == STDOUT:
        return write_stdout(data)
    with atomic_write(Path(path)) as tmp:
        tmp.write_bytes(data)
    return len(data)


def write_stdout(data: bytes) -> int:
    """Write bytes to standard output (binary) and flush; returns their number."""
    out = sys.stdout.buffer
    out.write(data)
    out.flush()
    return len(data)


def save_png(
    result,
    path: str | os.PathLike,
    *,
    compress_level: int = 9,
    optimize: bool = False,
    metadata: dict | None = None,
) -> int:
    """Write a result as an indexed PNG: ``save(result, path, format="png")``.

    Args:
      result: a :class:`~jaxquant.QuantizeResult` for one image.
      path: the output ``.png`` file; its directory must exist.
      compress_level: zlib level 0-9.
      optimize: re-encode with oxipng (see :func:`encode`).
      metadata: colour metadata to write (see :func:`read_metadata`).

    Returns:
      The size of the written file in bytes.
    """
    return save(
        result,
        path,
        format="png",
        compress_level=compress_level,
        optimize=optimize,
        metadata=metadata,
    )


_METADATA_KEYS = ("icc_profile", "gamma", "srgb", "chromaticity", "dpi")


def read_metadata(source) -> dict:
    """The colour metadata of an image file that :func:`encode` can write again.

    Keys (each present only when the file has it): ``icc_profile`` (bytes),
    ``gamma`` (float, PNG ``gAMA``), ``srgb`` (rendering intent 0-3, PNG ``sRGB``),
    ``chromaticity`` (8 floats, PNG ``cHRM``: white point and red, green, blue
    primaries), ``dpi`` (x, y; PNG ``pHYs``, JPEG, TIFF...).

    Args:
      source: a path, ``bytes`` of a file, a binary file object, or a PIL image.

    Returns:
      A dict, empty when the file has none of these.

    Raises:
      ImageReadError: if ``source`` is a path or bytes that cannot be opened as an image.

    Examples:
      >>> import io as _io
      >>> from PIL import Image
      >>> buffer = _io.BytesIO()
      >>> Image.new("RGB", (1, 1)).save(buffer, "PNG", dpi=(72, 72))
      >>> read_metadata(buffer.getvalue())["dpi"]
      (72, 72)
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, Image.Image):
        return _metadata_of(source.info)
    stream: typing.Any
    if isinstance(source, (bytes, bytearray, memoryview)):
        name, stream = "<bytes>", _io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        name, stream = getattr(source, "name", "<stream>"), source
    else:
        checked = check_input(source)
        name, stream = display(checked), checked
    try:
        with Image.open(stream) as im:
            return _metadata_of(im.info)
    except UnidentifiedImageError:
        raise ImageReadError(f"{name}: not a recognised image file") from None
    except OSError as e:
        raise ImageReadError(f"{name}: cannot read ({e.strerror or e})") from None


def _metadata_of(info: dict) -> dict:
    out: dict[str, typing.Any] = {}
    for key in _METADATA_KEYS:
        value = info.get(key)
        if value is None or (key == "icc_profile" and not value):
            continue
        if key == "dpi":  # pHYs holds pixels per metre: 72 dpi reads back as 72.009
            value = tuple(round(v) if abs(v - round(v)) < 0.02 else v for v in map(float, value))
            if len(value) != 2 or min(value) <= 0:
                continue
        elif key == "chromaticity":
            value = tuple(float(v) for v in value)
        elif key == "gamma":
            value = float(value)
        elif key == "srgb":
            value = int(value)
        out[key] = value
    return out


def save_image(image, path: str | os.PathLike, *, format: str | None = None, **params) -> int:
    """Write a PIL image atomically in the format its suffix names (PNG, GIF, JPEG...).

    A symbolic link is written through to its target; ``"-"`` writes to standard
    output (then ``format`` names the format, default PNG).

    Args:
      image: a PIL image (e.g. from :mod:`jaxquant.report`).
      path: the output file; its suffix chooses the format among those Pillow writes.
      format: the Pillow format for ``"-"`` (e.g. ``"GIF"``); ignored for files.
      **params: passed to ``PIL.Image.Image.save`` (e.g. ``save_all=True`` and
        ``append_images`` for an animation).

    Returns:
      The size of the written file in bytes.

    Raises:
      ValueError: for a suffix Pillow cannot write.
      OSError: if the file cannot be written.

    Examples:
      >>> import os, tempfile
      >>> from PIL import Image
      >>> save_image(Image.new("RGB", (4, 4)), os.path.join(tempfile.mkdtemp(), "a.gif")) > 0
      True
    """
    if os.fspath(path) == STDOUT:
        buffer = _io.BytesIO()
        image.save(buffer, format=format or "PNG", **params)
        return write_stdout(buffer.getvalue())
    path = Path(path)
    fmt = image_format(path)
    with atomic_write(path) as tmp:
        image.save(tmp, format=fmt, **params)
        size = tmp.stat().st_size
    return size


def image_format(path: str | os.PathLike) -> str:
    """The Pillow format a path's suffix names, e.g. ``"PNG"`` for ``x.png``.

    Raises:
      ValueError: for a suffix Pillow cannot write.
    """
    from PIL import Image

    Image.init()
    suffix = Path(path).suffix.lower()
    fmt = Image.EXTENSION.get(suffix)
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(
            f"{display(path)}: unknown image suffix {suffix or '(none)'!r}; name the file .png, "
            ".gif, .jpg, .webp, .bmp or .tiff"
        )
    return fmt
