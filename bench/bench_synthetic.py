"""Embedded-market generation speed: 3 h of the default market in one call and 24 h in 10-minute
chunks (peak RSS), against a reference measured in the same run: filling an event array of the
same length with numpy (a lower bound for producing the array at all) and market_stats over it.

Run: .venv/bin/python bench/bench_synthetic.py
"""

from __future__ import annotations

import resource
import time

import numpy as np

from mmbot.jitcache import configure as configure_jit_cache

configure_jit_cache()  # an entry point: before compiled modules are imported (mmbot.jitcache)

from mmbot.data.market_stats import market_stats  # noqa: E402
from mmbot.data.synthetic import generate, generate_chunks, load_calibration  # noqa: E402
from mmbot.events import EVENT_DTYPE  # noqa: E402

T0_NS = 1_700_000_000_000_000_000
HOUR_NS = 3_600_000_000_000


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    calib = load_calibration("default")
    generate(calib, 1, T0_NS, 10_000_000_000)  # JIT (cached after the first run)

    # first, so that its peak RSS is not the one-shot 3 h array's
    rss0 = _rss_mb()
    t = time.perf_counter()
    total = 0
    for chunk in generate_chunks(calib, 2, T0_NS, 24 * HOUR_NS, chunk_ns=HOUR_NS // 6):
        total += len(chunk)
    day_s = time.perf_counter() - t
    print(
        f"24 h in 10-min chunks: {total:,} events in {day_s:.1f} s = {total / day_s / 1e6:.2f} M events/s; peak RSS {_rss_mb():.0f} MB (before: {rss0:.0f} MB)"
    )

    t = time.perf_counter()
    ev = generate(calib, 1, T0_NS, 3 * HOUR_NS)
    gen_s = time.perf_counter() - t
    n = len(ev)

    # reference: numpy filling the same number of rows (sequential times, random prices)
    t = time.perf_counter()
    ref = np.zeros(n, dtype=EVENT_DTYPE)
    rng = np.random.default_rng(1)
    ref["exch_ts"] = T0_NS + np.arange(n, dtype=np.int64) * 1000
    ref["local_ts"] = ref["exch_ts"] + rng.integers(1_000_000, 5_000_000, n)
    ref["px"] = 60000.0 + rng.standard_normal(n)
    ref["qty"] = rng.exponential(1.0, n)
    ref_s = time.perf_counter() - t

    t = time.perf_counter()
    stats = market_stats(ev)
    stats_s = time.perf_counter() - t
    print(f"3 h default market: {n:,} events in {gen_s:.2f} s = {n / gen_s / 1e6:.2f} M events/s")
    print(
        f"  reference numpy fill of {n:,} rows: {ref_s:.2f} s  (ratio generate/reference {gen_s / ref_s:.1f}x)"
    )
    print(
        f"  market_stats over them: {stats_s:.2f} s  (ratio generate/stats {gen_s / stats_s:.1f}x)"
    )
    print(
        f"  trades/s {stats['trade_rate_per_s']:.1f}, spread {stats['spread_bps_mean']:.3f} bps, vol {stats['vol_bps_per_sqrt_s']:.3f} bps/sqrt(s), markout_1s {stats['markout_1s_bps']:.3f} bps"
    )
    del ev, ref


if __name__ == "__main__":
    main()
