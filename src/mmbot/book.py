"""The order book: depth rules, its four storages, and what a crossed feed does. Compiled, plain
arrays (and one plain-Python storage for live trading).

Every book mmbot rebuilds from a feed in a compiled pass is one of two storages over the same rules
(a depth or snapshot row sets a level, qty 0 deletes it; a BBO row also removes the better levels
of its side; CLEAR empties a side from the touch up to a price, or all of it):

- the **ladder** (dense: ``bid``/``ask`` quantity arrays indexed by tick from a base price, best
  indices ``bb``/``ba``; ``bb`` = -1 / ``ba`` = n when a side is empty): the venue's exchange and
  local books (``sim.clock``) and the soak's book carry (``soak.book_carry``), where every update
  must cost a few array writes;
- the **table** (sparse: one open-addressing hash table per side, integer price key -> qty, and a
  small book state ``bs`` with the best keys, the price grid step and the level counts): the
  readers' replay (``data.replay``) and the market statistics (``data.market_stats``), where
  prices are not known in advance and the book must stay bounded by its levels, not its price
  range.

A third storage, plain Python, is the **published book** of live and paper trading (``DictBook``:
px -> qty per side plus each side's sorted prices): the live session's book from the exchange's
stream (``live.bybit_msgs.LiveBook``) and the public book the emulator and the paper matcher
publish (``live.orders.PublicBook``), where a few rows arrive per message and the touch, the size
near it and the top levels are read between them.

A fourth storage is the **ring**, the synthetic market's own book (``data.synthetic_book`` /
``data.synthetic_core``): the generator does not read a feed, it writes one, and keeps the book it
writes from as a sliding ladder of integer lots (one int64 array of ``RING_TICKS`` slots per side,
the level at price tick ``p`` in slot ``p & RING_MASK``), so the ladder follows the price without
re-basing while the generator trims the levels that fall too far from it (past its level targets;
a stale side past ``RING_TICKS`` / 4), so memory stays constant over a 30-day market. Its random
draws depend on whole lots, and it reads the levels near the touch tick by tick on every event:
the slot of a price (``ring_slot``), a
level's lots (``ring_lots``), emptying one (``ring_pull``) and the search for the best level
between two prices (``ring_scan``) are inlined into the generator's loop. The generator keeps the
side's touch, deepest level and total lots in its own state and emits the rows itself; its
policies (makers, stale levels, trims) stay there.

Crossed feeds, defined here once. A level set at or through the opposite best means the feed is
crossed; two consumers, two rules:

- **repair** (a capture read from a file, ``data.replay``; the market statistics,
  ``data.market_stats``): the level the message just set is fresh, the opposite touch is stale and
  is deleted (both touches when the message set neither or both), until the book is uncrossed
  (``stale_sides``; on a table, ``table_uncross``). The replay writes each deletion as a
  ``qty = 0`` row, so every consumer of its events replays a book that is never crossed between
  messages; the statistics apply the rule row by row.
- **keep** (the venue and the book carry, for feeds that reach them still crossed: the synthetic
  market, npz/parquet from elsewhere): hftbacktest's HashMapMarketDepth rule, the opposite best
  moves past the new level and the crossed levels stay in place (``bid_update``/``ask_update``), so
  queue positions initialised from them match the reference.

The ring and the published book have no rule: the generator never crosses its book (a maker joins
behind the opposite touch, a sweep takes what it crosses; ``tests/test_synthetic.py`` replays
its rows and checks it), and the published book shows what the venue published.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
from numba import njit

# ---- the ladder (dense, tick-indexed) ------------------------------------------------------------


@njit(cache=True, forceinline=True)
def scan_bid_down(book, j):
    while j >= 0 and book[j] <= 0.0:
        j -= 1
    return j


@njit(cache=True, forceinline=True)
def scan_ask_up(book, j, n):
    while j < n and book[j] <= 0.0:
        j += 1
    return j


@njit(cache=True, forceinline=True)
def bid_update(bid, ask, bb, ba, n, ix, qty, bbo):
    """Set the bid level ``ix`` to ``qty``; returns new (bb, ba). A BBO event also removes better
    bids. A new best bid at or above the best ask moves the best ask above it; like hftbacktest's
    HashMapMarketDepth the crossed ask levels are left in place (only the pointer moves), which
    keeps queue positions initialised from them identical to the reference."""
    if bbo and bb > ix:
        for j in range(ix + 1, bb + 1):
            bid[j] = 0.0
        bb = scan_bid_down(bid, ix)
    bid[ix] = qty
    if qty > 0.0:
        if ix > bb:
            bb = ix
            if bb >= ba:
                ba = scan_ask_up(ask, bb + 1, n)
    elif ix == bb:
        bb = scan_bid_down(bid, ix - 1)
    return bb, ba


@njit(cache=True, forceinline=True)
def ask_update(bid, ask, bb, ba, n, ix, qty, bbo):
    if bbo and ba < ix:
        for j in range(ba, ix):
            ask[j] = 0.0
        ba = scan_ask_up(ask, ix, n)
    ask[ix] = qty
    if qty > 0.0:
        if ix < ba:
            ba = ix
            if bb >= ba:
                bb = scan_bid_down(bid, ba - 1)
    elif ix == ba:
        ba = scan_ask_up(ask, ix + 1, n)
    return bb, ba


@njit(cache=True, forceinline=True)
def clear_side(bid, ask, bb, ba, n, side, ix):
    """hftbacktest semantics: clear one side (or both when side == 0) up to ``ix`` from the best
    (``ix`` < 0 or out of range = the whole side)."""
    if side >= 0:
        lo = 0 if (side == 0 or ix < 0 or ix >= n) else ix
        for j in range(lo, max(bb, -1) + 1):
            bid[j] = 0.0
        bb = scan_bid_down(bid, lo - 1) if lo > 0 else -1
    if side <= 0:
        hi = n - 1 if (side == 0 or ix < 0 or ix >= n) else ix
        for j in range(min(ba, n), hi + 1):
            ask[j] = 0.0
        ba = scan_ask_up(ask, hi + 1, n) if hi < n - 1 else n
    return bb, ba


# ---- the table (sparse: open-addressing hash table per side, price key -> qty) -----------------
# Plain arrays so the compiled functions cache and compile fast (numba's typed Dict is slower on
# both counts). Keys are integer prices (>= 0); the book state ``bs`` (int64, N_BOOK_STATE) holds:
B_BEST_BID = 0  # best bid key (NO_BID when the side is empty)
B_BEST_ASK = 1  # best ask key (NO_ASK when empty)
B_STEP = 2  # gcd of every key seen: all levels lie on this grid (the best-level search walks it)
B_NB = 3  # bid levels in the table
B_NA = 4  # ask levels in the table
N_BOOK_STATE = 5

EMPTY_KEY = np.int64(-1)
NO_BID = np.int64(-(1 << 62))
NO_ASK = np.int64(1 << 62)
_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)


def new_book_state() -> np.ndarray:
    bs = np.zeros(N_BOOK_STATE, dtype=np.int64)
    bs[B_BEST_BID] = NO_BID
    bs[B_BEST_ASK] = NO_ASK
    return bs


def new_tables(capacity: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(bid_keys, bid_qty, ask_keys, ask_qty); capacity rounded up to a power of two (>= 16)."""
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
def table_find(keys, key):
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
def table_delete(keys, vals, i):
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
def table_rehash(keys, vals, cap):
    """The same levels in a table of ``cap`` slots (a power of two)."""
    nk = np.full(cap, EMPTY_KEY, dtype=np.int64)
    nv = np.zeros(cap, dtype=np.float64)
    for i in range(len(keys)):
        k = keys[i]
        if k != EMPTY_KEY:
            s = table_find(nk, k)
            nk[-1 - s] = k
            nv[-1 - s] = vals[i]
    return nk, nv


@njit(cache=True)
def table_capacity(n):
    """Smallest power of two >= ``n`` (at least 16)."""
    c = 16
    while c < n:
        c *= 2
    return c


@njit(cache=True)
def table_best(keys, is_bid) -> np.int64:
    """Best key by a full scan of the table."""
    b = NO_BID if is_bid else NO_ASK
    for i in range(len(keys)):
        k = keys[i]
        if k != EMPTY_KEY and ((is_bid and k > b) or ((not is_bid) and k < b)):
            b = k
    return b


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
            if c >= 0 and table_find(keys, c) >= 0:
                return c
    return table_best(keys, is_bid)


@njit(cache=True)
def table_set(keys, vals, key, qty, is_bid, bs):
    """Set one level (qty 0 deletes it); keep the level count and the best key in ``bs`` right.
    The table must have room (load factor <= 1/2: grow with ``table_rehash`` first)."""
    cnt = B_NB if is_bid else B_NA
    slot = table_find(keys, key)
    if qty > 0.0:
        if slot < 0:
            step = bs[B_STEP]
            if step == 0 or key % step != 0:
                bs[B_STEP] = _gcd(step, abs(key))
            slot = -1 - slot
            keys[slot] = key
            bs[cnt] += 1
        vals[slot] = qty
        if is_bid:
            if key > bs[B_BEST_BID]:
                bs[B_BEST_BID] = key
        elif key < bs[B_BEST_ASK]:
            bs[B_BEST_ASK] = key
    elif slot >= 0:
        table_delete(keys, vals, slot)
        bs[cnt] -= 1
        if is_bid:
            if key == bs[B_BEST_BID]:
                bs[B_BEST_BID] = _next_best(keys, bs[cnt], key, True, bs[B_STEP])
        elif key == bs[B_BEST_ASK]:
            bs[B_BEST_ASK] = _next_best(keys, bs[cnt], key, False, bs[B_STEP])


@njit(cache=True)
def table_clear_upto(keys, vals, key, is_bid, bs):
    """hftbacktest's DEPTH_CLEAR: remove the levels from the touch up to ``key`` inclusive."""
    todo = []
    for i in range(len(keys)):
        k = keys[i]
        if k != EMPTY_KEY and ((is_bid and k >= key) or ((not is_bid) and k <= key)):
            todo.append(k)
    cnt = B_NB if is_bid else B_NA
    for k in todo:
        s = table_find(keys, k)
        if s >= 0:
            table_delete(keys, vals, s)
            bs[cnt] -= 1
    if is_bid:
        bs[B_BEST_BID] = table_best(keys, True)
    else:
        bs[B_BEST_ASK] = table_best(keys, False)


@njit(cache=True)
def table_get(keys, vals, key):
    """Quantity at ``key`` (0 when the level is absent)."""
    s = table_find(keys, key)
    return vals[s] if s >= 0 else 0.0


@njit(cache=True)
def table_room(keys, vals, n_levels, n_new):
    """The table, grown when ``n_new`` more levels could push it past a load factor of 1/2."""
    if 2 * (n_levels + n_new) > len(keys):
        return table_rehash(keys, vals, table_capacity(4 * (n_levels + n_new)))
    return keys, vals


@njit(cache=True, inline="always")
def has_better(bs, key, is_bid) -> bool:
    """Is there a level better than ``key`` on its side (something for the BBO rule to delete)?"""
    best = bs[B_BEST_BID] if is_bid else bs[B_BEST_ASK]
    if best == NO_BID or best == NO_ASK:  # noqa: SIM109
        return False
    return (is_bid and best > key) or ((not is_bid) and best < key)


@njit(cache=True, inline="always")
def table_drop_better_step(keys, vals, key, is_bid, bs):
    """One step of the BBO rule: a BBO row at ``key`` says nothing is better on its side, so the
    best level there, if better than ``key``, is stale: delete it and return its key; NO_BID /
    NO_ASK when nothing is left to delete. Callers that emit a row a deletion loop over this."""
    if not has_better(bs, key, is_bid):
        return NO_BID if is_bid else NO_ASK
    best = bs[B_BEST_BID] if is_bid else bs[B_BEST_ASK]
    table_set(keys, vals, best, 0.0, is_bid, bs)
    return best


@njit(cache=True)
def table_drop_better(keys, vals, key, is_bid, bs):
    """A BBO row at ``key``: the levels better than it on its side are stale; delete them.
    Returns how many went."""
    none = NO_BID if is_bid else NO_ASK
    n = 0
    while table_drop_better_step(keys, vals, key, is_bid, bs) != none:
        n += 1
    return n


# ---- the ring (a sliding ladder of integer lots, indexed by tick modulo its size) ---------------
# One side is an int64 array of RING_TICKS lot counts; the level at price tick p is slot
# p & RING_MASK. The owner keeps each side's live range (touch to deepest level) under RING_TICKS
# ticks by trimming; RING_NONE is "no level" (an empty side's touch). A side is walked with a sign:
# bids sgn -1 (deeper = lower prices), asks sgn 1 (deeper = higher).
RING_TICKS = 4096  # a power of two
RING_MASK = RING_TICKS - 1
RING_NONE = -1


def new_ring() -> np.ndarray:
    """One empty side of a ring book."""
    return np.zeros(RING_TICKS, dtype=np.int64)


@njit(cache=True, inline="always")
def ring_slot(p: int) -> int:
    """The slot of price tick ``p``."""
    return p & RING_MASK


@njit(cache=True, inline="always")
def ring_lots(q: np.ndarray, p: int) -> int:
    """Lots at price tick ``p`` (0 for RING_NONE)."""
    return q[p & RING_MASK] if p != RING_NONE else 0


@njit(cache=True, inline="always")
def ring_pull(q: np.ndarray, p: int) -> int:
    """Empty the level at ``p``; returns the lots it held."""
    j = p & RING_MASK
    lots = q[j]
    q[j] = 0
    return lots


@njit(cache=True, inline="always")
def ring_deeper(a: float, b: float, sgn: int) -> bool:
    """Whether price ``a`` lies deeper in the book than ``b`` (away from the spread) on the bid
    side (sgn -1: below it) or the ask side (sgn 1: above it)."""
    return a < b if sgn < 0 else a > b


@njit(cache=True, inline="always")
def ring_scan(q: np.ndarray, start: int, stop: int, sgn: int) -> int:
    """The first non-empty level from ``start`` deeper into side sgn (bids -1: down, asks 1: up),
    not past ``stop``; RING_NONE if there is none."""
    p = start
    while not ring_deeper(p, stop, sgn):
        if q[p & RING_MASK] > 0:
            return p
        p += sgn
    return RING_NONE


# ---- crossed feeds: the repair rule --------------------------------------------------------------


@njit(cache=True, inline="always")
def stale_sides(bb, ba, bid_set, ask_set):
    """(delete the best bid?, delete the best ask?) of a crossed book (``bb >= ba``): the touch the
    message just set (``bid_set``/``ask_set``: the best level it set on each side) is fresh, the
    other is stale; both go when the message set both touches or neither."""
    bid_fresh = bb == bid_set
    ask_fresh = ba == ask_set
    return not (bid_fresh and not ask_fresh), not (ask_fresh and not bid_fresh)


@njit(cache=True, inline="always")
def table_uncross_step(bk, bv, ak, av, bs, bid_set, ask_set):
    """One step of the repair rule on a table book: if it is crossed, delete the stale touch(es)
    (``stale_sides``; ``bid_set``/``ask_set``: the best key the message set on each side, NO_BID /
    NO_ASK for none) and return the deleted (bid key, ask key), NO_BID / NO_ASK for a side not
    deleted; (NO_BID, NO_ASK) once the book is not crossed. Callers that emit a row per deletion
    loop over this."""
    bb = bs[B_BEST_BID]
    ba = bs[B_BEST_ASK]
    if bb == NO_BID or ba == NO_ASK or bb < ba:
        return NO_BID, NO_ASK
    del_bid, del_ask = stale_sides(bb, ba, bid_set, ask_set)
    gone_bid = NO_BID
    gone_ask = NO_ASK
    if del_bid:
        table_set(bk, bv, bb, 0.0, True, bs)
        gone_bid = bb
    if del_ask:
        table_set(ak, av, ba, 0.0, False, bs)
        gone_ask = ba
    return gone_bid, gone_ask


@njit(cache=True)
def table_uncross(bk, bv, ak, av, bs, bid_set, ask_set):
    """The repair rule on a table book: while it is crossed, delete the stale touch(es)
    (``table_uncross_step``). Returns how many levels went."""
    n = 0
    while True:
        gone_bid, gone_ask = table_uncross_step(bk, bv, ak, av, bs, bid_set, ask_set)
        if gone_bid == NO_BID and gone_ask == NO_ASK:
            return n
        n += (gone_bid != NO_BID) + (gone_ask != NO_ASK)


# ---- the published book (live and paper: plain Python) -------------------------------------------


@dataclass
class DictBook:
    """The book the live session reads (``live.bybit_msgs.LiveBook``) and the paper / emulator
    matcher publishes (``live.orders.PublicBook``): ``bids`` / ``asks`` map px -> qty, and each
    side's prices are also kept sorted ascending (``bid_px`` / ``ask_px``), so the touch and the
    size near it cost a bisection, not a pass over every level (a diff stream's book keeps
    thousands). ``side``: > 0 bids, < 0 asks, 0 both (``clear`` only). Prices are used as given
    (the caller rounds them to its tick). The depth rules are the compiled storages': a level set
    to a quantity that is not > 0 is deleted; ``clear`` empties a side. No crossed-feed rule: it
    shows what the venue published."""

    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    bid_px: list[float] = field(default_factory=list)  # ascending
    ask_px: list[float] = field(default_factory=list)  # ascending

    def set_level(self, side: int, px: float, qty: float) -> None:
        book, prices = (self.bids, self.bid_px) if side > 0 else (self.asks, self.ask_px)
        if qty > 0:
            if px not in book:
                bisect.insort(prices, px)
            book[px] = qty
        elif book.pop(px, None) is not None:
            del prices[bisect.bisect_left(prices, px)]

    def clear(self, side: int = 0) -> None:
        if side >= 0:
            self.bids.clear()
            self.bid_px.clear()
        if side <= 0:
            self.asks.clear()
            self.ask_px.clear()

    def best_bid(self) -> float:
        return self.bid_px[-1] if self.bid_px else float("nan")

    def best_ask(self) -> float:
        return self.ask_px[0] if self.ask_px else float("nan")

    def mid_px(self) -> float:
        return 0.5 * (self.best_bid() + self.best_ask())

    def qty_at(self, side: int, px: float) -> float:
        return (self.bids if side > 0 else self.asks).get(px, 0.0)

    def qty_from(self, side: int, limit_px: float) -> float:
        """Visible size at prices at or better than ``limit_px`` (bids >= it, asks <= it)."""
        if side > 0:
            lv = self.bid_px[bisect.bisect_left(self.bid_px, limit_px) :]
            return float(sum(self.bids[p] for p in lv))
        lv = self.ask_px[: bisect.bisect_right(self.ask_px, limit_px)]
        return float(sum(self.asks[p] for p in lv))

    def top_px(self, side: int, n_levels: int) -> list[float]:
        """The ``n_levels`` best prices of a side, best first."""
        if side > 0:
            return self.bid_px[: -n_levels - 1 : -1] if n_levels > 0 else []
        return self.ask_px[:n_levels]
