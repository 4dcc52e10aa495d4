"""Paper venue: the bot's orders are matched by ``mmbot.sim``'s venue fed with the live public stream.

Same method names and Bybit-shaped answers as ``BybitRest`` so the runner drives both alike (no
private API is used). The matching is the backtest's: a ``SimMatcher`` (``mmbot.live.simmatch``)
whose venue is built on the first book levels received and continued message by message with the events
the data layer's parser made of each message (``mmbot.data.bybit.parse_message``, the very rows
the bot's book is built from): queue model, fees and partial fills as in ``mmbot backtest``.

Times: the venue runs on the bot's clock, on the exchange's timeline: each message's exchange time is
mapped onto our clock with the measured clock offset, and the venue plays the market up to a
horizon, the latest exchange time received (or, between messages, now less the recent 95th
percentile feed lag: what is older has arrived, at 95 %). A request meets the venue at its arrival
time (send time + ``latency_ms``; by default the feed's recent median latency, the same network
one way), once the horizon has passed it, so market events that happened
before it, and arrive after it was sent, still come first, as at an exchange; its answer is given
then (a real answer also takes a round trip). Events arriving later than the horizon are applied at
the horizon (late by their excess lag).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable

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
        self.clock_offset_ns = 0  # exchange clock - ours (the runner keeps it measured)
        self.m: SimMatcher | None = None  # built on the first book levels received
        self.rate = RateWindow(rate_limit_per_s)  # the exchange's order limit, as Bybit answers
        self.horizon_ns = 0  # the venue holds every market event up to here (our clock)
        self.lags_ns: collections.deque[int] = collections.deque(maxlen=400)
        self.hold_ns = 20_000_000  # recent p95 feed lag (receive - exchange time), refreshed
        self.entry_ms_used: list[float] = []  # per request: the order latency the venue applied
        self.entry_ns = (
            5_000_000 if latency_ms is None else int(latency_ms * 1e6)
        )  # order entry latency

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
        rows = rows.copy()
        exch = np.minimum(rows["exch_ts"] - self.clock_offset_ns, local_ns)
        self._note_lag(local_ns - int(exch.max()))
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
        self._advance(max(int(rows["exch_ts"].max()), local_ns - self.hold_ns))

    def _note_lag(self, lag_ns: int) -> None:
        self.lags_ns.append(max(lag_ns, 0))
        if len(self.lags_ns) % 50 == 0:
            p50, p95 = np.percentile(np.fromiter(self.lags_ns, np.int64), [50, 95])
            self.hold_ns = int(min(max(p95, 1e6), 500e6))
            if self.latency_ms is None:
                self.entry_ns = int(min(max(p50, 0.0), 500e6))

    def _advance(self, t_ns: int) -> None:
        """Play the venue's market up to ``t_ns`` (never back)."""
        if t_ns > self.horizon_ns:
            self.horizon_ns = t_ns
            if self.m is not None:
                self.m.sync(t_ns)

    async def _arrive(self, path: str) -> SimMatcher:
        """Wait until the venue's market reaches this request's arrival time, and play it there."""
        m = self._matcher(path)
        arrive_ns = time.time_ns() + self.entry_ns
        self.entry_ms_used.append(self.entry_ns / 1e6)
        while self.horizon_ns < arrive_ns:
            wait_ns = arrive_ns + self.hold_ns - time.time_ns()
            if wait_ns <= 0:
                self._advance(max(arrive_ns, time.time_ns() - self.hold_ns))
                break
            await asyncio.sleep(min(wait_ns, 2_000_000) / 1e9)
        m.sync(arrive_ns)
        return m

    def _matcher(self, path: str) -> SimMatcher:
        if self.m is None:
            raise BybitError(10001, "paper venue: no book received yet", path)
        return self.m

    def _admit(self, path: str) -> None:
        reset_ms = self.rate.admit(time.time_ns())
        if reset_ms is not None:
            raise RateLimited(10006, "Too many visits!", path, reset_ms)

    # the BybitRest surface the runner uses -----------------------------------------------------------
    async def create_order(
        self, symbol: str, side: int, qty: str, price: str, link_id: str, tif: str = "PostOnly"
    ) -> dict:
        m = await self._arrive("/v5/order/create")
        self._admit("/v5/order/create")
        code, msg, o = m.create(
            link_id, side, float(price), float(qty), tif, "Limit", time.time_ns()
        )
        if o is None:
            raise BybitError(code, msg, "/v5/order/create")
        return {"orderId": o.order_id, "orderLinkId": o.link_id}

    def _get(self, link_id: str, path: str) -> SimOrder:
        o = self._matcher(path).find(link_id=link_id)
        if o is None:
            raise BybitError(110001, "order not exists or too late", path)
        return o

    async def amend_order(
        self, symbol: str, link_id: str, price: str | None = None, qty: str | None = None
    ) -> dict:
        await self._arrive("/v5/order/amend")
        o = self._get(link_id, "/v5/order/amend")
        self._admit("/v5/order/amend")
        code, msg = self.m.amend(  # type: ignore[union-attr]
            o, float(price) if price else None, float(qty) if qty else None, time.time_ns()
        )
        if code:
            raise BybitError(code, msg, "/v5/order/amend")
        return {"orderId": o.order_id, "orderLinkId": o.link_id}

    async def cancel_order(self, symbol: str, link_id: str) -> dict:
        await self._arrive("/v5/order/cancel")
        o = self._get(link_id, "/v5/order/cancel")
        code, msg = self.m.cancel(o, time.time_ns())  # type: ignore[union-attr]
        if code:
            raise BybitError(code, msg, "/v5/order/cancel")
        return {"orderId": o.order_id, "orderLinkId": o.link_id}

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
