"""Self-contained HTML report (plotly.js inlined once, so it opens with no network).

Plots: price with our bid/ask quotes and fills, cumulative PnL by component over time, markout
curve, per-fill edge distribution, block reasons, position over time, and for a soak its net and
knobs per iteration; plus the totals and gate tables. Series are thinned (``max_points``) and
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
from mmbot.report.markdown import PIECES_HEAD, fmt, markout_horizons, pieces_rows
from mmbot.report.series import (
    chained_pnl_series,
    fill_edge_bps,
    histogram,
    mid_series,
    position_series,
    quote_series,
    thin_index,
)


def _elapsed_s(ts_ns: np.ndarray, t0_ns: int) -> np.ndarray:
    # numeric x (seconds since the start) is embedded as compact base64; datetimes would be text
    return _f4((ts_ns - t0_ns).astype(np.float64) / 1e9)


def _f4(a: np.ndarray) -> np.ndarray:
    # plotted series go out as float32 (half the bytes; 7 digits is plenty for a plot)
    return np.asarray(a, dtype=np.float32)


def _t0_ns(results: Sequence[RunResult]) -> int:
    # a soak's runs are read back from disk at each access: count rows without reading them
    starts = [int(r.marks["exch_ts"].min()) for r in results if r.n_rows("marks")]
    starts += [int(r.fills["exch_ts"].min()) for r in results if r.n_rows("fills")]
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
    if any(r.n_rows("marks") for r in results):
        figs.append(("price", _price_figure(results, t0, max_points, xtitle, lay)))
    figs.append(("pnl", _pnl_figure(results, edges, t0, max_points, xtitle, lay)))
    figs.append(("markouts", _markouts_figure(t, lay)))
    figs.append(("edge_hist", _edge_hist_figure(edges, lay)))
    figs.append(("blocks", _blocks_figure(t, lay)))
    figs.append(("position", _position_figure(results, t0, max_points, xtitle, lay)))
    return figs


def _pnl_figure(
    results: Sequence[RunResult],
    edges: Sequence[FillEdges],
    t0: int,
    max_points: int,
    xtitle: str,
    lay: dict,
) -> go.Figure:
    """Cumulative PnL by component, the runs chained."""
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
    return f


def _markouts_figure(t: dict, lay: dict) -> go.Figure:
    hs = markout_horizons(t)
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
    return f


def _edge_hist_figure(edges: Sequence[FillEdges], lay: dict) -> go.Figure:
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
    return f


def _blocks_figure(t: dict, lay: dict) -> go.Figure:
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
    return f


def _position_figure(
    results: Sequence[RunResult], t0: int, max_points: int, xtitle: str, lay: dict
) -> go.Figure:
    """One trace per run (symbols differ in units); many runs (a long soak) share one trace."""
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
    return f


def _price_figure(
    results: Sequence[RunResult], t0: int, max_points: int, xtitle: str, lay: dict
) -> go.Figure:
    """Mid, our best bid/ask quotes (steps; gaps where a side had no live order) and our fills,
    for the runs of the first run's symbol; each series thinned to ``max_points``."""
    sym = results[0].meta.get("symbol")
    runs = [r for r in results if r.meta.get("symbol") == sym and r.n_rows("marks")]
    f = go.Figure()
    ts, mid = mid_series(runs, max_points)
    f.add_trace(
        go.Scatter(
            x=_elapsed_s(ts, t0), y=_f4(mid), mode="lines", name="mid", line={"color": "#888"}
        )
    )
    per_run = max(100, max_points // 2 // len(runs))
    for side, colour in (("bid", "#1f77b4"), ("ask", "#d62728")):
        xs, ys = [], []
        for r in runs:
            q = quote_series(r, per_run)
            xs.append(_elapsed_s(q.ts_ns, t0))
            ys.append(_f4(q.bid_px if side == "bid" else q.ask_px))
        f.add_trace(
            go.Scatter(
                x=np.concatenate(xs),
                y=np.concatenate(ys),
                mode="lines",
                name=f"our {side}",
                line={"shape": "hv", "color": colour, "width": 1},
                connectgaps=False,
            )
        )
    fills = np.concatenate([r.fills for r in runs])
    for s_, name, sym_, colour in (
        (1, "buy fills", "triangle-up", "#2ca02c"),
        (-1, "sell fills", "triangle-down", "#9467bd"),
    ):
        fs = fills[fills["side"] == s_]
        fs = fs[thin_index(len(fs), max_points // 2)]
        f.add_trace(
            go.Scatter(
                x=_elapsed_s(fs["exch_ts"].astype(np.int64), t0),
                y=_f4(fs["px"]),
                mode="markers",
                name=name,
                marker={"symbol": sym_, "size": 8, "color": colour},
            )
        )
    thinned = len(fills) > max_points // 2
    title = f"Price, our quotes and fills ({sym or 'symbol n/a'})" + (
        " — thinned" if thinned else ""
    )
    f.update_layout(title=title, xaxis_title=xtitle, yaxis_title="price", **lay)
    return f


def _iteration_figures(iterations: Sequence[dict], lay: dict) -> list[tuple[str, go.Figure]]:
    """A soak's net per iteration (and so far) and its knobs per iteration."""
    from mmbot.knobs import knob_limits, knob_order

    it = [int(r["iteration"]) for r in iterations]
    net = [r.get("metrics", {}).get("net_bps") for r in iterations]
    so_far = [r.get("net_bps_so_far") for r in iterations]
    f = go.Figure()
    f.add_trace(go.Bar(x=it, y=net, name="net_bps of the iteration"))
    f.add_trace(go.Scatter(x=it, y=so_far, mode="lines+markers", name="net_bps so far"))
    f.update_layout(
        title="Soak: net per iteration (bps)", xaxis_title="iteration", yaxis_title="bps", **lay
    )
    k = go.Figure()
    for name in knob_order(iterations[0].get("knobs", {}) if iterations else {}):
        lo, hi = knob_limits(name) or (0.0, 1.0)
        vals = [float(r.get("knobs", {}).get(name, float("nan"))) for r in iterations]
        pct = [(v - lo) / (hi - lo) * 100 for v in vals]
        k.add_trace(
            go.Scatter(
                x=it,
                y=pct,
                mode="lines+markers",
                name=name,
                customdata=vals,
                hovertemplate=f"{name}=%{{customdata:g}} (limits {lo:g}..{hi:g})<extra></extra>",
            )
        )
    k.update_layout(
        title="Soak: knobs per iteration (position within each knob's limits)",
        xaxis_title="iteration",
        yaxis_title="% of the limit range",
        **lay,
    )
    for fig in (f, k):
        fig.update_xaxes(dtick=1)
    return [("iter_net", f), ("iter_knobs", k)]


def _kv_table(rows: list[tuple[str, object]]) -> str:
    body = "".join(
        f"<tr><td>{_html.escape(k)}</td><td>{_html.escape(fmt(v) if not isinstance(v, str) else v)}</td></tr>"
        for k, v in rows
    )
    return f"<table>{body}</table>"


def _pieces_html(block: dict | None) -> str:
    """EDGE_REPORT ``pieces`` (``mmbot backtest --pieces``) as a table, or nothing."""
    if not block:
        return ""

    def cell(x: object) -> str:
        return _html.escape(x if isinstance(x, str) else fmt(x))

    head = "".join(f"<th>{h}</th>" for h in PIECES_HEAD)
    rows = "".join(
        "<tr>" + "".join(f"<td>{cell(x)}</td>" for x in row) + "</tr>" for row in pieces_rows(block)
    )
    return (
        f"<h2>What each piece contributed</h2><p>{_html.escape(block['method'])}</p>"
        f"<table><tr>{head}</tr>{rows}</table>"
    )


def render_html(
    edge_report: dict,
    results: Sequence[RunResult],
    edges: Sequence[FillEdges],
    gate: dict | None = None,
    max_points: int = 2000,
    extra_html: str = "",
    iterations: Sequence[dict] | None = None,
) -> str:
    """The HTML page as a string; ``extra_html`` (trusted, already escaped) follows the gate;
    ``iterations`` (a soak's per-iteration rows) adds its net and knobs per iteration."""
    t = edge_report.get("totals", {})
    parts = []
    figs = _figures(edge_report, results, edges, max_points)
    if iterations:
        lay = {
            "template": "plotly_white",
            "height": 380,
            "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
        }
        figs[1:1] = _iteration_figures(iterations, lay)
    for i, (_, fig) in enumerate(figs):
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
        from mmbot.gate import failed_check_lines

        fails = "; ".join(failed_check_lines(gate)) if gate.get("checks") else ""
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
    pieces_html = _pieces_html(edge_report.get("pieces"))
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
        f"<h2>Totals</h2>{totals}{gate_html}{pieces_html}{extra_html}<h2>Plots</h2>{''.join(parts)}<h2>Runtime</h2>{runtime}</body></html>"
    )
