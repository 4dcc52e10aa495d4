"""The makers' held pulls for `mmbot data calibrate --fit-hold` (synthetic ``pull_hold_s``): the
thin state of a capture's near book (the share of 100 ms samples in which a side's depth within
1 bps of the mid is below THIN_BELOW of its mean) and the pull terms that give the synthetic
market as much held time, with the takers drawn to a thin side (docs/data.md, "A thin state that
lasts: held pulls")."""

from __future__ import annotations

import math

import numpy as np

# held pulls, set by hand from the by-hand table in docs/data.md (shipped COIN-M, 2 x 600 s):
# holds of 0.3-3 s at the same held share gave about the same figures; D 0.99 left the touch a
# few lots and widened the spread (1.8x), 0.9 left the thin share lower; beta 2 brought the
# median depth at orders and the 100 ms markout furthest
HOLD_S = 1.0
HOLD_DEPLETION = 0.95
HOLD_THIN_BETA = 2.0
THIN_BELOW = 0.1  # a side is thin below this share of its mean depth within 1 bps
MAX_HELD_SHARE = 0.5


def thin_share(events: np.ndarray, tick_px: float) -> float:
    """Share of the 100 ms samples of both sides' depth within 1 bps of the mid that are below
    THIN_BELOW x that depth's mean (market_stats' own book scan)."""
    from mmbot.data.market_stats import DEPTH_BPS, _scan

    res = _scan(events["ev"], events["exch_ts"], events["px"], events["qty"], tick_px, DEPTH_BPS)
    d_cum = res[3]
    x = np.concatenate([d_cum[:, 0], d_cum[:, len(DEPTH_BPS)]])
    x = x[np.isfinite(x)]
    if len(x) == 0 or x.mean() <= 0:
        return 0.0
    return float(np.mean(x < THIN_BELOW * x.mean()))


def hold_terms(share: float) -> dict:
    """The model fields for a held share ``share`` of each side's time: a side is held 1 -
    exp(-rate / 2 x hold) of the time (pulls at ``rate`` a second, a fair coin for the side,
    exponential holds of mean HOLD_S; a pull during a hold keeps the later end)."""
    s = min(max(float(share), 0.0), MAX_HELD_SHARE)
    return {
        "pull_rate_per_s": -2.0 * math.log(1.0 - s) / HOLD_S,
        "pull_hold_s": HOLD_S,
        "pull_depletion": HOLD_DEPLETION,
        "taker_thin_exponent": HOLD_THIN_BETA,
    }
