"""Order matching by ``mmbot.sim``'s compiled venue (queue model, fees of the backtest), for the
emulator and for paper mode.

``SimMatcher`` keeps Bybit-shaped order and execution objects (``SimOrder``, ``Execution``) over a
venue built from a first block of market events and continued with ``extend`` (the rest of a live
feed, message by message, or a replayed capture's next pass): ``sync`` advances the venue to a
market time, a request meets the market at its arrival time (the owner syncs there first, or
``clock`` gives it), and submits/modifies/cancels go through the venue's verbs with zero simulated
latency (the real latency is the network before the arrival); the venue's new fill rows become
executions.

The public book it keeps (``PublicBook``: ``book``, read as ``bids``/``asks``) is the one its owner
publishes or reads; the venue keeps its own copy of the same events for matching.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from mmbot import sim
from mmbot.book import DictBook
from mmbot.live.orders import Execution, PublicBook, SimOrder
from mmbot.sim import venue as sv


@njit(cache=True)
def _new_fills(v, k):
    return v.fills[k : v.n_fills].copy()


@njit(cache=True)
def _n_fills(v):
    return v.n_fills


@njit(cache=True)
def _slot_state(v, order_id):
    """(ex_status, ex_leaves_qty, ex_px, queue_ahead_qty) of an order, or ST_NONE if unknown."""
    s = sv.find_order(v, order_id)
    if s < 0:
        return 0, 0.0, np.nan, 0.0
    o = v.orders[s]
    return o.ex_status, o.ex_leaves_qty, o.ex_px, o.queue_ahead_qty


# A live feed can wander anywhere over a session, unlike a replay whose prices are known up front:
# the venue's price ladder gets ±20 % of the first price (32 bytes a tick: ~12 MB for BTCUSDT's
# 0.1 tick) instead of the replay's ±2 %, beyond which levels would only be counted, not matched.
LIVE_LADDER_PAD_RATIO = 0.20

_FINAL = ("Filled", "Cancelled", "Rejected", "Deactivated")
_STATUS = {
    sv.ST_LIVE: "New",
    sv.ST_FILLED: "Filled",
    sv.ST_CANCELLED: "Cancelled",
    sv.ST_REJECTED: "Cancelled",
    sv.ST_EXPIRED: "Cancelled",
}


@dataclass
class SimMatcher(PublicBook):
    symbol: str
    tick_px: float
    lot_qty: float
    events: np.ndarray
    maker_fee_rate: float = 0.0002
    taker_fee_rate: float = 0.00055
    queue_model: str = "risk_averse"
    listener: Callable[[str, object], None] | None = None
    # the market time a request arrives at (the emulator's replay clock); None: the latest sync
    clock: Callable[[], int] | None = None
    # execTime of a fill from its venue time (ns); None: the wall clock when it is reported
    exec_time: Callable[[int], int] | None = None
    id_prefix: str = ""  # order and execution ids: unique across sessions of one journal
    book: DictBook = field(default_factory=DictBook)
    orders: dict[str, SimOrder] = field(default_factory=dict)
    by_link: dict[str, str] = field(default_factory=dict)
    executions: list[Execution] = field(default_factory=list)
    position_qty: float = 0.0
    cash: float = 0.0
    fees_paid: float = 0.0

    def __post_init__(self) -> None:
        warm_up(self.tick_px, self.lot_qty)
        self.v = sim.make_venue(
            self.events,
            sim.VenueConfig(
                tick_px=self.tick_px,
                lot_qty=self.lot_qty,
                maker_fee_rate=self.maker_fee_rate,
                taker_fee_rate=self.taker_fee_rate,
                entry_latency_ns=0,
                response_latency_ns=0,
                queue_model=self.queue_model,
                partial_fills=True,
                ladder_pad_ratio=LIVE_LADDER_PAD_RATIO,
            ),
        )
        self.sim_ids: dict[int, str] = {}  # venue order id -> our orderId
        self._live_ids: list[str] = []  # orders not yet final (what _harvest looks at)
        self.k_fill = 0
        self.now_capture_ns = int(min(self.events["exch_ts"][0], self.events["local_ts"].min()))
        self.end_ns = int(max(self.events["exch_ts"].max(), self.events["local_ts"].max()))
        self._exec_n = 0

    def extend(self, events: np.ndarray) -> None:
        """The next block of market events (times not before ``now_capture_ns``): the venue plays
        its current block to the end, then continues with this one."""
        if len(events) == 0:
            return
        self.sync(self.end_ns)
        sim.extend_venue(self.v, events)
        self.end_ns = int(max(events["exch_ts"].max(), events["local_ts"].max()))

    # -- venue clock ------------------------------------------------------------------------------
    def sync(self, capture_ns: int) -> None:
        """Advance the venue to capture time ``capture_ns`` and publish what happened to our orders."""
        self.now_capture_ns = max(self.now_capture_ns, int(capture_ns))
        sv.goto(self.v, self.now_capture_ns)
        self._harvest()

    def _harvest(self) -> None:
        n = int(_n_fills(self.v))
        if n > self.k_fill:
            rows = _new_fills(self.v, self.k_fill)
            self.k_fill = n
            for f in rows:
                oid = self.sim_ids.get(int(f["order_id"]))
                if oid is None:
                    continue
                o = self.orders[oid]
                px, qty, fee = float(f["px"]), float(f["qty"]), float(f["fee"])
                o.cum_qty += qty
                o.cum_value += px * qty
                o.cum_fee += fee
                o.status = "PartiallyFilled"
                self.position_qty = round(self.position_qty + o.side * qty, 12)
                self.cash += -o.side * px * qty - fee
                self.fees_paid += fee
                self._exec_n += 1
                exec_ns = (
                    _wall_ns() if self.exec_time is None else self.exec_time(int(f["exch_ts"]))
                )
                ex = Execution(
                    f"{self.id_prefix}E{self._exec_n:010d}",
                    o.order_id,
                    o.link_id,
                    o.side,
                    px,
                    qty,
                    fee,
                    float(f["fee_rate"]),
                    bool(f["maker"]),
                    exec_ns,
                    max(0.0, o.qty - o.cum_qty),
                    float(f["mid_px"]),
                )
                self.executions.append(ex)
                self._emit("execution", ex)
                self._emit("position", self)
        for o in self._active():
            self._refresh(o)

    def _refresh(self, o: SimOrder) -> None:
        st, leaves, ex_px, q_ahead = _slot_state(self.v, o._sim_id)  # type: ignore[attr-defined]
        new = _STATUS.get(int(st))
        if new is None:
            return
        if new == "New" and o.cum_qty > 0:
            new = "PartiallyFilled"
        if int(st) == sv.ST_REJECTED:
            o.reject_reason = "EC_PostOnlyWillTakeLiquidity"
        changed = new != o.status or (math.isfinite(ex_px) and ex_px != o.px)
        if math.isfinite(ex_px):
            o.px = float(ex_px)
        o.queue_ahead_qty = float(q_ahead)
        if new == "Filled":
            o.cum_qty = o.qty
        if changed:
            o.status = new
            o.updated_ns = _wall_ns()
            self._emit("order", o)

    def _arrive(self) -> None:
        """A request arrives now: the venue first plays the market up to the replay clock (not
        only to the last message published), so it meets the book and queues of its arrival time."""
        if self.clock is not None:
            self.sync(self.clock())

    # -- orders -----------------------------------------------------------------------------------
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
        if link_id and link_id in self.by_link:
            return 110072, "OrderLinkedID is duplicate", None
        if qty <= 0 or abs(qty / self.lot_qty - round(qty / self.lot_qty)) > 1e-6:
            return 10001, f"params error: qty {qty} is not a multiple of lot {self.lot_qty}", None
        px = self.round_px(px) if order_type == "Limit" else float("nan")
        tif_c = {"PostOnly": sim.venue.TIF_GTX, "IOC": sim.venue.TIF_IOC}.get(
            tif, sim.venue.TIF_GTC
        )
        ot = sim.venue.ORD_MARKET if order_type == "Market" else sim.venue.ORD_LIMIT
        self._arrive()
        sim_id = int(
            sv.submit(self.v, side, px if ot == sim.venue.ORD_LIMIT else 0.0, qty, tif_c, ot)
        )
        if sim_id <= 0:
            return 10001, f"params error: order refused by the venue ({sim_id})", None
        oid = f"{self.id_prefix}O{sim_id:010d}"
        o = SimOrder(
            oid, link_id, side, px, qty, tif, order_type, now_ns, now_ns, status="PendingNew"
        )
        o._sim_id = sim_id  # type: ignore[attr-defined]
        self.orders[oid] = o
        if link_id:  # V5: an order placed without orderLinkId reports it as ""
            self.by_link[link_id] = oid
        self.sim_ids[sim_id] = oid
        self._live_ids.append(oid)
        sv.goto(self.v, self.now_capture_ns)  # zero latency: the request is processed at this time
        self._harvest()
        return 0, "OK", o

    def amend(
        self, o: SimOrder, px: float | None, qty: float | None, now_ns: int
    ) -> tuple[int, str]:
        if not o.is_open:
            return 110001, "order not exists or too late to replace"
        new_px = self.round_px(px) if px is not None else o.px
        self._arrive()
        if not o.is_open:
            return 110001, "order not exists or too late to replace"
        # Bybit: qty is the order's new total, filled part included; the venue takes what stays open
        lots = round(((qty if qty is not None else o.qty) - o.cum_qty) / self.lot_qty)
        new_leaves = round(lots * self.lot_qty, 12)
        if lots <= 0:
            return 10001, "params error: qty below filled qty"
        rc = int(sv.modify(self.v, o._sim_id, new_px, new_leaves))  # type: ignore[attr-defined]
        if rc < 0:
            return 110001, f"order not exists or too late to replace ({rc})"
        if qty is not None:
            o.qty = qty
        sv.goto(self.v, self.now_capture_ns)
        self._harvest()
        return 0, "OK"

    def cancel(self, o: SimOrder, now_ns: int) -> tuple[int, str]:
        if not o.is_open:
            return 110001, "order not exists or too late to cancel"
        self._arrive()
        if not o.is_open:
            return 110001, "order not exists or too late to cancel"
        rc = int(sv.cancel(self.v, o._sim_id))  # type: ignore[attr-defined]
        if rc < 0:
            return 110001, f"order not exists or too late to cancel ({rc})"
        sv.goto(self.v, self.now_capture_ns)
        self._harvest()
        return 0, "OK"

    def cancel_all(self, now_ns: int) -> list[SimOrder]:
        done = [o for o in self.orders.values() if o.is_open]
        for o in done:
            self.cancel(o, now_ns)
        return done

    def open_orders(self) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.is_open]

    def has_open_orders(self) -> bool:
        return any(o.is_open or o.status == "PendingNew" for o in self._active())

    def _active(self) -> list[SimOrder]:
        """Orders not yet final (the only ones a venue step can change); prunes the rest."""
        self._live_ids = [i for i in self._live_ids if self.orders[i].status not in _FINAL]
        return [self.orders[i] for i in self._live_ids]


_WARM = False


def warm_up(tick_px: float, lot_qty: float) -> None:
    """Compile (or load from cache) every venue verb the matcher calls, on a throwaway venue over a
    tiny made-up book, so the first request or message of a session does not stall its event loop
    on the JIT (a stall turns the messages queued meanwhile into one burst)."""
    global _WARM
    if _WARM:
        return
    from mmbot.events import (
        BUY_EVENT,
        DEPTH_EVENT,
        EVENT_DTYPE,
        EXCH_EVENT,
        LOCAL_EVENT,
        SELL_EVENT,
        TRADE_EVENT,
    )

    flags = EXCH_EVENT | LOCAL_EVENT
    ev = np.zeros(3, EVENT_DTYPE)
    ev["ev"] = [
        DEPTH_EVENT | BUY_EVENT | flags,
        DEPTH_EVENT | SELL_EVENT | flags,
        TRADE_EVENT | SELL_EVENT | flags,
    ]
    ev["exch_ts"] = ev["local_ts"] = [1_000, 1_000, 2_000]
    bid = 1000 * tick_px
    ev["px"] = [bid, bid + tick_px, bid]
    ev["qty"] = [10 * lot_qty, 10 * lot_qty, lot_qty]
    v = sim.make_venue(ev[:2], sim.VenueConfig(tick_px=tick_px, lot_qty=lot_qty))
    sv.goto(v, 1_000)
    oid = sv.submit(v, 1, bid, lot_qty, sim.venue.TIF_GTX, sim.venue.ORD_LIMIT)
    sv.goto(v, 1_000)
    sv.modify(v, oid, bid, 2 * lot_qty)
    sv.goto(v, 1_000)
    sim.extend_venue(v, ev[2:])
    sv.goto(v, 2_000)
    sv.cancel(v, oid)
    sv.goto(v, 2_000)
    sv.exch_best_bid_px(v)
    _n_fills(v)
    _new_fills(v, 0)
    _slot_state(v, oid)
    _WARM = True


def _wall_ns() -> int:
    import time

    return time.time_ns()
