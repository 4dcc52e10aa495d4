"""Matching against the market: the live list of resting orders, fills (accounts, FILL rows,
responses), trades through or at our price, the book moving through a resting order, and
taker orders walking the exchange book.
"""

from __future__ import annotations

from numba import njit

from .codes import (
    _ACT_FILLED,
    _FALSE,
    _I0,
    _I1,
    _OP_NEW,
    _R_FILL,
    _REASON_NONE,
    _TRUE,
    ST_FILLED,
    ST_LIVE,
)
from .queue import (
    queue_fillable,
)
from .recording import (
    push_action,
    push_mark,
    with_room,
)
from .responses import (
    push_response,
)
from .state import (
    contract_value,
    exch_mid,
    px_of,
)


@njit(cache=True)
def live_bounds(v):
    """Ladder ranges of resting orders per side: the hot loop skips matching for depth updates
    outside them."""
    blo = v.n_ticks
    bhi = -1
    alo = v.n_ticks
    ahi = -1
    for k in range(v.n_live):
        o = v.orders[v.live[k]]
        if o.side > 0:
            blo = min(blo, o.ex_ix)
            bhi = max(bhi, o.ex_ix)
        else:
            alo = min(alo, o.ex_ix)
            ahi = max(ahi, o.ex_ix)
    v.live_bid_lo = blo
    v.live_bid_hi = bhi
    v.live_ask_lo = alo
    v.live_ask_hi = ahi


@njit(cache=True)
def live_add(v, s):
    v.live[v.n_live] = s
    v.orders[s].live_slot = v.n_live
    v.n_live += 1
    live_bounds(v)


@njit(cache=True)
def live_remove(v, s):
    k = v.orders[s].live_slot
    if k < 0:
        return
    last = v.live[v.n_live - 1]
    v.live[k] = last
    v.orders[last].live_slot = k
    v.live[v.n_live - 1] = -1
    v.n_live -= 1
    v.orders[s].live_slot = -1
    live_bounds(v)


@njit(cache=True)
def fill_order(v, s, px, qty, maker, ex_ts, clears_req):
    """Execute ``qty`` of slot ``s`` at ``px`` at exchange time ``ex_ts``: accounts, records, response."""
    o = v.orders[s]
    side = o.side
    fee_rate = v.maker_fee_rate if maker else v.taker_fee_rate
    val = contract_value(v, px)
    fee = fee_rate * abs(val) * qty
    v.ex_pos += side * qty
    v.ex_cash -= side * val * qty + fee
    v.ex_fills += 1
    o.ex_leaves_qty -= qty
    done = o.ex_leaves_qty <= v.lot_qty * 1e-9
    if done:
        o.ex_leaves_qty = 0.0
        o.ex_status = ST_FILLED
        live_remove(v, s)
    age = ex_ts - o.live_exch_ts if maker else 0
    rt = push_response(v, s, ex_ts, _R_FILL, clears_req, px, qty, fee)
    v.fills = with_room(v.fills, v.n_fills)
    f = v.fills[v.n_fills]
    f.exch_ts = ex_ts
    f.local_ts = rt
    f.order_id = o.order_id
    f.side = side
    f.maker = 1 if maker else 0
    f.px = px
    f.qty = qty
    f.fee = fee
    f.fee_rate = fee_rate
    f.mid_px = exch_mid(v)
    f.target_px = v.tgt_bid if side > 0 else v.tgt_ask
    f.order_age_ns = age
    f.position_qty = v.ex_pos
    v.n_fills += 1
    push_mark(v, ex_ts, exch_mid(v))
    if done:
        push_action(
            v, rt, ex_ts, o.order_id, _ACT_FILLED, side, _OP_NEW, _REASON_NONE, o.ex_px, o.qty, age
        )
    return done


@njit(cache=True)
def on_trade(v, aggr_side, ix, qty, ex_ts):
    """A market trade at the exchange: trades through our price fill us; at our price they consume
    the queue ahead first."""
    k = 0
    while k < v.n_live:
        s = v.live[k]
        o = v.orders[s]
        if o.side == -aggr_side:
            through = (o.side > 0 and o.ex_ix > ix) or (o.side < 0 and o.ex_ix < ix)
            if through:
                fill_order(v, s, o.ex_px, o.ex_leaves_qty, _TRUE, ex_ts, _I0)
                continue  # slot removed from the live list; k now holds another order
            if o.ex_ix == ix:
                o.queue_ahead_qty -= qty
                o.cum_trade_qty += qty
                can = queue_fillable(v, s)
                if can > 0.0:
                    if v.partial:
                        ex_qty = min(can, o.ex_leaves_qty)
                        o.queue_ahead_qty = 0.0  # what traded through us is used up
                        if fill_order(v, s, o.ex_px, ex_qty, _TRUE, ex_ts, _I0):
                            continue
                    else:
                        fill_order(v, s, o.ex_px, o.ex_leaves_qty, _TRUE, ex_ts, _I0)
                        continue
        k += 1


@njit(cache=True)
def cross_check(v, ex_ts):
    """The exchange book moved through resting orders: they fill in full at their price."""
    k = 0
    while k < v.n_live:
        s = v.live[k]
        o = v.orders[s]
        if (o.side > 0 and v.xba < v.n_ticks and o.ex_ix >= v.xba and v.xba < o.cross_ix) or (
            o.side < 0 and v.xbb >= 0 and o.ex_ix <= v.xbb and v.xbb > o.cross_ix
        ):
            fill_order(v, s, o.ex_px, o.ex_leaves_qty, _TRUE, ex_ts, _I0)
            continue
        k += 1


@njit(cache=True)
def take_liquidity(v, s, limit_ix, ex_ts):
    """Walk the opposite side of the exchange book up to ``limit_ix``; one fill row per level.
    The book itself is not depleted (the feed stays the truth). Returns True when fully filled."""
    o = v.orders[s]
    n = v.n_ticks
    # a buy walks the asks upwards from the best ask, a sell the bids downwards from the best bid
    step = 1 if o.side > 0 else -1
    book = v.xask if o.side > 0 else v.xbid
    j = v.xba if o.side > 0 else v.xbb
    first = True
    while 0 <= j < n and (limit_ix - j) * step >= 0 and o.ex_leaves_qty > 0.0:
        q = book[j]
        if q > 0.0:
            if fill_order(
                v, s, px_of(v, j), min(q, o.ex_leaves_qty), _FALSE, ex_ts, _I1 if first else _I0
            ):
                return True
            first = False
        j += step
    return False


@njit(cache=True)
def rest_order(v, s, ex_ts):
    """Make slot ``s`` a resting order at its ex_ix with a fresh queue position."""
    o = v.orders[s]
    o.ex_status = ST_LIVE
    o.live_exch_ts = ex_ts
    o.queue_ahead_qty = v.xbid[o.ex_ix] if o.side > 0 else v.xask[o.ex_ix]
    o.cum_trade_qty = 0.0
    o.cross_ix = v.n_ticks + 1 if o.side > 0 else -2
    if o.live_slot < 0:
        live_add(v, s)


@njit(cache=True)
def crosses_book(v, side, ix):
    if side > 0:
        return v.xba < v.n_ticks and ix >= v.xba
    return v.xbb >= 0 and ix <= v.xbb
