"""A replay reads its run's totals from the run's digest instead of building the whole
EDGE_REPORT (`soak.replay.run_totals`, `chunk_net_bps`): the same figures as the report's
totals, and the same audit (a run whose records disagree with the simulator fails)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import TESTS_DATA
from mmbot.audit import build_edge_report
from mmbot.audit.decompose import AuditError
from mmbot.records import RunResult
from mmbot.soak.replay import chunk_net_bps, run_totals


@pytest.fixture(scope="module")
def runs() -> list[RunResult]:
    from mmbot.backtest import RunSettings, run
    from mmbot.data import load_events

    events, stats = load_events(TESTS_DATA / "binance_usdm_btcusdt_sample.gz")
    out = []
    for n in (len(events), 200):  # the whole sample (fills), its first 200 rows (none)
        out.append(
            run(
                events[:n],
                RunSettings(strategy="glft"),
                symbol=stats.symbol,
                data_format=stats.format,
            )
        )
    assert len(out[0].fills) > 5 and len(out[1].fills) == 0
    return out


def test_run_totals_are_the_reports_totals(runs: list[RunResult]) -> None:
    for res in runs:
        totals = build_edge_report([res], {})["totals"]
        want = (float(totals["pnl"] or 0.0), float(totals["turnover"] or 0.0), totals["fills"])
        assert run_totals(res) == want
        net = totals["net_bps"] if totals["fills"] else None
        got = chunk_net_bps(res)
        assert (got is None and net is None) or (got == net and math.isfinite(got))


def test_run_totals_keep_the_audit(runs: list[RunResult]) -> None:
    res = runs[0]
    fills = res.fills.copy()
    fills["px"] = fills["px"] * np.where(fills["side"] > 0, 0.99, 1.01)  # records off the venue's
    with pytest.raises(AuditError):
        run_totals(RunResult(fills, res.actions, res.marks, res.meta))
