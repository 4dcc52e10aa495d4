"""What a soak writes about itself: per-iteration metrics, the final artifacts, SOAK_RESULTS.md.

Owns the soak's own report content (DESIGN.md "Soak and auto-tune"): the metrics copied per
iteration (`METRIC_KEYS`), the seed's three per-iteration files, the carry lines (what happened to
positions and funding), the Markdown section of SOAK_RESULTS.md, and `write_final`, which stages
every end-of-soak artifact (metrics.jsonl, audit.jsonl, EDGE_REPORT, KPI_GATE, soak_metrics,
summary, gate summary, Markdown and HTML reports). The console is not its business: marker lines
are returned as text for the caller to show.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from mmbot.audit.edge_report import HEADLINE_KEYS
from mmbot.knobs import knob_order
from mmbot.numfmt import fixed as fmt
from mmbot.soak import autotune
from mmbot.soak import decision as soak_decision
from mmbot.soak import stability as soak_stability
from mmbot.soak import summary as soak_summary

# EDGE_REPORT totals copied into metrics.jsonl / soak_metrics.json per iteration.
METRIC_KEYS: Final[tuple[str, ...]] = (
    *HEADLINE_KEYS,
    "slippage_bps_p95",
    "order_age_p95_ms",
    "ws_lag_p95_ms",
    "cancel_ratio",
    "maker_share_pct",
    "fills",
    "turnover",
    "pnl",
    "orders_placed",
    "intended_actions",
    "blocked_actions",
)


def iteration_metrics(totals: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: totals.get(k) for k in METRIC_KEYS}
    out["block_ratios"] = {
        name: (v or {}).get("ratio")
        for name, v in sorted((totals.get("block_reasons") or {}).items())
    }
    out["neg_edge_drivers"] = list(totals.get("neg_edge_drivers") or [])
    return out


def iteration_artifacts(iteration: int, report: Mapping[str, Any]) -> dict[str, dict]:
    """The seed's three per-iteration files (section F, patch 1), keyed by kind."""
    totals = report.get("totals", {})
    runtime = report.get("runtime", {})
    return {
        "AUDIT_SNAPSHOT": dict(report),
        "BLOCKS_BREAKDOWN": {
            "iteration": iteration,
            "block_reasons": totals.get("block_reasons", {}),
            "runtime": runtime,
        },
        "NEG_EDGE_DRIVERS": {
            "iteration": iteration,
            "neg_edge_drivers": totals.get("neg_edge_drivers", []),
            "neg_edge_drivers_detail": totals.get("neg_edge_drivers_detail", []),
            "net_bps": totals.get("net_bps", 0.0),
            "component_breakdown": totals.get("component_breakdown", {}),
            "runtime": runtime,
        },
    }


def fmt_knobs(knobs: Mapping[str, float]) -> str:
    return " ".join(f"{k}={autotune.fmt_knob(k, knobs[k])}" for k in knob_order(knobs))


def carry_lines(totals: Mapping[str, Any]) -> list[str]:
    """What happens to each chunk's end position and the funding it paid (EDGE_REPORT totals)."""
    out = []
    pc = totals.get("position_carry")
    if isinstance(pc, dict):
        out.append(
            f"- positions: {pc.get('rule')}; {pc.get('carried')} of {pc.get('runs')} chunks "
            f"started with a position (largest {fmt(pc.get('max_abs_position_qty'), 4)}); "
            f"unbooked move at the seams {fmt(pc.get('seam_pnl'), 6)}"
        )
    pco = totals.get("position_close_out")
    if isinstance(pco, dict):
        for c in pco.get("closes") or []:
            out.append(
                f"- end position {fmt(c.get('position_qty'), 4)} closed at {fmt(c.get('px'), 2)} "
                f"with the taker fee: cost {fmt(c.get('cost'))} ({fmt(pco.get('cost_bps'))} bps "
                "of turnover), booked in the totals (marked at the final mid instead, the PnL "
                "would be higher by that cost)"
            )
        if not pco.get("closed"):
            out.append(f"- end position: {pco.get('rule')}; nothing to close")
    if isinstance(totals.get("funding_bps"), int | float):
        out.append(f"- funding: {fmt(totals.get('funding_bps'))} bps of turnover")
    return out


def _stop_lines(sm: Mapping[str, Any]) -> list[str]:
    """What the loss limits did (`mmbot.soak.limits`), for SOAK_RESULTS.md."""
    out = []
    for r in sm["per_iteration"]:
        dd = r.get("drawdown")
        if dd:
            out.append(
                f"- iteration {r['iteration']}: {dd['stops']} drawdown stop(s) (max_drawdown "
                f"{dd['max_drawdown']:g} below the soak's equity peak)"
            )
    stop = sm.get("stop")
    if stop:
        when = stop.get("first_below_utc") or "n/a"
        out.append(
            f"- **stopped by the kill switch** in iteration {stop['iteration']}, chunk "
            f"{stop['chunk']}: the soak's cumulative PnL fell below -{stop['max_loss']:g} "
            f"(first at {when}, exchange time); {len(sm['per_iteration'])} of "
            f"{sm['iterations']} iterations ran"
        )
    return out


def soak_markdown(
    sm: Mapping[str, Any], final_report: Mapping[str, Any], gate: Mapping[str, Any]
) -> str:
    """SOAK_RESULTS.md: per-iteration table, tuner changes, final overrides, verdict."""
    lines = [
        *_md_header(sm, final_report, gate),
        *_md_iterations(sm),
        *_md_trials(sm),
        *_md_final_overrides(sm),
        *_md_rules(sm),
    ]
    return "\n".join(lines) + "\n"


def _md_header(
    sm: Mapping[str, Any], final_report: Mapping[str, Any], gate: Mapping[str, Any]
) -> list[str]:
    t = final_report.get("totals", {})
    lines = [
        "## Soak iterations and auto-tune",
        "",
        f"- market: `{sm['market']}`, {sm['hours']:.4g} h of market time in {sm['iterations']} iterations, "
        f"seed {sm['seed']}, profile {sm['profile']}, auto-tune {'on' if sm['auto_tune'] else 'off'}",
        f"- **verdict: {gate.get('verdict')}**, net_bps {fmt(t.get('net_bps'))} over {t.get('fills')} fills",
        *carry_lines(t),
        *_stop_lines(sm),
        "",
    ]
    return lines


def _md_iterations(sm: Mapping[str, Any]) -> list[str]:
    """One row per iteration: its figures and what the tuner changed after it."""
    lines = [
        "| iter | net_bps | fills | adverse_p95 | slippage_p95 | order_age_p95_ms | cancel_ratio | verdict | changes |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in sm["per_iteration"]:
        m = r["metrics"]
        ch = (r.get("autotune") or {}).get("changes") or []
        ch_txt = ", ".join(
            f"{c['rule']}: {c['field']} {autotune.fmt_knob(c['field'], c['from'])}→"
            f"{autotune.fmt_knob(c['field'], c['to'])}"
            for c in ch
        )
        at = r.get("autotune") or {}
        notes = []
        if at.get("fallback"):
            notes.append("FALLBACK")
        if at.get("calm_down"):
            notes.append("calm-down")
        muted = sorted({s["rule"] for s in at.get("skipped", []) if s.get("why") == "ineffective"})
        if muted:
            notes.append("muted " + ",".join(muted))
        ch_txt = "; ".join(x for x in [" ".join(notes), ch_txt] if x)
        lines.append(
            f"| {r['iteration']} | {fmt(m.get('net_bps'))} | {m.get('fills')} | {fmt(m.get('adverse_bps_p95'))} "
            f"| {fmt(m.get('slippage_bps_p95'))} | {fmt(m.get('order_age_p95_ms'), 1)} "
            f"| {fmt(m.get('cancel_ratio'))} | {r.get('verdict')} | {ch_txt or '-'} |"
        )
    return lines


def _md_trials(sm: Mapping[str, Any]) -> list[str]:
    """Every candidate the tuner replayed, with its paired gain (empty without auto-tune)."""
    trials = [
        (r["iteration"], t)
        for r in sm["per_iteration"]
        for t in ((r.get("autotune") or {}).get("trials") or [])
    ]
    if not trials:
        return []
    chained = sorted(
        {str(t["score"]) for _, t in trials if str(t.get("score", "")).startswith("chained ")}
    )
    lines = [
        "",
        "## Counterfactual validation",
        "",
        "Every candidate change was replayed on the market of the iterations played so far "
        "(the latest first; the better half of the candidates on more segments, the best on "
        "all of them), from the same book, position and events; it was adopted only when its "
        "mean paired gain over all its segments (in the tuner's replay score "
        f"{autotune.SCORE_NAME}: net_bps minus {autotune.SCORE_BETA:g} x the inventory PnL "
        f"beyond {autotune.SCORE_TAU_S:g} s after each fill) beat the noise floor "
        f"({autotune.NOISE_FLOOR_BPS:g} bps x sqrt(2 / segments), at least "
        f"{autotune.MIN_ADOPT_SEGMENTS} segments).",
        *(
            [
                "",
                "A knob set with quoter knobs is judged on chained evidence instead "
                f"({chained[0]}): each candidate replayed over every kept segment in order, "
                "carrying its own position, scored over them all (chained pnl: its PnL in bps of "
                "the current knobs' turnover; chained net_bps: its own net_bps); adopted when it "
                f"beats the current knobs' chain by {autotune.CHAIN_MIN_GAIN_BPS:g} bps on at "
                f"least {autotune.MIN_CHAIN_FILLS} fills.",
            ]
            if chained
            else []
        ),
        "",
        "| after iter | candidate | segments | gain_bps | adopted |",
        "|---:|---|---|---:|---|",
    ]
    for it, t in trials:
        segs = ",".join(str(x) for x in t["segments"] + t.get("earlier_segments", []))
        lines.append(
            f"| {it} | {t['candidate']} | {segs} | {fmt(t.get('gain_bps'))} "
            f"| {'yes' if t['adopted'] else 'no'} |"
        )
    return lines


def _md_final_overrides(sm: Mapping[str, Any]) -> list[str]:
    lines = ["", "## Final overrides", ""]
    if sm["auto_tune"]:
        kb = [r for r in sm.get("keep_best") or [] if r.get("kept")]
        if kb:
            lines.append(
                f"Kept from iteration {sm['best_iteration']}: keep-best rollback on common market "
                f"(every knob set that ran, replayed on iterations "
                f"{', '.join(str(x) for x in kb[0]['segments'])}; mean score_bps "
                f"{fmt(kb[0]['score_bps'])}; an earlier set had to beat the latest by "
                f"{autotune.keep_best_margin(len(kb[0]['segments'])):.3f} bps, and no set "
                "scoring below the start is kept)."
            )
        else:
            lines.append(
                f"Kept from iteration {sm['best_iteration']} (best net_bps; keep-best rollback)."
            )
        lines.append("")
    lines += ["| knob | start | final |", "|---|---:|---:|"]
    start_knobs = sm["per_iteration"][0]["knobs"]
    for k in knob_order(start_knobs):
        lines.append(
            f"| {k} | {autotune.fmt_knob(k, start_knobs[k])} | {autotune.fmt_knob(k, sm['final_overrides'][k])} |"
        )
    return lines


def _md_rules(sm: Mapping[str, Any]) -> list[str]:
    lines = [
        "",
        "## Auto-tune rules",
        "",
        "H1-H5 are the seed's; H6 is ours. A rule whose last change did not lower the cost in "
        "'judged on' is muted for a few iterations (INEFFECTIVE); 3+ rules at once keep only the "
        "conservative ones at their low end (CALM_DOWN); two negative iterations in a row apply "
        "the fallback package.",
        "",
        "| rule | marker | when | deltas | judged on |",
        "|---|---|---|---|---|",
    ]
    for r in sm["rules"]:
        d = ", ".join(f"{f} {lo:+g}..{hi:+g}" for f, (lo, hi) in r["deltas"].items())
        lines.append(
            f"| {r['name']} | {r['marker']} | {r['when']} | {d} | {r.get('judged_on') or '-'} |"
        )
    return lines


def final_lines(
    final_report: Mapping[str, Any], gate: Mapping[str, Any], soak_metrics: Mapping[str, Any]
) -> list[str]:
    """The soak's closing marker lines: what was carried, whether a loss limit stopped it, the
    gate's verdict and failed checks."""
    from mmbot.gate import failed_check_lines

    totals = final_report["totals"]
    verdict = str(gate.get("verdict"))
    lines = [f"| soak | CARRY | {line[2:]} |" for line in carry_lines(totals)]
    stop = soak_metrics.get("stop")
    if stop:
        lines.append(
            f"| soak | STOPPED | by the kill switch in iter={stop['iteration']} "
            f"chunk={stop['chunk']} (max_loss={stop['max_loss']:g}, first below at "
            f"{stop['first_below_utc'] or 'n/a'}): {len(soak_metrics['per_iteration'])} of "
            f"{soak_metrics['iterations']} iterations ran |"
        )
    lines.append(f"| soak | GATE | verdict={verdict} net_bps={fmt(totals.get('net_bps'))} |")
    lines += [
        f"| soak | GATE | {verdict}: {line} |"
        for line in (failed_check_lines(gate) if verdict != "PASS" else [])
    ]
    return lines


def write_final(
    stage: Any,
    paths: Any,
    soak_metrics: dict[str, Any],
    final_report: Mapping[str, Any],
    gate: Mapping[str, Any],
    runs: list[Any],
    metrics_lines: list[bytes],
    audit_parts: list[Path],
) -> tuple[Path, Path]:
    """Stage every end-of-soak artifact (`mmbot.soak.artifacts.Stage` ``stage``, `SoakPaths`
    ``paths``; ``runs``: every run, e.g. `mmbot.audit.records_io.StoredRun`s reading their records
    back from disk); the Markdown (--export-md: EDGE_REPORT, gate and the soak's section) and the
    HTML report beside EDGE_REPORT.json are `mmbot.report`'s. Returns (Markdown path, HTML path)."""
    from mmbot.report import write_reports

    stage.write_json(paths.runtime_overrides, soak_metrics["final_overrides"])
    stage.write_bytes(paths.metrics_jsonl, b"".join(metrics_lines))
    with open(stage.path(paths.audit_jsonl), "wb") as fh:
        for part in audit_parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)
            part.unlink()
    stage.write_json(paths.edge_report, final_report)
    stage.write_json(paths.kpi_gate, gate)
    decision = soak_metrics["decision"]
    stage.write_text(
        paths.summary_txt,
        soak_summary.render(soak_metrics, gate, paths.runtime_overrides.as_posix()),
    )
    if decision["next_overrides"] is not None:
        stage.write_json(paths.soak / soak_decision.NEXT_OVERRIDES_NAME, decision["next_overrides"])
    stage.write_json(paths.export_json, soak_metrics)
    verdict = soak_metrics["verdict"]
    stage.write_json(
        paths.gate_summary,
        {
            "verdict": verdict,
            "gate": gate,
            "per_iteration": [
                {"iteration": r["iteration"], "verdict": r["verdict"]}
                for r in soak_metrics["per_iteration"]
            ],
            "net_bps": final_report["totals"].get("net_bps"),
        },
    )
    md_text = soak_markdown(soak_metrics, final_report, gate)
    if "stability" in soak_metrics:
        md_text += "\n" + soak_stability.markdown(soak_metrics["stability"])
    md_text += "\n" + soak_decision.markdown(decision)
    md_tmp, html_tmp = write_reports(
        stage.dir / "scratch_reports",
        final_report,
        runs,
        gate,
        extra_md=md_text,
        extra_html=soak_decision.html_fragment(decision),
        iterations=soak_metrics["per_iteration"],
    )
    html_path = paths.reports / Path(html_tmp).name
    stage.write_bytes(paths.export_md, Path(md_tmp).read_bytes())
    stage.write_bytes(html_path, Path(html_tmp).read_bytes())
    return paths.export_md, html_path
