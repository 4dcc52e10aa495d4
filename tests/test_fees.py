"""Fee schedules shipped as data: every market has a sourced base tier and a rebate tier; the base
tier is the default; a rebate only when named; the report shows net with and without rebates."""

from __future__ import annotations

import numpy as np
import pytest

from mmbot.config import load_profile, with_strategy_options
from mmbot.errors import UserError
from mmbot.fees import BASE_TIER, choose_fees, load_schedule, tier_names
from mmbot.instruments import MARKETS, spec_for
from mmbot.records import ACTION_DTYPE, FILL_DTYPE, MARK_DTYPE, RunResult
from mmbot.strategy.params import fee_choice


@pytest.mark.parametrize("market", sorted(MARKETS))
def test_every_market_ships_a_sourced_base_tier_and_a_maker_rebate_tier(market):
    sched = load_schedule(market)
    for name, t in sched["tiers"].items():
        assert t["source"] and t["date"], f"{market} {name}: source and date"
        assert -0.001 < t["maker_fee_rate"] < 0.002 and 0 <= t["taker_fee_rate"] < 0.002
    assert sched["tiers"][BASE_TIER]["maker_fee_rate"] > 0  # no venue's regular tier pays makers
    rebate = sched["tiers"][sched["rebate_tier"]]
    assert rebate["maker_fee_rate"] < 0


def test_default_is_the_base_tier_and_a_rebate_needs_a_named_tier():
    prof = load_profile("S1")
    spec = spec_for("binance-usdm", "BTCUSDT")
    base = fee_choice(prof, spec)
    assert base.tier == BASE_TIER and base.maker_fee_rate == 0.0002
    named = fee_choice(prof, spec, fee_tier="rebate")
    assert named.tier == "mm1" and named.maker_fee_rate < 0
    prof_mm = prof.model_copy(update={"fees": prof.fees.model_copy(update={"tier": "mm3"})})
    assert fee_choice(prof_mm, spec).maker_fee_rate == pytest.approx(-0.00003)
    assert "mm1" in tier_names("bybit-linear")


def test_a_command_line_tier_replaces_the_profiles_and_explicit_rates_still_win():
    prof = load_profile("S1")
    spec = spec_for("binance-usdm", "BTCUSDT")
    vip = with_strategy_options(prof, fee_tier="vip1")
    assert fee_choice(vip, spec).tier == "vip1"
    assert fee_choice(vip, spec).maker_fee_rate == pytest.approx(0.00016)
    explicit = with_strategy_options(prof, fee_tier="vip1", maker_fee_bps=-0.2)
    assert fee_choice(explicit, spec).maker_fee_rate == pytest.approx(-0.00002)


def test_unknown_tier_is_a_user_error_naming_the_tiers():
    with pytest.raises(UserError, match="vip9.*tiers: base"):
        choose_fees("binance-usdm", "vip9")


def test_a_market_without_a_schedule_uses_binance_usdm_and_says_so():
    f = choose_fees("unknown")
    assert f.market == "binance-usdm" and "has none" in f.source


def test_explicit_rates_are_a_custom_tier():
    f = choose_fees("bybit-spot", None, -0.0001, 0.0002)
    assert (f.tier, f.maker_fee_rate, f.taker_fee_rate) == ("custom", -0.0001, 0.0002)


def _round_trip(buy_px: float, sell_px: float, maker_rate: float, tier: str) -> RunResult:
    """Buy then sell 1 unit as maker with the mid at 100 throughout."""
    fills = np.zeros(2, FILL_DTYPE)
    t0 = 1_700_000_000_000_000_000
    for i, (side, px) in enumerate(((1, buy_px), (-1, sell_px))):
        f = fills[i]
        f["exch_ts"] = f["local_ts"] = t0 + (i + 1) * 1_000_000_000
        f["side"], f["maker"], f["px"], f["qty"] = side, 1, px, 1.0
        f["fee_rate"] = maker_rate
        f["fee"] = maker_rate * px
        f["mid_px"] = f["target_px"] = 100.0
        f["position_qty"] = 1.0 if side > 0 else 0.0
    marks = np.zeros(3, MARK_DTYPE)
    marks["exch_ts"] = t0 + np.arange(3) * 1_000_000_000
    marks["mid_px"] = 100.0
    meta = {
        "symbol": "TESTUSDT",
        "tick_px": 0.001,
        "final_mid_px": 100.0,
        "start_mid_px": 100.0,
        "fees": {"market": "binance-usdm", "tier": tier, "maker_fee_rate": maker_rate},
    }
    return RunResult(fills, np.zeros(0, ACTION_DTYPE), marks, meta)


def test_report_shows_net_before_rebates_beside_net_and_the_tier():
    from mmbot.audit.edge_report import build_edge_report

    # -0.35 bps of turnover lost on prices, +0.5 bps maker rebate -> net about +0.15
    res = _round_trip(100.007, 100.0, -0.00005, "mm_test")
    t = build_edge_report([res])["totals"]
    assert t["net_bps"] == pytest.approx(0.15, abs=1e-3)
    assert t["net_bps_before_rebates"] == pytest.approx(-0.35, abs=1e-3)
    assert t["rebate_bps"] == pytest.approx(0.5, abs=1e-9)
    assert t["net_bps"] - t["net_bps_before_rebates"] == pytest.approx(t["rebate_bps"], abs=1e-12)
    assert t["fee_tier"] == "mm_test"
    # a fee that is paid is no rebate: both nets agree
    paid = build_edge_report([_round_trip(100.007, 100.0, 0.0002, "base")])["totals"]
    assert paid["net_bps_before_rebates"] == paid["net_bps"] and paid["rebate_bps"] == 0.0
