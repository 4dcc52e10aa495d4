"""The seed's post-soak decision matrix (section H.5), made concrete for one finished soak.

Owns the band the final net_bps falls in and the action that goes with it: SUCCESS (freeze the
overrides, run the 24 h stability soak), OK (one or two targeted adjustments from the dominant
drivers, re-run 3 h), WARN (apply the seed's package for the dominant driver), FAIL (review block
reasons and components; the fallback package when iterations kept losing). The band edges are the
KPI gate's own net_bps thresholds (hard / soft / ideal) of the market profile the soak was gated by,
read from KPI_GATE, so the matrix can never disagree with the gate: the seed's 2.5 / 2.8 / 3.0 on
its wide-tick market, the profile's numbers elsewhere.

"Which knob changes the tuner would try next" is `autotune.tune` (the rule table H1-H6 with its
guards) on the whole soak's totals from the final overrides, as a fresh soak's first decision would
see them. Packages are `knobs.scenario_package`. Pure functions: no I/O, no console; the renderers
return plain text, Markdown or an HTML fragment.
"""

from __future__ import annotations

import html as _html
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from mmbot.knobs import SCENARIO_NAMES, knob_order, scenario_package
from mmbot.numfmt import finite
from mmbot.soak import autotune

BAND_SUCCESS: Final[str] = "SUCCESS"
BAND_OK: Final[str] = "OK"
BAND_WARN: Final[str] = "WARN"
BAND_FAIL: Final[str] = "FAIL"
BAND_NONE: Final[str] = "UNGATED"  # the gate has no net_bps threshold

# the seed's wording (section H.5)
SEED_ACTION: Final[dict[str, str]] = {
    BAND_SUCCESS: "Freeze overrides, run 24h soak for stability",
    BAND_OK: "Review drivers, apply 1-2 targeted adjustments, re-run 3h",
    BAND_WARN: "Significant tuning needed, check dominant drivers, apply package",
    BAND_FAIL: "Review block reasons and component breakdown, may need fallback mode",
    BAND_NONE: "The gate has no net_bps threshold: no band",
}
# adjustments the OK band makes (the seed: "1-2 targeted adjustments")
OK_BAND_MAX_CHANGES: Final[int] = 2
# the seed's package for a dominant cost driver; inventory has none, B (smaller size) is nearest
DRIVER_PACKAGE: Final[dict[str, str]] = {
    "slippage_bps": "A",
    "adverse_bps": "B",
    "inventory_bps": "B",
}
MODE_TUNE: Final[str] = "auto_tune"
MODE_FIXED: Final[str] = "fixed"
MODE_FREEZE: Final[str] = "freeze"

CMD_TUNE_3H: Final[str] = "mmbot soak --hours 3 --iterations 6 --auto-tune"
CMD_FREEZE_24H: Final[str] = "mmbot soak --freeze --hours 24"
NEXT_OVERRIDES_NAME: Final[str] = "next_overrides.json"


def net_bands(gate: Mapping[str, Any]) -> dict[str, Any] | None:
    """The band edges (bps) from KPI_GATE's net_bps checks; None when it has none. A missing soft or
    ideal threshold collapses onto the tier below it."""
    th = {
        c["tier"]: float(c["threshold"]) for c in gate.get("checks", []) if c["metric"] == "net_bps"
    }
    if not th:
        return None
    hard = th.get("hard", th.get("soft", th.get("ideal")))
    soft = th.get("soft", hard)
    ideal = th.get("ideal", soft)
    prof = gate.get("market_profile") or {}
    return {
        "success_from_bps": ideal,
        "ok_from_bps": soft,
        "warn_from_bps": hard,
        "market_profile": prof.get("name"),
        "why": prof.get("why"),
    }


def band_of(net_bps: Any, bands: Mapping[str, Any] | None) -> str:
    """The band of ``net_bps``; a missing or non-finite net (no fills) is FAIL."""
    if bands is None:
        return BAND_NONE
    if not isinstance(net_bps, int | float) or not math.isfinite(float(net_bps)):
        return BAND_FAIL
    if net_bps >= bands["success_from_bps"]:
        return BAND_SUCCESS
    if net_bps >= bands["ok_from_bps"]:
        return BAND_OK
    return BAND_WARN if net_bps >= bands["warn_from_bps"] else BAND_FAIL


def _bps(v: float) -> str:
    """A threshold as the seed writes it (3.0, 2.8, 0.1)."""
    return f"{v:.1f}" if abs(v * 10 - round(v * 10)) < 1e-9 else f"{v:g}"


def band_rule(bands: Mapping[str, Any]) -> str:
    s, o, w = (_bps(bands[k]) for k in ("success_from_bps", "ok_from_bps", "warn_from_bps"))
    return (
        f"SUCCESS >= {s}, OK {o}..{s}, WARN {w}..{o}, FAIL < {w} "
        f"(gate profile {bands['market_profile']}: {bands['why']})"
    )


def dominant_drivers(totals: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The negative-edge drivers, most harmful first (name, kind, hurt_bps)."""
    detail = [d for d in totals.get("neg_edge_drivers_detail") or [] if isinstance(d, Mapping)]
    rows = [
        {"name": str(d.get("name")), "kind": d.get("kind"), "hurt_bps": d.get("hurt_bps")}
        for d in detail
    ]
    return sorted(rows, key=lambda r: -(r["hurt_bps"] or 0.0))


def fallback_status(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The seed's fallback trigger at the end of the soak (negative iterations in a row, counted as
    the tuner counts them) and the soak's own replays of the fallback package. ``refuted``: the
    latest replay was not adopted, i.e. the package lost to the knobs that ran on this market."""
    streak = 0
    if history:
        last = history[-1].get("net_bps")
        last = float(last) if isinstance(last, int | float) else math.nan
        streak = autotune.negative_streak(history[:-1], last)
    replays = replay_evidence(history, "FALLBACK")
    return {
        "negative_streak": streak,
        "triggered": streak >= autotune.FALLBACK_NEG_STREAK,
        "replayed": replays,
        "refuted": bool(replays) and not replays[-1]["adopted"],
    }


def choose_package(
    totals: Mapping[str, Any], fallback: Mapping[str, Any]
) -> tuple[str, str] | None:
    """(package, why): D when the seed's fallback trigger holds and the soak's replays did not
    refute it, else the package of the dominant driver, else C when execution is healthy but
    orders are old (H5's condition); None when none applies."""
    if fallback["triggered"] and not fallback["refuted"]:
        return "D", f"the last {fallback['negative_streak']} iterations had net_bps < 0"
    for d in dominant_drivers(totals):
        pkg = DRIVER_PACKAGE.get(d["name"])
        if pkg is not None:
            note = " (no seed package targets inventory; B, smaller size, is the nearest)"
            extra = note if d["name"] == "inventory_bps" else ""
            return pkg, f"dominant driver {d['name']} hurts {d['hurt_bps']:.3f} bps{extra}"
    if autotune.rule_fires(totals, autotune.RULES_BY_NAME["H5"]):
        return "C", "execution is healthy but order_age_p95_ms > 330 (H5)"
    return None


def replay_evidence(history: Sequence[Mapping[str, Any]], label: str) -> list[dict[str, Any]]:
    """The soak's own replays of candidate ``label`` (e.g. FALLBACK): after which iteration, its
    mean paired gain (bps, the tuner's score) over how many segments, adopted or not."""
    out = []
    for e in history:
        for t in e.get("trials") or []:
            if t.get("candidate") == label:
                segs = list(t.get("segments") or []) + list(t.get("earlier_segments") or [])
                out.append(
                    {
                        "after_iteration": e.get("iteration"),
                        "gain_bps": t.get("gain_bps"),
                        "segments": len(segs),
                        "adopted": bool(t.get("adopted")),
                    }
                )
    return out


def tuner_next(report: Mapping[str, Any], knobs: Mapping[str, float]) -> dict[str, Any]:
    """The rule table's proposal on the whole soak's totals from ``knobs`` (no history)."""
    dec = autotune.tune(report, knobs, [])
    return {
        "fired": list(dec.fired),
        "changes": [c.as_dict() for c in dec.changes],
        "skipped": list(dec.skipped),
        "calm_down": dec.calm_down,
    }


def _apply(knobs: Mapping[str, float], changes: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    out = {k: float(knobs[k]) for k in knob_order(knobs)}
    for c in changes:
        out[c["field"]] = float(c["to"])
    return out


def _changes(old: Mapping[str, float], new: Mapping[str, float], rule: str) -> list[dict]:
    return [
        {"field": k, "from": float(old[k]), "to": float(new[k]), "rule": rule}
        for k in knob_order(old)
        if abs(float(new[k]) - float(old[k])) > 1e-12
    ]


def decide(
    final_report: Mapping[str, Any],
    gate: Mapping[str, Any],
    *,
    final_overrides: Mapping[str, float],
    history: Sequence[Mapping[str, Any]],
    mode: str,
    overrides_path: str,
    stability: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The decision matrix of a finished soak (JSON-ready)."""
    totals = final_report.get("totals") or {}
    net = totals.get("net_bps")
    bands = net_bands(gate)
    band = band_of(net, bands)
    nxt = tuner_next(final_report, final_overrides)
    fallback = fallback_status(history)
    pkg = choose_package(totals, fallback)
    out: dict[str, Any] = {
        "net_bps": net if isinstance(net, int | float) else None,
        "band": band,
        "bands": bands,
        "band_rule": band_rule(bands) if bands else None,
        "seed_action": SEED_ACTION[band],
        "mode": mode,
        "drivers": dominant_drivers(totals),
        "components": {
            k: totals.get(k) for k in ("gross_bps", "fees_eff_bps", "slippage_bps", "inventory_bps")
        },
        "block_ratios": {
            n: (v or {}).get("ratio")
            for n, v in sorted((totals.get("block_reasons") or {}).items())
        },
        "tuner_next": nxt,
        "fallback": fallback,
        "package": None,
        "adjustments": [],
        "next_overrides": None,
        "next_command": None,
        "steps": [],
        "overrides_path": overrides_path,
    }
    if pkg is not None:
        name, why = pkg
        knobs = scenario_package(name, dict(final_overrides))
        out["package"] = {
            "name": name,
            "title": SCENARIO_NAMES[name],
            "why": why,
            "changes": _changes(final_overrides, knobs, f"package {name}"),
            "knobs": knobs,
        }
    _plan(out, final_overrides, stability)
    return out


def _plan(
    out: dict[str, Any], final_overrides: Mapping[str, float], stability: Mapping[str, Any] | None
) -> None:
    """Fill the concrete steps, the proposed knobs and the next command for the band."""
    band, path, pkg = out["band"], out["overrides_path"], out["package"]
    rule_changes = out["tuner_next"]["changes"]
    steps: list[str] = out["steps"]
    if band == BAND_SUCCESS and out["mode"] != MODE_FREEZE:
        steps.append(f"freeze the final overrides in {path} (no further tuning)")
        steps.append("run the 24 h stability soak on them")
        out["next_command"] = CMD_FREEZE_24H
        return
    if band == BAND_SUCCESS:
        breaches = (stability or {}).get("iterations_breaching_hard") or []
        if not breaches:
            steps.append(f"stable: no iteration breached a hard gate; keep {path} frozen")
            steps.append("promote the frozen overrides to paper trading (mmbot paper)")
            return
        steps.append(
            f"not stable: iterations {', '.join(str(i) for i in breaches)} breached a hard gate; "
            "re-tune from the frozen overrides"
        )
        out["next_command"] = CMD_TUNE_3H
        return
    if band == BAND_NONE:
        return
    if band == BAND_OK:
        adj = rule_changes[:OK_BAND_MAX_CHANGES] or (
            pkg["changes"][:OK_BAND_MAX_CHANGES] if pkg else []
        )
        steps.append("targeted adjustments: " + (_fmt_changes(adj) or "none proposed"))
    elif band == BAND_WARN:
        adj = pkg["changes"] if pkg else rule_changes
        what = (
            f"package {pkg['name']} ({pkg['title']}: {pkg['why']})"
            if pkg
            else "the rules' proposal"
        )
        steps.append(f"apply {what}: " + (_fmt_changes(adj) or "no change"))
    else:
        steps.append("components (bps of turnover): " + _fmt_components(out["components"]))
        steps.append("block ratios: " + _fmt_blocks(out["block_ratios"]))
        fb = out["fallback"]
        if fb["triggered"] and fb["refuted"]:
            steps.append(
                f"fallback mode not advised: the last {fb['negative_streak']} iterations had "
                f"net_bps < 0, but this soak replayed the fallback package "
                f"{_fmt_replays(fb['replayed'])} and never kept it"
            )
        if pkg and pkg["name"] == "D":
            adj = pkg["changes"]
            steps.append(f"fallback mode applies ({pkg['why']}): " + _fmt_changes(adj))
        else:
            adj = pkg["changes"] if pkg else rule_changes
            what = f"package {pkg['name']} ({pkg['why']})" if pkg else "the rules' proposal"
            steps.append(f"start from {what}: " + (_fmt_changes(adj) or "no change"))
    if adj:
        out["adjustments"] = list(adj)
        out["next_overrides"] = _apply(final_overrides, adj)
        steps.append(
            f"the proposed knobs are in {NEXT_OVERRIDES_NAME} beside {path}: copy it over "
            f"{path} (or point $MM_RUNTIME_OVERRIDES_JSON at it)"
        )
    steps.append("re-run the 3 h soak with auto-tune")
    out["next_command"] = CMD_TUNE_3H


# ---------------------------------------------------------------------------------------------
# rendering (plain strings; the commands print them)
# ---------------------------------------------------------------------------------------------


def _fmt_changes(changes: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(
        f"{c['field']} {autotune.fmt_knob(c['field'], c['from'])}->"
        f"{autotune.fmt_knob(c['field'], c['to'])} ({c['rule']})"
        for c in changes
    )


def _fmt_replays(replays: Sequence[Mapping[str, Any]]) -> str:
    its = ",".join(str(r["after_iteration"]) for r in replays)
    gains = ", ".join(finite(r["gain_bps"]) for r in replays)
    return f"after iterations {its} (paired gain {gains} bps)"


def _fmt_components(comp: Mapping[str, Any]) -> str:
    return " ".join(f"{k.removesuffix('_bps')}={finite(v)}" for k, v in comp.items())


def _fmt_blocks(blocks: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={finite(v)}" for k, v in blocks.items()) or "none"


def _fmt_drivers(drivers: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{d['name']} hurts {finite(d['hurt_bps'])} bps" for d in drivers) or "none"


# The lines both renderings end with (tuner, package, steps, next command), one row a rendering:
# templates over the same fields, the separator of the firing rules, the text for no change.
_TAIL_TEMPLATES: Final[dict[str, dict[str, str]]] = {
    "text": {
        "tuner": "| decision | TUNER_NEXT | rules firing: {fired} | {changes} |",
        "fired_sep": ",",
        "no_tuner_change": "no change proposed",
        "package": "| decision | PACKAGE | {name} {title}: {why} | {changes} |",
        "step": "| decision | STEP | {step} |",
        "next": "| decision | NEXT | {command} |",
    },
    "markdown": {
        "tuner": "- the tuner would try next (rules firing on the whole soak: {fired}): {changes}",
        "fired_sep": ", ",
        "no_tuner_change": "no change",
        "package": "- package {name} ({title}): {why}: {changes}",
        "step": "- {step}",
        "next": "- next: `{command}`",
    },
}


def _tail_lines(m: Mapping[str, Any], form: str) -> list[str]:
    """What the tuner would try next, the package, the steps and the next command, in ``form``
    (a key of ``_TAIL_TEMPLATES``)."""
    t = _TAIL_TEMPLATES[form]
    nxt = m["tuner_next"]
    fired = t["fired_sep"].join(nxt["fired"]) or "none"
    changes = _fmt_changes(nxt["changes"]) or t["no_tuner_change"]
    lines = [t["tuner"].format(fired=fired, changes=changes)]
    if m["package"]:
        p = m["package"]
        pkg_changes = _fmt_changes(p["changes"]) or "no change"
        lines.append(
            t["package"].format(name=p["name"], title=p["title"], why=p["why"], changes=pkg_changes)
        )
    lines += [t["step"].format(step=step) for step in m["steps"]]
    if m["next_command"]:
        lines.append(t["next"].format(command=m["next_command"]))
    return lines


def text_lines(m: Mapping[str, Any]) -> list[str]:
    """The console / summary.txt lines (``| decision | ... |``)."""
    lines = [
        f"| decision | BAND | {m['band']} | net_bps={finite(m['net_bps'])} | {m['band_rule'] or '-'} |",
        f"| decision | SEED_ACTION | {m['seed_action']} |",
        f"| decision | DRIVERS | {_fmt_drivers(m['drivers'])} |",
    ]
    return lines + _tail_lines(m, "text")


def markdown(m: Mapping[str, Any]) -> str:
    """The '## Decision matrix' section of SOAK_RESULTS.md."""
    lines = ["## Decision matrix", ""]
    b = m["bands"]
    if b:
        lines += [f"Bands from the KPI gate's net_bps thresholds: {m['band_rule']}.", ""]
        lines += ["| net_bps | band | action |", "|---|---|---|"]
        s, o, w = (_bps(b[k]) for k in ("success_from_bps", "ok_from_bps", "warn_from_bps"))
        rows = (
            (f">= {s}", BAND_SUCCESS),
            (f"{o} - {s}", BAND_OK),
            (f"{w} - {o}", BAND_WARN),
            (f"< {w}", BAND_FAIL),
        )
        for rng, name in rows:
            mark = "**" if name == m["band"] else ""
            lines.append(f"| {mark}{rng}{mark} | {mark}{name}{mark} | {SEED_ACTION[name]} |")
        lines.append("")
    lines.append(f"**This soak: net_bps {finite(m['net_bps'])} -> {m['band']}.**")
    lines.append("")
    lines.append(f"- dominant drivers: {_fmt_drivers(m['drivers'])}")
    lines += _tail_lines(m, "markdown")
    return "\n".join(lines) + "\n"


def html_fragment(m: Mapping[str, Any]) -> str:
    """The decision section of the HTML report."""
    esc = _html.escape
    items = "".join(
        f"<li>{esc(s)}</li>" for s in markdown(m).splitlines()[1:] if s.startswith("- ")
    )
    items = items.replace("<li>- ", "<li>")
    return (
        f"<h2>Decision matrix</h2><p><b>{esc(m['band'])}</b>: net_bps {esc(finite(m['net_bps']))}. "
        f"{esc(m['seed_action'])}.</p><p>{esc(m['band_rule'] or '')}</p><ul>{items}</ul>"
    )
