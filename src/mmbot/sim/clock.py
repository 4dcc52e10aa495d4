"""Event time: indexing the events by exchange and local time, applying one market event to the
exchange or local book, and the merge loop that advances the venue to a target time in
hftbacktest's tie order.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mmbot import events as ev_
from mmbot.book import (
    ask_update,
    bid_update,
    clear_side,
)
from mmbot.borrow import borrowed

from .codes import (
    _FALSE,
    _I1,
    _IM1,
    END_OF_DATA,
    I64_MAX,
    OK,
    WAIT_FEED,
    WAIT_RESPONSE,
)
from .exchange import (
    process_request,
)
from .matching import (
    cross_check,
    on_trade,
)
from .queue import (
    depth_at_our_level,
)
from .recording import (
    maybe_mark,
    push_mark,
    put_mark,
)
from .responses import (
    apply_response,
)
from .state import (
    TRADE_RING,
    VIEW_BAND_TICKS,
    ix_of,
    ladder_ix,
    ladder_mid,
)


@njit(cache=True)
def scan_events(ev):
    """One pass over the events for make_venue: (exch_idx, local_idx, first row where the exchange
    time decreases or -1, local rows already in local_ts order?, min and max traded px)."""
    n = ev.shape[0]
    exch_idx = np.empty(n, np.int64)
    local_idx = np.empty(n, np.int64)
    ne = 0
    nl = 0
    bad = -1
    last_e = -(1 << 62)
    last_l = -(1 << 62)
    sorted_l = True
    lo = np.inf
    hi = -np.inf
    both = np.uint64(ev_.EXCH_EVENT | ev_.LOCAL_EVENT)
    for i in range(n):
        f = ev[i].ev
        if (f & both) == 0:
            f = f | both  # unflagged rows count as both
        if f & np.uint64(ev_.EXCH_EVENT):
            t = ev[i].exch_ts
            if t < last_e and bad < 0:
                bad = i
            last_e = t
            exch_idx[ne] = i
            ne += 1
        if f & np.uint64(ev_.LOCAL_EVENT):
            t = ev[i].local_ts
            if t < last_l:
                sorted_l = False
            last_l = t
            local_idx[nl] = i
            nl += 1
        if (f & np.uint64(0xFF)) == ev_.TRADE_EVENT:
            p = ev[i].px
            if p > 0.0 and p < np.inf:
                lo = min(lo, p)
                hi = max(hi, p)
    return exch_idx[:ne], local_idx[:nl], bad, sorted_l, lo, hi


@njit(cache=True, forceinline=True)
def _side_of(evv):
    """The row's side: 1 buy, -1 sell, 0 none."""
    return 1 if (evv & ev_.BUY_EVENT) else (-1 if (evv & ev_.SELL_EVENT) else 0)


@njit(cache=True)
def process_exch(v, evv, ex_ts, px, qty, xbid, xask, inv_tick, tick_lo, n):
    """One exchange-side market event. Arrays are passed in (not read from ``v``) because every
    structref array read costs an atomic refcount pair in the hot loop."""
    kind = evv & 0xFF
    side = _side_of(evv)
    if kind == ev_.DEPTH_EVENT or kind == ev_.DEPTH_SNAPSHOT_EVENT or kind == ev_.DEPTH_BBO_EVENT:  # noqa: SIM109 (scalar compares in the hot loop)
        ix = np.int64(np.floor(px * inv_tick + 0.5)) - tick_lo
        if ix < 0 or ix >= n:
            v.n_out_of_band += 1
            return
        bbo = kind == ev_.DEPTH_BBO_EVENT
        prev_bb = v.xbb
        prev_ba = v.xba
        if side > 0:
            prev_qty = xbid[ix]
            v.xbb, v.xba = bid_update(xbid, xask, prev_bb, prev_ba, n, ix, qty, bbo)
            if v.n_live > 0:
                depth_at_our_level(v, _I1, ix, prev_qty, qty)
        elif side < 0:
            prev_qty = xask[ix]
            v.xbb, v.xba = ask_update(xbid, xask, prev_bb, prev_ba, n, ix, qty, bbo)
            if v.n_live > 0:
                depth_at_our_level(v, _IM1, ix, prev_qty, qty)
        if v.n_live > 0 and (v.xbb > prev_bb or v.xba < prev_ba):
            cross_check(v, ex_ts)
        if v.xbb != v.mark_bb or v.xba != v.mark_ba:
            maybe_mark(v, ex_ts)
    elif kind == ev_.TRADE_EVENT:
        if v.n_live > 0 and side != 0:
            ix = ix_of(v, px)
            on_trade(v, side, ix, qty, ex_ts)
    elif kind == ev_.DEPTH_CLEAR_EVENT:
        ix = ix_of(v, px) if px > 0.0 else -1
        v.xbb, v.xba = clear_side(xbid, xask, v.xbb, v.xba, n, side, ix)
        maybe_mark(v, ex_ts)


@njit(cache=True)
def process_local(v, evv, px, qty, lbid, lask, inv_tick, tick_lo, n):
    """One local feed row of the kinds `merge_market` does not apply inline (BBO and clear rows;
    depth, snapshot and trade rows take its inline paths)."""
    kind = evv & 0xFF
    side = _side_of(evv)
    if kind == ev_.DEPTH_EVENT or kind == ev_.DEPTH_SNAPSHOT_EVENT or kind == ev_.DEPTH_BBO_EVENT:  # noqa: SIM109 (scalar compares in the hot loop)
        ix = np.int64(np.floor(px * inv_tick + 0.5)) - tick_lo
        if ix < 0 or ix >= n:
            return
        bbo = kind == ev_.DEPTH_BBO_EVENT
        v.lbid_ver += 1
        v.lask_ver += 1
        if side > 0:
            v.lbb, v.lba = bid_update(lbid, lask, v.lbb, v.lba, n, ix, qty, bbo)
        elif side < 0:
            v.lbb, v.lba = ask_update(lbid, lask, v.lbb, v.lba, n, ix, qty, bbo)
    elif kind == ev_.DEPTH_CLEAR_EVENT:
        ix = ix_of(v, px) if px > 0.0 else -1
        v.lbid_ver += 1
        v.lask_ver += 1
        v.lbb, v.lba = clear_side(lbid, lask, v.lbb, v.lba, n, side, ix)


@njit(cache=True)
def advance(v, target, wait):
    """Process everything with time <= target in time order; at equal times (as hftbacktest's
    event set): local data, then order responses, then exchange data, then order arrivals at the
    exchange. ``wait`` = 1 stops after the last row of the first local feed message
    (all rows sharing its local_ts) or after a response. Returns OK / WAIT_FEED / WAIT_RESPONSE /
    END_OF_DATA."""
    while True:
        if merge_market(v, target, wait):
            return WAIT_FEED
        to = v.next_req_ts
        tr = v.next_resp_ts
        if _next_exch_ts(v) == I64_MAX and _next_local_ts(v) == I64_MAX:
            return _drain_orders(v, target)
        if min(to, tr) > target:
            v.now = target
            return OK
        # one order event (a response first at a tie)
        if to < tr:
            process_request(v)
        else:
            apply_response(v)
            if wait:
                v.now = tr
                return WAIT_RESPONSE


@njit(cache=True)
def _next_exch_ts(v):
    return v.ev[v.exch_idx[v.ei]].exch_ts if v.ei < v.exch_idx.shape[0] else I64_MAX


@njit(cache=True)
def _next_local_ts(v):
    return v.ev[v.local_idx[v.li]].local_ts if v.li < v.local_idx.shape[0] else I64_MAX


@njit(cache=True)
def _drain_orders(v, target):
    """No market data left: deliver what is in flight up to ``target``, then report the end."""
    while v.next_req_ts <= target or v.next_resp_ts <= target:
        if v.next_req_ts < v.next_resp_ts:
            process_request(v)
        else:
            apply_response(v)
    if target > v.now:
        v.now = target
    return END_OF_DATA


@njit(cache=True, forceinline=True)
def _order_bounds(v):
    """The merge loop's copy of the order state: (next request, next response, the earlier of
    them, the live bid / ask tick ranges)."""
    to, tr = v.next_req_ts, v.next_resp_ts
    return to, tr, min(to, tr), v.live_bid_lo, v.live_bid_hi, v.live_ask_lo, v.live_ask_hi


@njit(cache=True, forceinline=True)
def _fast_depth_ix(evv, px, inv_tick, tick_lo, blo, bhi, alo, ahi):
    """(fast?, tick index) of an exchange row: a depth / snapshot row away from our resting orders
    takes the inline path; a level holding one of them needs the queue model (``process_exch``)."""
    kind = evv & 0xFF
    if kind != ev_.DEPTH_EVENT and kind != ev_.DEPTH_SNAPSHOT_EVENT:
        return False, np.int64(0)
    ix = np.int64(np.floor(px * inv_tick + 0.5)) - tick_lo
    if evv & ev_.BUY_EVENT:
        return ix < blo or ix > bhi, ix
    return ix < alo or ix > ahi, ix


@njit(cache=True, forceinline=True)
def _trade_misses(evv, px, tick_px, tick_lo, bhi, alo):
    """True when a market trade cannot reach a resting order (``on_trade`` would change nothing):
    a buy below our lowest ask, a sell above our highest bid, a trade with no side. The tick
    index is ``ix_of``'s (`ladder_ix`), so the test and ``on_trade`` agree on every row."""
    ix = ladder_ix(px, tick_px, tick_lo)
    if evv & ev_.BUY_EVENT:
        return ix < alo
    if evv & ev_.SELL_EVENT:
        return ix > bhi
    return True


@njit(cache=True, forceinline=True)
def _band_depth(kind, fast):
    """A depth / snapshot row in the live band (``_fast_depth_ix`` said not fast)."""
    return not fast and (kind == ev_.DEPTH_EVENT or kind == ev_.DEPTH_SNAPSHOT_EVENT)  # noqa: SIM109


@njit(cache=True, forceinline=True)
def _no_order_at(live, orders, n_live, evv, ix):
    """True when no resting order of the row's side sits at ladder index ``ix``: a depth row in
    the live band but off our levels leaves every queue position as it is."""
    side = _side_of(evv)
    if side == 0:
        return False
    for k in range(n_live):
        o = orders[live[k]]
        if o.side == side and o.ex_ix == ix:
            return False
    return True


@njit(cache=True, forceinline=True)
def _put_trade(t, evv, local_ts, px, qty):
    """A local trade row in the venue's trade ring; returns the aggressor side."""
    side = _side_of(evv)
    t.local_ts = local_ts
    t.px = px
    t.qty = qty
    t.side = side
    return side


@njit(cache=True, forceinline=True)
def _exch_depth(xbid, xask, xbb, xba, n, ix, evv, qty):
    """The inline path's level update on the exchange book; returns (xbb, xba, whether the level
    is outside the ladder). The venue is not an argument: handing a structref to a function,
    even an inlined one, costs an atomic reference-count pair, once per market row here."""
    if ix < 0 or ix >= n:
        return xbb, xba, True
    if evv & ev_.BUY_EVENT:
        xbb, xba = bid_update(xbid, xask, xbb, xba, n, ix, qty, _FALSE)
    elif evv & ev_.SELL_EVENT:
        xbb, xba = ask_update(xbid, xask, xbb, xba, n, ix, qty, _FALSE)
    return xbb, xba, False


@njit(cache=True, forceinline=True)
def _local_depth(lbid, lask, lbb, lba, vbid, vask, row, inv_tick, tick_lo, n):
    """A local depth / snapshot ``row`` on the local book; returns (lbb, lba, bid version, ask
    version): a side's version moves when its view band or best changes."""
    evv, qty = row.ev, row.qty
    ix = np.int64(np.floor(row.px * inv_tick + 0.5)) - tick_lo
    if ix < 0 or ix >= n:
        return lbb, lba, vbid, vask
    pbb, pba = lbb, lba
    if evv & ev_.BUY_EVENT:
        lbb, lba = bid_update(lbid, lask, lbb, lba, n, ix, qty, _FALSE)
        if ix >= lbb - VIEW_BAND_TICKS or lbb != pbb:
            vbid += 1
        if lba != pba:  # a crossing bid moved the best ask
            vask += 1
    elif evv & ev_.SELL_EVENT:
        lbb, lba = ask_update(lbid, lask, lbb, lba, n, ix, qty, _FALSE)
        if ix <= lba + VIEW_BAND_TICKS or lba != pba:
            vask += 1
        if lbb != pbb:
            vbid += 1
    return lbb, lba, vbid, vask


@njit(cache=True)
def merge_market(v, target, wait):
    """Apply market data in time order up to the next order event (ties: see ``advance``) or
    ``target``; returns True when ``wait`` stopped it after a whole local feed message.

    Speed: both books' best indices and the order state stay in locals (written back before
    anything else reads them); depth rows away from resting orders take the inline path."""
    ev, exch_idx, local_idx = v.ev, v.exch_idx, v.local_idx
    # the books are the state's for the whole call: borrowed views skip reference counting
    xbid, xask = borrowed(v.xbid), borrowed(v.xask)
    lbid, lask = borrowed(v.lbid), borrowed(v.lask)
    live, orders = borrowed(v.live), borrowed(v.orders)  # allocated once, with the venue
    trades = borrowed(v.trades)
    # the marks are grown (replaced) only by push_mark: the view is taken again after each call
    # that can push one
    marks = borrowed(v.marks)
    tick_units, px_scale = v.tick_units, v.px_scale
    n_e, n_l = exch_idx.shape[0], local_idx.shape[0]
    tick_px, tick_lo, n = v.tick_px, v.tick_lo, v.n_ticks
    inv_tick = 1.0 / tick_px
    ei, li, mbb, mba = v.ei, v.li, v.mark_bb, v.mark_ba
    xbb, xba, lbb, lba = v.xbb, v.xba, v.lbb, v.lba
    vbid, vask = v.lbid_ver, v.lask_ver
    te = ev[exch_idx[ei]].exch_ts if ei < n_e else I64_MAX
    tl = ev[local_idx[li]].local_ts if li < n_l else I64_MAX
    stopped = False
    to, tr, tq, blo, bhi, alo, ahi = _order_bounds(v)
    # ---- market data up to the next order event (ties: see the docstring)
    while True:
        if te < tl:
            if te > target or te >= tr or te > to:
                break
            r = exch_idx[ei]
            evv = ev[r].ev
            kind = evv & 0xFF
            fast, ix = _fast_depth_ix(evv, ev[r].px, inv_tick, tick_lo, blo, bhi, alo, ahi)
            if kind == ev_.TRADE_EVENT and _trade_misses(evv, ev[r].px, tick_px, tick_lo, bhi, alo):
                v.exch_now = te
            elif fast or (
                _band_depth(kind, fast) and _no_order_at(live, orders, v.n_live, evv, ix)
            ):
                # off our levels (in the live band: process_exch's depth path without the queue)
                if not fast:
                    v.exch_now = te
                pbb, pba = xbb, xba
                xbb, xba, out_of_band = _exch_depth(xbid, xask, xbb, xba, n, ix, evv, ev[r].qty)
                if out_of_band:
                    v.n_out_of_band += 1
                if (xba <= bhi or xbb >= alo) if fast else (xbb > pbb or xba < pba):
                    # the book may have moved through a resting order
                    v.xbb = xbb
                    v.xba = xba
                    cross_check(v, te)
                    to, tr, tq, blo, bhi, alo, ahi = _order_bounds(v)
                    marks = borrowed(v.marks)  # a fill's mark may have grown them
                if xbb != mbb or xba != mba:
                    # maybe_mark on the locals: a MARK row when the touch moved the mid
                    mbb, mba = xbb, xba
                    v.mark_bb, v.mark_ba = mbb, mba
                    mid = ladder_mid(xbb, xba, n, tick_lo, tick_units, px_scale)
                    if mid == mid and mid != v.last_mark_mid:
                        v.last_mark_mid = mid
                        if v.n_marks < marks.shape[0]:
                            put_mark(marks[v.n_marks], te, mid, v.ex_pos)
                            v.n_marks += 1
                        else:
                            push_mark(v, te, mid)
                            marks = borrowed(v.marks)
            else:
                v.xbb = xbb
                v.xba = xba
                v.exch_now = te
                process_exch(v, evv, te, ev[r].px, ev[r].qty, xbid, xask, inv_tick, tick_lo, n)
                xbb, xba, mbb, mba = v.xbb, v.xba, v.mark_bb, v.mark_ba
                # fills may have queued responses (possibly due now) and removed resting orders
                to, tr, tq, blo, bhi, alo, ahi = _order_bounds(v)
                marks = borrowed(v.marks)
            ei += 1
            te = ev[exch_idx[ei]].exch_ts if ei < n_e else I64_MAX
        else:
            if tl > target or tl > tq:
                break
            r = local_idx[li]
            evv = ev[r].ev
            kind = evv & 0xFF
            if kind == ev_.DEPTH_EVENT or kind == ev_.DEPTH_SNAPSHOT_EVENT:  # noqa: SIM109
                lbb, lba, vbid, vask = _local_depth(
                    lbid, lask, lbb, lba, vbid, vask, ev[r], inv_tick, tick_lo, n
                )
            elif kind == ev_.TRADE_EVENT:
                # a trade row on the borrowed ring (allocated once, with the venue)
                qty = ev[r].qty
                side = _put_trade(trades[v.n_trades % TRADE_RING], evv, tl, ev[r].px, qty)
                v.n_trades += 1
                if side > 0:
                    v.dr_buy_qty += qty
                    v.dr_buy_n += 1
                elif side < 0:
                    v.dr_sell_qty += qty
                    v.dr_sell_n += 1
            else:
                v.lbb, v.lba, v.lbid_ver, v.lask_ver = lbb, lba, vbid, vask
                process_local(v, evv, ev[r].px, ev[r].qty, lbid, lask, inv_tick, tick_lo, n)
                lbb, lba, vbid, vask = v.lbb, v.lba, v.lbid_ver, v.lask_ver
            li += 1
            tl = ev[local_idx[li]].local_ts if li < n_l else I64_MAX
            # one feed message is many rows sharing a local_ts: stop only after its last row,
            # so a strategy never sees a half-applied book update
            if wait and tl != ev[r].local_ts:
                v.now = ev[r].local_ts
                stopped = True
                break
    v.xbb, v.xba, v.lbb, v.lba, v.ei, v.li = xbb, xba, lbb, lba, ei, li
    v.lbid_ver, v.lask_ver = vbid, vask
    return stopped
