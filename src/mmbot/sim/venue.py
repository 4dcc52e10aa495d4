"""The compiled simulated venue, one import away: ``from mmbot.sim import venue as sv``.

The venue is split by concept around one seam, the ``Venue`` structref (``state``); each module
owns one part and works on that state:

- ``codes``     sides, time in force, order status, results, errors, response kinds
- ``state``     the structref layout, record layouts, construction, price <-> tick, contract value
- ``latency``   entry / response latency (constant or a time table)
- ``queue``     queue-position models of resting orders
- ``matching``  the live list, fills, trades and book moves through resting orders, taker walks
- ``exchange``  requests arriving at the exchange: new / cancel / modify, rate limit
- ``responses`` exchange -> local responses with latency, delivered to the local view
- ``recording`` ACTION / MARK buffers
- ``clock``     event indexing, one market event to a book, the time-ordered merge loop (the
                depth rules of both books are ``mmbot.book``'s ladder)
- ``verbs``     what a strategy calls (time, views, orders, account, actions, results)

This module re-exports the public names (and the two result readers ``mmbot.sim.api`` uses) so
``sv.submit``, ``sv.ST_LIVE`` and the like keep working; new code may import from the parts.
Everything here is ``@njit(cache=True)``; the Python entry points (``make_venue``, ``finish``)
live in ``mmbot.sim.api``.
"""

# ruff: noqa: F405
from __future__ import annotations

from .clock import (
    scan_events,
)

# every code comes from .codes (its names are written once, there); __all__ says which are public
from .codes import *  # noqa: F403
from .state import (
    DEPTH_SCAN_TICKS,
    ORDER_DTYPE,
    RESP_DTYPE,
    TRADE_DTYPE,
    TRADE_RING,
    VENUE_TYPE,
    VIEW_BAND_TICKS,
    Venue,
    VenueType,
    contract_value,
    new_venue,
)
from .verbs import (
    _records,
    _stats,
    best_ask_px,
    best_ask_qty,
    best_ask_tick,
    best_bid_px,
    best_bid_qty,
    best_bid_tick,
    cancel,
    cash,
    depth_levels,
    drain_trades,
    elapse,
    equity,
    exch_best_ask_px,
    exch_best_bid_px,
    exch_equity,
    exch_mid_px,
    exch_position_qty,
    exch_qty_at_px,
    feed,
    fill_count,
    find_order,
    goto,
    inflight_count,
    local_book_version,
    local_indices,
    local_trades,
    lot_qty,
    mid_px,
    modify,
    now_ns,
    open_order_count,
    orders,
    position_qty,
    qty_at_px,
    qty_within_ticks,
    record_action,
    set_targets,
    submit,
    tick_px,
    trades_seen,
    wait_next,
)

__all__ = [
    "BUY",
    "SELL",
    "TIF_GTC",
    "TIF_GTX",
    "TIF_IOC",
    "ORD_LIMIT",
    "ORD_MARKET",
    "ST_NONE",
    "ST_PENDING_NEW",
    "ST_LIVE",
    "ST_FILLED",
    "ST_CANCELLED",
    "ST_REJECTED",
    "ST_EXPIRED",
    "REQ_NONE",
    "REQ_NEW",
    "REQ_CANCEL",
    "REQ_MODIFY",
    "OK",
    "WAIT_FEED",
    "WAIT_RESPONSE",
    "END_OF_DATA",
    "ERR_NO_SLOT",
    "ERR_BAD_QTY",
    "ERR_OFF_TICK",
    "ERR_PENDING",
    "ERR_NOT_LIVE",
    "ERR_BAD_SIDE",
    "ERR_BAD_PX",
    "ERR_OFF_LOT",
    "ERR_BAD_TIF",
    "ERR_PAST",
    "R_ACK_NEW",
    "R_ACK_MODIFY",
    "R_REJECT",
    "R_CANCELLED",
    "R_FILL",
    "R_EXPIRED",
    "I64_MAX",
    "ORDER_DTYPE",
    "RESP_DTYPE",
    "TRADE_DTYPE",
    "TRADE_RING",
    "DEPTH_SCAN_TICKS",
    "VIEW_BAND_TICKS",
    "VenueType",
    "Venue",
    "VENUE_TYPE",
    "new_venue",
    "contract_value",
    "scan_events",
    "elapse",
    "goto",
    "wait_next",
    "feed",
    "now_ns",
    "tick_px",
    "lot_qty",
    "best_bid_px",
    "best_ask_px",
    "best_bid_qty",
    "best_ask_qty",
    "best_bid_tick",
    "best_ask_tick",
    "mid_px",
    "qty_at_px",
    "qty_within_ticks",
    "depth_levels",
    "exch_best_bid_px",
    "exch_best_ask_px",
    "exch_mid_px",
    "exch_qty_at_px",
    "trades_seen",
    "local_trades",
    "local_book_version",
    "drain_trades",
    "orders",
    "find_order",
    "open_order_count",
    "inflight_count",
    "position_qty",
    "cash",
    "fill_count",
    "equity",
    "exch_position_qty",
    "exch_equity",
    "submit",
    "cancel",
    "modify",
    "set_targets",
    "record_action",
    "_records",
    "_stats",
    "local_indices",
]
