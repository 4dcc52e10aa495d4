"""The compiled verbs a strategy calls: time (elapse, goto, wait_next, feed), the local book
view, the exchange-side view, local trades, own orders and account, order actions, and the
trimmed results ``mmbot.sim.api.finish`` wraps.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mmbot.borrow import borrowed

from .clock import (
    advance,
)
from .codes import (
    _ACT_SENT,
    _I0,
    _OP_CANCEL,
    _OP_NEW,
    _OP_REPLACE,
    _REASON_NONE,
    ERR_BAD_PX,
    ERR_BAD_QTY,
    ERR_BAD_SIDE,
    ERR_BAD_TIF,
    ERR_NO_SLOT,
    ERR_NOT_LIVE,
    ERR_OFF_LOT,
    ERR_OFF_TICK,
    ERR_PAST,
    ERR_PENDING,
    I64_MAX,
    OK,
    ORD_LIMIT,
    ORD_MARKET,
    REQ_CANCEL,
    REQ_MODIFY,
    REQ_NEW,
    REQ_NONE,
    ST_FILLED,
    ST_LIVE,
    ST_NONE,
    ST_PENDING_NEW,
    TIF_GTC,
    TIF_IOC,
)
from .latency import (
    entry_latency,
)
from .recording import (
    push_action,
)
from .state import (
    DEPTH_SCAN_TICKS,
    contract_value,
    exch_mid,
    ix_of,
    mid_of,
    px_of,
    set_error,
)


@njit(cache=True)
def elapse(v, dt_ns):
    """Advance local time by ``dt_ns``; OK, or END_OF_DATA once no market data is left."""
    return advance(v, v.now + dt_ns, np.int64(0))  # non-literal: one compiled advance for all verbs


@njit(cache=True)
def goto(v, local_ts):
    """Advance local time to ``local_ts`` (no-op if already past); OK or END_OF_DATA."""
    return advance(v, max(local_ts, v.now), np.int64(0))


@njit(cache=True)
def wait_next(v, timeout_ns):
    """Advance to the next local feed event or order response, at most ``timeout_ns``.
    Returns WAIT_FEED, WAIT_RESPONSE, OK (timeout) or END_OF_DATA."""
    return advance(v, v.now + timeout_ns, np.int64(1))


@njit(cache=True)
def feed(v, ev, exch_idx, local_idx):
    """Continue the market with the next block of events (a live feed, a looped capture): books,
    orders, accounts and records carry over; ``exch_idx``/``local_idx`` as ``make_venue`` builds
    them. The current block must be used up (returns ERR_PENDING otherwise) and the new rows must
    not precede the venue's clock (ERR_PAST); on success OK. Only the data source changes: the
    per-event loop is the same ``advance``."""
    if v.ei < v.exch_idx.shape[0] or v.li < v.local_idx.shape[0]:
        return ERR_PENDING
    if exch_idx.shape[0] > 0 and ev[exch_idx[0]].exch_ts < v.now:
        return ERR_PAST
    if local_idx.shape[0] > 0 and ev[local_idx[0]].local_ts < v.now:
        return ERR_PAST
    v.n_exch_events += v.ei  # rows of the earlier blocks, for the stats
    v.n_local_events += v.li
    v.ev = ev
    v.exch_idx = exch_idx
    v.local_idx = local_idx
    v.ei = 0
    v.li = 0
    return OK


@njit(cache=True)
def now_ns(v):
    return v.now


@njit(cache=True)
def tick_px(v):
    return v.tick_px


@njit(cache=True)
def lot_qty(v):
    return v.lot_qty


# one book side's reads, for the local book (lbb/lba, lbid/lask) and the exchange's (xbb/xba, ...)
@njit(cache=True, inline="always")
def _bid_px(v, bb):
    """The price at bid index ``bb``; NaN when the side is empty (``bb`` < 0)."""
    return px_of(v, bb) if bb >= 0 else np.nan


@njit(cache=True, inline="always")
def _ask_px(v, ba):
    return px_of(v, ba) if ba < v.n_ticks else np.nan


@njit(cache=True, inline="always")
def _qty_at(v, bids, asks, side, px):
    ix = ix_of(v, px)
    if ix < 0 or ix >= v.n_ticks:
        return 0.0
    return bids[ix] if side > 0 else asks[ix]


@njit(cache=True, inline="always")
def _equity(v, cash, pos, mid):
    """``cash`` + ``pos`` x contract value at ``mid`` (``cash`` alone when flat)."""
    if pos == 0.0:
        return cash
    return cash + pos * contract_value(v, mid)


@njit(cache=True)
def best_bid_px(v):
    """NaN when the bid side is empty."""
    return _bid_px(v, v.lbb)


@njit(cache=True)
def best_ask_px(v):
    return _ask_px(v, v.lba)


@njit(cache=True)
def best_bid_qty(v):
    return v.lbid[v.lbb] if v.lbb >= 0 else 0.0


@njit(cache=True)
def best_ask_qty(v):
    return v.lask[v.lba] if v.lba < v.n_ticks else 0.0


@njit(cache=True)
def best_bid_tick(v):
    """Absolute tick (px / tick_px) of the local best bid; -1 when empty."""
    return v.lbb + v.tick_lo if v.lbb >= 0 else -1


@njit(cache=True)
def best_ask_tick(v):
    return v.lba + v.tick_lo if v.lba < v.n_ticks else -1


@njit(cache=True)
def mid_px(v):
    """Local mid; NaN unless both sides are present."""
    return mid_of(v, v.lbb, v.lba)


@njit(cache=True)
def qty_at_px(v, side, px):
    """Local book quantity at ``px`` on ``side`` (+1 bids / -1 asks); 0 outside the ladder."""
    return _qty_at(v, v.lbid, v.lask, side, px)


@njit(cache=True)
def qty_within_ticks(v, side, n_ticks):
    """Total local quantity on ``side`` at prices within ``n_ticks`` ticks of that side's touch
    (``n_ticks`` = 0: the touch only)."""
    # borrowed: a structref array read inside the loop costs an atomic refcount pair per level
    tot = 0.0
    if side > 0:
        if v.lbb < 0:
            return 0.0
        lbid = borrowed(v.lbid)
        lo = max(v.lbb - n_ticks, 0)
        for j in range(lo, v.lbb + 1):
            tot += lbid[j]
    else:
        if v.lba >= v.n_ticks:
            return 0.0
        lask = borrowed(v.lask)
        hi = min(v.lba + n_ticks, v.n_ticks - 1)
        for j in range(v.lba, hi + 1):
            tot += lask[j]
    return tot


@njit(cache=True)
def depth_levels(v, side, px_out, qty_out, n_levels):
    """The first ``n_levels`` non-empty local levels on ``side`` (best first) into ``px_out`` /
    ``qty_out``; NaN / 0 past the book. Scans at most ``DEPTH_SCAN_TICKS`` ticks from the touch."""
    k = 0
    n = v.n_ticks
    if side > 0:
        lbid = borrowed(v.lbid)
        j = v.lbb
        lo = max(j - DEPTH_SCAN_TICKS, 0)
        while j >= lo and k < n_levels and j >= 0:
            if lbid[j] > 0.0:
                px_out[k] = px_of(v, j)
                qty_out[k] = lbid[j]
                k += 1
            j -= 1
    else:
        lask = borrowed(v.lask)
        j = v.lba
        hi = min(j + DEPTH_SCAN_TICKS, n - 1)
        while j <= hi and k < n_levels and j < n:
            if lask[j] > 0.0:
                px_out[k] = px_of(v, j)
                qty_out[k] = lask[j]
                k += 1
            j += 1
    while k < n_levels:
        px_out[k] = np.nan
        qty_out[k] = 0.0
        k += 1


@njit(cache=True)
def exch_best_bid_px(v):
    return _bid_px(v, v.xbb)


@njit(cache=True)
def exch_best_ask_px(v):
    return _ask_px(v, v.xba)


@njit(cache=True)
def exch_mid_px(v):
    return exch_mid(v)


@njit(cache=True)
def exch_qty_at_px(v, side, px):
    return _qty_at(v, v.xbid, v.xask, side, px)


@njit(cache=True)
def trades_seen(v):
    """Count of market trades seen locally so far; trade k is ``local_trades(v)[k % TRADE_RING]``."""
    return v.n_trades


@njit(cache=True)
def local_book_version(v, side):
    """A count that every local book row moving ``side``'s touch or changing one of its levels
    within ``VIEW_BAND_TICKS`` of it bumps: between two equal counts, that side's touch .. touch
    -/+ VIEW_BAND_TICKS is unchanged."""
    return v.lbid_ver if side > 0 else v.lask_ver


@njit(cache=True)
def local_trades(v):
    return v.trades


@njit(cache=True)
def drain_trades(v):
    """(buy_qty, sell_qty, buy_count, sell_count) of trades seen locally since the previous drain
    (side = aggressor); resets the counters."""
    out = (v.dr_buy_qty, v.dr_sell_qty, v.dr_buy_n, v.dr_sell_n)
    v.dr_buy_qty = 0.0
    v.dr_sell_qty = 0.0
    v.dr_buy_n = 0
    v.dr_sell_n = 0
    return out


@njit(cache=True)
def orders(v):
    """The slot array (ORDER_DTYPE). Read-only by convention; ``status``/``req``/``px``/``leaves_qty``
    are the local view, ``ex_*``/``queue_ahead_qty`` the exchange's (simulation truth)."""
    return v.orders


@njit(cache=True)
def find_order(v, order_id):
    """Slot index holding ``order_id`` or -1."""
    slots = borrowed(v.orders)
    for s in range(slots.shape[0]):
        if slots[s].order_id == order_id:
            return s
    return -1


@njit(cache=True)
def open_order_count(v, side):
    """Orders on ``side`` (0 = both) that are pending-new or live in the local view."""
    c = 0
    slots = borrowed(v.orders)
    for s in range(slots.shape[0]):
        o = slots[s]
        if (o.status == ST_PENDING_NEW or o.status == ST_LIVE) and (side == 0 or o.side == side):
            c += 1
    return c


@njit(cache=True)
def inflight_count(v):
    """Requests sent whose answer has not reached the strategy yet."""
    return v.n_inflight


@njit(cache=True)
def position_qty(v):
    return v.lo_pos


@njit(cache=True)
def cash(v):
    return v.lo_cash


@njit(cache=True)
def fill_count(v):
    return v.lo_fills


@njit(cache=True)
def equity(v):
    """Local cash + position x contract value at the local mid (NaN if the local book has no mid)."""
    return _equity(v, v.lo_cash, v.lo_pos, mid_px(v))


@njit(cache=True)
def set_account(v, position_qty, cash):
    """Start both views' accounts from ``position_qty`` and ``cash`` (before any fill): a run that
    continues a position held earlier, whose cost is in ``cash``."""
    v.ex_pos = position_qty
    v.lo_pos = position_qty
    v.ex_cash = cash
    v.lo_cash = cash


@njit(cache=True)
def exch_position_qty(v):
    return v.ex_pos


@njit(cache=True)
def exch_equity(v):
    return _equity(v, v.ex_cash, v.ex_pos, exch_mid(v))


@njit(cache=True)
def _check_px_qty(v, px, qty, need_px):
    if not (qty > 0.0) or not np.isfinite(qty):
        set_error(v, np.int64(ERR_BAD_QTY), qty)
        return ERR_BAD_QTY
    q = qty / v.lot_qty
    if abs(q - np.round(q)) > 1e-6 * max(1.0, abs(q)):
        set_error(v, np.int64(ERR_OFF_LOT), qty)
        return ERR_OFF_LOT
    if need_px:
        if not (px > 0.0) or not np.isfinite(px):
            set_error(v, np.int64(ERR_BAD_PX), px)
            return ERR_BAD_PX
        t = px / v.tick_px
        if abs(t - np.round(t)) > 1e-6:
            set_error(v, np.int64(ERR_OFF_TICK), px)
            return ERR_OFF_TICK
    return 0


@njit(cache=True)
def _free_slot(v):
    for s in range(v.orders.shape[0]):
        o = v.orders[s]
        if o.status == ST_NONE and o.order_id == 0:
            return s
    for s in range(v.orders.shape[0]):
        o = v.orders[s]
        if (
            o.status >= ST_FILLED
            and o.req == REQ_NONE
            and o.req_arrive_ts == I64_MAX
            and o.n_resp_pending == 0
            and o.ex_status != ST_LIVE
        ):
            return s
    return -1


@njit(cache=True)
def _send(v, s):
    """Send the request order slot ``s`` now carries (its ``req`` is set): in flight from the
    current local time, at the exchange after the entry latency."""
    o = v.orders[s]
    v.n_inflight += 1
    o.req_sent_ts = v.now
    o.req_arrive_ts = v.now + entry_latency(v, v.now)
    o.req_seq = v.resp_seq  # one counter orders requests and responses
    v.resp_seq += 1
    if o.req_arrive_ts < v.next_req_ts:
        v.next_req_ts = o.req_arrive_ts


@njit(cache=True)
def _request_slot(v, order_id):
    """The slot of ``order_id`` when a cancel or modify may be sent for it now; else ERR_NOT_LIVE
    (unknown, or not live in the local view) or ERR_PENDING (a request already in flight)."""
    s = find_order(v, order_id)
    if s < 0:
        return ERR_NOT_LIVE
    o = v.orders[s]
    if o.req != REQ_NONE:
        return ERR_PENDING
    if o.status != ST_LIVE:
        return ERR_NOT_LIVE
    return s


@njit(cache=True)
def submit(v, side, px, qty, tif, ord_type):
    """Send a new order at the current local time; returns its order id (> 0) or a negative ERR_*.
    ``px`` is ignored for ORD_MARKET. It reaches the exchange after the entry latency."""
    if side != 1 and side != -1:
        set_error(v, np.int64(ERR_BAD_SIDE), side)
        return ERR_BAD_SIDE
    if tif < TIF_GTC or tif > TIF_IOC or ord_type < ORD_LIMIT or ord_type > ORD_MARKET:
        set_error(v, np.int64(ERR_BAD_TIF), tif * 10 + ord_type)
        return ERR_BAD_TIF
    rc = _check_px_qty(v, px, qty, ord_type != ORD_MARKET)
    if rc < 0:
        return rc
    s = _free_slot(v)
    if s < 0:
        v.n_no_slot += 1
        return ERR_NO_SLOT
    o = v.orders[s]
    oid = v.next_oid
    v.next_oid += 1
    px_r = px_of(v, ix_of(v, px)) if ord_type != ORD_MARKET else np.nan
    o.order_id = oid
    o.side = side
    o.tif = tif
    o.ord_type = ord_type
    o.status = ST_PENDING_NEW
    o.req = REQ_NEW
    _send(v, s)
    o.px = px_r
    o.qty = qty
    o.leaves_qty = qty
    o.exec_qty = 0.0
    o.create_local_ts = v.now
    o.req_px = px_r
    o.req_qty = qty
    o.last_resp_ts = 0
    o.n_resp_pending = 0
    o.ex_status = ST_NONE
    o.ex_ix = -1
    o.ex_px = px_r
    o.ex_leaves_qty = 0.0
    o.queue_ahead_qty = 0.0
    o.cum_trade_qty = 0.0
    o.live_exch_ts = 0
    o.live_slot = -1
    push_action(v, v.now, _I0, oid, _ACT_SENT, side, _OP_NEW, _REASON_NONE, px_r, qty, _I0)
    return oid


@njit(cache=True)
def cancel(v, order_id):
    """Request a cancel; 0 or ERR_NOT_LIVE / ERR_PENDING (one request per order in flight)."""
    s = _request_slot(v, order_id)
    if s < 0:
        return s
    o = v.orders[s]
    o.req = REQ_CANCEL
    _send(v, s)
    push_action(
        v,
        v.now,
        _I0,
        order_id,
        _ACT_SENT,
        o.side,
        _OP_CANCEL,
        _REASON_NONE,
        o.px,
        o.leaves_qty,
        _I0,
    )
    return 0


@njit(cache=True)
def modify(v, order_id, px, qty):
    """Request a cancel-replace to (px, qty); qty is the new open quantity. 0 or a negative ERR_*."""
    s = _request_slot(v, order_id)
    if s < 0:
        return s
    o = v.orders[s]
    rc = _check_px_qty(v, px, qty, True)
    if rc < 0:
        return rc
    px_r = px_of(v, ix_of(v, px))
    o.req = REQ_MODIFY
    o.req_px = px_r
    o.req_qty = qty
    _send(v, s)
    push_action(
        v, v.now, _I0, order_id, _ACT_SENT, o.side, _OP_REPLACE, _REASON_NONE, px_r, qty, _I0
    )
    return 0


@njit(cache=True)
def set_targets(v, bid_target_px, ask_target_px):
    """The strategy's current target prices (NaN = none); copied into each fill's ``target_px``."""
    v.tgt_bid = bid_target_px
    v.tgt_ask = ask_target_px


@njit(cache=True)
def record_action(v, kind, op, side, order_id, px, qty, reason):
    """Append an ACTION row at the current local time (guards: ACT_INTENDED / ACT_BLOCKED)."""
    push_action(v, v.now, _I0, order_id, kind, side, op, reason, px, qty, _I0)


@njit(cache=True)
def _records(v):
    return v.fills[: v.n_fills].copy(), v.actions[: v.n_actions].copy(), v.marks[: v.n_marks].copy()


@njit(cache=True)
def _stats(v):
    ints = np.array(
        [
            v.n_exch_events + v.ei,  # earlier blocks (feed) + this one
            v.n_local_events + v.li,
            v.n_rl_rejects,
            v.n_post_only_rejects,
            v.n_out_of_band,
            v.n_no_slot,
            v.ex_fills,
            v.lo_fills,
            v.err_code,
            v.err_ts,
            v.now,
            v.exch_now,
            v.li,
        ],
        np.int64,
    )
    flts = np.array(
        [
            exch_mid(v),
            v.ex_cash,
            v.ex_pos,
            v.lo_cash,
            v.lo_pos,
            v.err_val,
            mid_px(v),
            exch_equity(v),
        ],
        np.float64,
    )
    return ints, flts


@njit(cache=True)
def local_indices(v):
    return v.local_idx
