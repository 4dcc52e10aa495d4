"""Where numba keeps mmbot's compiled code: one cache directory per version of the compiled sources.

numba's ``cache=True`` keys a cached function on its *own* source file only, but a compiled caller
inlines its callees and freezes the globals it reads: editing a callee or a constant in another
file (the venue, the strategy, a guard, the event layout) would leave the caller's cached machine
code stale, silently. So the cache lives in a directory named after a digest of the *compiled
closure*: every module of the package that mentions numba, plus every package module those import,
transitively (parent packages included). Any change there means a fresh directory (one cold
compile), never stale code; an edit elsewhere (the CLI, the soak runner, the tuner, reports) keeps
the cache. A ``NUMBA_CACHE_DIR`` set by the user wins.

``import mmbot`` does not touch the environment: each entry point calls ``configure`` itself,
before it imports any compiled module (numba picks a function's cache directory when the function
is defined): the CLI (``mmbot.cli``), the notebook API (``mmbot.backtest(...)``, ``mmbot.load_events``
and ``mmbot.api``), the tests (``tests/conftest.py``), the bench scripts, and the sweep's spawned and
Ray workers (``mmbot.sweep.remote``); the soak's forked workers inherit the parent's setting.
Code that imports a compiled module without it gets numba's default cache beside the sources,
which can go stale as described above; ``configure`` warns when compiled functions were defined
before it ran.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from mmbot import env

PACKAGE_DIR = Path(__file__).resolve().parent
_PREFIX = "numba-"
KEEP_OTHER = 2  # cache directories of other source versions kept beside the current one


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:  # removed meanwhile by another process
        return 0


def _module_names(root: Path) -> dict[str, Path]:
    """Dotted module name (``<root.name>.sub.mod``) -> file, for every ``.py`` below ``root``."""
    out: dict[str, Path] = {}
    for p in sorted(root.rglob("*.py")):
        if "__pycache__" in p.parts:  # the engine writes per-quoter loop copies there
            continue
        parts = [root.name, *p.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


_IMPORT = re.compile(
    rb"^[ \t]*(?:from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)|import[ \t]+([^\n]*))",
    re.MULTILINE,
)


def _package_imports(name: str, is_package: bool, src: bytes, modules: dict[str, Path]) -> set[str]:
    """The package modules module ``name`` (source ``src``) imports anywhere in its body (absolute
    or relative), with every parent package of each (importing ``a.b.c`` runs ``a/__init__`` and
    ``a/b/__init__``). A line scan, not ``ast``: it runs on every ``import mmbot`` and parsing
    costs ~0.5 s; a match inside a string only adds a file (a safe error)."""
    pkg = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for dots, mod, names, plain in _IMPORT.findall(src):
        listed = re.sub(rb"#[^\n]*", b"", plain or names).decode().strip("()").split(",")
        listed = [n.split()[0] for n in listed if n.strip()]  # `x as y` -> x
        if plain:
            found.update(listed)
            continue
        if dots:
            parts = pkg.split(".")
            mod = ".".join(parts[: len(parts) - (len(dots) - 1)] + ([mod.decode()] if mod else []))
        else:
            mod = mod.decode()
        found.add(mod)
        found.update(f"{mod}.{n}" for n in listed)  # `from pkg import submodule`
    out: set[str] = set()
    for dotted in found:
        parts = dotted.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out & modules.keys()


def _closure_sources(root: Path) -> dict[Path, bytes]:
    """File -> bytes for the compiled closure (see `compiled_closure`); each file read once."""
    modules = _module_names(root)
    src = {m: p.read_bytes() for m, p in modules.items()}
    todo = [m for m, b in src.items() if b"numba" in b]
    seen: set[str] = set()
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            is_pkg = modules[m].name == "__init__.py"
            todo.extend(_package_imports(m, is_pkg, src[m], modules) - seen)
    return {modules[m]: src[m] for m in sorted(seen, key=lambda m: modules[m])}


def compiled_closure(root: Path = PACKAGE_DIR) -> list[Path]:
    """The files whose contents can end up in compiled code: modules that mention numba and,
    transitively, every package module they import. Sorted."""
    return list(_closure_sources(root))


def source_digest(root: Path = PACKAGE_DIR) -> str:
    """sha256 over the relative path and bytes of every file of the compiled closure (16 hex)."""
    h = hashlib.sha256()
    for p, src in _closure_sources(root).items():
        h.update(p.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(src)
    return h.hexdigest()[:16]


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


def compiled_functions_defined() -> list[str]:
    """Names of the package's compiled functions defined so far (numba dispatchers in imported
    ``mmbot`` modules): their cache directory was fixed when they were defined."""
    if "numba" not in sys.modules:
        return []
    from numba.core.dispatcher import Dispatcher

    out = []
    for name, mod in list(sys.modules.items()):
        if name.startswith(PACKAGE_DIR.name + ".") and mod is not None:
            out += [f"{name}.{k}" for k, v in vars(mod).items() if isinstance(v, Dispatcher)]
    return sorted(out)


def configure(root: Path = PACKAGE_DIR) -> Path | None:
    """Point numba's cache at ``root/__pycache__/numba-<digest>`` (or a temp dir when the package
    is read-only). Beside it, the ``KEEP_OTHER`` most recently written directories of other sources
    stay (a soak still running on the sources before an edit keeps its cache) and older ones are
    deleted. Returns the directory, or None when ``NUMBA_CACHE_DIR`` is set already (by the user,
    by an earlier call, or inherited from the process that started this one)."""
    if env.read("NUMBA_CACHE_DIR"):
        return None
    early = compiled_functions_defined() if root == PACKAGE_DIR else []
    if early:
        warnings.warn(
            f"mmbot.jitcache.configure() ran after {len(early)} compiled functions were defined "
            f"(first: {early[0]}); they keep numba's default cache beside the sources: call it "
            "before importing compiled modules",
            RuntimeWarning,
            stacklevel=2,
        )
    name = _PREFIX + source_digest(root)
    base = root / "__pycache__"
    cache = base / name
    if not _writable_dir(cache):
        base = Path(tempfile.gettempdir()) / f"mmbot-{os.getuid() if hasattr(os, 'getuid') else 0}"
        cache = base / name
        _writable_dir(cache)
    others = [d for d in base.glob(_PREFIX + "*") if d.name != name and d.is_dir()]
    others.sort(key=_mtime_ns, reverse=True)
    for old in others[KEEP_OTHER:]:
        shutil.rmtree(old, ignore_errors=True)  # another process may be removing it too
    env.write("NUMBA_CACHE_DIR", str(cache))
    numba_config = sys.modules.get("numba.core.config")
    if numba_config is not None:  # numba imported before mmbot: its config has read the env already
        numba_config.CACHE_DIR = str(cache)
    return cache
