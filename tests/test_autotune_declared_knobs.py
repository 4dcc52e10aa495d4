"""The tuner moves only the knobs the soak's quoter reads (`Quoter.runtime_knobs`, the engine's
knobs, its tunable parameters): a knob nothing reads is never proposed, by the rules, the fallback
package or a probe.

The market replay is an objective written here in which the unread knobs would pay the most if
they were moved, so a tuner that ignored the declaration would move them (the control case shows
it does when every knob is tunable).
"""

from __future__ import annotations

import pytest

from mmbot.errors import UserError
from mmbot.knobs import CONSERVATIVE_START, ENGINE_KNOBS, KNOB_NAMES, tunable_quoter_knobs
from mmbot.soak.autotune import (
    counterfactual_tune,
    history_entry,
    replay_budget,
    tunable_knobs,
    tune,
)
from mmbot.strategy.contract import Quoter
from mmbot.strategy.registry import check_quoter, resolve

UNREAD = ("base_spread_bps_delta", "impact_cap_ratio", "max_delta_ratio")
START = {
    **{k: float(v) for k, v in CONSERVATIVE_START.items()},
    "param.as_mult": 1.0,
    "param.n_levels": 2.0,
}


def costly_report(net: float = -1.0) -> dict:
    """H1 (slippage: base_spread, tail_age, min_interval), H2 (adverse: impact_cap, max_delta) and
    H6 (spread probe) all fire."""
    return {
        "totals": {
            "net_bps": net,
            "slippage_bps": -1.5,
            "slippage_bps_p95": 4.5,
            "adverse_bps_p95": 6.0,
            "adverse_bps": -1.0,
            "order_age_p95_ms": 250.0,
            "block_reasons": {"min_interval": {"ratio": 0.1}, "concurrency": {"ratio": 0.05}},
            "neg_edge_drivers": ["slippage_bps"],
        }
    }


def unread_pays(knobs: dict[str, float], seg: int) -> float:
    """Moving any unread knob away from the start gains 1 bps per unit of its range; the read
    ones gain a little when as_mult rises."""
    gain = sum(abs(knobs[k] - START[k]) * 10.0 for k in UNREAD)
    return -1.0 + 0.1 * seg + gain + 0.2 * (knobs["param.as_mult"] - 1.0)


def test_each_quoter_declares_what_it_reads() -> None:
    assert tunable_knobs("glft") == frozenset(KNOB_NAMES)  # the seed's six
    adaptive = tunable_knobs("adaptive")
    assert adaptive == frozenset(ENGINE_KNOBS) | frozenset(tunable_quoter_knobs("adaptive"))
    assert not adaptive & set(UNREAD)
    # glft_ref requotes by cancel + new: the manager's tail_age refresh does not apply to it
    assert tunable_knobs("glft_ref") == {"min_interval_ms", "replace_rate_per_min"}
    assert tunable_knobs("touch") == frozenset(ENGINE_KNOBS) | {"impact_cap_ratio"}


def test_an_undeclared_quoter_is_tuned_on_all_six() -> None:
    q = resolve("glft")
    assert (
        check_quoter(
            Quoter(name="mine", quote=q.quote, on_market=q.on_market), "mine"
        ).runtime_knobs
        is None
    )


def test_a_runtime_knob_that_does_not_exist_is_a_user_error() -> None:
    q = resolve("glft")
    with pytest.raises(UserError, match="runtime_knobs.*unknown: spread_bps"):
        check_quoter(Quoter(name="bad", quote=q.quote, runtime_knobs=("spread_bps",)), "bad")


def test_rules_and_fallback_skip_the_knobs_the_quoter_does_not_read() -> None:
    tunable = tunable_knobs("adaptive")
    d = tune(costly_report(net=2.0), START, [], tunable=tunable)
    assert {"H1", "H2", "H6"} <= set(d.fired)
    assert not {c.field for c in d.changes} & set(UNREAD)
    assert {"min_interval_ms", "tail_age_ms"} <= {c.field for c in d.changes}  # H1's read fields
    skipped = {(s["rule"], s["field"]) for s in d.skipped if s["why"] == "not_read"}
    assert ("H1", "base_spread_bps_delta") in skipped
    assert ("H2", "*") in skipped and ("H6", "*") in skipped  # nothing they move is read
    # the fallback package (two negative iterations) moves only read knobs
    past = [{"iteration": 1, "net_bps": -1.0, "knobs": START, "changes": []}]
    fb = tune(costly_report(net=-1.0), START, past, tunable=tunable)
    assert fb.fallback
    assert {c.field for c in fb.changes} == {
        "min_interval_ms",
        "replace_rate_per_min",
        "tail_age_ms",
    }
    assert ("FALLBACK", "base_spread_bps_delta") in {(s["rule"], s["field"]) for s in fb.skipped}


@pytest.mark.parametrize("tunable", [tunable_knobs("adaptive"), None])
def test_an_undeclared_knob_is_never_proposed_even_when_it_would_pay(tunable) -> None:
    knobs, hist, proposed = dict(START), [], set()
    for it in range(1, 5):
        segs = list(range(it, 0, -1))
        d = counterfactual_tune(
            costly_report(),
            knobs,
            hist,
            unread_pays,
            segs,
            budget=replay_budget(knobs),
            tunable=tunable,
        )
        proposed |= {c["field"] for t in d.trials for c in t["changes"]}
        hist.append(history_entry(it, costly_report(), knobs, d))
        knobs = d.knobs
    if tunable is None:  # control: with every knob tunable the objective pulls them away
        assert proposed & set(UNREAD)
        assert any(knobs[k] != START[k] for k in UNREAD)
    else:
        assert not proposed & set(UNREAD), proposed
        assert all(knobs[k] == START[k] for k in UNREAD)
        assert "param.as_mult" in proposed
