"""Events as Parquet in and out; the npz keeps the symbol; fills.parquet carries per-fill edges."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from conftest import TESTS_DATA
from mmbot.data import load_events
from mmbot.data.inspect import convert_capture
from mmbot.errors import UserError

SAMPLE = TESTS_DATA / "binance_usdm_btcusdt_sample.gz"
BYBIT = TESTS_DATA / "bybit_xrpusdt_ob500_sample.jsonl"


@pytest.mark.parametrize("capture", [SAMPLE, BYBIT], ids=["binance", "bybit"])
def test_parquet_round_trip_gives_the_same_events_and_symbol(capture, tmp_path) -> None:
    events, stats = load_events(capture)
    out = convert_capture(capture, tmp_path / "ev.parquet").out
    back, st2 = load_events(out)
    assert back.dtype == events.dtype and np.array_equal(back, events)
    assert st2.format == "parquet" and st2.symbol == stats.symbol != ""
    meta = pl.read_parquet_metadata(out)
    assert meta["mmbot.schema"] == "events/1" and meta["mmbot.symbol"] == stats.symbol


def test_npz_keeps_the_symbol(tmp_path) -> None:
    out = convert_capture(SAMPLE, tmp_path / "ev.npz").out
    _, st = load_events(out)
    assert st.format == "npz" and st.symbol == "BTCUSDT"
    with np.load(out) as z:  # hftbacktest reads `data`
        assert z["data"].dtype.names[0] == "ev"


def test_parquet_without_an_event_column_is_one_clear_error(tmp_path) -> None:
    p = tmp_path / "bad.parquet"
    pl.DataFrame({"ev": [1], "exch_ts": [2]}).write_parquet(p)
    with pytest.raises(UserError, match=r"missing column\(s\) local_ts, px"):
        load_events(p)


def test_unsupported_convert_suffix_names_both_formats(tmp_path) -> None:
    with pytest.raises(UserError, match=r"\.npz .* or \.parquet"):
        convert_capture(SAMPLE, tmp_path / "ev.csv")


def test_fills_parquet_carries_the_edge_columns(tmp_path) -> None:
    import mmbot
    from mmbot.audit.records_io import read_run, write_run

    r = mmbot.backtest(SAMPLE)
    d = write_run(tmp_path, r.runs[0], "run")
    fills = pl.read_parquet(d / "fills.parquet")
    assert {"gross", "slippage", "fees", "inventory", "net", "markout_1s_bps"} <= set(fills.columns)
    expect = r.fills_df().sort("exch_ts_ns", maintain_order=True)
    got = fills.sort("exch_ts", maintain_order=True)
    np.testing.assert_array_equal(got["net"].to_numpy(), expect["net"].to_numpy())
    assert len(read_run(d)[0].fills) == fills.height  # readers ignore the extra columns
