"""The one market-event layout (hftbacktest-compatible) and its flags.

Nothing else in mmbot defines an event layout. An event array is a 1-D numpy array of
``EVENT_DTYPE``; timestamps are ns since the epoch. ``ev`` is a kind OR-ed with flags.
Feed latency of an event is ``local_ts - exch_ts``; the venue acts at ``exch_ts`` and the
strategy sees the event at ``local_ts``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

EVENT_DTYPE = np.dtype(
    [
        ("ev", "u8"),
        ("exch_ts", "i8"),
        ("local_ts", "i8"),
        ("px", "f8"),
        ("qty", "f8"),
        ("order_id", "u8"),
        ("ival", "i8"),
        ("fval", "f8"),
    ],
    align=True,
)
assert EVENT_DTYPE.itemsize == 64

# kinds (low byte of ev)
DEPTH_EVENT = 1
TRADE_EVENT = 2
DEPTH_CLEAR_EVENT = 3
DEPTH_SNAPSHOT_EVENT = 4
DEPTH_BBO_EVENT = 5
KIND_MASK = 0xFF
KIND_NAMES = {
    DEPTH_EVENT: "depth",
    TRADE_EVENT: "trade",
    DEPTH_CLEAR_EVENT: "clear",
    DEPTH_SNAPSHOT_EVENT: "snapshot",
    DEPTH_BBO_EVENT: "bbo",
}

# flags
EXCH_EVENT = 1 << 31
LOCAL_EVENT = 1 << 30
BUY_EVENT = 1 << 29
SELL_EVENT = 1 << 28


@njit(cache=True, inline="always")
def ev_kind(ev: int) -> int:
    return ev & KIND_MASK


@njit(cache=True, inline="always")
def ev_side(ev: int) -> int:
    """+1 for BUY (bid level / buyer-aggressor trade), -1 for SELL, 0 when neither flag is set."""
    if ev & BUY_EVENT:
        return 1
    if ev & SELL_EVENT:
        return -1
    return 0


@njit(cache=True, inline="always")
def is_exch(ev: int) -> bool:
    return (ev & EXCH_EVENT) != 0


@njit(cache=True, inline="always")
def is_local(ev: int) -> bool:
    return (ev & LOCAL_EVENT) != 0


@njit(cache=True, inline="always")
def put_event(
    out: np.ndarray, n: int, ev: int, exch_ts: int, local_ts: int, px: float, qty: float, ival: int
) -> int:
    """Write one event row at ``out[n]`` (order_id 0, fval 0.0); returns the next free row."""
    r = out[n]
    r.ev = ev
    r.exch_ts = exch_ts
    r.local_ts = local_ts
    r.px = px
    r.qty = qty
    r.order_id = 0
    r.ival = ival
    r.fval = 0.0
    return n + 1


@njit(cache=True)
def opening_prices(flags, px) -> tuple[np.ndarray, float]:
    """One pass over an event array's ``ev`` and ``px`` columns: the finite positive prices of the
    rows that carry a market price (book levels and trades), in row order, and the mid of the first
    bid and first ask book rows (NaN when either side has none)."""
    out = np.empty(px.shape[0], np.float64)
    n = 0
    bid = ask = np.nan
    have_bid = have_ask = False
    kind_mask = np.uint64(KIND_MASK)
    for i in range(px.shape[0]):
        f = flags[i]
        kind = f & kind_mask
        book = kind == DEPTH_EVENT or kind == DEPTH_SNAPSHOT_EVENT or kind == DEPTH_BBO_EVENT  # noqa: SIM109
        if not book and kind != TRADE_EVENT:
            continue
        p = px[i]
        if np.isfinite(p) and p > 0.0:
            out[n] = p
            n += 1
        if book:
            if not have_bid and f & np.uint64(BUY_EVENT):
                bid = p
                have_bid = True
            if not have_ask and f & np.uint64(SELL_EVENT):
                ask = p
                have_ask = True
    mid = 0.5 * (bid + ask) if have_bid and have_ask else np.nan
    return out[:n], mid


def empty_events(n: int = 0) -> np.ndarray:
    return np.zeros(n, dtype=EVENT_DTYPE)


def kind_counts(events: np.ndarray) -> dict[str, int]:
    """Event counts by kind name (vectorised)."""
    kinds = (events["ev"] & KIND_MASK).astype(np.int64)
    counts = np.bincount(kinds, minlength=8)
    return {name: int(counts[k]) for k, name in KIND_NAMES.items() if counts[k]}


def as_events(arr: np.ndarray) -> np.ndarray:
    """Accept an hftbacktest event array (same fields) and return it as ``EVENT_DTYPE``."""
    if arr.dtype == EVENT_DTYPE:
        return arr
    names = EVENT_DTYPE.names
    if arr.dtype.names is None or tuple(arr.dtype.names) != names:
        raise ValueError(f"not an event array: fields {arr.dtype.names}, expected {names}")
    out = np.empty(len(arr), dtype=EVENT_DTYPE)
    for name in names:
        out[name] = arr[name]
    return out
