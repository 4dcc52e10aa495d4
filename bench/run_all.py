"""Run every benchmark of `make bench`, one after another, each in its own process.

Each benchmark prints its own figures (ratios against the reference measured in the same run).
A benchmark that fails is reported and the others still run; the exit code is non-zero if any failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ORDER = [
    "bench_read.py",
    "vs_hftbacktest.py",
    "vs_glft.py",
    "bench_backtest.py",
    "bench_edge.py",
    "bench_audit.py",
    "bench_synthetic.py",
    "bench_soak.py",
    "bench_autotune_grid.py",
    "bench_autotune_quoter.py",
]


def main() -> int:
    scripts = [BENCH_DIR / n for n in ORDER if (BENCH_DIR / n).exists()]
    scripts += sorted(p for p in BENCH_DIR.glob("bench_*.py") if p.name not in ORDER)
    failed: list[str] = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script)], cwd=BENCH_DIR.parent)
        print(
            f"=== {script.name}: exit {rc}, {time.perf_counter() - t0:.1f} s wall ===", flush=True
        )
        if rc != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed benchmarks: {', '.join(failed)}")
        return 1
    print(f"\nall {len(scripts)} benchmarks ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
