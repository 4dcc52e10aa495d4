"""Paper venue: the bot's orders are matched by ``mmbot.sim``'s venue fed with the live public stream.

Same method names and Bybit-shaped answers as ``BybitRest`` so the runner drives both alike (no
private API is used). The matching is the backtest's: a ``SimMatcher`` (``mmbot.live.simmatch``)
whose venue is built on the first book levels received and continued message by message with the events
the data layer's parser made of each message (``mmbot.data.bybit.parse_message``, the very rows
the bot's book is built from): queue model, fees and partial fills as in ``mmbot backtest``.

Times (the bot's clock; the model a backtest applies, driven by what was received):
- a market event happened at its message's exchange time: the middle of that millisecond (Bybit
  stamps ms) mapped onto our clock with the clock offset the runner measured at its most precise
  (smallest round trip), never after we received it;
- the venue plays the market up to its horizon, the latest exchange time received; an event that
  arrives after the horizon passed it is played at the horizon (counted: ``n_events_late``);
- a request is decided at the receive time of the message the strategy was woken by (or the
  response / timer that woke it), as ``BybitStream`` stamps it on arrival (the bot's backlog is
  not part of it), and arrives at ``decided + compute + entry``: ``compute`` = the bot's measured
  median time from a wake to its request, ``entry`` = ``--latency-ms`` (default: the feed's
  measured median latency, the same network one way). Requests wait in arrival order and are
  executed exactly there in the venue's event sequence, when the horizon passes their arrival (a
  message with a later exchange time came in, or the wall clock moved a quiet market: below).
  So neither CPU jitter of our own process nor the moment it gets round to a request moves an
  order in the queue.
- the exchange's order rate limit counts requests at their arrival times.
- what the venue tells the bot reaches it one order latency (``compute + entry``, the backtest's
  response latency) after it happened there: an answer at ``arrival + latency``, a fill at its
  exchange time + latency. The session hands its market messages to ``defer`` at their receive
  stamps and the venue's answers and updates join them in one time-ordered queue (``pump``): an
  item at time ``t`` is handed to the bot once the venue has played the market to
  ``t - latency`` (so every answer due before ``t`` is known), or, with nothing left unread on
  the stream, once the wall clock is one 95th-percentile feed lag past that. The bot thus sees
  its answers, fills and market messages in the order the backtest's loop would, at the times it
  would (its own timer wakes included: ``next_wake``), whatever its handling backlog; paper
  trades in event time, a little behind the wall clock.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mmbot.events import DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, EXCH_EVENT, KIND_MASK, LOCAL_EVENT
from mmbot.live.bybit import BybitError, RateLimited
from mmbot.live.orders import (
    Execution,
    RateWindow,
    SimOrder,
    exec_json,
    order_json,
    price_decimals,
)
from mmbot.live.simmatch import SimMatcher

HALF_MS_NS = 500_000  # a ms-stamped exchange time is taken as the middle of its millisecond
REFRESH_EVERY = 50  # lag / compute estimates are refreshed every this many samples
MAX_LATENCY_NS = 500_000_000

# a request waiting for the venue: (arrival ns, sequence, what it does, who takes its answer,
# whether the answer goes through the bot's queue)
_Pending = tuple[int, int, Callable[[SimMatcher, int], Any], "Answer", bool]
# something for the bot at a time on its clock: (due ns, sequence, the call that hands it over)
_Due = tuple[int, int, Callable[[], None]]
# takes a request's outcome: (result, error, the time the bot learns it on its clock)
Answer = Callable[[Any, BaseException | None, int], None]


class PaperVenue:
    def __init__(
        self,
        symbol: str,
        tick_px: float,
        lot_qty: float,
        maker_fee_rate: float,
        taker_fee_rate: float,
        on_private: Callable[[str, dict], None],
        latency_ms: float | None = None,
        queue_model: str = "risk_averse",
        start_position_qty: float = 0.0,
        id_prefix: str = "",
        rate_limit_per_s: int = 0,
    ):
        self.symbol = symbol
        self.tick_px, self.lot_qty = tick_px, lot_qty
        self.maker_fee_rate, self.taker_fee_rate = maker_fee_rate, taker_fee_rate
        self.queue_model = queue_model
        self.px_dec, self.qty_dec = price_decimals(tick_px), price_decimals(lot_qty)
        self.on_private = on_private
        self.latency_ms = latency_ms  # None: entry_ns follows the measured feed latency
        self.start_position_qty = start_position_qty
        self.id_prefix = id_prefix or f"P{time.time_ns() // 1_000_000}-"
        self.clock_offset_ns = 0  # exchange clock - ours (the runner sets its best estimate)
        self.m: SimMatcher | None = None  # built on the first book levels received
        self.rate = RateWindow(rate_limit_per_s)  # the exchange's order limit, as Bybit answers
        self.horizon_ns = 0  # the venue has played every market event up to here (our clock)
        self.lags_ns: collections.deque[int] = collections.deque(maxlen=400)
        self.n_lags = 0
        self.hold_ns = 20_000_000  # recent p95 feed lag (receive - exchange time), refreshed
        self.entry_ns = 5_000_000 if latency_ms is None else int(latency_ms * 1e6)
        self.compute_ns = 0  # the bot's median time from a wake to its request (note_compute)
        self.computes_ns: collections.deque[int] = collections.deque(maxlen=400)
        self.n_computes = 0
        # streams' frames received and not yet handled (the runner's public stream): while any
        # wait, the wall clock does not move the venue (they may hold earlier market events)
        self.backlog: Callable[[], int] = lambda: 0
        self._queue: list[_Pending] = []
        self._due: list[_Due] = []  # the bot's time-ordered items (see ``pump``)
        self._seq = 0
        # the bot's next timer wake on its clock (0: none); the session sets it and ``on_wake``
        self.next_wake: Callable[[], int] = lambda: 0
        self.on_wake: Callable[[int], None] = lambda t_ns: None
        self._event_ns = 0  # venue time of what the matcher reports now (a request, a sync)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due_ns = 0
        self.order_latency_ms: list[float] = []  # per request: compute + entry, as applied
        self.n_events_late = 0  # market events received after the horizon had passed them
        self.n_requests_late = 0  # requests that met the venue after their arrival time
        self.n_timer_advances = 0  # horizon moves by the wall clock (a quiet stream)
        # when the bot learns what it is handed now, on its clock (the item's due time)
        self.known_ns = 0

    def latency_ns(self) -> int:
        """The order latency applied now, each way: the bot's compute + the entry latency."""
        return self.compute_ns + self.entry_ns

    def _listen(self, kind: str, obj: object) -> None:
        """The matcher's news, due to the bot one latency after it happened at the venue."""
        if kind == "order":
            item = order_json(obj, self.symbol, self.px_dec, self.qty_dec)  # type: ignore[arg-type]
            self._schedule(self._event_ns + self.latency_ns(), "order", item)
        elif kind == "execution":
            e: Execution = obj  # type: ignore[assignment]
            item = exec_json(e, self.m.orders[e.order_id], self.symbol, self.px_dec, self.qty_dec)  # type: ignore[union-attr]
            fill_ns = e.exec_ns - self.clock_offset_ns  # exec_time's inverse: venue time
            self._schedule(fill_ns + self.latency_ns(), "execution", item)

    def _schedule(self, due_ns: int, topic: str, item: dict) -> None:
        self.defer(due_ns, lambda: self.on_private(topic, item))

    # the bot's queue ----------------------------------------------------------------------------------
    def defer(self, t_ns: int, fn: Callable[[], None]) -> None:
        """Hand ``fn`` to the bot at ``t_ns`` on its clock, in time order with the venue's news."""
        heapq.heappush(self._due, (int(t_ns), self._seq, fn))
        self._seq += 1

    def _ready_ns(self) -> int:
        """Items up to this time may go to the bot: every answer due by then is known."""
        return self.horizon_ns + self.latency_ns()

    def pump(self) -> None:
        """Hand the bot, in time order, every item (and timer wake) the venue's horizon allows."""
        wake_done = 0
        while True:
            head = self._due[0][0] if self._due else None
            wake = self.next_wake()
            if wake and wake != wake_done and (head is None or wake < head):
                if wake > self._ready_ns():
                    break
                wake_done = wake
                self.known_ns = wake
                self.on_wake(wake)
                continue
            if head is None or head > self._ready_ns():
                break
            t_ns, _, fn = heapq.heappop(self._due)
            self.known_ns = t_ns
            fn()
        self._arm_timer()

    def drain(self) -> None:
        """The session ends: every queued request runs and every item goes to the bot now."""
        if self._queue:
            self._advance(max(a for a, *_ in self._queue))
        while self._due:
            t_ns, _, fn = heapq.heappop(self._due)
            self.known_ns = t_ns
            fn()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # market feed ----------------------------------------------------------------------------------
    def on_events(self, rows: np.ndarray, local_ns: int) -> None:
        """The parsed rows of one public message received at ``local_ns`` (our clock)."""
        if len(rows) == 0:
            return
        rows = rows.copy()
        exch = np.minimum(rows["exch_ts"] + (HALF_MS_NS - self.clock_offset_ns), local_ns)
        exch_max = int(exch.max())
        self._note_lag(local_ns - exch_max)
        self.n_events_late += int(np.count_nonzero(exch < self.horizon_ns))
        # exchange timeline only (the venue's local book is not used: the bot keeps its own)
        rows["ev"] = (rows["ev"] & ~np.uint64(LOCAL_EVENT)) | np.uint64(EXCH_EVENT)
        rows["exch_ts"] = np.maximum.accumulate(np.maximum(exch, self.horizon_ns))
        rows["local_ts"] = rows["exch_ts"]
        if self.m is None:
            kinds = rows["ev"] & KIND_MASK
            if not np.isin(kinds, (DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT)).any():
                return  # nothing to match against before the first book levels
            self.m = SimMatcher(
                self.symbol,
                self.tick_px,
                self.lot_qty,
                rows,
                self.maker_fee_rate,
                self.taker_fee_rate,
                self.queue_model,
                listener=self._listen,
                exec_time=lambda venue_ns: venue_ns + self.clock_offset_ns,
                id_prefix=self.id_prefix,
            )
            self.m.position_qty = self.start_position_qty
        else:
            self._event_ns = self.horizon_ns
            self.m.extend(rows)
        self._advance(max(exch_max, self.horizon_ns))

    def _note_lag(self, lag_ns: int) -> None:
        self.lags_ns.append(max(lag_ns, 0))
        self.n_lags += 1
        if self.n_lags % REFRESH_EVERY == 0:
            p50, p95 = np.percentile(np.fromiter(self.lags_ns, np.int64), [50, 95])
            self.hold_ns = int(min(max(p95, 1e6), MAX_LATENCY_NS))
            if self.latency_ms is None:
                self.entry_ns = int(min(max(p50, 0.0), MAX_LATENCY_NS))

    def note_compute(self, compute_ns: int) -> None:
        """The bot's time from a wake (message handed to it) to a request it sent then."""
        self.computes_ns.append(max(int(compute_ns), 0))
        self.n_computes += 1
        if self.n_computes % REFRESH_EVERY == 0 or self.n_computes == 10:
            self.compute_ns = int(np.median(np.fromiter(self.computes_ns, np.int64)))

    def _advance(self, t_ns: int) -> None:
        """Play the venue's market up to ``t_ns`` (never back), executing each waiting request at
        its arrival time on the way; its answer is due one latency later."""
        m = self.m
        if m is None:
            return
        q = self._queue
        while q and q[0][0] <= t_ns:
            arrive_ns, _, fn, answer, queued = heapq.heappop(q)
            if arrive_ns < m.now_capture_ns:
                self.n_requests_late += 1
            self._event_ns = max(arrive_ns, m.now_capture_ns)
            m.sync(arrive_ns)
            try:
                result, error = fn(m, self._event_ns), None
            except BybitError as exc:
                result, error = None, exc
            due_ns = self._event_ns + self.latency_ns()
            if queued:
                self.defer(due_ns, lambda a=answer, r=result, e=error, d=due_ns: a(r, e, d))
            else:
                answer(result, error, due_ns)
        if t_ns > self.horizon_ns:
            self.horizon_ns = t_ns
            self._event_ns = t_ns
            m.sync(t_ns)

    def _arm_timer(self) -> None:
        """Wake when the bot's next item is one p95 feed lag past the time it needs the venue at."""
        heads = [t for t in (self._due[0][0] if self._due else 0, self.next_wake()) if t]
        if not heads and not self._queue:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        need_ns = min(heads) - self.latency_ns() if heads else self._queue[0][0]
        due_ns = max(need_ns, self.horizon_ns) + self.hold_ns
        if self._timer is not None and self._timer_due_ns == due_ns:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due_ns = due_ns
        delay_s = max(due_ns - time.time_ns(), 0) / 1e9
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        heads = [t for t in (self._due[0][0] if self._due else 0, self.next_wake()) if t]
        if not heads and not self._queue:
            return
        need_ns = min(heads) - self.latency_ns() if heads else self._queue[0][0]
        if self.backlog() > 0 or time.time_ns() < need_ns + self.hold_ns:
            # frames wait to be handled (they may carry earlier events): look again shortly
            self._timer_due_ns = 0
            self._timer = asyncio.get_running_loop().call_later(0.001, self._on_timer)
            return
        if need_ns > self.horizon_ns:  # a quiet market: nothing earlier is still on its way
            self.n_timer_advances += 1
            self._advance(need_ns)
        self.pump()

    def submit(
        self,
        path: str,
        decided_ns: int | None,
        fn: Callable[[SimMatcher, int], Any],
        answer: Answer,
        queued: bool = True,
    ) -> None:
        """Queue a request decided at ``decided_ns`` (None: now): it runs on the venue at its
        arrival time, ``fn(matcher, arrival_ns)``, and ``answer(result, error, known_ns)`` is
        handed to the bot (``pump``) one latency later (``queued=False``: called when it ran)."""
        self._matcher(path)
        latency_ns = self.latency_ns()
        self.order_latency_ms.append(latency_ns / 1e6)
        arrive_ns = (time.time_ns() if decided_ns is None else int(decided_ns)) + latency_ns
        heapq.heappush(self._queue, (arrive_ns, self._seq, fn, answer, queued))
        self._seq += 1
        if arrive_ns <= self.horizon_ns:  # due already (a late decision): runs now
            self._advance(self.horizon_ns)

    async def _request(
        self, path: str, decided_ns: int | None, fn: Callable[[SimMatcher, int], Any], key: str
    ) -> Any:
        """``submit`` for a caller that awaits the answer: it comes back when the request has run
        on the venue (not one latency later: a caller outside the session's queue)."""
        fut: asyncio.Future = asyncio.get_running_loop().create_future()

        def answer(result: Any, error: BaseException | None, known_ns: int) -> None:
            if fut.done():  # its sender gave up (shutdown)
                return
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)

        self.submit(path, decided_ns, fn, answer, queued=False)
        return await fut

    def _matcher(self, path: str) -> SimMatcher:
        if self.m is None:
            raise BybitError(10001, "paper venue: no book received yet", path)
        return self.m

    def _admit(self, path: str, at_ns: int) -> None:
        reset_ms = self.rate.admit(at_ns)
        if reset_ms is not None:
            raise RateLimited(10006, "Too many visits!", path, reset_ms)

    def _get(self, m: SimMatcher, link_id: str, path: str) -> SimOrder:
        o = m.find(link_id=link_id)
        if o is None:
            raise BybitError(110001, "order not exists or too late", path)
        return o

    # requests: what each does on the venue (``*_fn``: its path and run), for ``submit`` ---------------
    def create_fn(
        self, side: int, qty: str, price: str, link_id: str, tif: str = "PostOnly"
    ) -> tuple[str, Callable[[SimMatcher, int], dict]]:
        path = "/v5/order/create"

        def run(m: SimMatcher, at_ns: int) -> dict:
            self._admit(path, at_ns)
            code, msg, o = m.create(link_id, side, float(price), float(qty), tif, "Limit", at_ns)
            if o is None:
                raise BybitError(code, msg, path)
            return {"orderId": o.order_id, "orderLinkId": o.link_id}

        return path, run

    def amend_fn(
        self, link_id: str, price: str | None = None, qty: str | None = None
    ) -> tuple[str, Callable[[SimMatcher, int], dict]]:
        path = "/v5/order/amend"

        def run(m: SimMatcher, at_ns: int) -> dict:
            o = self._get(m, link_id, path)
            self._admit(path, at_ns)
            code, msg = m.amend(
                o, float(price) if price else None, float(qty) if qty else None, at_ns
            )
            if code:
                raise BybitError(code, msg, path)
            return {"orderId": o.order_id, "orderLinkId": o.link_id}

        return path, run

    def cancel_fn(self, link_id: str) -> tuple[str, Callable[[SimMatcher, int], dict]]:
        path = "/v5/order/cancel"

        def run(m: SimMatcher, at_ns: int) -> dict:
            o = self._get(m, link_id, path)
            code, msg = m.cancel(o, at_ns)
            if code:
                raise BybitError(code, msg, path)
            return {"orderId": o.order_id, "orderLinkId": o.link_id}

        return path, run

    # the BybitRest surface (``decided_ns``: paper only) -------------------------------------------------
    async def create_order(
        self,
        symbol: str,
        side: int,
        qty: str,
        price: str,
        link_id: str,
        tif: str = "PostOnly",
        decided_ns: int | None = None,
    ) -> dict:
        path, run = self.create_fn(side, qty, price, link_id, tif)
        return await self._request(path, decided_ns, run, link_id)

    async def amend_order(
        self,
        symbol: str,
        link_id: str,
        price: str | None = None,
        qty: str | None = None,
        decided_ns: int | None = None,
    ) -> dict:
        path, run = self.amend_fn(link_id, price, qty)
        return await self._request(path, decided_ns, run, link_id)

    async def cancel_order(self, symbol: str, link_id: str, decided_ns: int | None = None) -> dict:
        path, run = self.cancel_fn(link_id)
        return await self._request(path, decided_ns, run, link_id)

    async def cancel_all(self, symbol: str) -> list[dict]:
        if self.m is None:
            return []
        return [
            {"orderId": o.order_id, "orderLinkId": o.link_id}
            for o in self.m.cancel_all(time.time_ns())
        ]

    async def open_orders(self, symbol: str) -> list[dict]:
        if self.m is None:
            return []
        return [order_json(o, self.symbol, self.px_dec, self.qty_dec) for o in self.m.open_orders()]

    async def order_by_link(self, symbol: str, link_id: str) -> dict | None:
        return self.order_row(link_id)

    def order_row(self, link_id: str) -> dict | None:
        """The order's state now (the venue answers at once: nothing to wait for)."""
        o = None if self.m is None else self.m.find(link_id=link_id)
        return None if o is None else order_json(o, self.symbol, self.px_dec, self.qty_dec)

    async def executions(self, symbol: str, start_ms: int = 0) -> list[dict]:
        if self.m is None:
            return []
        return [
            exec_json(e, self.m.orders[e.order_id], self.symbol, self.px_dec, self.qty_dec)
            for e in self.m.executions
            if e.exec_ns // 1_000_000 >= start_ms
        ]

    async def position(self, symbol: str) -> float:
        return self.start_position_qty if self.m is None else self.m.position_qty

    def stats(self) -> dict:
        """What the venue applied, for session.json (medians over the session)."""
        return {
            "paper_order_latency_ms": (
                float(np.median(self.order_latency_ms)) if self.order_latency_ms else None
            ),
            "paper_entry_latency_ms": self.entry_ns / 1e6,
            "paper_compute_ms": self.compute_ns / 1e6,
            "paper_hold_ms": self.hold_ns / 1e6,
            "paper_events_late": self.n_events_late,
            "paper_requests_late": self.n_requests_late,
            "paper_timer_advances": self.n_timer_advances,
        }
