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

All state lives in ``state`` (int64 array) and two hash tables in plain arrays (price key -> qty),
so the pass resumes across chunks: memory is bounded by the book size, not the file size.
"""

from __future__ import annotations

import numpy as np
from numba import njit

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
S_BEST_BID = 5
S_BEST_ASK = 6
S_OFFSET_NS = 7
S_BASE_LAT_NS = 8
S_GAP_PENDING = 9
S_STEP = 10  # gcd of all price keys seen: every level lies on this grid (for the best-level search)
S_NB = 11  # bid levels in the book
S_NA = 12  # ask levels in the book
N_STATE = 13

NO_BID = np.int64(-(1 << 62))
NO_ASK = np.int64(1 << 62)


def new_state(offset_ns: int, base_latency_ns: int) -> np.ndarray:
    st = np.zeros(N_STATE, dtype=np.int64)
    st[S_LOCAL_MAX] = np.iinfo(np.int64).min
    st[S_BEST_BID] = NO_BID
    st[S_BEST_ASK] = NO_ASK
    st[S_OFFSET_NS] = offset_ns
    st[S_BASE_LAT_NS] = base_latency_ns
    return st


# ---- the book: one open-addressing hash table per side (price key -> qty), plain arrays so the
# compiled functions cache and compile fast (numba's typed Dict is slower on both counts)
EMPTY_KEY = np.int64(-1)  # price keys are >= 0
_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)


def new_books(capacity: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(bid_keys, bid_qty, ask_keys, ask_qty); capacity a power of two; tables grow in ``replay``."""
    cap = 1 << max(4, int(capacity - 1).bit_length())
    return (
        np.full(cap, EMPTY_KEY, dtype=np.int64),
        np.zeros(cap, dtype=np.float64),
        np.full(cap, EMPTY_KEY, dtype=np.int64),
        np.zeros(cap, dtype=np.float64),
    )


@njit(cache=True, inline="always")
def _home(key, mask):
    return np.int64((np.uint64(key) * _HASH_MUL) >> np.uint64(32)) & mask


@njit(cache=True)
def _find(keys, key):
    """Slot of ``key``, or ``-1 - slot`` of the empty slot where it would go."""
    mask = len(keys) - 1
    i = _home(key, mask)
    while True:
        k = keys[i]
        if k == key:
            return i
        if k == EMPTY_KEY:
            return -1 - i
        i = (i + 1) & mask


@njit(cache=True)
def _delete_slot(keys, vals, i):
    """Remove slot ``i`` with backward-shift deletion (no tombstones: probes stay short)."""
    mask = len(keys) - 1
    keys[i] = EMPTY_KEY
    j = i
    while True:
        j = (j + 1) & mask
        k = keys[j]
        if k == EMPTY_KEY:
            return
        h = _home(k, mask)
        # the entry at j may move into the hole at i unless its home lies cyclically in (i, j]
        if (i <= j and (h <= i or h > j)) or (i > j and (h <= i and h > j)):
            keys[i] = k
            vals[i] = vals[j]
            keys[j] = EMPTY_KEY
            i = j


@njit(cache=True)
def _rehash(keys, vals, cap):
    nk = np.full(cap, EMPTY_KEY, dtype=np.int64)
    nv = np.zeros(cap, dtype=np.float64)
    for i in range(len(keys)):
        k = keys[i]
        if k != EMPTY_KEY:
            s = _find(nk, k)
            nk[-1 - s] = k
            nv[-1 - s] = vals[i]
    return nk, nv


@njit(cache=True)
def _scan_best(keys, is_bid) -> np.int64:
    b = NO_BID if is_bid else NO_ASK
    for i in range(len(keys)):
        k = keys[i]
        if k != EMPTY_KEY and ((is_bid and k > b) or ((not is_bid) and k < b)):
            b = k
    return b


@njit(cache=True)
def _grow(out, n_out, need):
    if n_out + need <= len(out):
        return out
    new = np.empty(max(2 * len(out), n_out + need + 1024), dtype=out.dtype)
    new[:n_out] = out[:n_out]
    return new


@njit(cache=True)
def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


@njit(cache=True)
def _next_best(keys, n_levels, old, is_bid, step):
    """Best key after ``old`` was deleted: walk the price grid away from the touch (every level is a
    multiple of ``step``, so no level is skipped), falling back to a full scan after 256 steps."""
    if n_levels == 0:
        return NO_BID if is_bid else NO_ASK
    if step > 0:
        for t in range(1, 257):
            c = old - t * step if is_bid else old + t * step
            if c >= 0 and _find(keys, c) >= 0:
                return c
    return _scan_best(keys, is_bid)


@njit(cache=True)
def _set_level(keys, vals, key, qty, is_bid, st):
    """Set one level (qty 0 deletes it); keep the level count and the cached best key right."""
    cnt = S_NB if is_bid else S_NA
    slot = _find(keys, key)
    if qty > 0.0:
        if slot < 0:
            step = st[S_STEP]
            if step == 0 or key % step != 0:
                st[S_STEP] = _gcd(step, abs(key))
            slot = -1 - slot
            keys[slot] = key
            st[cnt] += 1
        vals[slot] = qty
        if is_bid:
            if key > st[S_BEST_BID]:
                st[S_BEST_BID] = key
        elif key < st[S_BEST_ASK]:
            st[S_BEST_ASK] = key
    elif slot >= 0:
        _delete_slot(keys, vals, slot)
        st[cnt] -= 1
        if is_bid:
            if key == st[S_BEST_BID]:
                st[S_BEST_BID] = _next_best(keys, st[cnt], key, True, st[S_STEP])
        elif key == st[S_BEST_ASK]:
            st[S_BEST_ASK] = _next_best(keys, st[cnt], key, False, st[S_STEP])


@njit(cache=True)
def _clear_upto(keys, vals, key, is_bid, st):
    """hftbacktest DEPTH_CLEAR semantic: remove levels from the touch up to ``key`` inclusive."""
    todo = []
    for i in range(len(keys)):
        k = keys[i]
        if k != EMPTY_KEY and ((is_bid and k >= key) or ((not is_bid) and k <= key)):
            todo.append(k)
    cnt = S_NB if is_bid else S_NA
    for k in todo:
        s = _find(keys, k)
        if s >= 0:
            _delete_slot(keys, vals, s)
            st[cnt] -= 1
    if is_bid:
        st[S_BEST_BID] = _scan_best(keys, True)
    else:
        st[S_BEST_ASK] = _scan_best(keys, False)


@njit(cache=True)
def _pow2(n):
    c = 16
    while c < n:
        c *= 2
    return c


@njit(cache=True)
def _valid_px(px: float) -> bool:
    return np.isfinite(px) and px > 0.0


@njit(cache=True, nogil=True)
def replay(rows, scale, st, bk, bv, ak, av, counters):
    """Process stage ``rows`` (exchange-time order). Returns ``(events, bk, bv, ak, av)``: the
    book tables may have been reallocated (grown) and must be passed to the next call."""
    n = len(rows)
    out = np.empty(n + 64, dtype=EVENT_DTYPE)
    n_out = 0
    mkt = EXCH_EVENT | LOCAL_EVENT
    i = 0
    while i < n:
        m = rows[i].msg
        j = i + 1
        while j < n and rows[j].msg == m:
            j += 1
        mt = rows[i].mtype
        exch_ts = rows[i].exch_ts
        # --- local time: offset, clamp, non-decreasing ---
        loc = rows[i].local_ts + st[S_OFFSET_NS]
        if loc < exch_ts:
            counters[C_LOCAL_CLAMPED] += 1
            loc = exch_ts + st[S_BASE_LAT_NS]
        if loc < st[S_LOCAL_MAX]:
            # received before an event stamped earlier: kept as received (the venue replays local
            # rows in local-time order); counted, with the largest inversion
            counters[C_LOCAL_INVERSION] += 1
            d = st[S_LOCAL_MAX] - loc
            if d > counters[C_LOCAL_INVERSION_MAX_NS]:
                counters[C_LOCAL_INVERSION_MAX_NS] = d
        else:
            st[S_LOCAL_MAX] = loc
        out = _grow(out, n_out, 2 * (j - i) + 4)
        # room for every level this message could add (load factor <= 1/2)
        if 2 * (st[S_NB] + (j - i)) > len(bk):
            bk, bv = _rehash(bk, bv, _pow2(4 * (st[S_NB] + (j - i))))
        if 2 * (st[S_NA] + (j - i)) > len(ak):
            ak, av = _rehash(ak, av, _pow2(4 * (st[S_NA] + (j - i))))
        # --- rows ---
        msg_bid_set = NO_BID
        msg_ask_set = NO_ASK
        is_book = mt != MT_TRADE
        if mt == MT_SNAPSHOT:
            # deepest price per side -> one CLEAR per side, then the levels
            deep_bid = np.inf
            deep_ask = -np.inf
            for r in range(i, j):
                px = rows[r].px
                if rows[r].ev == 0 or not _valid_px(px):
                    continue
                if rows[r].ev & BUY_EVENT:
                    deep_bid = min(deep_bid, px)
                else:
                    deep_ask = max(deep_ask, px)
            if np.isfinite(deep_bid):
                _clear_upto(bk, bv, np.int64(np.round(deep_bid * scale)), True, st)
                o = out[n_out]
                o.ev = DEPTH_CLEAR_EVENT | BUY_EVENT | mkt
                o.exch_ts = exch_ts
                o.local_ts = loc
                o.px = deep_bid
                o.qty = 0.0
                o.order_id = 0
                o.ival = 0
                o.fval = 0.0
                n_out += 1
            if np.isfinite(deep_ask):
                _clear_upto(ak, av, np.int64(np.round(deep_ask * scale)), False, st)
                o = out[n_out]
                o.ev = DEPTH_CLEAR_EVENT | SELL_EVENT | mkt
                o.exch_ts = exch_ts
                o.local_ts = loc
                o.px = deep_ask
                o.qty = 0.0
                o.order_id = 0
                o.ival = 0
                o.fval = 0.0
                n_out += 1
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
            if is_book:
                key = np.int64(np.round(px * scale))
                if mt == MT_BBO:
                    # the best bid/offer says nothing is better on its side: remove stale levels
                    # there explicitly, so every consumer's book agrees
                    is_bid = (ev & BUY_EVENT) != 0
                    while True:
                        stale = st[S_BEST_BID] if is_bid else st[S_BEST_ASK]
                        if stale == NO_BID or stale == NO_ASK:  # noqa: SIM109
                            break
                        if (is_bid and stale <= key) or ((not is_bid) and stale >= key):
                            break
                        if is_bid:
                            _set_level(bk, bv, stale, 0.0, True, st)
                        else:
                            _set_level(ak, av, stale, 0.0, False, st)
                        out = _grow(out, n_out, j - r + 2)
                        o = out[n_out]
                        o.ev = DEPTH_EVENT | (BUY_EVENT if is_bid else SELL_EVENT) | mkt
                        o.exch_ts = exch_ts
                        o.local_ts = loc
                        o.px = stale / scale
                        o.qty = 0.0
                        o.order_id = 0
                        o.ival = REPAIR_IVAL
                        o.fval = 0.0
                        n_out += 1
                        counters[C_BBO_STALE_LEVEL] += 1
                if ev & BUY_EVENT:
                    _set_level(bk, bv, key, qty, True, st)
                    if qty > 0.0 and key > msg_bid_set:
                        msg_bid_set = key
                else:
                    _set_level(ak, av, key, qty, False, st)
                    if qty > 0.0 and key < msg_ask_set:
                        msg_ask_set = key
            o = out[n_out]
            o.ev = ev | mkt
            o.exch_ts = exch_ts
            o.local_ts = loc
            o.px = px
            o.qty = qty
            o.order_id = 0
            o.ival = 0
            o.fval = 0.0
            n_out += 1
        # --- crossed-book repair ---
        if is_book and st[S_BEST_BID] >= st[S_BEST_ASK]:
            counters[C_CROSSED_BOOK] += 1
            while st[S_BEST_BID] != NO_BID and st[S_BEST_ASK] != NO_ASK:
                bb = st[S_BEST_BID]
                ba = st[S_BEST_ASK]
                if bb < ba:
                    break
                # the level this message just set is the fresh one; the other side is stale
                bid_fresh = bb == msg_bid_set
                ask_fresh = ba == msg_ask_set
                del_bid = not (bid_fresh and not ask_fresh)
                del_ask = not (ask_fresh and not bid_fresh)
                out = _grow(out, n_out, 4)
                if del_bid:
                    _set_level(bk, bv, bb, 0.0, True, st)
                    o = out[n_out]
                    o.ev = DEPTH_EVENT | BUY_EVENT | mkt
                    o.exch_ts = exch_ts
                    o.local_ts = loc
                    o.px = bb / scale
                    o.qty = 0.0
                    o.order_id = 0
                    o.ival = REPAIR_IVAL
                    o.fval = 0.0
                    n_out += 1
                    counters[C_CROSSED_LEVEL] += 1
                if del_ask:
                    _set_level(ak, av, ba, 0.0, False, st)
                    o = out[n_out]
                    o.ev = DEPTH_EVENT | SELL_EVENT | mkt
                    o.exch_ts = exch_ts
                    o.local_ts = loc
                    o.px = ba / scale
                    o.qty = 0.0
                    o.order_id = 0
                    o.ival = REPAIR_IVAL
                    o.fval = 0.0
                    n_out += 1
                    counters[C_CROSSED_LEVEL] += 1
        i = j
    return out[:n_out], bk, bv, ak, av


@njit(cache=True)
def sequence_check(mtype, first, last, prev, seq_mode, st, counters, reason, sync_diff):
    """Decide per message (file order) whether a depth diff is applied.

    ``reason[k]`` gets R_ACCEPT / R_UNSYNCED / R_STALE; ``sync_diff[k]`` for a snapshot k is the index
    (in this block) of the diff that synced on it, or -1: the caller keeps the snapshot's exchange
    time no later than that diff's. ``st`` and ``counters`` persist across blocks.
    """
    n = len(mtype)
    binance = seq_mode == SEQ_BINANCE_FUT or seq_mode == SEQ_BINANCE_SPOT  # noqa: SIM109
    snap_k = -1  # index in this block of the snapshot awaiting its first diff
    for k in range(n):
        reason[k] = R_ACCEPT
        sync_diff[k] = -1
        mt = mtype[k]
        if mt == MT_SNAPSHOT:
            if st[S_GAP_PENDING] != 0:
                counters[C_RESYNC] += 1
                st[S_GAP_PENDING] = 0
            if binance and st[S_SYNCED] != 0 and first[k] <= st[S_LAST_U]:
                # in sync and the snapshot is not newer than the diffs applied: applying it would
                # rewind the book, so it is skipped (counted)
                reason[k] = R_STALE
                counters[C_SNAP_SKIPPED] += 1
                continue
            if binance:
                st[S_HAVE_SNAP] = 1
                st[S_SNAP_ID] = first[k]
                st[S_SYNCED] = 0
                snap_k = k
                target = first[k] + (1 if seq_mode == SEQ_BINANCE_SPOT else 0)
                # the straddling diff may have been received before the snapshot line
                kk = -1
                for q in range(k - 1, -1, -1):
                    if mtype[q] == MT_SNAPSHOT:
                        break
                    if mtype[q] == MT_DIFF and first[q] <= target and last[q] >= target:
                        kk = q
                        break
                if kk >= 0:
                    st[S_SYNCED] = 1
                    st[S_LAST_U] = last[kk]
                    reason[kk] = R_ACCEPT
                    sync_diff[k] = kk
                    snap_k = -1
                    for q in range(kk + 1, k):
                        if mtype[q] != MT_DIFF:
                            continue
                        if last[q] <= st[S_LAST_U]:
                            reason[q] = R_STALE
                        elif (seq_mode == SEQ_BINANCE_FUT and prev[q] == st[S_LAST_U]) or (
                            seq_mode == SEQ_BINANCE_SPOT and first[q] == st[S_LAST_U] + 1
                        ):
                            reason[q] = R_ACCEPT
                            st[S_LAST_U] = last[q]
                        else:
                            counters[C_SEQ_GAP] += 1
                            st[S_SYNCED] = 0
                            st[S_HAVE_SNAP] = 0
                            st[S_GAP_PENDING] = 1
                            for q2 in range(q, k):
                                if mtype[q2] == MT_DIFF:
                                    reason[q2] = R_UNSYNCED
                            break
            else:
                st[S_SYNCED] = 1
                st[S_LAST_U] = last[k]
            continue
        if mt != MT_DIFF or seq_mode == SEQ_NONE:
            continue
        if seq_mode == SEQ_BYBIT:
            if st[S_SYNCED] != 0:
                if last[k] == st[S_LAST_U] + 1:
                    st[S_LAST_U] = last[k]
                elif last[k] <= st[S_LAST_U]:
                    reason[k] = R_STALE
                else:
                    counters[C_SEQ_GAP] += 1
                    reason[k] = R_UNSYNCED
                    st[S_SYNCED] = 0
                    st[S_GAP_PENDING] = 1
            else:
                reason[k] = R_UNSYNCED
            continue
        if st[S_SYNCED] != 0:
            if last[k] <= st[S_LAST_U]:
                reason[k] = R_STALE
            elif (seq_mode == SEQ_BINANCE_FUT and prev[k] == st[S_LAST_U]) or (
                seq_mode == SEQ_BINANCE_SPOT and first[k] == st[S_LAST_U] + 1
            ):
                st[S_LAST_U] = last[k]
            else:
                counters[C_SEQ_GAP] += 1
                reason[k] = R_UNSYNCED
                st[S_SYNCED] = 0
                st[S_HAVE_SNAP] = 0
                st[S_GAP_PENDING] = 1
        elif st[S_HAVE_SNAP] != 0:
            target = st[S_SNAP_ID] + (1 if seq_mode == SEQ_BINANCE_SPOT else 0)
            if last[k] < target:
                reason[k] = R_STALE
            elif first[k] <= target:
                st[S_SYNCED] = 1
                st[S_LAST_U] = last[k]
                if snap_k >= 0:
                    sync_diff[snap_k] = k
                snap_k = -1
            else:
                # the diffs following the snapshot are missing: wait for the next snapshot
                counters[C_SEQ_GAP] += 1
                reason[k] = R_UNSYNCED
                st[S_HAVE_SNAP] = 0
                st[S_GAP_PENDING] = 1
        else:
            reason[k] = R_UNSYNCED
    for k in range(n):
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
    "DEPTH_EVENT",
    "TRADE_EVENT",
    "DEPTH_SNAPSHOT_EVENT",
    "DEPTH_BBO_EVENT",
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
    flags_clear = ~np.uint64(EXCH_EVENT | LOCAL_EVENT)
    k = 0
    e = 0
    lo = 0
    while e < n or lo < n:
        if e < n and lo < n and local_order[lo] == e:
            out[k] = events[e]
            out[k].ev = (events[e].ev & flags_clear) | np.uint64(EXCH_EVENT | LOCAL_EVENT)
            e += 1
            lo += 1
        elif e < n and (lo >= n or events[e].exch_ts <= events[local_order[lo]].local_ts):
            out[k] = events[e]
            out[k].ev = (events[e].ev & flags_clear) | np.uint64(EXCH_EVENT)
            e += 1
        else:
            r = local_order[lo]
            out[k] = events[r]
            out[k].ev = (events[r].ev & flags_clear) | np.uint64(LOCAL_EVENT)
            lo += 1
        k += 1
    return out[:k]


def to_hftbacktest_order(events: np.ndarray) -> np.ndarray:
    """hftbacktest's layout for one array: rows flagged EXCH_EVENT in exchange-time order and rows
    flagged LOCAL_EVENT in local-time order. Where the two orders disagree an event is written twice,
    once exchange-only and once local-only (as hftbacktest's ``correct_event_order`` does);
    elsewhere one row carries both flags. ``events`` must be in exchange-time order."""
    local_order = np.argsort(events["local_ts"], kind="stable").astype(np.int64)
    return _split_orders(events, local_order)
