"""The synthetic market's funding series: one rate per funding time, derived from the market's own
mid path and the profile's ``funding`` section, as Binance and Bybit derive theirs.

The venues' rule: rate = P + clamp(I − P, −0.05 %, +0.05 %), clamped to ±cap, with I the interest
rate per interval and P the interval's average premium of the perpetual over its index. The
synthetic market has no index, so the premium is modelled from the path: a perpetual trades rich
after a rally and cheap after a sell-off, P = premium_coef × (time-weighted mean mid over the
interval / mid at its start − 1). The rates depend only on the mid path (rebuilt from the events
by ``audit.crosscheck.rebuild_mids``, not the strategy's records), so every knob set and every
replay of the same market time pays the same rates.

``FundingAccrual`` is fed the mid path window by window (any window order that moves forward;
windows already fed are ignored) and hands out the schedule of the funding times in a window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mmbot.funding import FundingSchedule

PREMIUM_BAND = 0.0005  # the venues' clamp of (interest − premium): ±0.05 % per interval


def rate_from_premium(premium: float, interest_rate: float, cap_rate: float) -> float:
    """The venues' funding formula for one interval."""
    r = premium + min(max(interest_rate - premium, -PREMIUM_BAND), PREMIUM_BAND)
    return min(max(r, -cap_rate), cap_rate)


@dataclass
class FundingAccrual:
    interest_rate: float
    premium_coef: float
    cap_rate: float
    interval_ns: int
    rates: dict[int, float] = field(default_factory=dict)  # funding time (ns) -> rate
    _fed_ns: int = -(1 << 62)  # the last mid time fed
    _k: int | None = None  # index of the interval being accrued (times in [k, k+1) x interval)
    _start_mid: float = math.nan
    _area: float = 0.0  # integral of mid dt over the interval so far
    _span_ns: int = 0
    _last_ns: int = 0
    _last_mid: float = math.nan

    @classmethod
    def from_profile(cls, profile) -> FundingAccrual:
        f = profile.funding
        return cls(f.interest_rate, f.premium_coef, f.cap_rate, int(f.interval_s) * 1_000_000_000)

    def feed(self, ts_ns: np.ndarray, mid_px: np.ndarray) -> None:
        """Mids after each book row (NaN: a side empty, skipped), in time order; vectorised per
        funding interval (a chunk spans one or two)."""
        ok = np.isfinite(mid_px) & (ts_ns > self._fed_ns)
        t, m = ts_ns[ok].astype(np.int64), mid_px[ok].astype(np.float64)
        if len(t) == 0:
            return
        self._fed_ns = int(t[-1])
        if self._k is None:
            self._k, self._start_mid = int(t[0]) // self.interval_ns, float(m[0])
            self._last_ns, self._last_mid = int(t[0]), float(m[0])
        k = t // self.interval_ns
        for lo, hi in _runs(k):
            self.advance_to(int(t[lo]))
            tt = np.maximum.accumulate(np.concatenate(([self._last_ns], t[lo:hi])))
            mm = np.concatenate(([self._last_mid], m[lo : hi - 1]))
            dt = np.diff(tt)
            self._area += float((mm * dt).sum())
            self._span_ns += int(dt.sum())
            self._last_ns, self._last_mid = int(tt[-1]), float(m[hi - 1])

    def advance_to(self, t_ns: int) -> None:
        """Close every interval whose funding time is at or before ``t_ns`` (the last mid stands
        until then): its rate is known from then on."""
        if self._k is None:
            return
        while (self._k + 1) * self.interval_ns <= t_ns:
            boundary = (self._k + 1) * self.interval_ns
            self._accrue(boundary)
            self._close(boundary)
            self._k += 1
            self._start_mid, self._last_ns = self._last_mid, boundary

    def _accrue(self, t: int) -> None:
        """The last mid stands from the last time to ``t``."""
        dt = t - self._last_ns
        if dt > 0:
            self._area += self._last_mid * dt
            self._span_ns += dt
            self._last_ns = t

    def _close(self, boundary: int) -> None:
        mean = self._area / self._span_ns if self._span_ns > 0 else self._last_mid
        premium = self.premium_coef * (mean / self._start_mid - 1.0)
        self.rates[boundary] = rate_from_premium(premium, self.interest_rate, self.cap_rate)
        self._area, self._span_ns = 0.0, 0

    def schedule(self, start_ns: int, end_ns: int, source: str) -> FundingSchedule:
        """The funding times in (start_ns, end_ns] and their rates; the mids fed so far are taken
        to stand until ``end_ns`` (feed the path up to it first)."""
        self.advance_to(end_ns)
        times = sorted(t for t in self.rates if start_ns < t <= end_ns)
        return FundingSchedule(
            np.asarray(times, dtype=np.int64),
            np.asarray([self.rates[t] for t in times], dtype=np.float64),
            source,
        )


def _runs(k: np.ndarray) -> list[tuple[int, int]]:
    """[lo, hi) index ranges of equal consecutive values of ``k``."""
    cuts = np.flatnonzero(np.diff(k)) + 1
    edges = [0, *cuts.tolist(), len(k)]
    return list(zip(edges[:-1], edges[1:], strict=True))
