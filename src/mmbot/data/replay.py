"""The numba-compiled continuity / book / repair pass every reader ends with.

Two numba passes:

``sequence_check`` (message level, file = receive order, as the venues document it): Binance USD-M
``pu == previous u``, Binance spot ``U == previous u + 1``, Bybit ``u == previous u + 1``. A gap drops
depth updates until the next snapshot resyncs the book. Binance: diffs with ``u`` below the
snapshot's ``lastUpdateId`` are stale; the first kept diff straddles it (looked for also among the
diffs received just before the snapshot line, in the same read block).

``replay`` (row level): input "stage" rows (one per price level, trade or BBO side) of the accepted
messages ordered by exchange time. Output: ``EVENT_DTYPE`` rows, in the same order, with
``EXCH_EVENT | LOCAL_EVENT`` set, after:

- snapshot handling: a snapshot emits ``DEPTH_CLEAR | side`` (px = deepest snapshot price, i.e.
  "clear from the touch up to this price", hftbacktest's convention) then ``DEPTH_SNAPSHOT`` levels;
- row validation: NaN / infinite / non-positive price, NaN / negative quantity -> row dropped;
- crossed-book repair: after each depth/BBO message, while best bid >= best ask the stale side's
  touch level (the one this message did not just set) is deleted by an emitted ``qty = 0`` depth
  row marked ``ival = REPAIR_IVAL``; so a book replayed from the output is never crossed;
- BBO rows (``bookTicker``): levels better than the BBO price on its side are stale and are
  deleted by emitted ``qty = 0`` rows (``ival = REPAIR_IVAL``, counted), then the level is set;
- local time: the constant clock offset is added and a local time still before exchange time is
  clamped to ``exch_ts + base_latency_ns`` (counted). Local time is otherwise kept as received, so
  it may go back in exchange order (an event received before an earlier-stamped one); such
  inversions are counted (``local_order_inversion``, not a repair) and consumers replay local rows
  in local-time order, as hftbacktest does.

All state lives in ``state`` (int64 array) and the book's two hash tables (``mmbot.book``'s
table storage: price key -> qty, plain arrays), so the pass resumes across chunks: memory is
bounded by the book size, not the file size. The crossed-book rule is ``mmbot.book``'s repair
rule (``stale_sides``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mmbot import book as bk_
from mmbot import events as ev_

STAGE_DTYPE = np.dtype(
    [
        ("ev", "u8"),  # kind | side flag (0 = placeholder row of a message without rows)
        ("exch_ts", "i8"),
        ("local_ts", "i8"),
        ("px", "f8"),
        ("qty", "f8"),
        ("msg", "i8"),  # global message number (file order): rows of one message share it
        ("mtype", "i8"),  # MT_*
    ]
)

# message types
MT_DIFF = 0
MT_SNAPSHOT = 1
MT_TRADE = 2
MT_BBO = 3

# sequence-check modes
SEQ_NONE = 0
SEQ_BINANCE_FUT = 1
SEQ_BINANCE_SPOT = 2
SEQ_BYBIT = 3

REPAIR_IVAL = 1  # ival of rows synthesized by a repair (deletions of crossed levels)

# counters (index -> name in COUNTER_NAMES)
C_SEQ_GAP = 0
C_DEPTH_UNSYNCED = 1
C_DEPTH_STALE = 2
C_CROSSED_BOOK = 3
C_CROSSED_LEVEL = 4
C_BAD_PRICE = 5
C_BAD_QTY = 6
C_LOCAL_CLAMPED = 7
C_LOCAL_INVERSION = 8
C_RESYNC = 9
C_LOCAL_INVERSION_MAX_NS = 10
C_BBO_STALE_LEVEL = 11
C_SNAP_SKIPPED = 12
N_COUNTERS = 13
# message decision codes of sequence_check
R_ACCEPT = 0
R_UNSYNCED = 1
R_STALE = 2
COUNTER_NAMES = (
    "sequence_gap",
    "depth_msg_dropped_unsynced",
    "depth_msg_dropped_stale",
    "crossed_book",
    "crossed_level_removed",
    "bad_price_row_dropped",
    "bad_qty_row_dropped",
    "local_before_exch_clamped",
    "local_order_inversion",
    "resync_from_snapshot",
    "local_order_inversion_max_ns",
    "stale_level_removed_by_bbo",
    "snapshot_skipped_older_than_book",
)

# state slots
S_SYNCED = 0
S_LAST_U = 1
S_HAVE_SNAP = 2
S_SNAP_ID = 3
S_LOCAL_MAX = 4
S_OFFSET_NS = 5
S_BASE_LAT_NS = 6
S_GAP_PENDING = 7
S_BOOK = 8  # the book state (``mmbot.book``: best keys, price step, level counts) from here
N_STATE = S_BOOK + bk_.N_BOOK_STATE


def new_state(offset_ns: int, base_latency_ns: int) -> np.ndarray:
    st = np.zeros(N_STATE, dtype=np.int64)
    st[S_LOCAL_MAX] = np.iinfo(np.int64).min
    st[S_OFFSET_NS] = offset_ns
    st[S_BASE_LAT_NS] = base_latency_ns
    st[S_BOOK:] = bk_.new_book_state()
    return st


def book_state(st: np.ndarray) -> np.ndarray:
    """The book part of a reader state (a view: ``mmbot.book``'s ``B_*`` slots)."""
    return st[S_BOOK:]


def new_books(capacity: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(bid_keys, bid_qty, ask_keys, ask_qty) hash tables; they grow in ``replay``."""
    return bk_.new_tables(capacity)


@njit(cache=True, inline="always")
def _grow(out, n_out, need):
    if n_out + need <= len(out):
        return out
    new = np.empty(max(2 * len(out), n_out + need + 1024), dtype=out.dtype)
    new[:n_out] = out[:n_out]
    return new


@njit(cache=True)
def _valid_px(px: float) -> bool:
    return np.isfinite(px) and px > 0.0


@njit(cache=True, inline="always")
def _local_time(recv_ts, exch_ts, st, counters):
    """Local time of a message: clock offset added, clamped when before exchange time; an
    inversion (received before an event stamped earlier) is kept as received and counted."""
    loc = recv_ts + st[S_OFFSET_NS]
    if loc < exch_ts:
        counters[C_LOCAL_CLAMPED] += 1
        loc = exch_ts + st[S_BASE_LAT_NS]
    if loc < st[S_LOCAL_MAX]:
        counters[C_LOCAL_INVERSION] += 1
        d = st[S_LOCAL_MAX] - loc
        if d > counters[C_LOCAL_INVERSION_MAX_NS]:
            counters[C_LOCAL_INVERSION_MAX_NS] = d
    else:
        st[S_LOCAL_MAX] = loc
    return loc


@njit(cache=True)
def _snapshot_clears(rows, i, j, scale, bk, bv, ak, av, bs, out, n_out, ts):
    """A snapshot message: one CLEAR per side up to its deepest price (then its levels follow).
    ``ts`` = (exchange time, local time) of the message. Returns the next free row."""
    deep_bid = np.inf
    deep_ask = -np.inf
    for r in range(i, j):
        px = rows[r].px
        if rows[r].ev == 0 or not _valid_px(px):
            continue
        if rows[r].ev & ev_.BUY_EVENT:
            deep_bid = min(deep_bid, px)
        else:
            deep_ask = max(deep_ask, px)
    mkt = ev_.EXCH_EVENT | ev_.LOCAL_EVENT
    if np.isfinite(deep_bid):
        bk_.table_clear_upto(bk, bv, np.int64(np.round(deep_bid * scale)), True, bs)
        ev = ev_.DEPTH_CLEAR_EVENT | ev_.BUY_EVENT | mkt
        n_out = ev_.put_event(out, n_out, ev, ts[0], ts[1], deep_bid, 0.0, 0)
    if np.isfinite(deep_ask):
        bk_.table_clear_upto(ak, av, np.int64(np.round(deep_ask * scale)), False, bs)
        ev = ev_.DEPTH_CLEAR_EVENT | ev_.SELL_EVENT | mkt
        n_out = ev_.put_event(out, n_out, ev, ts[0], ts[1], deep_ask, 0.0, 0)
    return n_out


@njit(cache=True)
def _bbo_stale(key, is_bid, bk, bv, ak, av, bs, out, n_out, room, ts, scale, counters):
    """A BBO row says nothing is better on its side: delete the stale better levels there
    (``mmbot.book.table_drop_better_step``), each as an emitted ``qty = 0`` repair row, so every
    consumer's book agrees. Returns (out, n_out)."""
    side = (ev_.BUY_EVENT if is_bid else ev_.SELL_EVENT) | ev_.EXCH_EVENT | ev_.LOCAL_EVENT
    keys, vals, none = (bk, bv, bk_.NO_BID) if is_bid else (ak, av, bk_.NO_ASK)
    while True:
        stale = bk_.table_drop_better_step(keys, vals, key, is_bid, bs)
        if stale == none:
            return out, n_out
        out = _grow(out, n_out, room)
        n_out = ev_.put_event(
            out, n_out, ev_.DEPTH_EVENT | side, ts[0], ts[1], stale / scale, 0.0, REPAIR_IVAL
        )
        counters[C_BBO_STALE_LEVEL] += 1


@njit(cache=True)
def _uncross(bk, bv, ak, av, bs, bid_set, ask_set, out, n_out, ts, scale, counters):
    """Crossed-book repair (``mmbot.book.table_uncross_step``): delete stale touches until
    uncrossed, each as an emitted ``qty = 0`` repair row. Returns (out, n_out)."""
    counters[C_CROSSED_BOOK] += 1
    mkt = ev_.EXCH_EVENT | ev_.LOCAL_EVENT
    while True:
        gone_bid, gone_ask = bk_.table_uncross_step(bk, bv, ak, av, bs, bid_set, ask_set)
        if gone_bid == bk_.NO_BID and gone_ask == bk_.NO_ASK:
            return out, n_out
        out = _grow(out, n_out, 4)
        if gone_bid != bk_.NO_BID:
            ev = ev_.DEPTH_EVENT | ev_.BUY_EVENT | mkt
            n_out = ev_.put_event(out, n_out, ev, ts[0], ts[1], gone_bid / scale, 0.0, REPAIR_IVAL)
            counters[C_CROSSED_LEVEL] += 1
        if gone_ask != bk_.NO_ASK:
            ev = ev_.DEPTH_EVENT | ev_.SELL_EVENT | mkt
            n_out = ev_.put_event(out, n_out, ev, ts[0], ts[1], gone_ask / scale, 0.0, REPAIR_IVAL)
            counters[C_CROSSED_LEVEL] += 1


@njit(cache=True, inline="always")
def _message_rows(rows, i, j, scale, bk, bv, ak, av, bs, out, n_out, ts, counters):
    """The rows of one message (``rows[i:j]``): bad prices and quantities dropped (counted), book
    rows applied (a BBO row first removes the stale better levels), every kept row emitted.
    Returns (out, n_out, best bid key set, best ask key set) (NO_BID / NO_ASK: none)."""
    mt = rows[i].mtype
    mkt = ev_.EXCH_EVENT | ev_.LOCAL_EVENT
    bid_set = bk_.NO_BID
    ask_set = bk_.NO_ASK
    for r in range(i, j):
        ev = rows[r].ev
        if ev == 0:
            continue
        px = rows[r].px
        qty = rows[r].qty
        if not _valid_px(px):
            counters[C_BAD_PRICE] += 1
            continue
        if not np.isfinite(qty) or qty < 0.0 or (mt == MT_TRADE and qty == 0.0):
            counters[C_BAD_QTY] += 1
            continue
        if mt != MT_TRADE:
            key = np.int64(np.round(px * scale))
            is_bid = (ev & ev_.BUY_EVENT) != 0
            # called only when a level is stale: a call passing arrays pays their reference counts
            if mt == MT_BBO and bk_.has_better(bs, key, is_bid):
                room = j - r + 2
                out, n_out = _bbo_stale(
                    key, is_bid, bk, bv, ak, av, bs, out, n_out, room, ts, scale, counters
                )
            if is_bid:
                bk_.table_set(bk, bv, key, qty, True, bs)
                if qty > 0.0 and key > bid_set:
                    bid_set = key
            else:
                bk_.table_set(ak, av, key, qty, False, bs)
                if qty > 0.0 and key < ask_set:
                    ask_set = key
        n_out = ev_.put_event(out, n_out, ev | mkt, ts[0], ts[1], px, qty, 0)
    return out, n_out, bid_set, ask_set


@njit(cache=True, nogil=True)
def replay(rows, scale, st, bk, bv, ak, av, counters):
    """Process stage ``rows`` (exchange-time order). Returns ``(events, bk, bv, ak, av)``: the
    book tables may have been reallocated (grown) and must be passed to the next call."""
    n = len(rows)
    out = np.empty(n + 64, dtype=ev_.EVENT_DTYPE)
    n_out = 0
    bs = st[S_BOOK:]
    i = 0
    while i < n:
        m = rows[i].msg
        j = i + 1
        while j < n and rows[j].msg == m:
            j += 1
        mt = rows[i].mtype
        ts = (rows[i].exch_ts, _local_time(rows[i].local_ts, rows[i].exch_ts, st, counters))
        out = _grow(out, n_out, 2 * (j - i) + 4)
        bk, bv = bk_.table_room(bk, bv, bs[bk_.B_NB], j - i)
        ak, av = bk_.table_room(ak, av, bs[bk_.B_NA], j - i)
        if mt == MT_SNAPSHOT:
            n_out = _snapshot_clears(rows, i, j, scale, bk, bv, ak, av, bs, out, n_out, ts)
        out, n_out, bid_set, ask_set = _message_rows(
            rows, i, j, scale, bk, bv, ak, av, bs, out, n_out, ts, counters
        )
        if mt != MT_TRADE and bs[bk_.B_BEST_BID] >= bs[bk_.B_BEST_ASK]:
            out, n_out = _uncross(
                bk, bv, ak, av, bs, bid_set, ask_set, out, n_out, ts, scale, counters
            )
        i = j
    return out[:n_out], bk, bv, ak, av


@njit(cache=True)
def _in_sequence(k, first, last, prev, seq_mode, last_u):
    """Binance: does diff ``k`` follow the last applied update id (USD-M ``pu``, spot ``U``)?"""
    if seq_mode == SEQ_BINANCE_FUT:
        return prev[k] == last_u
    return seq_mode == SEQ_BINANCE_SPOT and first[k] == last_u + 1


@njit(cache=True)
def _gap(st, counters, lose_snapshot):
    """A sequence gap: out of sync until the next snapshot (counted)."""
    counters[C_SEQ_GAP] += 1
    st[S_SYNCED] = 0
    if lose_snapshot:
        st[S_HAVE_SNAP] = 0
    st[S_GAP_PENDING] = 1


@njit(cache=True)
def _sync_before(k, mtype, first, last, prev, seq_mode, st, counters, reason, sync_diff):
    """Binance snapshot ``k``: the diff straddling it may have been received before the snapshot
    line (same block); if so, sync on it and re-decide the diffs between. Returns True if synced."""
    target = first[k] + (1 if seq_mode == SEQ_BINANCE_SPOT else 0)
    kk = -1
    for q in range(k - 1, -1, -1):
        if mtype[q] == MT_SNAPSHOT:
            break
        if mtype[q] == MT_DIFF and first[q] <= target and last[q] >= target:
            kk = q
            break
    if kk < 0:
        return False
    st[S_SYNCED] = 1
    st[S_LAST_U] = last[kk]
    reason[kk] = R_ACCEPT
    sync_diff[k] = kk
    for q in range(kk + 1, k):
        if mtype[q] != MT_DIFF:
            continue
        if last[q] <= st[S_LAST_U]:
            reason[q] = R_STALE
        elif _in_sequence(q, first, last, prev, seq_mode, st[S_LAST_U]):
            reason[q] = R_ACCEPT
            st[S_LAST_U] = last[q]
        else:
            _gap(st, counters, True)
            for q2 in range(q, k):
                if mtype[q2] == MT_DIFF:
                    reason[q2] = R_UNSYNCED
            break
    return True


@njit(cache=True)
def _on_snapshot(k, mtype, first, last, prev, seq_mode, st, counters, reason, sync_diff, snap_k):
    """Snapshot message ``k``; returns the index of the snapshot awaiting its first diff."""
    if st[S_GAP_PENDING] != 0:
        counters[C_RESYNC] += 1
        st[S_GAP_PENDING] = 0
    if seq_mode != SEQ_BINANCE_FUT and seq_mode != SEQ_BINANCE_SPOT:
        st[S_SYNCED] = 1
        st[S_LAST_U] = last[k]
        return snap_k
    if st[S_SYNCED] != 0 and first[k] <= st[S_LAST_U]:
        # in sync and the snapshot is not newer than the diffs applied: applying it would
        # rewind the book, so it is skipped (counted)
        reason[k] = R_STALE
        counters[C_SNAP_SKIPPED] += 1
        return snap_k
    st[S_HAVE_SNAP] = 1
    st[S_SNAP_ID] = first[k]
    st[S_SYNCED] = 0
    if _sync_before(k, mtype, first, last, prev, seq_mode, st, counters, reason, sync_diff):
        return -1
    return k


@njit(cache=True)
def _bybit_diff(k, last, st, counters):
    """Bybit diff ``k`` (``u == previous u + 1``): its decision code."""
    if st[S_SYNCED] == 0:
        return R_UNSYNCED
    if last[k] == st[S_LAST_U] + 1:
        st[S_LAST_U] = last[k]
        return R_ACCEPT
    if last[k] <= st[S_LAST_U]:
        return R_STALE
    counters[C_SEQ_GAP] += 1
    st[S_SYNCED] = 0
    st[S_GAP_PENDING] = 1
    return R_UNSYNCED


@njit(cache=True)
def _binance_diff(k, first, last, prev, seq_mode, st, counters, reason, sync_diff, snap_k):
    """Binance diff ``k``: in sync, it must follow the last update id; awaiting a snapshot's first
    diff, it must straddle the snapshot's id. Returns the snapshot still awaiting its first diff."""
    if st[S_SYNCED] != 0:
        if last[k] <= st[S_LAST_U]:
            reason[k] = R_STALE
        elif _in_sequence(k, first, last, prev, seq_mode, st[S_LAST_U]):
            st[S_LAST_U] = last[k]
        else:
            reason[k] = R_UNSYNCED
            _gap(st, counters, True)
        return snap_k
    if st[S_HAVE_SNAP] == 0:
        reason[k] = R_UNSYNCED
        return snap_k
    target = st[S_SNAP_ID] + (1 if seq_mode == SEQ_BINANCE_SPOT else 0)
    if last[k] < target:
        reason[k] = R_STALE
        return snap_k
    if first[k] <= target:
        st[S_SYNCED] = 1
        st[S_LAST_U] = last[k]
        if snap_k >= 0:
            sync_diff[snap_k] = k
        return -1
    # the diffs following the snapshot are missing: wait for the next snapshot
    counters[C_SEQ_GAP] += 1
    reason[k] = R_UNSYNCED
    st[S_HAVE_SNAP] = 0
    st[S_GAP_PENDING] = 1
    return snap_k


@njit(cache=True)
def sequence_check(mtype, first, last, prev, seq_mode, st, counters, reason, sync_diff):
    """Decide per message (file order) whether a depth diff is applied.

    ``reason[k]`` gets R_ACCEPT / R_UNSYNCED / R_STALE; ``sync_diff[k]`` for a snapshot k is the index
    (in this block) of the diff that synced on it, or -1: the caller keeps the snapshot's exchange
    time no later than that diff's. ``st`` and ``counters`` persist across blocks.
    """
    snap_k = -1  # index in this block of the snapshot awaiting its first diff
    for k in range(len(mtype)):
        reason[k] = R_ACCEPT
        sync_diff[k] = -1
        mt = mtype[k]
        if mt == MT_SNAPSHOT:
            snap_k = _on_snapshot(
                k, mtype, first, last, prev, seq_mode, st, counters, reason, sync_diff, snap_k
            )
        elif mt != MT_DIFF or seq_mode == SEQ_NONE:
            continue
        elif seq_mode == SEQ_BYBIT:
            reason[k] = _bybit_diff(k, last, st, counters)
        else:
            snap_k = _binance_diff(
                k, first, last, prev, seq_mode, st, counters, reason, sync_diff, snap_k
            )
    for k in range(len(mtype)):
        if mtype[k] != MT_DIFF:
            continue
        if reason[k] == R_UNSYNCED:
            counters[C_DEPTH_UNSYNCED] += 1
        elif reason[k] == R_STALE:
            counters[C_DEPTH_STALE] += 1


# re-exported so readers need not import mmbot.events themselves
__all__ = [
    "STAGE_DTYPE",
    "MT_DIFF",
    "MT_SNAPSHOT",
    "MT_TRADE",
    "MT_BBO",
    "SEQ_NONE",
    "SEQ_BINANCE_FUT",
    "SEQ_BINANCE_SPOT",
    "SEQ_BYBIT",
    "REPAIR_IVAL",
    "COUNTER_NAMES",
    "N_COUNTERS",
    "new_state",
    "new_books",
    "replay",
    "sequence_check",
]


@njit(cache=True)
def is_ordered(rows) -> bool:
    """True when stage rows are already in (exch_ts, snapshot-first) order."""
    for k in range(1, len(rows)):
        a = rows[k - 1].exch_ts * 2 + (0 if rows[k - 1].mtype == MT_SNAPSHOT else 1)
        b = rows[k].exch_ts * 2 + (0 if rows[k].mtype == MT_SNAPSHOT else 1)
        if b < a:
            return False
    return True


@njit(cache=True)
def _split_orders(events, local_order):
    n = len(events)
    out = np.empty(2 * n, dtype=events.dtype)
    flags_clear = ~np.uint64(ev_.EXCH_EVENT | ev_.LOCAL_EVENT)
    k = 0
    e = 0
    lo = 0
    while e < n or lo < n:
        if e < n and lo < n and local_order[lo] == e:
            out[k] = events[e]
            out[k].ev = (events[e].ev & flags_clear) | np.uint64(ev_.EXCH_EVENT | ev_.LOCAL_EVENT)
            e += 1
            lo += 1
        elif e < n and (lo >= n or events[e].exch_ts <= events[local_order[lo]].local_ts):
            out[k] = events[e]
            out[k].ev = (events[e].ev & flags_clear) | np.uint64(ev_.EXCH_EVENT)
            e += 1
        else:
            r = local_order[lo]
            out[k] = events[r]
            out[k].ev = (events[r].ev & flags_clear) | np.uint64(ev_.LOCAL_EVENT)
            lo += 1
        k += 1
    return out[:k]


def to_hftbacktest_order(events: np.ndarray) -> np.ndarray:
    """hftbacktest's layout for one array: rows flagged ev_.EXCH_EVENT in exchange-time order and rows
    flagged ev_.LOCAL_EVENT in local-time order. Where the two orders disagree an event is written twice,
    once exchange-only and once local-only (as hftbacktest's ``correct_event_order`` does);
    elsewhere one row carries both flags. ``events`` must be in exchange-time order."""
    local_order = np.argsort(events["local_ts"], kind="stable").astype(np.int64)
    return _split_orders(events, local_order)
