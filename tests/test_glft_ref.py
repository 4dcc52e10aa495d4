"""``glft_ref``, the port of hftbacktest's GLFT tutorial: its calibration against the tutorial's own
algorithm written out here (full-window arrays, ``out[:tick] += 1`` per trade, ``np.nanstd``), its
quote formula on paper, the position limit, warm-up and degenerate fits, and a backtest."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import TESTS_DATA
from mmbot.audit import build_edge_report
from mmbot.backtest import RunSettings, run
from mmbot.config import load_profile
from mmbot.errors import UserError
from mmbot.knobs import CONSERVATIVE_START
from mmbot.records import ACT_SENT, OP_CANCEL, OP_NEW, OP_REPLACE
from mmbot.strategy import glft_ref
from mmbot.strategy.contract import (
    NOQUOTE_WARMUP,
    TRADE_VIEW_DTYPE,
    new_market_view,
    new_own_orders,
    new_quote,
)
from mmbot.strategy.params import make_params
from mmbot.strategy.registry import make_qparams
from mmbot.strategy.views import ORD_LIVE, SIDE_BID

TICK = 0.25  # exact in binary: px / tick is exact
QTY = 0.5
MAX_ORDERS = 20
NOW = 1_700_000_000_000_000_000


def _params():
    return make_params(
        dict(CONSERVATIVE_START), load_profile("S1"), tick_px=TICK, lot_qty=0.5, ref_px=1000.0,
        order_qty=QTY, max_position_qty=MAX_ORDERS * QTY, strategy="glft_ref",
    )  # fmt: skip


def _qparams(**over):
    return make_qparams(glft_ref.QUOTER, over, "glft_ref")


def _view(bid_tick: int, ask_tick: int, pos: float = 0.0, now: int = NOW):
    v = new_market_view()
    v["now_ns"] = now
    v["best_bid_px"], v["best_ask_px"] = bid_tick * TICK, ask_tick * TICK
    v["best_bid_qty"] = v["best_ask_qty"] = 1.0
    v["position_qty"] = pos
    return v


# ---- the tutorial's calibration, written out as the notebook has it -----------------------------
def _tutorial_intensity(depths: np.ndarray, n_bins: int = 500) -> np.ndarray:
    out = np.zeros(n_bins)
    max_tick = 0
    for d in depths:
        if not np.isfinite(d):
            continue
        tick = round(d / 0.5) - 1
        if tick < 0 or tick >= n_bins:
            continue
        out[:tick] += 1
        max_tick = max(max_tick, tick)
    return out[:max_tick]


def _tutorial_fit(depths, chg, window_s, steps_per_s, a, k):
    lam = _tutorial_intensity(depths)
    if len(lam) > 2:
        lam = lam[:70] / window_s
        x = np.arange(len(lam)) + 0.5
        y = np.log(lam)
        w = len(x)
        slope = (w * np.sum(x * y) - np.sum(x) * np.sum(y)) / (w * np.sum(x**2) - np.sum(x) ** 2)
        a, k = math.exp((np.sum(y) - slope * np.sum(x)) / w), -slope
    return a, k, float(np.nanstd(chg)) * math.sqrt(steps_per_s)


def test_calibration_matches_the_tutorials_algorithm_across_the_ring_wrap() -> None:
    """A random market of 36,300 steps (past the ring's 36,000): A, k and the volatility after every
    refit equal the tutorial's computed over full arrays."""
    rng = np.random.default_rng(7)
    p = _params()
    window_s = 10.0  # 100 steps
    qp = _qparams(window_s=window_s)
    st = glft_ref.new_state(p, qp)
    w, refit = int(st["window_steps"][0]), int(st["refit_steps"][0])
    own, out = new_own_orders(), new_quote()
    trades = np.zeros(64, TRADE_VIEW_DTYPE)
    n_steps = glft_ref.MAX_WINDOW_STEPS + 300
    arrival = np.full(n_steps, np.nan)
    chg = np.full(n_steps, np.nan)
    mid = np.nan
    bid = 4000
    a = k = np.nan
    checked = 0
    for t in range(n_steps):
        bid += int(rng.integers(-2, 3))
        ask = bid + int(rng.integers(1, 4))
        n = int(rng.poisson(1.5))
        for i in range(n):
            side = 1 if rng.random() < 0.5 else -1
            reach = int(rng.geometric(0.35)) - 1  # levels beyond the touch
            px_tick = (ask + reach) if side > 0 else (bid - reach)
            trades[i]["px"], trades[i]["side"], trades[i]["qty"] = px_tick * TICK, side, 1.0
        # the tutorial's step
        if not np.isnan(mid):
            d = -np.inf
            for i in range(n):
                ptk = trades[i]["px"] / TICK
                d = max(ptk - mid, d) if trades[i]["side"] > 0 else max(mid - ptk, d)
            arrival[t] = d
        prev, mid = mid, (bid + ask) / 2.0
        chg[t] = mid - prev
        view = _view(bid, ask)
        glft_ref.on_market(st, p, qp, view, trades, n)
        glft_ref.quote(st, p, qp, view, own, out)
        if t % refit == 0 and t >= w - 1:
            s = slice(t + 1 - w, t + 1)
            a, k, vol = _tutorial_fit(arrival[s], chg[s], window_s, 10.0, a, k)
            assert st["a_per_s"][0] == pytest.approx(a, rel=1e-9)
            assert st["k_per_tick"][0] == pytest.approx(k, rel=1e-9)
            assert st["sigma_ticks"][0] == pytest.approx(vol, rel=1e-9)
            checked += 1
    assert checked == sum(t % refit == 0 and t >= w - 1 for t in range(n_steps)) > 700
    assert int(st["n_fits"][0]) == checked


# ---- the quote -------------------------------------------------------------------------------
def _quote_with(a, k, sigma, bid, ask, pos_orders=0.0, own=None, **qp_over):
    p = _params()
    qp = _qparams(**qp_over)
    st = glft_ref.new_state(p, qp)  # t = 0 < window - 1: this step does not refit
    st["a_per_s"], st["k_per_tick"], st["sigma_ticks"] = a, k, sigma
    out = new_quote()
    own = new_own_orders() if own is None else own
    glft_ref.quote(st, p, qp, _view(bid, ask, pos_orders * QTY), own, out)
    return out[0]


def _paper(a, k, sigma, bid, ask, q, gamma=0.05, delta=1.0, adj1=1.0, adj2=0.05):
    """Bid and ask ticks from eq. (4.6)/(4.7) with the tutorial's adjustments, ξ = γ."""
    c1 = math.log(1 + gamma * delta / k) / (gamma * delta)
    c2 = math.sqrt(
        gamma / (2 * a * delta * k) * (1 + gamma * delta / k) ** (k / (gamma * delta) + 1)
    )
    half = (c1 + delta / 2 * c2 * sigma) * adj1
    r = (bid + ask) / 2 - c2 * sigma * adj2 * q
    return min(round(r - half), bid), max(round(r + half), ask)


@pytest.mark.parametrize("q", [0.0, 3.0, -7.0])
def test_quotes_are_the_rounded_glft_depths_around_the_skewed_reservation_price(q) -> None:
    a, k, sigma = 0.8, 0.3, 6.0
    o = _quote_with(a, k, sigma, 4000, 4001, pos_orders=q)
    bid_t, ask_t = _paper(a, k, sigma, 4000, 4001, q)
    assert bid_t < 4000 and ask_t > 4001  # the model's depth, not clamped by the touch
    assert o["bid_px"][0] == bid_t * TICK and o["ask_px"][0] == ask_t * TICK
    assert o["bid_qty"][0] == QTY and o["ask_qty"][0] == QTY


def test_quotes_never_go_inside_the_touch() -> None:
    # a huge arrival rate: the half-spread is below a tick, the skew pushes the bid up
    o = _quote_with(1e6, 5.0, 0.1, 4000, 4010, pos_orders=-15.0)
    assert o["bid_px"][0] == 4000 * TICK
    assert o["ask_px"][0] >= 4010 * TICK


def test_at_the_position_limit_no_new_bid_but_a_resting_one_at_the_price_stays() -> None:
    a, k, sigma = 0.8, 0.3, 6.0
    o = _quote_with(a, k, sigma, 4000, 4001, pos_orders=MAX_ORDERS)
    bid_t, ask_t = _paper(a, k, sigma, 4000, 4001, MAX_ORDERS)
    assert math.isnan(o["bid_px"][0])
    assert o["ask_px"][0] == ask_t * TICK
    own = new_own_orders()
    own["status"][SIDE_BID], own["px"][SIDE_BID], own["qty"][SIDE_BID] = ORD_LIVE, bid_t * TICK, QTY
    o = _quote_with(a, k, sigma, 4000, 4001, pos_orders=MAX_ORDERS, own=own)
    assert o["bid_px"][0] == bid_t * TICK  # the tutorial cancels only orders off the new price
    own["px"][SIDE_BID] = (bid_t - 1) * TICK
    o = _quote_with(a, k, sigma, 4000, 4001, pos_orders=MAX_ORDERS, own=own)
    assert math.isnan(o["bid_px"][0])
    o = _quote_with(a, k, sigma, 4000, 4001, pos_orders=MAX_ORDERS - 1)
    assert o["bid_px"][0] == _paper(a, k, sigma, 4000, 4001, MAX_ORDERS - 1)[0] * TICK


def test_no_quote_before_the_first_fit() -> None:
    o = _quote_with(np.nan, np.nan, np.nan, 4000, 4001)
    assert o["no_quote_reason"] == NOQUOTE_WARMUP
    assert math.isnan(o["bid_px"][0]) and math.isnan(o["ask_px"][0])


def test_a_degenerate_fit_sends_no_order_at_a_non_positive_price() -> None:
    o = _quote_with(0.2, 1e-16, 300.0, 4000, 4001)  # k ~ 0: depths of ~1e16 ticks
    assert math.isnan(o["bid_px"][0])
    assert math.isnan(o["ask_px"][0])  # beyond 2^53 ticks: no exchange takes it either


@pytest.mark.parametrize(
    ("over", "problem"),
    [
        ({"window_s": 4000.0}, "window_s=4000"),
        ({"refit_s": 0.01}, "refit_s=0.01"),
        ({"depth_bins": 600.0}, "depth_bins=600"),
        ({"step_ms": 0.0}, "step_ms=0"),
    ],
)
def test_out_of_range_parameters_are_one_clear_error(over, problem) -> None:
    with pytest.raises(UserError, match=problem):
        glft_ref.new_state(_params(), _qparams(**over))


# ---- in the engine ---------------------------------------------------------------------------
def test_backtest_requotes_by_cancel_then_new_in_one_wake_and_the_audit_balances() -> None:
    sample = TESTS_DATA / "binance_usdm_btcusdt_sample.gz"
    if not sample.exists():
        pytest.skip(f"shipped sample not present: {sample}")
    from mmbot.data import load_events

    events, _ = load_events(sample)
    prof = load_profile("S1")
    prof.base.concurrency_limit = 100  # a two-sided requote is four requests
    s = RunSettings(
        strategy="glft_ref", params={"window_s": 10.0}, profile=prof, order_qty=0.01,
        max_position_qty=0.2, maker_fee_rate=-0.00005, taker_fee_rate=0.0007, rate_limit_per_s=0,
    )  # fmt: skip
    r = run(events, s, symbol="BTCUSDT", tick_px=0.1, lot_qty=0.001)
    assert r.meta["loop"]["wakes"] == r.meta["loop"]["steps"]
    assert r.meta["loop"]["feed_wakes"] == 0  # wakes on the 100 ms interval only
    sent = r.actions[r.actions["kind"] == ACT_SENT]
    assert not (sent["op"] == OP_REPLACE).any()
    cancels = sent[sent["op"] == OP_CANCEL]
    assert len(cancels) > 10
    # each cancel is followed, in the same wake, by a new order on that side
    news = {(int(a["local_ts"]), int(a["side"])) for a in sent[sent["op"] == OP_NEW]}
    paired = sum((int(c["local_ts"]), int(c["side"])) in news for c in cancels)
    assert paired >= 0.9 * len(cancels)
    build_edge_report([r])  # asserts the edge identity and the venue's equity
