"""Readers on the real captures in ../shared/data (skipped when absent): counts per kind against the
line counts the data README states, ordering, and the clock correction."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import BYBIT_CAPTURE, SPOT_CAPTURE, USDM_CAPTURE, need_shared
from mmbot.data import load_events
from mmbot.data.replay import REPAIR_IVAL
from mmbot.events import DEPTH_EVENT, KIND_MASK

# from ../shared/data/README.md
USDM = {"lines": 93_954, "depth": 6_551, "bookTicker": 66_089, "trade": 21_313, "snapshot": 1}
SPOT = {"depth": 3_451, "bookTicker": 28_040, "trade": 9_757, "snapshot": 1}


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch):
    monkeypatch.setenv("MMBOT_CACHE_DIR", "off")


def _common(events: np.ndarray) -> None:
    assert np.all(np.diff(events["exch_ts"]) >= 0)
    assert np.all(events["local_ts"] >= events["exch_ts"])


def test_usdm_capture_counts_match_the_readme():
    events, st = load_events(need_shared(USDM_CAPTURE), use_cache=False)
    assert st.format == "binance-usdm" and st.symbol == "BTCUSDT"
    assert st.n_lines == USDM["lines"]
    assert USDM["depth"] + USDM["bookTicker"] + USDM["trade"] + USDM["snapshot"] == st.n_lines
    assert st.counts["bbo"] == 2 * USDM["bookTicker"]
    assert st.counts["trade"] == USDM["trade"]
    assert st.counts["clear"] == 2 * USDM["snapshot"]
    assert st.counts["snapshot"] > 0
    assert st.repairs["sequence_gap"] == 0
    # only diffs from before the REST snapshot are dropped (the snapshot is line 55)
    assert 0 < st.repairs["depth_msg_dropped_unsynced"] + st.repairs["depth_msg_dropped_stale"] < 55
    kind = events["ev"] & KIND_MASK
    assert (
        int(((kind == DEPTH_EVENT) & (events["ival"] != REPAIR_IVAL)).sum()) > USDM["depth"]
    )  # diffs carry many levels
    # the local clock is ~1.27 s behind: the offset is reported and applied
    assert 1.2e9 < st.local_offset_ns < 1.35e9
    assert int((events["local_ts"] - events["exch_ts"]).min()) == st.base_latency_ns
    assert abs((st.last_exch_ts - st.first_exch_ts) / 1e9 - 344.8) < 1.0
    assert st.tick_px_guess == pytest.approx(0.1) and st.lot_qty_guess == pytest.approx(0.001)
    _common(events)


def test_spot_capture_counts_match_the_readme():
    events, st = load_events(need_shared(SPOT_CAPTURE), use_cache=False)
    assert st.format == "binance-spot"
    assert st.n_lines == SPOT["depth"] + SPOT["bookTicker"] + SPOT["trade"] + SPOT["snapshot"]
    assert st.counts["bbo"] == 2 * SPOT["bookTicker"]
    assert st.counts["trade"] == SPOT["trade"]
    assert st.counts["clear"] == 2
    assert st.repairs["sequence_gap"] == 0
    # spot bookTicker and the REST snapshot carry no exchange time: estimated and counted
    assert st.repairs["exch_ts_estimated"] == SPOT["bookTicker"] + SPOT["snapshot"]
    assert st.tick_px_guess == pytest.approx(0.01)
    _common(events)


def test_bybit_capture_counts():
    events, st = load_events(need_shared(BYBIT_CAPTURE), use_cache=False)
    assert st.format == "bybit" and st.n_lines == 50
    assert st.counts["clear"] == 2 and st.counts["snapshot"] == 1000
    assert st.repairs["sequence_gap"] == 0
    _common(events)


def crossed_times(events: np.ndarray) -> int:
    """Replay the book with lazy-deletion heaps (consumer semantics: CLEAR removes from the touch up
    to px; depth/snapshot/BBO rows set a level) and count exchange times at which it is crossed."""
    import heapq

    from mmbot.events import BUY_EVENT, DEPTH_CLEAR_EVENT

    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    hb: list[float] = []  # -px
    ha: list[float] = []
    ev = events["ev"].tolist()
    px_l = events["px"].tolist()
    qty_l = events["qty"].tolist()
    ts = events["exch_ts"].tolist()
    crossed = 0
    n = len(ev)
    for k in range(n):
        e = ev[k]
        kind = e & 0xFF
        px = px_l[k]
        is_bid = bool(e & BUY_EVENT)
        book = bids if is_bid else asks
        if kind == DEPTH_CLEAR_EVENT:
            for p in [p for p in book if (p >= px if is_bid else p <= px)]:
                del book[p]
        elif kind in (1, 4, 5):
            if qty_l[k] > 0:
                if px not in book:
                    heapq.heappush(hb if is_bid else ha, -px if is_bid else px)
                book[px] = qty_l[k]
            else:
                book.pop(px, None)
        if k == n - 1 or ts[k + 1] != ts[k]:
            while hb and -hb[0] not in bids:
                heapq.heappop(hb)
            while ha and ha[0] not in asks:
                heapq.heappop(ha)
            if hb and ha and -hb[0] >= ha[0]:
                crossed += 1
    return crossed


@pytest.mark.parametrize("capture", [USDM_CAPTURE, SPOT_CAPTURE], ids=["usdm", "spot"])
def test_capture_book_is_never_crossed_after_replay(capture):
    events, st = load_events(need_shared(capture), use_cache=False)
    assert st.repairs["stale_level_removed_by_bbo"] > 0  # the repairs are exercised
    assert crossed_times(events) == 0
    # the checker does see crossings: without the repair rows the book crosses
    assert crossed_times(events[events["ival"] != REPAIR_IVAL]) > 0
