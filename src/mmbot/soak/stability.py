"""The frozen stability soak's figures (`mmbot soak --freeze`): how steady fixed overrides are.

Owns what the seed's "freeze overrides, run 24h soak for stability" step reports: net_bps per
iteration and its dispersion, whether the knobs stayed what they were (checked, not assumed), the
drawdown of the cumulative net PnL (sampled at iteration ends) and which iterations breached a hard
gate. Pure functions over the soak's per-iteration rows (soak_metrics.json ``per_iteration``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from mmbot.knobs import knob_order
from mmbot.numfmt import finite

# A frozen soak's default iteration length: the seed's 3 h / 6 iterations cadence.
FREEZE_ITERATION_HOURS: Final[float] = 0.5


def freeze_iterations(hours: float) -> int:
    """Iterations of a frozen soak of ``hours`` when none are given: one per half hour."""
    return max(1, math.ceil(float(hours) / FREEZE_ITERATION_HOURS - 1e-9))


def _finite(v: Any) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v)):
        return float(v)
    return None


def dispersion(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, mean, sample standard deviation, min, max of ``values``."""
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"n": n, "mean": mean, "std": std, "min": min(values), "max": max(values)}


def max_drawdown(pnl_per_iteration: Sequence[float]) -> dict[str, Any]:
    """Largest peak-to-trough fall of the cumulative PnL (quote), with the iterations it spans
    (peak 0 = the start, before iteration 1)."""
    cum = peak = dd = 0.0
    peak_at = from_it = to_it = 0
    for i, p in enumerate(pnl_per_iteration, start=1):
        cum += p
        if cum > peak:
            peak, peak_at = cum, i
        if peak - cum > dd:
            dd, from_it, to_it = peak - cum, peak_at, i
    return {"quote": dd, "from_iteration": from_it, "to_iteration": to_it, "final_quote": cum}


def stability_report(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The stability figures of a soak's per-iteration rows."""
    nets = [v for v in (_finite(r["metrics"].get("net_bps")) for r in rows) if v is not None]
    pnl = [_finite(r["metrics"].get("pnl")) or 0.0 for r in rows]
    turnover = sum(_finite(r["metrics"].get("turnover")) or 0.0 for r in rows)
    names = knob_order(rows[0]["knobs"]) if rows else ()
    start = {k: float(rows[0]["knobs"][k]) for k in names}
    moved = sorted({k for r in rows for k in names if float(r["knobs"][k]) != start[k]})
    dd = max_drawdown(pnl)
    dd["bps_of_turnover"] = dd["quote"] / turnover * 1e4 if turnover > 0 else None
    breaches = {int(r["iteration"]): list(r.get("failed_hard") or []) for r in rows}
    return {
        "iterations": len(rows),
        "net_bps_per_iteration": [_finite(r["metrics"].get("net_bps")) for r in rows],
        "net_bps_dispersion": dispersion(nets),
        "iterations_without_net": len(rows) - len(nets),
        "knobs": start,
        "knobs_unchanged": not moved,
        "knobs_moved": moved,
        "drawdown": dd,
        "iterations_breaching_hard": sorted(i for i, f in breaches.items() if f),
        "hard_breaches": {i: f for i, f in sorted(breaches.items()) if f},
    }


def text_lines(s: Mapping[str, Any]) -> list[str]:
    """Console / summary.txt lines (``| stability | ... |``)."""
    d, dd = s["net_bps_dispersion"], s["drawdown"]
    br = s["iterations_breaching_hard"]
    return [
        f"| stability | NET_BPS | iterations={s['iterations']} mean={finite(d['mean'])} "
        f"std={finite(d['std'])} min={finite(d['min'])} max={finite(d['max'])} |",
        f"| stability | KNOBS | unchanged={'yes' if s['knobs_unchanged'] else 'NO: ' + ','.join(s['knobs_moved'])} |",
        f"| stability | DRAWDOWN | max_quote={finite(dd['quote'], 2)} "
        f"bps_of_turnover={finite(dd['bps_of_turnover'])} "
        f"iterations={dd['from_iteration']}..{dd['to_iteration']} (sampled at iteration ends) |",
        f"| stability | HARD_GATE | iterations_breaching={len(br)}/{s['iterations']}"
        f"{' (' + ','.join(str(i) for i in br) + ')' if br else ''} |",
    ]


def markdown(s: Mapping[str, Any]) -> str:
    """The '## Stability (frozen overrides)' section of SOAK_RESULTS.md."""
    lines = ["## Stability (frozen overrides)", ""]
    lines += [f"- {ln.strip('| ').replace(' | ', ': ', 1)}" for ln in text_lines(s)]
    if s["hard_breaches"]:
        lines += ["", "| iter | hard checks failed |", "|---:|---|"]
        lines += [f"| {i} | {', '.join(f)} |" for i, f in s["hard_breaches"].items()]
    return "\n".join(lines) + "\n"
