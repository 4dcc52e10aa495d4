"""Each runtime knob moves its market-level metric in the direction DESIGN.md claims, on the
wide-tick synthetic market these claims were measured on (same events for both settings: common
random numbers). On the default market at the captured tick the impact-cap and tail-age claims
did not hold when it became the default (stop 30: both tests failed there); not re-measured here.

Helper F's tests check that knobs reach quotes and guards; these check the effect on the soak's
EDGE_REPORT metrics. Each knob is set to its low and high limit, the others at profile S1.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from mmbot.data.synthetic import WIDE_TICK_MARKET
from mmbot.knobs import RUNTIME_LIMITS
from mmbot.records import ACT_CANCELLED, ACT_EXPIRED, ACT_FILLED

MARKET_S = 900.0  # 15 min of market
SEED = 5
SEEDS = (5, 6, 7)  # for the claims that hold on some seeds and not others: judged by majority


@cache
def _setup() -> tuple:
    from conftest import glft_profile
    from mmbot.soak.runner import SYNTH_START_NS, resolve_market

    mkt = resolve_market(f"synthetic:{WIDE_TICK_MARKET}")
    # the seed's six knobs are glft's (the default adaptive quoter is tuned by its own param.* knobs)
    prof = glft_profile()
    # The knob effects below were measured with a 0.5 bps maker rebate (the old S1 fees) and two of
    # them act through it (max_delta_ratio caps the rebate's tightening; the impact cap's effect is
    # judged at the fills it brings): keep those explicit rates here, whatever the default tier.
    fees = prof.fees.model_copy(update={"maker_fee_rate": -0.00005, "taker_fee_rate": 0.0004})
    return mkt, prof.model_copy(update={"fees": fees}), SYNTH_START_NS


@cache
def _totals(knob: str, value: float, market_s: float = MARKET_S, seed: int = SEED) -> dict:
    from mmbot.audit import build_edge_report
    from mmbot.soak.runner import run_iteration

    mkt, prof, start = _setup()
    knobs = dict(prof.runtime)
    knobs[knob] = value
    results = run_iteration(mkt, prof, knobs, seed, 1, start, int(market_s * 1e9))
    t = build_edge_report(results, {})["totals"]
    qty = np.concatenate([r.fills["qty"] for r in results]) if results else np.zeros(0)
    t = dict(t)
    t["mean_fill_qty"] = float(qty.mean()) if len(qty) else None
    # median age of orders when they leave the book, from the records (the report gives p95 only)
    acts = np.concatenate([r.actions for r in results])
    leaves = np.isin(acts["kind"], [ACT_CANCELLED, ACT_FILLED, ACT_EXPIRED])
    t["order_age_p50_ms"] = float(np.median(acts["order_age_ns"][leaves])) / 1e6
    return t


def _lo_hi(knob: str, market_s: float = MARKET_S, seed: int = SEED) -> tuple[dict, dict]:
    lo, hi = RUNTIME_LIMITS[knob]
    return _totals(knob, lo, market_s, seed), _totals(knob, hi, market_s, seed)


def _ratio(t: dict, reason: str) -> float:
    return float(t["block_reasons"].get(reason, {}).get("ratio", 0.0))


def test_min_interval_longer_means_older_orders_and_fewer_orders_placed() -> None:
    lo, hi = _lo_hi("min_interval_ms")
    print(
        "min_interval_ms 50 vs 300: order_age_p50_ms",
        lo["order_age_p50_ms"],
        hi["order_age_p50_ms"],
        "order_age_p95_ms",
        lo["order_age_p95_ms"],
        hi["order_age_p95_ms"],
        "orders_placed",
        lo["orders_placed"],
        hi["orders_placed"],
    )
    # The median age, not the p95: the p95 tail is orders resting at an unchanged touch, which no
    # interval touches (seeds 5-7 after 5bdc49f: p50 626->792, 727->1619, 712->1425 ms; orders
    # 786->672, 829->687, 775->683; the p95 moved either way)
    assert hi["order_age_p50_ms"] > lo["order_age_p50_ms"]
    assert hi["orders_placed"] < lo["orders_placed"]


@pytest.mark.xfail(
    strict=True,
    reason=(
        "the seed's H3 premise (a longer min_interval gives fewer min_interval blocks) does not "
        "hold for DESIGN's guard (an action inside the interval is blocked): a longer interval "
        "blocks a larger share of attempts. The tuner mutes H3 when it does not help (INEFFECTIVE)."
    ),
)
def test_min_interval_longer_means_fewer_min_interval_blocks_seed_claim() -> None:
    lo, hi = _lo_hi("min_interval_ms")
    print(
        "min_interval_ms 50 vs 300: block ratio",
        _ratio(lo, "min_interval"),
        _ratio(hi, "min_interval"),
    )
    assert _ratio(hi, "min_interval") < _ratio(lo, "min_interval")


def test_wider_base_spread_means_fewer_fills_and_more_gross_per_fill() -> None:
    lo, hi = _lo_hi("base_spread_bps_delta")
    print(
        "base_spread 0 vs 0.6: fills",
        lo["fills"],
        hi["fills"],
        "gross_bps",
        lo["gross_bps"],
        hi["gross_bps"],
    )
    assert hi["fills"] < lo["fills"]
    assert hi["gross_bps"] > lo["gross_bps"]


@pytest.mark.xfail(
    strict=True,
    reason=(
        "the impact cap does not bind on the market with reverting impact: fills are partial (the "
        "trade sets their size), mean fill qty 0.1441 vs 0.1443, 0.1485 vs 0.1467, 0.1481 vs 0.1489 "
        "and adverse_bps 0.783 vs 0.791, 0.806 vs 0.811, 0.918 vs 0.912 at cap 0.04 vs 0.12 "
        "(seeds 5-7, 1 h): the seed's claim holds on 1 of 3 seeds, i.e. is not measurable here"
    ),
)
def test_lower_impact_cap_means_smaller_fills_and_lower_adverse_selection() -> None:
    # The cap rarely binds on the fitted market (fills are partial: the trade sets their size,
    # not the order), so the effect is small and judged on a majority of three seeds over 1 h.
    right = 0
    for seed in SEEDS:
        lo, hi = _lo_hi("impact_cap_ratio", market_s=3600.0, seed=seed)
        print(
            f"seed {seed} impact_cap 0.04 vs 0.12: mean fill qty",
            lo["mean_fill_qty"],
            hi["mean_fill_qty"],
            "adverse_bps (mean)",
            lo["adverse_bps"],
            hi["adverse_bps"],
            "adverse_bps_p95",
            lo["adverse_bps_p95"],
            hi["adverse_bps_p95"],
        )
        # The claim is about adverse selection; its mean (notional-weighted 1 s markout cost) moves
        # with size. adverse_bps_p95 does not: per-fill markouts on this ~1 bps tick come in tick
        # steps, so the p95 sits on the same step whatever the size (printed, not asserted).
        right += lo["mean_fill_qty"] < hi["mean_fill_qty"] and lo["adverse_bps"] < hi["adverse_bps"]
    assert right >= 2, f"right on {right} of {len(SEEDS)} seeds"


def test_lower_replace_rate_means_more_throttle_blocks() -> None:
    lo, hi = _lo_hi("replace_rate_per_min")
    print("replace_rate 120 vs 360: throttle ratio", _ratio(lo, "throttle"), _ratio(hi, "throttle"))
    assert _ratio(lo, "throttle") > _ratio(hi, "throttle")


def test_longer_tail_age_means_fewer_refreshes() -> None:
    lo, hi = _lo_hi("tail_age_ms")
    print("tail_age 400 vs 1000: orders_placed", lo["orders_placed"], hi["orders_placed"])
    # a resting order is refreshed after tail_age even inside the reprice tolerance
    assert hi["orders_placed"] < lo["orders_placed"]


def test_longer_tail_age_means_older_orders() -> None:
    # On the earlier fitted market (wholly permanent impact) this failed (median age 737->741,
    # 1044->816, 1261->855 ms): orders left by fills and reprices before either tail age. On the
    # market with reverting impact (seeds 5-7: 275->399, 293->407, 309->429 ms) it holds.
    right = 0
    for seed in SEEDS:
        lo, hi = _lo_hi("tail_age_ms", seed=seed)
        print(
            f"seed {seed} tail_age 400 vs 1000: order_age_p50_ms",
            lo["order_age_p50_ms"],
            hi["order_age_p50_ms"],
        )
        right += hi["order_age_p50_ms"] > lo["order_age_p50_ms"]
    assert right >= 2, f"right on {right} of {len(SEEDS)} seeds"


def test_larger_max_delta_lets_quotes_tighten_more_and_fill_more() -> None:
    # an hour: the effect is a few % of fills (1 h, seeds 5-7: 4328->4487, 4328->4342,
    # 4318->4513), within the noise of 15 min
    lo, hi = _lo_hi("max_delta_ratio", market_s=3600.0)
    print(
        "max_delta 0.10 vs 0.20: fills",
        lo["fills"],
        hi["fills"],
        "gross_bps",
        lo["gross_bps"],
        hi["gross_bps"],
    )
    # more room to tighten (signals, rebate) -> quotes nearer the touch more often -> more fills.
    # (gross per fill is not asserted: a signal-tightened quote fills when the signal was right,
    # so its edge at the fill need not be smaller)
    assert hi["fills"] > lo["fills"]
