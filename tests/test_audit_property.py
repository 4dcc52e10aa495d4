"""Property test: the identity gross + slippage + fees + inventory = PnL holds for random fills/prices,
and the PnL equals an exact (Fraction) reference computed independently of the audit."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmbot.audit import build_edge_report
from mmbot.records import ACTION_DTYPE, FILL_DTYPE, MARK_DTYPE, RunResult

fill_st = st.tuples(
    st.sampled_from([-1, 1]),  # side
    st.booleans(),  # maker
    st.floats(0.5, 5e4),  # mid
    st.floats(-0.01, 0.01),  # px offset from mid, relative
    st.floats(1e-3, 1e3),  # qty
    st.floats(-0.0003, 0.001),  # fee rate
    st.one_of(st.none(), st.floats(-0.01, 0.01)),  # target offset from px, relative (None = NaN)
    st.integers(1, 5_000_000_000),  # gap to previous fill, ns
    st.floats(-0.02, 0.02),  # mid move after the fill, relative
)


def _build(rows, final_move, pos0=0.0):
    n = len(rows)
    fills = np.zeros(n, dtype=FILL_DTYPE)
    marks = []
    t = 1_000_000_000
    pos = pos0
    mid_after = 100.0
    marks.append((0, 100.0, pos0))
    for i, (side, maker, mid, off, qty, rate, toff, gap, move) in enumerate(rows):
        t += gap
        px = mid * (1 + off)
        fee = rate * px * qty
        pos = pos + side * qty
        tgt = np.nan if toff is None else px * (1 + toff)
        fills[i] = (t, t, i, side, maker, px, qty, fee, rate, mid, tgt, 0, pos)
        marks.append((t, mid, pos))
        mid_after = mid * (1 + move)
        marks.append((t + 1, mid_after, pos))
    final_mid = mid_after * (1 + final_move)
    marks.append((t + 10, final_mid, pos))
    m = np.array(marks, dtype=MARK_DTYPE)
    meta = {
        "symbol": "PROP",
        "final_mid_px": float(final_mid),
        "end_ts": int(t + 10),
        "initial_position_qty": pos0,
        "start_mid_px": 100.0,
    }
    return RunResult(fills, np.zeros(0, dtype=ACTION_DTYPE), m, meta)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(fill_st, min_size=0, max_size=40),
    st.floats(-0.05, 0.05),
    st.one_of(st.just(0.0), st.floats(-50.0, 50.0)),
)
def test_identity_holds_for_random_fills_and_pnl_matches_exact_reference(rows, final_move, pos0):
    r = _build(rows, final_move, pos0)
    rep = build_edge_report([r], {})  # raises if the identity fails
    t = rep["totals"]
    f = r.fills
    # exact reference: cash + position × final mid, in rational arithmetic
    cash = sum(
        (-Fraction(int(s)) * Fraction(float(p)) * Fraction(float(q)) - Fraction(float(fee)))
        for s, p, q, fee in zip(f["side"], f["px"], f["qty"], f["fee"], strict=True)
    )
    pos = sum(
        (Fraction(int(s)) * Fraction(float(q)) for s, q in zip(f["side"], f["qty"], strict=True)),
        Fraction(pos0),
    )
    # the carried-in position is valued from the start mid to the final mid
    pnl_exact = cash + pos * Fraction(r.meta["final_mid_px"]) - Fraction(pos0) * Fraction(100.0)
    turnover = float(
        sum(Fraction(float(p)) * Fraction(float(q)) for p, q in zip(f["px"], f["qty"], strict=True))
    )
    scale = max(1.0, turnover)
    assert abs(t["pnl"] - float(pnl_exact)) <= 1e-9 * scale
    # Σ position·Δmid over the marks (exact) equals the inventory component
    m = r.marks
    inv_exact = sum(
        (
            Fraction(float(m["position_qty"][k - 1]))
            * (Fraction(float(m["mid_px"][k])) - Fraction(float(m["mid_px"][k - 1])))
        )
        for k in range(1, len(m))
    )
    # marks carry float positions; allow their rounding
    assert abs(t["component_breakdown"]["inventory_quote"] - float(inv_exact)) <= 1e-9 * scale
    cb = t["component_breakdown"]
    parts = cb["gross_quote"] + cb["slippage_quote"] + cb["fees_quote"] + cb["inventory_quote"]
    assert abs(parts - t["pnl"]) <= 1e-9 * scale
    if t["turnover"] == 0:
        return  # no bps over zero turnover (checked in test_audit)
    bps_sum = t["gross_bps"] + t["fees_eff_bps"] + t["slippage_bps"] + t["inventory_bps"]
    assert abs(bps_sum - t["net_bps"]) <= 1e-9 * max(1.0, abs(t["net_bps"]))
