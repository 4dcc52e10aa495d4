"""Cross-check of every fill's mid against a book rebuilt independently from the input events.

Owns ``rebuild_mids`` (a separate, minimal order book: its own ladder and code, nothing shared with
``mmbot.sim``) and ``check_fill_mids``. The edge identity holds by algebra whatever mid a fill
carries, so it cannot catch a wrong mid; this can: the mid the venue stamped on fill i must equal
the rebuilt book's mid at the fill's exchange time. Events sharing that timestamp are applied one by
one and any of the states between them is accepted (the venue may fill between two rows of one
message). A mismatch raises ``AuditError`` naming the fill.

Book semantics are the event layout's (DESIGN.md "Market events"): DEPTH / SNAPSHOT set a level's
quantity (0 deletes), a BBO row also removes the levels better than it on its side, CLEAR empties a
side (or both) up to its price. Only rows flagged EXCH_EVENT (or neither flag) drive it, in array
order.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from mmbot.audit.decompose import AuditError
from mmbot.events import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    KIND_MASK,
    LOCAL_EVENT,
    SELL_EVENT,
)
from mmbot.records import RunResult

# relative tolerance between the fill's mid and the rebuilt one (both are exact tick multiples;
# only the last bits of the division by two may differ)
MID_REL_TOL = 1e-9
MAX_LADDER = 50_000_000  # levels; a wider price range is refused (AuditError), not approximated


@njit(cache=True)
def _rebuild(kinds, sides, ix, qty, clear_ix, n):
    """Mid (in ticks x 2, -1 = one side empty) after each row."""
    bid = np.zeros(n, np.float64)
    ask = np.zeros(n, np.float64)
    best_bid = -1
    best_ask = n
    out = np.empty(len(kinds), np.int64)
    for k in range(len(kinds)):
        kind = kinds[k]
        side = sides[k]
        j = ix[k]
        if kind == DEPTH_CLEAR_EVENT:
            if side >= 0:
                lo = 0 if (side == 0 or clear_ix[k] < 0) else clear_ix[k]
                for m in range(lo, n):
                    bid[m] = 0.0
                best_bid = lo - 1
                while best_bid >= 0 and bid[best_bid] <= 0.0:
                    best_bid -= 1
            if side <= 0:
                hi = n - 1 if (side == 0 or clear_ix[k] < 0) else clear_ix[k]
                for m in range(0, hi + 1):
                    ask[m] = 0.0
                best_ask = hi + 1
                while best_ask < n and ask[best_ask] <= 0.0:
                    best_ask += 1
        elif j >= 0 and side != 0:
            if side > 0:
                if kind == DEPTH_BBO_EVENT:  # a best bid: nothing above it stands
                    m = j + 1
                    while m <= best_bid:
                        bid[m] = 0.0
                        m += 1
                bid[j] = qty[k]
                if qty[k] > 0.0 and j > best_bid:
                    best_bid = j
                while best_bid >= 0 and bid[best_bid] <= 0.0:
                    best_bid -= 1
            else:
                if kind == DEPTH_BBO_EVENT:
                    m = max(best_ask, 0)
                    while m < j:
                        ask[m] = 0.0
                        m += 1
                ask[j] = qty[k]
                if qty[k] > 0.0 and j < best_ask:
                    best_ask = j
                while best_ask < n and ask[best_ask] <= 0.0:
                    best_ask += 1
        out[k] = best_bid + best_ask if (best_bid >= 0 and best_ask < n) else -1
    return out


@njit(cache=True)
def _book_rows(ev, tick_px):
    """The exchange-side book rows of ``ev``, read from the structured rows (no field copies):
    (exch_ts, kind, side +1/-1/0, price in ticks from the lowest or -1, qty, lowest and highest
    tick of a positive finite price; 0 and 0 when there is none)."""
    n = ev.shape[0]
    exch_flag = np.uint64(EXCH_EVENT)
    either = np.uint64(EXCH_EVENT | LOCAL_EVENT)
    kind_mask = np.uint64(KIND_MASK)
    sel = np.empty(n, np.int64)
    grid = np.empty(n, np.float64)  # a selected row's price in ticks (NaN: no valid price)
    m = 0
    lo = math.inf
    hi = -math.inf
    for i in range(n):
        f = ev[i].ev
        if (f & exch_flag) == 0 and (f & either) != 0:
            continue
        k = f & kind_mask
        if not (
            k == DEPTH_EVENT  # noqa: SIM109 - a tuple of ints against a uint64 does not compile
            or k == DEPTH_SNAPSHOT_EVENT
            or k == DEPTH_BBO_EVENT
            or k == DEPTH_CLEAR_EVENT
        ):
            continue
        px = ev[i].px
        g = math.floor(px / tick_px + 0.5) if math.isfinite(px) and px > 0 else math.nan
        sel[m] = i
        grid[m] = g
        m += 1
        if g == g:
            lo = min(lo, g)
            hi = max(hi, g)
    found = lo <= hi
    base = lo if found else 0.0
    ts = np.empty(m, np.int64)
    kinds = np.empty(m, np.int64)
    sides = np.empty(m, np.int64)
    ix = np.empty(m, np.int64)
    qty = np.empty(m, np.float64)
    for j in range(m):
        r = ev[sel[j]]
        f = r.ev
        ts[j] = r.exch_ts
        kinds[j] = np.int64(f & kind_mask)
        sides[j] = (
            1
            if (f & np.uint64(BUY_EVENT)) != 0
            else (-1 if (f & np.uint64(SELL_EVENT)) != 0 else 0)
        )
        ix[j] = np.int64(grid[j] - base) if grid[j] == grid[j] else -1
        qty[j] = r.qty if math.isfinite(r.qty) else 0.0
    return ts, kinds, sides, ix, qty, int(base), int(hi) if found else 0


def rebuild_mids(events: np.ndarray, tick_px: float) -> tuple[np.ndarray, np.ndarray]:
    """(exch_ts, mid_px) after each exchange-side book row of ``events`` (NaN: a side empty)."""
    ts, kinds, sides, ix, qty, lo, hi = _book_rows(events, float(tick_px))
    n = hi - lo + 1
    if n > MAX_LADDER:
        raise AuditError(
            f"mid cross-check: prices span {n:,} ticks (> {MAX_LADDER:,}); cannot rebuild the book"
        )
    twice = _rebuild(kinds, sides, ix, qty, ix, n)
    mid = np.where(twice >= 0, (twice + 2 * lo) * tick_px / 2.0, np.nan)
    return ts, mid


def check_fill_mids(
    events: np.ndarray,
    result: RunResult,
    label: str = "run",
    mids: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Compare each fill's ``mid_px`` with the rebuilt book's; AuditError naming the first fill
    that matches no state at its exchange time. Returns counts and the largest relative error.
    ``mids``: ``rebuild_mids(events, the run's tick_px)`` when the caller has it already."""
    fills = result.fills
    tick = result.meta.get("tick_px")
    if len(fills) == 0:
        return {"fills_checked": 0, "max_rel_err": 0.0}
    if not isinstance(tick, (int, float)) or not (math.isfinite(tick) and tick > 0):
        raise AuditError(f"{label}: mid cross-check needs the run's tick_px")
    ts, mid = mids if mids is not None else rebuild_mids(events, float(tick))
    f_ts = fills["exch_ts"].astype(np.int64)
    first = np.searchsorted(ts, f_ts, side="left") - 1  # state before the fill's timestamp
    last = np.searchsorted(ts, f_ts, side="right") - 1  # state after every row at it
    worst = 0.0
    checked = 0
    for i in range(len(fills)):
        m = float(fills["mid_px"][i])
        if math.isnan(m):
            continue  # an empty side at the fill: the audit repairs and counts these
        a, b = max(int(first[i]), 0), int(last[i])
        cand = mid[a : b + 1] if b >= 0 else np.zeros(0)
        cand = cand[np.isfinite(cand)]
        err = np.abs(cand - m) / abs(m) if len(cand) else np.array([math.inf])
        best = float(err.min())
        if not best <= MID_REL_TOL:
            near = float(cand[np.argmin(err)]) if len(cand) else float("nan")
            raise AuditError(
                f"{label}: fill {i} (exch_ts={int(f_ts[i])}, side {int(fills['side'][i]):+d}, "
                f"px {float(fills['px'][i])!r}) carries mid {m!r} but the book rebuilt from the "
                f"input events has {near!r} there (relative error {best:.3e})"
            )
        worst = max(worst, best)
        checked += 1
    return {"fills_checked": checked, "max_rel_err": worst}
