"""The notebook API exported from `mmbot`: backtest -> frames, edge report, gate, report; clamping
warns; named enums."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

import mmbot
from conftest import TESTS_DATA
from mmbot.audit.decompose import check_identity, decompose

SAMPLE = TESTS_DATA / "binance_usdm_btcusdt_sample.gz"


@pytest.fixture(scope="module")
def result() -> mmbot.BacktestResult:
    return mmbot.backtest(SAMPLE, strategy="glft", knobs={"min_interval_ms": 100})


def test_backtest_is_callable_from_the_package_and_still_the_loop_module(result) -> None:
    from mmbot.backtest import RunSettings, run

    assert callable(mmbot.backtest) and callable(run) and RunSettings().strategy is None
    assert len(result.runs) == 1 and result.knobs["min_interval_ms"] == 100


def test_fills_df_edge_columns_add_up_to_the_runs_pnl(result) -> None:
    df = result.fills_df()
    assert isinstance(df, pl.DataFrame) and df.height == len(result.runs[0].fills) > 0
    parts = df.select(pl.sum_horizontal("gross", "slippage", "fees", "inventory")).to_series()
    np.testing.assert_allclose(parts.to_numpy(), df["net"].to_numpy(), rtol=0, atol=1e-9)
    e = decompose(result.runs[0])
    check_identity(e)
    assert df["net"].sum() + e.inventory_initial == pytest.approx(e.pnl, rel=1e-9, abs=1e-9)
    assert set(df["side"].unique().to_list()) <= {"buy", "sell"}
    assert "markout_1s_bps" in df.columns and df["ts"].dtype == pl.Datetime("ns", "UTC")


def test_orders_df_names_kinds_and_reasons(result) -> None:
    df = result.orders_df()
    assert set(df["kind"].unique().to_list()) >= {"intended", "sent"}
    assert not any(r.startswith("reason_") for r in df["reason"].unique().to_list())
    assert mmbot.Reason.MIN_INTERVAL.label == "min_interval" and mmbot.Side.SELL == -1


def test_edge_report_gate_and_report_dir(result, tmp_path) -> None:
    assert result.edge_report["totals"]["fills"] == len(result.runs[0].fills)
    assert result.gate["verdict"] in ("PASS", "WARN", "FAIL")
    html = result.report(tmp_path / "rep")
    assert html.exists() and (tmp_path / "rep" / "EDGE_REPORT.json").exists()
    assert (tmp_path / "rep" / "BACKTEST_RESULTS.md").exists()


def test_out_of_range_knob_warns_with_field_asked_and_used() -> None:
    from mmbot.api import KnobClampedWarning, clamp_knobs

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        used = clamp_knobs({"min_interval_ms": 5, "tail_age_ms": 500})
    assert used["min_interval_ms"] == 50 and used["tail_age_ms"] == 500
    msgs = [str(x.message) for x in w if issubclass(x.category, KnobClampedWarning)]
    assert msgs == ["knob min_interval_ms: asked 5, used 50 (limits [50, 300])"]


def test_unknown_knob_is_a_user_error() -> None:
    from mmbot.errors import UserError

    with pytest.raises(UserError, match="unknown knob 'min_interval'"):
        mmbot.backtest(SAMPLE, knobs={"min_interval": 100})
