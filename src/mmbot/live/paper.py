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
  executed exactly there in the venue's event sequence: when the horizon passes their arrival
  (a message with a later exchange time came in), or, with nothing left unread on the stream,
  once the wall clock is one 95th-percentile feed lag past it (a quiet market). So neither CPU
  jitter of our own process nor the moment the asyncio task runs moves an order in the queue;
  the answer is given then (a real answer also takes a round trip).
- the exchange's order rate limit counts requests at their arrival times.
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

# a request waiting for the venue: (arrival ns, sequence, what it does, its answer, its key)
_Pending = tuple[int, int, Callable[[SimMatcher, int], Any], asyncio.Future, str]


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
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due_ns = 0
        self.order_latency_ms: list[float] = []  # per request: compute + entry, as applied
        self.n_events_late = 0  # market events received after the horizon had passed them
        self.n_requests_late = 0  # requests that met the venue after their arrival time
        self.n_timer_advances = 0  # horizon moves by the wall clock (a quiet stream)
        # when the venue learnt what it reports now: the receive stamp of the message being handled
        # (or the wall clock on a timer advance); answers keep theirs by request key (link id)
        self.known_ns = 0
        self.answer_known_ns: dict[str, int] = {}

    def _listen(self, kind: str, obj: object) -> None:
        if kind == "order":
            self.on_private("order", order_json(obj, self.symbol, self.px_dec, self.qty_dec))  # type: ignore[arg-type]
        elif kind == "execution":
            e: Execution = obj  # type: ignore[assignment]
            self.on_private(
                "execution",
                exec_json(e, self.m.orders[e.order_id], self.symbol, self.px_dec, self.qty_dec),  # type: ignore[union-attr]
            )

    # market feed ----------------------------------------------------------------------------------
    def on_events(self, rows: np.ndarray, local_ns: int) -> None:
        """The parsed rows of one public message received at ``local_ns`` (our clock)."""
        if len(rows) == 0:
            return
        self.known_ns = local_ns
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
        its arrival time on the way."""
        m = self.m
        if m is None:
            return
        q = self._queue
        while q and q[0][0] <= t_ns:
            arrive_ns, _, fn, fut, key = heapq.heappop(q)
            if arrive_ns < m.now_capture_ns:
                self.n_requests_late += 1
            m.sync(arrive_ns)
            if fut.done():  # its sender gave up (shutdown)
                continue
            self.answer_known_ns[key] = self.known_ns
            try:
                fut.set_result(fn(m, max(arrive_ns, m.now_capture_ns)))
            except BybitError as exc:
                fut.set_exception(exc)
        if t_ns > self.horizon_ns:
            self.horizon_ns = t_ns
            m.sync(t_ns)
        self._arm_timer()

    def _arm_timer(self) -> None:
        """Wake when the earliest waiting request is one p95 feed lag old on the wall clock."""
        if not self._queue:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        due_ns = self._queue[0][0] + self.hold_ns
        if self._timer is not None and self._timer_due_ns == due_ns:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due_ns = due_ns
        delay_s = max(due_ns - time.time_ns(), 0) / 1e9
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._queue:
            return
        arrive_ns = self._queue[0][0]
        if self.backlog() > 0 or time.time_ns() < arrive_ns + self.hold_ns:
            # frames wait to be handled (they may carry earlier events): look again shortly
            self._timer_due_ns = 0
            self._timer = asyncio.get_running_loop().call_later(0.001, self._on_timer)
            return
        self.n_timer_advances += 1
        self.known_ns = time.time_ns()
        self._advance(arrive_ns)

    async def _request(
        self, path: str, decided_ns: int | None, fn: Callable[[SimMatcher, int], Any], key: str
    ) -> Any:
        """Queue a request decided at ``decided_ns`` (None: now); it runs on the venue at its
        arrival time, ``fn(matcher, arrival_ns)``, and its answer comes back then
        (``answer_known_ns[key]``: the receive stamp it became known at)."""
        self._matcher(path)
        latency_ns = self.compute_ns + self.entry_ns
        self.order_latency_ms.append(latency_ns / 1e6)
        arrive_ns = (time.time_ns() if decided_ns is None else int(decided_ns)) + latency_ns
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (arrive_ns, self._seq, fn, fut, key))
        self._seq += 1
        if arrive_ns <= self.horizon_ns:  # due already (a late decision): runs now
            self.known_ns = time.time_ns()
            self._advance(self.horizon_ns)
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

    # the BybitRest surface the runner uses (``decided_ns``: paper only) --------------------------------
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
        path = "/v5/order/create"

        def run(m: SimMatcher, at_ns: int) -> dict:
            self._admit(path, at_ns)
            code, msg, o = m.create(link_id, side, float(price), float(qty), tif, "Limit", at_ns)
            if o is None:
                raise BybitError(code, msg, path)
            return {"orderId": o.order_id, "orderLinkId": o.link_id}

        return await self._request(path, decided_ns, run, link_id)

    async def amend_order(
        self,
        symbol: str,
        link_id: str,
        price: str | None = None,
        qty: str | None = None,
        decided_ns: int | None = None,
    ) -> dict:
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

        return await self._request(path, decided_ns, run, link_id)

    async def cancel_order(self, symbol: str, link_id: str, decided_ns: int | None = None) -> dict:
        path = "/v5/order/cancel"

        def run(m: SimMatcher, at_ns: int) -> dict:
            o = self._get(m, link_id, path)
            code, msg = m.cancel(o, at_ns)
            if code:
                raise BybitError(code, msg, path)
            return {"orderId": o.order_id, "orderLinkId": o.link_id}

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
