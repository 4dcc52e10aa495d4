"""The synthetic market's funding series: the venues' formula on a premium from the mid path."""

from __future__ import annotations

import numpy as np
import pytest

from mmbot.data.synthetic_funding import FundingAccrual, rate_from_premium

H_NS = 3_600_000_000_000


def _accrual() -> FundingAccrual:
    return FundingAccrual(
        interest_rate=0.0001, premium_coef=0.05, cap_rate=0.00375, interval_ns=H_NS
    )


def test_rate_formula_is_the_venues():
    assert rate_from_premium(0.0, 0.0001, 0.00375) == pytest.approx(0.0001)  # interest only
    assert rate_from_premium(0.0025, 0.0001, 0.00375) == pytest.approx(0.0020)  # band clamps
    assert rate_from_premium(-0.0025, 0.0001, 0.00375) == pytest.approx(-0.0020)
    assert rate_from_premium(0.05, 0.0001, 0.00375) == pytest.approx(0.00375)  # cap


def test_flat_then_rally_path_gives_interest_then_premium_rate():
    acc = _accrual()
    # interval 0: flat at 100; interval 1: 100 for its first half, 110 for the second (mean 105)
    ts = np.array([0, H_NS // 2, H_NS, H_NS + H_NS // 2, 2 * H_NS + 1], dtype=np.int64)
    mid = np.array([100.0, 100.0, 100.0, 110.0, 110.0])
    acc.feed(ts[:2], mid[:2])  # window by window, as the soak feeds its chunks
    acc.feed(ts[2:], mid[2:])
    s = acc.schedule(0, 2 * H_NS + 1, "test")
    assert s.times_ns.tolist() == [H_NS, 2 * H_NS]
    # P0 = 0 -> rate = I; P1 = 0.05 x (105/100 - 1) = 0.0025 -> 0.0025 + clamp(I - P1) = 0.0020
    assert s.rates[0] == pytest.approx(0.0001, abs=1e-15)
    assert s.rates[1] == pytest.approx(0.0020, abs=1e-12)
    # a window fed twice changes nothing; a schedule window holds only its own times
    acc.feed(ts, mid)
    assert acc.schedule(H_NS, 2 * H_NS + 1, "test").times_ns.tolist() == [2 * H_NS]
    assert acc.schedule(0, 2 * H_NS + 1, "test").rates.tolist() == s.rates.tolist()
    # asked up to the next funding time, the last mid stands until it: flat at 110 -> P = 0
    later = acc.schedule(2 * H_NS, 3 * H_NS, "test")
    assert later.times_ns.tolist() == [3 * H_NS] and later.rates[0] == pytest.approx(0.0001)


def test_nan_mids_are_skipped():
    acc = _accrual()
    ts = np.array([0, 10, H_NS + 1], dtype=np.int64)
    acc.feed(ts, np.array([100.0, np.nan, 100.0]))
    assert acc.schedule(0, H_NS, "t").rates.tolist() == [pytest.approx(0.0001)]
