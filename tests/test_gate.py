"""KPI gate: each threshold side, tiers -> verdict, missing/non-finite metrics fail by name, CLI exit codes."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

from mmbot.audit import build_edge_report, dump_json
from mmbot.errors import UserError
from mmbot.gate import evaluate, load_thresholds
from test_audit_helpers import run

REPO = Path(__file__).resolve().parents[1]
MMBOT = REPO / ".venv" / "bin" / "mmbot"

TH = {
    "hard": {
        "net_bps": {"op": "ge", "threshold": 2.5},
        "cancel_ratio": {"op": "le", "threshold": 0.65},
    },
    "soft": {"slippage_bps_p95": {"op": "le", "threshold": 3.5}},
    "ideal": {"net_bps": {"op": "ge", "threshold": 3.0}},
}


def report(**totals):
    base = {"net_bps": 3.2, "cancel_ratio": 0.5, "slippage_bps_p95": 1.0}
    base.update(totals)
    return {"totals": {k: v for k, v in base.items() if v is not _MISSING}}


_MISSING = object()


def check(gate, tier, metric):
    (c,) = [c for c in gate["checks"] if c["tier"] == tier and c["metric"] == metric]
    return c


def test_all_pass_is_pass_and_ideal_met():
    g = evaluate(report(), TH)
    assert g["verdict"] == "PASS" and g["ideal_met"]
    c = check(g, "hard", "net_bps")
    assert (c["value"], c["threshold"], c["op"], c["result"]) == (3.2, 2.5, "ge", "pass")


@pytest.mark.parametrize(
    ("value", "result"), [(2.5, "pass"), (2.5000001, "pass"), (2.4999999, "fail")]
)
def test_ge_threshold_is_inclusive(value, result):
    assert check(evaluate(report(net_bps=value), TH), "hard", "net_bps")["result"] == result


@pytest.mark.parametrize(("value", "result"), [(0.65, "pass"), (0.6499, "pass"), (0.6501, "fail")])
def test_le_threshold_is_inclusive(value, result):
    assert (
        check(evaluate(report(cancel_ratio=value), TH), "hard", "cancel_ratio")["result"] == result
    )


def test_soft_fail_only_is_warn_and_hard_fail_is_fail():
    g = evaluate(report(slippage_bps_p95=3.6), TH)
    assert g["verdict"] == "WARN" and g["failed_soft"] == ["slippage_bps_p95"]
    g = evaluate(report(cancel_ratio=0.9, slippage_bps_p95=3.6), TH)
    assert g["verdict"] == "FAIL" and g["failed_hard"] == ["cancel_ratio"]


def test_ideal_miss_does_not_change_the_verdict():
    g = evaluate(report(net_bps=2.9), TH)
    assert g["verdict"] == "PASS" and g["failed_ideal"] == ["net_bps"] and not g["ideal_met"]


@pytest.mark.parametrize("bad", [_MISSING, None, math.nan, math.inf, "3.0", True])
def test_missing_or_non_finite_metric_fails_by_name(bad):
    g = evaluate(report(net_bps=bad), TH)
    assert g["verdict"] == "FAIL"
    assert "net_bps" in g["failed_hard"]
    c = check(g, "hard", "net_bps")
    assert c["result"] == "fail" and c["value"] is None and "net_bps" in c["reason"]


def test_shipped_thresholds_match_design():
    th = load_thresholds()["market_profiles"]["wide_tick"]
    assert th["hard"]["net_bps"] == {"op": "ge", "threshold": 2.5}
    assert th["hard"]["adverse_bps_p95"] == {"op": "le", "threshold": 5.0}
    assert th["hard"]["cancel_ratio"] == {"op": "le", "threshold": 0.65}
    assert th["hard"]["maker_share_pct"] == {"op": "ge", "threshold": 80.0}
    assert th["hard"]["fills"] == {"op": "ge", "threshold": 1.0}
    assert th["soft"]["order_age_p95_ms"] == {"op": "le", "threshold": 340.0}
    assert th["ideal"]["ws_lag_p95_ms"] == {"op": "le", "threshold": 120.0}


def test_shipped_major_profile_keeps_the_seed_thresholds_but_net():
    cfg = load_thresholds()
    wide, major = cfg["market_profiles"]["wide_tick"], cfg["market_profiles"]["major"]
    assert cfg["default_profile"] == "wide_tick"
    assert major["hard"]["net_bps"] == {"op": "ge", "threshold": 0.0}
    for tier in ("hard", "soft", "ideal"):
        assert set(major[tier]) == set(wide[tier])
        for metric in set(wide[tier]) - {"net_bps"}:
            assert major[tier][metric] == wide[tier][metric], (tier, metric)


PROFILED = {
    "default_profile": "wide",
    "market_profiles": {
        "wide": {"min_tick_bps": 0.5, "hard": {"net_bps": {"op": "ge", "threshold": 2.5}}},
        "major": {"min_tick_bps": 0.0, "hard": {"net_bps": {"op": "ge", "threshold": 0.0}}},
    },
}


@pytest.mark.parametrize(
    ("tick_bps", "profile", "verdict"),
    [
        (0.016, "major", "PASS"),
        (0.4999, "major", "PASS"),
        (0.5, "wide", "FAIL"),
        (1.0, "wide", "FAIL"),
    ],
)
def test_profile_is_chosen_by_the_reports_tick(tick_bps, profile, verdict):
    g = evaluate(report(net_bps=0.3, tick_bps=tick_bps), PROFILED)
    assert g["market_profile"]["name"] == profile and g["verdict"] == verdict


def test_report_without_tick_is_gated_by_the_default_profile_and_says_so():
    g = evaluate(report(net_bps=0.3), PROFILED)
    assert g["market_profile"]["name"] == "wide" and g["verdict"] == "FAIL"
    assert "no tick_bps" in g["market_profile"]["why"]


def test_edge_report_states_the_tick_in_bps_of_the_price_traded():
    # two fills at 100 and 300 with tick 0.01: turnover-weighted tick over the one run's mean
    # fill price (100*1 + 300*1) / 2 = 200 -> 0.01 / 200 * 1e4 = 0.5 bps
    fills = [
        dict(t_s=0, side=1, maker=1, px=100.0, qty=1.0, fee=0.0, mid=100.0, target=100.0, pos=1.0),
        dict(t_s=1, side=-1, maker=1, px=300.0, qty=1.0, fee=0.0, mid=300.0, target=300.0, pos=0.0),
    ]
    rep = build_edge_report([run(fills, [(0, 100.0, 1.0), (2, 300.0, 0.0)], tick_px=0.01)], {})
    assert rep["totals"]["tick_bps"] == pytest.approx(0.01 / 200.0 * 1e4)


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"market_profiles": {}}, "non-empty"),
        (
            {"default_profile": "x", "market_profiles": {"a": {"min_tick_bps": 0.0}}},
            "default_profile",
        ),
        (
            {"default_profile": "a", "market_profiles": {"a": {"min_tick_bps": 0.5}}},
            "min_tick_bps 0",
        ),
        ({"default_profile": "a", "market_profiles": {"a": {"min_tick_bps": -1}}}, "finite number"),
        ({"default_profile": "a", "market_profiles": {"a": {"min_tick_bps": 0, "hrd": {}}}}, "hrd"),
        ({"default_profile": "a", "market_profiles": {"a": {"min_tick_bps": 0}}, "x": 1}, "x"),
    ],
)
def test_bad_profiled_threshold_file_is_a_user_error(tmp_path, doc, match):
    p = tmp_path / "g.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(UserError, match=match):
        load_thresholds(p)


def test_zero_fill_report_fails_on_fills_by_name():
    rep = build_edge_report([run([], [(0, 100.0, 0), (1, 100.0, 0)])], {})
    g = evaluate(rep)
    assert g["verdict"] == "FAIL"
    for name in ("fills", "adverse_bps_p95", "maker_share_pct"):
        assert name in g["failed_hard"]


def test_bad_threshold_file_is_a_user_error(tmp_path):
    p = tmp_path / "g.json"
    p.write_text(json.dumps({"hard": {"net_bps": {"op": "gt", "threshold": 1}}}))
    with pytest.raises(UserError, match="net_bps.op"):
        load_thresholds(p)


# --- CLI ------------------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(MMBOT), "gate", *args], capture_output=True, text=True, timeout=120)


def _write_report(tmp_path, totals: dict) -> Path:
    return dump_json({"totals": totals}, tmp_path / "EDGE_REPORT.json")


GOOD = {
    "fills": 100, "net_bps": 3.5, "adverse_bps_p95": 2.0, "cancel_ratio": 0.3, "maker_share_pct": 95.0,
    "slippage_bps_p95": 1.0, "order_age_p95_ms": 200.0, "ws_lag_p95_ms": 50.0,
}  # fmt: skip


def test_cli_exit_codes_pass_warn_fail(tmp_path):
    out = tmp_path / "KPI_GATE.json"
    cp = _cli("--report", str(_write_report(tmp_path, GOOD)), "--out", str(out))
    assert cp.returncode == 0, cp.stderr
    assert json.loads(out.read_text())["verdict"] == "PASS"

    cp = _cli(
        "--report",
        str(_write_report(tmp_path, {**GOOD, "ws_lag_p95_ms": 131.0})),
        "--out",
        str(out),
    )
    assert cp.returncode == 0, cp.stderr
    assert json.loads(out.read_text())["verdict"] == "WARN"

    cp = _cli("--report", str(_write_report(tmp_path, {**GOOD, "net_bps": 2.0})), "--out", str(out))
    assert cp.returncode == 1
    assert json.loads(out.read_text())["verdict"] == "FAIL"
    assert "net_bps" in cp.stdout


def test_cli_missing_metric_fails_by_name(tmp_path):
    totals = {k: v for k, v in GOOD.items() if k != "adverse_bps_p95"}
    out = tmp_path / "KPI_GATE.json"
    cp = _cli("--report", str(_write_report(tmp_path, totals)), "--out", str(out))
    assert cp.returncode == 1
    assert "adverse_bps_p95" in cp.stdout
    assert json.loads(out.read_text())["failed_hard"] == ["adverse_bps_p95"]


def test_cli_unreadable_input_exits_2_with_one_line(tmp_path):
    out = tmp_path / "KPI_GATE.json"
    cp = _cli("--report", str(tmp_path / "missing.json"), "--out", str(out))
    assert cp.returncode == 2 and cp.stderr.startswith("error:") and "Traceback" not in cp.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    cp = _cli("--report", str(bad), "--out", str(out))
    assert cp.returncode == 2 and "bad.json" in cp.stderr
    bad.write_text('{"no_totals": 1}')
    cp = _cli("--report", str(bad), "--out", str(out))
    assert cp.returncode == 2 and "totals" in cp.stderr
    assert not out.exists()


# --- symbols gated under their own profile; no gate without a hard check (issue 18) ---------------
GOOD_SOFT = {"net_bps": {"op": "ge", "threshold": 1}}
MAJOR_OK = {
    **GOOD,
    "net_bps": 0.5,
    "tick_bps": 0.017,
}  # passes 'major' (net >= 0), fails 'wide_tick'
WIDE_LOW = {**GOOD, "net_bps": 0.5, "tick_bps": 0.51}  # the same metrics on a wide tick


def test_each_symbol_is_gated_under_its_own_profile_and_pooling_cannot_relax_it():
    alone = evaluate({"totals": WIDE_LOW})
    assert alone["verdict"] == "FAIL" and alone["market_profile"]["name"] == "wide_tick"
    # pooled with BTC the turnover-weighted tick is a major's: the old gate passed this report
    pooled_totals = {**GOOD, "net_bps": 0.5, "tick_bps": 0.03}
    assert evaluate({"totals": pooled_totals})["verdict"] != "FAIL"
    g = evaluate({"totals": pooled_totals, "symbols": {"XRPUSDT": WIDE_LOW, "BTCUSDT": MAJOR_OK}})
    assert g["symbols"]["XRPUSDT"]["verdict"] == alone["verdict"] == "FAIL"
    assert g["symbols"]["XRPUSDT"]["checks"] == alone["checks"]
    assert g["symbols"]["BTCUSDT"]["market_profile"]["name"] == "major"
    assert g["market_profile"]["name"] == "wide_tick"  # the portfolio: the strictest profile
    assert g["verdict"] == "FAIL" and "XRPUSDT:net_bps" in g["failed_hard"]


def test_portfolio_verdict_is_the_worst_of_symbols_and_pool():
    g = evaluate(
        {
            "totals": {**GOOD, "tick_bps": 0.03},
            "symbols": {"A": {**GOOD, "tick_bps": 0.6}, "B": {**MAJOR_OK, "ws_lag_p95_ms": 200.0}},
        }
    )
    assert g["symbols"]["A"]["verdict"] == "PASS" and g["symbols"]["B"]["verdict"] == "WARN"
    assert g["portfolio_verdict"] == "PASS" and g["verdict"] == "WARN"


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"soft": {"net_bps": {"op": "ge", "threshold": 1}}},
        {
            "default_profile": "a",
            "market_profiles": {"a": {"min_tick_bps": 0, "soft": GOOD_SOFT}},
        },
    ],
)
def test_thresholds_without_a_hard_check_are_refused_exit_2(tmp_path, doc):
    p = tmp_path / "g.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(UserError, match="no hard check"):
        load_thresholds(p)
    cp = _cli(
        "--report",
        str(_write_report(tmp_path, GOOD)),
        "--out",
        str(tmp_path / "K.json"),
        "--thresholds",
        str(p),
    )
    assert cp.returncode == 2 and "no hard check" in cp.stderr
