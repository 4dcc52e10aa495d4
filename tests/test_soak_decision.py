"""The post-soak decision matrix: bands from the gate's own thresholds, the seed's action per band,
made concrete (tuner proposal, package, next command)."""

from __future__ import annotations

import math

import pytest

from mmbot.gate import evaluate, load_thresholds
from mmbot.knobs import CONSERVATIVE_START, KNOB_NAMES, SCENARIO_DELTAS, fallback_package
from mmbot.soak import autotune, decision
from mmbot.soak.decision import BAND_FAIL, BAND_OK, BAND_SUCCESS, BAND_WARN

KNOBS = {k: float(v) for k, v in CONSERVATIVE_START.items()}


def totals(net_bps: float, tick_bps: float = 1.0, top: str = "slippage_bps", **kw) -> dict:
    """Totals that pass every gate check but net_bps (so the band alone decides)."""
    t = {
        "net_bps": net_bps,
        "tick_bps": tick_bps,
        "fills": 500,
        "adverse_bps_p95": 3.0,
        "cancel_ratio": 0.4,
        "maker_share_pct": 95.0,
        "slippage_bps_p95": 2.0,
        "slippage_bps": -0.5,
        "order_age_p95_ms": 300.0,
        "ws_lag_p95_ms": 100.0,
        "block_reasons": {"min_interval": {"count": 10, "ratio": 0.1}},
        "neg_edge_drivers": [top],
        "neg_edge_drivers_detail": [{"name": top, "kind": "component", "hurt_bps": 0.7}],
        "gross_bps": 1.0,
        "fees_eff_bps": 0.5,
        "inventory_bps": -0.2,
    }
    t.update(kw)
    return {"totals": t}


def decide(report: dict, history: list | None = None, mode: str = "auto_tune", **kw) -> dict:
    return decision.decide(
        report,
        evaluate(report),
        final_overrides=KNOBS,
        history=history or [],
        mode=mode,
        overrides_path="artifacts/soak/runtime_overrides.json",
        **kw,
    )


def _net_thresholds(profile: str) -> dict[str, float]:
    p = load_thresholds()["market_profiles"][profile]
    return {tier: p[tier]["net_bps"]["threshold"] for tier in ("hard", "soft", "ideal")}


def test_bands_are_the_seed_numbers_on_its_market_and_the_profiles_elsewhere() -> None:
    wide = decision.net_bands(evaluate(totals(1.0, tick_bps=1.0)))
    assert (wide["success_from_bps"], wide["ok_from_bps"], wide["warn_from_bps"]) == (3.0, 2.8, 2.5)
    assert wide["market_profile"] == "wide_tick"
    major = decision.net_bands(evaluate(totals(1.0, tick_bps=0.1)))
    th = _net_thresholds("major")
    assert major["market_profile"] == "major"
    assert (major["success_from_bps"], major["ok_from_bps"], major["warn_from_bps"]) == (
        th["ideal"],
        th["soft"],
        th["hard"],
    )
    assert "gate profile major" in decision.band_rule(major)


@pytest.mark.parametrize(
    ("net", "band"),
    [
        (3.0, BAND_SUCCESS),
        (3.4, BAND_SUCCESS),
        (2.99, BAND_OK),
        (2.8, BAND_OK),
        (2.79, BAND_WARN),
        (2.5, BAND_WARN),
        (2.49, BAND_FAIL),
        (-1.0, BAND_FAIL),
        (math.nan, BAND_FAIL),
        (None, BAND_FAIL),
    ],
)
def test_band_edges_follow_the_seed_matrix(net, band) -> None:
    bands = decision.net_bands(evaluate(totals(1.0)))
    assert decision.band_of(net, bands) == band


@pytest.mark.parametrize("tick_bps", [1.0, 0.1])
def test_band_never_disagrees_with_the_gate(tick_bps: float) -> None:
    for i in range(-20, 41):
        net = i / 10
        report = totals(net, tick_bps=tick_bps)
        gate = evaluate(report)
        band = decision.band_of(net, decision.net_bands(gate))
        assert (band == BAND_FAIL) == ("net_bps" in gate["failed_hard"]), net
        assert (band in (BAND_FAIL, BAND_WARN)) == ("net_bps" in gate["failed_soft"]), net
        assert (band == BAND_SUCCESS) == ("net_bps" not in gate["failed_ideal"]), net


def test_success_freezes_and_names_the_24h_command() -> None:
    m = decide(totals(3.2))
    assert m["band"] == BAND_SUCCESS
    assert m["next_command"] == "mmbot soak --freeze --hours 24"
    assert m["next_overrides"] is None
    assert any("freeze" in s for s in m["steps"])


def test_ok_band_makes_at_most_two_targeted_adjustments_from_the_tuner() -> None:
    # slippage p95 above the ideal gate: H1 fires with three fields; OK keeps the first two
    report = totals(2.9, slippage_bps_p95=4.0)
    m = decide(report)
    proposal = autotune.tune(report, KNOBS, []).changes
    assert m["band"] == BAND_OK
    assert len(proposal) >= 3
    assert [a["field"] for a in m["adjustments"]] == [c.field for c in proposal[:2]]
    expect = dict(KNOBS)
    for c in proposal[:2]:
        expect[c.field] = c.new
    assert m["next_overrides"] == pytest.approx(expect)
    assert m["next_command"] == decision.CMD_TUNE_3H


def test_warn_band_applies_the_package_of_the_dominant_driver() -> None:
    m = decide(totals(2.6, top="slippage_bps"))
    assert m["band"] == BAND_WARN and m["package"]["name"] == "A"
    new = m["next_overrides"]
    for k in KNOB_NAMES:
        assert new[k] == pytest.approx(KNOBS[k] + SCENARIO_DELTAS["A"].get(k, 0.0))
    assert decide(totals(2.6, top="adverse_bps"))["package"]["name"] == "B"


def test_fail_band_after_two_negative_iterations_is_the_fallback_package() -> None:
    hist = [
        {"iteration": 1, "net_bps": -0.4, "knobs": KNOBS, "changes": [], "trials": []},
        {"iteration": 2, "net_bps": -0.3, "knobs": KNOBS, "changes": [], "trials": []},
    ]
    m = decide(totals(-0.35), history=hist)
    assert m["band"] == BAND_FAIL and m["package"]["name"] == "D"
    assert m["fallback"]["negative_streak"] == 2 and not m["fallback"]["refuted"]
    assert m["next_overrides"] == pytest.approx({**KNOBS, **fallback_package(KNOBS)})
    assert any("components" in s for s in m["steps"]) and any(
        "block ratios" in s for s in m["steps"]
    )
    # one positive iteration breaks the streak: the dominant driver's package instead
    hist[1]["net_bps"] = 0.1
    assert decide(totals(-0.35), history=hist)["package"]["name"] == "A"


def test_fallback_refuted_by_the_soaks_own_replays_is_not_advised() -> None:
    lost = {"candidate": "FALLBACK", "gain_bps": -0.2, "segments": [2, 1], "adopted": False}
    hist = [
        {"iteration": 1, "net_bps": -0.4, "knobs": KNOBS, "changes": [], "trials": []},
        {"iteration": 2, "net_bps": -0.3, "knobs": KNOBS, "changes": [], "trials": [lost]},
    ]
    m = decide(totals(-0.35), history=hist)
    assert m["fallback"]["triggered"] and m["fallback"]["refuted"]
    assert m["fallback"]["replayed"] == [
        {"after_iteration": 2, "gain_bps": -0.2, "segments": 2, "adopted": False}
    ]
    assert m["package"]["name"] == "A"
    assert any(s.startswith("fallback mode not advised") for s in m["steps"])
    # adopted on replay: the seed's fallback stands
    hist[1]["trials"] = [{**lost, "gain_bps": 0.3, "adopted": True}]
    assert decide(totals(-0.35), history=hist)["package"]["name"] == "D"


def test_frozen_success_with_a_breaching_iteration_is_not_stable() -> None:
    ok = decide(totals(3.2), mode="freeze", stability={"iterations_breaching_hard": []})
    assert ok["next_command"] is None and any("stable" in s for s in ok["steps"])
    bad = decide(totals(3.2), mode="freeze", stability={"iterations_breaching_hard": [3]})
    assert bad["next_command"] == decision.CMD_TUNE_3H
    assert any("not stable" in s and "3" in s for s in bad["steps"])


def test_renderings_carry_the_band_rule_and_the_next_step() -> None:
    m = decide(totals(2.6))
    lines = decision.text_lines(m)
    assert lines[0].startswith("| decision | BAND | WARN | net_bps=2.600 |")
    assert "SUCCESS >= 3.0, OK 2.8..3.0, WARN 2.5..2.8, FAIL < 2.5" in lines[0]
    assert lines[-1] == f"| decision | NEXT | {decision.CMD_TUNE_3H} |"
    md = decision.markdown(m)
    assert "| **2.5 - 2.8** | **WARN** |" in md
    frag = decision.html_fragment(m)
    assert "<h2>Decision matrix</h2>" in frag and "<b>WARN</b>" in frag
