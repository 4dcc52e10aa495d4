"""market_stats rebuilds its book on ``mmbot.book``'s table storage with the book module's rules:
the crossed-feed repair rule (the level a row sets is fresh, the opposite touch is stale), a
CLEAR from the touch up to a price, and no limit on how far from the touch a level may lie.
Expected values worked out on paper (tick 1; the grid samples [0, end) s, so ``two_sided_ratio``
is at most 1000 / 1001 over 10 s; ``spread_ticks_mean`` converts the mean spread in bps at the
median mid)."""

from __future__ import annotations

import numpy as np
import pytest

from mmbot import events as ev_
from mmbot.data.market_stats import market_stats

T0_NS = 1_700_000_000_000_000_000
S_NS = 1_000_000_000


def _row(kind: int, side: int, t_s: float, px: float, qty: float) -> tuple:
    t = T0_NS + int(round(t_s * S_NS))
    return (kind | ev_.EXCH_EVENT | ev_.LOCAL_EVENT | side, t, t + 2_000_000, px, qty, 0, 0, 0.0)


def _stats(rows: list[tuple]) -> dict:
    return market_stats(np.array(rows, dtype=ev_.EVENT_DTYPE), tick_px=1.0)


def _book(bids: dict[float, float], asks: dict[float, float]) -> list[tuple]:
    rows = [_row(ev_.DEPTH_SNAPSHOT_EVENT, ev_.BUY_EVENT, 0.0, p, q) for p, q in bids.items()]
    return rows + [
        _row(ev_.DEPTH_SNAPSHOT_EVENT, ev_.SELL_EVENT, 0.0, p, q) for p, q in asks.items()
    ]


def test_a_bid_set_through_the_ask_deletes_the_stale_asks() -> None:
    """Book 100 / 101, 102. At t=2 s a bid at 102 crosses both asks: they are stale and go (2
    repairs), the book is one-sided until t=4 s, when an ask at 104 arrives (spread 2 ticks)."""
    rows = _book({100.0: 5.0}, {101.0: 5.0, 102.0: 2.0})
    rows += [
        _row(ev_.DEPTH_EVENT, ev_.BUY_EVENT, 2.0, 102.0, 1.0),
        _row(ev_.DEPTH_EVENT, ev_.SELL_EVENT, 4.0, 104.0, 1.0),
        _row(ev_.DEPTH_EVENT, ev_.BUY_EVENT, 10.0, 99.0, 1.0),
    ]
    s = _stats(rows)
    assert s["crossed_book_repairs"] == 2
    assert s["two_sided_ratio"] == pytest.approx(0.8, abs=0.002)
    # mid 100.5 for 2 s, then 103 for 6 s (the one-sided 2 s are not sampled): median mid 103
    assert s["mid_px_mean"] == pytest.approx((2 * 100.5 + 6 * 103.0) / 8, abs=0.01)
    assert s["spread_ticks_mean"] == pytest.approx((2 * 103 / 100.5 + 6 * 2) / 8, abs=0.01)


def test_an_ask_set_through_the_bid_deletes_the_stale_bid() -> None:
    """The mirror: bids 100, 99 and an ask set at 99 at t=5 s: both bids are stale and go (2
    repairs); the book stays one-sided to the end."""
    rows = _book({100.0: 5.0, 99.0: 1.0}, {101.0: 5.0})
    rows += [
        _row(ev_.DEPTH_EVENT, ev_.SELL_EVENT, 5.0, 99.0, 1.0),
        _row(ev_.DEPTH_EVENT, ev_.SELL_EVENT, 10.0, 110.0, 1.0),
    ]
    s = _stats(rows)
    assert s["crossed_book_repairs"] == 2
    assert s["two_sided_ratio"] == pytest.approx(0.5, abs=0.002)


def test_clear_empties_from_the_touch_up_to_its_price() -> None:
    """Bids 100, 99, 90; at t=2 s a CLEAR of the bids up to 99 leaves the bid at 90 (spread 11
    ticks to the end); a CLEAR without a price empties the whole side."""
    rows = _book({100.0: 1.0, 99.0: 1.0, 90.0: 3.0}, {101.0: 1.0})
    rows += [
        _row(ev_.DEPTH_CLEAR_EVENT, ev_.BUY_EVENT, 2.0, 99.0, 0.0),
        _row(ev_.DEPTH_EVENT, ev_.SELL_EVENT, 10.0, 101.0, 2.0),
    ]
    s = _stats(rows)
    assert s["two_sided_ratio"] == pytest.approx(1.0, abs=0.002)
    # mid 100.5 for 2 s, then 95.5 (the median) for 8 s
    assert s["spread_ticks_mean"] == pytest.approx((2 * 95.5 / 100.5 + 8 * 11) / 10, abs=0.01)
    rows[-2] = _row(ev_.DEPTH_CLEAR_EVENT, ev_.BUY_EVENT, 2.0, 0.0, 0.0)
    assert _stats(rows)["two_sided_ratio"] == pytest.approx(0.2, abs=0.002)


def test_a_level_far_from_the_touch_is_found() -> None:
    """When the best bid goes, the next one is found however far it lies (the former ring of
    2^18 levels lost sight of a level further than that from the touch)."""
    rows = _book({1_000_000.0: 1.0, 10.0: 2.0}, {1_000_001.0: 1.0})
    rows += [
        _row(ev_.DEPTH_EVENT, ev_.BUY_EVENT, 5.0, 1_000_000.0, 0.0),
        _row(ev_.DEPTH_EVENT, ev_.SELL_EVENT, 10.0, 1_000_002.0, 1.0),
    ]
    s = _stats(rows)
    assert s["two_sided_ratio"] == pytest.approx(1.0, abs=0.002)
    assert s["mid_px_mean"] == pytest.approx((1_000_000.5 + 500_005.5) / 2, abs=1.0)
