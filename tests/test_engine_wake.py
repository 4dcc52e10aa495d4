"""The simulated venue's side of a wake: a view left as the last wake read it (the local book
unchanged near the touch) holds the numbers a fresh read gives, on every wake of a real capture."""

from __future__ import annotations

import numpy as np
from numba import njit

from conftest import TESTS_DATA
from mmbot import sim
from mmbot.data import load_events
from mmbot.engine import wake as wk
from mmbot.sim import venue as sv
from mmbot.strategy.contract import DEPTH_LEVELS, new_market_view

SAMPLE = TESTS_DATA / "binance_usdm_btcusdt_sample.gz"


@njit
def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


@njit
def _compare_each_wake(v, kept, fresh, near_ticks, book_levels):
    """(wakes, sides of wakes that reused the kept view, wakes where it differs from a fresh read)."""
    cursors = np.zeros(wk.N_CURSORS, np.int64)
    wakes = reused = differs = 0
    while sv.wait_next(v, 50_000_000) != sv.END_OF_DATA:
        wakes += 1
        if cursors[wk.CUR_BID_VER] == sv.local_book_version(v, 1) + 1:
            reused += 1
        if cursors[wk.CUR_ASK_VER] == sv.local_book_version(v, -1) + 1:
            reused += 1
        wk.fill_view(v, kept, near_ticks, book_levels, cursors)
        wk.fill_view(v, fresh, near_ticks, book_levels, np.zeros(wk.N_CURSORS, np.int64))
        a = kept[0]
        b = fresh[0]
        ok = (
            _same(a.best_bid_px, b.best_bid_px)
            and _same(a.best_ask_px, b.best_ask_px)
            and a.best_bid_qty == b.best_bid_qty
            and a.best_ask_qty == b.best_ask_qty
            and a.bid_near_qty == b.bid_near_qty
            and a.ask_near_qty == b.ask_near_qty
            and a.now_ns == b.now_ns
        )
        for j in range(a.bid_px.shape[0]):
            ok = ok and _same(a.bid_px[j], b.bid_px[j]) and _same(a.ask_px[j], b.ask_px[j])
            ok = ok and a.bid_qty[j] == b.bid_qty[j] and a.ask_qty[j] == b.ask_qty[j]
        if not ok:
            differs += 1
    return wakes, reused, differs


def _venue() -> sim.Venue:
    ev = load_events(SAMPLE)[0]
    cfg = sim.VenueConfig(
        tick_px=0.1,
        lot_qty=0.001,
        maker_fee_rate=-0.00005,
        taker_fee_rate=0.0007,
        entry_latency_ns=10_000_000,
        response_latency_ns=10_000_000,
        queue_model="power2",
    )
    return sim.make_venue(ev, cfg)


def test_a_kept_view_equals_a_fresh_read_on_every_wake() -> None:
    for near_ticks in (5, sim.VIEW_BAND_TICKS):
        wakes, reused, differs = _compare_each_wake(
            _venue(), new_market_view(), new_market_view(), near_ticks, DEPTH_LEVELS
        )
        assert wakes > 1000 and reused > 0, (wakes, reused)
        assert differs == 0, (near_ticks, differs, wakes)


def test_book_levels_bounds_the_depth_the_view_holds() -> None:
    view = new_market_view()
    _compare_each_wake(_venue(), view, new_market_view(), 5, 3)
    bid_px, ask_px, ask_qty = view["bid_px"][0], view["ask_px"][0], view["ask_qty"][0]
    assert np.isfinite(bid_px[:3]).all() and np.isfinite(ask_px[:3]).all()
    assert np.isnan(bid_px[3:]).all() and (ask_qty[3:] == 0.0).all()
