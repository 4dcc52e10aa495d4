"""The paper session's order gateway: its orders are matched by the paper venue (``live.paper``),
fed with the public stream as it comes in, and the session lives in event time.

The session gets each market message at its receive stamp, and the venue's answers and fills one
order latency after they happened there, in one time-ordered queue (``PaperVenue.pump``), as the
backtest's loop would hand them to its strategy; the quoter's timer wakes are in that order too
(``next_wake``), so the watchdog does not wake it on the wall clock.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import aiohttp
import numpy as np

from mmbot.live.bybit import BybitError
from mmbot.live.bybit_msgs import fmt
from mmbot.live.gateway import TERMINAL
from mmbot.records import OP_NEW, OP_REPLACE

if TYPE_CHECKING:
    from mmbot.live.paper import PaperVenue
    from mmbot.live.session import Session


class PaperGateway:
    wall_clock_wakes = False  # the venue's queue wakes the quoter, in event time
    reconciled_across_reconnects = True  # the venue is ours: a reconnect loses no order news
    # a rate-limit reject is an answer like another, as in the backtest (no pause of its own)
    pauses_on_rate_limit = False

    def __init__(self, session: Session):
        self.s = session
        self.venue: PaperVenue | None = None
        self.clock_offset_ns = 0
        self.book_u = 0  # the venue's last book update id (0: waiting for a snapshot)

    @property
    def queue_model(self) -> str:
        return self.venue.queue_model if self.venue is not None else "risk_averse"

    async def open(self) -> None:
        from mmbot.instruments import spec_for
        from mmbot.live.paper import PaperVenue
        from mmbot.live.simmatch import warm_up
        from mmbot.strategy.params import fee_choice

        s, cfg = self.s, self.s.cfg
        fee = fee_choice(  # the profile's tier of the Bybit linear schedule
            s.profile,
            spec_for("bybit-linear", s.symbol),
            None,
            cfg.maker_fee_rate,
            cfg.taker_fee_rate,
        )
        self.venue = PaperVenue(
            s.symbol,
            s.tick_px,
            s.lot_qty,
            fee.maker_fee_rate,
            fee.taker_fee_rate,
            self.on_private,
            cfg.paper_latency_ms,
            start_position_qty=s.journal.position_qty(s.symbol),
            rate_limit_per_s=int(s.profile.venue.rate_limit_per_s),
        )
        self.venue.clock_offset_ns = self.clock_offset_ns
        self.venue.next_wake = s.next_wake
        self.venue.on_wake = s.timer_wake
        warm_up(s.tick_px, s.lot_qty)

    async def start(self, http: aiohttp.ClientSession) -> list[asyncio.Task]:
        s = self.s
        if s.public is not None:
            self.venue.backlog = s.public.backlog
        await s.reconciler.reconcile("start")
        return []

    # -- market -----------------------------------------------------------------------------------
    def on_public(self, msg: dict, topic: str, rows: np.ndarray, local_ns: int) -> None:
        """The venue plays the market as it comes in; the session gets the message at its receive
        stamp, in time order with the venue's answers."""
        self._feed(msg, topic, rows, local_ns)
        self.venue.defer(local_ns, lambda: self.s.on_market(msg, topic, rows, local_ns))
        self.venue.pump()

    def _feed(self, msg: dict, topic: str, rows: np.ndarray, local_ns: int) -> None:
        """The venue takes the book messages that continue its sequence (a gap waits for the
        fresh snapshot the session's book asks for) and the trades while its book is whole."""
        if topic.startswith("orderbook."):
            u = int(msg.get("data", {}).get("u", 0))
            if msg.get("type") != "snapshot" and u != self.book_u + 1:
                if u > self.book_u + 1:
                    self.book_u = 0  # a gap: nothing more until the snapshot
                return
            self.book_u = u
        elif not self.book_u:
            return
        self.venue.on_events(rows, local_ns)

    def on_public_down(self) -> None:
        self.book_u = 0

    # -- orders -----------------------------------------------------------------------------------
    def send(
        self, side_idx: int, op: int, link_id: str, px: float, qty: float, decided_ns: int
    ) -> None:
        """The request joins the venue's queue at once, timed from the wake that decided it; its
        answer reaches the session one order latency after it ran there (``live.paper``)."""
        s, v = self.s, self.venue
        v.note_compute(time.time_ns() - s.wake_t0_ns)
        side = 1 if side_idx % 2 == 0 else -1
        pxs, qtys = fmt(px, s.px_dec), fmt(qty, s.qty_dec)
        if decided_ns:
            s.decide_to_send_ms.append((time.time_ns() - decided_ns) / 1e6)
        if op == OP_NEW:
            path, fn = v.create_fn(side, qtys, pxs, link_id)
        elif op == OP_REPLACE:
            # the open size the order manager asks for, as the backtest's modify takes it: a
            # fill still on its way to the session when it decided does not shrink the order
            path, fn = v.amend_fn(link_id, pxs, open_qty=qtys)
        else:
            path, fn = v.cancel_fn(link_id)

        def answer(r: dict | None, err: BaseException | None, known_ns: int) -> None:
            rtt_ms = (known_ns - decided_ns) / 1e6
            if s.take_answer(side_idx, op, link_id, px, qty, r, err, rtt_ms):
                s.counters["resolved_unknown"] += 1
                s.resolved(side_idx, link_id, v.order_row(link_id))
            s.after_answer(known_ns)

        try:
            v.submit(path, decided_ns or None, fn, answer)
        except BybitError as exc:  # no book yet: refused at once
            now = time.time_ns()
            v.defer(now, lambda e=exc: answer(None, e, now))

    def on_private(self, topic: str, item: dict) -> None:
        """The venue's order and execution news, handed over at its due time (``pump``)."""
        s = self.s
        if topic == "order":
            s.on_order(item)
            if str(item.get("orderStatus")) not in TERMINAL:
                return  # as on the private stream: a confirmation is not news
        else:
            s.on_execution(item, "sim")
        # the session learns it one order latency after it happened at the venue (each item
        # wakes it: one wake for all the news due at one time diverged from the backtest more)
        s.event_wake(self.venue.known_ns or time.time_ns())

    def now_ns(self) -> int:
        """Event time: the due time of the item the session is handling (its order ages, acks and
        fills are timed on the market's clock, as in the backtest, not on the wall clock that runs
        one hold ahead of it)."""
        known = self.venue.known_ns if self.venue is not None else 0
        return known or time.time_ns()

    def set_clock_offset(self, offset_ns: int) -> None:
        """The venue maps the exchange's stamps onto our clock with the measured offset only where
        it is measurably non-zero (beyond half its sample's round trip, the midpoint's error
        bound): otherwise it takes them as they are, as a backtest of the recorded feed does, and
        a noisy sub-ms estimate cannot shift the market against our orders from run to run."""
        rtt_ns = int(getattr(self.s, "clock_rtt_ns", 0) or 0)
        self.clock_offset_ns = offset_ns if abs(offset_ns) * 2 > rtt_ns else 0
        if self.venue is not None:
            self.venue.clock_offset_ns = self.clock_offset_ns

    async def books_baseline(self) -> None:
        pass  # the paper venue keeps no books but its fills

    async def books_ok(self, since_ms: int) -> bool:
        return True

    def drain(self) -> None:
        if self.venue is not None:
            self.venue.drain()

    def stats(self) -> dict:
        """What the venue applied (order latency = compute + entry; see live.paper)."""
        if self.venue is None:
            return {"paper_order_latency_ms": None}
        return self.venue.stats()
