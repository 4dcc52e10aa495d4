"""Order-book state carried from one market chunk to the next.

A soak runs long market stretches as consecutive chunks (bounded memory), each a separate backtest
run. Only the first chunk of a stream starts with a DEPTH_SNAPSHOT; a later chunk (the next 30 min
of the synthetic market, or the next window of a capture) would start with an empty book that
fills only as levels happen to change. `BookCarry` replays the exchange-side depth events of every
chunk into a price ladder with the venue's own book rules (`mmbot.book`, hftbacktest
semantics: a depth/snapshot row sets a level, a BBO row also removes better levels of its side, a
level at or through the opposite best moves that best past it, CLEAR empties a side up to a price)
and hands the next chunk a DEPTH_SNAPSHOT of the book as it stood (the levels from each best
outwards), stamped at the chunk's first event time.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from mmbot.book import ask_update, bid_update, clear_side
from mmbot.borrow import borrowed
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
)
from mmbot.sim.config import price_decimals

LADDER_LEVELS = 1 << 20  # ticks covered around the first price (x2 arrays of f8: 16 MB)
SNAPSHOT_LEVELS = 1000  # levels per side handed to the next chunk, nearest the touch first


@njit(cache=True)
def _apply(
    rows: np.ndarray,
    bid: np.ndarray,
    ask: np.ndarray,
    state: np.ndarray,
    inv_tick: float,
) -> int:
    """Apply exchange-side depth events (EVENT_DTYPE ``rows``, read in place: copying three
    fields of a 30-min chunk cost more than the pass) with the venue's book rules (``mmbot.book``);
    ``state`` = [best bid ix, best ask ix, base ix]. Rows flagged local-only are skipped, unflagged
    rows count (as in the venue). Returns the number of levels outside the ladder (ignored)."""
    n = bid.shape[0]
    bb = state[0]
    ba = state[1]
    base = state[2]
    # the arrays outlive the call: borrowed views skip numba's reference counting per update
    bidb = borrowed(bid)
    askb = borrowed(ask)
    out = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        e = r.ev
        if (e & (EXCH_EVENT | LOCAL_EVENT)) == LOCAL_EVENT:
            continue
        kind = e & 0xFF
        side = 1 if (e & BUY_EVENT) else (-1 if (e & SELL_EVENT) else 0)
        if kind == DEPTH_EVENT or kind == DEPTH_SNAPSHOT_EVENT or kind == DEPTH_BBO_EVENT:  # noqa: SIM109
            ix = np.int64(math.floor(r.px * inv_tick + 0.5)) - base
            if ix < 0 or ix >= n:
                out += 1
                continue
            bbo = kind == DEPTH_BBO_EVENT
            if side > 0:
                bb, ba = bid_update(bidb, askb, bb, ba, n, ix, r.qty, bbo)
            elif side < 0:
                bb, ba = ask_update(bidb, askb, bb, ba, n, ix, r.qty, bbo)
        elif kind == DEPTH_CLEAR_EVENT:
            ix = np.int64(math.floor(r.px * inv_tick + 0.5)) - base if r.px > 0.0 else -1
            bb, ba = clear_side(bidb, askb, bb, ba, n, side, ix)
    state[0] = bb
    state[1] = ba
    return out


@njit(cache=True)
def _levels(
    bid: np.ndarray, ask: np.ndarray, bb: int, ba: int, max_levels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(side, ladder index, qty) of up to ``max_levels`` non-empty levels per side, best first."""
    n = bid.shape[0]
    side = np.empty(2 * max_levels, np.int64)
    ixs = np.empty(2 * max_levels, np.int64)
    qs = np.empty(2 * max_levels, np.float64)
    k = 0
    c = 0
    j = bb
    while j >= 0 and c < max_levels:
        if bid[j] > 0.0:
            side[k] = 1
            ixs[k] = j
            qs[k] = bid[j]
            k += 1
            c += 1
        j -= 1
    c = 0
    j = ba
    while j < n and c < max_levels:
        if ask[j] > 0.0:
            side[k] = -1
            ixs[k] = j
            qs[k] = ask[j]
            k += 1
            c += 1
        j += 1
    return side[:k], ixs[:k], qs[:k]


class BookCarry:
    """The exchange-side book of a stream of chunks; `prefix` gives the next chunk its snapshot."""

    def __init__(self, tick_px: float, max_levels: int = SNAPSHOT_LEVELS):
        if not (tick_px > 0 and math.isfinite(tick_px)):
            raise ValueError(f"tick_px must be a positive number, got {tick_px}")
        self.tick_px = float(tick_px)
        self.max_levels = int(max_levels)
        self.bid: np.ndarray | None = None
        self.ask: np.ndarray | None = None
        self.state = np.zeros(3, np.int64)
        self.out_of_ladder = 0

    def apply(self, events: np.ndarray) -> None:
        """Replay a chunk's exchange-side depth events into the ladder."""
        if len(events) == 0:
            return
        if self.bid is None:
            priced = events["px"][events["px"] > 0]
            if len(priced) == 0:
                return
            center = int(math.floor(float(priced[0]) / self.tick_px + 0.5))
            self.bid = np.zeros(LADDER_LEVELS, np.float64)
            self.ask = np.zeros(LADDER_LEVELS, np.float64)
            self.state[:] = (-1, LADDER_LEVELS, center - LADDER_LEVELS // 2)
        self.out_of_ladder += int(
            _apply(
                events,
                self.bid,
                self.ask,
                self.state,
                1.0 / self.tick_px,
            )
        )

    def snapshot(self, ts_ns: int) -> np.ndarray:
        """DEPTH_SNAPSHOT rows (exchange and local) of the current book, stamped ``ts_ns``."""
        if self.bid is None or self.ask is None:
            return np.zeros(0, EVENT_DTYPE)
        side, ixs, qs = _levels(
            self.bid, self.ask, int(self.state[0]), int(self.state[1]), self.max_levels
        )
        out = np.zeros(len(side), EVENT_DTYPE)
        flags = DEPTH_SNAPSHOT_EVENT | EXCH_EVENT | LOCAL_EVENT
        out["ev"] = np.where(side > 0, flags | BUY_EVENT, flags | SELL_EVENT).astype(np.uint64)
        out["exch_ts"] = ts_ns
        out["local_ts"] = ts_ns
        # the venue's own decimal price of a tick (``sim.state.px_of``), so the next chunk starts
        # from the very mid the previous one ended at (a carried position's seam moves nothing)
        dec = price_decimals(self.tick_px)
        units = float(np.round(self.tick_px * 10.0**dec))
        out["px"] = ((ixs + self.state[2]).astype(np.float64) * units) / 10.0**dec
        out["qty"] = qs
        return out

    def prefix(self, chunk: np.ndarray) -> np.ndarray:
        """``chunk`` preceded by the carried book (unchanged when nothing is carried yet)."""
        if len(chunk) == 0:
            return chunk
        return self.prefix_parts([chunk])[0]

    def prefix_parts(self, parts: list[np.ndarray]) -> tuple[np.ndarray, int]:
        """The non-empty ``parts`` joined behind the carried book in one copy, the book stamped
        at their first event: (events, rows of book in front). One part without a book is
        returned as it is."""
        snap = self.snapshot(int(parts[0]["exch_ts"][0]))
        rows = [snap, *parts] if len(snap) else parts
        return (rows[0] if len(rows) == 1 else np.concatenate(rows)), len(snap)
