"""Dense price-ladder order book: level updates, BBO rows, clears, best-price scans.

Owns the depth rules for one side pair (``bid``/``ask`` quantity arrays indexed by tick, best
indices ``bb``/``ba``; ``bb`` = -1 / ``ba`` = n when a side is empty). Plain arrays in, new best
indices out, so the venue's exchange and local books and any other replay of a feed share them.
"""

from __future__ import annotations

from numba import njit


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
