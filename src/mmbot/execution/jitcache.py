"""Keep numba's on-disk cache honest across modules.

numba's ``cache=True`` keys a cached function on its *own* source file only; a compiled caller
inlines its callees, so editing a callee in another file (the venue, the strategy, a guard) leaves
the caller's cached machine code stale, silently. ``drop_stale`` deletes a module's cache files
when any dependency's source is newer than them, so the next call recompiles. It is called at
import time by the modules whose compiled functions call into other files (a few stat calls).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def drop_stale(module_file: str, deps: Iterable[str]) -> int:
    """Delete ``module_file``'s numba cache files older than any of ``deps``; returns how many."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return 0  # a relocated cache is managed by whoever set it
    src = Path(module_file)
    cache_dir = src.parent / "__pycache__"
    if not cache_dir.is_dir():
        return 0
    try:
        newest = max(Path(d).stat().st_mtime for d in [module_file, *deps])
    except (OSError, ValueError):
        return 0
    removed = 0
    for f in cache_dir.glob(f"{src.stem}.*.nb[ic]"):
        try:
            if f.stat().st_mtime < newest:
                f.unlink()
                removed += 1
        except OSError:
            pass  # another process got there first
    return removed


def module_files(*modules: object) -> list[str]:
    """Source paths of imported modules (``module.__file__``)."""
    return [str(m.__file__) for m in modules if getattr(m, "__file__", None)]
