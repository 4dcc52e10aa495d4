"""KPI gate: thresholds from config (hard / soft / ideal) applied to an EDGE_REPORT's totals.

Thresholds belong to a market profile (DESIGN.md 'Markets and thresholds'): the shipped
``gates.json`` holds one set per profile, each with the smallest tick (in bps of price) it applies
to; a report is gated by the profile with the largest ``min_tick_bps`` not above the report's
``tick_bps``, or by ``default_profile`` when the report states no tick. A file with the tiers at its
top level (no profiles) applies to every market. KPI_GATE says which profile it used and why.

Verdict: FAIL if any hard check fails, else WARN if any soft check fails, else PASS (ideal checks are
reported, they never change the verdict).

Several symbols: each symbol section of the report is gated under its own market profile (by its own
tick), and the pooled totals (the portfolio line) under the strictest profile any symbol needs (the
largest ``min_tick_bps`` among them), so a major's tiny tick can never relax another symbol's bar.
The verdict is the worst of the symbols' and the portfolio's: pooling never turns a symbol's FAIL
into a PASS. A thresholds file whose profile has no hard check is refused (it could never FAIL). A metric that is missing, null, non-numeric or non-finite
fails its check by name. ``gate_command`` is ``mmbot gate``: exit 0 PASS/WARN, 1 FAIL, UserError
(exit 2) for unreadable input.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mmbot.config import CONFIG_DIR
from mmbot.errors import UserError

TIERS = ("hard", "soft", "ideal")
OPS = {"ge": ">=", "le": "<="}


def default_thresholds_path() -> Path:
    """The shipped thresholds (``mmbot/assets/config/gates.json``)."""
    return CONFIG_DIR / "gates.json"


def _validate_tiers(data: dict, src: str, extra: frozenset[str] = frozenset()) -> dict:
    out: dict[str, Any] = {}
    for tier in TIERS:
        checks = data.get(tier, {})
        if not isinstance(checks, dict):
            raise UserError(f"{src}: '{tier}' must be an object of metric -> {{op, threshold}}")
        out[tier] = {}
        for metric, spec in checks.items():
            if not isinstance(spec, dict):
                raise UserError(f"{src}: {tier}.{metric} must be an object with op and threshold")
            op = spec.get("op")
            thr = spec.get("threshold")
            if op not in OPS:
                raise UserError(f"{src}: {tier}.{metric}.op must be 'ge' or 'le', got {op!r}")
            if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not math.isfinite(thr):
                raise UserError(f"{src}: {tier}.{metric}.threshold must be a finite number")
            out[tier][metric] = {"op": op, "threshold": float(thr)}
    unknown = set(data) - set(TIERS) - {"description"} - extra
    if unknown:
        raise UserError(f"{src}: unknown key(s) {', '.join(sorted(unknown))}")
    return out


def _require_hard(tiers: dict, src: str) -> None:
    if not tiers["hard"]:
        raise UserError(f"{src}: no hard check: a gate that can never FAIL is refused")


def _validate_thresholds(data: dict, src: str) -> dict:
    """Normalise a thresholds file to ``{"default_profile", "market_profiles": {name: {min_tick_bps,
    hard, soft, ideal}}}``; a file of bare tiers becomes one profile that applies everywhere."""
    if not isinstance(data, dict):
        raise UserError(f"{src}: expected a JSON object")
    if "market_profiles" not in data:
        tiers = _validate_tiers(data, src)
        _require_hard(tiers, src)
        return {
            "default_profile": "custom",
            "market_profiles": {"custom": {"min_tick_bps": 0.0, **tiers}},
        }
    unknown = set(data) - {"description", "default_profile", "market_profiles"}
    if unknown:
        raise UserError(f"{src}: unknown key(s) {', '.join(sorted(unknown))}")
    profiles = data["market_profiles"]
    if not isinstance(profiles, dict) or not profiles:
        raise UserError(
            f"{src}: 'market_profiles' must be a non-empty object of name -> thresholds"
        )
    out: dict[str, dict] = {}
    for name, prof in profiles.items():
        where = f"{src}: market_profiles.{name}"
        if not isinstance(prof, dict):
            raise UserError(f"{where} must be an object")
        lo = prof.get("min_tick_bps")
        if (
            isinstance(lo, bool)
            or not isinstance(lo, (int, float))
            or not (math.isfinite(lo) and lo >= 0)
        ):
            raise UserError(f"{where}.min_tick_bps must be a finite number >= 0")
        out[name] = {
            "min_tick_bps": float(lo),
            **_validate_tiers(prof, where, frozenset({"min_tick_bps"})),
        }
    lows = sorted(p["min_tick_bps"] for p in out.values())
    if len(set(lows)) != len(lows):
        raise UserError(f"{src}: two market profiles have the same min_tick_bps")
    if lows[0] != 0.0:
        raise UserError(f"{src}: one market profile must have min_tick_bps 0 (every tick is gated)")
    default = data.get("default_profile")
    if default not in out:
        raise UserError(
            f"{src}: default_profile must name one of the market profiles ({', '.join(sorted(out))})"
        )
    for name, prof in out.items():
        _require_hard(prof, f"{src}: market_profiles.{name}")
    return {"default_profile": default, "market_profiles": out}


def load_thresholds(path: Path | None = None) -> dict:
    """Read and validate gate thresholds (default: the shipped gates.json); UserError on bad input.
    Returned normalised (see `_validate_thresholds`)."""
    from mmbot.audit.edge_report import load_json

    p = Path(path) if path is not None else default_thresholds_path()
    return _validate_thresholds(load_json(p, "gate thresholds"), str(p))


def select_profile(thresholds: dict, tick_bps: Any) -> tuple[str, dict, str]:
    """(profile name, its tiers, why) for a report whose tick is ``tick_bps`` (None: unknown)."""
    profiles = thresholds["market_profiles"]
    if len(profiles) == 1:
        (name,) = profiles
        return name, profiles[name], "the only profile"
    ok = isinstance(tick_bps, (int, float)) and not isinstance(tick_bps, bool)
    if not ok or not math.isfinite(tick_bps):
        name = thresholds["default_profile"]
        return name, profiles[name], "the report states no tick_bps: default profile"
    name = max(
        (n for n, p in profiles.items() if p["min_tick_bps"] <= tick_bps),
        key=lambda n: profiles[n]["min_tick_bps"],
    )
    lo = profiles[name]["min_tick_bps"]
    return name, profiles[name], f"tick_bps {tick_bps:.4g} >= min_tick_bps {lo:g}"


def _metric(totals: dict, name: str) -> tuple[int | float | None, str | None]:
    """(value, why-it-fails) for a metric of the report's totals."""
    if name not in totals:
        return None, "missing"
    v = totals[name]
    if v is None:
        return None, "null"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None, f"not a number ({type(v).__name__})"
    if not math.isfinite(v):
        return float(v), "non-finite"
    return v, None


_RANK = {"PASS": 0, "WARN": 1, "FAIL": 2}


def evaluate(edge_report: dict, thresholds: dict | None = None) -> dict:
    """KPI_GATE for an EDGE_REPORT: verdict PASS/WARN/FAIL, every check with value, threshold and
    result, and the failed metric names per tier. With several symbols: ``symbols`` holds each
    symbol's own gate, the top-level checks are the portfolio line (module docstring), and
    ``failed_hard``/``failed_soft`` also name the symbols' fails as ``SYMBOL:metric``."""
    cfg = (
        _validate_thresholds(thresholds, "thresholds")
        if thresholds is not None
        else load_thresholds()
    )
    totals = edge_report.get("totals") if isinstance(edge_report, dict) else None
    if not isinstance(totals, dict):
        raise UserError("EDGE_REPORT has no 'totals' object")
    symbols = edge_report.get("symbols")
    symbols = symbols if isinstance(symbols, dict) and len(symbols) > 1 else {}
    per_symbol = {sym: _gate_section(cfg, sec) for sym, sec in sorted(symbols.items())}
    strictest = None
    if per_symbol:
        profiles = cfg["market_profiles"]
        strictest = max(
            (g["market_profile"]["name"] for g in per_symbol.values()),
            key=lambda n: profiles[n]["min_tick_bps"],
        )
    out = _gate_section(cfg, totals, strictest)
    if per_symbol:
        worst = max([out["verdict"]] + [g["verdict"] for g in per_symbol.values()], key=_RANK.get)
        out["portfolio_verdict"] = out["verdict"]
        out["verdict"] = worst
        out["symbols"] = per_symbol
        for sym, g in per_symbol.items():
            for tier in TIERS:
                out[f"failed_{tier}"] += [f"{sym}:{m}" for m in g[f"failed_{tier}"]]
        out["ideal_met"] = not out["failed_ideal"]
        out["rule"] += (
            "; each symbol gated under its own market profile, the portfolio under the strictest "
            "of theirs; the verdict is the worst of all"
        )
    return out


def _gate_section(cfg: dict, totals: dict, profile_name: str | None = None) -> dict:
    """The gate of one report section (totals or a symbol) under the profile its tick selects, or
    under ``profile_name`` when given (the portfolio line)."""
    if not isinstance(totals, dict):
        raise UserError("EDGE_REPORT section is not an object")
    if profile_name is None:
        profile, th, chosen_because = select_profile(cfg, totals.get("tick_bps"))
    else:
        profile, th = profile_name, cfg["market_profiles"][profile_name]
        chosen_because = "portfolio: the strictest market profile of its symbols"
    checks: list[dict[str, Any]] = []
    failed: dict[str, list[str]] = {t: [] for t in TIERS}
    for tier in TIERS:
        for metric in sorted(th[tier]):
            spec = th[tier][metric]
            value, why = _metric(totals, metric)
            if why is None:
                ok = (
                    value >= spec["threshold"] if spec["op"] == "ge" else value <= spec["threshold"]
                )
            else:
                ok = False
            check = {
                "tier": tier,
                "metric": metric,
                "op": spec["op"],
                "threshold": spec["threshold"],
                "value": value if why is None else None,
                "result": "pass" if ok else "fail",
            }
            if why is not None:
                check["reason"] = f"{metric} is {why}"
            checks.append(check)
            if not ok:
                failed[tier].append(metric)
    verdict = "FAIL" if failed["hard"] else "WARN" if failed["soft"] else "PASS"
    return {
        "verdict": verdict,
        "market_profile": {
            "name": profile,
            "tick_bps": totals.get("tick_bps"),
            "why": chosen_because,
        },
        "checks": checks,
        "failed_hard": failed["hard"],
        "failed_soft": failed["soft"],
        "failed_ideal": failed["ideal"],
        "ideal_met": not failed["ideal"],
        "rule": "FAIL if any hard check fails, else WARN if any soft check fails, else PASS",
    }


def summary_line(gate: dict) -> str:
    """One line for the terminal, e.g. ``KPI_GATE=FAIL hard: net_bps, fills``."""
    parts = [f"KPI_GATE={gate['verdict']}"]
    if "market_profile" in gate:
        parts.append(f"profile: {gate['market_profile']['name']}")
    for sym, g in (gate.get("symbols") or {}).items():
        parts.append(f"{sym}: {g['verdict']} ({g['market_profile']['name']})")
    if gate["failed_hard"]:
        parts.append("hard: " + ", ".join(gate["failed_hard"]))
    if gate["failed_soft"]:
        parts.append("soft: " + ", ".join(gate["failed_soft"]))
    return " | ".join(parts)


def failed_check_lines(gate: dict) -> list[str]:
    """One line per failed hard/soft check with its value and threshold, e.g.
    ``hard net_bps = -1.23, needs >= 0``."""
    out = []
    for c in gate.get("checks", []):
        if c["result"] != "fail" or c["tier"] == "ideal":
            continue
        need = f"needs {OPS[c['op']]} {c['threshold']:g}"
        value = c.get("reason") or f"{c['metric']} = {c['value']:.4g}"
        out.append(f"{c['tier']} {value}, {need}")
    return out


def gate_command(report_path: Path, out_path: Path, thresholds_path: Path | None = None) -> int:
    """``mmbot gate``: read EDGE_REPORT, write KPI_GATE, print the verdict; 0 PASS/WARN, 1 FAIL."""
    from mmbot.audit.edge_report import dump_json, load_json

    report = load_json(report_path, "EDGE_REPORT")
    if not isinstance(report.get("totals"), dict):
        raise UserError(f"EDGE_REPORT {report_path} has no 'totals' object")
    gate = evaluate(report, load_thresholds(thresholds_path))
    dump_json(gate, out_path)
    for c in gate["checks"]:
        if c["result"] == "fail" and c["tier"] != "ideal":
            shown = (
                c.get("reason") or f"{c['value']:.4g} {OPS[c['op']]} {c['threshold']:g} is false"
            )
            print(f"| gate | {c['tier'].upper()} FAIL | {c['metric']}: {shown} |")
    print(summary_line(gate))
    print(f"wrote {out_path}")
    return 1 if gate["verdict"] == "FAIL" else 0
