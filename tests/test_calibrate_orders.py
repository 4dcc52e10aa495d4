"""The makers' order sizes fitted as orders (``calibrate_orders.maker_order_quantiles``, `mmbot
data calibrate --maker-orders`): Kaplan-Meier over the prints with each sweep's last censored
recovers the order sizes a market drew, which the prints' own quantiles understate."""

from __future__ import annotations

import numpy as np

from conftest import USDM_CAPTURE, deep_touch_market, need_shared
from mmbot.data.calibrate import _sweep_last_prints
from mmbot.data.calibrate_orders import maker_order_quantiles
from mmbot.data.synthetic import generate

T0_NS = 1_700_000_000_000_000_000
S_NS = 1_000_000_000
ORDERS_QTY = [2.0, 4.0, 8.0, 16.0, 32.0]  # quantiles at 0, 1/4, 1/2, 3/4, 1


def test_whole_orders_and_censored_last_prints_give_the_product_limit_quantiles() -> None:
    # 1, 2, 4 whole; 3 censored: S = 1 - 1/4 after 1, x (1 - 1/3) after 2, 3 leaves the risk set,
    # x (1 - 1/1) after 4
    qty = np.array([4.0, 3.0, 2.0, 1.0])
    cens = np.array([False, True, False, False])
    assert maker_order_quantiles(qty, cens, np.array([0.2, 0.25, 0.4, 0.5, 0.6, 1.0])) == [
        1.0,
        1.0,
        2.0,
        2.0,
        4.0,
        4.0,
    ]
    # all censored: nothing is reached, so every quantile is the largest print
    assert maker_order_quantiles(qty, np.ones(4, bool), np.array([0.1, 0.9])) == [4.0, 4.0]


def test_the_orders_a_market_drew_are_recovered_from_its_prints() -> None:
    cal = deep_touch_market(ORDERS_QTY, [1.0, 40.0])
    ev = generate(cal, 2, T0_NS, 1200 * S_NS)
    qty, last = _sweep_last_prints(ev)
    probs = np.array([0.25, 0.5, 0.75])
    fitted = maker_order_quantiles(qty, last, probs)
    prints = np.quantile(qty, probs)
    print(f"{len(qty)} prints, {int(last.sum())} censored: orders {fitted}, prints {prints}")
    assert len(qty) > 2000
    for got, want in zip(fitted, ORDERS_QTY[1:4], strict=True):
        assert abs(np.log(got / want)) < np.log(1.15)
    # the prints themselves: every taker's last print is cut short, so they understate the orders
    assert prints[1] < 0.8 * ORDERS_QTY[2]


def test_maker_orders_fit_is_opt_in() -> None:
    """--maker-orders fits the maker table as the capture's orders (starting the scale at 1),
    keeps a partly taken order's rest at the front and leaves a deep level whole, even under
    --fit-hold; the default fit keeps the prints' table and neither field."""
    from pathlib import Path

    from mmbot.data.calibrate import _MAKER_PROBS, FitOptions, calibrate
    from mmbot.data.calibrate_file import add_provenance, load_capture
    from mmbot.data.calibrate_orders import maker_order_quantiles

    events, _ = load_capture(need_shared(USDM_CAPTURE))
    qty, last = _sweep_last_prints(events)
    log: list[str] = []
    opt = FitOptions(rounds=0, fit_seconds=20, fit_hold=True, maker_orders=True)
    fitted = calibrate(events, opt, log=log)
    m = fitted["model"]
    assert m["maker_size_quantiles_qty"] == maker_order_quantiles(qty, last, _MAKER_PROBS)
    assert m["maker_size_quantiles_qty"] != [float(x) for x in np.quantile(qty, _MAKER_PROBS)]
    assert m["maker_front_keep"] == 1.0
    assert "deep_print_split" not in m
    assert any(line.startswith("maker orders:") for line in log)
    add_provenance(fitted, USDM_CAPTURE, Path("m.json"), symbol="BTCUSDT", log=[], options=opt)
    assert fitted["provenance"]["command"].endswith("--fit-hold --maker-orders")
    plain = calibrate(events, FitOptions(rounds=0, fit_seconds=20))["model"]
    assert plain["maker_size_quantiles_qty"] == [float(x) for x in np.quantile(qty, _MAKER_PROBS)]
    assert "maker_front_keep" not in plain
