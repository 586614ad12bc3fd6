"""Warm starts: JAX's persistent compilation cache and a store of compiled programs.

JAX's persistent cache saves compiling a program again, but a fresh process must still
trace and lower the function to find it there: for the fit program of a 768x512 photo
that is 0.5-0.8 s of a 1 s first call. :class:`StoredProgram` skips that too. It keys a
serialized executable (:mod:`jax.experimental.serialize_executable`) by everything that
determines the program without tracing it: the function, its static arguments, the
structure and abstract values of its array arguments, the source of jaxquant, the
versions of JAX, jaxlib and optax, the backend, its devices and the CPU, ``XLA_FLAGS``
and JAX's configuration. When anything it cannot vouch for takes part (a function or
type from outside jaxquant, optax and JAX, an object known only by its address, a traced
or sharded argument), the call goes to the ordinary ``jax.jit`` function instead.

Both are off until :func:`enable_compilation_cache` (the command line calls it; Python
code may). The store lives in ``<cache dir>/programs``, beside JAX's entries; like JAX's
cache it holds native code, so it must be a directory only you can write.

This module imports JAX only when a program is called or the cache is enabled after JAX
was imported, so the command line can enable it before its argument checks are done.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import inspect
import os
import pickle
import platform
import sys
import tempfile
import types
from typing import Any

from jaxquant._threads import cpu_threads

__all__ = [
    "MAX_PROGRAMS",
    "StoredProgram",
    "default_cache_dir",
    "enable_compilation_cache",
    "program_dir",
]

# The store keeps at most this many programs, dropping the least recently used.
MAX_PROGRAMS = 256
_FORMAT = 1
_SUFFIX = ".jaxprog"
_SETTINGS = {
    "jax_persistent_cache_min_compile_time_secs": 0.0,
    "jax_persistent_cache_min_entry_size_bytes": 0,
}
_state: dict[str, Any] = {"dir": None, "environment": None}
# Modules whose functions and types a key may name: their code is part of the key
# (jaxquant's source) or of a version in it (JAX, jaxlib, optax, NumPy, the standard
# library).
_TRUSTED = ("jaxquant", "optax", "jax", "jaxlib", "numpy", "builtins", "functools", "typing")


def default_cache_dir() -> str:
    """``$JAXQUANT_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/jaxquant/xla`` (by default
    ``~/.cache/jaxquant/xla``). An empty ``JAXQUANT_CACHE_DIR`` means no cache."""
    env = os.environ.get("JAXQUANT_CACHE_DIR")
    if env is not None:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxquant", "xla")


def enable_compilation_cache(path: str | os.PathLike | None = None) -> str | None:
    """Keep compiled programs on disk, so the next process starts warm.

    Turns on JAX's persistent compilation cache in ``path`` and jaxquant's store of
    compiled programs in ``path/programs``: a later process that fits an image of a size
    and colour count seen before neither compiles nor traces its main programs (see
    ``docs/scaling.md`` for the numbers). The command line does this by default
    (``--cache-dir``); in Python it is opt-in, as JAX's own cache is, because it writes
    to your disk.

    Set ``JAXQUANT_PROGRAM_STORE=0`` to keep JAX's cache without the store.

    Args:
      path: the directory; ``None`` for :func:`default_cache_dir`; ``""`` turns the
        store off again (JAX's cache setting is then left as it is).

    Returns:
      The directory in use, or ``None`` when it is off or cannot be created (a cache
      that cannot be written only costs compile time; it never fails the caller).

    Examples:
      >>> import os, tempfile, jaxquant
      >>> where = jaxquant.enable_compilation_cache(tempfile.mkdtemp())
      >>> os.path.isdir(os.path.join(where, "programs"))
      True
      >>> jaxquant.enable_compilation_cache("") is None
      True
    """
    path = default_cache_dir() if path is None else os.fspath(path)
    if not path:
        _state["dir"] = None
        return None
    programs = os.path.join(path, "programs")
    try:
        os.makedirs(programs, exist_ok=True)
    except OSError:
        return None
    settings = {"jax_compilation_cache_dir": path, **_SETTINGS}
    if "jax" in sys.modules:
        import jax

        for name, value in settings.items():
            jax.config.update(name, value)
    else:  # read when JAX is imported: enabling the cache does not import it
        for name, value in settings.items():
            os.environ[name.upper()] = str(value)
    # JAXQUANT_PROGRAM_STORE=0 keeps JAX's cache but not the store (to compare, or to
    # rule it out).
    _state["dir"] = None if os.environ.get("JAXQUANT_PROGRAM_STORE") == "0" else programs
    return path


def program_dir() -> str | None:
    """The directory of the program store, or ``None`` when it is off."""
    return _state["dir"]


class StoredProgram:
    """``jax.jit(fun, static_argnames=...)`` whose executables are also kept on disk.

    Called like the jitted function, with the array arguments positional and the static
    ones by keyword. With the store off, or for a call it cannot key safely, it is the
    jitted function. Otherwise a program found on disk is loaded and run without
    tracing; a missing one is compiled (bypassing JAX's persistent cache, whose
    executables do not serialize again on CPU), checked by running it, and stored.
    """

    def __init__(self, fun, *, static_argnames: tuple[str, ...] = ()):
        import jax

        self.jitted = jax.jit(fun, static_argnames=static_argnames)
        self.static_argnames = frozenset(static_argnames)
        # Positional parameter names, to find static arguments passed by position.
        self._positional = [
            p.name
            for p in inspect.signature(fun).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        self.name = f"{fun.__module__}.{fun.__qualname__}"
        self._loaded: dict[str, Any] = {}
        self.compiled = 0  # programs this wrapper compiled for the store (not loaded)

    def __call__(self, *args, **kwargs):
        store = _state["dir"]
        if store is None:
            return self.jitted(*args, **kwargs)
        # The compiled program takes the array arguments only, in order.
        static = dict(kwargs)
        dynamic = []
        for i, value in enumerate(args):
            name = self._positional[i] if i < len(self._positional) else None
            if name in self.static_argnames:
                static[name] = value
            else:
                dynamic.append(value)
        key = self._key(tuple(dynamic), static)
        if key is None:
            return self.jitted(*args, **kwargs)
        compiled = self._loaded.get(key)
        if compiled is not None:
            return compiled(*dynamic)
        path = os.path.join(store, key + _SUFFIX)
        compiled = _load(path, dynamic)
        if compiled is not None:
            with contextlib.suppress(Exception):  # a failed run falls back below
                out = compiled(*dynamic)
                self._loaded[key] = compiled
                return out
            _remove(path)
        return self._compile_and_store(path, key, (args, kwargs), dynamic)

    def _compile_and_store(self, path: str, key: str, call, args):
        import jax
        from jax.experimental import serialize_executable

        lowered = self.jitted.lower(*call[0], **call[1])
        with _without_jax_cache():
            compiled = lowered.compile()
        self.compiled += 1
        try:
            blob, in_tree, out_tree = serialize_executable.serialize(compiled)
            skeleton = jax.tree_util.tree_unflatten(out_tree, list(range(out_tree.num_leaves)))
            data = pickle.dumps(
                {"format": _FORMAT, "name": self.name, "executable": blob, "out": skeleton}
            )
            # The program run from its serialized form: what a later process will load.
            loaded = serialize_executable.deserialize_and_load(blob, in_tree, out_tree)
            out = loaded(*args)
            jax.block_until_ready(out)
        except Exception:  # not serializable, or it does not run once loaded
            self._loaded[key] = compiled
            return compiled(*args)
        _write(path, data)
        self._loaded[key] = loaded
        return out

    def _cache_size(self) -> int:
        """Programs compiled in this process, by either path (for no-recompile tests)."""
        return self.jitted._cache_size() + len(self._loaded)  # type: ignore[attr-defined]

    def _key(self, args, static) -> str | None:
        import jax

        if not set(static) <= self.static_argnames:
            return None
        leaves, tree = jax.tree_util.tree_flatten(args)
        avals = []
        for leaf in leaves:
            aval = _aval(leaf)
            if aval is None:
                return None
            avals.append(aval)
        if not (_trusted_tree(tree) and all(_trusted(v) for v in static.values())):
            return None
        environment = _environment()
        text = repr(
            (
                _FORMAT,
                self.name,
                sorted((name, _describe(v)) for name, v in static.items()),
                str(tree),
                avals,
                environment,
            )
        )
        # No readable environment (an old JAX), or an object known only by its address
        # (not the same in the next process): no key.
        if not environment or " at 0x" in text:
            return None
        return hashlib.sha256(text.encode()).hexdigest()


def _aval(leaf) -> str | None:
    """The abstract value of an argument leaf, or ``None`` if the store cannot take it."""
    import jax
    import numpy as np

    if isinstance(leaf, jax.core.Tracer):
        return None
    if isinstance(leaf, jax.Array):
        if not leaf.is_fully_addressable or len(leaf.devices()) != 1:
            return None
        typeof = getattr(jax, "typeof", None) or (lambda x: x.aval)
        return f"{typeof(leaf)}@{leaf.sharding}"
    if isinstance(leaf, (np.ndarray, np.generic)):
        return f"np:{leaf.dtype}{leaf.shape}"
    if isinstance(leaf, (bool, int, float, complex)):
        return f"py:{type(leaf).__name__}"
    return None


def _trusted_module(obj) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module.split(".")[0] in _TRUSTED


def _trusted(value, depth: int = 0) -> bool:
    """Whether a static value is fully described by its repr and the key's versions."""
    if depth > 8:
        return False
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return True
    if type(value) in (tuple, list, frozenset, set):
        return all(_trusted(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(_trusted(k, depth + 1) and _trusted(v, depth + 1) for k, v in value.items())
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)):
        return _trusted_module(value) and "<" not in value.__qualname__
    if isinstance(value, functools.partial):
        return (
            _trusted(value.func, depth + 1)
            and _trusted(value.args, depth + 1)
            and _trusted(value.keywords, depth + 1)
        )
    if not _trusted_module(type(value)):
        return False
    if dataclasses.is_dataclass(value):
        return all(_trusted(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return all(_trusted(v, depth + 1) for v in value)
    import numpy as np

    return isinstance(value, (np.dtype, np.generic))


def _trusted_tree(tree) -> bool:
    """Whether every node type and auxiliary datum of a tree structure is trusted."""
    kind, aux = tree.node_data() or (None, None)
    if kind is not None and not (_trusted_module(kind) and _trusted(aux)):
        return False
    return all(_trusted_tree(child) for child in tree.children())


def _describe(value) -> str:
    """A static value's key: functions and types by their qualified names."""
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def _environment() -> str:
    """Everything outside the call that decides the program: the versions, devices and
    CPU (computed once) and JAX's configuration (read at every call: it can change)."""
    import jax

    values = getattr(jax.config, "values", None)
    if values is None:  # an old JAX: its configuration cannot be read, so no keys
        return ""
    if _state["environment"] is None:
        import importlib.metadata

        import jaxlib

        devices = jax.local_devices()
        _state["environment"] = repr(
            (
                _source_digest(),
                jax.__version__,
                jaxlib.__version__,
                importlib.metadata.version("optax"),
                jax.default_backend(),
                devices[0].client.platform_version,
                [d.device_kind for d in devices],
                jax.process_count(),
                os.environ.get("XLA_FLAGS", ""),
                os.environ.get("LIBTPU_INIT_ARGS", ""),
                _cpu(),
                cpu_threads(),  # XLA may split loops by the size of its thread pool
            )
        )
    config = [
        (name, value)
        for name, value in sorted(values.items())
        if not any(part in name for part in ("cache", "log", "explain"))
    ]
    return _state["environment"] + repr(config)


def _source_digest() -> str:
    """A digest of jaxquant's Python source: any edit gives new keys."""
    root = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                digest.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as f:
                    digest.update(f.read())
    return digest.hexdigest()


def _cpu() -> str:
    """The processor and its instruction-set features (native code is built for them)."""
    text = f"{platform.machine()} {platform.processor()}"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "model name", "Features", "CPU part")):
                    text += "|" + line.strip()
                if line.strip() == "":
                    break  # the first processor describes them all
    return hashlib.sha256(text.encode()).hexdigest()


@contextlib.contextmanager
def _without_jax_cache():
    """JAX's persistent cache off for one compile, then back as it was."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    was = jax.config.values.get("jax_enable_compilation_cache", True)
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()
    try:
        yield
    finally:
        jax.config.update("jax_enable_compilation_cache", was)
        compilation_cache.reset_cache()


def _load(path: str, args):
    """A stored program, loaded for ``args``; ``None`` if absent or unreadable."""
    import jax
    from jax.experimental import serialize_executable

    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except FileNotFoundError:
        return None
    except Exception:  # truncated or from another version: drop it
        _remove(path)
        return None
    try:
        if data.get("format") != _FORMAT:
            raise ValueError("another format")
        in_tree = jax.tree_util.tree_structure((tuple(args), {}))
        out_tree = jax.tree_util.tree_structure(data["out"])
        compiled = serialize_executable.deserialize_and_load(data["executable"], in_tree, out_tree)
    except Exception:
        _remove(path)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: kept when the store is trimmed
    return compiled


def _write(path: str, data: bytes) -> None:
    """Write a program atomically, then trim the store to :data:`MAX_PROGRAMS`."""
    folder = os.path.dirname(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            _remove(tmp)
            raise
    except OSError:
        return  # a full or read-only disk only costs the next process a compile
    _trim(folder)


def _trim(folder: str) -> None:
    try:
        entries = [e for e in os.scandir(folder) if e.name.endswith(_SUFFIX)]
    except OSError:
        return
    if len(entries) <= MAX_PROGRAMS:
        return
    entries.sort(key=lambda e: e.stat().st_mtime)
    for entry in entries[: len(entries) - MAX_PROGRAMS]:
        _remove(entry.path)


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
