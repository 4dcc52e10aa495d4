"""The paper venue times a request from the wake that decided it and executes it exactly at its
arrival time in the market's event sequence: when the asyncio task happens to run, and when the
next message happens to come in, do not move the order in the queue."""

from __future__ import annotations

import asyncio
import time

from mmbot.data.bybit import parse_message
from mmbot.live.paper import PaperVenue

SYM = "XRPUSDT"
MS = 1_000_000


def _book(ts_ms: int, u: int, bid_qty: str, snapshot: bool = False) -> dict:
    return {
        "topic": f"orderbook.50.{SYM}",
        "type": "snapshot" if snapshot else "delta",
        "ts": ts_ms,
        "data": {
            "s": SYM,
            "b": [["2.0000", bid_qty]],
            "a": [["2.0001", "5"]] if snapshot else [],
            "u": u,
            "seq": u,
        },
    }


def _feed(v: PaperVenue, msg: dict, stamp_ns: int) -> None:
    v.on_events(parse_message(msg, stamp_ns), stamp_ns)


async def _session(start_after_msgs: int) -> tuple[PaperVenue, float]:
    """Book: 5 lots bid at 2.0000 (t=0); 3 lots join at t=8 ms, 3 more at t=12 ms (exchange times;
    each message received 1 ms later). Our buy at 2.0000 is decided at t=4 ms with 6 ms entry
    latency: it arrives at 10 ms, between the two joins, so 8 lots are ahead of it."""
    v = PaperVenue(SYM, 0.0001, 1.0, 0.0002, 0.00055, lambda kind, obj: None, latency_ms=6.0)
    v.backlog = lambda: 1  # frames unread: the wall clock never moves this venue on its own
    t0_ms = time.time_ns() // MS + 60_000  # a minute ahead of the wall clock, for the same reason
    msgs = [
        (_book(t0_ms, 1, "5", snapshot=True), t0_ms + 1),
        (_book(t0_ms + 8, 2, "8"), t0_ms + 9),
        (_book(t0_ms + 12, 3, "11"), t0_ms + 13),
    ]
    task = None
    for k, (msg, stamp_ms) in enumerate(msgs):
        if k == start_after_msgs:  # the request's task runs now (after k messages were handled)
            task = asyncio.ensure_future(
                v.create_order(SYM, 1, "2", "2.0000", "L1", decided_ns=(t0_ms + 4) * MS)
            )
            await asyncio.sleep(0)
            assert not task.done()  # waits for the market to reach its arrival
        _feed(v, msg, stamp_ms * MS)
        await asyncio.sleep(0)
    assert task is not None
    await asyncio.wait_for(task, 5)
    o = v.m.find(link_id="L1")
    assert o is not None and o.is_open
    return v, o.queue_ahead_qty


def test_request_meets_the_queue_at_its_arrival_time():
    v, ahead = asyncio.run(_session(start_after_msgs=1))
    assert ahead == 8.0  # the 3 lots that joined at 8 ms are ahead, the 3 at 12 ms behind
    assert v.n_requests_late == 0


def test_a_late_running_task_does_not_move_the_order():
    # the bot was busy: the request's task only runs after the 8 ms message was handled too;
    # decided at 4 ms, it still arrives at 10 ms, not at the time the task ran
    v, ahead = asyncio.run(_session(start_after_msgs=2))
    assert ahead == 8.0
    assert v.n_requests_late == 0
