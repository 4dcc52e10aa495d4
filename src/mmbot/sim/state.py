"""The venue's state: the ``Venue`` structref (its field layout is the seam every other part of
``mmbot.sim`` works on), the order / response / trade record layouts, construction, and the
price-ladder coordinates (tick index <-> price) and contract value.
"""

from __future__ import annotations

import hashlib

import numba
import numpy as np
from numba import njit, types
from numba.experimental import structref

from mmbot.events import (
    EVENT_DTYPE,
)
from mmbot.records import (
    ACTION_DTYPE,
    FILL_DTYPE,
    MARK_DTYPE,
)

from .codes import (
    I64_MAX,
)

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
# a local depth row farther than this from its side's touch (the touch unmoved) leaves
# ``lbook_ver`` as it is: what a wake reads of the book (depth scan, near-touch size) lies within it
VIEW_BAND_TICKS = 128


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
    # per side, bumped by every local book row that moves that side's touch or changes one of its
    # levels within VIEW_BAND_TICKS of it: a wake whose version of a side is the last wake's can
    # reuse what it read of that side
    ("lbid_ver", _i8),
    ("lask_ver", _i8),
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
    ("n_inflight", _i8),  # orders with a request sent and not yet answered (req != REQ_NONE)
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
    _init_books(v, n_ticks)
    _init_orders(v, max_orders, n_ticks)
    _init_accounts_and_records(v, rate_limit)
    return v


@njit(cache=True)
def _init_books(v, n_ticks):
    """Both books empty: zero ladders, best bid -1, best ask ``n_ticks``."""
    v.xbid = np.zeros(n_ticks, np.float64)
    v.xask = np.zeros(n_ticks, np.float64)
    v.xbb = -1
    v.xba = n_ticks
    v.lbid = np.zeros(n_ticks, np.float64)
    v.lask = np.zeros(n_ticks, np.float64)
    v.lbb = -1
    v.lba = n_ticks
    v.lbid_ver = 0
    v.lask_ver = 0


@njit(cache=True)
def _init_orders(v, max_orders, n_ticks):
    """Empty order slots, live list and response queue."""
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
    v.n_inflight = 0
    v.resp = np.zeros(64, RESP_DTYPE)
    v.n_resp = 0
    v.resp_seq = 0
    v.next_resp_ts = I64_MAX


@njit(cache=True)
def _init_accounts_and_records(v, rate_limit):
    """Zero accounts, empty trade ring, rate-limit window, record buffers and counters."""
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


@njit(cache=True, forceinline=True)
def ladder_px(ix, tick_lo, tick_units, px_scale):
    """Price of ladder index ``ix`` from the venue's tick fields (scalars: a hot path that has
    them in hand skips handing the venue over, each hand-over an atomic reference-count pair)."""
    # integer ticks x integer tick units / 10**decimals: one correctly rounded division, so the
    # result is the double nearest the exchange's decimal price (57000.1, not 57000.100000000006)
    return ((ix + tick_lo) * tick_units) / px_scale


@njit(cache=True, forceinline=True)
def ladder_mid(bb, ba, n_ticks, tick_lo, tick_units, px_scale):
    """`mid_of` from the venue's tick fields (see `ladder_px`)."""
    if bb < 0 or ba >= n_ticks:
        return np.nan
    return (
        ladder_px(bb, tick_lo, tick_units, px_scale) + ladder_px(ba, tick_lo, tick_units, px_scale)
    ) * 0.5


@njit(cache=True)
def px_of(v, ix):
    return ladder_px(ix, v.tick_lo, v.tick_units, v.px_scale)


@njit(cache=True, forceinline=True)
def ladder_ix(px, tick_px, tick_lo):
    """Ladder index of price ``px`` from the venue's tick fields (`ix_of` without the venue)."""
    return np.int64(np.round(px / tick_px)) - tick_lo


@njit(cache=True)
def ix_of(v, px):
    return ladder_ix(px, v.tick_px, v.tick_lo)


@njit(cache=True)
def set_error(v, code, val):
    if v.err_code == 0:
        v.err_code = code
        v.err_ts = v.now
        v.err_val = val


@njit(cache=True)
def mid_of(v, bb, ba):
    """Mid of a book whose best bid / ask sit at ladder indices ``bb`` / ``ba``; NaN unless both
    sides are present."""
    return ladder_mid(bb, ba, v.n_ticks, v.tick_lo, v.tick_units, v.px_scale)


@njit(cache=True)
def exch_mid(v):
    return mid_of(v, v.xbb, v.xba)


@njit(cache=True)
def contract_value(v, px):
    """Settle-coin value of one contract at ``px`` (mmbot.instruments): ctr_size*px, or
    -ctr_size/px for an inverse contract. Cash moves by -side*value*qty on a fill."""
    if v.inverse != 0:
        return -v.ctr_size / px
    return px * v.ctr_size
