"""Time series and distributions the reports plot, computed vectorised from runs' records.

Cumulative PnL by component at time t (exact, so the last point equals the report's totals):
gross/slippage/fees are cumulative sums over fills up to t; inventory(t) = pos(t)·m(t) −
Σ_{fills ≤ t} s·q·m_i − pos0·m_0, i.e. Σ position·Δmid up to t. Long series are thinned to at most
``max_points`` points (evenly spaced in index, last point kept) so the HTML stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from mmbot.audit.decompose import FillEdges, decompose, mid_at
from mmbot.records import RunResult


class PnlSeries(NamedTuple):
    ts_ns: np.ndarray
    gross: np.ndarray
    slippage: np.ndarray
    fees: np.ndarray
    inventory: np.ndarray
    net: np.ndarray


def thin_index(n: int, max_points: int) -> np.ndarray:
    """Indices of at most max_points evenly spaced rows of n (first and last kept)."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def _cum_at(values: np.ndarray, k: np.ndarray) -> np.ndarray:
    c = np.concatenate([[0.0], np.cumsum(values)])
    return c[k]


def pnl_series(result: RunResult, e: FillEdges, max_points: int = 2000) -> PnlSeries:
    """Cumulative component PnL (quote) of one run on a thinned time grid."""
    marks = result.marks
    if len(marks) > 1 and (np.diff(marks["exch_ts"]) < 0).any():
        marks = marks[np.argsort(marks["exch_ts"], kind="stable")]
    grid = np.unique(np.concatenate([e.ts_ns, marks["exch_ts"].astype(np.int64)]))
    if len(grid) == 0:
        z = np.zeros(0)
        return PnlSeries(grid, z, z, z, z, z)
    grid = grid[thin_index(len(grid), max_points)]
    k = np.searchsorted(e.ts_ns, grid, side="right")  # fills at or before t
    sq = e.side * e.qty
    pos = e.initial_position_qty + _cum_at(sq, k)
    m = mid_at(marks, grid) if len(marks) else np.full(len(grid), np.nan)
    # before the first mark (or without marks) use the last fill's mid, else the start mid
    fill_mid = np.where(k > 0, e.mid_px[np.maximum(k - 1, 0)] if len(e.mid_px) else np.nan, np.nan)
    m = np.where(np.isfinite(m), m, np.where(np.isfinite(fill_mid), fill_mid, e.start_mid_px))
    # the last point is marked at the run's final mid, like the totals
    m[-1] = e.final_mid_px
    inv = pos * m - _cum_at(sq * e.mid_px, k) - e.initial_position_qty * e.start_mid_px
    gross = _cum_at(e.gross, k)
    slip = _cum_at(e.slippage, k)
    fees = _cum_at(e.fees, k)
    return PnlSeries(grid, gross, slip, fees, inv, gross + slip + fees + inv)


def chained_pnl_series(
    results: Sequence[RunResult], edges: Sequence[FillEdges] | None = None, max_points: int = 2000
) -> PnlSeries:
    """Runs one after another (soak iterations): each run's series offset by the previous totals."""
    edges = list(edges) if edges is not None else [decompose(r) for r in results]
    per = max(50, max_points // max(1, len(results)))
    parts = []
    off = np.zeros(5)
    for r, e in zip(results, edges, strict=True):
        s = pnl_series(r, e, per)
        if len(s.ts_ns) == 0:
            continue
        cols = np.vstack([s.gross, s.slippage, s.fees, s.inventory, s.net]) + off[:, None]
        parts.append((s.ts_ns, cols))
        off = cols[:, -1].copy()
    if not parts:
        z = np.zeros(0)
        return PnlSeries(np.zeros(0, np.int64), z, z, z, z, z)
    ts = np.concatenate([p[0] for p in parts])
    cols = np.hstack([p[1] for p in parts])
    return PnlSeries(ts, *cols)


def thinned_marks(
    results: Sequence[RunResult], field: str, max_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """(ts_ns, ``field``) of the marks of all runs, concatenated and thinned by ``thin_index``;
    reads one run's marks at a time and keeps only its thinned rows (a month of soak records
    holds hundreds of millions of marks)."""
    lengths = np.array([r.n_rows("marks") for r in results], np.int64)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    idx = thin_index(int(bounds[-1]), max_points)
    ts_parts: list[np.ndarray] = [np.zeros(0, np.int64)]
    val_parts: list[np.ndarray] = [np.zeros(0)]
    for i, r in enumerate(results):
        lo, hi = np.searchsorted(idx, [bounds[i], bounds[i + 1]])
        if hi > lo:
            m = r.marks
            sel = idx[lo:hi] - bounds[i]
            ts_parts.append(m["exch_ts"][sel].astype(np.int64))
            val_parts.append(m[field][sel])
    return np.concatenate(ts_parts), np.concatenate(val_parts)


def position_series(
    results: Sequence[RunResult], max_points: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """(ts_ns, position_qty) from the marks of all runs, thinned."""
    return thinned_marks(results, "position_qty", max_points)


def fill_edge_bps(e: FillEdges) -> np.ndarray:
    """Per-fill edge at the fill, bps of its notional: (gross + slippage + fees)/(p·q)·1e4."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (e.gross + e.slippage + e.fees) / e.notional * 1e4


def histogram(x: np.ndarray, bins: int = 60) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Histogram over the 0.5–99.5 percentile range: (bin centres, counts, n below, n above)."""
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return np.zeros(0), np.zeros(0, np.int64), 0, 0
    lo, hi = np.percentile(x, [0.5, 99.5])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges_ = np.histogram(x, bins=bins, range=(lo, hi))
    return (edges_[:-1] + edges_[1:]) / 2, counts, int((x < lo).sum()), int((x > hi).sum())


class QuoteSeries(NamedTuple):
    """Our resting best bid and ask over time (NaN while a side has no live order)."""

    ts_ns: np.ndarray
    bid_px: np.ndarray
    ask_px: np.ndarray


def quote_series(result: RunResult, max_points: int = 2000) -> QuoteSeries:
    """Best live bid/ask of our orders after every ack and every exit from the book (exchange
    time where known), from the actions; thinned to ``max_points`` rows."""
    from mmbot.records import (
        ACT_ACKED,
        ACT_CANCELLED,
        ACT_EXPIRED,
        ACT_FILLED,
        ACT_REJECTED,
        OP_CANCEL,
    )

    a = result.actions
    rows = a[np.isin(a["kind"], (ACT_ACKED, ACT_CANCELLED, ACT_FILLED, ACT_EXPIRED, ACT_REJECTED))]
    ts = np.where(rows["exch_ts"] > 0, rows["exch_ts"], rows["local_ts"]).astype(np.int64)
    order = np.argsort(ts, kind="stable")
    live: dict[int, tuple[int, float]] = {}  # order_id -> (side, px)
    bid = np.full(len(order), np.nan)
    ask = np.full(len(order), np.nan)
    # one pass over order events only (not market events): a report, not a hot path
    for j, i in enumerate(order):
        r = rows[i]
        oid = int(r["order_id"])
        if (
            r["kind"] == ACT_ACKED and r["op"] != OP_CANCEL
        ):  # a new order or a replace is live at px
            live[oid] = (int(r["side"]), float(r["px"]))
        else:
            live.pop(oid, None)
        bids = [px for s, px in live.values() if s > 0]
        asks = [px for s, px in live.values() if s < 0]
        bid[j] = max(bids) if bids else np.nan
        ask[j] = min(asks) if asks else np.nan
    idx = thin_index(len(order), max_points)
    return QuoteSeries(ts[order][idx], bid[idx], ask[idx])


def mid_series(
    results: Sequence[RunResult], max_points: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """(ts_ns, mid_px) from the marks of all runs, thinned."""
    return thinned_marks(results, "mid_px", max_points)
