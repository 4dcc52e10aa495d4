"""``artifacts/soak/summary.txt``: the short human summary of a finished soak (seed, section H.1).

Owns its text: what ran, net_bps per iteration, whether the fallback package fired and when, the
failing gate checks, the final overrides and where they are, the decision matrix and (frozen soaks)
the stability figures. Built from the same dicts the JSON exports hold, so it cannot disagree
with them. Pure: returns a string.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmbot.gate import OPS
from mmbot.knobs import knob_order
from mmbot.numfmt import finite
from mmbot.soak import autotune, decision, stability


def fallback_lines(rows: list[Mapping[str, Any]]) -> list[str]:
    """When the fallback package was proposed (two negative iterations) and whether it was adopted."""
    out = []
    for r in rows:
        at = r.get("autotune") or {}
        proposed = [t for t in at.get("trials") or [] if t.get("candidate") == "FALLBACK"]
        if at.get("fallback"):
            out.append(
                f"fallback: FIRED after iteration {r['iteration']} (applied from iteration {r['iteration'] + 1})"
            )
        elif proposed:
            g = proposed[0].get("gain_bps")
            out.append(
                f"fallback: proposed after iteration {r['iteration']}, not adopted "
                f"(replayed gain {finite(g)} bps did not beat the noise floor)"
            )
    return out or ["fallback: not fired"]


def failing_checks(gate: Mapping[str, Any]) -> list[str]:
    out = []
    for c in gate.get("checks", []):
        if c["result"] != "fail" or c["tier"] == "ideal":
            continue
        shown = (
            c.get("reason") or f"{finite(c['value'], 4)} {OPS[c['op']]} {c['threshold']:g} is false"
        )
        out.append(f"  {c['tier'].upper()} {c['metric']}: {shown}")
    return out or ["  none"]


def render(sm: Mapping[str, Any], gate: Mapping[str, Any], overrides_path: str) -> str:
    """summary.txt for the soak described by ``sm`` (soak_metrics.json's content)."""
    mode = "freeze" if sm.get("freeze") else ("auto-tune" if sm["auto_tune"] else "fixed knobs")
    rows = list(sm["per_iteration"])
    final = sm["final"]
    lines = [
        f"mmbot soak: market={sm['market']} hours={sm['hours']:g} iterations={sm['iterations']} "
        f"mode={mode} seed={sm['seed']} profile={sm['profile']}",
        f"verdict={gate.get('verdict')} (gate profile {(gate.get('market_profile') or {}).get('name')}) "
        f"net_bps={finite(final.get('net_bps'))} fills={final.get('fills')}",
        "",
        "iterations:",
    ]
    for r in rows:
        m = r["metrics"]
        ch = (r.get("autotune") or {}).get("changes") or []
        lines.append(
            f"  iter={r['iteration']} net_bps={finite(m.get('net_bps'))} fills={m.get('fills')} "
            f"verdict={r.get('verdict')} changes={len(ch)}"
            + (f" hard_fail={','.join(r['failed_hard'])}" if r.get("failed_hard") else "")
        )
    lines += ["", *fallback_lines(rows), "", "failing checks (whole soak):", *failing_checks(gate)]
    src = f"best iteration {sm['best_iteration']}" if sm["auto_tune"] else "unchanged"
    lines += ["", f"final overrides ({src}), in {overrides_path}:"]
    lines += [
        f"  {k}={autotune.fmt_knob(k, sm['final_overrides'][k])}"
        for k in knob_order(sm["final_overrides"])
    ]
    if sm.get("stability"):
        lines += ["", *stability.text_lines(sm["stability"])]
    if sm.get("decision"):
        lines += ["", *decision.text_lines(sm["decision"])]
    return "\n".join(lines) + "\n"
