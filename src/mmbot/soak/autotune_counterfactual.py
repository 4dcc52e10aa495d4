"""The auto-tuner's counterfactual scoring: candidate knob sets replayed on the market already
played, judged by paired gains, adopted only above the noise.

An extension of DESIGN.md, used by the soak. Iterations play different stretches of market, and on
the default market that noise (about +-0.4 bps per 30 min) is far larger than the knobs' effects
(mostly below 0.05 bps each), so comparing iterations picks on noise. `counterfactual_tune` sits on
top of the rule table (`mmbot.soak.autotune_rules.tune`): the soak keeps the market segment of
every iteration played so far (its last chunk, with the carried book, so a replay starts from the
real run's state; up to ``MAX_KEPT_SEGMENTS``) and an evaluator that replays a segment through the
compiled backtest with other knobs. Every candidate - the rule table's proposal (as one bundle) and
single-knob probes (each knob the quoter reads toward each limit, hysteresis-respecting) - is
judged by its paired gain over the current knobs (same events, same start: the market's luck
cancels) in the replay score (`SCORE_NAME`: net_bps minus most of the inventory PnL beyond 1 s
after each fill), and that evidence accumulates. Replays already made are free; the ``budget``
replays a decision may add are spent by successive halving (every candidate on the latest
segment, the better half on the latest two, four, ..., the best on every segment). A candidate is
adopted only when its mean gain over at least ``MIN_ADOPT_SEGMENTS`` segments exceeds a noise
floor that falls like a standard error (`noise_floor`); winners on disjoint fields are merged when
the merge is better. Nothing that loses on the segments is adopted, including the fallback package
(the seed's marker prints only when it is adopted); keep-best at the end of a soak is
`mmbot.soak.autotune_keep_best`. Every candidate, its replayed score and whether it was adopted is
in the decision's ``trials`` (metrics.jsonl) and a ``| autotune | COUNTERFACTUAL |`` marker.

The measurements the constants come from are in docs/autotune.md. Everything here is a pure
function of its arguments (given the evaluator): no I/O, no clocks, no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from mmbot.knobs import is_quoter_knob, knob_limits, knob_order
from mmbot.soak.autotune_grid import knob_key, may_move, normalise_knobs
from mmbot.soak.autotune_probes import (
    INERT_DECISIONS,
    PROBE_MIN_FRACTION,
    probe_distances,
    probe_key,
    probe_marker,
    probe_value,
)
from mmbot.soak.autotune_rules import (
    RULES,
    Change,
    Rule,
    TuneDecision,
    _recent_direction,
    tune,
)

# Paired evidence: a candidate's gain on a segment is its replayed score minus the current knobs'
# score on the same events from the same start; a candidate is adopted only when its mean gain over
# n segments exceeds ``NOISE_FLOOR_BPS * sqrt(2 / n)`` (docs/autotune.md: how it was measured).
NOISE_FLOOR_BPS: Final[float] = 0.025
# A decision that tunes quoter knobs measures its own noise: the floor is then NOISE_Z standard
# errors of the paired gains' scatter when higher (docs/autotune.md).
NOISE_Z: Final[float] = 1.0
# The replay score (the tuner's evidence only: EDGE_REPORT, markers and the gate stay in net_bps):
# net_bps - SCORE_BETA x (inventory PnL beyond SCORE_TAU_S after each fill), computed by
# `runner.chunk_score_bps`; half the noise of net_bps, but biased (docs/autotune.md).
SCORE_TAU_S: Final[float] = 1.0
SCORE_BETA: Final[float] = 0.83
SCORE_NAME: Final[str] = "net-0.83*inv>1s"
# Iteration segments kept for replays (the latest ones; a 30-min segment is ~0.75 M events,
# ~47 MB): a 3 h / 6 iteration soak keeps all of them. Gains measured on segments no longer kept
# still count (they are in the decisions' trials).
MAX_KEPT_SEGMENTS: Final[int] = 8
# A candidate measured on fewer segments (its earlier evidence included) is not adopted: with a
# dozen candidates, the best gain on one segment is noise (~0.2 bps) far more often than not.
MIN_ADOPT_SEGMENTS: Final[int] = 2
# Segment replays per decision that are not cached (a replay of 30 min is ~0.25 s on one core).
REPLAY_BUDGET: Final[int] = 24
# Each quoter knob adds its two probes (each direction), replayed on the latest segment and, if it
# survives the halving, on the others: this many more replays per quoter knob per decision.
REPLAYS_PER_QUOTER_KNOB: Final[int] = 4


def replay_budget(knobs: Mapping[str, float]) -> int:
    """Segment replays a decision from ``knobs`` may add: ``REPLAY_BUDGET`` for the six runtime
    knobs, plus ``REPLAYS_PER_QUOTER_KNOB`` for each quoter knob in the set."""
    n_quoter = sum(1 for k in knobs if is_quoter_knob(k) and knob_limits(k) is not None)
    return REPLAY_BUDGET + REPLAYS_PER_QUOTER_KNOB * n_quoter


# A replay is evidence about a knob set's bps only on at least this many fills: on fewer, one or two
# fills' markouts are the whole score (a quoter that pays a maker fee may fill a few times in 30 min
# at some knobs); such a segment is left out of that candidate's (or the current knobs') evidence.
MIN_PAIR_FILLS: Final[int] = 10

# (knobs, segment id) -> net_bps of the segment replayed with those knobs (None: no fills).
# An evaluator may also offer ``cached(knobs, segment id) -> bool`` (a free answer: not counted
# against the replay budget).
Evaluate = Callable[[Mapping[str, float], int], float | None]


def adopt_floor(n_segments: int, floor_bps: float = NOISE_FLOOR_BPS) -> float:
    """Mean paired gain a candidate needs over ``n_segments`` to be adopted."""
    return floor_bps * math.sqrt(2.0 / max(n_segments, 1))


def pooled_gain_sd(gains: Sequence[Mapping[int, float] | None]) -> float:
    """The paired gains' noise per segment, measured in this decision: the pooled within-candidate
    standard deviation of the gains of every candidate with two or more segments (inert ones,
    all gains zero, left out). 0 when nothing measures it."""
    ss, dof = 0.0, 0
    for g in gains:
        if not g or len(g) < 2 or all(v == 0.0 for v in g.values()):
            continue
        vals = list(g.values())
        m = sum(vals) / len(vals)
        ss += sum((v - m) ** 2 for v in vals)
        dof += len(vals) - 1
    return math.sqrt(ss / dof) if dof else 0.0


def noise_floor(n_segments: int, noise_sd: float, floor_bps: float = NOISE_FLOOR_BPS) -> float:
    """Mean paired gain a candidate needs over ``n_segments``: `adopt_floor`, or ``NOISE_Z``
    standard errors of the noise measured in the decision (`pooled_gain_sd`) when that is
    higher (a quoter that fills rarely scatters by bps per segment, not hundredths)."""
    return max(
        adopt_floor(n_segments, floor_bps), NOISE_Z * noise_sd / math.sqrt(max(n_segments, 1))
    )


@dataclass
class _Candidate:
    label: str  # RULES(H2,...) | FALLBACK | PROBE(field:+/-) | COMBINED(...)
    origin: str  # RULES | PROBE | COMBINED
    knobs: dict[str, float]
    changes: list[Change]
    markers: list[str]  # printed when adopted (the seed's change markers for rule changes)
    fallback: bool = False
    near: bool = False  # a near probe (`NEAR_PROBE_RATIO`): its state is its far probe's
    # replayed this decision: the score where it is evidence (None: no or too few fills), and the
    # replay as made (score, fills) for the record
    nets: dict[int, float | None] = field(default_factory=dict)
    raw: dict[int, tuple[float | None, int | None]] = field(default_factory=dict)
    past: dict[int, float] = field(default_factory=dict)  # segment -> gain from earlier decisions

    def probe_key(self) -> str:
        """The probe state's key of a one-change candidate: its field and direction."""
        ch = self.changes[0]
        return probe_key(ch.field, 1 if ch.new > ch.old else -1)

    def fields(self) -> set[str]:
        return {c.field for c in self.changes}

    def gains(self, base: Mapping[int, float | None]) -> dict[int, float] | None:
        """Paired gain per segment (this decision's replays and earlier evidence for the same
        (current, candidate) pair). A segment on which the candidate made too few fills
        (`MIN_PAIR_FILLS`) says nothing about its bps and is left out (a quoter knob can make
        fills rare: a wide spread floor may not fill in 15 min yet earn the most per fill, the
        net_bps a soak is judged by)."""
        out = dict(self.past)
        for s, v in self.nets.items():
            b = base.get(s)
            if v is None or b is None:
                continue
            out[s] = v - b
        return out

    def gain(self, base: Mapping[int, float | None]) -> tuple[float, int]:
        g = self.gains(base)
        if g is None:
            return -math.inf, len(self.nets)
        if not g:
            return 0.0, 0
        return sum(g.values()) / len(g), len(g)


def usable(score: float | None, fills: int | None) -> float | None:
    """A replay's score where it is evidence: None without a score or on fewer than
    ``MIN_PAIR_FILLS`` fills (an unknown fill count, e.g. a test's objective, is trusted)."""
    if score is None or (fills is not None and fills < MIN_PAIR_FILLS):
        return None
    return score


def _trial_rows(t: Mapping[str, Any]) -> list[tuple[int, Any, Any, Any, Any]]:
    """(segment, score, fills, base score, base fills) of a recorded trial (fill counts of records
    written before they were kept: None)."""
    n = len(t["segments"])
    fills = t.get("fills") or [None] * n
    base_fills = t.get("base_fills") or [None] * n
    return list(
        zip(t["segments"], t["score_bps"], fills, t["base_score_bps"], base_fills, strict=True)
    )


def _past_evidence(
    history: Sequence[Mapping[str, Any]], start: Mapping[str, float]
) -> dict[tuple, dict[int, float]]:
    """Gains measured in earlier decisions that started from the same knobs, per candidate."""
    key0 = knob_key(start)
    out: dict[tuple, dict[int, float]] = {}
    for e in history:
        for t in e.get("trials") or []:
            if "base_knobs" not in t or knob_key(t["base_knobs"]) != key0:
                continue
            ev = out.setdefault(knob_key(t["knobs"]), {})
            for s, v, f, b, bf in _trial_rows(t):
                v, b = usable(v, f), usable(b, bf)
                if v is not None and b is not None:
                    ev[int(s)] = float(v) - float(b)
    return out


Replay = tuple[float | None, int | None]  # (score, fills) of one (knobs, segment) replay


def _known_replays(history: Sequence[Mapping[str, Any]]) -> dict[tuple[tuple, int], Replay]:
    """(knobs, segment) -> (score, fills) replayed in earlier decisions (candidates and bases)."""
    out: dict[tuple[tuple, int], Replay] = {}
    for e in history:
        for t in e.get("trials") or []:
            if "base_knobs" not in t:
                continue
            kc, kb = knob_key(t["knobs"]), knob_key(t["base_knobs"])
            for s, v, f, b, bf in _trial_rows(t):
                out[(kc, int(s))] = (v, f)
                out[(kb, int(s))] = (b, bf)
    return out


@dataclass
class _Replays:
    """The evaluator as one decision sees it: answers known from earlier trials or the evaluator's
    cache are free; the other replays are counted (``used``) against the budget."""

    evaluate: Evaluate
    known: dict[tuple[tuple, int], Replay]
    used: int = 0

    def is_cached(self, knobs: Mapping[str, float], s: int) -> bool:
        cached = getattr(self.evaluate, "cached", None)
        return (knob_key(knobs), s) in self.known or (cached is not None and cached(knobs, s))

    def raw(self, knobs: Mapping[str, float], s: int) -> Replay:
        key = (knob_key(knobs), s)
        if key in self.known:
            return self.known[key]
        score = self.evaluate(knobs, s)
        fills = getattr(self.evaluate, "fills", None)
        return score, (fills(knobs, s) if fills is not None else None)

    def run_pairs(self, pairs: Sequence[tuple[Mapping[str, float], int]]) -> None:
        """Count the replays of a batch chosen beforehand, then let the evaluator prefetch it
        (in parallel when it can): the decision is the same as one replay at a time."""
        todo = list(
            {(knob_key(k), s): (k, s) for k, s in pairs if not self.is_cached(k, s)}.values()
        )
        self.used += len(todo)
        prefetch = getattr(self.evaluate, "prefetch", None)
        if prefetch is not None and todo:
            prefetch(todo)

    def measure(self, c: _Candidate, on: Sequence[int]) -> None:
        for s in on:
            if s not in c.nets:
                c.raw[s] = self.raw(c.knobs, s)
                c.nets[s] = usable(*c.raw[s])

    def cost(self, c: _Candidate, on: Sequence[int]) -> int:
        return sum(1 for s in on if s not in c.nets and not self.is_cached(c.knobs, s))

    def run_batch(self, batch: Sequence[tuple[_Candidate, Sequence[int]]]) -> None:
        self.run_pairs([(c.knobs, s) for c, on in batch for s in on if s not in c.nets])
        for c, on in batch:
            self.measure(c, on)


def _probe_candidates(
    start: Mapping[str, float],
    history: Sequence[Mapping[str, Any]],
    taken: set[tuple],
    tunable: frozenset[str] | None = None,
) -> list[_Candidate]:
    """Single-knob probes (not yet ordered; see `counterfactual_tune`).

    A field the tuner moved within ``HYSTERESIS_ITERS`` is probed only onward (hysteresis). A
    probe that changed nothing at all (bit-identical replay: the knob does not bind there) is
    skipped for ``INERT_DECISIONS`` decisions. Fields are listed in an order that rotates with
    the iteration, so ties in priority do not always favour the same knobs. A quoter knob probed
    one way only has a near probe beside the far one (`probe_distances`).
    """
    last = history[-1] if history else {}
    state: Mapping[str, Any] = last.get("probe_state") or {}
    now = len(history)
    names = [k for k in knob_order(start) if knob_limits(k) is not None and may_move(k, tunable)]
    rot = len(history) % len(names)
    order = names[rot:] + names[:rot]
    out: list[_Candidate] = []
    for name in order:
        recent = _recent_direction(history, name)
        dirs = [
            d
            for d in ((recent,) if recent else (1, -1))
            if probe_value(name, start[name], d, 1.0) != start[name]
        ]
        for d in dirs:
            key = probe_key(name, d)
            st = state.get(key) or {}
            inert_at = st.get("inert_at")
            if isinstance(inert_at, int) and now - inert_at < INERT_DECISIONS:
                continue
            frac = float(st.get("fraction", 1.0))
            for fraction, near in probe_distances(name, frac, len(dirs) == 1):
                new = probe_value(name, start[name], d, fraction)
                if new == start[name]:
                    continue
                knobs = dict(start)
                knobs[name] = new
                if knob_key(knobs) in taken:
                    continue
                taken.add(knob_key(knobs))
                out.append(
                    _Candidate(
                        label=f"PROBE({key}{'near' if near else ''})",
                        origin="PROBE",
                        knobs=knobs,
                        changes=[Change(name, start[name], new, "PROBE")],
                        markers=[probe_marker(name, start[name], new)],
                        near=near,
                    )
                )
    return out


def counterfactual_tune(
    report: Mapping[str, Any],
    current: Mapping[str, float],
    history: Sequence[Mapping[str, Any]],
    evaluate: Evaluate,
    segments: Sequence[int],
    *,
    rules: Sequence[Rule] = RULES,
    budget: int = REPLAY_BUDGET,
    floor_bps: float = NOISE_FLOOR_BPS,
    tunable: frozenset[str] | None = None,
) -> TuneDecision:
    """`tune`, with every candidate change replayed on all the market segments kept so far.

    ``segments``: ids of the segments ``evaluate`` can replay, latest first (the iteration just
    played first). Candidates: the rule table's proposal (H1-H6 after calm-down, muting,
    hysteresis, caps and limits, or the fallback package) as one bundle, then single-knob probes
    of the knobs in ``tunable`` (`_probe_candidates`), ordered by the gain measured for them so
    far. The evidence is paired (candidate minus current knobs, same segment) on the segments
    where both made at least ``MIN_PAIR_FILLS`` fills, and accumulates: replays already made (an
    earlier decision from the same knobs, or the validation of the current knobs themselves) are
    free, and gains measured on segments no longer kept count too. The replays that are not free
    are spent by successive halving: every candidate on the latest segment with evidence, the
    better half (those not losing so far) on the latest two, then four, ..., then every one; a
    candidate is a winner when its mean gain over all its evidence passes `noise_floor`. Winners
    on disjoint fields are merged and the merge replayed on every segment; the adopted change is
    the merge if it beats the best single winner, else that winner; no winner -> the knobs stay.
    When the current knobs have too few fills on every kept segment there is nothing to pair
    with: `_fill_search` decides. At most ``budget`` segment replays that are not cached (the
    current knobs' own, when missing, included), plus one merge. Pure given ``evaluate``.
    """
    proposal = tune(report, current, history, rules=rules, tunable=tunable)
    all_segs = list(segments)
    if not all_segs:
        return proposal  # nothing to replay: the seed's rules decide alone
    start = normalise_knobs(current)
    rp = _Replays(evaluate, _known_replays(history))
    rp.run_pairs([(start, s) for s in all_segs])
    base_raw = {s: rp.raw(start, s) for s in all_segs}
    base = {s: usable(*base_raw[s]) for s in all_segs}
    # a segment where the current knobs made too few fills cannot pair anything
    segs = [s for s in all_segs if base[s] is not None]
    decision = validated_decision(proposal, start)
    cands = _candidates(proposal, start, history, tunable, all_segs)
    if not segs:
        _fill_search(decision, cands, rp, all_segs, base_raw, budget)
        return decision
    if segs[0] != all_segs[0]:
        decision.evidence = (
            f"the current knobs made {_fills_text(base_raw[all_segs[0]])} on the latest segment "
            f"{all_segs[0]}: judged on segments {','.join(map(str, segs))}"
        )
        decision.markers.append(f"| autotune | EVIDENCE | {decision.evidence} |")
    # free evidence first: replays already made on any kept segment
    for c in cands:
        rp.measure(c, [s for s in segs if rp.is_cached(c.knobs, s)])
    _successive_halving(cands, rp, segs, base, budget)
    # the six knobs' floor was measured (NOISE_FLOOR_BPS); a quoter's knobs measure their own noise
    tunes_quoter = any(is_quoter_knob(k) for k in start)
    noise_sd = pooled_gain_sd([c.gains(base) for c in cands]) if tunes_quoter else 0.0
    winners = [
        c
        for c in cands
        if all(s in c.nets for s in segs)
        and c.gain(base)[1] >= MIN_ADOPT_SEGMENTS
        and c.gain(base)[0] > noise_floor(c.gain(base)[1], noise_sd, floor_bps)
    ]
    winners.sort(key=lambda c: -c.gain(base)[0])
    chosen, merged, adopted = _merge_winners(winners, start, history, rp, segs, base, all_segs)
    probe_gain = _record_trials(
        decision, [*cands, *([merged] if merged else [])], segs, base, base_raw, start, adopted
    )
    decision.probe_state = _next_probe_state(decision, history, probe_gain, floor_bps)
    if chosen is not None:
        _adopt(decision, chosen)
    return decision


def validated_decision(proposal: TuneDecision, start: Mapping[str, float]) -> TuneDecision:
    """A replay-validated decision that keeps ``start`` until a candidate is adopted: the rules'
    findings and their informational markers, none of their changes."""
    decision = TuneDecision(
        knobs=dict(start),
        fired=list(proposal.fired),
        skipped=list(proposal.skipped),
        calm_down=proposal.calm_down,
        validated=True,
    )
    decision.markers = [m for m in proposal.markers if any(t in m for t in _INFO_MARKERS)]
    return decision


# markers of the rules' decision that say what happened, not what changed (kept when validated)
_INFO_MARKERS: Final[tuple[str, ...]] = ("| CALM_DOWN |", "| INEFFECTIVE |")


def _fills_text(replay: Replay) -> str:
    fills = replay[1]
    if replay[0] is None and fills is None:
        return "no fill"
    return f"{fills} fills (fewer than {MIN_PAIR_FILLS})" if fills is not None else "no score"


def _candidates(
    proposal: TuneDecision,
    start: Mapping[str, float],
    history: Sequence[Mapping[str, Any]],
    tunable: frozenset[str] | None,
    all_segs: Sequence[int],
) -> list[_Candidate]:
    """The rules' proposal (one bundle) and the single-knob probes, the probes ordered by the gain
    measured for them so far (stable: equal priors keep the rotating field order; this order
    decides who is replayed first when the budget runs short), with their earlier evidence."""
    taken = {knob_key(start)}
    rules_cands: list[_Candidate] = []
    if proposal.changes:
        rules_cands.append(
            _Candidate(
                label=(
                    "FALLBACK"
                    if proposal.fallback
                    else "RULES(" + ",".join(dict.fromkeys(c.rule for c in proposal.changes)) + ")"
                ),
                origin="RULES",
                knobs=dict(proposal.knobs),
                changes=list(proposal.changes),
                markers=[m for m in proposal.markers if not any(t in m for t in _INFO_MARKERS)],
                fallback=proposal.fallback,
            )
        )
        taken.add(knob_key(proposal.knobs))
    probes = _probe_candidates(start, history, taken, tunable)
    past = _past_evidence(history, start)
    for c in rules_cands + probes:
        c.past = {s: g for s, g in past.get(knob_key(c.knobs), {}).items() if s not in all_segs}
    state: Mapping[str, Any] = (history[-1].get("probe_state") if history else None) or {}
    adoptions = sum(1 for e in history if e.get("changes"))

    def prior(c: _Candidate) -> float:
        if c.past:
            return sum(c.past.values()) / len(c.past)
        st = state.get(c.probe_key()) or {}
        g = st.get("gain_bps")
        if not isinstance(g, int | float):
            return 0.0
        # measured from other knobs: halve its weight for every change adopted since
        return float(g) * 0.5 ** max(adoptions - int(st.get("adoptions_at") or 0), 0)

    return list(rules_cands) + sorted(probes, key=lambda c: -prior(c))


def _successive_halving(
    cands: Sequence[_Candidate],
    rp: _Replays,
    segs: Sequence[int],
    base: Mapping[int, float | None],
    budget: int,
) -> None:
    """Replay the candidates over segment prefixes 1, 2, 4, ..., all, keeping the better half
    (those gaining so far) at each step, within ``budget`` uncached replays."""
    lengths: list[int] = []
    n_len = 1
    while n_len < len(segs):
        lengths.append(n_len)
        n_len *= 2
    lengths.append(len(segs))
    alive = list(cands)
    for i, n_len in enumerate(lengths):
        on = segs[:n_len]
        batch: list[tuple[_Candidate, Sequence[int]]] = []
        planned = rp.used
        for c in alive:
            k = rp.cost(c, on)
            if planned + k > budget:
                continue  # keeps the evidence it has; no longer in the race
            planned += k
            batch.append((c, on))
        rp.run_batch(batch)
        alive = [c for c, _ in batch if math.isfinite(c.gain(base)[0])]
        alive.sort(key=lambda c: -c.gain(base)[0])  # stable: ties keep the candidate order
        if i + 1 < len(lengths):
            alive = [c for c in alive[: max((len(alive) + 1) // 2, 1)] if c.gain(base)[0] > 0.0]


def disjoint_parts(winners: Sequence[_Candidate], limit: int | None = None) -> list[_Candidate]:
    """The winners (best first) whose fields do not overlap a better one's, at most ``limit``."""
    parts: list[_Candidate] = []
    taken: set[str] = set()
    for c in winners:
        if (limit is None or len(parts) < limit) and not (c.fields() & taken):
            parts.append(c)
            taken |= c.fields()
    return parts


def merged_candidate(parts: Sequence[_Candidate], start: Mapping[str, float]) -> _Candidate:
    """One candidate making every change of ``parts`` (on disjoint fields) from ``start``."""
    knobs = dict(start)
    for c in parts:
        for ch in c.changes:
            knobs[ch.field] = ch.new
    return _Candidate(
        label="COMBINED(" + "+".join(c.label for c in parts) + ")",
        origin="COMBINED",
        knobs=knobs,
        changes=[ch for c in parts for ch in c.changes],
        markers=[m for c in parts for m in c.markers],
        fallback=any(c.fallback for c in parts),
    )


def _merge_winners(
    winners: Sequence[_Candidate],
    start: Mapping[str, float],
    history: Sequence[Mapping[str, Any]],
    rp: _Replays,
    segs: Sequence[int],
    base: Mapping[int, float | None],
    all_segs: Sequence[int],
) -> tuple[_Candidate | None, _Candidate | None, set[int]]:
    """(the adopted candidate, the merge replayed if any, ids of the adopted candidates): the best
    winner, or the merge of the winners on disjoint fields when it beats that one."""
    chosen: _Candidate | None = winners[0] if winners else None
    merged: _Candidate | None = None
    parts = disjoint_parts(winners) if len(winners) >= 2 else []
    if len(parts) >= 2:
        merged = merged_candidate(parts, start)
        past = _past_evidence(history, start).get(knob_key(merged.knobs), {})
        merged.past = {s: g for s, g in past.items() if s not in all_segs}
        rp.run_batch([(merged, segs)])
        assert chosen is not None
        if merged.gain(base)[0] > chosen.gain(base)[0]:
            chosen = merged
        else:
            parts = []
    adopted = set(map(id, parts)) | ({id(chosen)} if chosen is not None else set())
    return chosen, merged, adopted


def _trial_row(
    c: _Candidate,
    segs: Sequence[int],
    base_knobs: Mapping[str, float],
    base_score_bps: Mapping[int, float | None],
    base_raw: Mapping[int, Replay],
    *,
    earlier_segments: list[int],
    gain_bps: float | None,
    evidence_segments: int,
    adopted: bool,
    own: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """One entry of a decision's ``trials`` (metrics.jsonl): ``c`` on those of ``segs`` it replayed."""
    on = [s for s in segs if s in c.nets]
    row: dict[str, Any] = {
        "candidate": c.label,
        "origin": c.origin,
        "changes": [ch.as_dict() for ch in c.changes],
        "knobs": dict(c.knobs),
        "base_knobs": dict(base_knobs),
        "segments": on,
        "score": SCORE_NAME,
        "score_bps": [c.raw[s][0] for s in on],
        "base_score_bps": [base_score_bps[s] for s in on],
        "fills": [c.raw[s][1] for s in on],
        "base_fills": [base_raw[s][1] for s in on],
        "earlier_segments": earlier_segments,
        "gain_bps": gain_bps,
    }
    row.update(own or {})
    row["evidence_segments"] = evidence_segments
    row["adopted"] = adopted
    return row


def _record_trials(
    decision: TuneDecision,
    cands: Sequence[_Candidate],
    segs: Sequence[int],
    base: Mapping[int, float | None],
    base_raw: Mapping[int, Replay],
    start: Mapping[str, float],
    adopted: set[int],
) -> dict[str, tuple[float, int]]:
    """Every candidate replayed into the decision's trials and a COUNTERFACTUAL marker; returns
    the probes' (mean gain, evidence segments) and marks the inert ones."""
    probe_gain: dict[str, tuple[float, int]] = {}
    for c in cands:
        if not c.nets:
            continue
        g, n = c.gain(base)
        decision.trials.append(
            _trial_row(
                c,
                segs,
                start,
                base,
                base_raw,
                earlier_segments=sorted(c.past),
                gain_bps=g if math.isfinite(g) else None,
                evidence_segments=n,
                adopted=id(c) in adopted,
            )
        )
        decision.markers.append(
            f"| autotune | COUNTERFACTUAL | cand={c.label} segs={n} score={SCORE_NAME} "
            f"gain_bps={f'{g:+.3f}' if math.isfinite(g) else 'n/a'} adopted={int(id(c) in adopted)} |"
        )
        if c.origin == "PROBE":
            inert = all(c.raw[s] == base_raw[s] for s in c.nets)
            note_probe(decision, probe_gain, c, (g, n), inert)
    return probe_gain


def note_probe(
    decision: TuneDecision,
    probe_gain: dict[str, tuple[float, int]],
    c: _Candidate,
    evidence: tuple[float, int],
    inert: bool,
) -> None:
    """A probe's (gain, segments) into ``probe_gain`` under its probe key (the far probe's evidence
    sets the probe's state; a near probe's counts only where the far one has none), and a far
    probe whose replays equal the base's (``inert``) into the decision's inert probes."""
    key = c.probe_key()
    if not c.near or key not in probe_gain:
        probe_gain[key] = evidence
    if inert and not c.near:
        decision.inert.append(key)


def _next_probe_state(
    decision: TuneDecision,
    history: Sequence[Mapping[str, Any]],
    probe_gain: Mapping[str, tuple[float, int]],
    floor_bps: float,
) -> dict[str, dict[str, Any]]:
    """Probe state for the next decision: a clear loser halves its distance, others keep it."""
    state: Mapping[str, Any] = (history[-1].get("probe_state") if history else None) or {}
    adoptions = sum(1 for e in history if e.get("changes"))
    new_state = {k: dict(v) for k, v in state.items()}
    for key, (g, n) in probe_gain.items():
        st = new_state.setdefault(key, {"fraction": 1.0, "gain_bps": None})
        if n >= 2 and g < -adopt_floor(n, floor_bps):
            st["fraction"] = max(float(st["fraction"] or 1.0) * 0.5, PROBE_MIN_FRACTION)
        st["gain_bps"] = g if math.isfinite(g) else None
        st["screened_at"] = len(history)
        st["adoptions_at"] = adoptions
        if key in decision.inert:
            st["inert_at"] = len(history)
    return dict(sorted(new_state.items()))


def _adopt(decision: TuneDecision, chosen: _Candidate) -> None:
    decision.knobs = dict(chosen.knobs)
    decision.changes = list(chosen.changes)
    decision.fallback = chosen.fallback
    decision.markers.extend(chosen.markers)
    decision.applied = list(dict.fromkeys(ch.rule for ch in chosen.changes))


def _fill_search(
    decision: TuneDecision,
    cands: Sequence[_Candidate],
    rp: _Replays,
    all_segs: Sequence[int],
    base_raw: Mapping[int, Replay],
    budget: int,
) -> None:
    """The current knobs made fewer than ``MIN_PAIR_FILLS`` fills on every kept segment: no paired
    evidence. Every candidate is replayed on the kept segments (latest first, within ``budget``)
    and judged on its own score: the best mean score among those with evidence (enough fills) on
    at least ``min(MIN_ADOPT_SEGMENTS, segments kept)`` segments is adopted, unless the current
    knobs' own (thin) score is higher. A quoter that does not fill earns nothing and measures
    nothing; one that fills can be tuned from there on paired evidence."""
    fills = ",".join(str(base_raw[s][1] if base_raw[s][1] is not None else 0) for s in all_segs)
    decision.evidence = (
        f"the current knobs made fewer than {MIN_PAIR_FILLS} fills on each of the "
        f"{len(all_segs)} kept segments (fills {fills}): no paired evidence; probing for knobs "
        "that fill"
    )
    decision.markers.append(f"| autotune | EVIDENCE | {decision.evidence} |")
    # segment by segment, latest first: every candidate, then those that filled so far (if any)
    alive = list(cands)
    for s in all_segs:
        batch: list[tuple[_Candidate, Sequence[int]]] = []
        planned = rp.used
        for c in alive:
            k = rp.cost(c, [s])
            if planned + k > budget:
                continue
            planned += k
            batch.append((c, [s]))
        rp.run_batch(batch)
        filled = [c for c, _ in batch if any(v is not None for v in c.nets.values())]
        alive = filled or [c for c, _ in batch]
    need = min(MIN_ADOPT_SEGMENTS, len(all_segs))
    thin = [v for v, _ in base_raw.values() if v is not None]
    bar = sum(thin) / len(thin) if thin else -math.inf

    def own(c: _Candidate) -> tuple[float, int]:
        ok = [v for v in c.nets.values() if v is not None]
        return (sum(ok) / len(ok), len(ok)) if ok else (-math.inf, 0)

    eligible = [c for c in cands if own(c)[1] >= need and own(c)[0] > bar]
    chosen = max(eligible, key=lambda c: own(c)[0], default=None)  # first of equals
    for c in cands:
        if not c.nets:
            continue
        score, n = own(c)
        decision.trials.append(
            _trial_row(
                c,
                all_segs,
                decision.knobs,
                {s: v for s, (v, _) in base_raw.items()},
                base_raw,
                earlier_segments=[],
                gain_bps=None,
                evidence_segments=n,
                adopted=c is chosen,
                own={"own_score_bps": score if math.isfinite(score) else None},
            )
        )
        decision.markers.append(
            f"| autotune | COUNTERFACTUAL | cand={c.label} segs={n} score={SCORE_NAME} "
            f"own_score_bps={f'{score:+.3f}' if math.isfinite(score) else 'n/a'} "
            f"adopted={int(c is chosen)} |"
        )
    if chosen is not None:
        _adopt(decision, chosen)
