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
# (script, arguments); the quoter tuner bench also runs on the demo's market at the demo's fee tier
ORDER: list[tuple[str, tuple[str, ...]]] = [
    ("bench_read.py", ()),
    ("vs_hftbacktest.py", ()),
    ("vs_glft.py", ()),
    ("bench_backtest.py", ()),
    ("bench_edge.py", ()),
    ("bench_audit.py", ()),
    ("bench_synthetic.py", ()),
    ("bench_soak.py", ()),
    ("bench_autotune_grid.py", ()),
    ("bench_autotune_quoter.py", ()),
    ("bench_autotune_quoter.py", ("--market", "binance_usdm_btcusdt", "--fee-tier", "rebate")),
]


def main() -> int:
    named = {n for n, _ in ORDER}
    runs = [(BENCH_DIR / n, args) for n, args in ORDER if (BENCH_DIR / n).exists()]
    runs += [(p, ()) for p in sorted(BENCH_DIR.glob("bench_*.py")) if p.name not in named]
    failed: list[str] = []
    for script, args in runs:
        label = " ".join((script.name, *args))
        print(f"\n=== {label} ===", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script), *args], cwd=BENCH_DIR.parent)
        print(f"=== {label}: exit {rc}, {time.perf_counter() - t0:.1f} s wall ===", flush=True)
        if rc != 0:
            failed.append(label)
    if failed:
        print(f"\nfailed benchmarks: {', '.join(failed)}")
        return 1
    print(f"\nall {len(runs)} benchmark runs ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
