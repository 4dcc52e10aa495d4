"""The venue against the reference engine (hftbacktest 2.4) on the real USD-M capture: same events,
same join-the-touch strategy, fills must agree. The whole capture is slow; its first 90 s run in
``make test`` (CI) so the parity is checked on every change."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from conftest import REPO, USDM_CAPTURE, need_shared

pytestmark = [pytest.mark.shared_data]
FAST_WINDOW_NS = 90_000_000_000


def _bench():
    pytest.importorskip("hftbacktest")
    spec = importlib.util.spec_from_file_location(
        "vs_hftbacktest", REPO / "bench" / "vs_hftbacktest.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["vs_hftbacktest"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_fills_agree_with_hftbacktest_on_the_usdm_capture():
    b = _bench()
    data = np.load(b.convert(need_shared(USDM_CAPTURE)))["data"]
    _assert_parity(b, data, min_fills=100)


def test_fills_agree_with_hftbacktest_on_90s_of_the_usdm_capture():
    b = _bench()
    data = np.load(b.convert(need_shared(USDM_CAPTURE)))["data"]
    # a prefix of the rows: both engines see the same first 90 s of the market
    cut = int(np.argmax(data["exch_ts"] > data["exch_ts"][0] + FAST_WINDOW_NS))
    data = data[:cut]
    _assert_parity(b, data, min_fills=20)


def _assert_parity(b, data: np.ndarray, min_fills: int) -> None:
    h = b.run_hbt(data, b._hbt_strategy(), record=True)
    m = b.run_mmbot(data)
    assert h["fills"] > min_fills
    assert abs(m["fills"] - h["fills"]) <= 0.10 * h["fills"]
    cmp = b.compare_fills(h["fill_keys"], m["fill_rows"])
    # the same fill (exchange time, side, price) for almost every fill, not just similar counts
    assert cmp["same"] >= 0.95 * h["fills"]
    assert m["equity"] == pytest.approx(h["equity"], abs=0.05 * abs(h["equity"]) + 1.0)
