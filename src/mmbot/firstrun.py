"""What a run tells its user before and after the work: knobs and where they came from, the compile
phase, and wall time split into compile / read / simulate. Text only (commands print it).

A run's knobs come from the profile, then one overrides source (``mmbot.config.load_overrides``);
the lines say which, so hidden state (a file an earlier soak left in the working directory, an
environment variable) is never applied silently.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mmbot import jitclock
from mmbot.config import DEFAULT_OVERRIDES_FILE, OVERRIDES_ENV, overrides_source


def _fmt(knobs: Mapping[str, float]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in knobs.items())


def knob_lines(
    profile: Any,
    overrides: Mapping[str, float],
    overrides_file: Path | None,
    *,
    default_file_applied: bool = False,
) -> list[str]:
    """Console lines: the profile, the overrides in use with their source, and a loud note when a
    working-directory overrides file exists but is not applied."""
    lines = [f"profile {profile.name} ({profile.source or 'built in'})"]
    default = DEFAULT_OVERRIDES_FILE
    source = overrides_source(
        overrides_file, default_file=default if default_file_applied else None
    )
    if overrides:
        lines.append(f"overrides from {source}: {_fmt(overrides)}")
    else:
        lines.append("overrides: none (knobs are the profile's)")
    if not default_file_applied and source is None and default.exists():
        lines.append(
            f"NOTE: {default} exists in this directory (written by an earlier soak or demo) and is "
            f"NOT applied; pass --overrides {default} (or set ${OVERRIDES_ENV}) to use it"
        )
    return lines


def compile_announcement() -> str:
    s = jitclock.expected_compile_s()
    return (
        f"compiling the simulator and readers once, about {s:.0f} s on this machine "
        "(cached for later runs; see docs/cache.md)"
    )


class PhaseTimes:
    """Wall time per phase with the compile time inside each phase counted apart."""

    def __init__(self, cold: bool = False) -> None:
        self.wall_s: dict[str, float] = {}
        self.compile_s = 0.0
        self.cold = cold  # the run started without the compiled loop in the cache

    @contextmanager
    def timed(self, phase: str, clock: jitclock.CompileClock) -> Iterator[None]:
        c0 = clock.seconds
        t0 = time.perf_counter()
        with clock:
            yield
        compiled = clock.seconds - c0
        self.compile_s += compiled
        wall = time.perf_counter() - t0 - compiled
        self.wall_s[phase] = self.wall_s.get(phase, 0.0) + wall

    def as_dict(self) -> dict[str, float]:
        out = {f"{k}_s": v for k, v in self.wall_s.items()}
        out["compile_s"] = self.compile_s
        return out

    def line(self) -> str:
        """E.g. ``simulate 2.41 s, read 1.02 s, compile 48.3 s (once, now cached)``."""
        parts = [f"{k} {v:.2f} s" for k, v in sorted(self.wall_s.items(), reverse=True)]
        if self.compile_s > 0.05:
            parts.append(f"compile {self.compile_s:.1f} s (once, now cached)")
            if self.cold:
                jitclock.record_compile_s(self.compile_s)
        else:
            parts.append("compile 0 s (cached)")
        return ", ".join(parts)
