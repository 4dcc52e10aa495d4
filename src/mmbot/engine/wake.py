"""What a wake does besides asking the quoter: views from the venue, the order manager, the ops.

Owns ``OP_DTYPE`` (one order request to send: slot, op, price, quantity), ``act`` (the order
manager and guards over every slot of the quote, the same for backtest, paper and live) and the
simulated venue's side of a wake (``fill_view``, ``refresh_own``, ``collect_trades``,
``collect_fills``, ``send_ops``). Slots: row ``level * 2 + side`` of the own-order view, side 0 bid,
1 ask; one level is today's two-slot layout.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mmbot.execution.manager import OP_CANCEL_NEW, OP_KEEP, manage_side
from mmbot.records import OP_CANCEL, OP_NEW, OP_REPLACE
from mmbot.sim import venue as sv
from mmbot.strategy.contract import MAX_LEVELS, TRADE_BUFFER
from mmbot.strategy.views import (
    ORD_LIVE,
    ORD_NONE,
    ORD_PENDING_CANCEL,
    ORD_PENDING_NEW,
    ORD_PENDING_REPLACE,
)

N_SLOTS = 2 * MAX_LEVELS
# rows the order manager may write per slot and wake (intended + blocked, twice with a fallback)
ACTION_ROWS_PER_SLOT = 4

# one row per slot and wake (two for a cancel + new), in slot order; op OP_KEEP = nothing to send. ``rows_end``: the action
# rows the manager had written after this slot, so a driver records each slot's rows and then sends
# its request (the order of records does not depend on the driver)
OP_DTYPE = np.dtype(
    [("slot", "i8"), ("op", "i8"), ("px", "f8"), ("qty", "f8"), ("rows_end", "i8")], align=True
)

# drive-loop cursors (an int64 array kept across wakes): market trades and our fills handed to the
# quoter so far, and per side 1 + the local book version the view was last read at (0: never read)
CUR_TRADES, CUR_FILLS, CUR_BID_VER, CUR_ASK_VER = range(4)
N_CURSORS = 4

# drive-loop counters (an int64 array, returned to Python in meta)
C_WAKES, C_STEPS, C_SENT, C_SEND_ERRORS, C_TRADES_SEEN, C_FILLS_SEEN, C_FEED_WAKES = range(7)
C_NOQUOTE = 7
N_COUNTERS = 8


@njit(cache=True)
def act(params, guard_state, own, out, levels, position_qty, pnl, now_ns, actions, n_actions, ops):
    """Order manager and guards over each slot of the quote; returns (rows written, op rows).

    ``actions`` needs ``ACTION_ROWS_PER_SLOT`` free rows per slot; ``ops`` one row per slot, two
    for a slot requoted by cancel + new (its cancel, then its new order: a ``cancel_new`` quoter
    has at most half the slots)."""
    q = out[0]
    half = q.half_spread_px
    n_ops = 0
    for level in range(levels):
        for side_idx in range(2):
            slot = 2 * level + side_idx
            tpx = q.bid_px[level] if side_idx == 0 else q.ask_px[level]
            tqty = q.bid_qty[level] if side_idx == 0 else q.ask_qty[level]
            n_actions, op, px, qty = manage_side(
                guard_state,
                params,
                actions,
                n_actions,
                own[slot],
                slot,
                tpx,
                tqty,
                half,
                position_qty,
                pnl,
                now_ns,
            )
            if op == OP_CANCEL_NEW:
                # the cancel's INTENDED row is the one before the new order's
                n_ops = _put_op(
                    ops, n_ops, slot, OP_CANCEL, own[slot].px, own[slot].qty, n_actions - 1
                )
                op = OP_NEW
            n_ops = _put_op(ops, n_ops, slot, op, px, qty, n_actions)
    return n_actions, n_ops


@njit(cache=True)
def _put_op(ops, n_ops: int, slot: int, op: int, px: float, qty: float, rows_end: int) -> int:
    r = ops[n_ops]
    r.slot = slot
    r.op = op
    r.px = px
    r.qty = qty
    r.rows_end = rows_end
    return n_ops + 1


# ---------------------------------------------------------------------------------------------
# the simulated venue's side of a wake
@njit(cache=True)
def fill_view(v, view, near_ticks: int, book_levels: int, cursors) -> None:
    """The market view from the venue's local book and our account. Most wakes (trades, order
    responses, depth rows far from the touch) find the part of the local book a view reads as
    the last wake left it: its fields then keep the values read then (the same numbers)."""
    b = view[0]
    b.now_ns = sv.now_ns(v)
    b.position_qty = sv.position_qty(v)
    b.pnl = sv.equity(v)
    banded = near_ticks <= sv.VIEW_BAND_TICKS
    ver = sv.local_book_version(v, 1) + 1
    if cursors[CUR_BID_VER] != ver or not banded:
        cursors[CUR_BID_VER] = ver
        b.best_bid_px = sv.best_bid_px(v)
        b.best_bid_qty = sv.best_bid_qty(v)
        b.bid_near_qty = sv.qty_within_ticks(v, 1, near_ticks)
        if book_levels > 0:
            sv.depth_levels(v, 1, b.bid_px, b.bid_qty, book_levels)
    ver = sv.local_book_version(v, -1) + 1
    if cursors[CUR_ASK_VER] != ver or not banded:
        cursors[CUR_ASK_VER] = ver
        b.best_ask_px = sv.best_ask_px(v)
        b.best_ask_qty = sv.best_ask_qty(v)
        b.ask_near_qty = sv.qty_within_ticks(v, -1, near_ticks)
        if book_levels > 0:
            sv.depth_levels(v, -1, b.ask_px, b.ask_qty, book_levels)


@njit(cache=True)
def refresh_own(v, own, oids, n_slots: int, now_ns: int) -> None:
    """Own-order view per slot from the venue's local view of our orders."""
    slots = sv.orders(v)
    for idx in range(n_slots):
        row = own[idx]
        oid = oids[idx]
        s = sv.find_order(v, oid) if oid > 0 else -1
        st = ORD_NONE
        if s >= 0:
            o = slots[s]
            if o.status == sv.ST_PENDING_NEW:
                st = ORD_PENDING_NEW
            elif o.status == sv.ST_LIVE:
                if o.req == sv.REQ_MODIFY:
                    st = ORD_PENDING_REPLACE
                elif o.req == sv.REQ_CANCEL:
                    st = ORD_PENDING_CANCEL
                else:
                    st = ORD_LIVE
        if st == ORD_NONE:
            oids[idx] = 0
            row.status = ORD_NONE
            row.order_id = 0
            row.qty = 0.0
            continue
        o = slots[s]
        if st == ORD_LIVE and (row.status != ORD_LIVE or row.px != o.px):
            row.live_since_ns = now_ns  # the current price became live now (ack learnt now)
        row.status = st
        row.order_id = oid
        row.px = o.px
        row.qty = o.leaves_qty


@njit(cache=True)
def collect_trades(v, cursors, buf, view) -> int:
    """Market trades seen locally since the last wake into ``buf``; returns their count."""
    ring = sv.local_trades(v)
    n_tr = sv.trades_seen(v)
    k = cursors[CUR_TRADES]
    if n_tr - k > sv.TRADE_RING:
        k = n_tr - sv.TRADE_RING
    if n_tr - k > TRADE_BUFFER:
        k = n_tr - TRADE_BUFFER
    n = 0
    while k < n_tr:
        t = ring[k % sv.TRADE_RING]
        r = buf[n]
        r.local_ts = t.local_ts
        r.px = t.px
        r.qty = t.qty
        r.side = t.side
        view[0].last_trade_px = t.px
        n += 1
        k += 1
    cursors[CUR_TRADES] = n_tr
    return n


@njit(cache=True)
def collect_fills(v, cursors, buf, now_ns: int) -> int:
    """Our fills learnt by ``now_ns`` since the last wake into ``buf``; returns their count."""
    f = cursors[CUR_FILLS]
    n = 0
    while f < v.n_fills and v.fills[f].local_ts <= now_ns and n < buf.shape[0]:
        fr = v.fills[f]
        r = buf[n]
        r.local_ts = fr.local_ts
        r.exch_ts = fr.exch_ts
        r.side = fr.side
        r.px = fr.px
        r.qty = fr.qty
        r.maker = fr.maker
        r.target_px = fr.target_px
        r.position_qty = fr.position_qty
        n += 1
        f += 1
    cursors[CUR_FILLS] = f
    return n


@njit(cache=True)
def send_ops(v, ops, n_ops: int, actions, own, oids, now_ns: int, counters) -> None:
    """Record each slot's action rows, then send its request to the venue (post-only limits)."""
    row = 0
    for i in range(n_ops):
        r = ops[i]
        while row < r.rows_end:
            a = actions[row]
            sv.record_action(v, a.kind, a.op, a.side, a.order_id, a.px, a.qty, a.reason)
            row += 1
        if r.op == OP_KEEP:
            continue
        slot = r.slot
        side = 1 if slot % 2 == 0 else -1
        rc = 0
        if r.op == OP_NEW:
            oid = sv.submit(v, side, r.px, r.qty, sv.TIF_GTX, sv.ORD_LIMIT)
            if oid > 0:
                oids[slot] = oid
                own[slot].status = ORD_PENDING_NEW
                own[slot].order_id = oid
                own[slot].px = r.px
                own[slot].qty = r.qty
                own[slot].sent_ns = now_ns
            else:
                rc = oid
        elif r.op == OP_REPLACE:
            rc = sv.modify(v, oids[slot], r.px, r.qty)
            if rc == 0:
                own[slot].status = ORD_PENDING_REPLACE
                own[slot].sent_ns = now_ns
        elif r.op == OP_CANCEL:
            rc = sv.cancel(v, oids[slot])
            if rc == 0:
                own[slot].status = ORD_PENDING_CANCEL
                own[slot].sent_ns = now_ns
        if rc == 0:
            counters[C_SENT] += 1
        else:
            counters[C_SEND_ERRORS] += 1
