"""``glft_ref`` against hftbacktest running its own GLFT tutorial on the same ``mmbot data convert``
npz (bench/vs_glft.py's drivers, equal limits): fills within 10 % and equity within 10 % or 0.1
quote units, whichever is larger (slow: converts the captures, compiles the tutorial's loop)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from conftest import REPO, SPOT_CAPTURE, USDM_CAPTURE, need_shared

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


@pytest.fixture(scope="module")
def bench():
    pytest.importorskip("hftbacktest")
    spec = importlib.util.spec_from_file_location("vs_glft", REPO / "bench" / "vs_glft.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["vs_glft"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tutorial(bench):
    return bench.tutorial_loop()


@pytest.mark.parametrize(("capture", "min_fills"), [(USDM_CAPTURE, 10), (SPOT_CAPTURE, 1)])
def test_glft_ref_fills_and_equity_match_hftbacktests_glft_tutorial(
    bench, tutorial, capture, min_fills
) -> None:
    data, tick, lot, _ = bench.load(need_shared(capture))
    qty = 0.01
    h = bench.run_hbt(data, tutorial, tick, lot, qty, record=True)
    m = bench.run_mmbot(data, "glft_ref", tick, lot, qty)
    assert h["fills"] >= min_fills  # the comparison is not between two idle quoters
    fills_ok, equity_ok = bench.parity(h, m)
    assert fills_ok, (m["fills"], h["fills"])
    assert equity_ok, (m["equity"], h["equity"])
