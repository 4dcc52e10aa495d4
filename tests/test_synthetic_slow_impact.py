"""A sweep's transient impact in two parts (``model.impact_slow_ratio``,
``impact_slow_decay_per_s``): a fast part that is gone within a second and a slow part the
informed do not trade against. On the USD-M market fitted with --sweep-requote alone (the one
shipped before the slow-impact refit, kept in tests/data) the one-speed transient (decaying at 0.63/s)
reverts the mid over the next second, so consecutive 1 s returns revert (-0.1 and below against
the capture's -0.018); the same total impact split into a fast part (8/s) and a slow one (0.1/s)
keeps the print markout's fall from 100 ms to 1 s but not the 1 s returns' reversion. 0 (default)
generates the same bytes as a calibration without the fields."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from conftest import requote_usdm_market
from mmbot.data.market_stats import market_stats
from mmbot.data.synthetic import generate
from mmbot.errors import UserError

T0_NS = 1_700_000_000_000_000_000
S_NS = 1_000_000_000
SEEDS = (11, 12)
DURATION_S = 1200
AC_1S = "autocorr_mid_return_1s"


def _usdm() -> dict:
    return requote_usdm_market()


def _two_speed(cal: dict, fast_ratio: float, slow_decay_per_s: float) -> dict:
    """``cal`` with its transient impact split: ``fast_ratio`` of it decaying at 8/s, the rest
    at ``slow_decay_per_s`` (the total, and so a sweep's first move, unchanged)."""
    out = copy.deepcopy(cal)
    m = out["model"]
    total = float(m["impact_transient_ratio"])
    m["impact_transient_ratio"] = fast_ratio * total
    m["impact_decay_per_s"] = 8.0
    m["impact_slow_ratio"] = (1.0 - fast_ratio) * total
    m["impact_slow_decay_per_s"] = slow_decay_per_s
    return out


def _mean_stats(cal: dict) -> dict[str, float]:
    runs = [
        market_stats(generate(cal, s, T0_NS, DURATION_S * S_NS), tick_px=cal["tick_px"])
        for s in SEEDS
    ]
    keys = (AC_1S, "markout_100ms_bps", "markout_1s_bps", "autocorr_parent_sign_lag1")
    return {k: float(np.mean([r[k] for r in runs])) for k in keys}


def test_two_speed_transient_keeps_the_fast_markout_reversion_without_1s_return_reversion() -> None:
    cal = _usdm()
    real = cal["target_stats"]
    one = _mean_stats(cal)
    two = _mean_stats(_two_speed(cal, 0.35, 0.1))
    for name, s in (("capture", real), ("one speed", one), ("two speeds", two)):
        print(
            f"{name}: {AC_1S} {s[AC_1S]:.4f} markout 100ms {s['markout_100ms_bps']:.4f} "
            f"1s {s['markout_1s_bps']:.4f} parent sign {s['autocorr_parent_sign_lag1']:.4f}"
        )
    assert one[AC_1S] - real[AC_1S] < -0.05  # the one-speed market reverts its 1 s returns
    assert two[AC_1S] - one[AC_1S] > 0.05
    assert abs(two[AC_1S] - real[AC_1S]) < 0.05
    # the print markout still falls from 100 ms to 1 s, as the capture's does
    assert two["markout_100ms_bps"] > 1.1 * two["markout_1s_bps"]
    # the informed leave the slow part alone: their orders do not line up behind each sweep
    assert abs(two["autocorr_parent_sign_lag1"] - real["autocorr_parent_sign_lag1"]) < 0.05


def test_slow_part_the_informed_trade_against_would_line_their_orders_up() -> None:
    """The same slow displacement as part of the one-speed transient (which the informed trade
    against) makes consecutive aggressor orders share a side more often than the slow part."""
    cal = _usdm()
    seen = copy.deepcopy(cal)
    seen["model"]["impact_decay_per_s"] = 0.1  # one speed, as slow as the slow part
    slow = _two_speed(cal, 0.0, 0.1)
    a = _mean_stats(seen)["autocorr_parent_sign_lag1"]
    b = _mean_stats(slow)["autocorr_parent_sign_lag1"]
    print(f"parent sign lag-1: one speed at 0.1/s {a:.4f}, slow part {b:.4f}")
    assert a - b > 0.1


def test_slow_ratio_zero_generates_the_same_bytes_as_without_it() -> None:
    cal = _usdm()
    base = generate(cal, 4, T0_NS, 30 * S_NS).tobytes()
    cal["model"]["impact_slow_ratio"] = 0.0
    cal["model"]["impact_slow_decay_per_s"] = 0.5
    assert generate(cal, 4, T0_NS, 30 * S_NS).tobytes() == base


def test_negative_slow_ratio_is_refused() -> None:
    cal = _usdm()
    cal["model"]["impact_slow_ratio"] = -0.5
    with pytest.raises(UserError, match="finite and >= 0"):
        generate(cal, 1, T0_NS, S_NS)
