"""Momentum takers (``model.momentum_rate_per_s_per_bps``, ``momentum_decay_per_s``): a move of
the mid raises the intensity of noise parents on the side it moved toward. On the USD-M capture
most aggressor orders that print 0.5 bps past the mid of 100 ms before had seen the mid move their
way first; the term adds such orders. It raises the trade-through rates at every distance, not
only at 0.5 bps (docs/data.md, "Takers chasing the mid's moves"). 0 (default) generates the same
bytes as a calibration without the fields."""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import pytest

from mmbot.data.market_stats import market_stats
from mmbot.data.synthetic import generate, load_calibration
from mmbot.errors import UserError

T0_NS = 1_700_000_000_000_000_000
S_NS = 1_000_000_000
SEEDS = (11, 12)
DURATION_S = 900
TT = ("trade_through_0.5bps_per_min", "trade_through_2bps_per_min")


def _usdm() -> dict:
    """The shipped USD-M market without the term's fields (whatever a later refit ships)."""
    cal = copy.deepcopy(load_calibration("binance_usdm_btcusdt"))
    cal["model"].pop("momentum_rate_per_s_per_bps", None)
    cal["model"].pop("momentum_decay_per_s", None)
    return cal


def _with_momentum(cal: dict, rate_per_s_per_bps: float) -> dict:
    out = copy.deepcopy(cal)
    out["model"]["momentum_rate_per_s_per_bps"] = rate_per_s_per_bps
    return out


def _mean_stats(cal: dict) -> dict[str, float]:
    runs = [
        market_stats(generate(cal, s, T0_NS, DURATION_S * S_NS), tick_px=cal["tick_px"])
        for s in SEEDS
    ]
    keys = (*TT, "parent_rate_per_s")
    return {k: float(np.mean([r[k] for r in runs])) for k in keys}


def test_momentum_takers_add_orders_that_trade_through_half_a_bps() -> None:
    cal = _usdm()
    off = _mean_stats(cal)
    on = _mean_stats(_with_momentum(cal, 20.0))
    assert on["parent_rate_per_s"] > 1.03 * off["parent_rate_per_s"]
    assert on[TT[0]] > 1.05 * off[TT[0]]


def test_momentum_rate_zero_generates_the_same_bytes_as_without_it() -> None:
    cal = _usdm()
    zero = _with_momentum(cal, 0.0)
    zero["model"]["momentum_decay_per_s"] = 50.0
    a = generate(cal, 3, T0_NS, 60 * S_NS)
    b = generate(zero, 3, T0_NS, 60 * S_NS)
    assert hashlib.md5(a.tobytes()).digest() == hashlib.md5(b.tobytes()).digest()


def test_negative_momentum_rate_is_refused() -> None:
    with pytest.raises(UserError, match="must be finite and >= 0"):
        generate(_with_momentum(_usdm(), -1.0), 1, T0_NS, S_NS)
