"""The compiled simulated venue: state (a numba structref), event processing, matching, verbs.

Owns: both books (exchange-side at ``exch_ts``, local at ``local_ts``), order slots, request and
response queues with latency, queue-position models, fills/fees/position, the exchange rate limit and
the FILL/ACTION/MARK record buffers. Everything here is ``@njit(cache=True)``; the Python entry
points (``make_venue``, ``finish``) live in ``mmbot.sim.api``.
"""

from __future__ import annotations

import hashlib

import numba
import numpy as np
from numba import njit, types
from numba.experimental import structref

from mmbot.events import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EVENT_DTYPE,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
)
from mmbot.records import (
    ACT_ACKED,
    ACT_CANCELLED,
    ACT_EXPIRED,
    ACT_FILLED,
    ACT_REJECTED,
    ACT_SENT,
    ACTION_DTYPE,
    FILL_DTYPE,
    MARK_DTYPE,
    OP_CANCEL,
    OP_NEW,
    OP_REPLACE,
    REASON_NONE,
    REASON_POST_ONLY,
    REASON_PRICE_BAND,
    REASON_RATE_LIMIT,
    REASON_UNKNOWN_ORDER,
)

from .config import QM_POWER

# ---------------------------------------------------------------- public constants
BUY = 1
SELL = -1

TIF_GTC = 0  # rests; takes first if it crosses
TIF_GTX = 1  # post-only: rejected if it would cross
TIF_IOC = 2  # takes what it can, the rest expires
ORD_LIMIT = 0
ORD_MARKET = 1  # walks the book without a price limit; the rest expires

# order status (both the local view `status` and the exchange view `ex_status`)
ST_NONE = 0  # empty slot / not yet at the exchange
ST_PENDING_NEW = 1  # sent, not acknowledged (local view only)
ST_LIVE = 2  # resting (possibly partially filled)
ST_FILLED = 3
ST_CANCELLED = 4
ST_REJECTED = 5
ST_EXPIRED = 6

# pending request of a slot (local view)
REQ_NONE = 0
REQ_NEW = 1
REQ_CANCEL = 2
REQ_MODIFY = 3

# time-advance results
OK = 0  # reached the requested time
WAIT_FEED = 1  # stopped at a local market-data event
WAIT_RESPONSE = 2  # stopped at an order response
END_OF_DATA = 3  # no market data left

# verb errors (negative returns); the first one is kept and raised as UserError by finish()
ERR_NO_SLOT = -1
ERR_BAD_QTY = -2
ERR_OFF_TICK = -3
ERR_PENDING = -4  # the order already has a request in flight
ERR_NOT_LIVE = -5  # unknown order id or already done (local view)
ERR_BAD_SIDE = -6
ERR_BAD_PX = -7
ERR_OFF_LOT = -8
ERR_BAD_TIF = -9  # unknown time in force or order type
ERR_PAST = -10  # feed(): the new block starts before the venue's clock

# response kinds (exchange -> local)
R_ACK_NEW = 0
R_ACK_MODIFY = 1
R_REJECT = 2
R_CANCELLED = 3
R_FILL = 4
R_EXPIRED = 5

I64_MAX = np.iinfo(np.int64).max

# call-argument constants as numpy scalars: numba compiles a separate copy of a function for
# every distinct *literal* argument (Python ints/bools), which multiplied cold-compile time
_TRUE = np.bool_(True)
_FALSE = np.bool_(False)
_I0 = np.int64(0)
_I1 = np.int64(1)
_IM1 = np.int64(-1)
_F0 = np.float64(0.0)
_ACT_ACKED = np.int64(ACT_ACKED)
_ACT_CANCELLED = np.int64(ACT_CANCELLED)
_ACT_EXPIRED = np.int64(ACT_EXPIRED)
_ACT_FILLED = np.int64(ACT_FILLED)
_ACT_REJECTED = np.int64(ACT_REJECTED)
_ACT_SENT = np.int64(ACT_SENT)
_OP_CANCEL = np.int64(OP_CANCEL)
_OP_NEW = np.int64(OP_NEW)
_OP_REPLACE = np.int64(OP_REPLACE)
_REASON_NONE = np.int64(REASON_NONE)
_REASON_POST_ONLY = np.int64(REASON_POST_ONLY)
_REASON_PRICE_BAND = np.int64(REASON_PRICE_BAND)
_REASON_RATE_LIMIT = np.int64(REASON_RATE_LIMIT)
_REASON_UNKNOWN_ORDER = np.int64(REASON_UNKNOWN_ORDER)
_R_ACK_MODIFY = np.int64(R_ACK_MODIFY)
_R_ACK_NEW = np.int64(R_ACK_NEW)
_R_CANCELLED = np.int64(R_CANCELLED)
_R_EXPIRED = np.int64(R_EXPIRED)
_R_FILL = np.int64(R_FILL)
_R_REJECT = np.int64(R_REJECT)

ORDER_DTYPE = np.dtype(
    [
        ("order_id", "i8"),
        ("side", "i8"),  # +1 buy / -1 sell
        ("tif", "i8"),
        ("ord_type", "i8"),
        ("status", "i8"),  # local view (ST_*)
        ("req", "i8"),  # local view: pending request (REQ_*)
        ("px", "f8"),  # local view: price as last acknowledged (or as sent while pending new)
        ("qty", "f8"),  # local view: order quantity
        ("leaves_qty", "f8"),  # local view: open quantity
        ("exec_qty", "f8"),  # local view: filled so far
        ("create_local_ts", "i8"),
        ("req_px", "f8"),  # pending new/modify price and quantity
        ("req_qty", "f8"),
        ("req_sent_ts", "i8"),
        ("req_arrive_ts", "i8"),  # exchange time the pending request arrives (I64_MAX = none)
        ("req_seq", "i8"),  # send order of requests: ties at the exchange go first-sent first
        ("last_resp_ts", "i8"),  # keeps responses of one order in order under variable latency
        ("n_resp_pending", "i8"),
        # exchange view
        ("ex_status", "i8"),
        ("ex_ix", "i8"),  # ladder index of the resting price
        ("ex_px", "f8"),
        ("ex_leaves_qty", "f8"),
        ("queue_ahead_qty", "f8"),  # estimated quantity ahead of us at our level
        ("cum_trade_qty", "f8"),  # trades at our level since the last depth update (prob models)
        ("live_exch_ts", "i8"),  # when it became live at the exchange (order age origin)
        ("live_slot", "i8"),  # position in the live list (-1 if not resting)
        # book-crossing fills need the opposite best strictly beyond this ladder index: a GTC
        # remainder that rests after taking must not fill again against the liquidity it took
        # (the feed still shows it, the simulated book is never depleted)
        ("cross_ix", "i8"),
    ],
    align=True,
)

RESP_DTYPE = np.dtype(
    [
        ("ts", "i8"),  # local arrival time
        ("seq", "i8"),  # tie-break: insertion order
        ("slot", "i8"),
        ("order_id", "i8"),
        ("kind", "i8"),
        ("status", "i8"),  # exchange status after the event
        ("clears_req", "i8"),  # this response answers the pending request
        ("px", "f8"),  # order price after the event
        ("qty", "f8"),  # order quantity after the event
        ("leaves_qty", "f8"),
        ("fill_px", "f8"),
        ("fill_qty", "f8"),
        ("fee", "f8"),
    ],
    align=True,
)

TRADE_DTYPE = np.dtype(
    [("local_ts", "i8"), ("px", "f8"), ("qty", "f8"), ("side", "i8")], align=True
)
TRADE_RING = 4096
DEPTH_SCAN_TICKS = 64  # depth_levels looks at most this many ticks from the touch (per wake)

_ev_t = types.Array(numba.from_dtype(EVENT_DTYPE), 1, "C")
_ord_t = types.Array(numba.from_dtype(ORDER_DTYPE), 1, "C")
_resp_t = types.Array(numba.from_dtype(RESP_DTYPE), 1, "C")
_trade_t = types.Array(numba.from_dtype(TRADE_DTYPE), 1, "C")
_fill_t = types.Array(numba.from_dtype(FILL_DTYPE), 1, "C")
_act_t = types.Array(numba.from_dtype(ACTION_DTYPE), 1, "C")
_mark_t = types.Array(numba.from_dtype(MARK_DTYPE), 1, "C")
_i8a = types.Array(types.int64, 1, "C")
_f8a = types.Array(types.float64, 1, "C")
_i8 = types.int64
_f8 = types.float64

_FIELDS = [
    # data
    ("ev", _ev_t),
    ("exch_idx", _i8a),
    ("local_idx", _i8a),
    ("ei", _i8),
    ("li", _i8),
    ("now", _i8),
    ("exch_now", _i8),
    # config
    ("tick_px", _f8),
    ("lot_qty", _f8),
    ("px_decimals", _i8),
    ("px_scale", _f8),
    ("tick_units", _f8),
    ("mark_bb", _i8),
    ("mark_ba", _i8),
    ("maker_fee_rate", _f8),
    ("taker_fee_rate", _f8),
    ("ctr_size", _f8),  # contract size (mmbot.instruments): base units, or USD when inverse
    ("inverse", _i8),  # 1: a contract is worth -ctr_size/px coin (inverse), else ctr_size*px
    ("entry_lat", _i8),
    ("resp_lat", _i8),
    ("lat_ts", _i8a),
    ("lat_entry", _f8a),
    ("lat_resp", _f8a),
    ("qmodel", _i8),
    ("qpow", _f8),
    ("partial", _i8),
    ("rate_limit", _i8),
    ("tick_lo", _i8),
    ("n_ticks", _i8),
    # exchange book
    ("xbid", _f8a),
    ("xask", _f8a),
    ("xbb", _i8),  # best bid ladder index, -1 = empty
    ("xba", _i8),  # best ask ladder index, n_ticks = empty
    # local book
    ("lbid", _f8a),
    ("lask", _f8a),
    ("lbb", _i8),
    ("lba", _i8),
    # orders
    ("orders", _ord_t),
    ("next_oid", _i8),
    ("live", _i8a),  # slots resting at the exchange
    ("n_live", _i8),
    ("live_bid_lo", _i8),  # ladder range of resting buys (lo > hi when none)
    ("live_bid_hi", _i8),
    ("live_ask_lo", _i8),
    ("live_ask_hi", _i8),
    ("next_req_ts", _i8),
    ("resp", _resp_t),
    ("n_resp", _i8),
    ("resp_seq", _i8),
    ("next_resp_ts", _i8),
    # accounts
    ("ex_pos", _f8),
    ("ex_cash", _f8),
    ("ex_fills", _i8),
    ("lo_pos", _f8),
    ("lo_cash", _f8),
    ("lo_fills", _i8),
    ("tgt_bid", _f8),
    ("tgt_ask", _f8),
    # local trades
    ("trades", _trade_t),
    ("n_trades", _i8),
    ("dr_buy_qty", _f8),
    ("dr_sell_qty", _f8),
    ("dr_buy_n", _i8),
    ("dr_sell_n", _i8),
    # rate limit
    ("rl_ring", _i8a),
    ("rl_head", _i8),
    ("n_rl_rejects", _i8),
    # records
    ("fills", _fill_t),
    ("n_fills", _i8),
    ("actions", _act_t),
    ("n_actions", _i8),
    ("marks", _mark_t),
    ("n_marks", _i8),
    ("last_mark_mid", _f8),
    # counters and errors
    ("n_exch_events", _i8),
    ("n_local_events", _i8),
    ("n_out_of_band", _i8),
    ("n_no_slot", _i8),
    ("n_post_only_rejects", _i8),
    ("err_code", _i8),
    ("err_ts", _i8),
    ("err_val", _f8),
]


@structref.register
class VenueType(types.StructRef):
    def __init__(self, fields):
        super().__init__(fields)
        # numba names a structref type after all its fields (kilobytes here); every compiled
        # symbol and cache key repeats it, which slows cold compiles. A short name with a digest
        # of the layout stays unique, so caches built for another layout are never reused.
        # (Stale callers after a source change are handled by the cache directory: mmbot.jitcache.)
        digest = hashlib.sha1(repr(self._fields).encode()).hexdigest()[:16]
        self.name = f"mmbot.Venue_{digest}"

    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class Venue(structref.StructRefProxy):
    """Python handle of a compiled venue; pass it to the compiled verbs (read state through them)."""


structref.define_boxing(VenueType, Venue)
VENUE_TYPE = VenueType(_FIELDS)


# ---------------------------------------------------------------- construction
@njit(cache=True)
def new_venue(
    ev,
    exch_idx,
    local_idx,
    tick_px,
    lot_qty,
    px_decimals,
    maker_fee_rate,
    taker_fee_rate,
    entry_lat,
    resp_lat,
    lat_ts,
    lat_entry,
    lat_resp,
    qmodel,
    qpow,
    partial,
    rate_limit,
    tick_lo,
    n_ticks,
    max_orders,
    start_ts,
    ctr_size,
    inverse,
):
    v = structref.new(VENUE_TYPE)
    v.ev = ev
    v.exch_idx = exch_idx
    v.local_idx = local_idx
    v.ei = 0
    v.li = 0
    v.now = start_ts
    v.exch_now = start_ts
    v.tick_px = tick_px
    v.lot_qty = lot_qty
    v.px_decimals = px_decimals
    v.px_scale = 10.0**px_decimals
    v.tick_units = np.round(tick_px * 10.0**px_decimals)
    v.mark_bb = -2
    v.mark_ba = -2
    v.maker_fee_rate = maker_fee_rate
    v.taker_fee_rate = taker_fee_rate
    v.ctr_size = ctr_size
    v.inverse = inverse
    v.entry_lat = entry_lat
    v.resp_lat = resp_lat
    v.lat_ts = lat_ts
    v.lat_entry = lat_entry
    v.lat_resp = lat_resp
    v.qmodel = qmodel
    v.qpow = qpow
    v.partial = partial
    v.rate_limit = rate_limit
    v.tick_lo = tick_lo
    v.n_ticks = n_ticks
    v.xbid = np.zeros(n_ticks, np.float64)
    v.xask = np.zeros(n_ticks, np.float64)
    v.xbb = -1
    v.xba = n_ticks
    v.lbid = np.zeros(n_ticks, np.float64)
    v.lask = np.zeros(n_ticks, np.float64)
    v.lbb = -1
    v.lba = n_ticks
    orders = np.zeros(max_orders, ORDER_DTYPE)
    for s in range(max_orders):
        orders[s].req_arrive_ts = I64_MAX
        orders[s].live_slot = -1
    v.orders = orders
    v.next_oid = 1
    v.live = np.full(max_orders, -1, np.int64)
    v.n_live = 0
    v.live_bid_lo = n_ticks
    v.live_bid_hi = -1
    v.live_ask_lo = n_ticks
    v.live_ask_hi = -1
    v.next_req_ts = I64_MAX
    v.resp = np.zeros(64, RESP_DTYPE)
    v.n_resp = 0
    v.resp_seq = 0
    v.next_resp_ts = I64_MAX
    v.ex_pos = 0.0
    v.ex_cash = 0.0
    v.ex_fills = 0
    v.lo_pos = 0.0
    v.lo_cash = 0.0
    v.lo_fills = 0
    v.tgt_bid = np.nan
    v.tgt_ask = np.nan
    v.trades = np.zeros(TRADE_RING, TRADE_DTYPE)
    v.n_trades = 0
    v.dr_buy_qty = 0.0
    v.dr_sell_qty = 0.0
    v.dr_buy_n = 0
    v.dr_sell_n = 0
    v.rl_ring = np.full(max(rate_limit, 1), -(1 << 62), np.int64)
    v.rl_head = 0
    v.n_rl_rejects = 0
    v.fills = np.zeros(256, FILL_DTYPE)
    v.n_fills = 0
    v.actions = np.zeros(1024, ACTION_DTYPE)
    v.n_actions = 0
    v.marks = np.zeros(4096, MARK_DTYPE)
    v.n_marks = 0
    v.last_mark_mid = np.nan
    v.n_exch_events = 0
    v.n_local_events = 0
    v.n_out_of_band = 0
    v.n_no_slot = 0
    v.n_post_only_rejects = 0
    v.err_code = 0
    v.err_ts = 0
    v.err_val = 0.0
    return v


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
    both = np.uint64(EXCH_EVENT | LOCAL_EVENT)
    for i in range(n):
        f = ev[i].ev
        if (f & both) == 0:
            f = f | both  # unflagged rows count as both
        if f & np.uint64(EXCH_EVENT):
            t = ev[i].exch_ts
            if t < last_e and bad < 0:
                bad = i
            last_e = t
            exch_idx[ne] = i
            ne += 1
        if f & np.uint64(LOCAL_EVENT):
            t = ev[i].local_ts
            if t < last_l:
                sorted_l = False
            last_l = t
            local_idx[nl] = i
            nl += 1
        if (f & np.uint64(0xFF)) == TRADE_EVENT:
            p = ev[i].px
            if p > 0.0 and p < np.inf:
                lo = min(lo, p)
                hi = max(hi, p)
    return exch_idx[:ne], local_idx[:nl], bad, sorted_l, lo, hi


# ---------------------------------------------------------------- small helpers
@njit(cache=True)
def _px_of(v, ix):
    # integer ticks x integer tick units / 10**decimals: one correctly rounded division, so the
    # result is the double nearest the exchange's decimal price (57000.1, not 57000.100000000006)
    return ((ix + v.tick_lo) * v.tick_units) / v.px_scale


@njit(cache=True)
def _ix_of(v, px):
    return np.int64(np.round(px / v.tick_px)) - v.tick_lo


@njit(cache=True)
def _interp(ts_arr, val_arr, t):
    n = ts_arr.shape[0]
    if t <= ts_arr[0]:
        return val_arr[0]
    if t >= ts_arr[n - 1]:
        return val_arr[n - 1]
    j = np.searchsorted(ts_arr, t, side="right")
    t0 = ts_arr[j - 1]
    t1 = ts_arr[j]
    if t1 == t0:
        return val_arr[j]
    w = (t - t0) / (t1 - t0)
    return val_arr[j - 1] + w * (val_arr[j] - val_arr[j - 1])


@njit(cache=True)
def _entry_latency(v, t):
    if v.lat_ts.shape[0] == 0:
        return v.entry_lat
    return np.int64(np.round(_interp(v.lat_ts, v.lat_entry, t)))


@njit(cache=True)
def _response_latency(v, t):
    if v.lat_ts.shape[0] == 0:
        return v.resp_lat
    return np.int64(np.round(_interp(v.lat_ts, v.lat_resp, t)))


@njit(cache=True)
def _set_error(v, code, val):
    if v.err_code == 0:
        v.err_code = code
        v.err_ts = v.now
        v.err_val = val


@njit(cache=True)
def _exch_mid(v):
    if v.xbb < 0 or v.xba >= v.n_ticks:
        return np.nan
    return (_px_of(v, v.xbb) + _px_of(v, v.xba)) * 0.5


# ---------------------------------------------------------------- books (shared by both views)
@njit(cache=True)
def _scan_bid_down(book, j):
    while j >= 0 and book[j] <= 0.0:
        j -= 1
    return j


@njit(cache=True)
def _scan_ask_up(book, j, n):
    while j < n and book[j] <= 0.0:
        j += 1
    return j


@njit(cache=True)
def _bid_update(bid, ask, bb, ba, n, ix, qty, bbo):
    """Set the bid level ``ix`` to ``qty``; returns new (bb, ba). A BBO event also removes better
    bids. A new best bid at or above the best ask moves the best ask above it; like hftbacktest's
    HashMapMarketDepth the crossed ask levels are left in place (only the pointer moves), which
    keeps queue positions initialised from them identical to the reference."""
    if bbo and bb > ix:
        for j in range(ix + 1, bb + 1):
            bid[j] = 0.0
        bb = _scan_bid_down(bid, ix)
    bid[ix] = qty
    if qty > 0.0:
        if ix > bb:
            bb = ix
            if bb >= ba:
                ba = _scan_ask_up(ask, bb + 1, n)
    elif ix == bb:
        bb = _scan_bid_down(bid, ix - 1)
    return bb, ba


@njit(cache=True)
def _ask_update(bid, ask, bb, ba, n, ix, qty, bbo):
    if bbo and ba < ix:
        for j in range(ba, ix):
            ask[j] = 0.0
        ba = _scan_ask_up(ask, ix, n)
    ask[ix] = qty
    if qty > 0.0:
        if ix < ba:
            ba = ix
            if bb >= ba:
                bb = _scan_bid_down(bid, ba - 1)
    elif ix == ba:
        ba = _scan_ask_up(ask, ix + 1, n)
    return bb, ba


@njit(cache=True)
def _clear(bid, ask, bb, ba, n, side, ix):
    """hftbacktest semantics: clear one side (or both when side == 0) up to ``ix`` from the best
    (``ix`` < 0 or out of range = the whole side)."""
    if side >= 0:
        lo = 0 if (side == 0 or ix < 0 or ix >= n) else ix
        for j in range(lo, max(bb, -1) + 1):
            bid[j] = 0.0
        bb = _scan_bid_down(bid, lo - 1) if lo > 0 else -1
    if side <= 0:
        hi = n - 1 if (side == 0 or ix < 0 or ix >= n) else ix
        for j in range(min(ba, n), hi + 1):
            ask[j] = 0.0
        ba = _scan_ask_up(ask, hi + 1, n) if hi < n - 1 else n
    return bb, ba


# ---------------------------------------------------------------- record buffers
@njit(cache=True)
def _grow(arr):
    out = np.zeros(arr.shape[0] * 2, arr.dtype)
    out[: arr.shape[0]] = arr
    return out


@njit(cache=True)
def _push_action(v, local_ts, exch_ts, order_id, kind, side, op, reason, px, qty, age_ns):
    if v.n_actions >= v.actions.shape[0]:
        v.actions = _grow(v.actions)
    r = v.actions[v.n_actions]
    r.local_ts = local_ts
    r.exch_ts = exch_ts
    r.order_id = order_id
    r.kind = kind
    r.side = side
    r.op = op
    r.reason = reason
    r.px = px
    r.qty = qty
    r.order_age_ns = age_ns
    v.n_actions += 1


@njit(cache=True)
def _push_mark(v, ts, mid):
    if v.n_marks >= v.marks.shape[0]:
        v.marks = _grow(v.marks)
    m = v.marks[v.n_marks]
    m.exch_ts = ts
    m.mid_px = mid
    m.position_qty = v.ex_pos
    v.n_marks += 1


@njit(cache=True)
def _maybe_mark(v, ts):
    if v.xbb == v.mark_bb and v.xba == v.mark_ba:
        return
    v.mark_bb = v.xbb
    v.mark_ba = v.xba
    mid = _exch_mid(v)
    if mid == mid and mid != v.last_mark_mid:
        v.last_mark_mid = mid
        _push_mark(v, ts, mid)


@njit(cache=True)
def _push_resp(v, s, ex_ts, kind, clears_req, fill_px, fill_qty, fee):
    o = v.orders[s]
    rt = ex_ts + _response_latency(v, ex_ts)
    if rt < o.last_resp_ts:
        rt = o.last_resp_ts  # responses of one order never overtake each other
    o.last_resp_ts = rt
    if v.n_resp >= v.resp.shape[0]:
        v.resp = _grow(v.resp)
    r = v.resp[v.n_resp]
    r.ts = rt
    r.seq = v.resp_seq
    r.slot = s
    r.order_id = o.order_id
    r.kind = kind
    r.status = o.ex_status
    r.clears_req = clears_req
    r.px = o.ex_px
    r.qty = o.req_qty if kind == R_ACK_MODIFY else o.qty
    r.leaves_qty = o.ex_leaves_qty
    r.fill_px = fill_px
    r.fill_qty = fill_qty
    r.fee = fee
    v.resp_seq += 1
    v.n_resp += 1
    o.n_resp_pending += 1
    if rt < v.next_resp_ts:
        v.next_resp_ts = rt
    return rt


# ---------------------------------------------------------------- live list
@njit(cache=True)
def _live_bounds(v):
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
def _live_add(v, s):
    v.live[v.n_live] = s
    v.orders[s].live_slot = v.n_live
    v.n_live += 1
    _live_bounds(v)


@njit(cache=True)
def _live_remove(v, s):
    k = v.orders[s].live_slot
    if k < 0:
        return
    last = v.live[v.n_live - 1]
    v.live[k] = last
    v.orders[last].live_slot = k
    v.live[v.n_live - 1] = -1
    v.n_live -= 1
    v.orders[s].live_slot = -1
    _live_bounds(v)


# ---------------------------------------------------------------- fills
@njit(cache=True)
def contract_value(v, px):
    """Settle-coin value of one contract at ``px`` (mmbot.instruments): ctr_size*px, or
    -ctr_size/px for an inverse contract. Cash moves by -side*value*qty on a fill."""
    if v.inverse != 0:
        return -v.ctr_size / px
    return px * v.ctr_size


@njit(cache=True)
def _fill(v, s, px, qty, maker, ex_ts, clears_req):
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
        _live_remove(v, s)
    age = ex_ts - o.live_exch_ts if maker else 0
    rt = _push_resp(v, s, ex_ts, _R_FILL, clears_req, px, qty, fee)
    if v.n_fills >= v.fills.shape[0]:
        v.fills = _grow(v.fills)
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
    f.mid_px = _exch_mid(v)
    f.target_px = v.tgt_bid if side > 0 else v.tgt_ask
    f.order_age_ns = age
    f.position_qty = v.ex_pos
    v.n_fills += 1
    _push_mark(v, ex_ts, _exch_mid(v))
    if done:
        _push_action(
            v, rt, ex_ts, o.order_id, _ACT_FILLED, side, _OP_NEW, _REASON_NONE, o.ex_px, o.qty, age
        )
    return done


@njit(cache=True)
def _queue_prob(v, front, back):
    if v.qmodel == QM_POWER:
        fb = back**v.qpow
        ff = front**v.qpow
    else:
        fb = np.log1p(back)
        ff = np.log1p(front)
    d = fb + ff
    if d <= 0.0:
        return 1.0
    p = fb / d
    if not np.isfinite(p):
        return 1.0
    return p


@njit(cache=True)
def _queue_on_depth(v, s, prev_qty, new_qty):
    """A level-quantity change at our price (hftbacktest QueueModel.depth)."""
    o = v.orders[s]
    if v.qmodel == 0:
        if new_qty < o.queue_ahead_qty:
            o.queue_ahead_qty = new_qty
        return
    chg = prev_qty - new_qty - o.cum_trade_qty  # trades already advanced us
    o.cum_trade_qty = 0.0
    if chg < 0.0:
        if new_qty < o.queue_ahead_qty:
            o.queue_ahead_qty = new_qty
        return
    front = o.queue_ahead_qty
    back = prev_qty - front
    p = _queue_prob(v, front, back)
    est = front - (1.0 - p) * chg + min(back - p * chg, 0.0)
    o.queue_ahead_qty = min(est, new_qty)


@njit(cache=True)
def _queue_fillable(v, s):
    """Quantity the queue model lets trade through us: the traded quantity beyond the queue ahead,
    rounded to whole lots (hftbacktest 2.4 ``is_filled``: ``round(-front / lot)`` lots when > 0)."""
    exec_lots = np.round(-v.orders[s].queue_ahead_qty / v.lot_qty)
    if exec_lots > 0.0:
        return exec_lots * v.lot_qty
    return 0.0


@njit(cache=True)
def _on_trade(v, aggr_side, ix, qty, ex_ts):
    """A market trade at the exchange: trades through our price fill us; at our price they consume
    the queue ahead first."""
    k = 0
    while k < v.n_live:
        s = v.live[k]
        o = v.orders[s]
        if o.side == -aggr_side:
            through = (o.side > 0 and o.ex_ix > ix) or (o.side < 0 and o.ex_ix < ix)
            if through:
                _fill(v, s, o.ex_px, o.ex_leaves_qty, _TRUE, ex_ts, _I0)
                continue  # slot removed from the live list; k now holds another order
            if o.ex_ix == ix:
                o.queue_ahead_qty -= qty
                o.cum_trade_qty += qty
                can = _queue_fillable(v, s)
                if can > 0.0:
                    if v.partial:
                        ex_qty = min(can, o.ex_leaves_qty)
                        o.queue_ahead_qty = 0.0  # what traded through us is used up
                        if _fill(v, s, o.ex_px, ex_qty, _TRUE, ex_ts, _I0):
                            continue
                    else:
                        _fill(v, s, o.ex_px, o.ex_leaves_qty, _TRUE, ex_ts, _I0)
                        continue
        k += 1


@njit(cache=True)
def _cross_check(v, ex_ts):
    """The exchange book moved through resting orders: they fill in full at their price."""
    k = 0
    while k < v.n_live:
        s = v.live[k]
        o = v.orders[s]
        if (o.side > 0 and v.xba < v.n_ticks and o.ex_ix >= v.xba and v.xba < o.cross_ix) or (
            o.side < 0 and v.xbb >= 0 and o.ex_ix <= v.xbb and v.xbb > o.cross_ix
        ):
            _fill(v, s, o.ex_px, o.ex_leaves_qty, _TRUE, ex_ts, _I0)
            continue
        k += 1


@njit(cache=True)
def _depth_at_our_level(v, side, ix, prev_qty, new_qty):
    for k in range(v.n_live):
        s = v.live[k]
        o = v.orders[s]
        if o.side == side and o.ex_ix == ix:
            _queue_on_depth(v, s, prev_qty, new_qty)


# ---------------------------------------------------------------- event processing
@njit(cache=True)
def _process_exch(v, evv, ex_ts, px, qty, xbid, xask, inv_tick, tick_lo, n):
    """One exchange-side market event. Arrays are passed in (not read from ``v``) because every
    structref array read costs an atomic refcount pair in the hot loop."""
    kind = evv & 0xFF
    side = 1 if (evv & BUY_EVENT) else (-1 if (evv & SELL_EVENT) else 0)
    if kind == DEPTH_EVENT or kind == DEPTH_SNAPSHOT_EVENT or kind == DEPTH_BBO_EVENT:  # noqa: SIM109 (scalar compares in the hot loop)
        ix = np.int64(np.floor(px * inv_tick + 0.5)) - tick_lo
        if ix < 0 or ix >= n:
            v.n_out_of_band += 1
            return
        bbo = kind == DEPTH_BBO_EVENT
        prev_bb = v.xbb
        prev_ba = v.xba
        if side > 0:
            prev_qty = xbid[ix]
            v.xbb, v.xba = _bid_update(xbid, xask, prev_bb, prev_ba, n, ix, qty, bbo)
            if v.n_live > 0:
                _depth_at_our_level(v, _I1, ix, prev_qty, qty)
        elif side < 0:
            prev_qty = xask[ix]
            v.xbb, v.xba = _ask_update(xbid, xask, prev_bb, prev_ba, n, ix, qty, bbo)
            if v.n_live > 0:
                _depth_at_our_level(v, _IM1, ix, prev_qty, qty)
        if v.n_live > 0 and (v.xbb > prev_bb or v.xba < prev_ba):
            _cross_check(v, ex_ts)
        if v.xbb != v.mark_bb or v.xba != v.mark_ba:
            _maybe_mark(v, ex_ts)
    elif kind == TRADE_EVENT:
        if v.n_live > 0 and side != 0:
            ix = _ix_of(v, px)
            _on_trade(v, side, ix, qty, ex_ts)
    elif kind == DEPTH_CLEAR_EVENT:
        ix = _ix_of(v, px) if px > 0.0 else -1
        v.xbb, v.xba = _clear(xbid, xask, v.xbb, v.xba, n, side, ix)
        _maybe_mark(v, ex_ts)


@njit(cache=True)
def _process_local(v, evv, local_ts, px, qty, lbid, lask, inv_tick, tick_lo, n):
    kind = evv & 0xFF
    side = 1 if (evv & BUY_EVENT) else (-1 if (evv & SELL_EVENT) else 0)
    if kind == DEPTH_EVENT or kind == DEPTH_SNAPSHOT_EVENT or kind == DEPTH_BBO_EVENT:  # noqa: SIM109 (scalar compares in the hot loop)
        ix = np.int64(np.floor(px * inv_tick + 0.5)) - tick_lo
        if ix < 0 or ix >= n:
            return
        bbo = kind == DEPTH_BBO_EVENT
        if side > 0:
            v.lbb, v.lba = _bid_update(lbid, lask, v.lbb, v.lba, n, ix, qty, bbo)
        elif side < 0:
            v.lbb, v.lba = _ask_update(lbid, lask, v.lbb, v.lba, n, ix, qty, bbo)
    elif kind == TRADE_EVENT:
        t = v.trades[v.n_trades % TRADE_RING]
        t.local_ts = local_ts
        t.px = px
        t.qty = qty
        t.side = side
        v.n_trades += 1
        if side > 0:
            v.dr_buy_qty += qty
            v.dr_buy_n += 1
        elif side < 0:
            v.dr_sell_qty += qty
            v.dr_sell_n += 1
    elif kind == DEPTH_CLEAR_EVENT:
        ix = _ix_of(v, px) if px > 0.0 else -1
        v.lbb, v.lba = _clear(lbid, lask, v.lbb, v.lba, n, side, ix)


@njit(cache=True)
def _rate_limited(v, ex_ts):
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
def _take(v, s, limit_ix, ex_ts):
    """Walk the opposite side of the exchange book up to ``limit_ix``; one fill row per level.
    The book itself is not depleted (the feed stays the truth). Returns True when fully filled."""
    o = v.orders[s]
    n = v.n_ticks
    first = True
    if o.side > 0:
        j = v.xba
        while j < n and j <= limit_ix and o.ex_leaves_qty > 0.0:
            q = v.xask[j]
            if q > 0.0:
                if _fill(
                    v,
                    s,
                    _px_of(v, j),
                    min(q, o.ex_leaves_qty),
                    _FALSE,
                    ex_ts,
                    _I1 if first else _I0,
                ):
                    return True
                first = False
            j += 1
    else:
        j = v.xbb
        while j >= 0 and j >= limit_ix and o.ex_leaves_qty > 0.0:
            q = v.xbid[j]
            if q > 0.0:
                if _fill(
                    v,
                    s,
                    _px_of(v, j),
                    min(q, o.ex_leaves_qty),
                    _FALSE,
                    ex_ts,
                    _I1 if first else _I0,
                ):
                    return True
                first = False
            j -= 1
    return False


@njit(cache=True)
def _rest(v, s, ex_ts):
    """Make slot ``s`` a resting order at its ex_ix with a fresh queue position."""
    o = v.orders[s]
    o.ex_status = ST_LIVE
    o.live_exch_ts = ex_ts
    o.queue_ahead_qty = v.xbid[o.ex_ix] if o.side > 0 else v.xask[o.ex_ix]
    o.cum_trade_qty = 0.0
    o.cross_ix = v.n_ticks + 1 if o.side > 0 else -2
    if o.live_slot < 0:
        _live_add(v, s)


@njit(cache=True)
def _crosses(v, side, ix):
    if side > 0:
        return v.xba < v.n_ticks and ix >= v.xba
    return v.xbb >= 0 and ix <= v.xbb


@njit(cache=True)
def _reject(v, s, ex_ts, op, reason, px, qty):
    o = v.orders[s]
    rt = _push_resp(v, s, ex_ts, _R_REJECT, _I1, _F0, _F0, _F0)
    _push_action(v, rt, ex_ts, o.order_id, _ACT_REJECTED, o.side, op, reason, px, qty, _I0)


@njit(cache=True)
def _exch_new(v, s, ex_ts):
    o = v.orders[s]
    o.ex_px = o.req_px
    o.ex_leaves_qty = o.req_qty
    if _rate_limited(v, ex_ts):
        o.ex_status = ST_REJECTED
        _reject(v, s, ex_ts, _OP_NEW, _REASON_RATE_LIMIT, o.req_px, o.req_qty)
        return
    if o.ord_type == ORD_MARKET:
        limit_ix = v.n_ticks if o.side > 0 else -1
        o.ex_ix = -1
        o.live_exch_ts = ex_ts
        if not _take(v, s, limit_ix, ex_ts):
            o.ex_status = ST_EXPIRED
            first = o.ex_leaves_qty == o.req_qty
            rt = _push_resp(v, s, ex_ts, _R_EXPIRED, _I1 if first else _I0, _F0, _F0, _F0)
            _push_action(
                v,
                rt,
                ex_ts,
                o.order_id,
                _ACT_EXPIRED,
                o.side,
                _OP_NEW,
                _REASON_NONE,
                o.req_px,
                o.ex_leaves_qty,
                _I0,
            )
        return
    ix = _ix_of(v, o.req_px)
    if ix < 0 or ix >= v.n_ticks:
        o.ex_status = ST_REJECTED
        _reject(v, s, ex_ts, _OP_NEW, _REASON_PRICE_BAND, o.req_px, o.req_qty)
        return
    o.ex_ix = ix
    o.live_exch_ts = ex_ts
    if _crosses(v, o.side, ix):
        if o.tif == TIF_GTX:
            o.ex_status = ST_REJECTED
            v.n_post_only_rejects += 1
            _reject(v, s, ex_ts, _OP_NEW, _REASON_POST_ONLY, o.req_px, o.req_qty)
            return
        first = True
        if _take(v, s, ix, ex_ts):
            return
        first = o.ex_leaves_qty == o.req_qty
        if o.tif == TIF_IOC:
            o.ex_status = ST_EXPIRED
            rt = _push_resp(v, s, ex_ts, _R_EXPIRED, _I1 if first else _I0, _F0, _F0, _F0)
            _push_action(
                v,
                rt,
                ex_ts,
                o.order_id,
                _ACT_EXPIRED,
                o.side,
                _OP_NEW,
                _REASON_NONE,
                o.req_px,
                o.ex_leaves_qty,
                _I0,
            )
            return
        # GTC remainder rests at its price; the levels it took still show in the feed
        _rest(v, s, ex_ts)
        o.cross_ix = v.xba if o.side > 0 else v.xbb
        rt = _push_resp(v, s, ex_ts, _R_ACK_NEW, _I1 if first else _I0, _F0, _F0, _F0)
        _push_action(
            v,
            rt,
            ex_ts,
            o.order_id,
            _ACT_ACKED,
            o.side,
            _OP_NEW,
            _REASON_NONE,
            o.req_px,
            o.ex_leaves_qty,
            _I0,
        )
        return
    if o.tif == TIF_IOC:
        o.ex_status = ST_EXPIRED
        rt = _push_resp(v, s, ex_ts, _R_EXPIRED, _I1, _F0, _F0, _F0)
        _push_action(
            v,
            rt,
            ex_ts,
            o.order_id,
            _ACT_EXPIRED,
            o.side,
            _OP_NEW,
            _REASON_NONE,
            o.req_px,
            o.req_qty,
            _I0,
        )
        return
    _rest(v, s, ex_ts)
    rt = _push_resp(v, s, ex_ts, _R_ACK_NEW, _I1, _F0, _F0, _F0)
    _push_action(
        v,
        rt,
        ex_ts,
        o.order_id,
        _ACT_ACKED,
        o.side,
        _OP_NEW,
        _REASON_NONE,
        o.req_px,
        o.req_qty,
        _I0,
    )


@njit(cache=True)
def _exch_cancel(v, s, ex_ts):
    o = v.orders[s]
    if o.ex_status != ST_LIVE:
        _reject(v, s, ex_ts, _OP_CANCEL, _REASON_UNKNOWN_ORDER, o.ex_px, _F0)
        return
    _live_remove(v, s)
    o.ex_status = ST_CANCELLED
    age = ex_ts - o.live_exch_ts
    rt = _push_resp(v, s, ex_ts, _R_CANCELLED, _I1, _F0, _F0, _F0)
    _push_action(
        v,
        rt,
        ex_ts,
        o.order_id,
        _ACT_CANCELLED,
        o.side,
        _OP_CANCEL,
        _REASON_NONE,
        o.ex_px,
        o.ex_leaves_qty,
        age,
    )


@njit(cache=True)
def _exch_modify(v, s, ex_ts):
    """Cancel-replace: a new price (or a larger size) loses the queue position; a smaller size at
    the same price keeps it. A post-only replace that would cross removes the order (rejected)."""
    o = v.orders[s]
    if o.ex_status != ST_LIVE:
        _reject(v, s, ex_ts, _OP_REPLACE, _REASON_UNKNOWN_ORDER, o.req_px, o.req_qty)
        return
    if _rate_limited(v, ex_ts):
        _reject(v, s, ex_ts, _OP_REPLACE, _REASON_RATE_LIMIT, o.req_px, o.req_qty)
        return
    ix = _ix_of(v, o.req_px)
    if ix < 0 or ix >= v.n_ticks:
        _reject(v, s, ex_ts, _OP_REPLACE, _REASON_PRICE_BAND, o.req_px, o.req_qty)
        return
    age = ex_ts - o.live_exch_ts
    if _crosses(v, o.side, ix):
        # GTX: the exchange drops the order; GTC/IOC: replace as a taker is not simulated, same outcome
        _live_remove(v, s)
        o.ex_status = ST_REJECTED
        if o.tif == TIF_GTX:
            v.n_post_only_rejects += 1
        rt = _push_resp(v, s, ex_ts, _R_REJECT, _I1, _F0, _F0, _F0)
        _push_action(
            v,
            rt,
            ex_ts,
            o.order_id,
            _ACT_REJECTED,
            o.side,
            _OP_REPLACE,
            _REASON_POST_ONLY,
            o.req_px,
            o.req_qty,
            age,
        )
        return
    keep_queue = ix == o.ex_ix and o.req_qty <= o.ex_leaves_qty
    o.ex_px = o.req_px
    o.ex_leaves_qty = o.req_qty
    if keep_queue:
        pass
    else:
        o.ex_ix = ix
        o.live_exch_ts = ex_ts
        o.queue_ahead_qty = v.xbid[ix] if o.side > 0 else v.xask[ix]
        o.cum_trade_qty = 0.0
        o.cross_ix = v.n_ticks + 1 if o.side > 0 else -2
        _live_bounds(v)
    rt = _push_resp(v, s, ex_ts, _R_ACK_MODIFY, _I1, _F0, _F0, _F0)
    _push_action(
        v,
        rt,
        ex_ts,
        o.order_id,
        _ACT_ACKED,
        o.side,
        _OP_REPLACE,
        _REASON_NONE,
        o.req_px,
        o.req_qty,
        _I0,
    )


@njit(cache=True)
def _recompute_next_req(v):
    t = I64_MAX
    for s in range(v.orders.shape[0]):
        a = v.orders[s].req_arrive_ts
        if a < t:
            t = a
    v.next_req_ts = t


@njit(cache=True)
def _process_request(v):
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
        _exch_new(v, s_hit, ts)
    elif r == REQ_CANCEL:
        _exch_cancel(v, s_hit, ts)
    elif r == REQ_MODIFY:
        _exch_modify(v, s_hit, ts)
    _recompute_next_req(v)


@njit(cache=True)
def _apply_response(v):
    """Deliver the earliest response to the local view (ties: insertion order)."""
    best = -1
    bt = I64_MAX
    bseq = I64_MAX
    for k in range(v.n_resp):
        r = v.resp[k]
        if r.ts < bt or (r.ts == bt and r.seq < bseq):
            bt = r.ts
            bseq = r.seq
            best = k
    r = v.resp[best]
    s = r.slot
    o = v.orders[s]
    o.n_resp_pending -= 1
    if o.order_id == r.order_id:
        kind = r.kind
        if kind == R_FILL:
            side = o.side
            v.lo_pos += side * r.fill_qty
            v.lo_cash -= side * contract_value(v, r.fill_px) * r.fill_qty + r.fee
            v.lo_fills += 1
            o.exec_qty += r.fill_qty
            o.leaves_qty = r.leaves_qty
            if r.status == ST_FILLED:
                o.status = ST_FILLED
            elif o.status == ST_PENDING_NEW and r.status == ST_LIVE:
                o.status = ST_LIVE
        elif kind == R_ACK_NEW:
            o.status = ST_LIVE
            o.leaves_qty = r.leaves_qty
            o.px = r.px
        elif kind == R_ACK_MODIFY:
            o.px = r.px
            o.qty = r.qty
            o.leaves_qty = r.leaves_qty
        elif kind == R_CANCELLED:
            o.status = ST_CANCELLED
            o.leaves_qty = 0.0
        elif kind == R_EXPIRED:
            o.status = ST_EXPIRED
            o.leaves_qty = 0.0
        elif kind == R_REJECT and (o.req == REQ_NEW or r.status == ST_REJECTED):
            o.status = ST_REJECTED
            o.leaves_qty = 0.0
        if r.clears_req:
            o.req = REQ_NONE
    # remove by moving the last entry here (selection is by (ts, seq), so order is irrelevant)
    v.n_resp -= 1
    if best != v.n_resp:
        v.resp[best] = v.resp[v.n_resp]
    t = I64_MAX
    for k in range(v.n_resp):
        if v.resp[k].ts < t:
            t = v.resp[k].ts
    v.next_resp_ts = t
    return bt


@njit(cache=True)
def _goto(v, target, wait):
    """Process everything with time <= target in time order; at equal times (as hftbacktest's
    event set): local data, then order responses, then exchange data, then order arrivals at the
    exchange. ``wait`` = 1 stops after the last row of the first local feed message
    (all rows sharing its local_ts) or after a response. Returns OK / WAIT_FEED / WAIT_RESPONSE / END_OF_DATA.

    Speed: market data between two order events is merged in a tight inner loop that keeps both
    books' best indices in locals (written back before anything else reads them); depth updates
    take an inline fast path while no own order rests at the exchange."""
    ev = v.ev
    exch_idx = v.exch_idx
    local_idx = v.local_idx
    xbid = v.xbid
    xask = v.xask
    lbid = v.lbid
    lask = v.lask
    n_e = exch_idx.shape[0]
    n_l = local_idx.shape[0]
    inv_tick = 1.0 / v.tick_px
    tick_lo = v.tick_lo
    n = v.n_ticks
    ei = v.ei
    li = v.li
    xbb = v.xbb
    xba = v.xba
    lbb = v.lbb
    lba = v.lba
    mbb = v.mark_bb
    mba = v.mark_ba
    te = ev[exch_idx[ei]].exch_ts if ei < n_e else I64_MAX
    tl = ev[local_idx[li]].local_ts if li < n_l else I64_MAX
    while True:
        to = v.next_req_ts
        tr = v.next_resp_ts
        tq = min(to, tr)
        blo = v.live_bid_lo
        bhi = v.live_bid_hi
        alo = v.live_ask_lo
        ahi = v.live_ask_hi
        # ---- market data up to the next order event (ties: see the docstring)
        while True:
            if te < tl:
                if te > target or te >= tr or te > to:
                    break
                r = exch_idx[ei]
                evv = ev[r].ev
                kind = evv & 0xFF
                fast = kind == DEPTH_EVENT or kind == DEPTH_SNAPSHOT_EVENT  # noqa: SIM109
                ix = 0
                if fast:
                    ix = np.int64(np.floor(ev[r].px * inv_tick + 0.5)) - tick_lo
                    # a level holding one of our orders needs the queue model: slow path
                    if evv & BUY_EVENT:  # noqa: SIM108
                        fast = ix < blo or ix > bhi
                    else:
                        fast = ix < alo or ix > ahi
                if fast:
                    if ix < 0 or ix >= n:
                        v.n_out_of_band += 1
                    elif evv & BUY_EVENT:
                        xbb, xba = _bid_update(xbid, xask, xbb, xba, n, ix, ev[r].qty, _FALSE)
                    elif evv & SELL_EVENT:
                        xbb, xba = _ask_update(xbid, xask, xbb, xba, n, ix, ev[r].qty, _FALSE)
                    if xba <= bhi or xbb >= alo:
                        # the book moved through a resting order
                        v.xbb = xbb
                        v.xba = xba
                        _cross_check(v, te)
                        blo = v.live_bid_lo
                        bhi = v.live_bid_hi
                        alo = v.live_ask_lo
                        ahi = v.live_ask_hi
                        to = v.next_req_ts
                        tr = v.next_resp_ts
                        tq = min(to, tr)
                    if xbb != mbb or xba != mba:
                        v.xbb = xbb
                        v.xba = xba
                        _maybe_mark(v, te)
                        mbb = xbb
                        mba = xba
                else:
                    v.xbb = xbb
                    v.xba = xba
                    v.exch_now = te
                    _process_exch(v, evv, te, ev[r].px, ev[r].qty, xbid, xask, inv_tick, tick_lo, n)
                    xbb = v.xbb
                    xba = v.xba
                    mbb = v.mark_bb
                    mba = v.mark_ba
                    # fills may have queued responses (possibly due now) and removed resting orders
                    to = v.next_req_ts
                    tr = v.next_resp_ts
                    tq = min(to, tr)
                    blo = v.live_bid_lo
                    bhi = v.live_bid_hi
                    alo = v.live_ask_lo
                    ahi = v.live_ask_hi
                ei += 1
                te = ev[exch_idx[ei]].exch_ts if ei < n_e else I64_MAX
            else:
                if tl > target or tl > tq:
                    break
                r = local_idx[li]
                evv = ev[r].ev
                kind = evv & 0xFF
                if kind == DEPTH_EVENT or kind == DEPTH_SNAPSHOT_EVENT:  # noqa: SIM109
                    ix = np.int64(np.floor(ev[r].px * inv_tick + 0.5)) - tick_lo
                    if ix >= 0 and ix < n:
                        if evv & BUY_EVENT:
                            lbb, lba = _bid_update(lbid, lask, lbb, lba, n, ix, ev[r].qty, _FALSE)
                        elif evv & SELL_EVENT:
                            lbb, lba = _ask_update(lbid, lask, lbb, lba, n, ix, ev[r].qty, _FALSE)
                else:
                    v.lbb = lbb
                    v.lba = lba
                    _process_local(
                        v, evv, tl, ev[r].px, ev[r].qty, lbid, lask, inv_tick, tick_lo, n
                    )
                    lbb = v.lbb
                    lba = v.lba
                li += 1
                tl = ev[local_idx[li]].local_ts if li < n_l else I64_MAX
                # one feed message is many rows sharing a local_ts: stop only after its last row,
                # so a strategy never sees a half-applied book update
                if wait and tl != ev[r].local_ts:
                    v.xbb = xbb
                    v.xba = xba
                    v.lbb = lbb
                    v.lba = lba
                    v.ei = ei
                    v.li = li
                    v.now = ev[r].local_ts
                    return WAIT_FEED
        v.xbb = xbb
        v.xba = xba
        v.lbb = lbb
        v.lba = lba
        v.ei = ei
        v.li = li
        to = v.next_req_ts
        tr = v.next_resp_ts
        tq = min(to, tr)
        if te == I64_MAX and tl == I64_MAX:
            # no data left: deliver what is in flight up to target, then report the end
            while v.next_req_ts <= target or v.next_resp_ts <= target:
                if v.next_req_ts < v.next_resp_ts:
                    _process_request(v)
                else:
                    _apply_response(v)
            if target > v.now:
                v.now = target
            return END_OF_DATA
        if tq > target:
            v.now = target
            return OK
        # ---- one order event (a response first at a tie)
        if to < tr:
            _process_request(v)
        else:
            _apply_response(v)
            if wait:
                v.now = tr
                return WAIT_RESPONSE
        xbb = v.xbb
        xba = v.xba


# ================================================================ public verbs (compiled)
@njit(cache=True)
def elapse(v, dt_ns):
    """Advance local time by ``dt_ns``; OK, or END_OF_DATA once no market data is left."""
    return _goto(v, v.now + dt_ns, np.int64(0))  # non-literal: one compiled _goto for all verbs


@njit(cache=True)
def goto(v, local_ts):
    """Advance local time to ``local_ts`` (no-op if already past); OK or END_OF_DATA."""
    return _goto(v, max(local_ts, v.now), np.int64(0))


@njit(cache=True)
def wait_next(v, timeout_ns):
    """Advance to the next local feed event or order response, at most ``timeout_ns``.
    Returns WAIT_FEED, WAIT_RESPONSE, OK (timeout) or END_OF_DATA."""
    return _goto(v, v.now + timeout_ns, np.int64(1))


@njit(cache=True)
def feed(v, ev, exch_idx, local_idx):
    """Continue the market with the next block of events (a live feed, a looped capture): books,
    orders, accounts and records carry over; ``exch_idx``/``local_idx`` as ``make_venue`` builds
    them. The current block must be used up (returns ERR_PENDING otherwise) and the new rows must
    not precede the venue's clock (ERR_PAST); on success OK. Only the data source changes: the
    per-event loop is the same ``_goto``."""
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


# ---- local book view (what the strategy sees, updated at local_ts)
@njit(cache=True)
def tick_px(v):
    return v.tick_px


@njit(cache=True)
def lot_qty(v):
    return v.lot_qty


@njit(cache=True)
def best_bid_px(v):
    """NaN when the bid side is empty."""
    return _px_of(v, v.lbb) if v.lbb >= 0 else np.nan


@njit(cache=True)
def best_ask_px(v):
    return _px_of(v, v.lba) if v.lba < v.n_ticks else np.nan


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
    if v.lbb < 0 or v.lba >= v.n_ticks:
        return np.nan
    return (_px_of(v, v.lbb) + _px_of(v, v.lba)) * 0.5


@njit(cache=True)
def qty_at_px(v, side, px):
    """Local book quantity at ``px`` on ``side`` (+1 bids / -1 asks); 0 outside the ladder."""
    ix = _ix_of(v, px)
    if ix < 0 or ix >= v.n_ticks:
        return 0.0
    return v.lbid[ix] if side > 0 else v.lask[ix]


@njit(cache=True)
def qty_within_ticks(v, side, n_ticks):
    """Total local quantity on ``side`` at prices within ``n_ticks`` ticks of that side's touch
    (``n_ticks`` = 0: the touch only)."""
    tot = 0.0
    if side > 0:
        if v.lbb < 0:
            return 0.0
        lo = max(v.lbb - n_ticks, 0)
        for j in range(lo, v.lbb + 1):
            tot += v.lbid[j]
    else:
        if v.lba >= v.n_ticks:
            return 0.0
        hi = min(v.lba + n_ticks, v.n_ticks - 1)
        for j in range(v.lba, hi + 1):
            tot += v.lask[j]
    return tot


@njit(cache=True)
def depth_levels(v, side, px_out, qty_out, n_levels):
    """The first ``n_levels`` non-empty local levels on ``side`` (best first) into ``px_out`` /
    ``qty_out``; NaN / 0 past the book. Scans at most ``DEPTH_SCAN_TICKS`` ticks from the touch."""
    k = 0
    if side > 0:
        j = v.lbb
        lo = max(j - DEPTH_SCAN_TICKS, 0)
        while j >= lo and k < n_levels and j >= 0:
            if v.lbid[j] > 0.0:
                px_out[k] = _px_of(v, j)
                qty_out[k] = v.lbid[j]
                k += 1
            j -= 1
    else:
        j = v.lba
        hi = min(j + DEPTH_SCAN_TICKS, v.n_ticks - 1)
        while j <= hi and k < n_levels and j < v.n_ticks:
            if v.lask[j] > 0.0:
                px_out[k] = _px_of(v, j)
                qty_out[k] = v.lask[j]
                k += 1
            j += 1
    while k < n_levels:
        px_out[k] = np.nan
        qty_out[k] = 0.0
        k += 1


# ---- exchange-side view (matching uses it; for records and tests, not for strategies)
@njit(cache=True)
def exch_best_bid_px(v):
    return _px_of(v, v.xbb) if v.xbb >= 0 else np.nan


@njit(cache=True)
def exch_best_ask_px(v):
    return _px_of(v, v.xba) if v.xba < v.n_ticks else np.nan


@njit(cache=True)
def exch_mid_px(v):
    return _exch_mid(v)


@njit(cache=True)
def exch_qty_at_px(v, side, px):
    ix = _ix_of(v, px)
    if ix < 0 or ix >= v.n_ticks:
        return 0.0
    return v.xbid[ix] if side > 0 else v.xask[ix]


# ---- local trades
@njit(cache=True)
def trades_seen(v):
    """Count of market trades seen locally so far; trade k is ``local_trades(v)[k % TRADE_RING]``."""
    return v.n_trades


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


# ---- own orders and account (local view: what the strategy has been told)
@njit(cache=True)
def orders(v):
    """The slot array (ORDER_DTYPE). Read-only by convention; ``status``/``req``/``px``/``leaves_qty``
    are the local view, ``ex_*``/``queue_ahead_qty`` the exchange's (simulation truth)."""
    return v.orders


@njit(cache=True)
def find_order(v, order_id):
    """Slot index holding ``order_id`` or -1."""
    for s in range(v.orders.shape[0]):
        if v.orders[s].order_id == order_id:
            return s
    return -1


@njit(cache=True)
def open_order_count(v, side):
    """Orders on ``side`` (0 = both) that are pending-new or live in the local view."""
    c = 0
    for s in range(v.orders.shape[0]):
        o = v.orders[s]
        if (o.status == ST_PENDING_NEW or o.status == ST_LIVE) and (side == 0 or o.side == side):
            c += 1
    return c


@njit(cache=True)
def inflight_count(v):
    """Requests sent whose answer has not reached the strategy yet."""
    c = 0
    for s in range(v.orders.shape[0]):
        if v.orders[s].req != REQ_NONE:
            c += 1
    return c


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
    if v.lo_pos == 0.0:
        return v.lo_cash
    return v.lo_cash + v.lo_pos * contract_value(v, mid_px(v))


@njit(cache=True)
def exch_position_qty(v):
    return v.ex_pos


@njit(cache=True)
def exch_equity(v):
    if v.ex_pos == 0.0:
        return v.ex_cash
    return v.ex_cash + v.ex_pos * contract_value(v, _exch_mid(v))


# ---- actions
@njit(cache=True)
def _check_px_qty(v, px, qty, need_px):
    if not (qty > 0.0) or not np.isfinite(qty):
        _set_error(v, np.int64(ERR_BAD_QTY), qty)
        return ERR_BAD_QTY
    q = qty / v.lot_qty
    if abs(q - np.round(q)) > 1e-6 * max(1.0, abs(q)):
        _set_error(v, np.int64(ERR_OFF_LOT), qty)
        return ERR_OFF_LOT
    if need_px:
        if not (px > 0.0) or not np.isfinite(px):
            _set_error(v, np.int64(ERR_BAD_PX), px)
            return ERR_BAD_PX
        t = px / v.tick_px
        if abs(t - np.round(t)) > 1e-6:
            _set_error(v, np.int64(ERR_OFF_TICK), px)
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
def submit(v, side, px, qty, tif, ord_type):
    """Send a new order at the current local time; returns its order id (> 0) or a negative ERR_*.
    ``px`` is ignored for ORD_MARKET. It reaches the exchange after the entry latency."""
    if side != 1 and side != -1:
        _set_error(v, np.int64(ERR_BAD_SIDE), side)
        return ERR_BAD_SIDE
    if tif < TIF_GTC or tif > TIF_IOC or ord_type < ORD_LIMIT or ord_type > ORD_MARKET:
        _set_error(v, np.int64(ERR_BAD_TIF), tif * 10 + ord_type)
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
    px_r = _px_of(v, _ix_of(v, px)) if ord_type != ORD_MARKET else np.nan
    o.order_id = oid
    o.side = side
    o.tif = tif
    o.ord_type = ord_type
    o.status = ST_PENDING_NEW
    o.req = REQ_NEW
    o.px = px_r
    o.qty = qty
    o.leaves_qty = qty
    o.exec_qty = 0.0
    o.create_local_ts = v.now
    o.req_px = px_r
    o.req_qty = qty
    o.req_sent_ts = v.now
    o.req_arrive_ts = v.now + _entry_latency(v, v.now)
    o.req_seq = v.resp_seq  # one counter orders requests and responses
    v.resp_seq += 1
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
    if o.req_arrive_ts < v.next_req_ts:
        v.next_req_ts = o.req_arrive_ts
    _push_action(v, v.now, _I0, oid, _ACT_SENT, side, _OP_NEW, _REASON_NONE, px_r, qty, _I0)
    return oid


@njit(cache=True)
def cancel(v, order_id):
    """Request a cancel; 0 or ERR_NOT_LIVE / ERR_PENDING (one request per order in flight)."""
    s = find_order(v, order_id)
    if s < 0:
        return ERR_NOT_LIVE
    o = v.orders[s]
    if o.req != REQ_NONE:
        return ERR_PENDING
    if o.status != ST_LIVE:
        return ERR_NOT_LIVE
    o.req = REQ_CANCEL
    o.req_sent_ts = v.now
    o.req_arrive_ts = v.now + _entry_latency(v, v.now)
    o.req_seq = v.resp_seq  # one counter orders requests and responses
    v.resp_seq += 1
    if o.req_arrive_ts < v.next_req_ts:
        v.next_req_ts = o.req_arrive_ts
    _push_action(
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
    s = find_order(v, order_id)
    if s < 0:
        return ERR_NOT_LIVE
    o = v.orders[s]
    if o.req != REQ_NONE:
        return ERR_PENDING
    if o.status != ST_LIVE:
        return ERR_NOT_LIVE
    rc = _check_px_qty(v, px, qty, True)
    if rc < 0:
        return rc
    px_r = _px_of(v, _ix_of(v, px))
    o.req = REQ_MODIFY
    o.req_px = px_r
    o.req_qty = qty
    o.req_sent_ts = v.now
    o.req_arrive_ts = v.now + _entry_latency(v, v.now)
    o.req_seq = v.resp_seq  # one counter orders requests and responses
    v.resp_seq += 1
    if o.req_arrive_ts < v.next_req_ts:
        v.next_req_ts = o.req_arrive_ts
    _push_action(
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
    _push_action(v, v.now, _I0, order_id, kind, side, op, reason, px, qty, _I0)


# ---- results (trimmed copies; the Python finish() wraps these)
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
            _exch_mid(v),
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
