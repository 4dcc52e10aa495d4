"""What a sweep maximises: objective names, their values from a trial's EDGE_REPORT and records,
and the KPI row every trial contributes to the results table.

Objectives (all maximised; several make a multi-objective study):

- ``net_bps_before_rebates`` (default): net edge in bps of turnover without the maker rebates, so
  a quoter is not chosen for collecting rebates the venue may change. EDGE_REPORT's
  ``totals.net_bps_before_rebates`` when the report carries it; until then computed here from the
  fills: (pnl - rebates received) / turnover (fees paid stay in; identical to net minus the fee
  component when every fill is a rebated maker fill);
- ``net_bps``: net edge with rebates;
- ``equity``: PnL in quote currency, marked at the final mid;
- ``risk_adj``: t-statistic of the per-minute equity changes, mean / std * sqrt(n) (PnL per unit
  of its own noise; dimensionless, comparable across folds of different lengths only roughly).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from mmbot.audit.edge_report import HEADLINE_KEYS
from mmbot.errors import UserError
from mmbot.records import RunResult

OBJECTIVES: Final[tuple[str, ...]] = ("net_bps_before_rebates", "net_bps", "equity", "risk_adj")
DEFAULT_OBJECTIVE: Final[str] = "net_bps_before_rebates"
RISK_BUCKET_NS: Final[int] = 60_000_000_000
# EDGE_REPORT totals copied into the results table (missing/None -> NaN)
KPI_KEYS: Final[tuple[str, ...]] = (
    *HEADLINE_KEYS,
    "maker_share_pct",
    "cancel_ratio",
    "order_age_p95_ms",
    "fills",
    "turnover",
    "pnl",
)


def parse_objectives(names: Sequence[str]) -> tuple[str, ...]:
    """``--objective`` values (repeatable, or comma-separated) checked against OBJECTIVES."""
    out: list[str] = []
    for raw in names or (DEFAULT_OBJECTIVE,):
        for name in str(raw).split(","):
            name = name.strip()
            if not name:
                continue
            if name not in OBJECTIVES:
                raise UserError(f"--objective {name!r}: expected one of {', '.join(OBJECTIVES)}")
            if name in out:
                raise UserError(f"--objective {name!r} given twice")
            out.append(name)
    if not out:
        raise UserError("--objective: at least one objective is needed")
    return tuple(out)


def rebates_quote(results: Sequence[RunResult]) -> float:
    """Maker rebates received over the runs (quote currency, >= 0): minus the negative fees."""
    total = 0.0
    for r in results:
        fee = r.fills["fee"].astype(np.float64)
        total += float(-fee[fee < 0].sum())
    return total


def equity_curve(result: RunResult) -> tuple[np.ndarray, np.ndarray]:
    """(exch_ts, equity) at every mark: cash from the fills up to it + position x mid."""
    marks = np.sort(result.marks, order="exch_ts")
    marks = marks[np.isfinite(marks["mid_px"])]
    fills = np.sort(result.fills, order="exch_ts")
    flow = -(fills["side"].astype(np.float64) * fills["px"] * fills["qty"]) - fills["fee"]
    cash = np.concatenate([[0.0], np.cumsum(flow)])
    idx = np.searchsorted(fills["exch_ts"], marks["exch_ts"], side="right")
    eq = cash[idx] + marks["position_qty"] * marks["mid_px"]
    return marks["exch_ts"].astype(np.int64), eq


def risk_figures(results: Sequence[RunResult]) -> dict[str, float]:
    """risk_adj (t-stat of per-minute equity changes) and max drawdown (quote) over the runs."""
    steps: list[np.ndarray] = []
    max_dd = 0.0
    for r in results:
        ts, eq = equity_curve(r)
        if len(ts) < 2:
            continue
        grid = np.arange(int(ts[0]), int(ts[-1]) + RISK_BUCKET_NS, RISK_BUCKET_NS)
        at = eq[np.clip(np.searchsorted(ts, grid, side="right") - 1, 0, len(eq) - 1)]
        steps.append(np.diff(at))
        max_dd = max(max_dd, float((np.maximum.accumulate(eq) - eq).max()))
    d = np.concatenate(steps) if steps else np.zeros(0)
    sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    risk_adj = float(d.mean() / sd * math.sqrt(len(d))) if sd > 0 else 0.0
    return {"risk_adj": risk_adj, "max_drawdown": max_dd}


def kpis(edge: Mapping[str, Any], results: Sequence[RunResult]) -> dict[str, float]:
    """The results table's KPI columns of one trial (NaN where the report has no value)."""
    tot = edge["totals"]
    row = {k: _num(tot.get(k)) for k in KPI_KEYS}
    if tot.get("net_bps_before_rebates") is not None:
        row["net_bps_before_rebates"] = _num(tot["net_bps_before_rebates"])
    else:
        turnover = row["turnover"]
        pnl_ex = row["pnl"] - rebates_quote(results)
        row["net_bps_before_rebates"] = pnl_ex / turnover * 1e4 if turnover > 0 else math.nan
    row["equity"] = row["pnl"]
    row.update(risk_figures(results))
    return row


def objective_values(row: Mapping[str, float], objectives: Sequence[str]) -> list[float]:
    return [float(row[name]) for name in objectives]


def _num(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return math.nan
    return float(v)
