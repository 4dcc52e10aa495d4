"""A sweep's results: the Parquet table, the summary (IS vs OOS per step, the chosen parameters
judged out of sample) and the chosen parameters as files the other commands accept.

The table has one row per (step, trial) in sample plus the evaluations (the step's best and the
profile's baseline, in and out of sample): columns ``step``, ``fold``, ``sample`` (is|oos),
``role`` (trial|best|baseline), ``trial``, ``state``, ``fail_reason``, one ``p.<name>`` column per
parameter, the KPI columns (``mmbot.sweep.objective.KPI_KEYS`` and the objectives) and the cost
split (``load_s``, ``compile_s``, ``sim_s``, ``audit_s``; ``records_bytes``: the records a trial's
part tasks shipped back to the driver, 0 when one task ran the whole fold).

Chosen files: ``chosen_overrides.json`` holds the knobs and quoter parameters (``param.NAME``) in
the runtime-overrides format (``--overrides`` of backtest/paper/live,
``$MM_RUNTIME_OVERRIDES_JSON`` for the soak);
``chosen_profile.json`` (when profile fields were searched) a full profile for ``--profile``;
``chosen_params.json`` (when quoter parameters were searched) NAME -> value for ``--param``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Final

import polars as pl

from mmbot import knobs
from mmbot.sweep.driver import (
    ATTR_FAULT,
    ATTR_INTERRUPTED,
    ATTR_KPIS,
    ATTR_REASON,
    ATTR_TIMING,
    SweepResult,
)
from mmbot.sweep.objective import KPI_KEYS
from mmbot.sweep.space import ROUTE_KNOB, ROUTE_PROFILE, ROUTE_QUOTER, apply_values

KPI_COLUMNS: Final[tuple[str, ...]] = (
    *KPI_KEYS,
    "net_bps_before_rebates",
    "equity",
    "risk_adj",
    "max_drawdown",
)
TIMING_COLUMNS: Final[tuple[str, ...]] = ("load_s", "compile_s", "sim_s", "audit_s")
RESULTS_FILE: Final = "results.parquet"
SUMMARY_FILE: Final = "SWEEP_SUMMARY.json"


def _row(base: dict, params: dict, names: tuple[str, ...], kpis: dict, timing: dict) -> dict:
    row = dict(base)
    for n in names:
        v = params.get(n)
        row[f"p.{n}"] = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
    for k in KPI_COLUMNS:
        v = kpis.get(k)
        row[k] = float(v) if isinstance(v, int | float) and v is not None else math.nan
    for k in TIMING_COLUMNS:
        row[k] = float(timing.get(k, math.nan))
    row["events"] = int(timing.get("events", 0) or 0)
    row["records_bytes"] = int(timing.get("records_bytes", 0) or 0)
    row["worker"] = str(timing.get("worker", ""))
    return row


def results_table(res: SweepResult) -> pl.DataFrame:
    """Parameters x KPIs x fold (see the module docstring)."""
    names = res.config.space.names
    rows = []
    for step, study in zip(res.steps, res.studies, strict=True):
        for t in study.get_trials(deepcopy=False):
            if t.state.name not in ("COMPLETE", "FAIL") or t.user_attrs.get(ATTR_INTERRUPTED):
                continue
            base = {
                "step": step.step,
                "fold": step.is_fold,
                "sample": "is",
                "role": "trial",
                "trial": t.number,
                "state": t.state.name,
                "fail_reason": t.user_attrs.get(ATTR_REASON, ""),
                "fault": t.user_attrs.get(ATTR_FAULT, ""),
            }
            kp = t.user_attrs.get(ATTR_KPIS, {}) if t.state.name == "COMPLETE" else {}
            rows.append(_row(base, t.params, names, kp, t.user_attrs.get(ATTR_TIMING, {})))
        for key, ev in step.evaluations.items():
            if key == "best_is":
                continue
            role = "best" if key.startswith("best") else "baseline"
            sample = "oos" if key.endswith("oos") else "is"
            base = {
                "step": step.step,
                "fold": step.oos_fold if sample == "oos" else step.is_fold,
                "sample": sample,
                "role": role,
                "trial": step.best_trial if role == "best" else -1,
                "state": "COMPLETE" if ev.get("ok") else "FAIL",
                "fail_reason": ev.get("reason", ""),
                "fault": "",
            }
            params = step.best_params if role == "best" else {}
            rows.append(_row(base, params, names, ev.get("kpis") or {}, ev))
    return pl.DataFrame(rows, infer_schema_length=None)


def _fig(ev: dict | None, name: str) -> float | None:
    if not ev or not ev.get("ok"):
        return None
    v = (ev.get("kpis") or {}).get(name)
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def summary(res: SweepResult) -> dict:
    """Per step: the best parameters with their in-sample and out-of-sample figures and the gap,
    and the baseline's; the chosen parameters (last step's best) judged by their OOS figures."""
    cfg = res.config
    steps = []
    for st in res.steps:
        ev = st.evaluations
        figs = {}
        for obj in cfg.objectives:
            is_v, oos_v = _fig(ev.get("best_is"), obj), _fig(ev.get("best_oos"), obj)
            b_is, b_oos = _fig(ev.get("base_is"), obj), _fig(ev.get("base_oos"), obj)
            figs[obj] = {
                "best_is": is_v,
                "best_oos": oos_v,
                "gap_oos_minus_is": oos_v - is_v if None not in (is_v, oos_v) else None,
                "baseline_is": b_is,
                "baseline_oos": b_oos,
                "oos_minus_baseline_oos": oos_v - b_oos if None not in (oos_v, b_oos) else None,
            }
        failed = [e.get("reason") for k, e in ev.items() if not e.get("ok")]
        steps.append(
            {
                "step": st.step,
                "is_fold": st.is_fold,
                "oos_fold": st.oos_fold,
                "best_trial": st.best_trial,
                "best_params": st.best_params,
                "objectives": figs,
                "evaluation_failures": failed,
            }
        )
    last = steps[-1] if steps else None
    return {
        "market": cfg.market_label,
        "objectives": list(cfg.objectives),
        "trials_per_step": cfg.trials,
        "folds": [
            {"index": f.index, "hours": f.hours, "events": sum(p.events for p in f.parts)}
            for f in cfg.folds
        ],
        "storage": cfg.storage_url,
        "steps": steps,
        "chosen": {
            "params": last["best_params"] if last else {},
            "tuned_on_fold": last["is_fold"] if last else None,
            "judged_on_fold": last["oos_fold"] if last else None,
            "objectives": last["objectives"] if last else {},
        },
        "walk_forward_oos_mean": {
            obj: _mean([s["objectives"][obj]["best_oos"] for s in steps]) for obj in cfg.objectives
        },
        "walk_forward_is_mean": {
            obj: _mean([s["objectives"][obj]["best_is"] for s in steps]) for obj in cfg.objectives
        },
    }


def _mean(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None


def write_chosen(res: SweepResult, out: Path) -> dict[str, Path]:
    """The chosen parameters as files (see the module docstring); returns kind -> path."""
    from mmbot.audit import dump_json
    from mmbot.config import load_overrides

    cfg = res.config
    params = res.steps[-1].best_params if res.steps else {}
    if not params:
        return {}
    applied = apply_values(params, cfg.space, cfg.profile)
    written: dict[str, Path] = {}
    qp = {**cfg.fixed_params, **applied.quoter_params}
    if cfg.space.by_route(ROUTE_KNOB) or cfg.space.by_route(ROUTE_QUOTER):
        ovr = {**applied.knobs, **{knobs.quoter_knob_name(k): v for k, v in qp.items()}}
        path = dump_json(ovr, out / "chosen_overrides.json")
        load_overrides(path)  # the file must be one the other commands accept
        written["overrides"] = path
    if cfg.space.by_route(ROUTE_PROFILE):
        prof = applied.profile.model_dump(exclude={"source", "messages"})
        prof["name"] = f"{cfg.profile.name}-sweep"
        prof["description"] = f"{cfg.profile.name} with the fields chosen by mmbot sweep"
        written["profile"] = dump_json(prof, out / "chosen_profile.json")
    if cfg.space.by_route(ROUTE_QUOTER) or cfg.fixed_params:
        written["params"] = dump_json(qp, out / "chosen_params.json")
    return written


def write_results(res: SweepResult, out: Path) -> dict[str, Any]:
    """Table, summary, chosen files and the HTML report into ``out``; returns the summary."""
    from mmbot.audit import dump_json
    from mmbot.sweep.report import write_html

    out.mkdir(parents=True, exist_ok=True)
    table = results_table(res)
    table.write_parquet(out / RESULTS_FILE)
    summ = summary(res)
    summ["files"] = {k: str(v) for k, v in write_chosen(res, out).items()}
    summ["cost"] = cost_split(table)
    summ["run"] = {
        "trials_run": res.trials_run,
        "tasks_run": res.tasks_run,
        "tune_s": res.tune_s,
        "wall_s": res.wall_s,
        "warm_s": res.warm_s,
        "driver_s": res.driver_s,
        "combine_s": res.combine_s,
    }
    dump_json(summ, out / SUMMARY_FILE)
    write_html(res, table, summ, out / "sweep_report.html")
    return summ


def cost_split(table: pl.DataFrame) -> dict[str, Any]:
    """Mean per-trial seconds for loading, compile, simulation, audit (trials run; compile and
    loading are paid once per worker process, so their mean is the amortised cost)."""
    t = table.filter(pl.col("role") == "trial").drop_nans(TIMING_COLUMNS)
    if t.height == 0:
        return {}
    out = {f"mean_{k}": float(t[k].mean()) for k in TIMING_COLUMNS}
    out.update({f"total_{k}": float(t[k].sum()) for k in TIMING_COLUMNS})
    out["trials"] = t.height
    out["mean_events"] = float(t["events"].mean())
    return out
