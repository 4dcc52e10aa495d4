"""Perpetual funding: the payment schedule a run is charged (times and rates), from a constant rate
per interval or a CSV file, and its validation.

Owns ``FundingSchedule``, ``schedule_from_rate`` (the venue's funding times: every
``interval_s`` from 00:00 UTC, 8 h on Binance and Bybit), ``load_funding_csv`` and the meta form.
The payment itself is a component of the edge decomposition (``mmbot.audit.decompose``): at each
funding time t, ``−rate × position(t) × |V(mark(t))|`` in the settle coin (a long pays a positive
rate), with position(t) the position held just before t and mark(t) the mid in force at t.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from mmbot.errors import UserError

FUNDING_INTERVAL_S = 8 * 3600  # Binance and Bybit perpetuals: 00:00, 08:00, 16:00 UTC
MAX_ABS_RATE = 0.05  # a funding rate beyond 5 % per interval is a typo, not a market


@dataclass(frozen=True)
class FundingSchedule:
    times_ns: np.ndarray  # int64, increasing
    rates: np.ndarray  # float64, per interval (0.0001 = 1 bp)
    source: str

    def to_meta(self) -> dict:
        return {
            "source": self.source,
            "times_ns": [int(t) for t in self.times_ns],
            "rates": [float(r) for r in self.rates],
        }


def schedule_from_meta(meta: dict) -> FundingSchedule | None:
    f = meta.get("funding") if isinstance(meta, dict) else None
    if not isinstance(f, dict):
        return None
    times = np.asarray(f.get("times_ns") or [], dtype=np.int64)
    rates = np.asarray(f.get("rates") or [], dtype=np.float64)
    if len(times) != len(rates):
        raise UserError("run meta: funding times_ns and rates differ in length")
    return FundingSchedule(times, rates, str(f.get("source", "")))


def _check_rate(rate: float, where: str) -> float:
    if not (math.isfinite(rate) and abs(rate) <= MAX_ABS_RATE):
        raise UserError(f"{where}: funding rate {rate!r} must be finite and within ±{MAX_ABS_RATE}")
    return float(rate)


def schedule_from_rate(
    rate: float, start_ns: int, end_ns: int, interval_s: int = FUNDING_INTERVAL_S
) -> FundingSchedule:
    """``rate`` charged at every funding time in (start_ns, end_ns] (multiples of the interval)."""
    _check_rate(rate, "--funding-rate")
    step = int(interval_s) * 1_000_000_000
    first = (int(start_ns) // step + 1) * step
    times = np.arange(first, int(end_ns) + 1, step, dtype=np.int64)
    return FundingSchedule(
        times, np.full(len(times), float(rate)), f"constant {rate:g} every {interval_s} s"
    )


def _parse_time(text: str, where: str) -> int:
    s = text.strip()
    if s.lstrip("-").isdigit():
        x = int(s)
        return x * 1_000_000 if abs(x) < 10**14 else x  # epoch ms or ns
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{where}: time {s!r} is neither epoch ms/ns nor ISO-8601") from None
    if dt.tzinfo is None:
        raise UserError(f"{where}: time {s!r} has no timezone (add Z for UTC)")
    return int(round(dt.timestamp() * 1e9))


def load_funding_csv(path: Path) -> FundingSchedule:
    """``time,rate`` rows (a header line is allowed); time as epoch ms, epoch ns or ISO-8601 UTC."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"--funding {path}: cannot read ({exc.strerror})") from None
    times: list[int] = []
    rates: list[float] = []
    for n, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        where = f"--funding {path} line {n}"
        if len(row) != 2:
            raise UserError(f"{where}: expected 'time,rate', got {len(row)} field(s)")
        try:
            rate = float(row[1])
        except ValueError:
            if n == 1:
                continue  # a header
            raise UserError(f"{where}: rate {row[1]!r} is not a number") from None
        t = _parse_time(row[0], where)
        if times and t <= times[-1]:
            raise UserError(f"{where}: times must increase")
        times.append(t)
        rates.append(_check_rate(rate, where))
    if not times:
        raise UserError(f"--funding {path}: no funding rows")
    return FundingSchedule(
        np.asarray(times, np.int64), np.asarray(rates, np.float64), f"file {path.name}"
    )


def within(schedule: FundingSchedule, start_ns: int, end_ns: int) -> FundingSchedule:
    """The payments that fall inside (start_ns, end_ns]."""
    keep = (schedule.times_ns > start_ns) & (schedule.times_ns <= end_ns)
    return FundingSchedule(schedule.times_ns[keep], schedule.rates[keep], schedule.source)


# the synthetic market's funding: an AR(1) around the 1 bp / 8 h that Binance and Bybit perpetuals
# sit at in calm markets (their default interest component), clipped to the venues' usual caps
SYN_MEAN_RATE = 0.0001
SYN_SD_RATE = 0.00005
SYN_AR = 0.7
SYN_CAP = 0.00375


def synthetic_schedule(
    start_ns: int, end_ns: int, seed: int = 0, interval_s: int = FUNDING_INTERVAL_S
) -> FundingSchedule:
    """A funding series for a synthetic market: one rate per funding time in (start_ns, end_ns],
    reproducible from ``seed``."""
    base = schedule_from_rate(SYN_MEAN_RATE, start_ns, end_ns, interval_s)
    rng = np.random.default_rng(seed)
    rates = np.empty(len(base.times_ns))
    dev = 0.0
    for i in range(len(rates)):
        dev = SYN_AR * dev + rng.normal(0.0, SYN_SD_RATE)
        rates[i] = min(max(SYN_MEAN_RATE + dev, -SYN_CAP), SYN_CAP)
    return FundingSchedule(base.times_ns, rates, f"synthetic AR(1) seed {seed}")
