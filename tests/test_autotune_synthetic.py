"""On the synthetic market, the soak's tuner moves the default quoter's own knobs when that pays.

A real soak (adaptive, the base tier's fees, the embedded market) from the bench's deliberately
bad start (half the adverse-selection floor, no inventory skew, one level). What pays is not
written here: the final overrides and the start are both run with fixed knobs over the market the
soak played, and the tuner must have moved at least one ``param.*`` knob to a setting that earns
more there. It fails when the tuner leaves the quoter's knobs alone, or moves them for nothing.
"""

from __future__ import annotations

import json

import pytest

from mmbot.knobs import CONSERVATIVE_START

HOURS = 1.5
ITERATIONS = 3
SEED = 11
BAD = {"param.as_mult": 0.5, "param.skew_coef": 0.0, "param.n_levels": 1.0}


def _net_over_market(knobs: dict[str, float]) -> float:
    """net_bps of ``knobs`` held fixed over the soak's market (every iteration's, continuous)."""
    from mmbot.audit import build_edge_report
    from mmbot.config import load_profile, with_strategy_options
    from mmbot.soak.market import SYNTH_START_NS, resolve_market
    from mmbot.soak.runner import run_iteration

    mkt = resolve_market("synthetic")
    prof = with_strategy_options(load_profile("S1"), strategy="adaptive")
    results = run_iteration(mkt, prof, knobs, SEED, 1, SYNTH_START_NS, int(HOURS * 3.6e12))
    totals = build_edge_report(results, {})["totals"]
    assert totals["fills"], "no fills: net_bps says nothing"
    return float(totals["net_bps"])


@pytest.mark.slow
def test_soak_moves_the_quoters_knobs_to_a_setting_that_earns_more(tmp_path) -> None:
    from mmbot.soak.artifacts import SoakPaths
    from mmbot.soak.runner import SoakSettings, run_soak

    root = tmp_path / "artifacts"
    (root / "soak").mkdir(parents=True)
    start = {**{k: float(v) for k, v in CONSERVATIVE_START.items()}, **BAD}
    (root / "soak" / "runtime_overrides.json").write_text(json.dumps(start))
    out = run_soak(
        SoakSettings(
            hours=HOURS,
            iterations=ITERATIONS,
            auto_tune=True,
            paths=SoakPaths.under(root),
            seed=SEED,
            strategy_options={"strategy": "adaptive"},
        ),
    )
    final = dict(out.final_overrides)
    moved = {k for k in final if k.startswith("param.") and final[k] != out.history[0]["knobs"][k]}
    assert moved, f"the tuner moved none of the quoter's knobs: {final}"
    assert _net_over_market(final) > _net_over_market(out.history[0]["knobs"])
