"""The fill-mid cross-check: a book rebuilt from the input events agrees with every fill of a real
backtest, and a fill carrying a corrupted mid fails the audit with the fill named."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import TESTS_DATA
from mmbot.audit.crosscheck import check_fill_mids, rebuild_mids
from mmbot.audit.decompose import AuditError
from mmbot.events import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_EVENT,
    EVENT_DTYPE,
    EXCH_EVENT,
    SELL_EVENT,
)
from mmbot.records import RunResult


@pytest.fixture(scope="module")
def sample_run():
    from mmbot.backtest import RunSettings, run
    from mmbot.data import load_events

    events, stats = load_events(TESTS_DATA / "binance_usdm_btcusdt_sample.gz")
    # glft: a quoter that trades on the sample at the base tier's fees (the audit is the subject)
    res = run(events, RunSettings(strategy="glft"), symbol=stats.symbol, data_format=stats.format)
    assert len(res.fills) > 5
    return events, res


def test_every_fill_mid_matches_the_independently_rebuilt_book(sample_run):
    events, res = sample_run
    out = check_fill_mids(events, res)
    assert out["fills_checked"] == int(np.isfinite(res.fills["mid_px"]).sum())
    assert out["max_rel_err"] <= 1e-12


@pytest.mark.parametrize("factor", [0.1, 1.0 + 1e-6])
def test_a_corrupted_fill_mid_fails_the_audit_naming_the_fill(sample_run, factor):
    events, res = sample_run
    fills = res.fills.copy()
    k = len(fills) // 2
    fills["mid_px"][k] *= factor
    bad = RunResult(fills, res.actions, res.marks, res.meta)
    with pytest.raises(AuditError, match=rf"fill {k} \(exch_ts={int(fills['exch_ts'][k])}"):
        check_fill_mids(events, bad)


def test_the_callers_rebuilt_mids_are_the_ones_checked(sample_run):
    """The soak rebuilds a chunk's mids once for the cross-check and the funding: given them,
    the check reads them (the same answer as rebuilding; a wrong mid path fails it)."""
    events, res = sample_run
    ts, mid = rebuild_mids(events, float(res.meta["tick_px"]))
    assert check_fill_mids(events, res, mids=(ts, mid)) == check_fill_mids(events, res)
    with pytest.raises(AuditError, match="fill 0 "):
        check_fill_mids(events, res, mids=(ts, mid * 1.001))


def test_identity_alone_does_not_catch_the_corrupted_mid(sample_run):
    """Why the cross-check exists: gross + slippage + fees + inventory = pnl holds whatever mid."""
    from mmbot.audit.decompose import check_identity, decompose

    _, res = sample_run
    fills = res.fills.copy()
    fills["mid_px"] *= 0.1
    meta = {k: v for k, v in res.meta.items() if k != "sim_equity"}
    assert check_identity(decompose(RunResult(fills, res.actions, res.marks, meta))) < 1e-9


def _ev(rows):
    ev = np.zeros(len(rows), EVENT_DTYPE)
    for i, (ts, kind, side, px, qty) in enumerate(rows):
        ev[i]["ev"] = kind | EXCH_EVENT | (BUY_EVENT if side > 0 else SELL_EVENT)
        ev[i]["exch_ts"] = ev[i]["local_ts"] = ts
        ev[i]["px"], ev[i]["qty"] = px, qty
    return ev


def test_rebuilt_book_applies_deletes_and_bbo_rows():
    ev = _ev(
        [
            (1, DEPTH_EVENT, 1, 99.0, 1.0),
            (2, DEPTH_EVENT, -1, 101.0, 1.0),
            (3, DEPTH_EVENT, 1, 100.0, 2.0),
            (4, DEPTH_EVENT, 1, 100.0, 0.0),  # delete: best bid back to 99
            (5, DEPTH_BBO_EVENT, -1, 102.0, 1.0),  # best ask 102: 101 no longer stands
            (6, DEPTH_BBO_EVENT, 1, 98.0, 1.0),  # best bid 98: 99 no longer stands
        ]
    )
    ts, mid = rebuild_mids(ev, 1.0)
    assert ts.tolist() == [1, 2, 3, 4, 5, 6]
    assert np.isnan(mid[0])
    assert mid[1:].tolist() == [100.0, 100.5, 100.0, 100.5, 100.0]
