"""Golden tests of the edge decomposition and EDGE_REPORT, every expectation worked out by hand.

Each scenario writes its arithmetic out from the scenario's own inputs (prices, quantities, fee
rates) — nothing is copied from the code's output.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mmbot.audit import AuditError, build_edge_report, check_identity, decompose, dumps_json
from mmbot.audit.decompose import inventory_by_marks
from mmbot.errors import UserError
from mmbot.records import (
    ACT_ACKED,
    ACT_BLOCKED,
    ACT_CANCELLED,
    ACT_EXPIRED,
    ACT_FILLED,
    ACT_INTENDED,
    ACT_REJECTED,
    ACT_SENT,
    OP_CANCEL,
    OP_NEW,
    OP_REPLACE,
    REASON_CONCURRENCY,
    REASON_MIN_INTERVAL,
    REASON_POST_ONLY,
)
from test_audit_helpers import run

REL = 1e-9


def approx(x: float):
    return pytest.approx(x, rel=REL, abs=1e-12)


# --- scenario 1: a maker round trip with a rebate, the mid flat -------------------------------
# buy 2 @ 99.99 and sell 2 @ 100.01, mid 100.00 both times, targets = the fill prices, maker fee
# rate -1 bp (rebate).
def maker_round_trip():
    rate = -0.0001
    fills = [
        dict(t_s=1, side=1, maker=1, px=99.99, qty=2, fee=rate * 99.99 * 2, fee_rate=rate,
             mid=100.0, target=99.99, pos=2, age_ms=150),
        dict(t_s=3, side=-1, maker=1, px=100.01, qty=2, fee=rate * 100.01 * 2, fee_rate=rate,
             mid=100.0, target=100.01, pos=0, age_ms=250),
    ]  # fmt: skip
    marks = [(0, 100.0, 0), (1, 100.0, 2), (3, 100.0, 0), (40, 100.0, 0)]
    return run(fills, marks)


def test_maker_round_trip_with_rebate_earns_spread_plus_rebate():
    rep = build_edge_report([maker_round_trip()], {})
    t = rep["totals"]
    gross = (100.0 - 99.99) * 2 + (-1) * (100.0 - 100.01) * 2  # 0.02 + 0.02
    fees = 0.0001 * 99.99 * 2 + 0.0001 * 100.01 * 2  # rebates received: 0.04
    turnover = 99.99 * 2 + 100.01 * 2  # 400
    cash = -99.99 * 2 + 100.01 * 2 + fees
    assert t["fills"] == 2
    assert t["turnover"] == approx(turnover)
    assert t["component_breakdown"]["gross_quote"] == approx(gross)
    assert t["component_breakdown"]["fees_quote"] == approx(fees)
    assert t["component_breakdown"]["slippage_quote"] == 0.0
    assert t["component_breakdown"]["inventory_quote"] == 0.0
    assert t["pnl"] == approx(cash)  # flat at the end: pnl = cash
    assert t["gross_bps"] == approx(gross / turnover * 1e4)  # = 1.0 bp
    assert t["gross_bps"] == pytest.approx(1.0, rel=1e-9)
    assert t["fees_eff_bps"] == pytest.approx(1.0, rel=1e-9)
    assert t["net_bps"] == pytest.approx(2.0, rel=1e-9)
    assert t["maker_share_pct"] == 100.0
    # flat mid: every markout is 0 and nothing hurts
    for h in ("100ms", "1s", "5s", "30s"):
        assert t["markouts"][h]["p95_bps"] == 0.0
        assert t["markouts"][h]["n"] == 2
    assert t["adverse_bps_p95"] == 0.0
    assert t["slippage_bps_p95"] == 0.0
    assert t["neg_edge_drivers"] == []
    assert t["fills_without_target"] == 0


# --- scenario 2: a stale quote filled after the mid moved ---------------------------------------
# Our bid rests at 99.99 (placed when the mid was 100.00). The mid drops to 99.95 and the strategy's
# target bid is now 99.94, but the order has not been replaced: it is filled at 99.99. The mid keeps
# falling to 99.90 half a second later. Rebate 1 bp.
def stale_quote():
    fee = -0.0001 * 99.99 * 1
    fills = [dict(t_s=2, side=1, maker=1, px=99.99, qty=1, fee=fee, fee_rate=-0.0001,
                  mid=99.95, target=99.94, pos=1, age_ms=800)]  # fmt: skip
    marks = [(0, 100.0, 0), (1.5, 99.95, 0), (2, 99.95, 1), (2.5, 99.90, 1), (40, 99.90, 1)]
    return run(fills, marks)


def test_stale_quote_shows_negative_slippage_and_adverse_markout():
    rep = build_edge_report([stale_quote()], {})
    t = rep["totals"]
    cb = t["component_breakdown"]
    gross = 1 * (99.95 - 99.94) * 1  # +0.01: the target still had edge against the mid
    slippage = 1 * (99.94 - 99.99) * 1  # -0.05: filled 5 ticks worse than intended
    fees = 0.0001 * 99.99  # rebate
    inventory = 1 * (99.90 - 99.95)  # held 1 through the fall: -0.05
    pnl = -99.99 + fees + 1 * 99.90
    turnover = 99.99
    assert cb["gross_quote"] == approx(gross)
    assert cb["slippage_quote"] == approx(slippage)
    assert cb["fees_quote"] == approx(fees)
    assert cb["inventory_quote"] == approx(inventory)
    assert t["pnl"] == approx(pnl)
    assert gross + slippage + fees + inventory == pytest.approx(pnl, abs=1e-12)
    assert t["slippage_bps"] == approx(slippage / turnover * 1e4)
    # per-fill slippage cost = -slippage/(p*q)*1e4 = 0.05/99.99*1e4 (one fill: p95 = it)
    assert t["slippage_bps_p95"] == approx(0.05 / 99.99 * 1e4)
    # markouts from t=2 s at mid 99.95: at +100 ms the mid is still 99.95; from +1 s on it is 99.90
    cost_after_move = -1 * (99.90 - 99.95) / 99.95 * 1e4  # +5.0025 bps against us
    assert t["markouts"]["100ms"]["p95_bps"] == 0.0
    for h in ("1s", "5s", "30s"):
        assert t["markouts"][h]["p95_bps"] == approx(cost_after_move)
    assert t["adverse_bps_p95"] == approx(cost_after_move)
    assert t["adverse_bps"] == approx(cost_after_move)
    # drivers: slippage (-0.05) and inventory (-0.05) hurt by the same quote amount; adverse cost is
    # 5.0025 bps vs 0.05/99.99e4 = 5.0005 bps for each component -> adverse first, then the two
    # components (equal on paper; their float order is not part of the contract)
    assert t["neg_edge_drivers"][0] == "adverse_bps"
    assert sorted(t["neg_edge_drivers"][1:]) == ["inventory_bps", "slippage_bps"]
    assert t["neg_edge_drivers_detail"][1]["bps"] == approx(inventory / turnover * 1e4)


# --- scenario 3: a taker fill with no target ----------------------------------------------------
# Buy 0.5 at the ask 100.02 with the mid at 100.00, taker fee 5 bp, the strategy had no target
# (NaN -> p* = p: all edge in gross). The mid rises to 100.04 half a second later.
def taker_fill():
    fee = 0.0005 * 100.02 * 0.5
    fills = [dict(t_s=1, side=1, maker=0, px=100.02, qty=0.5, fee=fee, fee_rate=0.0005,
                  mid=100.0, target=float("nan"), pos=0.5)]  # fmt: skip
    marks = [(0, 100.0, 0), (1, 100.0, 0.5), (1.5, 100.04, 0.5), (10, 100.04, 0.5)]
    return run(fills, marks)


def test_taker_fill_without_target_puts_the_spread_in_gross():
    rep = build_edge_report([taker_fill()], {})
    t = rep["totals"]
    cb = t["component_breakdown"]
    gross = 1 * (100.0 - 100.02) * 0.5  # -0.01: crossing the half-spread
    fees = -0.0005 * 100.02 * 0.5  # -0.025005
    inventory = 0.5 * (100.04 - 100.0)  # +0.02
    assert cb["gross_quote"] == approx(gross)
    assert cb["slippage_quote"] == 0.0
    assert cb["fees_quote"] == approx(fees)
    assert cb["inventory_quote"] == approx(inventory)
    assert t["pnl"] == approx(-100.02 * 0.5 - 0.0005 * 100.02 * 0.5 + 0.5 * 100.04)
    assert t["fills_without_target"] == 1
    assert t["maker_share_pct"] == 0.0
    assert t["slippage_bps_p95"] == 0.0
    # markouts: +100 ms mid 100.00 -> 0; +1 s (t=2 s) 100.04 -> cost -(0.04/100)*1e4 = -4 bps (good);
    # +5 s at t=6 s still 100.04; +30 s (t=31 s) is past the end (10 s) -> excluded
    assert t["markouts"]["100ms"]["p95_bps"] == 0.0
    assert t["markouts"]["1s"]["p95_bps"] == approx(-4.0)
    assert t["markouts"]["5s"]["p95_bps"] == approx(-4.0)
    assert t["markouts"]["30s"]["n"] == 0
    assert t["markouts"]["30s"]["excluded_past_end"] == 1
    assert t["markouts"]["30s"]["p95_bps"] is None
    # fees and gross hurt; the favourable markout is not a driver
    assert t["neg_edge_drivers"] == ["fees_eff_bps", "gross_bps"]


# --- scenario 4: inventory held through a move --------------------------------------------------
# Buy 1 @ 99.99 (mid 100.00) at 1 s; the mid rises to 100.10 at 2 s; buy 1 @ 100.09 (mid 100.10) at
# 3 s; the mid falls to 99.80 at 4 s and stays there until the end at 10 s. No fees.
def held_inventory():
    fills = [
        dict(t_s=1, side=1, maker=1, px=99.99, qty=1, fee=0.0, mid=100.0, target=99.99, pos=1),
        dict(t_s=3, side=1, maker=1, px=100.09, qty=1, fee=0.0, mid=100.10, target=100.09, pos=2),
    ]
    marks = [
        (0, 100.0, 0),
        (1, 100.0, 1),
        (2, 100.10, 1),
        (3, 100.10, 2),
        (4, 99.80, 2),
        (10, 99.80, 2),
    ]
    return run(fills, marks)


def test_inventory_held_through_a_move_is_position_times_mid_change():
    r = held_inventory()
    rep = build_edge_report([r], {})
    t = rep["totals"]
    cb = t["component_breakdown"]
    # Σ position·Δmid over time: 0 until 1 s; 1×(+0.10) from 1 s to 2 s; 2×(−0.30) from 3 s to 4 s
    inventory = 1 * (100.10 - 100.0) + 2 * (99.80 - 100.10)  # -0.5
    gross = (100.0 - 99.99) + (100.10 - 100.09)  # 0.02
    turnover = 99.99 + 100.09
    assert cb["inventory_quote"] == approx(inventory)
    assert inventory_by_marks(r) == approx(inventory)
    assert cb["gross_quote"] == approx(gross)
    assert t["pnl"] == approx(-99.99 - 100.09 + 2 * 99.80)
    assert t["inventory_bps"] == approx(inventory / turnover * 1e4)
    assert t["net_bps"] == approx((gross + inventory) / turnover * 1e4)
    # 1 s markouts: fill 1 sees 100.10 at 2 s (cost -10 bps), fill 2 sees 99.80 at 4 s
    c1 = -(100.10 - 100.0) / 100.0 * 1e4
    c2 = -(99.80 - 100.10) / 100.10 * 1e4
    assert t["markouts"]["1s"]["mean_bps"] == approx((c1 + c2) / 2)
    assert t["adverse_bps"] == approx((c1 * 99.99 + c2 * 100.09) / turnover)
    assert t["adverse_bps_p95"] == approx(c1 + 0.95 * (c2 - c1))  # linear p95 of two samples
    # 5 s: both horizons (6 s, 8 s) inside the data, mid 99.80; 30 s: both past the end
    assert t["markouts"]["5s"]["n"] == 2
    assert t["markouts"]["5s"]["p50_bps"] == approx(
        (-(99.80 - 100.0) / 100.0 * 1e4 + -(99.80 - 100.10) / 100.10 * 1e4) / 2
    )
    assert t["markouts"]["30s"]["excluded_past_end"] == 2
    # inventory (-24.99 bps) hurts most, then the adverse cost (~10 bps)
    assert t["neg_edge_drivers"] == ["inventory_bps", "adverse_bps"]


# --- ratios from actions ------------------------------------------------------------------------
def test_action_ratios_blocks_cancels_and_order_age():
    acts = (
        [dict(kind=ACT_INTENDED)] * 10
        + [dict(kind=ACT_BLOCKED, reason=REASON_MIN_INTERVAL)] * 3
        + [dict(kind=ACT_BLOCKED, reason=REASON_CONCURRENCY)]
        + [dict(kind=ACT_SENT)] * 6
        + [dict(kind=ACT_ACKED, op=OP_NEW)] * 4
        + [dict(kind=ACT_ACKED, op=OP_REPLACE)]
        + [dict(kind=ACT_ACKED, op=OP_CANCEL)]  # a cancel's ack is not an order placed
        + [dict(kind=ACT_REJECTED, reason=REASON_POST_ONLY)]
        + [dict(kind=ACT_CANCELLED, age_ms=200), dict(kind=ACT_CANCELLED, age_ms=500)]
        + [dict(kind=ACT_FILLED, age_ms=100), dict(kind=ACT_EXPIRED, age_ms=300)]
    )
    r = maker_round_trip()
    r = type(r)(r.fills, run([], [(0, 100.0, 0)], acts).actions, r.marks, r.meta)
    t = build_edge_report([r], {})["totals"]
    assert t["intended_actions"] == 10
    assert t["orders_placed"] == 5  # 4 new + 1 replace acked
    assert t["cancel_ratio"] == 2 / 5
    assert t["replace_ratio"] == 1 / 5
    assert t["block_reasons"]["min_interval"] == {"count": 3, "ratio": 0.3}
    assert t["block_reasons"]["concurrency"] == {"count": 1, "ratio": 0.1}
    assert t["block_reasons"]["throttle"] == {"count": 0, "ratio": 0.0}
    assert t["block_reasons"]["risk"] == {"count": 0, "ratio": 0.0}
    assert t["reject_reasons"] == {"post_only": 1}
    # ages leaving the book: 100, 200, 300, 500 ms; linear p95 at rank 0.95*3 = 2.85
    assert t["order_age_p95_ms"] == approx(300 + 0.85 * (500 - 300))


def test_replaced_quote_ages_count_in_order_age_when_recorded():
    acts = [
        dict(kind=ACT_ACKED, op=OP_REPLACE, age_ms=0),  # amend with no age recorded: not a sample
        dict(kind=ACT_ACKED, op=OP_REPLACE, age_ms=400),  # re-priced a 400 ms old quote
        dict(kind=ACT_REJECTED, op=OP_REPLACE, reason=REASON_POST_ONLY, age_ms=600),  # removed
        dict(kind=ACT_REJECTED, op=OP_NEW, reason=REASON_POST_ONLY, age_ms=0),  # never live
        dict(kind=ACT_CANCELLED, age_ms=200),
    ]
    r = maker_round_trip()
    r = type(r)(r.fills, run([], [(0, 100.0, 0)], acts).actions, r.marks, r.meta)
    t = build_edge_report([r], {})["totals"]
    # samples 200, 400, 600 ms; linear p95 at rank 0.95*2 = 1.9 -> 400 + 0.9*200
    assert t["order_age_p95_ms"] == approx(400 + 0.9 * 200)


def test_several_runs_pool_quote_amounts_and_take_max_ws_lag():
    a, b = maker_round_trip(), stale_quote()
    a.meta["ws_lag_p95_ms"] = 20.0
    b.meta["ws_lag_p95_ms"] = 35.0
    b.meta["symbol"] = "OTHERUSDT"
    rep = build_edge_report([a, b], {"seed": 7})
    t = rep["totals"]
    turnover = 400.0 + 99.99
    pnl = (-99.99 * 2 + 100.01 * 2 + 0.0001 * 400.0) + (-99.99 + 0.0001 * 99.99 + 99.90)
    assert t["turnover"] == approx(turnover)
    assert t["pnl"] == approx(pnl)
    assert t["net_bps"] == approx(pnl / turnover * 1e4)
    assert t["ws_lag_p95_ms"] == 35.0
    assert sorted(rep["symbols"]) == ["OTHERUSDT", "TESTUSDT"]
    assert rep["symbols"]["TESTUSDT"]["net_bps"] == pytest.approx(2.0, rel=1e-9)
    assert rep["symbols"]["OTHERUSDT"]["fills"] == 1
    assert rep["runtime"] == {"seed": 7}
    assert rep["identity"]["checked_runs"] == 2


def test_report_json_is_deterministic_and_has_seed_keys():
    r1 = dumps_json(build_edge_report([held_inventory()], {"utc": "fixed"}))
    r2 = dumps_json(build_edge_report([held_inventory()], {"utc": "fixed"}))
    assert r1 == r2
    t = build_edge_report([held_inventory()], {})["totals"]
    for key in (
        "net_bps", "gross_bps", "fees_eff_bps", "slippage_bps", "inventory_bps", "adverse_bps_p95",
        "slippage_bps_p95", "order_age_p95_ms", "ws_lag_p95_ms", "cancel_ratio", "maker_share_pct",
        "fills", "turnover", "pnl", "block_reasons", "neg_edge_drivers", "component_breakdown",
    ):  # fmt: skip
        assert key in t, key


def test_zero_fills_give_a_valid_report_with_null_p95s():
    r = run([], [(0, 100.0, 0), (5, 100.2, 0)])
    rep = build_edge_report([r], {})
    t = rep["totals"]
    assert t["fills"] == 0 and t["turnover"] == 0.0 and t["pnl"] == 0.0
    assert t["net_bps"] == 0.0 and t["gross_bps"] == 0.0
    assert t["adverse_bps_p95"] is None and t["slippage_bps_p95"] is None
    assert t["maker_share_pct"] is None and t["cancel_ratio"] is None
    # strict JSON: no NaN/Infinity literals anywhere
    json.loads(dumps_json(rep), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


def test_position_mismatch_between_fills_and_cumulative_quantity_is_an_error():
    r = maker_round_trip()
    r.fills["position_qty"][1] = 1.0  # should be 0 after selling 2
    with pytest.raises(AuditError, match="position_qty"):
        build_edge_report([r], {})


def test_pnl_must_match_the_simulator_equity_when_given():
    r = stale_quote()
    pnl = -99.99 + 0.0001 * 99.99 + 99.90
    r.meta["sim_equity"] = pnl
    build_edge_report([r], {})  # agrees: no error
    r.meta["sim_equity"] = pnl + 0.01
    with pytest.raises(AuditError, match="simulator's equity"):
        build_edge_report([r], {})


def test_identity_violation_raises_not_warns():
    e = decompose(held_inventory())
    assert check_identity(e) <= 1e-12
    with pytest.raises(AuditError, match="identity violated"):
        check_identity(e._replace(pnl=e.pnl + 1e-3))
    with pytest.raises(AuditError, match="identity violated"):
        check_identity(e._replace(pnl=math.nan))


@pytest.mark.parametrize("col", ["px", "qty", "fee"])
def test_nan_in_fill_prices_is_a_user_error_naming_the_column(col):
    r = held_inventory()
    r.fills[col][1] = np.nan
    with pytest.raises(UserError, match=col):
        build_edge_report([r], {})


def test_missing_fill_column_is_a_user_error():
    r = held_inventory()
    names = [n for n in r.fills.dtype.names if n != "target_px"]
    fills = np.zeros(len(r.fills), dtype=[(n, r.fills.dtype[n]) for n in names])
    for n in names:
        fills[n] = r.fills[n]
    bad = type(r)(fills, r.actions, r.marks, r.meta)
    with pytest.raises(UserError, match="target_px"):
        build_edge_report([bad], {})


def test_unsorted_fills_are_decomposed_in_time_order():
    r = held_inventory()
    flipped = type(r)(r.fills[::-1].copy(), r.actions, r.marks, r.meta)
    a = build_edge_report([r], {})["totals"]
    b = build_edge_report([flipped], {})["totals"]
    assert a["pnl"] == b["pnl"] and a["inventory_bps"] == b["inventory_bps"]


def test_nan_mid_from_an_empty_book_side_is_repaired_from_the_last_mark_and_counted():
    # held_inventory, but the book had an empty side at the second fill (t=3 s): the venue wrote a
    # NaN mid on the fill and on its mark. The mid in force before it was 100.10 (mark at 2 s).
    r = held_inventory()
    r.fills["mid_px"][1] = np.nan
    r.marks["mid_px"][3] = np.nan  # the (3 s) mark
    t = build_edge_report([r], {})["totals"]
    assert t["fills_mid_repaired"] == 1 and t["marks_nan_mid_dropped"] == 1
    # same figures as with the mid known: gross uses 100.10 for the second fill
    assert t["component_breakdown"]["gross_quote"] == approx((100.0 - 99.99) + (100.10 - 100.09))
    assert t["component_breakdown"]["inventory_quote"] == approx(
        1 * (100.10 - 100.0) + 2 * (99.80 - 100.10)
    )


def test_nan_mid_without_any_earlier_mark_is_a_user_error():
    r = held_inventory()
    r.fills["mid_px"][0] = np.nan
    r.marks["mid_px"][:2] = np.nan  # nothing valid at or before 1 s
    with pytest.raises(UserError, match="mid_px is NaN"):
        build_edge_report([r], {})


def test_carried_inventory_without_fills_has_pnl_but_no_bps():
    # 2 units carried in at mid 100.00 (meta), no fills, the mid ends at 100.50: pnl = 2 × 0.50
    r = run([], [(0, 100.0, 2), (5, 100.5, 2)], initial_position_qty=2.0, start_mid_px=100.0)
    t = build_edge_report([r], {})["totals"]
    assert t["pnl"] == approx(2 * 0.50)
    assert t["component_breakdown"]["inventory_quote"] == approx(2 * 0.50)
    assert t["inventory_bps"] is None and t["net_bps"] is None  # undefined over zero turnover
    assert t["gross_bps"] == 0.0
