"""The exchange's handling of order requests when they arrive: new (rest, take, expire or
reject), cancel, cancel-replace, the sliding-window rate limit, and request arrival order.
"""

from __future__ import annotations

from numba import njit

from .codes import (
    _ACT_ACKED,
    _ACT_CANCELLED,
    _ACT_EXPIRED,
    _ACT_REJECTED,
    _F0,
    _I0,
    _I1,
    _OP_CANCEL,
    _OP_NEW,
    _OP_REPLACE,
    _R_ACK_MODIFY,
    _R_ACK_NEW,
    _R_CANCELLED,
    _R_EXPIRED,
    _R_REJECT,
    _REASON_NONE,
    _REASON_POST_ONLY,
    _REASON_PRICE_BAND,
    _REASON_RATE_LIMIT,
    _REASON_UNKNOWN_ORDER,
    I64_MAX,
    ORD_MARKET,
    REQ_CANCEL,
    REQ_MODIFY,
    REQ_NEW,
    ST_CANCELLED,
    ST_EXPIRED,
    ST_LIVE,
    ST_REJECTED,
    TIF_GTX,
    TIF_IOC,
)
from .matching import (
    crosses_book,
    live_bounds,
    live_remove,
    rest_order,
    take_liquidity,
)
from .recording import (
    push_action,
)
from .responses import (
    push_response,
)
from .state import (
    ix_of,
)


@njit(cache=True)
def rate_limited(v, ex_ts):
    """Sliding 1 s window of counted requests; returns True (and counts) when this one is excess."""
    if v.rate_limit <= 0:
        return False
    oldest = v.rl_ring[v.rl_head]  # the request rate_limit requests ago
    if oldest > ex_ts - 1_000_000_000:
        v.n_rl_rejects += 1
        return True
    v.rl_ring[v.rl_head] = ex_ts
    v.rl_head = (v.rl_head + 1) % v.rate_limit
    return False


@njit(cache=True)
def _respond(v, s, ex_ts, r_kind, clears_req, act_kind, op, reason, px, qty, age_ns):
    """Queue a non-fill response for slot ``s`` and write its ACTION row, stamped with the local
    time the strategy learns it."""
    o = v.orders[s]
    rt = push_response(v, s, ex_ts, r_kind, clears_req, _F0, _F0, _F0)
    push_action(v, rt, ex_ts, o.order_id, act_kind, o.side, op, reason, px, qty, age_ns)


@njit(cache=True)
def reject_request(v, s, ex_ts, op, reason, px, qty):
    _respond(v, s, ex_ts, _R_REJECT, _I1, _ACT_REJECTED, op, reason, px, qty, _I0)


@njit(cache=True)
def _reject_new(v, s, ex_ts, reason):
    o = v.orders[s]
    o.ex_status = ST_REJECTED
    reject_request(v, s, ex_ts, _OP_NEW, reason, o.req_px, o.req_qty)


@njit(cache=True)
def _answer_new(v, s, ex_ts, r_kind, act_kind):
    """Answer a new order with its remaining quantity; the answer clears the request unless a fill
    of it already did."""
    o = v.orders[s]
    first = _I1 if o.ex_leaves_qty == o.req_qty else _I0
    _respond(
        v, s, ex_ts, r_kind, first, act_kind, _OP_NEW, _REASON_NONE, o.req_px, o.ex_leaves_qty, _I0
    )


@njit(cache=True)
def _expire_new(v, s, ex_ts):
    """An IOC or market order's remainder expires (answers the request unless fills did first)."""
    o = v.orders[s]
    o.ex_status = ST_EXPIRED
    _answer_new(v, s, ex_ts, _R_EXPIRED, _ACT_EXPIRED)


@njit(cache=True)
def exch_new(v, s, ex_ts):
    """A new order arrives: rejected (rate limit, price band, post-only cross), a market order
    walks the book, a crossing GTC/IOC takes first; the remainder rests (GTC) or expires (IOC)."""
    o = v.orders[s]
    o.ex_px = o.req_px
    o.ex_leaves_qty = o.req_qty
    if rate_limited(v, ex_ts):
        _reject_new(v, s, ex_ts, _REASON_RATE_LIMIT)
        return
    if o.ord_type == ORD_MARKET:
        o.ex_ix = -1
        o.live_exch_ts = ex_ts
        if not take_liquidity(v, s, v.n_ticks if o.side > 0 else -1, ex_ts):
            _expire_new(v, s, ex_ts)
        return
    ix = ix_of(v, o.req_px)
    if ix < 0 or ix >= v.n_ticks:
        _reject_new(v, s, ex_ts, _REASON_PRICE_BAND)
        return
    o.ex_ix = ix
    o.live_exch_ts = ex_ts
    crossed = crosses_book(v, o.side, ix)
    if crossed:
        if o.tif == TIF_GTX:
            v.n_post_only_rejects += 1
            _reject_new(v, s, ex_ts, _REASON_POST_ONLY)
            return
        if take_liquidity(v, s, ix, ex_ts):
            return  # filled in full
    if o.tif == TIF_IOC:
        _expire_new(v, s, ex_ts)
        return
    rest_order(v, s, ex_ts)
    if crossed:  # the remainder rests at its price; the levels it took still show in the feed
        o.cross_ix = v.xba if o.side > 0 else v.xbb
    _answer_new(v, s, ex_ts, _R_ACK_NEW, _ACT_ACKED)


@njit(cache=True)
def exch_cancel(v, s, ex_ts):
    o = v.orders[s]
    if o.ex_status != ST_LIVE:
        reject_request(v, s, ex_ts, _OP_CANCEL, _REASON_UNKNOWN_ORDER, o.ex_px, _F0)
        return
    live_remove(v, s)
    o.ex_status = ST_CANCELLED
    age = ex_ts - o.live_exch_ts
    _respond(
        v, s, ex_ts, _R_CANCELLED, _I1, _ACT_CANCELLED, _OP_CANCEL, _REASON_NONE, o.ex_px,
        o.ex_leaves_qty, age,
    )  # fmt: skip


@njit(cache=True)
def exch_modify(v, s, ex_ts):
    """Cancel-replace: a new price (or a larger size) loses the queue position; a smaller size at
    the same price keeps it. A post-only replace that would cross removes the order (rejected)."""
    o = v.orders[s]
    if o.ex_status != ST_LIVE:
        reject_request(v, s, ex_ts, _OP_REPLACE, _REASON_UNKNOWN_ORDER, o.req_px, o.req_qty)
        return
    if rate_limited(v, ex_ts):
        reject_request(v, s, ex_ts, _OP_REPLACE, _REASON_RATE_LIMIT, o.req_px, o.req_qty)
        return
    ix = ix_of(v, o.req_px)
    if ix < 0 or ix >= v.n_ticks:
        reject_request(v, s, ex_ts, _OP_REPLACE, _REASON_PRICE_BAND, o.req_px, o.req_qty)
        return
    if crosses_book(v, o.side, ix):
        # GTX: the exchange drops the order; GTC/IOC: replace as a taker is not simulated, same outcome
        age = ex_ts - o.live_exch_ts
        live_remove(v, s)
        o.ex_status = ST_REJECTED
        if o.tif == TIF_GTX:
            v.n_post_only_rejects += 1
        _respond(
            v, s, ex_ts, _R_REJECT, _I1, _ACT_REJECTED, _OP_REPLACE, _REASON_POST_ONLY, o.req_px,
            o.req_qty, age,
        )  # fmt: skip
        return
    keep_queue = ix == o.ex_ix and o.req_qty <= o.ex_leaves_qty
    o.ex_px = o.req_px
    o.ex_leaves_qty = o.req_qty
    if not keep_queue:
        _requeue(v, s, ix, ex_ts)
    _respond(
        v, s, ex_ts, _R_ACK_MODIFY, _I1, _ACT_ACKED, _OP_REPLACE, _REASON_NONE, o.req_px,
        o.req_qty, _I0,
    )  # fmt: skip


@njit(cache=True)
def _requeue(v, s, ix, ex_ts):
    """A replaced order moves to ladder index ``ix`` at the back of its queue."""
    o = v.orders[s]
    o.ex_ix = ix
    o.live_exch_ts = ex_ts
    o.queue_ahead_qty = v.xbid[ix] if o.side > 0 else v.xask[ix]
    o.cum_trade_qty = 0.0
    o.cross_ix = v.n_ticks + 1 if o.side > 0 else -2
    live_bounds(v)


@njit(cache=True)
def recompute_next_req(v):
    t = I64_MAX
    for s in range(v.orders.shape[0]):
        a = v.orders[s].req_arrive_ts
        if a < t:
            t = a
    v.next_req_ts = t


@njit(cache=True)
def process_request(v):
    """Process the earliest request arriving at the exchange (ties: the one sent first)."""
    ts = v.next_req_ts
    s_hit = -1
    seq = I64_MAX
    for s in range(v.orders.shape[0]):
        if v.orders[s].req_arrive_ts == ts and v.orders[s].req_seq < seq:
            s_hit = s
            seq = v.orders[s].req_seq
    o = v.orders[s_hit]
    o.req_arrive_ts = I64_MAX
    v.exch_now = ts
    r = o.req
    if r == REQ_NEW:
        exch_new(v, s_hit, ts)
    elif r == REQ_CANCEL:
        exch_cancel(v, s_hit, ts)
    elif r == REQ_MODIFY:
        exch_modify(v, s_hit, ts)
    recompute_next_req(v)
