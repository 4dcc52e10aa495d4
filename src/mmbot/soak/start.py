"""What a soak starts from: its arguments checked, its profile, starting knobs and market.

Owns `SoakSettings` (a soak's arguments, built once by the caller and passed whole) and `prepare`
(everything fixed for the whole soak, a `SoakPlan`, built from them before anything is written:
bad input raises `UserError` naming it) and the pieces it uses: argument and output path
checks, the starting knobs (profile + runtime overrides + the quoter's tunable knobs) and where
they came from, and the market with its notes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmbot import env
from mmbot.errors import UserError
from mmbot.knobs import KNOB_NAMES, quoter_param, tunable_quoter_knobs
from mmbot.soak import autotune
from mmbot.soak.artifacts import SoakPaths
from mmbot.soak.market import NS_PER_HOUR, SYNTH_START_NS, Market, resolve_market


def validate_args(hours: float, iterations: int) -> None:
    if not isinstance(hours, int | float) or not math.isfinite(float(hours)) or hours <= 0:
        raise UserError(f"--hours must be a positive number of market hours, got {hours}")
    if not isinstance(iterations, int) or iterations < 1:
        raise UserError(f"--iterations must be at least 1, got {iterations}")
    if iterations > 10_000:
        raise UserError(f"--iterations {iterations} is too many (at most 10000)")
    iter_ns = float(hours) * NS_PER_HOUR / iterations
    if iter_ns < 1e9:
        raise UserError(
            f"--hours {hours} over --iterations {iterations} gives iterations under 1 s of market time"
        )


def validate_paths(paths: SoakPaths) -> None:
    """Output locations that cannot be written are refused before the soak starts (UserError
    naming the option), by the rules backtest and sweep check theirs with (`mmbot.inputs`)."""
    from mmbot import inputs

    inputs.output_dir("--artifacts", paths.root)
    for flag, p in (
        ("--export-json", paths.export_json),
        ("--export-md", paths.export_md),
        ("--gate-summary", paths.gate_summary),
    ):
        inputs.output_file(flag, p)


def _load_knobs(
    profile: str | None, overrides_root: Path
) -> tuple[Any, dict[str, float], dict[str, float], list[str]]:
    from mmbot.config import effective_knobs, load_overrides, load_profile

    prof = load_profile(profile)
    overrides, messages = load_overrides(
        None, default_file=overrides_root / "soak" / "runtime_overrides.json"
    )
    knobs = effective_knobs(prof, overrides)
    return prof, dict(overrides), {k: float(knobs[k]) for k in KNOB_NAMES}, list(messages)


def _knob_source(artifacts: Path, overrides: Mapping[str, float]) -> str:
    """Where the starting knobs came from, said plainly (an earlier soak's file is hidden state)."""
    from mmbot.config import overrides_source

    src = overrides_source(None, default_file=artifacts / "soak" / "runtime_overrides.json")
    if src is None or not overrides:
        return "the profile (no overrides)"
    return f"profile + overrides from {src} ({', '.join(sorted(overrides))})"


def _with_file_params(
    prof: Any,
    artifacts: Path,
    overrides: Mapping[str, float],
    strategy_options: Mapping[str, Any] | None,
) -> Any:
    """``prof`` with the overrides' quoter parameters (``param.NAME``); --param wins."""
    from mmbot.config import overrides_source, with_override_params

    src = overrides_source(None, default_file=artifacts / "soak" / "runtime_overrides.json")
    keep = (strategy_options or {}).get("params")
    return with_override_params(prof, overrides, src or "overrides", keep=keep)


def quoter_knobs(prof: Any, tune: bool) -> tuple[dict[str, float], list[str]]:
    """The starting values of the profile's quoter's tunable knobs (``knobs.QUOTER_KNOBS``; the
    quoter's defaults under the profile's, --param's and the overrides' values) and notes. When
    ``tune``, values outside the tuner's limits are clamped (one note each)."""
    from mmbot.strategy.registry import resolve

    spec = prof.strategy.name
    limits = tunable_quoter_knobs(spec)
    if not limits:
        return {}, []
    values = {**resolve(spec).params, **prof.strategy.params}
    out: dict[str, float] = {}
    notes: list[str] = []
    for name, (lo, hi) in limits.items():
        raw = float(values[quoter_param(name)])
        v = autotune.snap(name, raw) if tune else raw
        if v != raw:
            notes.append(
                f"quoter knob {name}={raw:g} outside the tuner's limits [{lo:g}, {hi:g}] or grid: "
                f"the soak starts from {v:g}"
            )
        out[name] = v
    return out, notes


@dataclass(frozen=True)
class SoakSettings:
    """A soak's arguments (`mmbot soak`'s options, the demo's), built once by the caller and
    given whole to `mmbot.soak.loop.run_soak`; `prepare` checks them."""

    hours: float  # market hours (a capture shorter than this is soaked whole)
    iterations: int
    auto_tune: bool
    paths: SoakPaths  # the artifacts root and the export paths
    market: str = "synthetic"  # `mmbot.soak.market.resolve_market`
    profile: str | None = None  # None: $MM_PROFILE or S1
    seed: int = 1
    freeze: bool = False  # run the overrides unchanged (not with auto_tune)
    strategy_options: Mapping[str, Any] | None = None  # `mmbot.config.with_strategy_options`'s


@dataclass
class SoakPlan:
    """Everything fixed for the whole soak (built by `prepare` before anything is written)."""

    settings: SoakSettings  # as given (``hours`` below: what the market allows of them)
    prof: Any
    prof_name: str
    overrides_in: dict[str, float]  # the runtime overrides file's values, as read
    knobs: dict[str, float]  # the first iteration's knobs (the six and the quoter's)
    notes: list[str]  # the profile's, the overrides' and the market's notes, in that order
    mkt: Market
    thresholds: Any  # the KPI gate's (`mmbot.gate.load_thresholds`)
    total_ns: int  # market time soaked (a capture's span when it is shorter than --hours)
    start_ns: int
    iter_ns: int

    @property
    def hours(self) -> float:
        return self.total_ns / NS_PER_HOUR

    @property
    def mode(self) -> str:
        s = self.settings
        return "freeze" if s.freeze else "auto_tune" if s.auto_tune else "fixed"


def prepare(settings: SoakSettings) -> SoakPlan:
    """The soak's plan from its settings; a bad one raises `UserError` naming it."""
    s = settings
    validate_args(s.hours, s.iterations)
    if s.freeze and s.auto_tune:
        raise UserError(
            "--freeze runs the overrides unchanged: it cannot be combined with --auto-tune"
        )
    validate_paths(s.paths)
    artifacts = s.paths.root
    prof, overrides_in, knobs, messages = _load_knobs(s.profile, artifacts)
    if s.strategy_options:  # --strategy, --param and the equal-limit flags (mmbot.config)
        from mmbot.backtest import check_strategy
        from mmbot.config import with_strategy_options

        prof = check_strategy(with_strategy_options(prof, **s.strategy_options))
    prof = _with_file_params(prof, artifacts, overrides_in, s.strategy_options)
    q_knobs, q_notes = quoter_knobs(prof, s.auto_tune)
    knobs.update(q_knobs)  # the quoter's tunable knobs run (and are tuned) beside the six
    messages += q_notes
    if s.auto_tune:
        messages += _unread_note(prof.strategy.name)
    mkt = _soak_market(s.market, prof)
    from mmbot.gate import load_thresholds

    thresholds = load_thresholds()
    total_ns, start_ns = _market_span(mkt, s.hours)
    prof_name = getattr(prof, "name", None) or (s.profile or env.read("MM_PROFILE") or "S1")
    return SoakPlan(
        settings=s,
        prof=prof,
        prof_name=prof_name,
        overrides_in=overrides_in,
        knobs=knobs,
        notes=list(getattr(prof, "messages", []) or []) + messages + mkt.notes,
        mkt=mkt,
        thresholds=thresholds,
        total_ns=total_ns,
        start_ns=start_ns,
        iter_ns=total_ns // s.iterations,
    )


def _unread_note(spec: str) -> list[str]:
    """One note naming the seed's runtime knobs the quoter does not read (the tuner leaves them)."""
    from mmbot.soak.autotune import tunable_knobs

    unread = [k for k in KNOB_NAMES if k not in tunable_knobs(spec)]
    if not unread:
        return []
    return [
        f"auto-tune: {spec} does not read {', '.join(unread)}; the tuner leaves them as they are"
    ]


def _soak_market(market: str, prof: Any) -> Market:
    """The market with its funding (synthetic) and the notes on what the soak carries."""
    mkt = resolve_market(market)
    if mkt.kind == "synthetic":
        from mmbot.data.synthetic_funding import FundingAccrual

        mkt.funding = FundingAccrual.from_profile(prof)
    mkt.notes.append(
        "positions: carried across the 30-min chunks and the iterations (each chunk starts with "
        "the previous one's end position, its PnL and fees from zero; EDGE_REPORT "
        "position_carry); the soak's end "
        "position is closed at its final touch with the taker fee, booked as a taker fill "
        "(EDGE_REPORT position_close_out); the kill switch (max_loss), the drawdown stop and the "
        "spot balance check see the soak's cumulative PnL, and a latched kill switch stops the soak"
    )
    if mkt.funding is not None:
        mkt.notes.append(
            f"funding: the synthetic market's series every {prof.funding.interval_s} s "
            "(interest + premium from its mid path; profile 'funding'), charged on the position "
            "held at each funding time (EDGE_REPORT funding_bps)"
        )
    return mkt


def _market_span(mkt: Market, hours: float) -> tuple[int, int]:
    """(market time to soak, where it starts): a capture shorter than ``hours`` is soaked whole."""
    total_ns = int(round(float(hours) * NS_PER_HOUR))
    if mkt.kind != "capture":
        return total_ns, SYNTH_START_NS
    span = mkt.span_ns() or 0
    start_ns = int(mkt.events["exch_ts"][0])  # type: ignore[index]
    if total_ns > span + 1:
        mkt.notes.append(
            f"capture spans {span / NS_PER_HOUR:.4f} h of market; soaking that instead of {hours} h"
        )
        total_ns = span + 1
    return total_ns, start_ns


def start_lines(plan: SoakPlan) -> list[str]:
    """The soak's opening marker lines: notes, what runs, the first knobs and where they came from."""
    from mmbot.soak.report import fmt_knobs

    s = plan.settings
    return [
        *(f"| soak | NOTE | {msg} |" for msg in plan.notes),
        f"| soak | START | market={plan.mkt.label} hours={plan.hours:g} "
        f"iterations={s.iterations} auto_tune={int(s.auto_tune)} seed={s.seed} "
        f"profile={plan.prof_name} |",
        f"| soak | KNOBS | iter=1 {fmt_knobs(plan.knobs)} |",
        f"| soak | KNOBS | source: {_knob_source(s.paths.root, plan.overrides_in)} |",
    ]
