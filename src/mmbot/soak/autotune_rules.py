"""The auto-tuner's rules: the seed's hypotheses H1-H5 and H6 as a rule table, their guards, and
`tune` (one iteration's EDGE_REPORT -> the next knobs, as DESIGN.md lists).

H6 is one rule beyond the seed (a spread probe: while net is below the hard gate, try base_spread
one step either side of the best spread measured so far, never revisiting a tested value). The
rule table (`RULES`) is data, not code paths; the guards around it apply in this order:

1. **fallback**: two consecutive iterations with net_bps < 0 (counted since the last fallback)
   replace the knobs with `knobs.fallback_package(current)`; no rule runs in that iteration.
2. **rules**: every rule whose condition holds over ``report["totals"]`` fires; its deltas scale
   from the low to the high end of the seed's range with how far the metric is past the threshold.
3. **calm-down** (the seed's multi-fail guard): 3+ rules firing in one iteration keep only the
   calm (conservative) rules, each at the low end of its range.
4. **ineffective rules are muted**: a rule whose latest application (within
   ``INEFFECTIVE_WINDOW`` iterations) did not reduce the cost it targets (its ``effect``)
   does not fire; this stops a rule whose premise does not hold on the market from ratcheting its
   fields to a limit (e.g. a longer min_interval does not reduce min_interval blocks on our guard).
5. **hysteresis**: a field moved one way by the tuner cannot move back within ``HYSTERESIS_ITERS``
   iterations unless the rule demanding it is a hard driver (a cost driver, not an optimisation).
6. **caps and limits**: at most ``MAX_CHANGES_PER_FIELD`` changes per field per iteration,
   base_spread_bps_delta at most +``MAX_SPREAD_STEP_BPS`` per iteration, everything clamped to
   ``knobs.RUNTIME_LIMITS``.
7. **what the quoter reads**: a field outside ``tunable`` (`autotune_grid.tunable_knobs`: the
   knobs the soak's quoter reads) is never moved; the rule's change of it is skipped
   (``why: not_read``), as is the fallback package's.

The rule table moves only the six runtime knobs; quoter knobs (``param.NAME``) are moved by the
counterfactual probes (`mmbot.soak.autotune_counterfactual`). `select_best` is keep-best rollback
by measured net_bps over the iteration history. Everything here is a pure function of its
arguments: no I/O, no clocks, no randomness.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from mmbot.knobs import fallback_package, knob_order
from mmbot.soak.autotune_grid import fmt_knob, may_move, normalise_knobs, snap

MAX_CHANGES_PER_FIELD: Final[int] = 2
MAX_SPREAD_STEP_BPS: Final[float] = 0.10
HYSTERESIS_ITERS: Final[int] = 2
# The rule name of the changes that walk back to an earlier set that ran
# (`autotune_chained._best_set_so_far`); hysteresis does not count them as moves.
REVERT_RULE: Final[str] = "REVERT"
INEFFECTIVE_WINDOW: Final[int] = 3  # iterations a rule stays muted after failing to help
CALM_DOWN_TRIGGERS: Final[int] = 3
FALLBACK_NEG_STREAK: Final[int] = 2

# Per-field delta steps are rounded to these increments (the seed's ranges are multiples of them).
DELTA_QUANTUM: Final[dict[str, float]] = {
    "min_interval_ms": 10.0,
    "replace_rate_per_min": 10.0,
    "base_spread_bps_delta": 0.01,
    "tail_age_ms": 10.0,
    "impact_cap_ratio": 0.01,
    "max_delta_ratio": 0.01,
}

_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}


# ---------------------------------------------------------------------------------------------
# The rule table (data)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clause:
    """``metric op threshold`` over EDGE_REPORT totals.

    ``metric`` is a key of ``totals``, a dotted path into it (``block_reasons.min_interval.ratio``),
    or the derived ``top_neg_driver`` (name of the first entry of ``neg_edge_drivers``, compared
    with ``==`` against a string threshold). A missing or non-finite metric makes the clause false:
    a rule never fires on data it does not have.
    """

    metric: str
    op: str
    threshold: float | str


@dataclass(frozen=True)
class Delta:
    """A field change of ``lo``..``hi`` (signed; same sign), scaled by the rule's severity."""

    field: str
    lo: float
    hi: float


@dataclass(frozen=True)
class Severity:
    """How far past its threshold a rule fires: 0..1 = (metric - start) / (full - start), clipped;
    0 -> the lo end of each delta, 1 -> the hi end (full < start where lower is worse)."""

    metric: str
    start: float
    full: float


@dataclass(frozen=True)
class Effect:
    """What a rule is meant to reduce (a cost: higher is worse), sign-adjusted: cost = sign * metric;
    a rule whose last application did not reduce it is muted (see `tune`, step 4)."""

    metric: str
    sign: float = 1.0


@dataclass(frozen=True)
class Rule:
    name: str  # H1..H6
    marker: str  # the seed's marker tag, e.g. DRIVER:slippage_bps, AGE_RELIEF
    any_of: tuple[tuple[Clause, ...], ...]  # fires when all clauses of at least one group hold
    deltas: tuple[Delta, ...]
    severity: Severity | None  # None: every delta at its lo end
    calm: bool  # kept by the calm-down guard (moves every field in the conservative direction)
    hard: bool  # a cost driver: may override hysteresis
    priority: int  # lower runs first (and wins the per-field change cap)
    why: str
    effect: Effect | None = None  # None: never muted
    # a probe rule has one delta whose size is the step; its direction and target come from the
    # history of (value, net_bps) pairs (see `probe_target`), not from the sign of the delta
    probe: bool = False


# One rule a row: name, marker, when (any_of), deltas, severity, guard flags, why, effect.
# fmt: off
RULES: Final[tuple[Rule, ...]] = (
    Rule("H1", "DRIVER:slippage_bps", calm=True, hard=True, priority=1,
         any_of=(
             # slippage is the top negative driver and a real cost (seed: slippage > +1.0 cost;
             # our totals are contributions, so a cost is a negative slippage_bps)
             (Clause("top_neg_driver", "==", "slippage_bps"), Clause("slippage_bps", "<", -1.0)),
             # or the per-fill slippage cost tail is above the ideal gate (3.0)
             (Clause("slippage_bps_p95", ">", 3.0),),
         ),
         deltas=(Delta("base_spread_bps_delta", 0.02, 0.05), Delta("tail_age_ms", 50.0, 100.0),
                 Delta("min_interval_ms", 20.0, 40.0)),
         severity=Severity("slippage_bps_p95", 3.0, 6.0), effect=Effect("slippage_bps", -1.0),
         why="stale quotes fill worse than target: widen, refresh less eagerly, act less often"),
    # H2 is judged on the mean markout cost: per-fill markouts come in tick steps on a wide-tick
    # market, so the p95 that triggers the rule barely moves with size
    Rule("H2", "DRIVER:adverse_bps", calm=True, hard=True, priority=2,
         any_of=((Clause("adverse_bps_p95", ">", 4.0),),),
         deltas=(Delta("impact_cap_ratio", -0.02, -0.04), Delta("max_delta_ratio", -0.02, -0.04)),
         severity=Severity("adverse_bps_p95", 4.0, 8.0), effect=Effect("adverse_bps"),
         why="picked off by informed flow: smaller size, less tightening"),
    Rule("H3", "DRIVER:block_minint", calm=True, hard=True, priority=3,
         any_of=((Clause("block_reasons.min_interval.ratio", ">", 0.4),),),
         deltas=(Delta("min_interval_ms", 20.0, 40.0),), why="most actions hit min_interval: space them out",
         severity=Severity("block_reasons.min_interval.ratio", 0.4, 0.8), effect=Effect("block_reasons.min_interval.ratio")),
    Rule("H4", "DRIVER:block_concurrency", calm=True, hard=True, priority=4,
         any_of=((Clause("block_reasons.concurrency.ratio", ">", 0.3),),),
         deltas=(Delta("replace_rate_per_min", -30.0, -60.0),), why="too many in-flight actions: replace less often",
         severity=Severity("block_reasons.concurrency.ratio", 0.3, 0.7), effect=Effect("block_reasons.concurrency.ratio")),
    Rule("H5", "AGE_RELIEF", calm=False, hard=False, priority=5, severity=None,
         any_of=((Clause("order_age_p95_ms", ">", 330.0), Clause("adverse_bps_p95", "<=", 4.0),
                  Clause("slippage_bps_p95", "<=", 3.0)),),
         deltas=(Delta("min_interval_ms", -10.0, -10.0), Delta("replace_rate_per_min", 30.0, 30.0)),
         why="execution is healthy but orders are old: act faster", effect=Effect("order_age_p95_ms")),
    # Beyond the seed: the seed's rules move base_spread only on a slippage driver (and only
    # wider), yet it is the knob that moves net most, in a direction that depends on the market
    # (on a ~1 bps tick a fraction of a bps changes the passive rounding of the quote). H6 is a
    # bracketing search on it while net is below the hard gate: one step from the best spread
    # measured so far, first in the direction that last helped, never to a tested value; when both
    # neighbours are tested it returns to the best and stays. It cannot oscillate, so hysteresis
    # does not apply to it (hard), and the calm-down guard drops it (it may narrow).
    Rule("H6", "SPREAD_PROBE", calm=False, hard=True, priority=6, severity=None, probe=True,
         any_of=((Clause("net_bps", "<", 2.5),),), deltas=(Delta("base_spread_bps_delta", 0.10, 0.10),),
         why="net below the hard gate: search the spread around the best one measured"),
)
# fmt: on
RULES_BY_NAME: Final[dict[str, Rule]] = {r.name: r for r in RULES}


# ---------------------------------------------------------------------------------------------
# Decision records
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    field: str
    old: float
    new: float
    rule: str  # H1..H5 or FALLBACK

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "from": self.old, "to": self.new, "rule": self.rule}


@dataclass
class TuneDecision:
    knobs: dict[str, float]  # the knobs for the next iteration
    changes: list[Change] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)  # the seed's stdout marker lines
    fired: list[str] = field(default_factory=list)  # rules whose condition held
    applied: list[str] = field(default_factory=list)  # rules that changed at least one field
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {rule, field, why}
    fallback: bool = False
    calm_down: bool = False
    # counterfactual validation (see `counterfactual_tune`): every candidate replayed, in order
    trials: list[dict[str, Any]] = field(default_factory=list)
    inert: list[str] = field(default_factory=list)  # "field:+" probes that changed nothing
    # per "field:+/-": distance fraction and last measured gain of that probe (see _probe_candidates)
    probe_state: dict[str, dict[str, float | None]] = field(default_factory=dict)
    validated: bool = False
    # why the counterfactual evidence is not the usual (e.g. no fills on the latest segment)
    evidence: str = ""

    def skip(self, rule: str, name: str, why: str) -> None:
        """Record a change not made: ``rule`` on field ``name`` ("*": all its fields), and why."""
        self.skipped.append({"rule": rule, "field": name, "why": why})

    def as_dict(self) -> dict[str, Any]:
        out = {
            "knobs": dict(sorted(self.knobs.items())),
            "changes": [c.as_dict() for c in self.changes],
            "markers": list(self.markers),
            "fired": list(self.fired),
            "applied": list(self.applied),
            "skipped": list(self.skipped),
            "fallback": self.fallback,
            "calm_down": self.calm_down,
        }
        if self.validated:
            out["validated"] = True
            out["trials"] = [dict(t) for t in self.trials]
            out["inert"] = list(self.inert)
            out["probe_state"] = {k: dict(v) for k, v in self.probe_state.items()}
        if self.evidence:
            out["evidence"] = self.evidence
        return out


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def _driver_name(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping):
        for key in ("name", "driver", "component", "metric"):
            v = entry.get(key)
            if isinstance(v, str):
                return v
    if isinstance(entry, list | tuple) and entry and isinstance(entry[0], str):
        return entry[0]
    return None


def _normalise_driver(name: str) -> str:
    # accept "slippage" and "slippage_bps" alike
    return name if name.endswith("_bps") else f"{name}_bps"


def metric_value(totals: Mapping[str, Any], metric: str) -> float | str | None:
    """Look a clause metric up in EDGE_REPORT totals (None when absent or not a finite number)."""
    if metric == "top_neg_driver":
        drivers = totals.get("neg_edge_drivers") or []
        if not isinstance(drivers, list | tuple) or not drivers:
            return None
        name = _driver_name(drivers[0])
        return _normalise_driver(name) if name else None
    node: Any = totals
    for part in metric.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    v = float(node)
    return v if math.isfinite(v) else None


def clause_holds(totals: Mapping[str, Any], clause: Clause) -> bool:
    v = metric_value(totals, clause.metric)
    if v is None:
        return False
    if isinstance(clause.threshold, str) or isinstance(v, str):
        return clause.op == "==" and v == clause.threshold
    return _OPS[clause.op](v, float(clause.threshold))


def rule_fires(totals: Mapping[str, Any], rule: Rule) -> bool:
    return any(all(clause_holds(totals, c) for c in group) for group in rule.any_of)


def rule_severity(totals: Mapping[str, Any], rule: Rule) -> float:
    sev = rule.severity
    if sev is None:
        return 0.0
    v = metric_value(totals, sev.metric)
    if not isinstance(v, float):
        return 0.0
    span = sev.full - sev.start  # negative when lower values are worse
    return min(max((v - sev.start) / span, 0.0), 1.0) if span != 0 else 0.0


def rule_cost(totals: Mapping[str, Any], rule: Rule) -> float | None:
    """The cost the rule is meant to reduce (higher is worse), None when not measurable."""
    if rule.effect is None:
        return None
    v = metric_value(totals, rule.effect.metric)
    return rule.effect.sign * v if isinstance(v, float) else None


def ineffective(
    totals: Mapping[str, Any], rule: Rule, history: Sequence[Mapping[str, Any]]
) -> tuple[float, float] | None:
    """(cost before, cost after) when the rule's latest application within ``INEFFECTIVE_WINDOW``
    iterations did not reduce its cost; None otherwise (never applied, or it helped).

    "After" is the iteration that ran with the change (the current report when that is the one),
    so a later fallback or another rule's change does not blur the verdict."""
    hist = list(history)
    for idx in range(len(hist) - 1, max(len(hist) - INEFFECTIVE_WINDOW, 0) - 1, -1):
        entry = hist[idx]
        if any(c.get("rule") == rule.name for c in entry.get("changes", [])):
            then = (entry.get("effect") or {}).get(rule.name)
            if idx + 1 < len(hist):
                after = (hist[idx + 1].get("effect") or {}).get(rule.name)
            else:
                after = rule_cost(totals, rule)
            if not isinstance(then, int | float) or not isinstance(after, int | float):
                return None
            return (float(then), float(after)) if after >= then else None
    return None


def probe_target(
    rule: Rule, value_now: float, net_now: float, history: Sequence[Mapping[str, Any]]
) -> float:
    """Next value of a probe rule's field: one step from the best measured value, first in the
    direction of the probe that found it (else +), to a value not tested yet; the best value itself
    when both neighbours are tested (or beyond the limits)."""
    name = rule.deltas[0].field
    step = abs(rule.deltas[0].hi)
    tested: dict[float, float] = {}
    for e in list(history) + [{"knobs": {name: value_now}, "net_bps": net_now}]:
        v = round(float(e["knobs"][name]), 6)
        tested[v] = max(tested.get(v, -math.inf), _net(e))
    best_v = max(tested, key=lambda v: (tested[v], -abs(v - value_now)))
    pref = 1
    for e in reversed(list(history)):
        moves = [c for c in e.get("changes", []) if c.get("rule") == rule.name]
        if moves:
            d = 1 if float(moves[-1]["to"]) > float(moves[-1]["from"]) else -1
            pref = d if round(float(moves[-1]["to"]), 6) == best_v else -d
            break
    for d in (pref, -pref):
        cand = snap(name, best_v + d * step)
        if abs(cand - best_v) > 1e-9 and all(abs(cand - t) > 1e-9 for t in tested):
            return cand
    return snap(name, best_v)


def _scaled_delta(delta: Delta, severity: float) -> float:
    raw = delta.lo + (delta.hi - delta.lo) * severity
    q = DELTA_QUANTUM[delta.field]
    return round(round(raw / q) * q, 10)


def _totals(report: Mapping[str, Any]) -> Mapping[str, Any]:
    totals = report.get("totals", report)
    return totals if isinstance(totals, Mapping) else {}


def _net(entry: Mapping[str, Any]) -> float:
    v = entry.get("net_bps")
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v)):
        return float(v)
    return -math.inf  # no fills / no number: never "good"


def negative_streak(history: Sequence[Mapping[str, Any]], net_bps_now: float) -> int:
    """Consecutive iterations with net < 0 ending now, counted since the last fallback."""
    if not net_bps_now < 0:
        return 0
    streak = 1
    for entry in reversed(history):
        if entry.get("fallback"):
            break  # the fallback iteration's result was measured before its package took effect
        if _net(entry) < 0:
            streak += 1
        else:
            break
    return streak


def _recent_direction(history: Sequence[Mapping[str, Any]], name: str) -> int:
    """Sign of the tuner's latest move of ``name`` within the hysteresis window (0 if none)."""
    for entry in list(history)[-HYSTERESIS_ITERS:][::-1]:
        # a walk back to an earlier set is not a move onward
        moves = [
            c
            for c in entry.get("changes", [])
            if c.get("field") == name and c.get("rule") != REVERT_RULE
        ]
        if moves:
            total = float(moves[-1]["to"]) - float(moves[0]["from"])
            if total != 0:
                return 1 if total > 0 else -1
    return 0


def _spread_capped(name: str, new: float, start: Mapping[str, float]) -> float:
    """``new``, with base_spread_bps_delta held to +``MAX_SPREAD_STEP_BPS`` over its start."""
    if name == "base_spread_bps_delta":
        return min(new, snap(name, start[name] + MAX_SPREAD_STEP_BPS))
    return new


def _marker(rule: Rule, name: str, old: float, new: float) -> str:
    if rule.marker.startswith("DRIVER:") or rule.probe:
        return (
            f"| autotune | {rule.marker} | field={name} "
            f"from={fmt_knob(name, old)} to={fmt_knob(name, new)} |"
        )
    return (
        f"| autotune | {rule.marker} | {name} from={fmt_knob(name, old)} to={fmt_knob(name, new)} |"
    )


# ---------------------------------------------------------------------------------------------
# The tuner
# ---------------------------------------------------------------------------------------------
def tune(
    report: Mapping[str, Any],
    current: Mapping[str, float],
    history: Sequence[Mapping[str, Any]],
    *,
    rules: Sequence[Rule] = RULES,
    tunable: frozenset[str] | None = None,
) -> TuneDecision:
    """Next iteration's knobs from this iteration's EDGE_REPORT.

    ``current``: the knobs this iteration ran with (all six). ``history``: earlier iterations'
    entries as built by `history_entry` (oldest first; this iteration not included).
    ``tunable``: the knobs the quoter reads (`autotune_grid.tunable_knobs`; None: all of them).
    """
    totals = _totals(report)
    start = normalise_knobs(current)
    decision = TuneDecision(knobs=dict(start))
    net_now = _net(totals)
    if negative_streak(history, net_now) >= FALLBACK_NEG_STREAK:
        _apply_fallback(decision, start, tunable)
        return decision
    fired = _active_rules(decision, totals, history, rules, tunable)
    state = _Moves()
    for rule in fired:
        if rule.probe:
            _apply_probe(decision, state, rule, start, net_now, history)
        else:
            severity = 0.0 if decision.calm_down else rule_severity(totals, rule)
            _apply_deltas(decision, state, rule, severity, start, history, tunable)
    return decision


def _apply_fallback(
    decision: TuneDecision, start: Mapping[str, float], tunable: frozenset[str] | None
) -> None:
    """1. The seed's conservative package replaces the knobs the quoter reads."""
    decision.fallback = True
    decision.markers.append("| autotune | FALLBACK_CONSERVATIVE | triggered=1 |")
    for name, value in fallback_package(dict(start)).items():
        new = _spread_capped(name, snap(name, value), start)
        if new == start[name]:
            continue
        if not may_move(name, tunable):
            decision.skip("FALLBACK", name, "not_read")
            continue
        decision.knobs[name] = new
        decision.changes.append(Change(name, start[name], new, "FALLBACK"))
    decision.applied.append("FALLBACK")


def _active_rules(
    decision: TuneDecision,
    totals: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    rules: Sequence[Rule],
    tunable: frozenset[str] | None,
) -> list[Rule]:
    """2.-4. The rules that fire, can move a knob the quoter reads, survive the calm-down guard
    and are not muted as ineffective (priority order)."""
    ordered = sorted(rules, key=lambda r: r.priority)
    fired = [r for r in ordered if rule_fires(totals, r)]
    decision.fired = [r.name for r in fired]
    readable = []
    for r in fired:
        if any(may_move(d.field, tunable) for d in r.deltas):
            readable.append(r)
        else:  # every field it moves is one the quoter does not read: it cannot act
            decision.skip(r.name, "*", "not_read")
    fired = readable
    if len(fired) >= CALM_DOWN_TRIGGERS:
        decision.calm_down = True
        kept = [r for r in fired if r.calm]
        decision.markers.append(
            f"| autotune | CALM_DOWN | triggers={len(fired)} "
            f"kept={','.join(r.name for r in kept) or '-'} |"
        )
        for r in fired:
            if not r.calm:
                decision.skip(r.name, "*", "calm_down")
        fired = kept
    # mute rules whose last application did not reduce what they target: without this a rule
    # whose premise does not hold on the market ratchets its fields to a limit
    active = []
    for r in fired:
        bad = ineffective(totals, r, history)
        if bad is None:
            active.append(r)
            continue
        decision.skip(r.name, "*", "ineffective")
        decision.markers.append(
            f"| autotune | INEFFECTIVE | rule={r.name} {r.effect.metric if r.effect else ''} "
            f"cost_before={bad[0]:.4g} cost_after={bad[1]:.4g} |"
        )
    return active


@dataclass
class _Moves:
    """Per-field bookkeeping of one decision: changes made and the direction taken."""

    count: dict[str, int] = field(default_factory=dict)
    direction: dict[str, int] = field(default_factory=dict)  # hard rules come first

    def record(self, name: str, direction: int) -> None:
        self.count[name] = self.count.get(name, 0) + 1
        self.direction[name] = direction


def _move(
    decision: TuneDecision, moves: _Moves, rule: Rule, name: str, old: float, new: float, sign: int
) -> None:
    """A rule moves field ``name`` from ``old`` to ``new`` (direction ``sign``): the knob, the
    bookkeeping, the marker."""
    decision.knobs[name] = new
    moves.record(name, sign)
    decision.changes.append(Change(name, old, new, rule.name))
    decision.markers.append(_marker(rule, name, old, new))


def _apply_probe(
    decision: TuneDecision,
    moves: _Moves,
    rule: Rule,
    start: Mapping[str, float],
    net_now: float,
    history: Sequence[Mapping[str, Any]],
) -> None:
    """5. A probe rule (H6): its field to `probe_target`, within the spread step cap."""
    knobs = decision.knobs
    name = rule.deltas[0].field
    if name in moves.direction:
        decision.skip(rule.name, name, "conflict")
        return
    old = knobs[name]
    new = _spread_capped(name, probe_target(rule, start[name], net_now, history), start)
    if new == old:
        decision.skip(rule.name, name, "settled")
        return
    _move(decision, moves, rule, name, old, new, 1 if new > old else -1)
    decision.applied.append(rule.name)


def _apply_deltas(
    decision: TuneDecision,
    moves: _Moves,
    rule: Rule,
    severity: float,
    start: Mapping[str, float],
    history: Sequence[Mapping[str, Any]],
    tunable: frozenset[str] | None,
) -> None:
    """5.-7. A rule's deltas with hysteresis, per-field caps, the spread step cap and limits, on
    the fields the quoter reads."""
    knobs = decision.knobs
    changed = False
    for delta in rule.deltas:
        name = delta.field
        step = _scaled_delta(delta, severity)
        if step == 0:
            continue
        direction = 1 if step > 0 else -1
        why = ""
        if not may_move(name, tunable):
            why = "not_read"
        elif moves.count.get(name, 0) >= MAX_CHANGES_PER_FIELD:
            why = "field_cap"
        elif moves.direction.get(name, direction) != direction:
            # two rules pull one field both ways in one iteration: the earlier (higher
            # priority, cost-driven) one stands
            why = "conflict"
        elif _recent_direction(history, name) == -direction and not rule.hard:
            why = "hysteresis"
        old = knobs[name]
        new = _spread_capped(name, snap(name, old + step), start)
        if not why and new == old:
            why = "at_limit"
        if why:
            decision.skip(rule.name, name, why)
            continue
        _move(decision, moves, rule, name, old, new, direction)
        changed = True
    if changed:
        decision.applied.append(rule.name)


def history_entry(
    iteration: int,
    report: Mapping[str, Any],
    knobs_used: Mapping[str, float],
    decision: TuneDecision | None,
) -> dict[str, Any]:
    """The per-iteration record `tune` reads back (also one line of metrics.jsonl)."""
    totals = _totals(report)
    net = totals.get("net_bps")
    return {
        "iteration": iteration,
        "net_bps": float(net) if isinstance(net, int | float) else None,
        "knobs": {k: float(knobs_used[k]) for k in knob_order(knobs_used)},
        "changes": [c.as_dict() for c in decision.changes] if decision else [],
        "fallback": bool(decision.fallback) if decision else False,
        "inert": list(decision.inert) if decision else [],
        "probe_state": dict(decision.probe_state) if decision else {},
        # replayed candidates: later decisions from the same knobs reuse them as evidence
        "trials": list(decision.trials) if decision else [],
        # each rule's cost metric in this iteration (what a later iteration compares against)
        "effect": {r.name: rule_cost(totals, r) for r in RULES},
    }


def select_best(history: Sequence[Mapping[str, Any]]) -> tuple[int, dict[str, float]]:
    """Keep-best rollback: (iteration, knobs) of the best tested iteration by net_bps.

    A later iteration replaces the best when it is at least as good (so, among equals, the most
    tuned one is kept). Iterations without a finite net_bps never win unless nothing else exists.
    """
    if not history:
        raise ValueError("select_best needs at least one iteration")
    best = history[0]
    for entry in history[1:]:
        if _net(entry) >= _net(best):
            best = entry
    return int(best["iteration"]), {k: float(v) for k, v in best["knobs"].items()}


def rule_table() -> list[dict[str, Any]]:
    """The rule table as plain data (for reports and the docs)."""
    out = []
    for r in RULES:
        out.append(
            {
                "name": r.name,
                "marker": r.marker,
                "when": " OR ".join(
                    ("({})" if len(r.any_of) > 1 and len(g) > 1 else "{}").format(
                        " AND ".join(f"{c.metric} {c.op} {c.threshold}" for c in g)
                    )
                    for g in r.any_of
                ),
                "deltas": {d.field: [d.lo, d.hi] for d in r.deltas},
                "calm": r.calm,
                "hard": r.hard,
                "judged_on": (
                    ("-" if r.effect.sign < 0 else "") + r.effect.metric if r.effect else None
                ),
                "why": r.why,
            }
        )
    return out
