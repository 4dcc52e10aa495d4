"""Where an uncached Binance read spends its time: each stage's total over one
``load_events(path, use_cache=False)``, from the best of 5 warm reads.

Usage: .venv/bin/python bench/read_split.py [capture.gz] [--one-cpu]
(default ../shared/data/binance-usdm/btcusdt_20240808.gz). ``--one-cpu`` pins the process to one
CPU, so the block scan runs inline (``mmbot.data.readahead``) and the stages add up. Stages are
timed by wrapping the functions named in each label; nested ones overlap (``accept`` holds the time
and sequence checks, ``process`` holds the replay, ``np.concatenate`` counts every caller).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mmbot.jitcache import configure as configure_jit_cache

configure_jit_cache()  # an entry point: before compiled modules are imported (mmbot.jitcache)

import numpy as np  # noqa: E402

from mmbot.data import binance_scan, core, load_events, replay, timecheck  # noqa: E402

DEFAULT_CAPTURE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-usdm" / "btcusdt_20240808.gz"
)
spent_s: dict[str, float] = {}


def _timed(fn: Callable, label: str) -> Callable:
    def run(*args, **kw):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            spent_s[label] = spent_s.get(label, 0.0) + time.perf_counter() - t0

    return run


def _timed_gen(fn: Callable, label: str) -> Callable:
    def run(*args, **kw):
        it = fn(*args, **kw)
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                spent_s[label] = spent_s.get(label, 0.0) + time.perf_counter() - t0
            yield item

    return run


def _wrap_stages() -> None:
    core.iter_byte_blocks = _timed_gen(core.iter_byte_blocks, "inflate + split lines")
    binance_scan.scan_block = _timed(binance_scan.scan_block, "numba scan (scan_block)")
    core.assemble_block = _timed(core.assemble_block, "stage rows (assemble_block)")
    timecheck.TimeFilter.keep = _timed(timecheck.TimeFilter.keep, "time check (TimeFilter.keep)")
    replay.sequence_check = _timed(replay.sequence_check, "sequence check")
    core.Pipeline._accept = _timed(core.Pipeline._accept, "accept (checks, selection)")
    replay.replay = _timed(replay.replay, "book replay / repair (replay)")
    core.Pipeline._process = _timed(core.Pipeline._process, "process (window sort + replay)")
    np.concatenate = _timed(np.concatenate, "np.concatenate (all callers)")


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--one-cpu"]
    if "--one-cpu" in sys.argv[1:]:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    capture = Path(args[0]) if args else DEFAULT_CAPTURE
    if not capture.exists():
        print(f"read_split: capture not found: {capture}")
        return 2
    _wrap_stages()
    load_events(capture, use_cache=False)  # warm (JIT caches)
    best: tuple[float, float, dict[str, float]] | None = None
    for _ in range(5):
        spent_s.clear()
        w0, c0 = time.perf_counter(), time.process_time()
        load_events(capture, use_cache=False)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        if best is None or wall < best[0]:
            best = (wall, cpu, dict(spent_s))
    assert best is not None
    print(f"load_events (no cache): wall {best[0]:.3f} s  cpu {best[1]:.3f} s")
    for label, s in best[2].items():
        print(f"  {label:34s} {s * 1000:7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
