"""Self-contained HTML report (plotly.js inlined once, so it opens with no network).

Plots: cumulative PnL by component over time, markout curve, per-fill edge distribution, block
reasons, position over time; plus the totals and gate tables. Series are thinned (``max_points``) and
the edge distribution is pre-binned, so the file stays well under 5 MB however long the run.
"""

from __future__ import annotations

import html as _html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from mmbot.audit.decompose import FillEdges
from mmbot.records import RunResult
from mmbot.report.markdown import fmt
from mmbot.report.series import chained_pnl_series, fill_edge_bps, histogram, position_series


def _elapsed_s(ts_ns: np.ndarray, t0_ns: int) -> np.ndarray:
    # numeric x (seconds since the start) is embedded as compact base64; datetimes would be text
    return _f4((ts_ns - t0_ns).astype(np.float64) / 1e9)


def _f4(a: np.ndarray) -> np.ndarray:
    # plotted series go out as float32 (half the bytes; 7 digits is plenty for a plot)
    return np.asarray(a, dtype=np.float32)


def _t0_ns(results: Sequence[RunResult]) -> int:
    starts = [int(r.marks["exch_ts"].min()) for r in results if len(r.marks)]
    starts += [int(r.fills["exch_ts"].min()) for r in results if len(r.fills)]
    return min(starts) if starts else 0


def _utc(ts_ns: int) -> str:
    return str(np.datetime64(ts_ns, "ns").astype("datetime64[ms]")) + "Z"


def _figures(
    edge_report: dict, results: Sequence[RunResult], edges: Sequence[FillEdges], max_points: int
) -> list[tuple[str, go.Figure]]:
    t = edge_report.get("totals", {})
    figs: list[tuple[str, go.Figure]] = []
    lay = {
        "template": "plotly_white",
        "height": 380,
        "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
    }

    t0 = _t0_ns(results)
    xtitle = f"seconds since {_utc(t0)}"
    s = chained_pnl_series(results, edges, max_points)
    f = go.Figure()
    x = _elapsed_s(s.ts_ns, t0)
    for name, y in (
        ("gross", s.gross),
        ("slippage", s.slippage),
        ("fees", s.fees),
        ("inventory", s.inventory),
    ):
        f.add_trace(go.Scatter(x=x, y=_f4(y), name=name, mode="lines", line={"shape": "hv"}))
    f.add_trace(
        go.Scatter(
            x=x,
            y=_f4(s.net),
            name="net (pnl)",
            mode="lines",
            line={"shape": "hv", "width": 3, "color": "black"},
        )
    )
    f.update_layout(
        title="Cumulative PnL by component (quote)", xaxis_title=xtitle, yaxis_title="quote", **lay
    )
    figs.append(("pnl", f))

    mk = t.get("markouts", {})
    hs = sorted(mk.items(), key=lambda kv: kv[1].get("horizon_ms", 0))
    f = go.Figure()
    hx = [h for h, _ in hs]
    for key, name in (
        ("mean_bps", "mean"),
        ("weighted_mean_bps", "notional-weighted mean"),
        ("p50_bps", "p50"),
        ("p95_bps", "p95"),
    ):
        f.add_trace(
            go.Scatter(x=hx, y=[v.get(key) for _, v in hs], name=name, mode="lines+markers")
        )
    f.update_layout(
        title="Markout cost by horizon (bps, positive = adverse)",
        xaxis_title="horizon",
        yaxis_title="bps",
        **lay,
    )
    figs.append(("markouts", f))

    per_fill = np.concatenate([fill_edge_bps(e) for e in edges]) if edges else np.zeros(0)
    centres, counts, below, above = histogram(per_fill)
    f = go.Figure(go.Bar(x=centres, y=counts, name="fills"))
    f.update_layout(
        title=f"Per-fill edge at the fill, (gross+slippage+fees)/notional (bps); {below} below and {above} above the range",
        xaxis_title="bps",
        yaxis_title="fills",
        bargap=0.02,
        **lay,
    )
    figs.append(("edge_hist", f))

    br = t.get("block_reasons", {})
    names = sorted(br)
    f = go.Figure(
        go.Bar(
            x=names,
            y=[br[n].get("count", 0) for n in names],
            text=[f"{fmt(br[n].get('ratio'), 3)}" for n in names],
            textposition="outside",
        )
    )
    f.update_layout(
        title="Blocked attempts by reason (label: ratio of intended attempts)",
        yaxis_title="count",
        **lay,
    )
    figs.append(("blocks", f))

    # one trace per run (symbols differ in units); many runs (a long soak) share one trace
    groups = [[r] for r in results] if len(results) <= 10 else [list(results)]
    f = go.Figure()
    for g in groups:
        pts, pos = position_series(g, max(100, max_points // len(groups)))
        name = "position"
        if len(groups) > 1:
            name = str(
                g[0].meta.get("run_name")
                or g[0].meta.get("name")
                or g[0].meta.get("symbol")
                or "run"
            )
        f.add_trace(
            go.Scatter(
                x=_elapsed_s(pts, t0), y=_f4(pos), mode="lines", line={"shape": "hv"}, name=name
            )
        )
    f.update_layout(
        title="Position over time (base units)", xaxis_title=xtitle, yaxis_title="qty", **lay
    )
    figs.append(("position", f))
    return figs


def _kv_table(rows: list[tuple[str, object]]) -> str:
    body = "".join(
        f"<tr><td>{_html.escape(k)}</td><td>{_html.escape(fmt(v) if not isinstance(v, str) else v)}</td></tr>"
        for k, v in rows
    )
    return f"<table>{body}</table>"


def render_html(
    edge_report: dict,
    results: Sequence[RunResult],
    edges: Sequence[FillEdges],
    gate: dict | None = None,
    max_points: int = 2000,
    extra_html: str = "",
) -> str:
    """The HTML page as a string; ``extra_html`` (trusted, already escaped) follows the gate."""
    t = edge_report.get("totals", {})
    parts = []
    for i, (_, fig) in enumerate(_figures(edge_report, results, edges, max_points)):
        parts.append(
            pio.to_html(
                fig,
                full_html=False,
                include_plotlyjs=(i == 0),
                config={"displaylogo": False},
                div_id=f"mmbot-plot-{i}",  # fixed ids: same run, same bytes
            )
        )
    verdict = ""
    if gate is not None:
        fails = ", ".join(gate.get("failed_hard", []) + gate.get("failed_soft", []))
        verdict = f"<p><b>KPI_GATE: {_html.escape(str(gate.get('verdict')))}</b>{' — fails: ' + _html.escape(fails) if fails else ''}</p>"
    cb = t.get("component_breakdown", {})
    totals = _kv_table(
        [
            ("net_bps", t.get("net_bps")),
            ("gross_bps", t.get("gross_bps")),
            ("fees_eff_bps", t.get("fees_eff_bps")),
            ("slippage_bps", t.get("slippage_bps")),
            ("inventory_bps", t.get("inventory_bps")),
            ("pnl (quote)", cb.get("pnl_quote")),
            ("turnover (quote)", t.get("turnover")),
            ("fills", t.get("fills")),
            ("maker_share_pct", t.get("maker_share_pct")),
            ("adverse_bps_p95", t.get("adverse_bps_p95")),
            ("slippage_bps_p95", t.get("slippage_bps_p95")),
            ("order_age_p95_ms", t.get("order_age_p95_ms")),
            ("ws_lag_p95_ms", t.get("ws_lag_p95_ms")),
            ("cancel_ratio", t.get("cancel_ratio")),
            ("neg_edge_drivers", ", ".join(t.get("neg_edge_drivers") or []) or "none"),
        ]
    )
    gate_html = ""
    if gate is not None:
        rows = "".join(
            f"<tr class='{c['result']}'><td>{c['tier']}</td><td>{_html.escape(c['metric'])}</td><td>{fmt(c.get('value'))}</td>"
            f"<td>{'≥' if c['op'] == 'ge' else '≤'} {c['threshold']:g}</td><td>{c['result'].upper()}</td></tr>"
            for c in gate.get("checks", [])
        )
        gate_html = f"<h2>KPI gate</h2><table><tr><th>tier</th><th>metric</th><th>value</th><th>threshold</th><th>result</th></tr>{rows}</table>"
    rt = edge_report.get("runtime", {})
    runtime = _kv_table([(k, str(v)) for k, v in sorted(rt.items())])
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
        "tr.fail td{background:#fde2e2}tr.pass td{background:#e6f4e6}"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>mmbot report</title>"
        f"<style>{style}</style></head><body><h1>mmbot report</h1>{verdict}"
        "<p>Contributions in bps of turnover: positive helps net; net = gross + fees + slippage + inventory "
        "exactly. Markout and p95 metrics are costs: positive hurts.</p>"
        f"<h2>Totals</h2>{totals}{gate_html}{extra_html}<h2>Plots</h2>{''.join(parts)}<h2>Runtime</h2>{runtime}</body></html>"
    )
