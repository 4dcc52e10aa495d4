"""A soak's chunks with the carried position vs one continuous backtest over the same market.

The soak runs its market in 30-min chunks (`mmbot.soak.runner.run_iteration`), carrying the book
and the position across them (`mmbot.soak.account_carry`); one continuous run sees the same
events in one venue. What still differs at each seam: working orders (a chunk's venue starts with
none, so they rejoin the queue at the back), the quoter's estimators and the guards' state (fresh
per chunk) and their PnL (the chunk's, not the soak's). This prints both runs' totals, marked at the
final mid (no close-out), with the same knobs (the demo's start package) and order size.

    .venv/bin/python bench/bench_soak_carry.py [--hours 1] [--seed 1]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from mmbot.jitcache import configure as configure_jit_cache

configure_jit_cache()  # an entry point: before compiled modules are imported (mmbot.jitcache)

from mmbot.audit import build_edge_report  # noqa: E402
from mmbot.backtest import run  # noqa: E402
from mmbot.config import load_profile  # noqa: E402
from mmbot.knobs import CONSERVATIVE_START  # noqa: E402
from mmbot.soak import runner  # noqa: E402
from mmbot.soak.account_carry import AccountCarry  # noqa: E402

KEYS = ("fills", "pnl", "net_bps", "gross_bps", "fees_eff_bps", "slippage_bps", "inventory_bps")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--max-loss",
        type=float,
        default=None,
        help="the kill switch (profile risk.max_loss, quote): the guards see a chunk's PnL, the "
        "one run's the whole run's, so a kill at the profile's 3000 latches only in the one run",
    )
    a = ap.parse_args()
    prof = load_profile("S1")
    if a.max_loss is not None:
        prof = prof.model_copy(
            update={"risk": prof.risk.model_copy(update={"max_loss": a.max_loss})}
        )
    knobs = {k: float(v) for k, v in CONSERVATIVE_START.items()}
    dur = int(a.hours * runner.NS_PER_HOUR)
    start = runner.SYNTH_START_NS

    t0 = time.perf_counter()
    mkt = runner.resolve_market("synthetic")
    acct = AccountCarry(funded_to_ns=start)
    chunks = runner.run_iteration(
        mkt, prof, knobs, a.seed, 1, start, dur, account=acct, close_end=False
    )
    t_soak = time.perf_counter() - t0

    events = np.concatenate(list(runner.resolve_market("synthetic").chunks(a.seed, 1, start, dur)))
    settings = replace(runner.make_settings(prof, knobs, 0), ref_px=acct.ref_px)
    t0 = time.perf_counter()
    whole = run(events, settings, symbol=mkt.symbol, tick_px=mkt.tick_px, lot_qty=mkt.lot_qty)
    t_whole = time.perf_counter() - t0

    seam_ns = [int(c.meta["start_ts"]) for c in chunks[1:]]
    same_before: bool | str = "n/a (one chunk)"
    if seam_ns:
        a_px = whole.fills[whole.fills["exch_ts"] < seam_ns[0]]["px"]
        same_before = np.array_equal(a_px, chunks[0].fills["px"])
    soak_t = build_edge_report(chunks, {})["totals"]
    one_t = build_edge_report([whole], {})["totals"]
    print(
        f"market: synthetic seed {a.seed}, {a.hours:g} h, {len(chunks)} chunks, {len(events)} events"
    )
    print(f"{'':16}{'chunks (carried)':>20}{'one run':>20}")
    for k in KEYS:
        x, y = soak_t.get(k), one_t.get(k)
        fx = f"{x:.4f}" if isinstance(x, float) else str(x)
        fy = f"{y:.4f}" if isinstance(y, float) else str(y)
        print(f"{k:16}{fx:>20}{fy:>20}")
    print(
        f"end position: chunks {acct.position_qty:.4f}, one run {whole.fills['position_qty'][-1]:.4f}"
    )
    print(f"seam pnl (unbooked between chunks): {soak_t['position_carry']['seam_pnl']!r}")
    print(f"fills before the first seam identical: {same_before}")
    print(f"wall: chunks {t_soak:.1f} s, one run {t_whole:.1f} s")


if __name__ == "__main__":
    main()
