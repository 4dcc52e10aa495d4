"""The adaptive quoter's edge at equal limits, its ablation, and the synthetic market.

Usage: .venv/bin/python bench/bench_edge.py [--quick]

Equal limits (issue 16 / bench/vs_glft.py): order 0.01 BTC, max position 0.2 (20 orders), maker
-0.5 bps, taker +7 bps, 10 ms latency, power-2 queue, no partial fills, and as in vs_glft.py the
request guards hftbacktest does not have out of reach (concurrency, throttle, exchange rate limit)
and the captures' book-ticker rows removed (hftbacktest ignores them); every other setting is the
default profile's.

Part 1, per shared Binance capture (USD-M and spot BTCUSDT): ``adaptive`` beside ``glft`` and
``glft_ref`` (when registered): fills, equity (USDT, marked at the final mid, fees included),
net_bps, the fee component, net before rebates (net minus the fee component), the other three
components, backtest wall seconds (compiled code warm).
Part 2, the ablation per capture: the default with each piece switched off in turn.
Part 3, the synthetic market (the soak's default calibration, then the wide-tick variant),
seeds 1-3 x 3 hours (``--quick``: 20 minutes): net before rebates of ``adaptive`` and ``glft`` (and ``glft_ref``).

Which data chose the defaults: see ``mmbot.strategy.adaptive.PARAMS``. The spot capture and
synthetic seeds 1-3 chose nothing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mmbot.jitcache import configure as configure_jit_cache  # noqa: E402

configure_jit_cache()  # an entry point: before compiled modules are imported (mmbot.jitcache)

from mmbot.audit import build_edge_report  # noqa: E402
from mmbot.backtest import RunSettings, run  # noqa: E402
from mmbot.config import load_profile  # noqa: E402
from mmbot.events import DEPTH_BBO_EVENT, KIND_MASK  # noqa: E402
from mmbot.strategy import adaptive  # noqa: E402
from mmbot.strategy.registry import BUILTIN_QUOTERS  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
CAPTURES = {
    "binance-usdm BTCUSDT": SHARED / "binance-usdm" / "btcusdt_20240808.gz",
    "binance-spot BTCUSDT": SHARED / "binance-spot" / "btcusdt_20240808.gz",
}
EQUAL_LIMITS = dict(
    order_qty=0.01,
    max_position_qty=0.2,
    maker_fee_rate=-0.5e-4,
    taker_fee_rate=7e-4,
    latency_ms=10.0,
    queue_model="power2",
    partial_fills=False,
    rate_limit_per_s=0,
)


def guard_free_profile():
    """The default profile with the request guards hftbacktest does not have out of reach."""
    prof = load_profile()
    prof.base.concurrency_limit = 1000
    prof.quoting.throttle_burst_s = 1e9
    return prof


def without_bbo(events: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(events[(events["ev"] & KIND_MASK) != DEPTH_BBO_EVENT])


# the default with each piece switched off in turn: the quoter's own list (one place)
ABLATION = [("default", {})] + [(f"no {label}", over) for label, over in adaptive.PIECES]
# as bench/vs_glft.py: the captures last ~345 s, shorter than the tutorial's 10-minute window
CAPTURE_PARAMS = {"glft_ref": {"window_s": 60.0}}
SYNTH_SEEDS = (1, 2, 3)
SYNTH_HOURS = 3.0
SYNTH_START_NS = 1_700_000_000_000_000_000


def _strategies() -> list[str]:
    names = ["adaptive", "glft"]
    if "glft_ref" in BUILTIN_QUOTERS:
        try:
            __import__(BUILTIN_QUOTERS["glft_ref"])
            names.append("glft_ref")
        except ImportError:
            pass
    return names


def measure(events: np.ndarray, strategy: str, params: dict | None = None) -> dict:
    s = RunSettings(
        strategy=strategy, params=params or {}, profile=guard_free_profile(), **EQUAL_LIMITS
    )
    run(events[: min(len(events), 20_000)], s)  # compile / warm up outside the timing
    t = time.perf_counter()
    r = run(events, s)
    wall_s = time.perf_counter() - t
    tot = build_edge_report([r], {"bench": "edge"})["totals"]
    return {
        "fills": len(r.fills),
        "equity": float(r.meta["sim_equity"]),
        "net_bps": tot["net_bps"],
        "fees_bps": tot["fees_eff_bps"],
        "pre_rebate_bps": tot["net_bps"] - tot["fees_eff_bps"],
        "gross_bps": tot["gross_bps"],
        "slippage_bps": tot["slippage_bps"],
        "inventory_bps": tot["inventory_bps"],
        "wall_s": wall_s,
    }


HEADER = (
    f"{'':<30} {'fills':>6} {'equity':>9} {'net bps':>8} {'fees':>6} {'pre-reb':>8} "
    f"{'gross':>7} {'slip':>7} {'inv':>7} {'wall s':>7}"
)


def _row(label: str, m: dict) -> str:
    def f(x: float, w: int, d: int) -> str:
        return f"{x:>{w}.{d}f}" if x == x else f"{'n/a':>{w}}"

    return (
        f"{label:<30} {m['fills']:>6} {f(m['equity'], 9, 3)} {f(m['net_bps'], 8, 3)} "
        f"{f(m['fees_bps'], 6, 2)} {f(m['pre_rebate_bps'], 8, 3)} {f(m['gross_bps'], 7, 3)} "
        f"{f(m['slippage_bps'], 7, 3)} {f(m['inventory_bps'], 7, 3)} {m['wall_s']:>7.2f}"
    )


def main(argv: list[str]) -> int:
    from mmbot.data import load_events

    quick = "--quick" in argv
    strategies = _strategies()
    for name, path in CAPTURES.items():
        if not path.exists():
            print(f"{name}: {path} absent, skipped")
            continue
        events = without_bbo(load_events(path)[0])
        print(f"\n== {name} ({path.name}), equal limits")
        print(HEADER)
        for strat in strategies:
            print(_row(strat, measure(events, strat, CAPTURE_PARAMS.get(strat))), flush=True)
        print(f"-- ablation of adaptive on {name}")
        print(HEADER)
        for label, over in ABLATION:
            print(_row(label, measure(events, "adaptive", over)), flush=True)

    from mmbot.data.synthetic import DEFAULT_MARKET, WIDE_TICK_MARKET, generate, load_calibration

    hours = 20 / 60 if quick else SYNTH_HOURS
    # the default market (the captured tick) and the wide-tick variant, each labelled
    for label, name in ((f"default: {DEFAULT_MARKET}", "default"), ("WIDE-TICK", WIDE_TICK_MARKET)):
        print(f"\n== synthetic market ({label}), seeds {SYNTH_SEEDS}, {hours:g} h each")
        print(f"{'seed':<6} " + " ".join(f"{s + ' pre-reb':>18} {'fills':>7}" for s in strategies))
        calib = load_calibration(name)
        for seed in SYNTH_SEEDS:
            ev = generate(calib, seed, SYNTH_START_NS, int(hours * 3600e9))
            cells = []
            for strat in strategies:
                m = measure(ev, strat)
                cells.append(f"{m['pre_rebate_bps']:>18.3f} {m['fills']:>7}")
            print(f"{seed:<6} " + " ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
