"""On the real captures in ../shared/data, a backtest's EDGE_REPORT passes the identity and its pnl
equals the simulator's own equity (cash + position × final mid)."""

from __future__ import annotations

import math

import pytest

from conftest import SPOT_CAPTURE, USDM_CAPTURE, need_shared
from mmbot.audit import build_edge_report
from mmbot.gate import evaluate

pytestmark = pytest.mark.shared_data


@pytest.mark.parametrize("capture", [USDM_CAPTURE, SPOT_CAPTURE], ids=["usdm", "spot"])
def test_backtest_report_on_capture_matches_simulator_equity(capture):
    need_shared(capture)
    backtest = pytest.importorskip("mmbot.backtest")
    from mmbot.data import load_events

    events, stats = load_events(capture)
    # glft trades on a 345 s capture at the base tier's fees (the default adaptive stands aside
    # where no depth pays a 2 bps maker fee); the audit is the subject here
    r = backtest.run(
        events, backtest.RunSettings(strategy="glft"), symbol=stats.symbol or "BTCUSDT"
    )
    assert len(r.fills) > 0, "glft should trade on a capture"
    rep = build_edge_report([r], {})  # raises on an identity or sim-equity mismatch
    t = rep["totals"]
    sim_equity = float(r.meta["sim_equity"])
    assert math.isfinite(sim_equity)
    # independent of the audit: the venue's own equity
    assert abs(t["pnl"] - sim_equity) <= 1e-9 * max(1.0, t["turnover"])
    parts = t["gross_bps"] + t["fees_eff_bps"] + t["slippage_bps"] + t["inventory_bps"]
    assert parts == pytest.approx(t["net_bps"], rel=1e-9, abs=1e-12)
    assert rep["identity"]["max_rel_err"] <= 1e-9
    assert evaluate(rep)["verdict"] in ("PASS", "WARN", "FAIL")
