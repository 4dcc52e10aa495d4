"""Paper venue: the bot's orders fill locally against the live public stream (no private API).

Same method names and Bybit-shaped answers as ``BybitRest`` so the runner drives both alike; fills
come from ``mmbot.live.matcher.Matcher`` (the simplified queue/price-crossing matcher, see there)
fed with the very book and trade messages the strategy sees. An optional order latency delays each
request before it reaches the matcher, as the network would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from mmbot.live.bybit import BybitError
from mmbot.live.matcher import Execution, Matcher, SimOrder, exec_json, order_json, price_decimals


class PaperVenue:
    def __init__(
        self,
        symbol: str,
        tick_px: float,
        lot_qty: float,
        maker_fee_rate: float,
        taker_fee_rate: float,
        on_private: Callable[[str, dict], None],
        latency_ms: float = 0.0,
    ):
        self.symbol = symbol
        self.px_dec, self.qty_dec = price_decimals(tick_px), price_decimals(lot_qty)
        self.m = Matcher(
            symbol, tick_px, lot_qty, maker_fee_rate, taker_fee_rate, listener=self._listen
        )
        self.on_private = on_private
        self.latency_s = latency_ms / 1e3

    def _listen(self, kind: str, obj: object) -> None:
        if kind == "order":
            self.on_private("order", order_json(obj, self.symbol, self.px_dec, self.qty_dec))  # type: ignore[arg-type]
        elif kind == "execution":
            e: Execution = obj  # type: ignore[assignment]
            self.on_private(
                "execution",
                exec_json(e, self.m.orders[e.order_id], self.symbol, self.px_dec, self.qty_dec),
            )

    # market feed ----------------------------------------------------------------------------------
    def on_book(self, msg: dict) -> None:
        data = msg["data"]
        if msg.get("type") == "snapshot":
            self.m.clear_book()
        for p, q in data.get("b", []):
            self.m.set_level(1, float(p), float(q))
        for p, q in data.get("a", []):
            self.m.set_level(-1, float(p), float(q))
        self.m.check_cross(time.time_ns())

    def on_trades(self, msg: dict) -> None:
        for t in msg.get("data", []):
            self.m.trade(1 if t["S"] == "Buy" else -1, float(t["p"]), float(t["v"]), time.time_ns())

    async def _delay(self) -> None:
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)

    # the BybitRest surface the runner uses -----------------------------------------------------------
    async def create_order(
        self, symbol: str, side: int, qty: str, price: str, link_id: str, tif: str = "PostOnly"
    ) -> dict:
        await self._delay()
        code, msg, o = self.m.create(
            link_id, side, float(price), float(qty), tif, "Limit", time.time_ns()
        )
        if o is None:
            raise BybitError(code, msg, "/v5/order/create")
        return {"orderId": o.order_id, "orderLinkId": o.link_id}

    def _get(self, link_id: str) -> SimOrder:
        o = self.m.find(link_id=link_id)
        if o is None:
            raise BybitError(110001, "order not exists or too late", "/v5/order")
        return o

    async def amend_order(
        self, symbol: str, link_id: str, price: str | None = None, qty: str | None = None
    ) -> dict:
        await self._delay()
        o = self._get(link_id)
        code, msg = self.m.amend(
            o, float(price) if price else None, float(qty) if qty else None, time.time_ns()
        )
        if code:
            raise BybitError(code, msg, "/v5/order/amend")
        return {"orderId": o.order_id, "orderLinkId": o.link_id}

    async def cancel_order(self, symbol: str, link_id: str) -> dict:
        await self._delay()
        o = self._get(link_id)
        code, msg = self.m.cancel(o, time.time_ns())
        if code:
            raise BybitError(code, msg, "/v5/order/cancel")
        return {"orderId": o.order_id, "orderLinkId": o.link_id}

    async def cancel_all(self, symbol: str) -> list[dict]:
        return [
            {"orderId": o.order_id, "orderLinkId": o.link_id}
            for o in self.m.cancel_all(time.time_ns())
        ]

    async def open_orders(self, symbol: str) -> list[dict]:
        return [order_json(o, self.symbol, self.px_dec, self.qty_dec) for o in self.m.open_orders()]

    async def order_by_link(self, symbol: str, link_id: str) -> dict | None:
        o = self.m.find(link_id=link_id)
        return None if o is None else order_json(o, self.symbol, self.px_dec, self.qty_dec)

    async def executions(self, symbol: str, start_ms: int = 0) -> list[dict]:
        return [
            exec_json(e, self.m.orders[e.order_id], self.symbol, self.px_dec, self.qty_dec)
            for e in self.m.executions
            if e.exec_ns // 1_000_000 >= start_ms
        ]

    async def position(self, symbol: str) -> float:
        return self.m.position_qty
