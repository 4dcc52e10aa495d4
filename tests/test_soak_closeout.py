"""Soak chunks close their end position at taker cost, booked as a fill: the identity and the
venue cross-check still hold, and the report says what it cost."""

from __future__ import annotations

import numpy as np
import pytest

from mmbot.audit.edge_report import build_edge_report
from mmbot.records import ACTION_DTYPE, FILL_DTYPE, MARK_DTYPE, RunResult
from mmbot.soak.closeout import close_at_taker


def _long_run(pos: float = 2.0) -> RunResult:
    fills = np.zeros(1, FILL_DTYPE)
    f = fills[0]
    f["exch_ts"] = f["local_ts"] = 10
    f["side"], f["maker"], f["px"], f["qty"] = 1, 1, 99.9, pos
    f["fee_rate"], f["fee"] = 0.0002, 0.0002 * 99.9 * pos
    f["mid_px"], f["target_px"], f["position_qty"] = 100.0, 99.9, pos
    marks = np.zeros(2, MARK_DTYPE)
    marks["exch_ts"], marks["mid_px"], marks["position_qty"] = [10, 20], [100.0, 101.0], pos
    cash = -99.9 * pos - f["fee"]
    meta = {
        "symbol": "SYN",
        "tick_px": 0.1,
        "end_ts": 30,
        "final_mid_px": 101.0,
        "final_bid_px": 100.95,
        "final_ask_px": 101.05,
        "taker_fee_rate": 0.0005,
        "sim_equity": float(cash + pos * 101.0),
    }
    return RunResult(fills, np.zeros(0, ACTION_DTYPE), marks, meta)


def test_a_long_is_sold_at_the_bid_with_the_taker_fee_and_booked():
    res = close_at_taker(_long_run())
    last = res.fills[-1]
    assert (last["side"], last["maker"], last["px"], last["qty"]) == (-1, 0, 100.95, 2.0)
    assert last["fee"] == pytest.approx(0.0005 * 100.95 * 2.0)
    assert last["position_qty"] == 0.0
    c = res.meta["close_out"]
    assert c["cost"] == pytest.approx(2.0 * 0.05 + 0.0005 * 100.95 * 2.0)
    rep = build_edge_report([res])  # identity and the venue-equity cross-check both asserted
    t = rep["totals"]
    expected = -99.9 * 2 - 0.0002 * 99.9 * 2 + 100.95 * 2 - 0.0005 * 100.95 * 2
    assert t["pnl"] == pytest.approx(expected, abs=1e-12)
    assert t["position_close_out"]["closed"] == 1
    assert t["position_close_out"]["cost"] == pytest.approx(c["cost"])


def test_a_flat_run_is_unchanged_and_says_so():
    r = _long_run()
    r.fills["position_qty"] = 0.0
    out = close_at_taker(r)
    assert len(out.fills) == 1 and out.meta["close_out"] == {"closed": False, "why": "flat"}
