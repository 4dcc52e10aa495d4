"""Order-book state carried from one market chunk to the next.

A soak runs long market stretches as consecutive chunks (bounded memory), each a separate backtest
run. Only the first chunk of a stream starts with a DEPTH_SNAPSHOT; a later chunk (the next 30 min
of the synthetic market, or the next window of a capture) would start with an empty book that
fills only as levels happen to change. `BookCarry` replays the exchange-side depth events of every
chunk into a price ladder (hftbacktest semantics, as the venue applies them: a depth/snapshot row
sets a level, a BBO row also removes better levels of its side, a level at or through the opposite
best removes those opposite levels, CLEAR empties a side up to a price) and hands the next chunk a
DEPTH_SNAPSHOT of the book as it stood, stamped at the chunk's first event time.
"""

from __future__ import annotations

import math

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
)

LADDER_LEVELS = 1 << 20  # ticks covered around the first price (x2 arrays of f8: 16 MB)
SNAPSHOT_LEVELS = 1000  # levels per side handed to the next chunk, nearest the touch first


@njit(cache=True)
def _scan_down(book: np.ndarray, j: int) -> int:
    while j >= 0 and book[j] <= 0.0:
        j -= 1
    return j


@njit(cache=True)
def _scan_up(book: np.ndarray, j: int, n: int) -> int:
    while j < n and book[j] <= 0.0:
        j += 1
    return j


@njit(cache=True)
def _apply(
    ev: np.ndarray,
    px: np.ndarray,
    qty: np.ndarray,
    bid: np.ndarray,
    ask: np.ndarray,
    state: np.ndarray,
    inv_tick: float,
) -> int:
    """Apply exchange-side depth events; ``state`` = [best bid ix, best ask ix, base ix].
    Returns the number of levels that fell outside the ladder (ignored)."""
    n = bid.shape[0]
    bb = state[0]
    ba = state[1]
    base = state[2]
    out = 0
    for i in range(ev.shape[0]):
        e = ev[i]
        if (e & EXCH_EVENT) == 0:
            continue
        kind = e & 0xFF
        side = 1 if (e & BUY_EVENT) else (-1 if (e & SELL_EVENT) else 0)
        if kind == DEPTH_EVENT or kind == DEPTH_SNAPSHOT_EVENT or kind == DEPTH_BBO_EVENT:  # noqa: SIM109
            ix = np.int64(math.floor(px[i] * inv_tick + 0.5)) - base
            if ix < 0 or ix >= n:
                out += 1
                continue
            q = qty[i]
            if side > 0:
                if kind == DEPTH_BBO_EVENT and bb > ix:
                    for j in range(ix + 1, bb + 1):
                        bid[j] = 0.0
                    bb = _scan_down(bid, ix)
                bid[ix] = q
                if q > 0.0:
                    if ix > bb:
                        bb = ix
                    if ix >= ba:
                        for j in range(ba, ix + 1):
                            ask[j] = 0.0
                        ba = _scan_up(ask, ix + 1, n)
                elif ix == bb:
                    bb = _scan_down(bid, ix - 1)
            elif side < 0:
                if kind == DEPTH_BBO_EVENT and ba < ix:
                    for j in range(ba, ix):
                        ask[j] = 0.0
                    ba = _scan_up(ask, ix, n)
                ask[ix] = q
                if q > 0.0:
                    if ix < ba:
                        ba = ix
                    if ix <= bb:
                        for j in range(ix, bb + 1):
                            bid[j] = 0.0
                        bb = _scan_down(bid, ix - 1)
                elif ix == ba:
                    ba = _scan_up(ask, ix + 1, n)
        elif kind == DEPTH_CLEAR_EVENT:
            ix = np.int64(math.floor(px[i] * inv_tick + 0.5)) - base if px[i] > 0.0 else -1
            if side >= 0:
                lo = 0 if (side == 0 or ix < 0 or ix >= n) else ix
                for j in range(lo, max(bb, -1) + 1):
                    bid[j] = 0.0
                bb = _scan_down(bid, lo - 1) if lo > 0 else -1
            if side <= 0:
                hi = n - 1 if (side == 0 or ix < 0 or ix >= n) else ix
                for j in range(min(ba, n), hi + 1):
                    ask[j] = 0.0
                ba = _scan_up(ask, hi + 1, n) if hi < n - 1 else n
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
                np.ascontiguousarray(events["ev"]),
                np.ascontiguousarray(events["px"]),
                np.ascontiguousarray(events["qty"]),
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
        out["px"] = (ixs + self.state[2]).astype(np.float64) * self.tick_px
        out["qty"] = qs
        return out

    def prefix(self, chunk: np.ndarray) -> np.ndarray:
        """``chunk`` preceded by the carried book (unchanged when nothing is carried yet)."""
        if len(chunk) == 0:
            return chunk
        snap = self.snapshot(int(chunk["exch_ts"][0]))
        return np.concatenate([snap, chunk]) if len(snap) else chunk
