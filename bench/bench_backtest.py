"""GLFT (profile S1 defaults) vs the touch-joining baseline, and backtest throughput.

Usage: .venv/bin/python bench/bench_backtest.py [capture ...]
(default: every capture in ../shared/data, plus 10 minutes of the embedded synthetic market)

Part 1, per capture: the GLFT strategy with S1's knobs and the touch baseline side by side at equal
order size and position limit (both from the profile: order_notional / reference price, and
max_position_orders × that), same latency (10 ms), queue model (power2), fees (S1): fills,
turnover, PnL (marked at the final mid, fees included), net bps = PnL / turnover × 1e4.

Part 2, throughput in events/s (JIT warm-up excluded: every figure is the best of 3 runs after a
warm-up run): the venue replaying the capture alone (no orders: its own event-processing figure)
and ``mmbot.backtest.run`` with GLFT and full recording (actions, fills, marks), and their ratio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mmbot.jitcache import configure as configure_jit_cache  # noqa: E402

configure_jit_cache()  # an entry point: before compiled modules are imported (mmbot.jitcache)

from mmbot import sim  # noqa: E402
from mmbot.backtest import RunSettings, guess_tick_lot, run, summarize  # noqa: E402
from mmbot.config import load_profile  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
CAPTURES = [
    SHARED / "binance-usdm" / "btcusdt_20240808.gz",
    SHARED / "binance-spot" / "btcusdt_20240808.gz",
    SHARED / "bybit" / "xrpusdt_20241201_ob500.jsonl",
]
SYNTH_MINUTES = 10


@njit(cache=True)
def _replay_only(v) -> int:
    n = 0
    while sim.wait_next(v, 1_000_000_000) != sim.END_OF_DATA:
        n += 1
    return n


def _best_of(fn, n: int = 3) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _datasets(args: list[str]) -> list[tuple[str, np.ndarray, str]]:
    from mmbot.data import load_events

    out = []
    paths = [Path(a) for a in args] if args else [p for p in CAPTURES if p.exists()]
    for p in paths:
        ev, st = load_events(p)
        out.append((p.parent.name + "/" + p.name, ev, st.symbol or ""))
    if not args:
        from mmbot.data.synthetic import generate, load_calibration

        ev = generate(
            load_calibration("default"), 1, 1_700_000_000_000_000_000, SYNTH_MINUTES * 60 * 10**9
        )
        out.append((f"synthetic default ({SYNTH_MINUTES} min)", ev, "SYN"))
    return out


def main(argv: list[str]) -> int:
    datasets = _datasets(argv)
    if not datasets:
        print("no captures found (../shared/data absent); pass capture paths")
        return 0
    prof = load_profile("S1")
    print(
        "== GLFT (S1 knobs) vs touch baseline, equal size and position limit, 10 ms latency, power2"
    )
    hdr = f"{'data':<38} {'strategy':<6} {'events':>9} {'fills':>6} {'turnover':>12} {'PnL':>10} {'net bps':>8} {'blocked':>8}"
    print(hdr)
    thr_rows = []
    for name, ev, sym in datasets:
        for strat in ("glft", "touch"):
            s = RunSettings(strategy=strat, profile=prof, latency_ms=10.0, queue_model="power2")
            r = run(ev, s, symbol=sym)
            m = summarize([r])
            print(
                f"{name:<38} {strat:<6} {m['events']:>9,} {m['fills']:>6,} {m['turnover']:>12,.2f} "
                f"{m['pnl']:>10.4f} {m['net_bps']:>8.3f} {sum(m['blocked'].values()):>8,}"
            )
        print(
            f"{'':<38} (order_qty {r.meta['order_qty']:g}, max_position_qty {r.meta['max_position_qty']:g},"
            f" tick {r.meta['tick_px']:g}, lot {r.meta['lot_qty']:g})"
        )
        if len(ev) >= 10_000:
            thr_rows.append((name, ev, sym))

    print()
    print("== throughput, events/s (best of 3 after warm-up)")
    print(f"{'data':<38} {'venue replay':>14} {'backtest glft':>14} {'ratio':>7}")
    for name, ev, sym in thr_rows:
        tick, lot = guess_tick_lot(ev)
        cfg = sim.VenueConfig(
            tick_px=tick,
            lot_qty=lot,
            entry_latency_ns=10_000_000,
            response_latency_ns=10_000_000,
            queue_model="power2",
        )

        def venue_only(ev=ev, cfg=cfg) -> None:
            v = sim.make_venue(ev, cfg)
            _replay_only(v)
            sim.finish(v)

        s = RunSettings(strategy="glft", profile=prof, latency_ms=10.0, queue_model="power2")

        def full(ev=ev, s=s, sym=sym, tick=tick, lot=lot) -> None:
            run(ev, s, symbol=sym, tick_px=tick, lot_qty=lot)

        venue_only()
        full()
        t_v = _best_of(venue_only)
        t_f = _best_of(full)
        print(f"{name:<38} {len(ev) / t_v:>14,.0f} {len(ev) / t_f:>14,.0f} {t_v / t_f:>7.2f}")
    # the command end to end: read (cached) + run + Parquet/audit.jsonl records + EDGE_REPORT,
    # KPI_GATE, Markdown/HTML reports, on the first capture
    caps = [Path(a) for a in argv] if argv else [p for p in CAPTURES if p.exists()]
    if caps:
        import tempfile

        from mmbot.backtest import backtest_files

        cap = caps[0]
        with tempfile.TemporaryDirectory() as td:
            backtest_files(data=[cap], out=Path(td) / "warm")
            t = time.perf_counter()
            backtest_files(data=[cap], out=Path(td) / "run")
            dt = time.perf_counter() - t
        n = next(len(ev) for name, ev, _ in datasets if name.endswith(cap.name))
        print(
            f"{'mmbot backtest (records + reports)':<38} {'':>14} {n / dt:>14,.0f}   "
            f"({cap.name}: {n:,} events in {dt:.2f} s end to end)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
