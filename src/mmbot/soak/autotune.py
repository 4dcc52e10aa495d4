"""The soak auto-tuner's public face: one iteration's EDGE_REPORT (and replays of the market
played so far) -> the next iteration's knobs.

Three modules do the work; this one names what the soak and the reports use:

- `mmbot.soak.autotune_rules`: the seed's hypotheses H1-H5 plus H6 (a spread probe) as a rule
  table (`RULES`), its guards (fallback, calm-down, muting, hysteresis, caps, limits) and `tune`,
  which decides from the report alone as DESIGN.md lists; `select_best` (keep-best by net_bps).
- `mmbot.soak.autotune_counterfactual`: `counterfactual_tune`, which replays the rules' proposal
  and single-knob probes on every kept market segment and adopts only what beats the current knobs
  above the noise.
- `mmbot.soak.autotune_keep_best`: `select_best_common` (keep-best on common market).
- `mmbot.soak.autotune_chained`: `chained_tune` and `select_best_chained`, the evidence for a knob
  set with quoter knobs (`uses_chained`): every candidate replayed over all kept segments in order,
  carrying its own position, scored by net_bps over them.
- `mmbot.soak.autotune_grid`: the knobs' grid (`snap`, `fmt_knob`, `knob_key`) and
  `tunable_knobs` (the knobs the soak's quoter reads: the tuner never proposes another one).

The measurements behind the constants (noise floors, the replay score) are in docs/autotune.md.
"""

from __future__ import annotations

from mmbot.knobs import is_quoter_knob
from mmbot.soak.autotune_chained import (
    CHAIN_BUDGET,
    CHAIN_MIN_GAIN_BPS,
    CHAIN_OBJECTIVES,
    MIN_CHAIN_FILLS,
    chain_score_name,
    chained_tune,
    select_best_chained,
)
from mmbot.soak.autotune_counterfactual import (
    MAX_KEPT_SEGMENTS,
    MIN_ADOPT_SEGMENTS,
    NOISE_FLOOR_BPS,
    NOISE_Z,
    REPLAY_BUDGET,
    REPLAYS_PER_QUOTER_KNOB,
    SCORE_BETA,
    SCORE_NAME,
    SCORE_TAU_S,
    Evaluate,
    adopt_floor,
    counterfactual_tune,
    noise_floor,
    pooled_gain_sd,
    replay_budget,
)
from mmbot.soak.autotune_grid import (
    KNOB_STEP,
    QUOTER_KNOB_STEP,
    fmt_knob,
    knob_key,
    knob_step,
    normalise_knobs,
    snap,
    tunable_knobs,
)
from mmbot.soak.autotune_keep_best import (
    KEEP_BEST_MARGIN_BPS,
    common_score,
    keep_best_margin,
    select_best_common,
)
from mmbot.soak.autotune_probes import INERT_DECISIONS, probe_value
from mmbot.soak.autotune_rules import (
    CALM_DOWN_TRIGGERS,
    FALLBACK_NEG_STREAK,
    HYSTERESIS_ITERS,
    INEFFECTIVE_WINDOW,
    MAX_CHANGES_PER_FIELD,
    MAX_SPREAD_STEP_BPS,
    RULES,
    RULES_BY_NAME,
    Change,
    Clause,
    Delta,
    Rule,
    TuneDecision,
    history_entry,
    metric_value,
    negative_streak,
    probe_target,
    rule_cost,
    rule_fires,
    rule_severity,
    rule_table,
    select_best,
    tune,
)


def uses_chained(knobs: dict[str, float]) -> bool:
    """Whether a knob set is tuned on chained evidence (`autotune_chained`: it has quoter knobs,
    which change the fill rate tenfold) rather than paired per-segment gains (the six runtime
    knobs alone)."""
    return any(is_quoter_knob(k) for k in knobs)


__all__ = [
    "CHAIN_BUDGET",
    "CHAIN_MIN_GAIN_BPS",
    "CHAIN_OBJECTIVES",
    "MIN_CHAIN_FILLS",
    "CALM_DOWN_TRIGGERS",
    "FALLBACK_NEG_STREAK",
    "HYSTERESIS_ITERS",
    "INEFFECTIVE_WINDOW",
    "INERT_DECISIONS",
    "KEEP_BEST_MARGIN_BPS",
    "KNOB_STEP",
    "MAX_CHANGES_PER_FIELD",
    "MAX_KEPT_SEGMENTS",
    "MAX_SPREAD_STEP_BPS",
    "MIN_ADOPT_SEGMENTS",
    "NOISE_FLOOR_BPS",
    "NOISE_Z",
    "QUOTER_KNOB_STEP",
    "REPLAYS_PER_QUOTER_KNOB",
    "REPLAY_BUDGET",
    "RULES",
    "RULES_BY_NAME",
    "SCORE_BETA",
    "SCORE_NAME",
    "SCORE_TAU_S",
    "Change",
    "Clause",
    "Delta",
    "Evaluate",
    "Rule",
    "TuneDecision",
    "adopt_floor",
    "chain_score_name",
    "chained_tune",
    "common_score",
    "counterfactual_tune",
    "fmt_knob",
    "history_entry",
    "keep_best_margin",
    "knob_key",
    "knob_step",
    "metric_value",
    "negative_streak",
    "noise_floor",
    "normalise_knobs",
    "pooled_gain_sd",
    "probe_target",
    "probe_value",
    "replay_budget",
    "rule_cost",
    "rule_fires",
    "rule_severity",
    "rule_table",
    "select_best",
    "select_best_chained",
    "select_best_common",
    "snap",
    "tunable_knobs",
    "uses_chained",
    "tune",
]
