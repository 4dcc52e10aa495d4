"""EDGE_REPORT: aggregate the per-fill decomposition and the action records of one or more runs.

Owns the report's shape (the seed's ``totals`` keys, per-symbol sections, ``runtime``,
``conventions``), the identity assertion on every run, and deterministic JSON output (``dump_json``).
Non-finite or undefined metrics are written as ``null`` (JSON has no NaN); the gate fails them by name.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson

import mmbot
from mmbot.audit.decompose import (
    ADVERSE_HORIZON,
    IDENTITY_REL_TOL,
    MARKOUT_HORIZONS_NS,
    AuditError,
    FillEdges,
    check_identity,
    component_totals,
    decompose,
)
from mmbot.errors import UserError
from mmbot.inputs import read_json
from mmbot.instruments import spec_from_meta
from mmbot.records import (
    ACT_ACKED,
    ACT_BLOCKED,
    ACT_CANCELLED,
    ACT_EXPIRED,
    ACT_FILLED,
    ACT_INTENDED,
    ACT_REJECTED,
    GUARD_REASONS,
    OP_CANCEL,
    OP_REPLACE,
    REASON_NAMES,
    RunResult,
)

SCHEMA_VERSION = 1
# Components in the identity, with their totals key.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("gross", "gross_bps"),
    ("fees", "fees_eff_bps"),
    ("slippage", "slippage_bps"),
    ("inventory", "inventory_bps"),
    ("funding", "funding_bps"),
)
# The totals a summary of a run copies first (the soak's metrics, the sweep's results table): net,
# its main components and the markout cost, in this order.
HEADLINE_KEYS: tuple[str, ...] = (
    "net_bps",
    "gross_bps",
    "fees_eff_bps",
    "slippage_bps",
    "inventory_bps",
    "adverse_bps",
    "adverse_bps_p95",
)

CONVENTIONS: dict[str, Any] = {
    "units": {
        "*_bps": "basis points of turnover (sum of p*q over fills) unless stated",
        "*_ms": "milliseconds",
        "turnover": (
            "settle coin (`settle`), sum of qty*|V(px)| over fills: V(x) = C*x for a linear contract "
            "of size C, -C/x for an inverse one (mmbot.instruments); runs settling in different "
            "coins pool in quote currency (`settle` = USD)"
        ),
        "pnl": "settle coin, cash + position * V(final mid) (marked at the final mid)",
        "turnover_usd, pnl_usd": "quote-currency view: an inverse run's coin amounts x its final mid",
        "component_breakdown.*_quote": "settle coin (the name is kept for readers of schema 1)",
    },
    "signs": {
        "net_bps, gross_bps, fees_eff_bps, slippage_bps, inventory_bps, funding_bps": (
            "contributions: positive helps net; net = gross + fees_eff + slippage + inventory "
            "+ funding exactly"
        ),
        "gross": "per fill s*(mid_at_fill - target_px)*qty: the edge the strategy meant to capture",
        "slippage": (
            "per fill s*(target_px - px)*qty: execution vs intention; a stale quote filled worse than "
            "the current target is negative, price improvement positive; no target -> target_px = px"
        ),
        "fees_eff": "per fill -fee (fee = quote paid); a maker rebate is positive",
        "net_bps_before_rebates": (
            "net_bps minus the maker-rebate part of fees_eff (maker fills with a negative fee); "
            "rebate_bps is that part; fee_tier names the fee schedule tier(s) used"
        ),
        "inventory": "sum over time of position * delta(mid) = sum_i s_i*qty_i*(final_mid - mid_i)",
        "funding": (
            "perpetual funding: at each funding time -rate * position held * |V(mid)|, settle coin "
            "(a long pays a positive rate); 0 without a funding schedule"
        ),
        "adverse_bps, adverse_bps_p95, markouts": (
            "costs: -s*(mid(t+tau) - mid_at_fill)/mid_at_fill*1e4, positive = price moved against us; "
            "informational, not a term of net; fills whose horizon passes the end of data are excluded"
        ),
        "slippage_bps_p95": "p95 of the per-fill slippage cost -slippage_i/(px*qty)*1e4 (positive hurts)",
        "adverse_bps_p95": f"p95 of the per-fill {ADVERSE_HORIZON} markout cost (positive hurts)",
        "adverse_bps": f"notional-weighted mean {ADVERSE_HORIZON} markout cost (positive hurts)",
    },
    "ratios": {
        "cancel_ratio": (
            "orders cancelled (CANCELLED rows) / orders placed (ACKED new and replace requests; "
            "a replace is an amend, it records no cancel)"
        ),
        "replace_ratio": "acked replaces (amends) / orders placed",
        "maker_share_pct": "maker fill notional / fill notional * 100",
        "block_reasons.*.ratio": "blocked attempts with that reason / all intended attempts (0 if none)",
        "order_age_p95_ms": (
            "p95 age of orders when they leave the book: cancelled, filled, expired rows, plus "
            "rejected or acked replace rows that carry an age (the quote they removed/re-priced)"
        ),
        "fills_mid_repaired": "fills whose NaN mid (empty book side) was taken from the last valid mark",
        "marks_nan_mid_dropped": "marks with a NaN mid (empty book side), left out of markouts and plots",
        "ws_lag_p95_ms": (
            "p95 feed latency of processed market events; over several runs the max of the runs' p95s "
            "(an upper bound of the pooled p95)"
        ),
        "tick_bps": (
            "price tick / mean fill price * 1e4 (final mid without fills), turnover-weighted over "
            "runs; the KPI gate's market profile is chosen by it"
        ),
        "neg_edge_drivers": (
            "names of the components (contribution < 0) and costs (adverse_bps > 0) that pull net down, "
            "most harmful first; neg_edge_drivers_detail gives their bps"
        ),
    },
    "percentiles": "numpy linear interpolation; null when there is no sample",
}


# ----------------------------------------------------------------------------------------------
# JSON helpers


def jsonable(obj: Any) -> Any:
    """Recursively turn numpy scalars/arrays into Python values and non-finite floats into None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps_json(obj: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, 2-space indent, NaN/inf -> null, trailing newline."""
    return (
        orjson.dumps(
            jsonable(obj), default=_fallback, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2
        )
        + b"\n"
    )


def _fallback(obj: Any) -> Any:
    # meta may carry objects JSON cannot express (e.g. a config object): keep their text form
    return str(obj)


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def dump_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as deterministic JSON to ``path`` atomically (temp file + rename)."""
    from mmbot.inputs import output_file

    path = output_file("output", Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dumps_json(obj)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_json(path: str | Path, what: str = "JSON file") -> dict:
    """Read a JSON object: `mmbot.inputs.read_json`'s one-line errors, each starting with ``what``
    and the path, plus one when the file holds JSON that is not an object."""
    source = f"{what} {path}"
    data = read_json(source, Path(path))
    if not isinstance(data, dict):
        raise UserError(f"{source}: not a JSON object")
    return data


# ----------------------------------------------------------------------------------------------
# runtime block


def git_revision(repo: Path | None = None) -> str | None:
    """Short git revision of the source tree, or None outside a work tree."""
    repo = repo or Path(__file__).resolve().parents[3]
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    rev = out.stdout.strip()
    return rev or None


def make_runtime(
    *,
    profile: str | None = None,
    overrides: dict | None = None,
    seed: int | None = None,
    data_inputs: Sequence[str | Path] = (),
    utc: str | None = None,
    **extra: Any,
) -> dict:
    """The ``runtime`` block callers pass to build_edge_report: UTC time, version, git revision,
    profile, overrides, seed, data inputs (+ any extra keys). ``utc`` defaults to now."""
    rt = {
        "utc": utc or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "version": mmbot.__version__,
        "git_rev": git_revision(),
        "profile": profile,
        "overrides": dict(overrides or {}),
        "seed": seed,
        "data_inputs": [str(p) for p in data_inputs],
    }
    rt.update(extra)
    return rt


# ----------------------------------------------------------------------------------------------
# metrics


def _p95(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return None
    return float(np.percentile(x, 95.0))


def amount_bps(amount: float, turnover: float) -> float | None:
    """``amount`` in basis points of ``turnover``, as every ``*_bps`` of the report."""
    # Zero fills: every component is 0 and so is its bps (the gate fails the run on `fills`). A
    # non-zero amount over zero turnover (inventory carried in from before the run) has no bps.
    if turnover > 0:
        return amount / turnover * 1e4
    return 0.0 if amount == 0 else None


class ActionTally(NamedTuple):
    """What EDGE_REPORT reads from one run's actions (``_action_counts``): counts, the reasons of
    blocked and rejected attempts, and the ages of the orders leaving the book. A soak keeps these
    for the final report instead of the action rows (`RunDigest`)."""

    placed: int  # ACKED new and replace requests
    replaced: int  # ACKED replaces
    cancels: int  # CANCELLED rows
    intended: int  # INTENDED rows
    blocked_reasons: np.ndarray  # int64[256]: BLOCKED rows by reason code
    rejected_reasons: np.ndarray  # int64[256]: REJECTED rows by reason code
    leave_age_ns: np.ndarray  # float64: ages of the orders leaving the book, in row order


def tally_actions(actions: np.ndarray) -> ActionTally:
    """One run's `ActionTally` (``actions``: its ACTION_DTYPE rows)."""
    kind = actions["kind"].astype(np.int64)
    op = actions["op"].astype(np.int64)
    reason = actions["reason"].astype(np.int64)
    age_ns = actions["order_age_ns"].astype(np.float64)
    # Leaving the book: cancelled, filled, expired rows; also a rejected replace that removed a live
    # order (post-only cross) and an acked replace that re-priced the quote, when the venue records
    # the replaced quote's age (> 0).
    leaves = (kind == ACT_CANCELLED) | (kind == ACT_FILLED) | (kind == ACT_EXPIRED)
    leaves |= ((kind == ACT_REJECTED) | ((kind == ACT_ACKED) & (op == OP_REPLACE))) & (age_ns > 0)
    return ActionTally(
        placed=int(((kind == ACT_ACKED) & (op != OP_CANCEL)).sum()),
        replaced=int(((kind == ACT_ACKED) & (op == OP_REPLACE)).sum()),
        cancels=int((kind == ACT_CANCELLED).sum()),
        intended=int((kind == ACT_INTENDED).sum()),
        blocked_reasons=np.bincount(reason[kind == ACT_BLOCKED], minlength=256),
        rejected_reasons=np.bincount(reason[kind == ACT_REJECTED], minlength=256),
        leave_age_ns=age_ns[leaves],
    )


class RunDigest(NamedTuple):
    """One run as EDGE_REPORT reads it, without its records: its meta, its per-fill decomposition
    (`FillEdges`: fills only), its `ActionTally` and its checks. ``report_from_digests`` over the
    digests of runs gives the same report as ``build_edge_report`` over the runs, so a soak keeps
    digests (a few bytes per fill and per order leaving the book) instead of every run's records."""

    meta: dict
    edges: FillEdges
    actions: ActionTally
    identity_rel_err: float
    pnl_minus_sim_equity: float | None

    @property
    def symbol(self) -> str:
        return str(self.meta.get("symbol") or "")


class _Pool:
    """The digests of several runs (one symbol, or all)."""

    def __init__(self) -> None:
        self.edges: list[FillEdges] = []
        self.metas: list[dict] = []
        self.tallies: list[ActionTally] = []

    def add(self, d: RunDigest) -> None:
        self.edges.append(d.edges)
        self.metas.append(d.meta)
        self.tallies.append(d.actions)


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0)


def _tick_bps(edges: list[FillEdges], metas: list[dict]) -> float | None:
    """The price tick in bps of the price traded: per run tick_px / (its fills' mean price, or its
    final mid without fills) * 1e4, pooled weighted by turnover (equally when nothing traded).
    The KPI gate picks its market profile by it; None when no run states a tick."""
    vals, weights = [], []
    for e, meta in zip(edges, metas, strict=True):
        tick = meta.get("tick_px")
        qty = float(e.qty.sum())
        ref = float(e.notional.sum()) / qty if qty > 0 else e.final_mid_px
        if not isinstance(tick, (int, float, np.integer, np.floating)) or not tick > 0:
            continue
        if not (math.isfinite(ref) and ref > 0):
            continue
        vals.append(float(tick) / ref * 1e4)
        weights.append(float(e.notional.sum()))
    if not vals:
        return None
    w = np.asarray(weights) if sum(weights) > 0 else np.ones(len(vals))
    return float(np.dot(vals, w) / w.sum())


def _fee_tiers(metas: list[dict]) -> dict:
    """``fee_tier`` (one name, or names joined by ' | ' when runs differ) and the schedules used."""
    used: dict[tuple, dict] = {}
    for meta in metas:
        f = meta.get("fees")
        if isinstance(f, dict) and f.get("tier"):
            used[(f.get("market"), f.get("tier"))] = f
        else:
            fm = {
                "market": None,
                "tier": "unrecorded",
                "maker_fee_rate": meta.get("maker_fee_rate"),
                "taker_fee_rate": meta.get("taker_fee_rate"),
            }
            used[(None, "unrecorded")] = fm
    tiers = sorted({str(k[1]) for k in used})
    return {
        "fee_tier": " | ".join(tiers) if tiers else None,
        "fee_schedules": [used[k] for k in sorted(used, key=lambda k: (str(k[0]), str(k[1])))],
    }


def _section(pool: _Pool) -> dict:
    """All totals-level metrics for a pool of runs."""
    edges, metas = pool.edges, pool.metas
    # one settle coin: amounts in it; several (an inverse and a linear run): each run's amounts
    # in quote currency (coin x its final mid), so that nothing adds BTC to USDT
    mixed = len({e.settle for e in edges}) > 1
    out, tot = _totals(edges, mixed)
    turnover = tot["turnover"]
    notional = _cat([e.notional * (e.to_usd if mixed else 1.0) for e in edges])
    maker = _cat([e.maker for e in edges]).astype(bool)
    for comp, key in COMPONENTS:
        out[key] = amount_bps(tot[comp], turnover)
    # the maker-rebate part of the fee component (fills whose fee was negative), and net without it
    rebate = sum(
        float(e.fees[e.maker & (e.fees > 0)].sum()) * (e.to_usd if mixed else 1.0) for e in edges
    )
    out["rebate_bps"] = amount_bps(rebate, turnover)
    out["net_bps_before_rebates"] = amount_bps(tot["pnl"] - rebate, turnover)
    out.update(_fee_tiers(metas))
    out.update(_carry_blocks(metas, turnover))
    out["component_breakdown"] = {
        **{key: out[key] for _, key in COMPONENTS},
        "net_bps": out["net_bps"],
        **{f"{comp}_quote": tot[comp] for comp, _ in COMPONENTS},
        "pnl_quote": tot["pnl"],
        "turnover_quote": turnover,
    }
    out["maker_share_pct"] = (
        float(notional[maker].sum() / notional.sum() * 100.0) if notional.sum() > 0 else None
    )
    out["slippage_bps_p95"] = _p95(_cat([e.slippage_cost_bps for e in edges]))
    markouts = _markouts(edges, notional)
    out["markouts"] = markouts
    out["adverse_bps_p95"] = markouts[ADVERSE_HORIZON]["p95_bps"]
    out["adverse_bps"] = markouts[ADVERSE_HORIZON]["weighted_mean_bps"]
    out.update(_action_counts(pool.tallies))
    out["tick_bps"] = _tick_bps(edges, metas)
    out.update(_ws_lag(metas))
    detail = _neg_edge_drivers(out)
    out["neg_edge_drivers"] = [d["name"] for d in detail]
    out["neg_edge_drivers_detail"] = detail
    return out


def _totals(edges: list[FillEdges], mixed: bool) -> tuple[dict[str, Any], dict[str, float]]:
    """The pool's head fields (fills, settle, turnover, pnl, net, repairs) and the component
    totals (in the settle coin, or in USD when ``mixed``)."""
    tot = dict.fromkeys(
        ("gross", "slippage", "fees", "inventory", "funding", "pnl", "turnover"), 0.0
    )
    settles = sorted({e.settle for e in edges})
    pnl_usd = 0.0
    turnover_usd = 0.0
    for e in edges:
        scale = e.to_usd if mixed else 1.0
        ct = component_totals(e)
        for k, v in ct.items():
            tot[k] += v * scale
        pnl_usd += ct["pnl"] * e.to_usd
        turnover_usd += (
            float(e.notional_usd.sum()) if e.notional_usd is not None else ct["turnover"]
        )
    out: dict[str, Any] = {
        "fills": int(sum(len(e.px) for e in edges)),
        "settle": "USD" if mixed else (settles[0] if settles else ""),
        "turnover": tot["turnover"],
        "pnl": tot["pnl"],
        "turnover_usd": turnover_usd,
        "pnl_usd": pnl_usd,
        "net_bps": amount_bps(tot["pnl"], tot["turnover"]),
        "fills_without_target": int(sum(int(e.no_target.sum()) for e in edges)),
        "fills_mid_repaired": int(sum(e.fills_mid_repaired for e in edges)),
        "marks_nan_mid_dropped": int(sum(e.marks_nan_dropped for e in edges)),
    }
    return out, tot


def _markouts(edges: list[FillEdges], notional: np.ndarray) -> dict[str, dict]:
    """Per horizon: markout cost statistics over the fills whose horizon lies inside the data."""
    markouts: dict[str, dict] = {}
    for lab in MARKOUT_HORIZONS_NS:
        c = _cat([e.markout_cost_bps[lab] for e in edges])
        ok = np.isfinite(c)
        w = notional[ok]
        markouts[lab] = {
            "horizon_ms": MARKOUT_HORIZONS_NS[lab] / 1e6,
            "n": int(ok.sum()),
            "excluded_past_end": int((~ok).sum()),
            "mean_bps": float(c[ok].mean()) if ok.any() else None,
            "weighted_mean_bps": float((c[ok] * w).sum() / w.sum()) if w.sum() > 0 else None,
            "p50_bps": float(np.percentile(c[ok], 50.0)) if ok.any() else None,
            "p95_bps": _p95(c),
        }
    return markouts


def _action_counts(tallies: list[ActionTally]) -> dict[str, Any]:
    """Orders placed / replaced / cancelled, their ratios and ages, the blocked and rejected
    actions by reason (over the runs' `ActionTally`)."""
    placed = sum(t.placed for t in tallies)
    replaced = sum(t.replaced for t in tallies)
    cancels = sum(t.cancels for t in tallies)
    out: dict[str, Any] = {
        "orders_placed": placed,
        "orders_replaced": replaced,
        "orders_cancelled": cancels,
        "cancel_ratio": cancels / placed if placed > 0 else None,
        "replace_ratio": replaced / placed if placed > 0 else None,
    }
    out["order_age_p95_ms"] = _p95(_cat([t.leave_age_ns for t in tallies]) / 1e6)
    intended = sum(t.intended for t in tallies)
    out["intended_actions"] = intended
    counts = sum((t.blocked_reasons for t in tallies), np.zeros(256, np.int64))
    block: dict[str, dict] = {}
    for code in sorted(set(GUARD_REASONS) | {int(c) for c in np.nonzero(counts)[0]}):
        name = REASON_NAMES.get(code, f"reason_{code}")
        cnt = int(counts[code])
        block[name] = {"count": cnt, "ratio": cnt / intended if intended > 0 else 0.0}
    out["block_reasons"] = block
    out["blocked_actions"] = int(counts.sum())
    rcounts = sum((t.rejected_reasons for t in tallies), np.zeros(256, np.int64))
    out["reject_reasons"] = {
        REASON_NAMES.get(int(c), f"reason_{int(c)}"): int(rcounts[c])
        for c in np.nonzero(rcounts)[0]
    }
    return out


def _ws_lag(metas: list[dict]) -> dict[str, Any]:
    """The runs' own websocket-lag p95s: their max (an upper bound of the pooled p95)."""
    lags = []
    for meta in metas:
        v = meta.get("ws_lag_p95_ms")
        if isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(float(v)):
            lags.append(float(v))
    return {"ws_lag_p95_ms": max(lags) if lags else None, "ws_lag_runs_reporting": len(lags)}


def _neg_edge_drivers(out: dict[str, Any]) -> list[dict]:
    """Components that pull net down and costs that hurt, most harmful first."""
    detail = []
    for _, key in COMPONENTS:
        v = out[key]
        if v is not None and v < 0:
            detail.append({"name": key, "bps": v, "hurt_bps": -v, "kind": "component"})
    adv = out["adverse_bps"]
    if adv is not None and adv > 0:
        detail.append({"name": "adverse_bps", "bps": adv, "hurt_bps": adv, "kind": "cost"})
    detail.sort(key=lambda d: (-d["hurt_bps"], d["name"]))
    return detail


def _carry_blocks(metas: Sequence[dict], turnover: float) -> dict:
    """``position_close_out`` (runs whose end position was closed at taker cost, booked as a fill:
    ``mmbot.soak.closeout``) and ``position_carry`` (runs that started from a carried account:
    ``mmbot.soak.account_carry``), when the runs have them."""
    out: dict = {}
    closes = [m["close_out"] for m in metas if isinstance(m.get("close_out"), dict)]
    if closes:
        done = [c for c in closes if c.get("closed")]
        cost = float(sum(c["cost"] for c in done))
        out["position_close_out"] = {
            "rule": str((done or closes)[0].get("rule") or closes[0].get("why") or ""),
            "runs": len(closes),
            "closed": len(done),
            "cost": cost,
            "cost_bps": amount_bps(cost, turnover),
            "closes": [
                {k: c[k] for k in ("position_qty", "px", "fee", "cost") if k in c} for c in done
            ],
        }
    carries = [m["carry_in"] for m in metas if isinstance(m.get("carry_in"), dict)]
    if carries:
        seam = float(sum(c["seam_pnl"] for c in carries))
        out["position_carry"] = {
            "rule": str(carries[0].get("rule") or ""),
            "runs": len(carries),
            "carried": sum(1 for c in carries if c["position_qty"] != 0.0),
            "max_abs_position_qty": max(abs(float(c["position_qty"])) for c in carries),
            "seam_pnl": seam,
            "seam_bps": amount_bps(seam, turnover),
        }
    return out


def digest_run(r: RunResult, label: str) -> RunDigest:
    """Decompose one run, assert its identity gross + slippage + fees + inventory = pnl and, when
    its meta carries ``sim_equity`` (the venue's own cash + position × final mid, minus
    ``initial_equity`` if given), that the audit's pnl equals it (AuditError naming ``label``)."""
    e = decompose(r, label)
    rel = check_identity(e, label)
    sim_diff = None
    sim_eq = r.meta.get("sim_equity")
    # a NaN sim equity (position held while a book side was empty at the end) cannot be compared
    if isinstance(sim_eq, (int, float)) and math.isfinite(float(sim_eq)):
        init = float(r.meta.get("initial_equity", 0.0) or 0.0)
        sim_pnl = float(sim_eq) - init + e.funding  # the venue books no funding
        ct = component_totals(e)
        scale = max(1.0, ct["turnover"], abs(e.pnl))
        sim_diff = e.pnl - sim_pnl
        if not abs(sim_diff) <= IDENTITY_REL_TOL * scale:
            raise AuditError(
                f"{label}: audit pnl {e.pnl!r} differs from the simulator's equity {sim_pnl!r} "
                f"(diff {sim_diff:.3e}); records and venue disagree"
            )
    return RunDigest(r.meta, e, tally_actions(r.actions), rel, sim_diff)


def digest_runs(results: Sequence[RunResult]) -> list[RunDigest]:
    """`digest_run` of each run, labelled ``run {i}`` (UserError for a non-RunResult)."""
    out = []
    for i, r in enumerate(results):
        if not isinstance(r, RunResult):
            raise UserError(f"run {i}: expected a RunResult, got {type(r).__name__}")
        sym = str(r.meta.get("symbol") or "")
        out.append(digest_run(r, f"run {i}" + (f" ({sym})" if sym else "")))
    return out


def _run_row(i: int, d: RunDigest) -> dict:
    """One run's entry in the report's ``runs``."""
    e, meta = d.edges, d.meta
    return {
        "index": i,
        "name": meta.get("name") or meta.get("run_name"),
        "symbol": d.symbol or None,
        "fills": int(len(e.px)),
        "pnl": e.pnl,
        "final_mid_px": e.final_mid_px,
        "market": spec_from_meta(meta).label(),
        "settle": e.settle,
        "pnl_usd": e.pnl * e.to_usd,
        "identity_rel_err": d.identity_rel_err,
        "pnl_minus_sim_equity": d.pnl_minus_sim_equity,
        "mid_crosscheck": meta.get("mid_crosscheck"),
        "start_ts": meta.get("start_ts"),
        "end_ts": meta.get("end_ts"),
    }


def report_from_digests(digests: Sequence[RunDigest], runtime: dict | None = None) -> dict:
    """EDGE_REPORT of the runs whose digests (`digest_run`) are given, in run order."""
    all_pool = _Pool()
    by_symbol: dict[str, _Pool] = {}
    for d in digests:
        all_pool.add(d)
        by_symbol.setdefault(d.symbol or "unknown", _Pool()).add(d)
    runs = [_run_row(i, d) for i, d in enumerate(digests)]
    report = {
        "schema_version": SCHEMA_VERSION,
        "totals": _section(all_pool),
        "symbols": {sym: _section(p) for sym, p in sorted(by_symbol.items())},
        "runs": runs,
        "identity": {
            "checked_runs": len(runs),
            "max_rel_err": max([0.0, *(d.identity_rel_err for d in digests)]),
            "tolerance_rel": IDENTITY_REL_TOL,
            "statement": (
                "gross + slippage + fees + inventory + funding = pnl marked at the final mid"
            ),
        },
        "runtime": dict(runtime or {}),
        "conventions": CONVENTIONS,
    }
    return jsonable(report)


def build_edge_report(results: Sequence[RunResult], runtime: dict | None = None) -> dict:
    """EDGE_REPORT for one or more runs: `report_from_digests` of their `digest_runs` (every run's
    identity and simulator equity asserted; AuditError on violation)."""
    return report_from_digests(digest_runs(results), runtime)


__all__ = [
    "AuditError",
    "CONVENTIONS",
    "build_edge_report",
    "digest_run",
    "digest_runs",
    "dump_json",
    "dumps_json",
    "load_json",
    "make_runtime",
    "report_from_digests",
]
