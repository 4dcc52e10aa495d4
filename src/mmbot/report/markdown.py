"""SOAK_RESULTS.md-style Markdown from an EDGE_REPORT (and optionally its KPI_GATE).

Every figure comes from the report dict; nothing is typed in.
"""

from __future__ import annotations

import math
from typing import Any

COMPONENT_ROWS = (
    ("gross", "gross_bps", "s·(mid − target)·q: edge the strategy meant to capture"),
    ("fees", "fees_eff_bps", "−fee paid (maker rebate positive)"),
    ("slippage", "slippage_bps", "s·(target − px)·q: stale quotes negative, improvement positive"),
    ("inventory", "inventory_bps", "Σ position·Δmid (mark-to-market of held inventory)"),
)


def fmt(v: Any, digits: int = 4) -> str:
    """Number for a table cell; null/NaN shown as 'n/a'."""
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "n/a"
        if v != 0 and (abs(v) >= 1e7 or abs(v) < 1e-4):
            return f"{v:.{digits}g}"
        return f"{v:.{digits}f}"
    return str(v)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += [
        "| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |" for r in rows
    ]
    return "\n".join(out)


TOTALS_ROWS = (  # (label, EDGE_REPORT totals key)
    ("net_bps", "net_bps"),
    ("pnl (quote, marked at final mid)", "pnl"),
    ("turnover (quote)", "turnover"),
    ("fills", "fills"),
    ("maker_share_pct", "maker_share_pct"),
    ("adverse_bps_p95 (1 s cost)", "adverse_bps_p95"),
    ("slippage_bps_p95 (cost)", "slippage_bps_p95"),
    ("order_age_p95_ms", "order_age_p95_ms"),
    ("ws_lag_p95_ms", "ws_lag_p95_ms"),
    ("cancel_ratio", "cancel_ratio"),
    ("replace_ratio", "replace_ratio"),
    ("fills without a target (all edge in gross)", "fills_without_target"),
)


def _totals_md(t: dict, title: str, level: str = "##") -> list[str]:
    lines = [f"{level} {title}", ""]
    lines.append(_table(["metric", "value"], [[label, t.get(key)] for label, key in TOTALS_ROWS]))
    lines += ["", f"{level}# Edge decomposition (contributions: positive helps net)", ""]
    cb = t.get("component_breakdown", {})
    rows = [[name, t.get(key), cb.get(f"{name}_quote"), why] for name, key, why in COMPONENT_ROWS]
    rows.append(["**net**", t.get("net_bps"), cb.get("pnl_quote"), "= sum of the four, exactly"])
    lines.append(_table(["component", "bps of turnover", "quote", "meaning"], rows))
    return lines


PIECES_HEAD = [
    "piece",
    "switched off by",
    "fills",
    "net bps",
    "contribution PnL",
    "bps",
    "before rebates",
]


def pieces_rows(block: dict) -> list[list]:
    """EDGE_REPORT ``pieces`` as table rows under ``PIECES_HEAD``: every piece on, then each off."""
    w = block["with_all"]
    rows: list[list] = [["(all pieces)", "", w["fills"], w["net_bps"], "", "", ""]]
    rows += [
        [
            r["piece"],
            ", ".join(f"{k}={v:g}" for k, v in r["switched_off_by"].items()),
            r["fills_without"],
            r["net_bps_without"],
            r["contribution_pnl"],
            r["contribution_bps"],
            r["contribution_before_rebates_bps"],
        ]
        for r in block["rows"]
    ]
    return rows


def _pieces_md(block: dict | None) -> list[str]:
    """EDGE_REPORT ``pieces`` (``mmbot backtest --pieces``), or nothing."""
    if not block:
        return []
    table = _table(PIECES_HEAD, pieces_rows(block))
    return ["", "## What each piece contributed", "", block["method"], "", table]


def render_markdown(edge_report: dict, gate: dict | None = None, extra_md: str = "") -> str:
    """The Markdown report (SOAK_RESULTS.md style)."""
    t = edge_report.get("totals", {})
    lines = ["# mmbot results", ""]
    lines += _headline_md(t, gate)
    lines += _totals_md(t, "Totals")
    lines += _markouts_md(t)
    lines += _pieces_md(edge_report.get("pieces"))
    lines += _drivers_md(t)
    lines += _actions_md(t)
    if gate is not None:
        lines += _gate_md(gate)
    syms = edge_report.get("symbols", {})
    if len(syms) > 1:
        for sym, st in sorted(syms.items()):
            lines += [""] + _totals_md(st, f"Symbol {sym}", "###")
    lines += _identity_md(edge_report)
    rt = edge_report.get("runtime", {})
    if rt:
        lines += ["", "## Runtime", ""]
        lines.append(_table(["key", "value"], [[k, _short(v)] for k, v in sorted(rt.items())]))
    if extra_md:
        lines += ["", extra_md.rstrip()]
    lines += ["", "Conventions: see the `conventions` block of EDGE_REPORT.json.", ""]
    return "\n".join(lines)


def _headline_md(t: dict, gate: dict | None) -> list[str]:
    """The verdict line (with a gate), the net and what drove it down."""
    lines = []
    if gate is not None:
        bits = [f"KPI_GATE: **{gate.get('verdict')}**"]
        if gate.get("failed_hard"):
            bits.append("hard fails: " + ", ".join(gate["failed_hard"]))
        if gate.get("failed_soft"):
            bits.append("soft fails: " + ", ".join(gate["failed_soft"]))
        lines += ["- " + " — ".join(bits)]
    lines += [
        f"- net_bps: **{fmt(t.get('net_bps'))}** over {fmt(t.get('fills'))} fills, "
        f"turnover {fmt(t.get('turnover'))}",
        "- neg_edge_drivers: " + (", ".join(t.get("neg_edge_drivers") or []) or "none"),
        "",
    ]
    return lines


MARKOUTS_HEAD = [
    "horizon",
    "mean",
    "notional-weighted",
    "p50",
    "p95",
    "fills",
    "excluded (past end)",
]


def markout_horizons(totals: dict) -> list[tuple[str, dict]]:
    """The ``markouts`` block as (horizon label, statistics), shortest horizon first."""
    return sorted(totals.get("markouts", {}).items(), key=lambda kv: kv[1].get("horizon_ms", 0))


def markout_rows(totals: dict) -> list[list]:
    """The ``markouts`` block as rows under ``MARKOUTS_HEAD``, shortest horizon first."""
    return [
        [
            h,
            v.get("mean_bps"),
            v.get("weighted_mean_bps"),
            v.get("p50_bps"),
            v.get("p95_bps"),
            v.get("n"),
            v.get("excluded_past_end"),
        ]
        for h, v in markout_horizons(totals)
    ]


def _markouts_md(t: dict) -> list[str]:
    lines = ["", "## Markouts (cost, bps: positive = price moved against us)", ""]
    lines.append(_table(MARKOUTS_HEAD, markout_rows(t)))
    return lines


def _drivers_md(t: dict) -> list[str]:
    lines = ["", "## Negative-edge drivers", ""]
    det = t.get("neg_edge_drivers_detail") or []
    lines.append(
        _table(
            ["driver", "kind", "bps", "pulls net down by (bps)"],
            [[d["name"], d["kind"], d["bps"], d["hurt_bps"]] for d in det],
        )
        if det
        else "none"
    )
    return lines


def _actions_md(t: dict) -> list[str]:
    """Block reasons, the action counts and the exchange's rejects."""
    lines = ["", "## Block reasons (ratio = blocked / intended attempts)", ""]
    br = t.get("block_reasons", {})
    lines.append(
        _table(
            ["reason", "count", "ratio"],
            [[k, v.get("count"), v.get("ratio")] for k, v in sorted(br.items())],
        )
    )
    lines.append("")
    lines.append(
        f"intended actions: {fmt(t.get('intended_actions'))}, blocked: {fmt(t.get('blocked_actions'))}, "
        f"orders placed: {fmt(t.get('orders_placed'))} (of which replaces "
        f"{fmt(t.get('orders_replaced'))}), cancelled: {fmt(t.get('orders_cancelled'))}"
    )
    rr = t.get("reject_reasons") or {}
    if rr:
        lines.append("exchange rejects: " + ", ".join(f"{k} {v}" for k, v in sorted(rr.items())))
    return lines


def _gate_md(gate: dict) -> list[str]:
    lines = ["", "## KPI gate", "", f"Rule: {gate.get('rule', '')}", ""]
    rows = []
    for c in gate.get("checks", []):
        op = "≥" if c["op"] == "ge" else "≤"
        res = c["result"].upper() + (f" ({c['reason']})" if c.get("reason") else "")
        rows.append([c["tier"], c["metric"], c.get("value"), f"{op} {c['threshold']:g}", res])
    lines.append(_table(["tier", "metric", "value", "threshold", "result"], rows))
    return lines


def _identity_md(edge_report: dict) -> list[str]:
    """The PnL identity check and, per run, its PnL against the venue's own equity."""
    idn = edge_report.get("identity", {})
    lines = [
        "",
        "## Identity check",
        "",
        f"{idn.get('statement', '')}: checked on {fmt(idn.get('checked_runs'))} run(s), "
        f"max relative error {fmt(idn.get('max_rel_err'))} (tolerance {fmt(idn.get('tolerance_rel'))}).",
    ]
    runs = edge_report.get("runs", [])
    if runs:
        lines += [""]
        lines.append(
            _table(
                ["run", "symbol", "fills", "pnl", "final mid", "pnl − sim equity"],
                [
                    [
                        str(r.get("name") or r.get("index")),
                        str(r.get("symbol") or ""),
                        r.get("fills"),
                        r.get("pnl"),
                        r.get("final_mid_px"),
                        r.get("pnl_minus_sim_equity"),
                    ]
                    for r in runs
                ],
            )
        )
    return lines


def _short(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}={_short(x)}" for k, x in sorted(v.items())) or "{}"
    if isinstance(v, list):
        return ", ".join(_short(x) for x in v) or "[]"
    return fmt(v) if not isinstance(v, str) else v.replace("|", "\\|")
