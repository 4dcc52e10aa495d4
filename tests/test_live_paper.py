"""The paper venue times a request from the wake that decided it and executes it exactly at its
arrival time in the market's event sequence: when the asyncio task happens to run, when the next
message happens to come in, and in which order messages come in (events are played in exchange-time
order once the horizon, a reorder margin behind the latest exchange stamp, passes them) do not move
the order in the queue."""

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


async def _session(start_after_msgs: int, swap: bool = False) -> tuple[PaperVenue, float]:
    """Book: 5 lots bid at 2.0000 (t=0); 3 lots join at t=8 ms, 3 more at t=12 ms (exchange times;
    each message received 1 ms later; ``swap``: the 8 ms one is received after the 12 ms one, at
    14 ms). Our buy at 2.0000 is decided at t=4 ms with 6 ms entry latency: it arrives at 10 ms,
    between the two joins, so 8 lots are ahead of it. A last message, stamped 390 ms, moves the
    venue's horizon (150 ms behind the latest exchange stamp) past all of it."""
    v = PaperVenue(SYM, 0.0001, 1.0, 0.0002, 0.00055, lambda kind, obj: None, latency_ms=6.0)
    v.backlog = lambda: 1  # frames unread: the wall clock never moves this venue on its own
    t0_ms = time.time_ns() // MS + 60_000  # a minute ahead of the wall clock, for the same reason
    joins = [(_book(t0_ms + 8, 2, "8"), t0_ms + 9), (_book(t0_ms + 12, 3, "11"), t0_ms + 13)]
    if swap:
        joins = [(joins[1][0], t0_ms + 13), (joins[0][0], t0_ms + 14)]
    msgs = [
        (_book(t0_ms, 1, "5", snapshot=True), t0_ms + 1),
        *joins,
        (_book(t0_ms + 390, 4, "11"), t0_ms + 400),
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
        v.pump()
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


def test_events_received_out_of_exchange_order_are_played_in_it():
    # the 8 ms join comes in after the 12 ms one (a depth stream lagging the trades, say): the
    # venue still plays it at 8 ms, before the order arrives at 10 ms (played where it came in,
    # at 12 ms, it would have left 5 lots ahead)
    v, ahead = asyncio.run(_session(start_after_msgs=1, swap=True))
    assert ahead == 8.0
    assert v.n_events_late == 0 and v.n_requests_late == 0
    assert v.max_inversion_ns == 4 * MS


def _queue_session(second_exch_ms: int) -> tuple[list[str], list[str]]:
    """The session's view of the venue's queue: a snapshot at t=0 (received at 1 ms), a buy
    decided at 2 ms (6 ms latency: it runs at 8 ms, its answer is due at 14 ms), then a book
    message received at 15 ms with exchange time ``second_exch_ms``, then one at exchange 12 ms
    received at 16 ms. Returns what the session was handed, in order, with its time: by the end,
    and by the time the 15 ms message had come in."""
    seen: list[str] = []
    by_15ms: list[str] = []

    async def run() -> None:
        v = PaperVenue(SYM, 0.0001, 1.0, 0.0002, 0.00055, lambda kind, obj: None, latency_ms=6.0)
        v.backlog = lambda: 1  # frames unread: the wall clock never moves this venue on its own
        v.reorder_min_ns = v.reorder_ns = 2 * MS  # the horizon: the latest stamp less 2 ms
        t0_ms = time.time_ns() // MS + 60_000

        def deliver(msg: dict, stamp_ms: int) -> None:
            _feed(v, msg, stamp_ms * MS)
            v.defer(
                stamp_ms * MS,
                lambda: seen.append(f"msg u={msg['data']['u']} at {stamp_ms - t0_ms}"),
            )
            v.pump()

        deliver(_book(t0_ms, 1, "5", snapshot=True), t0_ms + 1)
        path, fn = v.create_fn(1, "2", "2.0000", "L1")
        v.submit(
            path,
            (t0_ms + 2) * MS,
            fn,
            lambda r, err, known_ns: seen.append(
                f"answer {r is not None} at {known_ns // MS - t0_ms}"
            ),
        )
        deliver(_book(t0_ms + second_exch_ms, 2, "8"), t0_ms + 15)
        by_15ms.extend(seen)
        deliver(_book(t0_ms + 12, 3, "11"), t0_ms + 16)
        v.drain()

    asyncio.run(run())
    return seen, by_15ms


def test_answers_reach_the_session_one_latency_after_the_request_ran_in_time_order():
    # the 15 ms message shows the market at 10 ms: the venue plays to 8 ms (2 ms behind, the
    # reorder margin), where the request runs; its answer (due at 14 ms) goes to the session,
    # before that message (which waits for the venue at 9 ms), as the backtest's loop would order
    seen, by_15ms = _queue_session(second_exch_ms=10)
    assert by_15ms == ["msg u=1 at 1", "answer True at 14"]
    assert seen == ["msg u=1 at 1", "answer True at 14", "msg u=2 at 15", "msg u=3 at 16"]


def test_a_late_feed_holds_the_session_back_until_the_answer_is_known():
    # the 15 ms message only shows the market at 3 ms (a slow feed): the request has not run yet,
    # so the session is not handed that message until the 16 ms one shows the market past 8 ms;
    # then the answer still comes first
    seen, by_15ms = _queue_session(second_exch_ms=3)
    assert by_15ms == ["msg u=1 at 1"]
    assert seen == ["msg u=1 at 1", "answer True at 14", "msg u=2 at 15", "msg u=3 at 16"]
