"""The quoting model and each knob's path into the quotes (DESIGN.md "Strategy and runtime knobs").

Expectations are computed on paper in each test (GLFT closed form written out independently here),
never copied from the code's output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmbot.config import load_profile
from mmbot.knobs import CONSERVATIVE_START
from mmbot.strategy import glft
from mmbot.strategy.params import make_params
from mmbot.strategy.views import ORD_LIVE, SIDE_BID, new_book_view, new_order_view

NOW = 1_700_000_000_000_000_000
TICK = 1e-6  # tiny tick: rounding moves a quote by at most 1e-6 on a price of 100


def _params(**over):
    prof = load_profile("S1")
    knob_values = dict(CONSERVATIVE_START)
    for k in list(over):
        if k in knob_values:
            knob_values[k] = over.pop(k)
    p = make_params(
        knob_values,
        prof,
        tick_px=over.pop("tick_px", TICK),
        lot_qty=0.1,
        ref_px=100.0,
        order_qty=over.pop("order_qty", 5.0),
        maker_fee_rate=over.pop("maker_fee_rate", 0.0),
        strategy=over.pop("strategy", "glft"),
    )
    for k, v in over.items():
        p[k] = v
    return p


def _book(bid=99.9, ask=100.1, bq=1.0, aq=1.0, near_b=10.0, near_a=10.0, pos=0.0):
    b = new_book_view()
    b["best_bid_px"], b["best_ask_px"] = bid, ask
    b["best_bid_qty"], b["best_ask_qty"] = bq, aq
    b["bid_near_qty"], b["ask_near_qty"] = near_b, near_a
    b["position_qty"] = pos
    return b


def _model_half_px(p) -> tuple[float, float]:
    """GLFT (Guéant 2017 eq. with Δ=1, ξ=γ) at the priors, written out independently: (half, c2σ)."""
    g = float(p["gamma"][0])
    a = float(p["prior_a_per_s"][0])
    k = float(p["prior_k_per_tick"][0])
    s = float(p["prior_vol_ticks_per_sqrt_s"][0])
    c1 = (1.0 / g) * math.log(1.0 + g / k)
    c2 = math.sqrt(g / (2.0 * a * k) * (1.0 + g / k) ** (k / g + 1.0))
    tick = float(p["tick_px"][0])
    return (c1 + 0.5 * s * c2) * tick, s * c2 * tick


def _step(p, b, o=None, now=NOW, state=None):
    st = glft.new_state(p) if state is None else state
    o = new_order_view() if o is None else o
    return glft.step(st, b, o, p, now), st


def test_glft_coefficients_match_closed_form() -> None:
    for g, a, k in [(0.1, 1.0, 1.0), (0.01, 5.0, 0.3), (1.0, 0.2, 4.0)]:
        c1, c2 = glft.glft_coefficients(g, a, k)
        assert c1 == pytest.approx(math.log(1 + g / k) / g, rel=1e-12)
        assert c2 == pytest.approx(
            math.sqrt(g / (2 * a * k) * (1 + g / k) ** (k / g + 1)), rel=1e-9
        )


def test_symmetric_book_quotes_symmetric_around_mid_at_model_half_spread_plus_delta() -> None:
    p = _params(base_spread_bps_delta=0.2)
    (bid, bq, ask, aq), st = _step(p, _book())
    half_model, _ = _model_half_px(p)
    h0 = half_model + 0.2e-4 * 100.0
    assert st["half_spread_px"][0] == pytest.approx(h0, rel=1e-9)
    assert bid == pytest.approx(100.0 - h0, abs=TICK)
    assert ask == pytest.approx(100.0 + h0, abs=TICK)
    assert abs(bid - (100.0 - h0)) <= TICK / 2 + 1e-12  # nearest level
    assert abs(ask - (100.0 + h0)) <= TICK / 2 + 1e-12
    cap = float(p["impact_cap_ratio"][0])
    assert bq == aq == pytest.approx(math.floor(min(5.0, cap * 10.0) / 0.1 + 1e-9) * 0.1)


@pytest.mark.parametrize("delta_bps", [0.1, 0.35, 0.6])
def test_base_spread_bps_delta_widens_both_quotes_by_exactly_that_many_bps(
    delta_bps: float,
) -> None:
    (b0, _, a0, _), s0 = _step(_params(base_spread_bps_delta=0.0), _book())
    (b1, _, a1, _), s1 = _step(_params(base_spread_bps_delta=delta_bps), _book())
    expected_px = delta_bps * 1e-4 * 100.0  # fair = 100 (symmetric book)
    assert s0["bid_raw_px"][0] - s1["bid_raw_px"][0] == pytest.approx(expected_px, abs=1e-12)
    assert s1["ask_raw_px"][0] - s0["ask_raw_px"][0] == pytest.approx(expected_px, abs=1e-12)
    assert b0 - b1 == pytest.approx(expected_px, abs=TICK * 1.01)
    assert a1 - a0 == pytest.approx(expected_px, abs=TICK * 1.01)


@pytest.mark.parametrize("ratio", [0.04, 0.09, 0.12])
def test_impact_cap_ratio_caps_order_size_at_fraction_of_visible_size(ratio: float) -> None:
    p = _params(impact_cap_ratio=ratio, order_qty=5.0)
    (_, bq, _, aq), _ = _step(p, _book(near_b=30.0, near_a=60.0))
    assert bq == pytest.approx(math.floor(min(5.0, ratio * 30.0) / 0.1 + 1e-9) * 0.1)
    assert aq == pytest.approx(math.floor(min(5.0, ratio * 60.0) / 0.1 + 1e-9) * 0.1)
    # our own resting size does not count as visible liquidity
    o = new_order_view()
    o["status"][SIDE_BID] = ORD_LIVE
    o["qty"][SIDE_BID] = 10.0
    o["px"][SIDE_BID] = 99.9
    (_, bq2, _, _), _ = _step(p, _book(near_b=30.0, near_a=60.0), o)
    assert bq2 == pytest.approx(math.floor(min(5.0, ratio * 20.0) / 0.1 + 1e-9) * 0.1)
    # a large visible book: the profile's order size binds
    (_, bq3, _, _), _ = _step(p, _book(near_b=1e6, near_a=1e6))
    assert bq3 == pytest.approx(5.0)


@pytest.mark.parametrize("max_delta", [0.10, 0.15, 0.20])
def test_max_delta_ratio_limits_signal_tightening_to_fraction_of_base_half_spread(
    max_delta: float,
) -> None:
    # strong bid-side imbalance: the signal wants to lift the bid (tighten) and lift the ask (widen)
    p = _params(max_delta_ratio=max_delta, base_spread_bps_delta=0.6, obi_coef=1.0)
    book = _book(near_b=1000.0, near_a=1.0)
    (_, _, _, _), st = _step(p, book)
    half_model, _ = _model_half_px(p)
    h0 = half_model + 0.6e-4 * 100.0
    imb = (1000.0 - 1.0) / 1001.0
    signal = 1.0 * imb * 0.1  # obi_coef × imbalance × touch half-spread (0.1)
    assert signal > max_delta * h0  # the cap must bind for this test to mean anything
    assert st["bid_raw_px"][0] == pytest.approx(100.0 - h0 + max_delta * h0, rel=1e-12)
    assert st["ask_raw_px"][0] == pytest.approx(100.0 + h0 + signal, rel=1e-12)  # widening uncapped


def test_small_signal_below_cap_passes_through_unchanged() -> None:
    p = _params(max_delta_ratio=0.2, base_spread_bps_delta=0.6, obi_coef=0.01)
    (_, _, _, _), st = _step(p, _book(near_b=30.0, near_a=10.0))
    h0 = _model_half_px(p)[0] + 0.6e-4 * 100.0
    signal = 0.01 * 0.5 * 0.1
    assert signal < 0.2 * h0
    assert st["bid_raw_px"][0] == pytest.approx(100.0 - h0 + signal, rel=1e-12)
    assert st["ask_raw_px"][0] == pytest.approx(100.0 + h0 + signal, rel=1e-12)


def test_maker_rebate_tightens_both_sides_capped_by_vip_tilt_cap() -> None:
    rebate_rate = 0.001  # 10 bps rebate: large enough that the caps bind
    p = _params(maker_fee_rate=-rebate_rate, base_spread_bps_delta=0.6, max_delta_ratio=0.2)
    vip = float(p["vip_tilt_cap"][0])
    assert 0 < vip < 0.2
    (_, _, _, _), st = _step(p, _book())
    h0 = _model_half_px(p)[0] + 0.6e-4 * 100.0
    assert st["bid_raw_px"][0] == pytest.approx(100.0 - h0 + vip * h0, rel=1e-12)
    assert st["ask_raw_px"][0] == pytest.approx(100.0 + h0 - vip * h0, rel=1e-12)
    # and max_delta_ratio binds when it is the smaller cap
    p2 = _params(maker_fee_rate=-rebate_rate, base_spread_bps_delta=0.6, max_delta_ratio=0.1)
    p2["vip_tilt_cap"] = 0.5
    (_, _, _, _), st2 = _step(p2, _book())
    assert st2["bid_raw_px"][0] == pytest.approx(100.0 - h0 + 0.1 * h0, rel=1e-12)


def test_inventory_skews_both_quotes_down_when_long_and_is_capped_by_inventory_tilt_cap() -> None:
    p = _params(base_spread_bps_delta=0.6, order_qty=1.0)
    h0 = _model_half_px(p)[0] + 0.6e-4 * 100.0
    _, skew_per_unit = _model_half_px(p)
    small_q = 0.1 * h0 / skew_per_unit  # skew below the cap
    (_, _, _, _), st = _step(p, _book(pos=small_q))
    assert st["skew_px"][0] == pytest.approx(skew_per_unit * small_q, rel=1e-9)
    assert st["bid_raw_px"][0] == pytest.approx(100.0 - skew_per_unit * small_q - h0, rel=1e-12)
    cap = float(p["inventory_tilt_cap"][0])
    big_q = 10.0 * cap * h0 / skew_per_unit  # uncapped skew would be 10× the cap
    (_, _, _, _), st_big = _step(p, _book(pos=big_q))
    assert st_big["skew_px"][0] == pytest.approx(cap * h0, rel=1e-12)
    (_, _, _, _), st_short = _step(p, _book(pos=-big_q))
    assert st_short["skew_px"][0] == pytest.approx(-cap * h0, rel=1e-12)


def test_slippage_cost_widens_by_penalty_coef_times_recent_cost() -> None:
    p = _params(base_spread_bps_delta=0.0)
    st = glft.new_state(p)
    # a buy filled 2 bps above its target: a cost of 2 bps
    glft.update_slippage(st, p, 1, 100.02, 100.0)
    assert st["slip_cost_bps"][0] == pytest.approx(2.0, rel=1e-9)
    (_, _, _, _), st = _step(p, _book(), state=st)
    coef = float(p["slippage_penalty_coef"][0])
    h0 = _model_half_px(p)[0] + coef * 2.0e-4 * 100.0
    assert st["half_spread_px"][0] == pytest.approx(h0, rel=1e-9)
    # price improvement (negative cost) never tightens
    st2 = glft.new_state(p)
    glft.update_slippage(st2, p, -1, 100.02, 100.0)  # a sell above target: improvement
    (_, _, _, _), st2 = _step(p, _book(), state=st2)
    assert st2["half_spread_px"][0] == pytest.approx(_model_half_px(p)[0], rel=1e-9)


@pytest.mark.parametrize("k_per_tick", [0.5, 1.0, 1.38, 3.0, 10.0])
def test_quotes_go_to_the_level_nearest_the_model_depth(k_per_tick: float) -> None:
    """A 1-tick book 99.9/100.0 (fair 99.95, no skew, no signal): the bid is the tick nearest
    fair - h0, so a half-spread under one tick joins the touch and a wider one sits behind it."""
    p = _params(tick_px=0.1, base_spread_bps_delta=0.0, order_qty=1.0)
    p["prior_k_per_tick"] = k_per_tick
    p["prior_a_per_s"] = 1000.0
    p["obi_coef"] = 0.0
    (bid, _, ask, _), st = _step(p, _book(bid=99.9, ask=100.0))
    h0, _ = _model_half_px(p)
    want_bid = round((99.95 - h0) / 0.1) * 0.1
    want_ask = round((99.95 + h0) / 0.1) * 0.1
    assert bid == pytest.approx(min(want_bid, 99.9), abs=1e-9)
    assert ask == pytest.approx(max(want_ask, 100.0), abs=1e-9)
    if h0 < 0.1:  # depth 0.5 tick (the touch) is nearer than 1.5 ticks
        assert bid == pytest.approx(99.9) and ask == pytest.approx(100.0)


def test_quotes_never_cross_the_touch() -> None:
    p = _params(tick_px=0.1, base_spread_bps_delta=0.0, order_qty=1.0)
    p["inventory_tilt_cap"] = 100.0
    # deep short position: the skew pushes both quotes up past the ask; post-only keeps bid < ask
    (bid, _, ask, _), st = _step(p, _book(bid=99.9, ask=100.1, pos=-1e3))
    assert bid <= 100.1 - 0.1 + 1e-9
    assert ask >= 99.9 + 0.1 - 1e-9
    for px in (bid, ask):
        assert abs(px / 0.1 - round(px / 0.1)) < 1e-6
    assert bid <= st["bid_raw_px"][0] + 0.05 + 1e-9
    assert ask >= st["ask_raw_px"][0] - 0.05 - 1e-9


def test_touch_strategy_joins_best_bid_and_ask() -> None:
    from mmbot.strategy import touch
    from mmbot.strategy.contract import new_market_view, new_own_orders, new_quote

    p = _params(strategy="touch", tick_px=0.1)
    view = new_market_view()
    book = _book(bid=99.5, ask=100.3)
    for f in book.dtype.names:
        view[0][f] = book[0][f]
    out = new_quote()
    touch.quote(np.zeros(1), p, np.zeros(1), view, new_own_orders(), out)
    assert (out[0]["bid_px"][0], out[0]["ask_px"][0]) == (99.5, 100.3)
    assert out[0]["bid_qty"][0] > 0 and out[0]["ask_qty"][0] > 0
    assert (out[0]["bid_target_px"], out[0]["ask_target_px"]) == (99.5, 100.3)


def test_no_quote_on_empty_or_crossed_book() -> None:
    p = _params()
    (bid, bq, ask, aq), _ = _step(p, _book(bid=100.2, ask=100.1))
    assert math.isnan(bid) and math.isnan(ask) and bq == 0 and aq == 0


def test_intensity_fit_recovers_a_and_k_of_simulated_trade_arrivals() -> None:
    # trades arrive at rate A; each reaches a depth ~ Exp(k) ticks beyond the mid, so
    # λ(δ) = A e^{-kδ}; the fit of decayed counts must recover A and k.
    rng = np.random.default_rng(7)
    a_true, k_true = 4.0, 0.6
    p = _params(tick_px=1.0, intensity_halflife_s=1e7)
    st = glft.new_state(p)
    st["last_mid_ticks"] = 1000.0
    t_s = 2000.0
    n = rng.poisson(a_true * t_s)
    times = np.sort(rng.uniform(0, t_s, n))
    depths = rng.exponential(1.0 / k_true, n)
    glft.on_trade(st, p, NOW, 1000.0, 1)  # starts the clock (depth 0 counts nowhere)
    for t, d in zip(times, depths, strict=True):
        glft.on_trade(st, p, NOW + int(t * 1e9), 1000.0 + d, 1)
    glft.fit_intensity(st, p, NOW + int(t_s * 1e9))
    assert st["k_per_tick"][0] == pytest.approx(k_true, rel=0.1)
    assert st["a_per_s"][0] == pytest.approx(a_true, rel=0.15)


def test_volatility_estimate_recovers_random_walk_variance_rate() -> None:
    # ±1 tick mid moves at Poisson rate r per second: variance rate r ticks²/s
    rng = np.random.default_rng(3)
    r = 9.0
    p = _params(tick_px=1.0, vol_halflife_s=1e6)
    st = glft.new_state(p)
    o = new_order_view()
    mid = 1000.0
    t = 0.0
    for _ in range(20000):
        t += rng.exponential(1.0 / r)
        mid += rng.choice((-1.0, 1.0))
        b = _book(bid=mid - 0.5, ask=mid + 0.5)
        glft.step(st, b, o, p, NOW + int(t * 1e9))
    assert st["sigma_ticks"][0] == pytest.approx(math.sqrt(r), rel=0.05)
