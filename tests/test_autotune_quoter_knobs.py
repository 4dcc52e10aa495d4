"""The auto-tuner tunes the quoter's knobs (``param.NAME``, limits in ``knobs.QUOTER_KNOB_LIMITS``)
beside the seed's six runtime knobs.

The pure tests replace the market replay by an objective written here (a known optimum in quoter
knobs plus a per-segment offset shared by every knob set), so what the tuner should adopt is known
on paper. The soak test runs a tiny real soak with the adaptive quoter and checks that its tuner
replays quoter-knob candidates within the limits and that the artifacts carry the quoter knobs.
"""

from __future__ import annotations

import json

import pytest

from conftest import glft_profile
from mmbot.config import (
    load_overrides,
    load_profile,
    with_override_params,
    with_strategy_options,
)
from mmbot.errors import UserError
from mmbot.knobs import (
    CONSERVATIVE_START,
    QUOTER_KNOB_LIMITS,
    knob_limits,
    quoter_knob_name,
    scenario_package,
    tunable_quoter_knobs,
)
from mmbot.soak.autotune import (
    REPLAY_BUDGET,
    counterfactual_tune,
    fmt_knob,
    history_entry,
    normalise_knobs,
    pooled_gain_sd,
    replay_budget,
)

SEG_OFFSET = {1: -0.7, 2: 0.4, 3: -1.9, 4: 0.0, 5: 1.1, 6: -0.3}
# a deliberately bad start in the quoter's knobs (the seed's conservative six beside them)
BAD = {
    "param.as_mult": 0.5,
    "param.skew_coef": 0.0,
    "param.n_levels": 1.0,
}
START = {**{k: float(v) for k, v in CONSERVATIVE_START.items()}, **BAD}


def healthy() -> dict:
    """A report on which no rule of the seed's table fires."""
    return {
        "totals": {
            "net_bps": 3.1,
            "slippage_bps": -0.4,
            "slippage_bps_p95": 1.5,
            "adverse_bps_p95": 2.0,
            "order_age_p95_ms": 250.0,
            "block_reasons": {"min_interval": {"ratio": 0.1}, "concurrency": {"ratio": 0.05}},
            "neg_edge_drivers": ["inventory_bps"],
        }
    }


class QuoterQuadratic:
    """score = offset(segment) - sum_k w_k ((x_k - opt_k) / range_k)^2 over quoter knobs."""

    def __init__(self, opt: dict[str, float], w: dict[str, float]) -> None:
        self.opt, self.w = opt, w
        self.seen: list[dict[str, float]] = []

    def value(self, knobs: dict[str, float]) -> float:
        out = 0.0
        for k, wk in self.w.items():
            lo, hi = knob_limits(k)  # type: ignore[misc]
            out -= wk * ((float(knobs[k]) - self.opt[k]) / (hi - lo)) ** 2
        return out

    def __call__(self, knobs: dict[str, float], seg: int) -> float:
        self.seen.append(dict(knobs))
        return SEG_OFFSET[seg] + self.value(knobs)


def run_decisions(f: QuoterQuadratic, n: int) -> tuple[dict, list[dict]]:
    knobs, hist = dict(START), []
    for it in range(1, n + 1):
        segs = list(range(it, 0, -1))
        d = counterfactual_tune(healthy(), knobs, hist, f, segs, budget=replay_budget(knobs))
        hist.append(history_entry(it, healthy(), knobs, d))
        knobs = d.knobs
    return knobs, hist


def test_tuner_moves_quoter_knobs_toward_the_optimum_within_limits() -> None:
    opt = {"param.as_mult": 1.5, "param.skew_coef": 2.0, "param.n_levels": 3.0}
    f = QuoterQuadratic(opt, {k: 1.0 for k in opt})
    final, hist = run_decisions(f, 5)
    # every candidate replayed stays within the quoter knobs' limits
    for knobs in f.seen:
        for k in BAD:
            lo, hi = QUOTER_KNOB_LIMITS[k.split(".", 1)[1]]
            assert lo <= knobs[k] <= hi
    assert f.value(final) > f.value(START) * 0.5  # at least half the loss removed
    moved = {c["field"] for e in hist for c in e["changes"]}
    assert moved & set(BAD), moved
    # the history shows the quoter knobs beside the six, and the markers name them
    assert all(set(BAD) <= set(e["knobs"]) for e in hist)
    markers = [m for e in hist for t in e["trials"] for m in [t["candidate"]]]
    assert any("param." in m for m in markers)


def test_runtime_knobs_only_when_the_quoter_has_none() -> None:
    f = QuoterQuadratic({}, {})
    six = {k: float(v) for k, v in CONSERVATIVE_START.items()}
    d = counterfactual_tune(healthy(), six, [], f, [1], budget=replay_budget(six))
    assert replay_budget(six) == REPLAY_BUDGET
    assert all(not k.startswith("param.") for knobs in f.seen for k in knobs)
    assert set(d.knobs) == set(six)


def test_quoter_knobs_snap_to_limits_and_grid() -> None:
    k = normalise_knobs({**START, "param.as_mult": 7.0, "param.n_levels": 2.6})
    assert k["param.as_mult"] == QUOTER_KNOB_LIMITS["as_mult"][1]
    assert k["param.n_levels"] == 3.0
    assert fmt_knob("param.n_levels", 3.0) == "3"
    assert fmt_knob("param.as_mult", 1.25) == "1.25"


def test_seed_packages_carry_quoter_knobs_unchanged() -> None:
    for name in "ABCD":
        out = scenario_package(name, dict(START))
        assert {k: out[k] for k in BAD} == BAD


def test_adaptive_has_tunable_knobs_and_glft_none() -> None:
    assert set(tunable_quoter_knobs("adaptive")) == {
        quoter_knob_name(p) for p in QUOTER_KNOB_LIMITS
    }
    assert tunable_quoter_knobs("glft") == {}


def test_overrides_file_with_quoter_params_is_accepted(tmp_path) -> None:
    f = tmp_path / "runtime_overrides.json"
    f.write_text(json.dumps({**CONSERVATIVE_START, "param.as_mult": 1.5, "param.n_levels": 9}))
    ovr, msgs = load_overrides(f, env={})
    assert ovr["param.as_mult"] == 1.5
    assert ovr["param.n_levels"] == QUOTER_KNOB_LIMITS["n_levels"][1]  # clamped, said once
    assert any("param.n_levels" in m for m in msgs)
    adaptive = with_strategy_options(load_profile("S1"), strategy="adaptive")
    out = with_override_params(adaptive, ovr, str(f), keep={"as_mult": 1.2})
    assert out.strategy.params["as_mult"] == 1.2  # --param wins over the file
    assert out.strategy.params["n_levels"] == QUOTER_KNOB_LIMITS["n_levels"][1]
    with pytest.raises(UserError, match="param.as_mult"):
        with_override_params(glft_profile(), ovr, str(f))  # glft has no as_mult: the file names it


def test_tiny_soak_tunes_the_adaptive_quoters_knobs_within_limits(tmp_path) -> None:
    from mmbot.commands.options import strategy_options
    from mmbot.soak.artifacts import SoakPaths
    from mmbot.soak.runner import SoakSettings, run_soak

    root = tmp_path / "artifacts"
    (root / "soak").mkdir(parents=True)
    start = {**CONSERVATIVE_START, "param.as_mult": 0.5, "param.n_levels": 1}
    (root / "soak" / "runtime_overrides.json").write_text(json.dumps(start))
    lines: list[str] = []
    out = run_soak(
        SoakSettings(
            hours=0.15,
            iterations=3,
            auto_tune=True,
            paths=SoakPaths.under(root),
            seed=7,
            # a short warm-up so a 3-min iteration fills (the default waits 30 s and 50 trades), and
            # a maker rebate: at the base tier's 2 bps maker fee the quoter rarely finds a depth worth it
            strategy_options=strategy_options("adaptive", ["warmup_s=5"], None, None, -0.5, 7.0),
        ),
        say=lines.append,
    )
    # iteration 1 ran the file's quoter knobs
    assert out.history[0]["knobs"]["param.as_mult"] == 0.5
    assert out.history[0]["knobs"]["param.n_levels"] == 1.0
    trials = [t for e in out.history for t in e["trials"]]
    quoter_trials = [
        t for t in trials if any(c["field"].startswith("param.") for c in t["changes"])
    ]
    assert quoter_trials, "the tuner replayed no quoter-knob candidate"
    for t in quoter_trials:  # (a merged candidate may change runtime knobs beside them)
        for c in t["changes"]:
            if c["field"].startswith("param."):
                lo, hi = QUOTER_KNOB_LIMITS[c["field"].split(".", 1)[1]]
                assert lo <= c["to"] <= hi
    assert any("cand=PROBE(param." in ln for ln in lines)
    # the quoter knobs are in the KNOBS marker, runtime_overrides.json and the metrics
    assert any(
        ln.startswith("| soak | KNOBS | iter=1 ") and "param.as_mult=0.50" in ln for ln in lines
    )
    written = json.loads((root / "soak" / "runtime_overrides.json").read_text())
    assert set(tunable_quoter_knobs("adaptive")) <= set(written)
    assert load_overrides(root / "soak" / "runtime_overrides.json", env={})[0] == pytest.approx(
        written
    )
    metrics = json.loads((root / "reports/soak_metrics.json").read_text())
    assert "param.as_mult" in metrics["per_iteration"][0]["knobs"]


def test_quoter_decisions_need_a_gain_above_their_own_noise() -> None:
    # param.as_mult up gains on average 0.2 bps, but the paired gains scatter by +-3 bps per
    # segment (a quoter that fills rarely): two segments are not evidence; a gain of 5 bps is
    scatter = {1: 3.0, 2: -3.0, 3: 2.5, 4: -2.5}

    def objective(gain: float):
        def f(knobs: dict[str, float], seg: int) -> float:
            up = knobs["param.as_mult"] > START["param.as_mult"]
            return SEG_OFFSET[seg] + ((gain + scatter[seg]) if up else 0.0)

        return f

    for gain, adopted in ((0.2, False), (5.0, True)):
        d = counterfactual_tune(healthy(), START, [], objective(gain), [2, 1], budget=200)
        moved = any(c.field == "param.as_mult" for c in d.changes)
        assert moved is adopted, (gain, d.trials)
    assert pooled_gain_sd([{1: 1.0, 2: 3.0}, {1: 0.0, 2: 0.0}, None]) == pytest.approx(2**0.5)
