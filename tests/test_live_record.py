"""`mmbot record`: the stream is written in a format the data layer's Bybit reader loads, and the
book that reader rebuilds equals the live adapter's book built from the same messages."""

from __future__ import annotations

import json
import threading

from mmbot.events import (
    BUY_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    KIND_MASK,
    TRADE_EVENT,
)
from mmbot.live.bybit import endpoints_at
from mmbot.live.bybit_msgs import LiveBook
from mmbot.live.record import record_command
from mmbot.live.testing import SYMBOL, EmulatorThread


def test_recorded_capture_reads_back_with_the_same_book(tmp_path):
    from mmbot.data import load_events

    emu = EmulatorThread()
    try:
        out = tmp_path / "cap.jsonl"
        # a sequence gap while recording: the recorder resubscribes and the file stays gap-free
        threading.Timer(1.2, lambda: emu.inject("seq_gap", count=1)).start()
        assert record_command(SYMBOL, out, endpoints_at(emu.url), 2.5) == 0
    finally:
        emu.close()
    lines = out.read_text().splitlines()
    assert len(lines) > 20
    book = LiveBook()
    trades = []
    n_snap = 0
    for ln in lines:
        local_ns, text = ln.split(" ", 1)
        assert int(local_ns) > 0
        msg = json.loads(text)
        if msg["topic"].startswith("orderbook."):
            r = book.apply(msg)
            assert r in ("snapshot", "delta"), r  # the file itself has no gap
            n_snap += r == "snapshot"
        else:
            trades += [(float(t["p"]), float(t["v"]), t["S"]) for t in msg["data"]]
    assert n_snap >= 2  # the initial one + the one after the resubscribe

    ev, stats = load_events(out, use_cache=False)
    assert stats.format == "bybit" and stats.symbol == SYMBOL
    assert stats.repairs.get("sequence_gap", 0) == 0
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    got_trades = []
    for e in ev:
        k = int(e["ev"]) & KIND_MASK
        side_book = bids if int(e["ev"]) & BUY_EVENT else asks
        if k == DEPTH_CLEAR_EVENT:
            side_book.clear()
        elif k in (DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT):
            if e["qty"] > 0:
                side_book[round(float(e["px"]), 8)] = float(e["qty"])
            else:
                side_book.pop(round(float(e["px"]), 8), None)
        elif k == TRADE_EVENT:
            got_trades.append(
                (float(e["px"]), float(e["qty"]), "Buy" if int(e["ev"]) & BUY_EVENT else "Sell")
            )
    assert {round(p, 8): q for p, q in book.bids.items()} == bids
    assert {round(p, 8): q for p, q in book.asks.items()} == asks
    assert sorted(got_trades) == sorted(trades)
    assert (ev["local_ts"] >= ev["exch_ts"]).all()
