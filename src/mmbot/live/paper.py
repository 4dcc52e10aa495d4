"""Paper venue: the bot's orders are matched by ``mmbot.sim``'s venue fed with the live public stream.

Same method names and Bybit-shaped answers as ``BybitRest`` so the runner drives both alike (no
private API is used). The matching is the backtest's: a ``SimMatcher`` (``mmbot.live.simmatch``)
whose venue is built on the first book levels received and continued message by message with the events
the data layer's parser made of each message (``mmbot.data.bybit.parse_message``, the very rows
the bot's book is built from): queue model, fees and partial fills as in ``mmbot backtest``.

Times (the bot's clock; the model a backtest of the recorded feed applies, driven by what was
received, so that no delivery jitter of the feed or CPU jitter of our process changes which orders
fill once the stamps are given):
- a market event happened at its message's exchange stamp, as the backtest takes it (Bybit stamps
  ms; the start of the ms), mapped onto our clock with the measured clock offset only where that
  is measurably non-zero (``PaperGateway.set_clock_offset``), and never after we received it;
- the venue holds every event it received until its horizon passes it, then plays the events in
  exchange-time order (arrival order on ties), as the data layer orders a recorded file. The
  horizon (``safe_ns``) is the latest receive stamp less the hold: twice the largest feed lag
  seen, within [150 ms, 1 s], so every event stamped before it has come in (a capture's depth
  stream runs up to ~100 ms behind its trades; an event that still comes in behind the horizon is
  played at it and counted: ``n_events_late``). In a quiet market the wall clock moves the
  horizon (one hold past what is needed, no frame waiting, seen quiet twice 2 ms apart);
- a request is decided at the receive stamp of the message the strategy was woken by (or the
  due time of the answer / fill / timer that woke it) and arrives at ``decided + latency``:
  ``latency`` = ``--latency-ms`` (default: the feed's median latency over its first 50
  messages), fixed for the session. The bot's own handling takes no market time (as in the
  backtest's loop; its median, ``paper_compute_ms``, is reported: add it to ``--latency-ms`` to
  model it). Requests wait in arrival order and are executed exactly there in the venue's event
  sequence, so neither CPU jitter nor the moment the bot gets round to a request moves an order;
- the exchange's order rate limit counts requests at their arrival times;
- what the venue tells the bot reaches it one latency after it happened there: an answer at
  ``arrival + latency``, a fill at its exchange time + latency. The session hands its market
  messages to ``defer`` at their receive stamps and the venue's answers and updates join them in
  one time-ordered queue (``pump``, a discrete-event loop): an item at ``t`` goes to the bot once
  the venue has played the market to ``t - latency``, and the venue plays no further than the
  next item's ``t - latency`` (and at most one latency a step) before it is handed over, so a
  request decided on an item always meets the venue at its arrival time. The bot thus sees its
  answers, fills, market messages and timer wakes (``next_wake``) in the order the backtest's loop
  would, at the times it would (each item wakes it). Paper trades in event time, a reorder margin
  behind the wall clock;
- an amend from the session asks for the size that stays open (``amend_fn(open_qty=)``), as the
  backtest's modify does; Bybit's amend (``qty``: the new total) is kept for other callers.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mmbot.events import DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, EXCH_EVENT, KIND_MASK, LOCAL_EVENT
from mmbot.live import orders
from mmbot.live.bybit import BybitError, RateLimited
from mmbot.live.simmatch import SimMatcher

log = logging.getLogger("mmbot.live")

REFRESH_EVERY = 50  # compute estimates are refreshed every this many samples
MAX_LATENCY_NS = 500_000_000
# the horizon stays this far behind the latest exchange stamp received: twice the most an event
# came in behind an earlier-received stamp, within [150 ms, 1 s] (in a Binance capture the depth
# stream's events come in up to 66 ms behind the trades')
REORDER_MIN_NS = 150_000_000
REORDER_MAX_NS = 1_000_000_000
# a quiet stream: the wall clock moves the horizon once it is this far past it, twice the largest
# feed lag seen within [1 s, 5 s] (no event can still be on its way then)
HOLD_LAG_MULT = 2
HOLD_MIN_NS = 1_000_000_000
HOLD_MAX_NS = 5_000_000_000

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
        self.px_dec, self.qty_dec = orders.price_decimals(tick_px), orders.price_decimals(lot_qty)
        self.on_private = on_private
        self.latency_ms = latency_ms  # None: entry_ns is the feed's measured median latency
        self.start_position_qty = start_position_qty
        self.id_prefix = id_prefix or f"P{time.time_ns() // 1_000_000}-"
        self.clock_offset_ns = 0  # exchange clock - ours, where measurably non-zero (the gateway)
        self.m: SimMatcher | None = None  # built on the first book levels received
        self.rate = orders.RateWindow(
            rate_limit_per_s
        )  # the exchange's order limit, as Bybit answers
        self.horizon_ns = 0  # the venue has played every market event up to here (our clock)
        self._rows: list[np.ndarray] = []  # received events beyond the horizon, arrival order
        self.max_exch_ns = 0  # the latest exchange stamp received (our clock)
        self.max_inversion_ns = 0  # the most an event came in behind an earlier-received stamp
        self.reorder_min_ns = REORDER_MIN_NS
        self.reorder_ns = REORDER_MIN_NS  # how far the horizon stays behind max_exch_ns
        self.n_msgs = 0
        self.lags_ns: collections.deque[int] = collections.deque(maxlen=400)
        self.n_lags = 0
        self.max_lag_ns = 0  # the largest feed lag (receive - exchange time) seen
        self.hold_min_ns = HOLD_MIN_NS
        self.hold_ns = HOLD_MIN_NS  # a quiet stream: how long the wall clock waits (module doc)
        self.entry_ns = 5_000_000 if latency_ms is None else int(latency_ms * 1e6)
        self.compute_ns = 0  # the bot's median time from a wake to its request (reported only)
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
        self._exec_at: dict[str, int] = {}  # order id -> venue time of its latest fill
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due_ns = 0
        self._quiet_msgs = -1  # messages seen when the wall clock first found the stream quiet
        self.order_latency_ms: list[float] = []  # per request: the latency applied
        self.n_events_late = 0  # market events received after the horizon had passed them
        self.n_requests_late = 0  # requests that met the venue after their arrival time
        self.n_timer_advances = 0  # horizon moves by the wall clock (a quiet stream)
        # when the bot learns what it is handed now, on its clock (the item's due time)
        self.known_ns = 0

    def latency_ns(self) -> int:
        """The order latency applied, each way: the entry latency, fixed for the session (the bot's
        own handling takes no market time in event time, as in the backtest's loop)."""
        return self.entry_ns

    def _listen(self, kind: str, obj: object) -> None:
        """The matcher's news, due to the bot one latency after it happened at the venue."""
        if kind == "order":
            o: orders.SimOrder = obj  # type: ignore[assignment]
            item = orders.order_json(o, self.symbol, self.px_dec, self.qty_dec)
            at_ns = self._event_ns
            if o.status == "Filled" and o.order_id in self._exec_at:
                at_ns = min(at_ns, self._exec_at[o.order_id])  # filled when its last fill was
            self._schedule(at_ns + self.latency_ns(), "order", item)
        elif kind == "execution":
            e: orders.Execution = obj  # type: ignore[assignment]
            item = orders.exec_json(
                e, self.m.orders[e.order_id], self.symbol, self.px_dec, self.qty_dec
            )  # type: ignore[union-attr]
            fill_ns = e.exec_ns - self.clock_offset_ns  # exec_time's inverse: venue time
            self._exec_at[e.order_id] = fill_ns
            # paper only: the fill's time on our clock to the ns (execTime has ms), so the session
            # attributes it to the target in force at that instant, as the backtest's venue does
            item["venueNs"] = fill_ns
            self._schedule(fill_ns + self.latency_ns(), "execution", item)

    def _schedule(self, due_ns: int, topic: str, item: dict) -> None:
        self.defer(due_ns, lambda: self.on_private(topic, item))

    # the bot's queue ----------------------------------------------------------------------------------
    def defer(self, t_ns: int, fn: Callable[[], None]) -> None:
        """Hand ``fn`` to the bot at ``t_ns`` on its clock, in time order with the venue's news."""
        heapq.heappush(self._due, (int(t_ns), self._seq, fn))
        self._seq += 1

    def safe_ns(self) -> int:
        """The venue may play the market up to here: every event stamped before it has come in.
        The stream keeps its order however late it is delivered, so this is told by the stamps
        alone: the latest exchange stamp received less the reorder margin (twice the most an
        event came in behind an earlier-received stamp, within [150 ms, 1 s])."""
        return self.max_exch_ns - self.reorder_ns if self.max_exch_ns else 0

    def pump(self, target_ns: int | None = None) -> None:
        """Hand the bot, in time order, every item (and timer wake) it may have, playing the venue
        towards ``target_ns`` (default ``safe_ns``) in steps: an item at ``t`` goes to the bot once
        the venue is at ``t - latency`` (every answer due by ``t`` is known); the venue never plays
        past the next item's ``t - latency`` before it is handed, and never more than one latency
        at a step, so whatever the bot decides on an item reaches the venue at ``t + latency``,
        never behind its horizon (a discrete-event loop, as the backtest's)."""
        target = self.safe_ns() if target_ns is None else int(target_ns)
        wake_done = 0
        while True:
            lat = self.latency_ns()
            head = self._due[0][0] if self._due else None
            wake = self.next_wake()
            is_wake = bool(wake) and wake != wake_done and (head is None or wake < head)
            nxt = wake if is_wake else head
            if nxt is not None and nxt <= self.horizon_ns + lat:
                self.known_ns = nxt
                if is_wake:
                    wake_done = wake
                    self.on_wake(wake)
                else:
                    heapq.heappop(self._due)[2]()
                continue
            # no matcher yet: no news can come of the step, the horizon goes straight there
            step = target if self.m is None else min(target, self.horizon_ns + max(lat, 1))
            if nxt is not None:
                step = min(step, nxt - lat)
            if step <= self.horizon_ns:
                break
            self._advance(step)
        self._arm_timer()

    def drain(self) -> None:
        """The session ends: every received event and queued request runs, every item goes to the
        bot now."""
        ends = [a for a, *_ in self._queue] + [int(r["exch_ts"].max()) for r in self._rows]
        if ends:
            self._advance(max(ends))
        while self._due:
            t_ns, _, fn = heapq.heappop(self._due)
            self.known_ns = t_ns
            fn()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # market feed ----------------------------------------------------------------------------------
    def on_events(self, rows: np.ndarray, local_ns: int) -> None:
        """The parsed rows of one public message received at ``local_ns`` (our clock): each event
        at its exchange stamp as the backtest takes it (never after we received it); held until
        the horizon passes it (``pump``), then played in exchange-time order."""
        if len(rows) == 0:
            return
        rows = rows.copy()
        self.n_msgs += 1
        if self.m is None and not self._rows:
            kinds = rows["ev"] & KIND_MASK
            if not np.isin(kinds, (DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT)).any():
                return  # nothing to match against before the first book levels
        exch = np.minimum(rows["exch_ts"] - self.clock_offset_ns, local_ns)
        self._note_lag(local_ns - int(exch.max()))
        self._note_order(exch)
        # exchange timeline only (the venue's local book is not used: the bot keeps its own)
        rows["ev"] = (rows["ev"] & ~np.uint64(LOCAL_EVENT)) | np.uint64(EXCH_EVENT)
        n_late = int(np.count_nonzero(exch < self.horizon_ns))
        if n_late:
            self.n_events_late += n_late
            if self.n_events_late == n_late or n_late > 10:
                log.warning(
                    "paper venue: %d events of a message received at %d came in %.1f ms behind "
                    "its horizon (latest stamp %d, reorder margin %.0f ms, clock offset %d ns): "
                    "played at the horizon",
                    n_late,
                    local_ns,
                    (self.horizon_ns - int(exch.min())) / 1e6,
                    self.max_exch_ns,
                    self.reorder_ns / 1e6,
                    self.clock_offset_ns,
                )
        rows["exch_ts"] = rows["local_ts"] = np.maximum(exch, self.horizon_ns)
        self._rows.append(rows)

    def _note_lag(self, lag_ns: int) -> None:
        lag_ns = max(lag_ns, 0)
        self.lags_ns.append(lag_ns)
        self.n_lags += 1
        if lag_ns > self.max_lag_ns:
            self.max_lag_ns = min(lag_ns, HOLD_MAX_NS)
            self.hold_ns = min(max(HOLD_LAG_MULT * self.max_lag_ns, self.hold_min_ns), HOLD_MAX_NS)
        if self.latency_ms is None and self.n_lags == REFRESH_EVERY:
            # the feed's median latency, fixed once known: the session's latency stays constant
            p50 = float(np.median(np.fromiter(self.lags_ns, np.int64)))
            self.entry_ns = int(min(max(p50, 0.0), MAX_LATENCY_NS))

    def _note_order(self, exch: np.ndarray) -> None:
        """The latest exchange stamp, and how far this message's events are behind it."""
        if self.max_exch_ns:
            inv_ns = self.max_exch_ns - int(exch.min())
            if inv_ns > self.max_inversion_ns:
                self.max_inversion_ns = min(inv_ns, REORDER_MAX_NS)
                self.reorder_ns = min(
                    max(2 * self.max_inversion_ns, self.reorder_min_ns), REORDER_MAX_NS
                )
        self.max_exch_ns = max(self.max_exch_ns, int(exch.max()))

    def note_compute(self, compute_ns: int) -> None:
        """The bot's time from a wake (message handed to it) to a request it sent then."""
        self.computes_ns.append(max(int(compute_ns), 0))
        self.n_computes += 1
        if self.n_computes % REFRESH_EVERY == 0 or self.n_computes == 10:
            self.compute_ns = int(np.median(np.fromiter(self.computes_ns, np.int64)))

    def _release(self, t_ns: int) -> np.ndarray | None:
        """The held events stamped up to ``t_ns``, in exchange-time order (arrival order on ties,
        as the data layer orders a recorded file)."""
        if not self._rows:
            return None
        allr = np.concatenate(self._rows) if len(self._rows) > 1 else self._rows[0]
        allr = allr[np.argsort(allr["exch_ts"], kind="stable")]
        k = int(np.searchsorted(allr["exch_ts"], t_ns, side="right"))
        self._rows = [allr[k:]] if k < len(allr) else []
        return allr[:k] if k else None

    def _advance(self, t_ns: int) -> None:
        """Play the venue's market up to ``t_ns`` (never back), executing each waiting request at
        its arrival time on the way; its answer is due one latency later."""
        if t_ns > self.horizon_ns:
            block = self._release(t_ns)
            if block is not None and self.m is None:
                self._open(block)
            elif block is not None:
                self._event_ns = self.horizon_ns
                self.m.extend(block)
        m = self.m
        q = self._queue
        while q and q[0][0] <= t_ns:
            arrive_ns, _, fn, answer, queued = heapq.heappop(q)
            if m is None:  # no book had reached the venue by its arrival
                self._event_ns = arrive_ns
                result, error = None, BybitError(10001, "paper venue: no book yet", "/v5/order")
            else:
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
            if m is not None:
                m.sync(t_ns)

    def _open(self, block: np.ndarray) -> None:
        """The matcher, built on the first events the horizon passes (in exchange-time order, so a
        book snapshot stamped before deltas received ahead of it is played first)."""
        self.m = SimMatcher(
            self.symbol,
            self.tick_px,
            self.lot_qty,
            block,
            self.maker_fee_rate,
            self.taker_fee_rate,
            self.queue_model,
            listener=self._listen,
            exec_time=lambda venue_ns: venue_ns + self.clock_offset_ns,
            id_prefix=self.id_prefix,
        )
        self.m.position_qty = self.start_position_qty

    def _need_ns(self) -> int | None:
        """The horizon the bot's next item (or the next waiting request) needs; None: nothing waits."""
        heads = [t for t in (self._due[0][0] if self._due else 0, self.next_wake()) if t]
        if heads:
            return min(heads) - self.latency_ns()
        return self._queue[0][0] if self._queue else None

    def _arm_timer(self) -> None:
        """Wake when the wall clock is one hold past the horizon the bot's next item needs: a quiet
        market (no message moved the horizon there) whose events can no longer be on their way."""
        need_ns = self._need_ns()
        if need_ns is None or self.m is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
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
        need_ns = self._need_ns()
        if need_ns is None:
            return
        quiet = self.backlog() == 0 and time.time_ns() >= need_ns + self.hold_ns
        if not quiet or self._quiet_msgs != self.n_msgs:
            # frames wait to be handled (they may carry earlier events), or the stream was not
            # yet seen quiet twice in a row (a stall of our own process delays its reads): look
            # again shortly
            self._quiet_msgs = self.n_msgs if quiet else -1
            self._timer_due_ns = 0
            self._timer = asyncio.get_running_loop().call_later(0.002, self._on_timer)
            return
        self._quiet_msgs = -1
        target = time.time_ns() - self.hold_ns
        if target > self.horizon_ns:  # a quiet market: nothing earlier is still on its way
            self.n_timer_advances += 1
        self.pump(max(target, self.safe_ns()))

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
        if self.m is None and not self._rows:
            self._matcher(path)  # no book received at all: refused at once
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

    def _get(self, m: SimMatcher, link_id: str, path: str) -> orders.SimOrder:
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
        self,
        link_id: str,
        price: str | None = None,
        qty: str | None = None,
        open_qty: str | None = None,
    ) -> tuple[str, Callable[[SimMatcher, int], dict]]:
        """``qty``: the order's new total, filled part included (Bybit's amend); ``open_qty``
        instead: what stays open, whatever filled before the request arrived (the backtest's
        modify: the session's paper orders use it)."""
        path = "/v5/order/amend"

        def run(m: SimMatcher, at_ns: int) -> dict:
            o = self._get(m, link_id, path)
            if not o.is_open:  # refused before the rate limit counts it (as the backtest's venue)
                raise BybitError(110001, "order not exists or too late to replace", path)
            self._admit(path, at_ns)
            total = float(qty) if qty else None
            if open_qty:
                total = o.cum_qty + float(open_qty)
            code, msg = m.amend(o, float(price) if price else None, total, at_ns)
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
        return [
            orders.order_json(o, self.symbol, self.px_dec, self.qty_dec)
            for o in self.m.open_orders()
        ]

    async def order_by_link(self, symbol: str, link_id: str) -> dict | None:
        return self.order_row(link_id)

    def order_row(self, link_id: str) -> dict | None:
        """The order's state now (the venue answers at once: nothing to wait for)."""
        o = None if self.m is None else self.m.find(link_id=link_id)
        return None if o is None else orders.order_json(o, self.symbol, self.px_dec, self.qty_dec)

    async def executions(self, symbol: str, start_ms: int = 0) -> list[dict]:
        if self.m is None:
            return []
        return [
            orders.exec_json(e, self.m.orders[e.order_id], self.symbol, self.px_dec, self.qty_dec)
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
            "paper_reorder_ms": self.reorder_ns / 1e6,
            "paper_events_late": self.n_events_late,
            "paper_requests_late": self.n_requests_late,
            "paper_timer_advances": self.n_timer_advances,
        }
