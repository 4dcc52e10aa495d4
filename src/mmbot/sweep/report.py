"""The sweep's HTML report (one self-contained file, plotly inlined once): optimisation history,
parameter importances, parallel coordinates of the trials, and in-sample vs out-of-sample per step
with the chosen parameters beside their out-of-sample figures."""

from __future__ import annotations

import html
import math
import warnings
from pathlib import Path
from typing import Any

import polars as pl

from mmbot.sweep.driver import SweepResult


def _history(table: pl.DataFrame, obj: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for step in sorted(set(table["step"].to_list())):
        t = table.filter(
            (pl.col("step") == step) & (pl.col("role") == "trial") & (pl.col("state") == "COMPLETE")
        ).sort("trial")
        if t.height == 0:
            continue
        y = t[obj].to_list()
        best = [max(y[: i + 1]) for i in range(len(y))]
        fig.add_scatter(x=t["trial"].to_list(), y=y, mode="markers", name=f"step {step} trials")
        fig.add_scatter(x=t["trial"].to_list(), y=best, mode="lines", name=f"step {step} best")
    fig.update_layout(title=f"Optimisation history ({obj}, in sample)", xaxis_title="trial")
    return fig


def _importances(res: SweepResult) -> Any:
    import optuna
    import plotly.graph_objects as go

    fig = go.Figure()
    for step, study in zip(res.steps, res.studies, strict=True):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PED-ANOVA's note on the target's direction
                # PED-ANOVA ranks what leads to *low* targets: negate the maximised objective
                imp = optuna.importance.get_param_importances(
                    study,
                    evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                    target=lambda t: -t.values[0],
                )
        except (RuntimeError, ValueError, ZeroDivisionError, ImportError):
            continue  # too few complete trials or a constant objective
        names = list(imp)[::-1]
        fig.add_bar(x=[imp[n] for n in names], y=names, orientation="h", name=f"step {step.step}")
    fig.update_layout(title="Parameter importances (PED-ANOVA, first objective)", barmode="group")
    return fig


def _parcoords(table: pl.DataFrame, names: tuple[str, ...], obj: str) -> Any:
    import plotly.graph_objects as go

    t = table.filter((pl.col("role") == "trial") & (pl.col("state") == "COMPLETE"))
    dims = []
    for n in names:
        col = t[f"p.{n}"]
        if col.dtype in (pl.Float64, pl.Int64):
            dims.append({"label": n, "values": col.to_list()})
        else:  # categorical choice: index into the distinct values
            cats = sorted({str(v) for v in col.to_list()})
            vals = [cats.index(str(v)) for v in col.to_list()]
            dims.append(
                {"label": n, "values": vals, "tickvals": list(range(len(cats))), "ticktext": cats}
            )
    dims.append({"label": obj, "values": t[obj].to_list()})
    fig = go.Figure(
        go.Parcoords(
            line={"color": t[obj].to_list(), "colorscale": "Viridis", "showscale": True},
            dimensions=dims,
        )
    )
    fig.update_layout(title=f"Parallel coordinates (complete trials, colour = {obj})")
    return fig


def _is_oos(summary: dict, obj: str) -> Any:
    import plotly.graph_objects as go

    steps = summary["steps"]
    x = [f"step {s['step']}: fold {s['is_fold']}→{s['oos_fold']}" for s in steps]
    fig = go.Figure()
    for key, label in (
        ("best_is", "best, in sample"),
        ("best_oos", "best, out of sample"),
        ("baseline_is", "profile, in sample"),
        ("baseline_oos", "profile, out of sample"),
    ):
        fig.add_bar(x=x, y=[s["objectives"][obj][key] for s in steps], name=label)
    fig.update_layout(title=f"In sample vs out of sample ({obj})", barmode="group")
    return fig


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if math.isfinite(v) else "—"
    return "—" if v is None else html.escape(str(v))


def _chosen_table(summary: dict) -> str:
    ch = summary["chosen"]
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in ch["params"].items()
    )
    figs = "".join(
        f"<tr><td>{html.escape(obj)}</td><td>{_fmt(f['best_is'])}</td><td>{_fmt(f['best_oos'])}</td>"
        f"<td>{_fmt(f['gap_oos_minus_is'])}</td><td>{_fmt(f['baseline_oos'])}</td></tr>"
        for obj, f in ch["objectives"].items()
    )
    return (
        f"<h2>Chosen parameters (tuned on fold {ch['tuned_on_fold']}, judged on fold "
        f"{ch['judged_on_fold']})</h2><table><tr><th>parameter</th><th>value</th></tr>{rows}</table>"
        "<table><tr><th>objective</th><th>in sample</th><th>out of sample</th><th>gap (OOS−IS)</th>"
        f"<th>profile OOS</th></tr>{figs}</table>"
    )


def write_html(res: SweepResult, table: pl.DataFrame, summary: dict, path: Path) -> Path:
    obj = res.config.objectives[0]
    figs = [
        _is_oos(summary, obj),
        _history(table, obj),
        _importances(res),
        _parcoords(table, res.config.space.names, obj),
    ]
    parts = [
        f.to_html(full_html=False, include_plotlyjs=(i == 0), default_width="100%")
        for i, f in enumerate(figs)
    ]
    failed = table.filter(pl.col("state") == "FAIL")
    fail_rows = "".join(
        f"<tr><td>{r['step']}</td><td>{r['trial']}</td><td>{html.escape(str(r['fail_reason']))}</td></tr>"
        for r in failed.iter_rows(named=True)
    )
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>mmbot sweep</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
        f"<h1>mmbot sweep — {html.escape(summary['market'])}</h1>"
        + _chosen_table(summary)
        + "".join(parts)
        + f"<h2>Failed trials ({failed.height})</h2><table><tr><th>step</th><th>trial</th>"
        f"<th>reason</th></tr>{fail_rows}</table></body></html>"
    )
    path.write_text(body, encoding="utf-8")
    return path
