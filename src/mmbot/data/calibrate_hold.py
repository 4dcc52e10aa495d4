"""The makers' held pulls for `mmbot data calibrate --fit-hold` (synthetic ``pull_hold_s``): the
thin state of a capture's near book (the share of 100 ms samples in which a side's depth within
1 bps of the mid is below THIN_BELOW of its mean) and the pull terms that give the synthetic
market as much held time, with the takers drawn to a thin side, and the fit step of the aggressor
orders' size tail under holds (docs/data.md, "A thin state that lasts: held pulls")."""

from __future__ import annotations

import math

import numpy as np

from mmbot.data.calibrate_step import _ratio

# held pulls, set by hand from the by-hand table in docs/data.md (shipped COIN-M, 2 x 600 s):
# holds of 0.3-3 s at the same held share gave about the same figures; D 0.99 left the touch a
# few lots and widened the spread (1.8x), 0.9 left the thin share lower; beta 2 brought the
# median depth at orders and the 100 ms markout furthest
HOLD_S = 1.0
HOLD_DEPLETION = 0.95
HOLD_THIN_BETA = 2.0
THIN_BELOW = 0.1  # a side is thin below this share of its mean depth within 1 bps
MAX_HELD_SHARE = 0.5
# the takers' size tail under holds: the aggressor orders' size quantiles above PARENT_TAIL_FROM
# are stretched, x r^w (w from 0 there to 1 at the largest), r the step of the capture's mean
# aggressor order over the market's. While a side is held a sweep meets a thin touch and the
# market measures its orders smaller than the sizes drawn (the --fit-hold COIN-M refit: 0.8388x
# the capture's mean, 3 x 1 h); by hand the tail x 1.3 gave 0.9954x. The mean moves ~0.6 of the
# tail's factor in log, so the step is the full one (power 1)
PARENT_TAIL_FROM = 0.5
PARENT_TAIL_POWER = 1.0


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


def step_parent_tail(m: dict, s: dict, target: dict) -> None:
    """One fit step of the aggressor orders' size tail (``model.parent_size_quantiles_qty``
    above PARENT_TAIL_FROM, read as evenly spaced probabilities 0..1) toward the capture's mean
    aggressor order size (market_stats ``parent_size_mean_qty``); the median and below stay."""
    r = _ratio(
        float(target["parent_size_mean_qty"]), float(s["parent_size_mean_qty"]), PARENT_TAIL_POWER
    )
    q = np.asarray(m["parent_size_quantiles_qty"], dtype=np.float64)
    p = np.linspace(0.0, 1.0, len(q))
    w = np.clip((p - PARENT_TAIL_FROM) / (1.0 - PARENT_TAIL_FROM), 0.0, 1.0)
    m["parent_size_quantiles_qty"] = [float(x) for x in q * r**w]
