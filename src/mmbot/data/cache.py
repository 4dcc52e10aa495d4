"""Parsed-file cache: a file is parsed once and its events + ReadStats stored as ``.npz``.

Key: absolute path, size, mtime (ns) and the read options; a changed file (size or mtime) gives a
new key, so a stale entry is never used (it is simply reparsed). Directory: ``$MMBOT_CACHE_DIR`` or
``~/.cache/mmbot``. Set ``MMBOT_CACHE_DIR=off`` to disable. A cache file that cannot be read is
ignored and rewritten; a cache directory that cannot be written only loses the caching.

Bounded: after each write the entries are kept newest-used first up to ``$MMBOT_CACHE_MAX_MB``
(default ``DEFAULT_MAX_MB``) and the least recently used beyond it are deleted (a hit marks an entry
used by touching its mtime). ``info()`` and ``clear()`` back ``mmbot cache info|clear``
(docs/cache.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from mmbot import env
from mmbot.data.core import ReadStats
from mmbot.events import EVENT_DTYPE

CACHE_VERSION = 1  # bump when the reader's output for a given input changes
DEFAULT_MAX_MB = 1024.0  # about 25 captures the size of the 345 s USD-M one (38 MB parsed)
MAX_MB_ENV = "MMBOT_CACHE_MAX_MB"
_ENTRY_GLOB = "events-*.npz"


def cache_dir() -> Path | None:
    d = env.read("MMBOT_CACHE_DIR")
    if d is not None and d.strip().lower() in ("off", "0", "none", ""):
        return None
    return Path(d).expanduser() if d else Path.home() / ".cache" / "mmbot"


def _code_fingerprint() -> list:
    """Size and mtime of the reader modules: an edited reader never serves stale cached output."""
    here = Path(__file__).resolve().parent
    out = []
    for f in sorted(here.glob("*.py")):
        if f.name in ("synthetic.py", "calibrate.py"):
            continue
        st = f.stat()
        out.append([f.name, st.st_size, st.st_mtime_ns])
    return out


def cache_key(path: Path, options: dict) -> str:
    p = Path(path).resolve()
    st = p.stat()
    raw = json.dumps(
        {
            "v": CACHE_VERSION,
            "code": _code_fingerprint(),
            "path": str(p),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "opt": options,
        },
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def cache_file(path: Path, options: dict) -> Path | None:
    d = cache_dir()
    if d is None:
        return None
    return d / f"events-{cache_key(path, options)}.npz"


def get(path: Path, options: dict) -> tuple[np.ndarray, ReadStats] | None:
    """Cached (events, stats) for ``path`` if present and current, else None."""
    try:
        f = cache_file(path, options)
    except OSError:
        return None
    if f is None or not f.exists():
        return None
    try:
        with np.load(f, allow_pickle=False) as z:
            events = z["data"]
            meta = json.loads(str(z["stats_json"]))
        if events.dtype != EVENT_DTYPE:
            return None
        st = ReadStats(**meta)
        st.from_cache = True
        with contextlib.suppress(OSError):
            os.utime(f)  # most recently used
        return events, st
    except Exception:  # noqa: BLE001 - an unreadable cache entry is just a miss
        return None


def put(path: Path, options: dict, events: np.ndarray, stats: ReadStats) -> Path | None:
    """Store (events, stats); atomic (temp file + rename). Returns the cache file or None."""
    try:
        f = cache_file(path, options)
        if f is None:
            return None
        f.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=f.parent, suffix=".tmp.npz")
        os.close(fd)
        meta = stats.to_json_dict()
        meta["from_cache"] = False
        np.savez(tmp, data=events, stats_json=np.array(json.dumps(meta, sort_keys=True)))
        os.replace(tmp, f)
        evict(f.parent, max_bytes())
        return f if f.exists() else None
    except OSError:
        return None


def max_bytes() -> int:
    """The size bound: ``$MMBOT_CACHE_MAX_MB`` (a number of MB) or ``DEFAULT_MAX_MB``."""
    raw = (env.read(MAX_MB_ENV) or "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_MAX_MB
    except ValueError:
        mb = DEFAULT_MAX_MB
    return int(max(mb, 0.0) * 1e6)


def _entries(d: Path) -> list[tuple[Path, int, int]]:
    """(file, bytes, mtime_ns) of every cache entry, most recently used first."""
    out = []
    for f in d.glob(_ENTRY_GLOB):
        with contextlib.suppress(OSError):
            st = f.stat()
            out.append((f, st.st_size, st.st_mtime_ns))
    out.sort(key=lambda e: e[2], reverse=True)
    return out


def evict(d: Path, limit_bytes: int) -> list[Path]:
    """Delete the least recently used entries beyond ``limit_bytes``; returns what was deleted."""
    total = 0
    removed = []
    for f, size, _ in _entries(d):
        total += size
        if total > limit_bytes:
            with contextlib.suppress(OSError):
                f.unlink()
                removed.append(f)
    return removed


def info() -> dict:
    """Where the cache is, its entries and bytes, and its bound."""
    d = cache_dir()
    entries = _entries(d) if d is not None and d.is_dir() else []
    return {
        "dir": str(d) if d is not None else None,
        "entries": len(entries),
        "bytes": sum(e[1] for e in entries),
        "max_bytes": max_bytes(),
    }


def clear() -> tuple[int, int]:
    """Delete every entry (and leftover temporary files); returns (files, bytes) removed."""
    d = cache_dir()
    if d is None or not d.is_dir():
        return 0, 0
    n = size = 0
    for f in [*d.glob(_ENTRY_GLOB), *d.glob("*.tmp.npz")]:
        with contextlib.suppress(OSError):
            b = f.stat().st_size
            f.unlink()
            n += 1
            size += b
    return n, size
