"""A small order-matching engine over a replayed public book: the emulator's and paper mode's venue.

LABEL: this is a *simplified* matcher, not ``mmbot.sim``. ``mmbot.sim`` is a numba event loop that
owns the whole replay; the emulator needs a venue it can feed one market update and one REST request
at a time from an asyncio server, so it uses this instead:
- a resting order joins the back of the visible queue at its price (risk-averse queue model: the
  queue ahead only shrinks by trades at our price or by the level shrinking below it);
- a trade at our price fills us after the queue ahead is consumed; a trade through our price, or the
  opposite side of the book moving through our price, fills the order's whole remainder (maker);
- PostOnly orders that would cross are rejected (Bybit: cancelled with EC_PostOnlyWillTakeLiquidity);
  GTC/IOC/Market orders that cross take liquidity from the visible book (taker; the replayed book
  itself is not depleted).
Fees: maker/taker fee rates on notional; a negative rate is a rebate. No latency is modelled here:
the network between emulator and bot provides real latency.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

BUY, SELL = 1, -1


def price_decimals(tick_px: float) -> int:
    exp = Decimal(repr(float(tick_px))).normalize().as_tuple().exponent
    return max(0, -int(exp))


class PublicBook:
    """The public book both matchers keep (``bids``/``asks``: px -> qty) and the helpers they share.
    Needs ``tick_px``, ``bids``, ``asks`` and ``listener`` on the instance."""

    def _emit(self, kind: str, obj: object) -> None:
        if self.listener is not None:
            self.listener(kind, obj)

    def round_px(self, px: float) -> float:
        return round(round(px / self.tick_px) * self.tick_px, price_decimals(self.tick_px))

    def best_bid(self) -> float:
        return max(self.bids) if self.bids else float("nan")

    def best_ask(self) -> float:
        return min(self.asks) if self.asks else float("nan")

    def mid_px(self) -> float:
        return 0.5 * (self.best_bid() + self.best_ask())

    def clear_book(self, side: int = 0) -> None:
        if side in (0, BUY):
            self.bids.clear()
        if side in (0, SELL):
            self.asks.clear()

    def set_level(self, side: int, px: float, qty: float) -> None:
        book = self.bids if side == BUY else self.asks
        if qty <= 0.0:
            book.pop(px, None)
        else:
            book[px] = qty


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


Listener = Callable[[str, object], None]


@dataclass
class Matcher(PublicBook):
    symbol: str
    tick_px: float
    lot_qty: float
    maker_fee_rate: float = 0.0002
    taker_fee_rate: float = 0.00055
    listener: Listener | None = None
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    orders: dict[str, SimOrder] = field(default_factory=dict)
    by_link: dict[str, str] = field(default_factory=dict)
    executions: list[Execution] = field(default_factory=list)
    position_qty: float = 0.0
    cash: float = 0.0  # quote: -sum(side*px*qty) - fees
    fees_paid: float = 0.0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _exec_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    # -- public book ------------------------------------------------------------------------------
    def set_level(self, side: int, px: float, qty: float) -> None:
        PublicBook.set_level(self, side, px, qty)
        for o in self.orders.values():
            if o.is_open and o.side == side and o.px == px:
                o.queue_ahead_qty = min(o.queue_ahead_qty, max(qty, 0.0))

    def check_cross(self, now_ns: int) -> None:
        """Fill resting orders the opposite side of the book has moved through (maker, at our price)."""
        bb, ba = self.best_bid(), self.best_ask()
        for o in list(self.orders.values()):
            if not o.is_open:
                continue
            if (o.side == BUY and ba <= o.px) or (o.side == SELL and bb >= o.px):
                self._fill(o, o.px, o.leaves_qty, True, now_ns)

    def trade(self, aggressor_side: int, px: float, qty: float, now_ns: int) -> None:
        """A public trade: the aggressor hits resting orders on the other side."""
        for o in sorted(self.orders.values(), key=lambda o: o.created_ns):
            if not o.is_open or o.side != -aggressor_side:
                continue
            through = (o.side == BUY and px < o.px) or (o.side == SELL and px > o.px)
            if through:
                self._fill(o, o.px, o.leaves_qty, True, now_ns)
            elif px == o.px:
                left = qty - o.queue_ahead_qty
                o.queue_ahead_qty = max(0.0, o.queue_ahead_qty - qty)
                if left > 1e-12:
                    self._fill(o, o.px, min(left, o.leaves_qty), True, now_ns)

    # -- orders -----------------------------------------------------------------------------------
    def _fill(self, o: SimOrder, px: float, qty: float, maker: bool, now_ns: int) -> None:
        if qty <= 0.0:
            return
        rate = self.maker_fee_rate if maker else self.taker_fee_rate
        fee = rate * px * qty
        o.cum_qty += qty
        o.cum_value += px * qty
        o.cum_fee += fee
        o.updated_ns = now_ns
        if o.qty - o.cum_qty <= self.lot_qty * 1e-6:
            o.cum_qty = o.qty
            o.status = "Filled"
        else:
            o.status = "PartiallyFilled"
        self.position_qty = round(self.position_qty + o.side * qty, 12)
        self.cash += -o.side * px * qty - fee
        self.fees_paid += fee
        ex = Execution(
            exec_id=f"E{next(self._exec_ids):010d}",
            order_id=o.order_id,
            link_id=o.link_id,
            side=o.side,
            px=px,
            qty=qty,
            fee=fee,
            fee_rate=rate,
            maker=maker,
            exec_ns=now_ns,
            leaves_qty=o.leaves_qty,
            mid_px=self.mid_px(),
        )
        self.executions.append(ex)
        self._emit("execution", ex)
        self._emit("order", o)
        self._emit("position", self)

    def find(self, order_id: str = "", link_id: str = "") -> SimOrder | None:
        if order_id:
            return self.orders.get(order_id)
        if link_id:
            oid = self.by_link.get(link_id)
            return None if oid is None else self.orders.get(oid)
        return None

    def create(
        self, link_id: str, side: int, px: float, qty: float, tif: str, order_type: str, now_ns: int
    ) -> tuple[int, str, SimOrder | None]:
        """Returns (retCode, retMsg, order). Bybit codes: 110072 duplicate orderLinkId, 10001 params."""
        if link_id and link_id in self.by_link:
            return 110072, "OrderLinkedID is duplicate", None
        if qty <= 0 or abs(qty / self.lot_qty - round(qty / self.lot_qty)) > 1e-6:
            return 10001, f"params error: qty {qty} is not a multiple of lot {self.lot_qty}", None
        if order_type == "Limit":
            if not px > 0:
                return 10001, "params error: price", None
            px = self.round_px(px)
        oid = f"O{next(self._ids):010d}"
        o = SimOrder(oid, link_id or oid, side, px, qty, tif, order_type, now_ns, now_ns)
        self.orders[oid] = o
        self.by_link[o.link_id] = oid
        bb, ba = self.best_bid(), self.best_ask()
        crosses = (
            order_type == "Market" or (side == BUY and px >= ba) or (side == SELL and px <= bb)
        )
        if crosses and tif == "PostOnly":
            o.status, o.reject_reason = "Cancelled", "EC_PostOnlyWillTakeLiquidity"
            self._emit("order", o)
            return 0, "OK", o
        self._emit("order", o)
        if crosses:
            self._take(o, now_ns)
        if o.is_open:
            if tif == "IOC" or order_type == "Market":
                o.status = "Cancelled"
                self._emit("order", o)
            else:
                o.queue_ahead_qty = (self.bids if side == BUY else self.asks).get(px, 0.0)
        return 0, "OK", o

    def _take(self, o: SimOrder, now_ns: int) -> None:
        levels = (
            sorted(self.asks.items()) if o.side == BUY else sorted(self.bids.items(), reverse=True)
        )
        for lpx, lqty in levels:
            if o.leaves_qty <= 0:
                break
            if o.order_type == "Limit" and (
                (o.side == BUY and lpx > o.px) or (o.side == SELL and lpx < o.px)
            ):
                break
            self._fill(o, lpx, min(lqty, o.leaves_qty), False, now_ns)

    def amend(
        self, o: SimOrder, px: float | None, qty: float | None, now_ns: int
    ) -> tuple[int, str]:
        if not o.is_open:
            return 110001, "order not exists or too late to replace"
        if qty is not None and qty <= o.cum_qty:
            return 10001, "params error: qty below filled qty"
        if px is not None:
            px = self.round_px(px)
            crosses = (o.side == BUY and px >= self.best_ask()) or (
                o.side == SELL and px <= self.best_bid()
            )
            if crosses and o.tif == "PostOnly":
                o.status, o.reject_reason, o.updated_ns = (
                    "Cancelled",
                    "EC_PostOnlyWillTakeLiquidity",
                    now_ns,
                )
                self._emit("order", o)
                return 0, "OK"
            if px != o.px:
                o.px = px
                o.queue_ahead_qty = (self.bids if o.side == BUY else self.asks).get(px, 0.0)
        if qty is not None:
            o.qty = qty
        o.updated_ns = now_ns
        self._emit("order", o)
        return 0, "OK"

    def cancel(self, o: SimOrder, now_ns: int) -> tuple[int, str]:
        if not o.is_open:
            return 110001, "order not exists or too late to cancel"
        o.status, o.updated_ns = "Cancelled", now_ns
        self._emit("order", o)
        return 0, "OK"

    def cancel_all(self, now_ns: int) -> list[SimOrder]:
        done = [o for o in self.orders.values() if o.is_open]
        for o in done:
            self.cancel(o, now_ns)
        return done

    def open_orders(self) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.is_open]


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
