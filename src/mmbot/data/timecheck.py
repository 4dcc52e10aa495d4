"""Timestamp validation of parsed capture messages: plausibility bounds and isolated-outlier
rejection, applied before the pipeline orders, offsets and replays anything.

One bad line must not be able to break a run: a negative, zero, overflowing or far-future time
would otherwise stretch the span to decades (the venue then walks all of it), and a single absurd
local time would set the constant clock offset (``Pipeline`` takes the minimum feed latency). So
every message is checked in file order:

1. bounds: exchange and local times must lie in ``[MIN_VALID_TS_NS, now + FUTURE_SLACK_NS]``;
2. outliers: a message whose exchange time is more than ``EXCH_OUTLIER_NS`` away from the median of
   its file-order neighbourhood (``HALF_WINDOW`` messages either side), or whose feed latency
   (local - exchange) is more than ``LATENCY_OUTLIER_NS`` away from the neighbourhood's median
   latency, is dropped. A centred median follows a genuine step (a capture gap, a clock jump that
   persists) exactly, and a run of up to ``HALF_WINDOW`` bad lines cannot move it.

Dropped messages are counted in ``ReadStats.repairs`` under ``TIME_REPAIR_NAMES``; the sequence
check then sees the gap a dropped depth message leaves and resyncs as for any other gap.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

MIN_VALID_TS_NS = 946_684_800 * 1_000_000_000
"""2000-01-01 UTC: nothing earlier is a real capture time (catches 0, negatives, ms-as-ns)."""
FUTURE_SLACK_NS = 86_400 * 1_000_000_000
"""A time more than one day past the reader's wall clock is not a recorded time."""
EXCH_OUTLIER_NS = 300 * 1_000_000_000
"""Exchange time this far (5 min) from its neighbourhood's median is an isolated outlier."""
LATENCY_OUTLIER_NS = 60 * 1_000_000_000
"""Feed latency this far (60 s) from its neighbourhood's median latency is an outlier."""
HALF_WINDOW = 4
"""Neighbours either side in the rolling median (a run of up to 4 bad lines is rejected)."""
INVALID_TS = -1
"""What parsers store for a time that does not fit int64 nanoseconds (dropped here)."""

TIME_REPAIR_NAMES = (
    "exch_ts_invalid_dropped",
    "local_ts_invalid_dropped",
    "exch_ts_outlier_dropped",
    "local_ts_outlier_dropped",
)


def to_ns(value: int, unit_ns: int) -> int:
    """``value`` (an integer time in units of ``unit_ns``) in ns, or ``INVALID_TS`` if it does not
    fit int64 (a parser's guard against ``1e30``-style values)."""
    try:
        v = int(value)
    except OverflowError:  # float('inf') from a JSON 1e999
        return INVALID_TS
    if v <= 0 or v > np.iinfo(np.int64).max // unit_ns:
        return INVALID_TS
    return v * unit_ns


def ns_column(values: np.ndarray, unit_ns: int) -> np.ndarray:
    """Vector form of ``to_ns`` for an int64 column."""
    v = np.asarray(values, dtype=np.int64)
    ok = (v > 0) & (v <= np.iinfo(np.int64).max // unit_ns)
    return np.where(ok, v * unit_ns, INVALID_TS)


@njit(cache=True)
def _window_medians(full: np.ndarray, n_left: int, half: int) -> np.ndarray:
    """Median of ``full[k - half : k + half + 1]`` (clipped to the array) for each ``k >= n_left``,
    as ``np.nanmedian`` over a NaN-padded window computes it: the middle value, or the mean
    ``(a + b) / 2`` of the two middle values of an even count (same float results)."""
    n = len(full) - n_left
    out = np.empty(n, dtype=np.float64)
    win = np.empty(2 * half + 1, dtype=np.float64)
    for k in range(n):
        c = k + n_left
        m = 0
        for j in range(max(0, c - half), min(len(full), c + half + 1)):
            v = full[j]
            i = m
            while i > 0 and win[i - 1] > v:  # insertion sort: at most 2 * half + 1 values
                win[i] = win[i - 1]
                i -= 1
            win[i] = v
            m += 1
        h = m // 2
        lo = win[h] if m % 2 == 1 else win[h - 1]
        out[k] = (lo + win[h]) / 2.0
    return out


def _rolling_median(x: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Median of each value's window (``left`` context + up to HALF_WINDOW either side), in float."""
    full = np.concatenate((left.astype(np.float64), x.astype(np.float64)))
    return _window_medians(full, len(left), HALF_WINDOW)


class TimeFilter:
    """Stateful per-file checker (carries the last accepted messages as left context)."""

    def __init__(self, has_local_time: bool = True, now_ns: int | None = None) -> None:
        self.has_local_time = has_local_time
        now = time.time_ns() if now_ns is None else int(now_ns)
        self.max_valid_ns = now + FUTURE_SLACK_NS
        self.counts = dict.fromkeys(TIME_REPAIR_NAMES, 0)
        self._left_exch = np.empty(0, dtype=np.int64)
        self._left_lat = np.empty(0, dtype=np.int64)

    def keep(self, m_exch: np.ndarray, m_local: np.ndarray) -> np.ndarray:
        """Boolean mask of the messages to keep (file order); counts the others."""
        lo, hi = MIN_VALID_TS_NS, self.max_valid_ns
        ok_exch = (m_exch >= lo) & (m_exch <= hi)
        ok_local = (m_local >= lo) & (m_local <= hi) if self.has_local_time else ok_exch
        self.counts["exch_ts_invalid_dropped"] += int((~ok_exch).sum())
        self.counts["local_ts_invalid_dropped"] += int((ok_exch & ~ok_local).sum())
        keep = ok_exch & ok_local
        idx = np.nonzero(keep)[0]
        if len(idx) == 0:
            return keep
        exch = m_exch[idx]
        med = _rolling_median(exch, self._left_exch)
        bad_exch = np.abs(exch - med) > EXCH_OUTLIER_NS
        bad_lat = np.zeros(len(idx), dtype=bool)
        lat = m_local[idx] - exch
        if self.has_local_time:
            lat_med = _rolling_median(lat, self._left_lat)
            bad_lat = ~bad_exch & (np.abs(lat - lat_med) > LATENCY_OUTLIER_NS)
        self.counts["exch_ts_outlier_dropped"] += int(bad_exch.sum())
        self.counts["local_ts_outlier_dropped"] += int(bad_lat.sum())
        good = ~(bad_exch | bad_lat)
        keep[idx[~good]] = False
        self._left_exch = np.concatenate((self._left_exch, exch[good]))[-HALF_WINDOW:]
        self._left_lat = np.concatenate((self._left_lat, lat[good]))[-HALF_WINDOW:]
        return keep
