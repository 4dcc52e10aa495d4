"""Counterfactual evidence when fills are few: a paired difference counts only where both knob sets
made ``MIN_PAIR_FILLS`` fills, a latest segment without fills does not stop the tuner, and knobs
that fill on no kept segment lead to a fill search. The decision says why (EVIDENCE marker).

The market replay is an objective written here with a fill count per (knobs, segment), as the
soak's Replayer reports it.
"""

from __future__ import annotations

from mmbot.knobs import CONSERVATIVE_START
from mmbot.soak.autotune import counterfactual_tune, history_entry, replay_budget
from mmbot.soak.autotune_counterfactual import MIN_PAIR_FILLS

START = {
    **{k: float(v) for k, v in CONSERVATIVE_START.items()},
    "param.as_mult": 1.0,
    "param.n_levels": 1.0,
}
SEG_OFFSET = {1: -0.7, 2: 0.4, 3: -1.9, 4: 0.0}


def healthy() -> dict:
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


class Market:
    """score = offset(seg) + gain(knobs); fills per (knobs, seg) from ``fills_of``."""

    def __init__(self, gain, fills_of) -> None:
        self.gain, self.fills_of = gain, fills_of

    def __call__(self, knobs: dict[str, float], seg: int) -> float | None:
        if self.fills_of(knobs, seg) == 0:
            return None
        return SEG_OFFSET[seg] + self.gain(knobs)

    def fills(self, knobs: dict[str, float], seg: int) -> int:
        return self.fills_of(knobs, seg)


def levels_up_pays(knobs: dict[str, float]) -> float:
    return 0.5 * (knobs["param.n_levels"] - 1.0)


def decide(market: Market, segs: list[int]):
    return counterfactual_tune(healthy(), START, [], market, segs, budget=replay_budget(START))


def test_no_fill_on_the_latest_segment_is_judged_on_the_others() -> None:
    m = Market(levels_up_pays, lambda k, s: 0 if s == 3 else 50)
    d = decide(m, [3, 2, 1])
    assert d.validated
    assert any("| autotune | EVIDENCE |" in x and "segment 3" in x for x in d.markers)
    assert d.knobs["param.n_levels"] > START["param.n_levels"]
    adopted = [t for t in d.trials if t["adopted"]]
    assert adopted and all(3 not in t["segments"] for t in adopted)


def test_a_difference_on_too_few_fills_is_not_evidence() -> None:
    # n_levels up 'wins' by 5 bps, but only where it made fewer than MIN_PAIR_FILLS fills; the
    # same market with enough fills adopts it (so the test can fail both ways)
    thin = MIN_PAIR_FILLS - 1

    def fills(knobs: dict[str, float], seg: int) -> int:
        return thin if knobs["param.n_levels"] > 1.0 else 50

    def big(knobs: dict[str, float]) -> float:
        return 5.0 * (knobs["param.n_levels"] - 1.0)

    d = decide(Market(big, fills), [2, 1])
    assert d.knobs["param.n_levels"] == START["param.n_levels"]
    up = [t for t in d.trials if "param.n_levels:+" in t["candidate"]]
    assert up and up[0]["evidence_segments"] == 0 and set(up[0]["fills"]) == {thin}
    d = decide(Market(big, lambda k, s: 50), [2, 1])
    assert d.knobs["param.n_levels"] > START["param.n_levels"]


def test_knobs_that_never_fill_search_for_knobs_that_do() -> None:
    # the start never fills; more levels fill (and score best), a wider floor fills less
    def fills(knobs: dict[str, float], seg: int) -> int:
        return 40 if knobs["param.n_levels"] > 1.0 else 0

    knobs, hist = dict(START), []
    d = counterfactual_tune(healthy(), knobs, hist, Market(levels_up_pays, fills), [2, 1])
    assert any("EVIDENCE" in x and "probing for knobs that fill" in x for x in d.markers)
    assert d.knobs["param.n_levels"] > START["param.n_levels"]
    hist.append(history_entry(1, healthy(), knobs, d))
    assert hist[0]["changes"] and hist[0]["trials"]
    # from the knobs that fill, the next decision pairs again (no fill search)
    d2 = counterfactual_tune(healthy(), d.knobs, hist, Market(levels_up_pays, fills), [3, 2, 1])
    assert not any("probing for knobs that fill" in x for x in d2.markers)


def test_nothing_that_fills_means_no_change() -> None:
    d = decide(Market(levels_up_pays, lambda k, s: 0), [2, 1])
    assert d.knobs == START and not d.changes
    assert any("EVIDENCE" in x for x in d.markers)
