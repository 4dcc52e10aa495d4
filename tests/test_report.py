"""Reports: the cumulative component series (checked by hand), Markdown content, a self-contained
HTML under ~5 MB, and ``mmbot report --run DIR`` end to end."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mmbot.audit import build_edge_report, decompose
from mmbot.audit.records_io import write_run
from mmbot.audit.synthetic import synthetic_result
from mmbot.gate import evaluate
from mmbot.report import write_reports
from mmbot.report.series import chained_pnl_series, pnl_series
from test_audit import held_inventory, stale_quote
from test_audit_helpers import T0, S

REPO = Path(__file__).resolve().parents[1]
MMBOT = REPO / ".venv" / "bin" / "mmbot"


def test_cumulative_series_by_hand_for_held_inventory():
    r = held_inventory()
    s = pnl_series(r, decompose(r))
    at = {int((t - T0) // S): i for i, t in enumerate(s.ts_ns) if (t - T0) % S == 0}
    # 2 s: holding 1 since 1 s (bought at mid 100.00), mid now 100.10 -> inventory +0.10
    assert s.inventory[at[2]] == pytest.approx(0.10, abs=1e-12)
    assert s.gross[at[2]] == pytest.approx(100.0 - 99.99, abs=1e-12)
    # 4 s: 1×(99.80−100.00) + 1×(99.80−100.10) = −0.50; gross has both fills
    assert s.inventory[at[4]] == pytest.approx(-0.50, abs=1e-12)
    assert s.gross[at[4]] == pytest.approx((100.0 - 99.99) + (100.10 - 100.09), abs=1e-12)
    assert s.net[-1] == pytest.approx(-99.99 - 100.09 + 2 * 99.80, abs=1e-12)


def test_chained_series_ends_at_the_report_totals():
    runs = [stale_quote(), held_inventory()]
    rep = build_edge_report(runs, {})
    s = chained_pnl_series(runs)
    cb = rep["totals"]["component_breakdown"]
    assert s.gross[-1] == pytest.approx(cb["gross_quote"], abs=1e-12)
    assert s.slippage[-1] == pytest.approx(cb["slippage_quote"], abs=1e-12)
    assert s.fees[-1] == pytest.approx(cb["fees_quote"], abs=1e-12)
    assert s.inventory[-1] == pytest.approx(cb["inventory_quote"], abs=1e-12)
    assert s.net[-1] == pytest.approx(rep["totals"]["pnl"], abs=1e-12)


def test_write_reports_markdown_and_self_contained_small_html(tmp_path):
    r = synthetic_result(100_000, seed=5)
    rep = build_edge_report([r], {"profile": "S1"})
    gate = evaluate(rep)
    md, html = write_reports(tmp_path, rep, [r], gate, extra_md="## Extra\nhello")
    text = md.read_text()
    assert f"KPI_GATE: **{gate['verdict']}**" in text
    assert f"{rep['totals']['net_bps']:.4f}" in text
    assert "## Extra" in text and "| profile | S1 |" in text
    page = html.read_text()
    # no network needed: no <script src=...> (the inlined plotly.js mentions URLs for map tiles only)
    assert re.findall(r"<script\b[^>]*\bsrc\s*=", page) == []
    assert "plotly.js v" in page or "plotly.js" in page
    assert page.count("Plotly.newPlot") == 6  # price, pnl, markouts, edge_hist, blocks, position
    assert html.stat().st_size < 5.0e6


def test_zero_fill_run_still_gets_reports(tmp_path):
    r = synthetic_result(0)
    rep = build_edge_report([r], {})
    md, html = write_reports(tmp_path, rep, [r], evaluate(rep))
    assert "hard fails: " in md.read_text() and "fills" in md.read_text()
    assert html.exists()


def test_report_cli_builds_edge_report_gate_and_both_reports(tmp_path):
    write_run(tmp_path, synthetic_result(500, seed=1), "iter1")
    write_run(tmp_path, synthetic_result(300, seed=2, symbol="SYN2"), "iter2")
    cp = subprocess.run(
        [str(MMBOT), "report", "--run", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert cp.returncode == 0, cp.stderr
    for name in ("EDGE_REPORT.json", "KPI_GATE.json", "SOAK_RESULTS.md", "REPORT.html"):
        assert (tmp_path / name).exists(), name
    rep = json.loads((tmp_path / "EDGE_REPORT.json").read_text())
    assert rep["totals"]["fills"] == 800
    assert sorted(rep["symbols"]) == ["SYN2", "SYNUSDT"]
    assert "REPORT.html" in cp.stdout


def test_report_cli_on_bad_dir_exits_2(tmp_path):
    cp = subprocess.run(
        [str(MMBOT), "report", "--run", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cp.returncode == 2 and cp.stderr.startswith("error:")


def test_series_are_thinned(tmp_path):
    r = synthetic_result(50_000, seed=3)
    s = pnl_series(r, decompose(r), max_points=500)
    assert len(s.ts_ns) <= 500 and np.all(np.diff(s.ts_ns) > 0)


def test_html_figures_carry_the_run_data():
    from mmbot.report.html import _figures

    runs = [stale_quote(), held_inventory()]
    rep = build_edge_report(runs, {})
    figs = dict(_figures(rep, runs, [decompose(r) for r in runs], 1000))
    assert sorted(figs) == ["blocks", "edge_hist", "markouts", "pnl", "position", "price"]
    net = [tr for tr in figs["pnl"].data if tr.name == "net (pnl)"][0]
    # plotted as float32 (the exact series is checked in test_chained_series_ends_at_the_report_totals)
    assert float(net.y[-1]) == pytest.approx(rep["totals"]["pnl"], rel=1e-6)
    names = {tr.name for tr in figs["pnl"].data}
    assert {"gross", "slippage", "fees", "inventory"} <= names
    # markout curve: the 1 s point is the report's p95
    p95 = [tr for tr in figs["markouts"].data if tr.name == "p95"][0]
    assert list(p95.x) == ["100ms", "1s", "5s", "30s"]
    assert p95.y[1] == rep["totals"]["adverse_bps_p95"]
    assert figs["edge_hist"].data[0].type == "bar"


def test_edge_histogram_accounts_for_every_fill():
    from mmbot.report.series import histogram

    x = np.concatenate([np.arange(1000.0), [np.nan]])
    centres, counts, below, above = histogram(x, bins=10)
    # 0.5 % / 99.5 % of 0..999 (linear): 4.995 and 994.005 -> 5 values below (0..4), 5 above
    assert (below, above) == (5, 5)
    assert int(counts.sum()) == 990 and len(centres) == 10


def test_price_figure_shows_every_fill_and_our_bid_below_our_ask() -> None:
    import numpy as np

    import mmbot
    from conftest import TESTS_DATA
    from mmbot.audit.decompose import decompose
    from mmbot.report.html import _figures
    from mmbot.report.series import quote_series

    # glft quotes both sides from the first second of this 1-minute sample (adaptive warms up 30 s)
    r = mmbot.backtest(TESTS_DATA / "binance_usdm_btcusdt_sample.gz", strategy="glft")
    rep, runs = r.edge_report, r.runs
    price = dict(_figures(rep, runs, [decompose(r) for r in runs], 20_000))["price"]
    traces = {tr.name: tr for tr in price.data}
    fills = runs[0].fills
    assert len(traces["buy fills"].x) == int((fills["side"] == 1).sum())
    assert len(traces["sell fills"].x) == int((fills["side"] == -1).sum())
    q = quote_series(runs[0], 10_000)
    both = np.isfinite(q.bid_px) & np.isfinite(q.ask_px)
    assert both.any() and (q.bid_px[both] < q.ask_px[both]).all()
    thin = quote_series(runs[0], 50)
    assert len(thin.ts_ns) <= 50
