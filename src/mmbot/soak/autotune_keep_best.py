"""Keep-best rollback on common market: at the end of a soak, every knob set that ran is replayed
on the same kept segments and the one to keep is chosen (`select_best_common`).

The latest set is kept unless an earlier one beats it by a margin that falls like a standard error
(`keep_best_margin`), and never one that scores below the start. Scores over the common segments
are weighted by fills when the evaluator reports them (`common_score`). Pure given the evaluator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from mmbot.knobs import knob_order
from mmbot.soak.autotune_counterfactual import SCORE_NAME, Evaluate
from mmbot.soak.autotune_grid import knob_key

# An earlier set must beat the latest by ``KEEP_BEST_MARGIN_BPS * sqrt(2 / n)`` on n common
# segments (docs/autotune.md).
KEEP_BEST_MARGIN_BPS: Final[float] = 0.075


def keep_best_margin(n_segments: int, margin_bps: float | None = None) -> float:
    """How much better than the latest knob set an earlier one must score on ``n_segments``
    common segments to be kept instead (falls like a standard error)."""
    m = KEEP_BEST_MARGIN_BPS if margin_bps is None else margin_bps
    return m * math.sqrt(2.0 / max(n_segments, 1))


def common_score(nets: Sequence[float | None], fills: Sequence[int | None] | None) -> float:
    """A knob set's score over the common segments. With fill counts: the segments' scores
    weighted by their fills (a per-fill figure, as net_bps weights a run by what it traded; a
    segment without fills weighs nothing, so a quoter that fills rarely is judged on the fills it
    made, not dropped); -inf without any fill. Without them: the plain mean, -inf when a segment
    has no score."""
    if fills is not None and all(f is not None for f in fills):
        pairs = [(v, f) for v, f in zip(nets, fills, strict=True) if v is not None and f]
        total = sum(f for _, f in pairs)
        return sum(v * f for v, f in pairs) / total if total > 0 else -math.inf  # type: ignore[operator]
    if nets and all(v is not None for v in nets):
        return sum(nets) / len(nets)  # type: ignore[arg-type]
    return -math.inf


def sets_that_ran(history: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The latest history entry of every distinct knob set, in iteration order."""
    latest: dict[tuple, Mapping[str, Any]] = {}
    for e in history:
        latest[knob_key(e["knobs"])] = e  # later iterations overwrite: the latest run of a set
    return sorted(latest.values(), key=lambda e: int(e["iteration"]))


def row_score(row: Mapping[str, Any]) -> float:
    """A keep-best row's score (-inf without one)."""
    return row["score_bps"] if row["score_bps"] is not None else -math.inf


def latest_unless_beaten(table: Sequence[Mapping[str, Any]], margin: float) -> Mapping[str, Any]:
    """The last row, unless an earlier one scores more than ``margin`` above the row kept so far
    (walking back from the latest)."""
    best = table[-1]
    for row in reversed(table[:-1]):
        if row_score(row) > row_score(best) + margin:
            best = row
    return best


def select_best_common(
    history: Sequence[Mapping[str, Any]],
    evaluate: Evaluate,
    segments: Sequence[int],
    *,
    margin_bps: float | None = None,
) -> tuple[int, dict[str, float], list[dict[str, Any]]]:
    """Keep-best rollback on common market: every distinct knob set that ran is replayed on the
    same ``segments`` (all kept: by the end of a soak, every iteration's) and scored there
    (`common_score`: weighted by fills when the evaluator reports them). The latest set is kept unless an earlier one beats it by more than
    `keep_best_margin` (each step of the latest set was validated already, so an earlier set that
    is merely lucky on the common segments does not win), and never one that scores below the
    start (the first iteration's knobs): then the best-scoring set is kept. Returns (iteration,
    knobs, table); the iteration is the latest one that ran the kept knobs."""
    if not history:
        raise ValueError("select_best_common needs at least one iteration")
    table = []
    ordered = sets_that_ran(history)
    prefetch = getattr(evaluate, "prefetch", None)
    if prefetch is not None:  # one batch (parallel when the evaluator can)
        prefetch([(e["knobs"], s) for e in ordered for s in segments])
    fills_of = getattr(evaluate, "fills", None)
    for e in ordered:
        nets = [evaluate(e["knobs"], s) for s in segments]
        fills = [fills_of(e["knobs"], s) for s in segments] if fills_of is not None else None
        score = common_score(nets, fills)
        table.append(
            {
                "iteration": int(e["iteration"]),
                "knobs": {k: float(e["knobs"][k]) for k in knob_order(e["knobs"])},
                "segments": list(segments),
                "score": SCORE_NAME,
                "segment_score_bps": nets,
                **({"segment_fills": fills} if fills is not None else {}),
                "score_bps": score if math.isfinite(score) else None,
            }
        )

    best = latest_unless_beaten(table, keep_best_margin(len(segments), margin_bps))
    start_key = knob_key(history[0]["knobs"])
    start_row = next(r for r in table if knob_key(r["knobs"]) == start_key)
    if row_score(best) < row_score(start_row):
        # never worse than the start on the evidence: the best-scoring set (latest among equals)
        best = max(reversed(table), key=row_score)
    for row in table:
        row["kept"] = row is best
    return int(best["iteration"]), dict(best["knobs"]), table
