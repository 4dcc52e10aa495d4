"""The auto-tuner's chained evidence for quoter knobs: a candidate knob set replayed over every kept
segment in order, carrying its own position from one segment to the next, scored by net_bps over
all of them (`chained_tune`, `select_best_chained`).

Why not the paired per-segment gains of `autotune_counterfactual` here: a quoter knob (the spread
floor's multiplier, the levels, the skew) changes how often the quoter fills tenfold. A per-segment
replay starts from the real run's position, and that position's move over the segment, divided by
the few fills a wide setting makes, swings a segment's bps by tens (seen: paired gains of -188 and
+28 bps on 10-30 fills), so the paired means adopted noise and keep-best kept it. A chained replay
is the fixed-knob run over the market played so far (its own positions, carried as the soak carries
them): the figure a knob set's soak would be judged by, with no term shared by accident.

A decision starts from the current knobs, or from an earlier set that ran when its chain beats
theirs (`_best_set_so_far`: a change adopted on thin evidence is walked back before probing on).
Candidates are those of `autotune_counterfactual` (the rules' proposal and single-knob probes,
ordered by the gain measured for them so far); each is chained over all kept segments within the
replay budget (replays already made are free); the best one whose net beats the current knobs' by
``CHAIN_MIN_GAIN_BPS`` on at least ``MIN_CHAIN_FILLS`` fills is adopted, or the merge of winners on
disjoint fields when it beats that one. From the adopted knobs the first decision takes one more
coordinate step (`_step_on`: the quoter knobs it did not move, probed again from there), so two
knobs that only earn together move in one decision. Pure given the evaluator.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from mmbot.knobs import is_quoter_knob, knob_order
from mmbot.soak.autotune_counterfactual import (
    _adopt,
    _Candidate,
    _candidates,
    _next_probe_state,
    _probe_candidates,
    disjoint_parts,
    merged_candidate,
    note_probe,
    validated_decision,
)
from mmbot.soak.autotune_grid import knob_key, normalise_knobs
from mmbot.soak.autotune_keep_best import latest_unless_beaten, sets_that_ran
from mmbot.soak.autotune_rules import REVERT_RULE, RULES, Change, Rule, TuneDecision, tune

# What a chain is scored by (`_ObjectiveView`): "pnl", the chain's PnL in bps of the reference
# knobs' turnover (the current knobs' in a decision, the latest set's at keep-best; for the
# reference itself that is its net_bps), or "net_bps", PnL over the chain's own turnover (the
# seed's KPI). pnl: a knob that earns more per fill on a tenth of the fills (as_mult) earns less,
# and out of sample net_bps-tuned sets earned a third of the default's PnL (docs/autotune.md,
# "The objective"). A module setting read at call time: bench_autotune_quoter's --objective sets it.
CHAIN_OBJECTIVES: Final[tuple[str, ...]] = ("pnl", "net_bps")
CHAIN_OBJECTIVE: str = "pnl"
# Segment replays per decision that are not cached: every candidate over every kept segment (a
# 30-min replay is ~0.1-0.3 s; ~20 candidates x 6 segments at the end of a 3 h soak).
CHAIN_BUDGET: Final[int] = 160
# A chain is evidence about a knob set's bps only on at least this many fills (over all segments).
MIN_CHAIN_FILLS: Final[int] = 20
# The chained net a candidate must add to the current knobs' to be adopted (in-sample over the
# market played: a small bar, the evidence is the soak's own measure).
CHAIN_MIN_GAIN_BPS: Final[float] = 0.05
# At most this many winners (disjoint fields, best first) are merged into one candidate.
MAX_MERGED: Final[int] = 3
# Coordinate steps in the first decision: after adopting a candidate, the decision probes once more
# from it (single-knob probes of the quoter knobs it did not move, within what is left of
# ``CHAIN_BUDGET``), so two quoter knobs whose effects need each other (the spread floor's
# multiplier and the levels: more levels earn only on a wide enough floor) move together from a
# start no evidence chose. Only while the chains are ``STEP_ON_SEGMENTS`` long (the first
# decision): at every decision it reached the grid-best as often in sample but its finals earned
# less on fresh markets (chosen on the bench's seeds 66-111, 11-55 and 121-165 and their fresh
# markets; docs/autotune.md, "A second step"). The engine's order management knobs act mostly
# alone and are not probed again.
MAX_STEPS: Final[int] = 2
STEP_ON_SEGMENTS: Final[int] = 1
STEP_LABEL: Final[str] = "+"  # a step-on probe's label: "STEP+PROBE(field:+)"

Chain = tuple[float | None, int]  # (net_bps over the chained segments or None, fills)


class ChainEvaluate(Protocol):
    """What chained evidence needs of the evaluator (`mmbot.soak.replay.Replayer`)."""

    def chain(self, knobs: Mapping[str, float], segments: Sequence[int]) -> Chain: ...

    def chain_totals(
        self, knobs: Mapping[str, float], segments: Sequence[int]
    ) -> tuple[float, float, int]: ...

    def chain_cost(self, knobs: Mapping[str, float], segments: Sequence[int]) -> int: ...


class _ObjectiveView:
    """An evaluator whose `chain` scores by ``objective``: the wrapped evaluator's chain (net_bps),
    or (pnl objective) the chain's PnL in bps of the reference knobs' chained turnover over the
    same segments; a reference that made no fills leaves each chain on its own turnover."""

    def __init__(
        self, evaluate: ChainEvaluate, segs: Sequence[int], ref: Mapping[str, float], objective: str
    ) -> None:
        if objective not in CHAIN_OBJECTIVES:
            raise ValueError(f"chain objective {objective!r}: expected one of {CHAIN_OBJECTIVES}")
        self._ev = evaluate
        self._objective = objective
        self._ref = (ref, segs)
        prefetch = getattr(evaluate, "prefetch_chains", None)
        if prefetch is not None:
            self.prefetch_chains = prefetch

    @functools.cached_property
    def _ref_turnover(self) -> float | None:
        """The reference's chained turnover (pnl objective; None: net_bps, or no turnover), read
        at the first `chain`, so a prefetch made before it chains the reference in parallel."""
        if self._objective != "pnl":
            return None
        _, t, _ = self._ev.chain_totals(*self._ref)
        return t if t > 0 and math.isfinite(t) else None

    def chain(self, knobs: Mapping[str, float], segments: Sequence[int]) -> Chain:
        if self._ref_turnover is None:
            return self._ev.chain(knobs, segments)
        pnl, _, fills = self._ev.chain_totals(knobs, segments)
        score = pnl / self._ref_turnover * 1e4 if fills else None
        return (score if score is not None and math.isfinite(score) else None), fills

    def chain_cost(self, knobs: Mapping[str, float], segments: Sequence[int]) -> int:
        return self._ev.chain_cost(knobs, segments)


def chain_score_name(objective: str | None = None) -> str:
    """The name trials and markers give the chained score under ``objective``."""
    return f"chained {objective or CHAIN_OBJECTIVE}"


def usable_chain(ch: Chain) -> float | None:
    """A chain's net_bps where it is evidence (enough fills), else None."""
    score, fills = ch
    return score if score is not None and fills >= MIN_CHAIN_FILLS else None


def chained_tune(
    report: Mapping[str, Any],
    current: Mapping[str, float],
    history: Sequence[Mapping[str, Any]],
    evaluate: ChainEvaluate,
    segments: Sequence[int],
    *,
    rules: Sequence[Rule] = RULES,
    budget: int = CHAIN_BUDGET,
    tunable: frozenset[str] | None = None,
    objective: str | None = None,
) -> TuneDecision:
    """The next knobs from chained replays of every candidate over the kept ``segments`` (any
    order; chained oldest first), scored by ``objective`` (default `CHAIN_OBJECTIVE`). Without
    evidence for the current knobs (too few fills), the best candidate with evidence is adopted
    (a fill search)."""
    proposal = tune(report, current, history, rules=rules, tunable=tunable)
    segs = sorted(segments)
    if not segs:
        return proposal
    obj = objective or CHAIN_OBJECTIVE
    start, revert, revert_marker = _best_set_so_far(history, current, evaluate, segs, obj)
    if revert:  # the rules' proposal reads the current knobs' report: not the set walked back to
        proposal = TuneDecision(knobs=dict(start), fired=proposal.fired, skipped=proposal.skipped)
    decision = validated_decision(proposal, start)
    if revert:
        decision.changes = list(revert)
        decision.markers.append(revert_marker)
    evaluate = _ObjectiveView(evaluate, segs, start, obj)
    base = evaluate.chain(start, segs)
    base_score = usable_chain(base)
    if base_score is None:
        decision.evidence = (
            f"the current knobs made {base[1]} fills over segments {_segs_text(segs)} (fewer than "
            f"{MIN_CHAIN_FILLS}): no evidence to beat; adopting the best candidate that has it"
        )
        decision.markers.append(f"| autotune | EVIDENCE | {decision.evidence} |")
    cands = _candidates(proposal, start, history, tunable, segs)
    scored, used = _run_chains(cands, evaluate, segs, start, budget)
    bar = base_score + CHAIN_MIN_GAIN_BPS if base_score is not None else -math.inf
    winners = [
        c for c, ch in sorted(scored, key=lambda x: -chain_score(x[1])) if chain_score(ch) > bar
    ]
    chosen, merged, parts = _merge(winners, start, evaluate, segs, scored)
    adopted = {id(c) for c in parts} | ({id(chosen)} if chosen is not None else set())
    probe_gain = _record(decision, scored, base, segs, start, adopted, obj)
    decision.probe_state = _next_probe_state(decision, history, probe_gain, CHAIN_MIN_GAIN_BPS)
    for _ in range((MAX_STEPS if len(segs) <= STEP_ON_SEGMENTS else 1) - 1):
        if chosen is None:
            break
        step = _step_on(
            decision, chosen, scored, (evaluate, segs, start, obj), history, tunable, budget - used
        )
        if step is None:
            break
        chosen, step_used = step
        used += step_used
    if chosen is not None:
        _adopt(decision, chosen)
        decision.changes = [*revert, *decision.changes]
    return decision


def _best_set_so_far(
    history: Sequence[Mapping[str, Any]],
    current: Mapping[str, float],
    evaluate: ChainEvaluate,
    segs: Sequence[int],
    objective: str,
) -> tuple[dict[str, float], list[Change], str]:
    """Where this decision probes from: the current knobs, or an earlier set that ran and whose
    chain over ``segs`` beats theirs (keep-best's rule, `select_best_chained`, on the market
    played so far). Returns (the knobs, the changes walking back to them, their marker).

    A change adopted on one or two segments is the best of many noisy candidates (biased up);
    when the segments played since show an earlier set earning more, probing on from the
    current knobs searches around a worse point (and hysteresis keeps it from walking back)."""
    start = normalise_knobs(current)
    ran = [*history, {"iteration": len(history) + 1, "knobs": start}]
    if len(sets_that_ran(ran)) < 2:
        return start, [], ""
    it, best, table = select_best_chained(ran, evaluate, segs, objective)
    best = normalise_knobs(best)
    if knob_key(best) == knob_key(start):
        return start, [], ""
    changes = [
        Change(k, start[k], best[k], REVERT_RULE) for k in knob_order(start) if best[k] != start[k]
    ]
    score = {r["iteration"]: r["score_bps"] for r in table}
    marker = (
        f"| autotune | {REVERT_RULE} | to the knobs of iter={it}: "
        f"{_value_key(objective)}={_fmt(score[it])} against the current knobs' "
        f"{_fmt(score[len(ran)])} over segments {_segs_text(segs)} |"
    )
    return best, changes, marker


def _segs_text(segs: Sequence[int]) -> str:
    return ",".join(map(str, segs))


def chain_score(ch: Chain) -> float:
    """A chain's net_bps where it is evidence, -inf otherwise (0.0 is a score, not none)."""
    v = usable_chain(ch)
    return v if v is not None else -math.inf


def _score_of(scored: Sequence[tuple[_Candidate, Chain]], c: _Candidate) -> float:
    return chain_score(next(ch for x, ch in scored if x is c))


def _run_chains(
    cands: Sequence[_Candidate],
    evaluate: ChainEvaluate,
    segs: Sequence[int],
    start: Mapping[str, float],
    budget: int,
) -> tuple[list[tuple[_Candidate, Chain]], int]:
    """Every candidate chained over ``segs`` in their prior order, while the budget lasts; with
    the uncached replays that took."""
    used = evaluate.chain_cost(start, segs)  # the base was chained already: counted
    within: list[_Candidate] = []
    for c in cands:
        cost = evaluate.chain_cost(c.knobs, segs)
        if used + cost > budget:
            continue
        used += cost
        within.append(c)
    prefetch = getattr(evaluate, "prefetch_chains", None)
    if prefetch is not None:  # one batch (parallel when the evaluator can): same answers
        prefetch([c.knobs for c in within], segs)
    return [(c, evaluate.chain(c.knobs, segs)) for c in within], used


def _step_on(
    decision: TuneDecision,
    chosen: _Candidate,
    scored: list[tuple[_Candidate, Chain]],
    where: tuple[ChainEvaluate, Sequence[int], Mapping[str, float], str],
    history: Sequence[Mapping[str, Any]],
    tunable: frozenset[str] | None,
    budget: int,
) -> tuple[_Candidate, int] | None:
    """One more coordinate step within the decision: single-knob probes from the adopted
    candidate's knobs on the quoter knobs it did not move, chained within what is left of the
    budget; the best one whose chain beats the adopted one's by ``CHAIN_MIN_GAIN_BPS`` is added.
    Returns (the candidate making both steps, the replays used) or None. The probe state stays
    the first step's (these probes start from other knobs)."""
    evaluate, segs, start, obj = where
    here = dict(chosen.knobs)
    here_chain = next(ch for c, ch in scored if c is chosen)
    moved = chosen.fields()
    probes = [
        p
        for p in _probe_candidates(here, history, {knob_key(here)}, tunable)
        if not (p.fields() & moved) and all(map(is_quoter_knob, p.fields()))
    ]
    for p in probes:
        p.label = f"STEP{STEP_LABEL}{p.label}"
    more, used = _run_chains(probes, evaluate, segs, here, budget)
    bar = chain_score(here_chain) + CHAIN_MIN_GAIN_BPS
    best = max(more, key=lambda x: chain_score(x[1]), default=None)
    won = best is not None and chain_score(best[1]) > bar
    adopted = {id(best[0])} if won else set()
    _record(decision, more, here_chain, segs, here, adopted, obj, note_probes=False)
    if not won:
        return None
    step = merged_candidate([chosen, best[0]], start)
    scored.append((step, best[1]))
    return step, used


def _merge(
    winners: Sequence[_Candidate],
    start: Mapping[str, float],
    evaluate: ChainEvaluate,
    segs: Sequence[int],
    scored: list[tuple[_Candidate, Chain]],
) -> tuple[_Candidate | None, _Candidate | None, list[_Candidate]]:
    """(the adopted candidate, the merge if one was chained, the winners merged into the adopted
    one): the best winner, or the merge of the best winners on disjoint fields when its chain
    beats that one's."""
    if not winners:
        return None, None, []
    parts = disjoint_parts(winners, MAX_MERGED)
    if len(parts) < 2:
        return winners[0], None, []
    merged = merged_candidate(parts, start)
    scored.append((merged, evaluate.chain(merged.knobs, segs)))
    if _score_of(scored, merged) > _score_of(scored, winners[0]):
        return merged, merged, parts
    return winners[0], merged, []


def _record(
    decision: TuneDecision,
    scored: Sequence[tuple[_Candidate, Chain]],
    base: Chain,
    segs: Sequence[int],
    start: Mapping[str, float],
    adopted_ids: set[int],
    objective: str,
    note_probes: bool = True,
) -> dict[str, tuple[float, int]]:
    """Every chained candidate into the decision's trials and a COUNTERFACTUAL marker; returns the
    probes' (gain, segments) and marks the inert ones (a chain identical to the base's), unless
    ``note_probes`` is off (probes from other knobs than the decision's start)."""
    probe_gain: dict[str, tuple[float, int]] = {}
    base_score = usable_chain(base)
    for c, ch in scored:
        score = usable_chain(ch)
        gain = score - base_score if score is not None and base_score is not None else None
        adopted = id(c) in adopted_ids
        decision.trials.append(
            {
                "candidate": c.label,
                "origin": c.origin,
                "changes": [x.as_dict() for x in c.changes],
                "knobs": dict(c.knobs),
                "chain_base_knobs": dict(start),
                "segments": list(segs),
                "score": chain_score_name(objective),
                "chain_score_bps": ch[0],
                "chain_fills": ch[1],
                "base_chain_score_bps": base[0],
                "base_chain_fills": base[1],
                "earlier_segments": [],
                "gain_bps": gain,
                "evidence_segments": len(segs) if score is not None else 0,
                "adopted": adopted,
            }
        )
        decision.markers.append(
            f"| autotune | COUNTERFACTUAL | cand={c.label} segs={len(segs)} "
            f"score={chain_score_name(objective)} {_value_key(objective)}={_fmt(ch[0])} "
            f"fills={ch[1]} "
            f"gain_bps={_fmt(gain, signed=True)} adopted={int(adopted)} |"
        )
        if note_probes and c.origin == "PROBE":
            # a probe without evidence yet (too few fills) keeps its step: its chain gains fills
            # with every segment played (a wide spread floor may fill 14 times in 30 min)
            evidence = (gain if gain is not None else math.nan, len(segs))
            note_probe(decision, probe_gain, c, evidence, ch == base)
    return probe_gain


def _value_key(objective: str) -> str:
    """The marker's key for a chain's score (net_bps, or pnl_bps: PnL in bps of the reference's
    turnover)."""
    return "net_bps" if objective == "net_bps" else f"{objective}_bps"


def _fmt(v: float | None, signed: bool = False) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def select_best_chained(
    history: Sequence[Mapping[str, Any]],
    evaluate: ChainEvaluate,
    segments: Sequence[int],
    objective: str | None = None,
) -> tuple[int, dict[str, float], list[dict[str, Any]]]:
    """Keep-best by the chained score (``objective``, default `CHAIN_OBJECTIVE`; the latest set is
    the pnl objective's reference): every distinct knob set that ran, chained over ``segments``;
    the latest set is kept unless an earlier one beats it by ``CHAIN_MIN_GAIN_BPS``, and never one
    without evidence when another has it. Returns (iteration, knobs, table)."""
    if not history:
        raise ValueError("select_best_chained needs at least one iteration")
    segs = sorted(segments)
    table = []
    ordered = sets_that_ran(history)
    obj = objective or CHAIN_OBJECTIVE
    evaluate = _ObjectiveView(evaluate, segs, history[-1]["knobs"], obj)
    prefetch = getattr(evaluate, "prefetch_chains", None)
    if prefetch is not None:
        prefetch([e["knobs"] for e in ordered], segs)
    for e in ordered:
        ch = evaluate.chain(e["knobs"], segs)
        table.append(
            {
                "iteration": int(e["iteration"]),
                "knobs": {k: float(e["knobs"][k]) for k in knob_order(e["knobs"])},
                "segments": segs,
                "score": chain_score_name(obj),
                "chain_fills": ch[1],
                "score_bps": usable_chain(ch),
            }
        )

    # (a latest set without evidence scores -inf: any earlier set with evidence beats it)
    best = latest_unless_beaten(table, CHAIN_MIN_GAIN_BPS)
    for row in table:
        row["kept"] = row is best
    return int(best["iteration"]), dict(best["knobs"]), table
