"""The rest of a maker order a taker took part of stays at the front of its level
(``model.maker_front_keep``): the next taker there takes that rest before a new order is drawn, so
the makers' orders are consumed whole, one after another; 0 (default) generates the same bytes as
a calibration without the field."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from conftest import deep_touch_market
from mmbot.data.synthetic import generate
from mmbot.errors import UserError
from mmbot.events import BUY_EVENT, KIND_MASK, TRADE_EVENT

T0_NS = 1_700_000_000_000_000_000
S_NS = 1_000_000_000
ORDER_QTY = 10.0  # every maker order
TAKER_QTY = 7.0  # every taker: below an order, so most orders are taken by two takers
DURATION_S = 300


def _toy(keep: float | None) -> dict:
    """A still market whose touch is deep (1000 qty a level, refilled whole and fast), so no
    taker empties it; maker orders of exactly 10 qty, takers of exactly 7."""
    cal = deep_touch_market([ORDER_QTY, ORDER_QTY], [TAKER_QTY, TAKER_QTY])
    if keep is not None:
        cal["model"]["maker_front_keep"] = keep
    return cal


def _order_ends_at_print_boundaries(ev: np.ndarray) -> tuple[float, int, int, set[float]]:
    """Per side, the running total printed from the end of the first print of the first taker
    with two prints (a taker's first print of two ends an order: the anchor); the share of the
    multiples of ORDER_QTY it passes from there that it reaches exactly at the end of a print (an
    order taken to its end), the multiples passed, the prints and the print sizes seen."""
    tr = ev[(ev["ev"] & KIND_MASK) == TRADE_EVENT]
    buy = (tr["ev"] & BUY_EVENT) != 0
    hit = passed = 0
    for side in (True, False):
        t = tr[buy == side]
        new = np.r_[True, t["exch_ts"][1:] != t["exch_ts"][:-1]]
        first = np.flatnonzero(new)
        n_of = np.diff(np.r_[first, len(t)])
        multi = np.flatnonzero(n_of >= 2)
        if len(multi) == 0:
            continue
        qty = t["qty"][first[multi[0]] + 1 :].astype(np.float64)
        running = np.cumsum(qty) / ORDER_QTY
        ends = np.floor(running + 1e-9)
        crossed = np.diff(np.r_[0.0, ends])
        passed += int(crossed.sum())
        hit += int(np.sum((crossed > 0) & (np.abs(running - np.round(running)) < 1e-9)))
    return hit / max(passed, 1), passed, len(tr), {round(float(q), 9) for q in tr["qty"]}


def test_a_taken_part_leaves_the_rest_of_the_order_for_the_next_taker() -> None:
    figures = {}
    for keep in (0.0, 1.0):
        ev = generate(_toy(keep), 3, T0_NS, DURATION_S * S_NS)
        share, passed, n, sizes = _order_ends_at_print_boundaries(ev)
        figures[keep] = (share, passed, n, sizes)
        print(
            f"keep {keep:g}: {n} prints, sizes {sorted(sizes)}, orders passed {passed}, "
            f"ended at a print's end {share:.4f}"
        )
    _, passed_off, n_off, sizes_off = figures[0.0]
    share_on, passed_on, n_on, sizes_on = figures[1.0]
    assert n_off > 300 and n_on > 300
    # off: every print is a new 10-qty order of which the taker takes 7; none is taken to its end
    assert sizes_off == {TAKER_QTY}
    assert passed_off == 0
    # on: the next taker takes the rest first, so every order is taken to its end by some print
    assert passed_on > 200
    assert share_on == 1.0
    assert sizes_on == {1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0}


def test_the_keep_off_is_the_bytes_without_it_and_a_bad_value_is_refused() -> None:
    base = generate(_toy(None), 4, T0_NS, 60 * S_NS).tobytes()
    assert generate(_toy(0.0), 4, T0_NS, 60 * S_NS).tobytes() == base
    assert generate(_toy(1.0), 4, T0_NS, 60 * S_NS).tobytes() != base
    for bad in (0.5, 2.0):
        with pytest.raises(UserError, match="maker_front_keep"):
            generate(_toy(bad), 4, T0_NS, S_NS)


def test_shipped_markets_keep_the_front_order_when_fitted_with_maker_orders() -> None:
    """COIN-M and USD-M are fitted with --maker-orders (docs/data.md, "Maker orders fitted as
    orders" and "Refits with this stop's switches"): a shipped market lists the field, on, exactly
    when its provenance command has the switch."""
    from mmbot.data.synthetic import available_markets, load_calibration

    fitted = []
    for name in available_markets():
        calib = copy.deepcopy(load_calibration(name))
        model = calib["model"]
        if "--maker-orders" in calib.get("provenance", {}).get("command", ""):
            assert model["maker_front_keep"] == 1.0
            fitted.append(name)
        else:
            assert "maker_front_keep" not in model
    assert {"binance_coinm_btcusd_perp", "binance_usdm_btcusdt"} <= set(fitted)
