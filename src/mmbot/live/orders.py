"""Bybit-shaped orders and executions shared by the emulator and the paper venue: ``SimOrder``,
``Execution``, their V5 JSON rows (``order_json``, ``exec_json``), and ``PublicBook`` (the public
book a matcher keeps: the order book module's ``DictBook``, and the helpers on it). Matching itself
is ``mmbot.sim``'s venue, driven by ``mmbot.live.simmatch.SimMatcher``.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from decimal import Decimal

from mmbot.book import DictBook

BUY, SELL = 1, -1


def price_decimals(tick_px: float) -> int:
    exp = Decimal(repr(float(tick_px))).normalize().as_tuple().exponent
    return max(0, -int(exp))


class PublicBook:
    """The public book both matchers keep (``book``: ``mmbot.book.DictBook``, px -> qty per side,
    read as ``bids``/``asks``) and the helpers they share. Needs ``tick_px``, ``book`` and
    ``listener`` on the instance."""

    book: DictBook

    @property
    def bids(self) -> dict[float, float]:
        return self.book.bids

    @property
    def asks(self) -> dict[float, float]:
        return self.book.asks

    def _emit(self, kind: str, obj: object) -> None:
        if self.listener is not None:
            self.listener(kind, obj)

    def round_px(self, px: float) -> float:
        return round(round(px / self.tick_px) * self.tick_px, price_decimals(self.tick_px))

    def best_bid(self) -> float:
        return self.book.best_bid()

    def best_ask(self) -> float:
        return self.book.best_ask()

    def mid_px(self) -> float:
        return self.book.mid_px()

    def clear_book(self, side: int = 0) -> None:
        self.book.clear(side)

    def set_level(self, side: int, px: float, qty: float) -> None:
        self.book.set_level(side, px, qty)


@dataclass
class SimOrder:
    order_id: str
    link_id: str
    side: int
    px: float
    qty: float
    tif: str  # PostOnly | GTC | IOC
    order_type: str  # Limit | Market
    created_ns: int
    updated_ns: int
    cum_qty: float = 0.0
    cum_value: float = 0.0
    cum_fee: float = 0.0
    status: str = "New"
    reject_reason: str = "EC_NoError"
    queue_ahead_qty: float = 0.0

    @property
    def leaves_qty(self) -> float:
        if self.status in ("Filled", "Cancelled", "Rejected", "Deactivated"):
            return 0.0
        return max(0.0, self.qty - self.cum_qty)

    @property
    def is_open(self) -> bool:
        return self.status in ("New", "PartiallyFilled")


@dataclass
class Execution:
    exec_id: str
    order_id: str
    link_id: str
    side: int
    px: float
    qty: float
    fee: float
    fee_rate: float
    maker: bool
    exec_ns: int
    leaves_qty: float
    mid_px: float


def _fmt(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}"


def order_json(o: SimOrder, symbol: str, px_dec: int, qty_dec: int) -> dict:
    """A Bybit V5 order object (REST /v5/order/realtime row and private ``order`` topic item)."""
    avg = o.cum_value / o.cum_qty if o.cum_qty > 0 else 0.0
    return {
        "category": "linear",
        "symbol": symbol,
        "orderId": o.order_id,
        "orderLinkId": o.link_id,
        "side": "Buy" if o.side == BUY else "Sell",
        "orderType": o.order_type,
        "price": _fmt(o.px, px_dec),
        "qty": _fmt(o.qty, qty_dec),
        "timeInForce": o.tif,
        "orderStatus": o.status,
        "cumExecQty": _fmt(o.cum_qty, qty_dec),
        "cumExecValue": repr(o.cum_value),
        "cumExecFee": repr(o.cum_fee),
        "leavesQty": _fmt(o.leaves_qty, qty_dec),
        "avgPrice": repr(avg),
        "rejectReason": o.reject_reason,
        "createdTime": str(o.created_ns // 1_000_000),
        "updatedTime": str(o.updated_ns // 1_000_000),
    }


def exec_json(e: Execution, o: SimOrder, symbol: str, px_dec: int, qty_dec: int) -> dict:
    """A Bybit V5 execution object (REST /v5/execution/list row and private ``execution`` item)."""
    return {
        "category": "linear",
        "symbol": symbol,
        "execId": e.exec_id,
        "orderId": e.order_id,
        "orderLinkId": e.link_id,
        "side": "Buy" if e.side == BUY else "Sell",
        "execPrice": _fmt(e.px, px_dec),
        "execQty": _fmt(e.qty, qty_dec),
        "execFee": repr(e.fee),
        "feeRate": repr(e.fee_rate),
        "isMaker": e.maker,
        "execTime": str(e.exec_ns // 1_000_000),
        "execType": "Trade",
        "leavesQty": _fmt(e.leaves_qty, qty_dec),
        "orderPrice": _fmt(o.px, px_dec),
        "orderQty": _fmt(o.qty, qty_dec),
        "markPrice": repr(e.mid_px),
        "execValue": repr(e.px * e.qty),
    }


class RateWindow:
    """Bybit-style order rate limit: at most ``per_s`` create/amend requests in any sliding 1 s
    window (0 = no limit). ``admit`` records an admitted request, or returns the wall-clock ms at
    which the window admits the next one (Bybit's ``X-Bapi-Limit-Reset-Timestamp``)."""

    def __init__(self, per_s: int):
        self.per_s = int(per_s)
        self.times_ns: collections.deque[int] = collections.deque()
        self.n_limited = 0

    def admit(self, now_ns: int) -> int | None:
        if self.per_s <= 0:
            return None
        w = self.times_ns
        while w and now_ns - w[0] >= 1_000_000_000:
            w.popleft()
        if len(w) >= self.per_s:
            self.n_limited += 1
            return -(-(w[0] + 1_000_000_000) // 1_000_000)  # ms, rounded up
        w.append(now_ns)
        return None
