"""Contract specs: detection, the inverse value function, and an inverse backtest reconciled by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmbot.errors import UserError
from mmbot.events import EVENT_DTYPE
from mmbot.instruments import detect_market, detect_spec, resolve_spec, spec_for


@pytest.mark.parametrize(
    ("fmt", "symbol", "market", "kind", "size", "settle"),
    [
        ("binance-usdm", "BTCUSD_PERP", "binance-coinm", "inverse", 100.0, "BTC"),
        ("binance-usdm", "ETHUSD_240927", "binance-coinm", "inverse", 10.0, "ETH"),
        ("binance-usdm", "BTCUSDT", "binance-usdm", "linear", 1.0, "USDT"),
        ("binance-spot", "BTCUSDT", "binance-spot", "spot", 1.0, "USDT"),
        ("bybit", "XRPUSDT", "bybit-linear", "linear", 1.0, "USDT"),
        ("bybit", "BTCUSD", "bybit-inverse", "inverse", 1.0, "BTC"),
        ("bybit", "BTCUSDH25", "bybit-inverse", "inverse", 1.0, "BTC"),
    ],
)
def test_market_is_detected_from_format_and_symbol(fmt, symbol, market, kind, size, settle):
    spec = detect_spec(fmt, symbol)
    assert (spec.market, spec.kind, spec.contract_size, spec.settle) == (
        market,
        kind,
        size,
        settle,
    )


def test_unknown_format_is_linear_size_one_and_says_so():
    spec = detect_spec("npz", "")
    assert spec.market == "unknown" and spec.kind == "linear" and spec.contract_size == 1.0
    assert detect_market("tardis", "ETHUSD_PERP") == "binance-coinm"


def test_flag_overrides_detection_and_bad_flags_are_user_errors():
    spec = resolve_spec("binance-usdm", "BTCUSDT", market="bybit-spot")
    assert spec.spot and spec.source == "flag"
    assert resolve_spec("bybit", "BTCUSD", contract_size=5.0).contract_size == 5.0
    with pytest.raises(UserError, match="--market"):
        spec_for("kraken-futures", "BTCUSD")
    with pytest.raises(UserError, match="--contract-size"):
        spec_for("binance-coinm", "BTCUSD_PERP", contract_size=-1.0)


def test_inverse_value_gives_coin_pnl_of_a_round_trip():
    spec = spec_for("binance-coinm", "BTCUSD_PERP")
    # long 3 contracts (300 USD) at 50,000, sold at 60,000: 300*(1/50000 - 1/60000) BTC
    pnl = 3 * (spec.value(60_000.0) - spec.value(50_000.0))
    assert pnl == pytest.approx(300 * (1 / 50_000 - 1 / 60_000), rel=1e-15)
    assert spec.usd_notional(3, 50_000.0) == 300.0
    assert spec.qty_for_notional(20_000.0, 57_000.0) == 200.0
    assert spec.label() == "binance-coinm inverse (1 contract = 100 USD, settles in BTC)"


@pytest.fixture(scope="module")
def coinm_run():
    from conftest import COINM_CAPTURE, need_shared
    from mmbot.backtest import RunSettings, run
    from mmbot.data import load_events

    events, stats = load_events(need_shared(COINM_CAPTURE))
    s = RunSettings(strategy="glft")  # a quoter that trades at the base tier's fees in 345 s
    return run(events, s, symbol=stats.symbol, data_format=stats.format), stats


def test_coinm_capture_is_named_inverse_by_inspect(coinm_run):
    from mmbot.data.inspect import summary

    _, stats = coinm_run
    assert summary(np.zeros(0, EVENT_DTYPE), stats)["market"].startswith("binance-coinm inverse")


def test_coinm_orders_are_contracts_and_turnover_is_contracts_times_100(coinm_run):
    from mmbot.backtest import summarize

    res, _ = coinm_run
    f = res.fills
    assert len(f) > 10
    assert res.meta["contract"]["kind"] == "inverse"
    # order size = profile order_notional (quote) / 100 USD per contract, whole contracts
    assert res.meta["order_qty"] == 200.0
    assert np.all(f["qty"] == np.round(f["qty"]))
    s = summarize([res])
    assert s["turnover_usd"] == float((f["qty"] * 100.0).sum())
    assert s["settle"] == "BTC"


def test_coinm_pnl_in_btc_equals_a_recomputation_from_the_fills(coinm_run):
    from mmbot.audit.edge_report import build_edge_report

    res, _ = coinm_run
    f = res.fills
    s = np.where(f["side"] > 0, 1.0, -1.0)
    m_T = res.meta["final_mid_px"]
    # each contract is 100 USD: a buy of q at p pays q*100/p BTC worth of USD exposure; marked at
    # m_T it is worth q*100/m_T. Fee = rate x q*100/p BTC.
    fee = np.where(f["maker"] == 1, res.meta["maker_fee_rate"], res.meta["taker_fee_rate"])
    fee_btc = fee * f["qty"] * 100.0 / f["px"]
    pnl_btc = float((s * f["qty"] * 100.0 * (1.0 / f["px"] - 1.0 / m_T)).sum() - fee_btc.sum())
    rep = build_edge_report([res])
    assert rep["totals"]["settle"] == "BTC"
    assert rep["totals"]["pnl"] == pytest.approx(pnl_btc, rel=1e-9, abs=1e-15)
    assert res.meta["sim_equity"] == pytest.approx(pnl_btc, rel=1e-9, abs=1e-15)
    assert np.allclose(f["fee"], fee_btc, rtol=1e-12, atol=0)
    assert rep["totals"]["pnl_usd"] == pytest.approx(pnl_btc * m_T, rel=1e-9)
    # and nothing like the USD-M reading (one contract taken for one BTC)
    assert abs(rep["totals"]["pnl"]) < 0.01
    assert math.isfinite(rep["totals"]["net_bps"])


@pytest.mark.parametrize("start_inventory", [0.0, 0.5])
def test_spot_never_sells_below_its_starting_inventory(start_inventory):
    from conftest import SPOT_CAPTURE, need_shared
    from mmbot.backtest import RunSettings, run
    from mmbot.config import load_profile
    from mmbot.data import load_events

    events, stats = load_events(need_shared(SPOT_CAPTURE))
    prof = load_profile("S1")
    risk = prof.risk.model_copy(update={"spot_start_inventory_qty": start_inventory})
    res = run(
        events,
        RunSettings(strategy="glft", profile=prof.model_copy(update={"risk": risk})),
        symbol=stats.symbol,
        data_format=stats.format,
    )
    assert res.meta["contract"]["kind"] == "spot"
    pos = res.fills["position_qty"]
    assert len(pos) > 5
    assert pos.min() >= -start_inventory - 1e-12
    assert res.meta["guards"]["blocked"]["spot_inventory"] > 0
