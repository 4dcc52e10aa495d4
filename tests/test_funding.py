"""Funding on perpetuals: a known rate on a known position pays exactly rate x position x mark at
the venue's funding times, in the settle coin, and the edge identity stays exact."""

from __future__ import annotations

import numpy as np
import pytest

from mmbot.audit.decompose import check_identity, component_totals, decompose
from mmbot.audit.edge_report import build_edge_report
from mmbot.errors import UserError
from mmbot.funding import FUNDING_INTERVAL_S, load_funding_csv, schedule_from_rate
from mmbot.instruments import spec_for
from mmbot.records import ACTION_DTYPE, FILL_DTYPE, MARK_DTYPE, RunResult

H8_NS = FUNDING_INTERVAL_S * 1_000_000_000
T_FUND = 1_722_988_800 * 1_000_000_000  # 2024-08-07 00:00 UTC, a funding time


def _run(qty: float, px: float, mid_at_funding: float, spec=None, rate=0.0001) -> RunResult:
    """Buy ``qty`` at ``px`` one minute before a funding time; the mid moves to
    ``mid_at_funding`` at that time and stays."""
    t_buy = T_FUND - 60_000_000_000
    fills = np.zeros(1, FILL_DTYPE)
    f = fills[0]
    f["exch_ts"] = f["local_ts"] = t_buy
    f["side"], f["maker"], f["px"], f["qty"] = 1, 1, px, qty
    f["mid_px"] = f["target_px"] = px
    f["position_qty"] = qty
    marks = np.zeros(3, MARK_DTYPE)
    marks["exch_ts"] = [t_buy - 1, t_buy, T_FUND - 1]
    marks["mid_px"] = [px, px, mid_at_funding]
    marks["position_qty"] = [0.0, qty, qty]
    start, end = t_buy - 1_000_000_000, T_FUND + 60_000_000_000
    meta = {
        "symbol": "X",
        "tick_px": 0.1,
        "start_ts": start,
        "end_ts": end,
        "final_mid_px": mid_at_funding,
        "start_mid_px": px,
        "funding": schedule_from_rate(rate, start, end).to_meta(),
    }
    if spec is not None:
        meta["contract"] = spec.to_meta()
    return RunResult(fills, np.zeros(0, ACTION_DTYPE), marks, meta)


def test_rate_times_position_times_mark_is_paid_at_the_funding_time():
    e = decompose(_run(2.0, 100.0, 101.0))
    assert e.funding_payments == 1
    assert e.funding == -0.0001 * 2.0 * 101.0  # a long pays a positive rate, on the mark
    assert check_identity(e) < 1e-15
    t = component_totals(e)
    assert t["pnl"] == pytest.approx(2.0 * (101.0 - 100.0) + e.funding, abs=1e-12)


def test_short_receives_and_no_position_pays_nothing():
    r = _run(2.0, 100.0, 100.0)
    r.fills["side"] = -1
    r.fills["position_qty"] = -2.0
    r.marks["position_qty"][1:] = -2.0
    assert decompose(r).funding == 0.0001 * 2.0 * 100.0
    flat = _run(2.0, 100.0, 100.0)
    flat.fills["exch_ts"] = T_FUND + 1  # bought after the funding time: nothing held at it
    flat.marks["exch_ts"] = [T_FUND - 2, T_FUND - 1, T_FUND + 1]
    assert decompose(flat).funding == 0.0


def test_inverse_funding_is_paid_in_the_coin():
    spec = spec_for("binance-coinm", "BTCUSD_PERP")
    e = decompose(_run(200.0, 50_000.0, 50_000.0, spec=spec))
    assert e.funding == pytest.approx(-0.0001 * 200.0 * 100.0 / 50_000.0, rel=1e-15)
    assert check_identity(e) < 1e-12


def test_report_carries_funding_bps_and_the_identity_with_it():
    rep = build_edge_report([_run(2.0, 100.0, 101.0)])
    t = rep["totals"]
    assert t["funding_bps"] == pytest.approx(-0.0001 * 2.0 * 101.0 / 200.0 * 1e4)
    parts = sum(t[k] for k in ("gross_bps", "fees_eff_bps", "slippage_bps", "inventory_bps"))
    assert parts + t["funding_bps"] == pytest.approx(t["net_bps"], abs=1e-12)


def test_schedule_uses_the_venue_funding_times():
    s = schedule_from_rate(0.0002, T_FUND - 1, T_FUND + 2 * H8_NS)
    assert s.times_ns.tolist() == [T_FUND, T_FUND + H8_NS, T_FUND + 2 * H8_NS]


def test_funding_csv_is_read_and_bad_rows_are_named(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text("time,rate\n2024-08-07T00:00:00Z,0.0001\n1723017600000,-0.00005\n")
    s = load_funding_csv(p)
    assert s.times_ns.tolist() == [T_FUND, T_FUND + H8_NS]
    assert s.rates.tolist() == [0.0001, -0.00005]
    p.write_text("time,rate\n2024-08-07T00:00:00Z,abc\n")
    with pytest.raises(UserError, match="line 2"):
        load_funding_csv(p)
    p.write_text("2024-08-07T00:00:00Z,0.9\n")
    with pytest.raises(UserError, match="within"):
        load_funding_csv(p)


def test_synthetic_market_funding_series_is_reproducible_and_at_funding_times():
    from mmbot.funding import SYN_CAP, synthetic_schedule

    a = synthetic_schedule(T_FUND - 1, T_FUND + 30 * H8_NS, seed=3)
    b = synthetic_schedule(T_FUND - 1, T_FUND + 30 * H8_NS, seed=3)
    assert len(a.times_ns) == 31 and np.all(np.diff(a.times_ns) == H8_NS)
    assert a.rates.tolist() == b.rates.tolist()
    assert np.all(np.abs(a.rates) <= SYN_CAP) and len(set(a.rates.tolist())) > 1
