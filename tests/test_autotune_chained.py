"""Chained evidence for quoter knobs: a knob set replayed over the kept segments in order, carrying
its own position, is the fixed-knob run over that market; the tuner adopts the best chain and
keep-best keeps the best set that ran."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pytest

from conftest import glft_profile
from mmbot.audit import build_edge_report
from mmbot.knobs import CONSERVATIVE_START, quoter_knob_name
from mmbot.soak import autotune
from mmbot.soak.account_carry import AccountCarry
from mmbot.soak.runner import (
    NS_PER_HOUR,
    SYNTH_START_NS,
    Replayer,
    Segment,
    resolve_market,
    run_iteration,
)

KNOBS = {k: float(v) for k, v in CONSERVATIVE_START.items()}


@pytest.fixture(scope="module")
def two_iterations() -> tuple:
    mkt = resolve_market("synthetic")
    prof = glft_profile()
    dur = int(0.02 * NS_PER_HOUR)
    segs: list[Segment] = []
    acct = AccountCarry(funded_to_ns=SYNTH_START_NS)
    results = []
    for it in (1, 2):
        results += run_iteration(
            mkt,
            prof,
            KNOBS,
            5,
            it,
            SYNTH_START_NS + (it - 1) * dur,
            dur,
            segment_out=segs,
            account=acct,
            close_end=False,
        )
    return mkt, prof, results, segs


def test_a_chain_with_the_real_knobs_is_the_real_run(two_iterations: tuple) -> None:
    """Chained with the knobs the soak ran, the second segment starts from the position the
    first one's replay ended with, which is the real run's: the chain's net is the real run's."""
    mkt, prof, results, segs = two_iterations
    assert [s.iteration for s in segs] == [1, 2]
    rp = Replayer(mkt, prof, keep=4)
    for s in segs:
        rp.segments[s.iteration] = s
    real = build_edge_report(results, {})["totals"]
    net, fills = rp.chain(KNOBS, [2, 1])
    assert fills == real["fills"] > 0
    assert net == pytest.approx(real["net_bps"], rel=1e-9, abs=1e-9)
    assert rp.chain_cost(KNOBS, [1, 2]) == 0  # both links cached
    # another knob set is another run, with its own position from the first segment on
    wide = dict(KNOBS, base_spread_bps_delta=0.6)
    assert rp.chain_cost(wide, [1, 2]) == 2
    other = rp.chain(wide, [1, 2])
    assert other != (net, fills)
    end1 = rp.links[(1, 1, autotune.knob_key(wide))][3]
    assert end1.position_qty == pytest.approx(
        float(rp._run(wide, 1, segs[0].account).meta["venue"]["position_qty"])
    )


class _Market:
    """A deterministic evaluator: a knob set's chained net is a smooth function of its as_mult
    (best at 3) over however many segments; fills fall as as_mult rises; every fill turns over
    ``NOTIONAL_PER_FILL`` of quote."""

    NOTIONAL_PER_FILL = 1000.0

    def __init__(self) -> None:
        self.calls = 0

    def net_fills(self, knobs: Mapping[str, float], segments: Sequence[int]) -> tuple[float, int]:
        a = knobs.get(quoter_knob_name("as_mult"), 1.0)
        return 5.0 - (a - 3.0) ** 2, int(200 / a) * len(segments)

    def chain(self, knobs: Mapping[str, float], segments: Sequence[int]) -> tuple[float, int]:
        self.calls += 1
        return self.net_fills(knobs, segments)

    def chain_totals(
        self, knobs: Mapping[str, float], segments: Sequence[int]
    ) -> tuple[float, float, int]:
        self.calls += 1
        net, fills = self.net_fills(knobs, segments)
        turnover = fills * self.NOTIONAL_PER_FILL
        return net * turnover / 1e4, turnover, fills

    def chain_cost(self, knobs: Mapping[str, float], segments: Sequence[int]) -> int:
        return len(segments)


class _FewFillsMarket(_Market):
    """as_mult 3 earns the most per fill (5 bps) on so few fills that it earns the least PnL."""

    def net_fills(self, knobs: Mapping[str, float], segments: Sequence[int]) -> tuple[float, int]:
        net, _ = super().net_fills(knobs, segments)
        a = knobs.get(quoter_knob_name("as_mult"), 1.0)
        return net, int(2000 / a**3) * len(segments)


def _start(as_mult: float) -> dict[str, float]:
    return {**KNOBS, quoter_knob_name("as_mult"): as_mult}


def test_the_tuner_adopts_the_probe_whose_chain_earns_more() -> None:
    ev = _Market()
    tunable = frozenset({quoter_knob_name("as_mult")})
    d = autotune.chained_tune({}, _start(0.5), [], ev, [1, 2], tunable=tunable, objective="net_bps")
    assert d.knobs[quoter_knob_name("as_mult")] == 3.0  # the probe to the limit
    adopted = [t for t in d.trials if t["adopted"]]
    assert len(adopted) == 1 and adopted[0]["gain_bps"] == pytest.approx(
        (5.0 - 0.0) - (5.0 - 2.5**2)
    )
    assert any("score=chained net_bps" in m and "adopted=1" in m for m in d.markers)
    # at the best setting no probe gains: nothing adopted
    d2 = autotune.chained_tune(
        {}, _start(3.0), [], ev, [1, 2], tunable=tunable, objective="net_bps"
    )
    assert d2.knobs[quoter_knob_name("as_mult")] == 3.0 and not d2.changes


class _PeakMarket(_Market):
    """as_mult has its optimum inside the range (1.1), far from both limits: from a start at the
    low limit (0.5) the far probe (the high limit, 3) loses, a step a quarter of the way up
    wins."""

    def net_fills(self, knobs: Mapping[str, float], segments: Sequence[int]) -> tuple[float, int]:
        a = knobs.get(quoter_knob_name("as_mult"), 1.0)
        return 1.0 - 4.0 * (a - 1.1) ** 2, 500 * len(segments)


def test_a_near_probe_finds_an_optimum_inside_the_range() -> None:
    name = quoter_knob_name("as_mult")
    tunable = frozenset({name})
    d = autotune.chained_tune({}, _start(0.5), [], _PeakMarket(), [1, 2], tunable=tunable)
    probed = sorted(t["knobs"][name] for t in d.trials)
    assert probed[-1] == 3.0 and 0.5 < probed[0] < 3.0  # the far probe and the near one
    far = next(t for t in d.trials if t["knobs"][name] == 3.0)
    assert far["gain_bps"] < 0 and not far["adopted"]
    assert 0.9 <= d.knobs[name] <= 1.3 and [c.new for c in d.changes] == [d.knobs[name]]
    (near,) = [t for t in d.trials if t["adopted"]]
    assert near["candidate"] == "PROBE(param.as_mult:+near)" and near["gain_bps"] > 0
    # the far probe's loss (not the near one's win) sets the probe state: measured on two
    # segments, it halves the distance of both
    assert d.probe_state["param.as_mult:+"]["fraction"] == 0.5
    # inside its range a quoter knob has one probe each way, no near one
    inside = autotune.chained_tune({}, _start(1.5), [], _PeakMarket(), [1], tunable=tunable)
    assert [t["candidate"] for t in inside.trials] == [
        "PROBE(param.as_mult:+)",
        "PROBE(param.as_mult:-)",
    ]
    # a runtime knob keeps its single probe (its effects are small and not monotone in the value)
    d2 = autotune.chained_tune(
        {}, _start(0.5), [], _PeakMarket(), [1], tunable=frozenset({"min_interval_ms"})
    )
    assert [t["candidate"] for t in d2.trials] == [
        "PROBE(min_interval_ms:+)",
        "PROBE(min_interval_ms:-)",
    ]


def test_too_few_fills_is_no_evidence() -> None:
    class Thin(_Market):
        def net_fills(self, knobs, segments):  # type: ignore[no-untyped-def]
            net, _ = super().net_fills(knobs, segments)
            return net, autotune.MIN_CHAIN_FILLS - 1

    tunable = frozenset({quoter_knob_name("as_mult")})
    d = autotune.chained_tune({}, _start(0.5), [], Thin(), [1], tunable=tunable)
    assert not d.changes and "fewer than" in d.evidence


def test_a_decision_walks_back_to_an_earlier_set_that_earns_more() -> None:
    """A change adopted on thin evidence (as_mult 2 -> 1: the chain says as_mult 2 earns 4 bps,
    1 earns 1) is walked back before probing: the decision starts from the best set that ran
    (keep-best's rule over the segments played), and the walk back does not count as a move for
    hysteresis (as_mult is still probed only the way the tuner last moved it)."""
    ev = _Market()
    name = quoter_knob_name("as_mult")
    tunable = frozenset({name})
    history = [
        {
            "iteration": 1,
            "knobs": _start(2.0),
            "changes": [{"field": name, "from": 2.0, "to": 1.0, "rule": "PROBE"}],
        }
    ]
    d = autotune.chained_tune(
        {}, _start(1.0), history, ev, [1, 2], tunable=tunable, objective="net_bps"
    )
    assert d.knobs[name] == 2.0
    assert [(c.field, c.old, c.new, c.rule) for c in d.changes] == [(name, 1.0, 2.0, "REVERT")]
    assert any("| autotune | REVERT | to the knobs of iter=1:" in m for m in d.markers)
    # probed from the set walked back to, onward (down) only: the chains' base is as_mult 2
    assert d.trials and all(t["chain_base_knobs"][name] == 2.0 for t in d.trials)
    assert all(t["knobs"][name] < 2.0 for t in d.trials)
    # the next decision: the walk back (rule REVERT) is not the latest move, 2 -> 1 still is
    walked = [
        *history,
        {"iteration": 2, "knobs": _start(1.0), "changes": [c.as_dict() for c in d.changes]},
    ]
    nxt = autotune.chained_tune(
        {}, _start(2.0), walked, ev, [1, 2, 3], tunable=tunable, objective="net_bps"
    )
    assert nxt.trials and all(t["knobs"][name] < 2.0 for t in nxt.trials)
    # no earlier set beats the current one: the decision starts from the current knobs
    up = [{"iteration": 1, "knobs": _start(1.0), "changes": [{**history[0]["changes"][0]}]}]
    up[0]["changes"][0].update({"from": 1.0, "to": 2.0})
    stay = autotune.chained_tune(
        {}, _start(2.0), up, ev, [1, 2], tunable=tunable, objective="net_bps"
    )
    assert stay.knobs[name] == 3.0 and [c.rule for c in stay.changes] == ["PROBE"]
    assert all(t["chain_base_knobs"][name] == 2.0 for t in stay.trials)


def test_keep_best_keeps_an_earlier_set_only_when_it_earns_more() -> None:
    ev = _Market()
    history = [
        {"iteration": 1, "knobs": _start(0.5)},
        {"iteration": 2, "knobs": _start(3.0)},
        {"iteration": 3, "knobs": _start(2.0)},
    ]
    it, knobs, table = autotune.select_best_chained(history, ev, [1, 2, 3], objective="net_bps")
    assert it == 2 and knobs[quoter_knob_name("as_mult")] == 3.0
    assert [r["kept"] for r in table] == [False, True, False]
    # a tie keeps the latest
    it, _, _ = autotune.select_best_chained(
        history[:2] + [{"iteration": 3, "knobs": _start(3.0)}], ev, [1], objective="net_bps"
    )
    assert it == 3
    assert all(math.isfinite(r["score_bps"]) for r in table)


def test_chains_prefetched_in_workers_are_the_chains_run_here(two_iterations: tuple) -> None:
    mkt, prof, _, segs = two_iterations
    knob_sets = [dict(KNOBS, base_spread_bps_delta=d) for d in (0.0, 0.3, 0.6)]
    here = Replayer(mkt, prof, keep=4)
    there = Replayer(mkt, prof, keep=4, workers=2)
    for rp in (here, there):
        for s in segs:
            rp.segments[s.iteration] = s
    there.prefetch_chains(knob_sets, [1, 2])
    there.close()
    assert there.replays == 6 and all(there.chain_cost(k, [1, 2]) == 0 for k in knob_sets)
    assert [there.chain(k, [1, 2]) for k in knob_sets] == [here.chain(k, [1, 2]) for k in knob_sets]


def test_a_chain_earning_exactly_zero_is_evidence() -> None:
    """0.0 bps is a score: a probe whose chain nets exactly 0 beats a losing base."""

    class Flat(_Market):
        def net_fills(self, knobs, segments):  # type: ignore[no-untyped-def]
            a = knobs.get(quoter_knob_name("as_mult"), 1.0)
            return (0.0 if a == 3.0 else -1.0), 100

    tunable = frozenset({quoter_knob_name("as_mult")})
    d = autotune.chained_tune({}, _start(0.5), [], Flat(), [1, 2], tunable=tunable)
    assert d.knobs[quoter_knob_name("as_mult")] == 3.0


def test_the_pnl_objective_keeps_the_fills_that_earn_more_in_total() -> None:
    """Tuned by net_bps, the quoter goes to the widest spread (5 bps a fill on 74 fills); tuned by
    PnL (the default objective), it stays where it earns more in total (1 bps on 2,000 fills)."""
    tunable = frozenset({quoter_knob_name("as_mult")})
    ev = _FewFillsMarket()
    by_bps = autotune.chained_tune(
        {}, _start(1.0), [], ev, [1], tunable=tunable, objective="net_bps"
    )
    assert by_bps.knobs[quoter_knob_name("as_mult")] == 3.0
    by_pnl = autotune.chained_tune({}, _start(1.0), [], ev, [1], tunable=tunable)
    assert by_pnl.knobs[quoter_knob_name("as_mult")] == 1.0 and not by_pnl.changes
    assert all(t["score"] == "chained pnl" for t in by_pnl.trials)
    # the probe to as_mult 3: its PnL in bps of the current knobs' turnover
    (wide,) = [t for t in by_pnl.trials if t["knobs"][quoter_knob_name("as_mult")] == 3.0]
    assert wide["chain_score_bps"] == pytest.approx(5.0 * int(2000 / 27) / 2000)
    assert any("score=chained pnl pnl_bps=" in m for m in by_pnl.markers)


def test_keep_best_by_pnl_keeps_an_earlier_set_that_earned_more_in_total() -> None:
    ev = _FewFillsMarket()
    history = [
        {"iteration": 1, "knobs": _start(1.0)},
        {"iteration": 2, "knobs": _start(3.0)},
    ]
    it, _, table = autotune.select_best_chained(history, ev, [1, 2])
    assert it == 1 and [r["kept"] for r in table] == [True, False]
    it, _, _ = autotune.select_best_chained(history, ev, [1, 2], objective="net_bps")
    assert it == 2


def test_an_unknown_chain_objective_is_refused() -> None:
    with pytest.raises(ValueError, match="chain objective 'sharpe'"):
        autotune.select_best_chained(
            [{"iteration": 1, "knobs": _start(1.0)}], _Market(), [1], objective="sharpe"
        )


class _TogetherMarket(_Market):
    """More levels earn only on a wide enough spread floor: from (as_mult 0.5, one level) the
    levels' probe alone loses, the floor's alone gains a little, both together gain the most."""

    def net_fills(self, knobs: Mapping[str, float], segments: Sequence[int]) -> tuple[float, int]:
        a = knobs.get(quoter_knob_name("as_mult"), 1.0)
        n = knobs.get(quoter_knob_name("n_levels"), 1.0)
        floor = 1.0 - 4.0 * (a - 1.1) ** 2
        levels = (n - 1.0) * (1.0 if a >= 1.0 else -1.0)
        return floor + levels, 500 * len(segments)


def test_a_decision_moves_two_knobs_that_need_each_other() -> None:
    """At the first decision the first step adopts the floor's near probe (the levels' probe
    alone loses there); the step on from it probes the levels again and adds them."""
    a, n = quoter_knob_name("as_mult"), quoter_knob_name("n_levels")
    start = {**_start(0.5), n: 1.0}
    d = autotune.chained_tune(
        {}, start, [], _TogetherMarket(), [1], tunable=frozenset({a, n}), objective="net_bps"
    )
    assert 0.9 <= d.knobs[a] <= 1.3 and d.knobs[n] == 4.0
    levels_alone = next(t for t in d.trials if t["candidate"] == "PROBE(param.n_levels:+)")
    assert levels_alone["gain_bps"] < 0 and not levels_alone["adopted"]
    step = [t for t in d.trials if t["candidate"].startswith("STEP+") and t["adopted"]]
    assert [t["knobs"][n] for t in step] == [4.0]
    assert sorted(c.field for c in d.changes) == [a, n]
    # a later decision (chains over more segments) takes one step
    later = autotune.chained_tune(
        {}, start, [], _TogetherMarket(), [1, 2], tunable=frozenset({a, n}), objective="net_bps"
    )
    assert later.knobs[n] == 1.0 and not any(
        t["candidate"].startswith("STEP+") for t in later.trials
    )
