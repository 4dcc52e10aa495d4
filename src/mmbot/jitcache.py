"""Where numba keeps mmbot's compiled code: one cache directory per version of the sources.

numba's ``cache=True`` keys a cached function on its *own* source file only, but a compiled caller
inlines its callees: editing a callee in another file (the venue, the strategy, a guard) would
leave the caller's cached machine code stale, silently. So the cache lives in a directory named
after a digest of every ``.py`` file of the package: any source change means a fresh directory
(one cold compile), never stale code. ``configure`` runs when ``mmbot`` is imported, before any
compiled function is defined; a ``NUMBA_CACHE_DIR`` set by the user wins.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_PREFIX = "numba-"


def source_digest(root: Path = PACKAGE_DIR) -> str:
    """sha256 over the relative path and bytes of every ``.py`` file below ``root`` (16 hex)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


def configure(root: Path = PACKAGE_DIR) -> Path | None:
    """Point numba's cache at ``root/__pycache__/numba-<digest>`` (or a temp dir when the package
    is read-only) and delete the directories of older sources beside it. Returns the directory, or
    None when the user chose one with ``NUMBA_CACHE_DIR``."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    name = _PREFIX + source_digest(root)
    base = root / "__pycache__"
    cache = base / name
    if not _writable_dir(cache):
        base = Path(tempfile.gettempdir()) / f"mmbot-{os.getuid() if hasattr(os, 'getuid') else 0}"
        cache = base / name
        _writable_dir(cache)
    for old in base.glob(_PREFIX + "*"):
        if old.name != name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)  # another process may be removing it too
    os.environ["NUMBA_CACHE_DIR"] = str(cache)
    numba_config = sys.modules.get("numba.core.config")
    if numba_config is not None:  # numba imported before mmbot: its config has read the env already
        numba_config.CACHE_DIR = str(cache)
    return cache
