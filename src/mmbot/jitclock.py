"""Compile time, measured apart from the work it is compiled for; and whether a compile is coming.

numba compiles the venue, the strategy and the readers the first time they run after the compiled
sources changed (``mmbot.jitcache`` keys the cache on them). That can take a minute on a small
machine while the work itself takes seconds, so the console should say so beforehand and count it
apart. Owns:

- ``is_warm(strategy)``: numba's cache holds that quoter's loop for the current sources;
- ``expected_compile_s()``: the last cold compile measured on this machine, else a default;
- ``CompileClock``: a context manager summing the wall time numba spends compiling inside it
  (numba's ``numba:compile`` events; a cache load is not a compile), calling ``on_start(name)`` /
  ``on_end(seconds)`` around each outermost compile so a progress display can show it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from numba.core import event as numba_event

from mmbot import env

# until this machine has measured its own: a cold `mmbot backtest` compiled for 28.1 s on the
# shared 2-core development machine (issue 20)
DEFAULT_COMPILE_S = 30.0
_RECORD_NAME = "mmbot-compile-s.json"
# the compiled loop of a quoter (mmbot.engine.build names its module mmbot_loop_<name>_<digest>):
# numba's cache index of its ``drive`` says whether a run of that quoter starts warm
_DRIVE_INDEX_GLOB = "*mmbot_loop_{name}_*.drive-*.nbi"


def _cache_dir() -> Path | None:
    d = env.read("NUMBA_CACHE_DIR")
    return Path(d) if d else None


def is_warm(strategy: str = "glft") -> bool:
    """True when numba's cache directory holds the compiled loop of the quoter ``strategy``."""
    d = _cache_dir()
    if d is None or not d.is_dir():
        return False
    name = "".join(c if c.isalnum() else "_" for c in strategy.rsplit(":", 1)[-1])[:40]
    return any(d.rglob(_DRIVE_INDEX_GLOB.format(name=name)))


def _record_path() -> Path | None:
    d = _cache_dir()
    return d.parent / _RECORD_NAME if d is not None else None


def expected_compile_s() -> float:
    """Seconds the last full compile took here (``record_compile_s``), else ``DEFAULT_COMPILE_S``."""
    p = _record_path()
    try:
        value = float(json.loads(p.read_text())["compile_s"]) if p is not None else None
    except (OSError, ValueError, KeyError, TypeError):
        value = None
    return value if value is not None and value > 0 else DEFAULT_COMPILE_S


def record_compile_s(seconds: float) -> None:
    """Remember a cold compile's duration for the next announcement (best effort)."""
    p = _record_path()
    if p is None or seconds <= 0:
        return
    with contextlib.suppress(OSError):
        p.write_text(json.dumps({"compile_s": round(float(seconds), 1)}))


class _Listener(numba_event.Listener):
    def __init__(self, clock: CompileClock):
        self._clock = clock
        self._depth = 0
        self._t0 = 0.0

    def on_start(self, event: numba_event.Event) -> None:
        if self._depth == 0:
            self._t0 = time.perf_counter()
            disp = (event.data or {}).get("dispatcher")
            name = getattr(getattr(disp, "py_func", None), "__qualname__", "")
            self._clock.count += 1
            if self._clock.on_start is not None:
                self._clock.on_start(name)
        self._depth += 1

    def on_end(self, event: numba_event.Event) -> None:
        self._depth -= 1
        if self._depth == 0:
            dt = time.perf_counter() - self._t0
            self._clock.seconds += dt
            if self._clock.on_end is not None:
                self._clock.on_end(dt)


class CompileClock:
    """``with CompileClock() as c: ...`` -> ``c.seconds`` spent compiling, ``c.count`` compiles."""

    def __init__(
        self,
        on_start: Callable[[str], None] | None = None,
        on_end: Callable[[float], None] | None = None,
    ):
        self.seconds = 0.0
        self.count = 0
        self.on_start = on_start
        self.on_end = on_end
        self._listener = _Listener(self)

    def __enter__(self) -> CompileClock:
        numba_event.register("numba:compile", self._listener)
        return self

    def __exit__(self, *exc: object) -> None:
        numba_event.unregister("numba:compile", self._listener)
