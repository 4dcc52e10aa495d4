"""``mmbot backtest`` without its console: capture files in, one run directory out.

Owns ``backtest_files`` (inputs checked before anything is written; files run one after another,
one file's events in memory at a time; records, EDGE_REPORT, KPI_GATE, reports and ``summary.json``
written to a staging directory moved into place at the end), its progress and outcome records,
and the EDGE_REPORT runtime block (``strategy_runtime``). The run itself is ``mmbot.backtest.run``;
the console is ``mmbot.commands.backtest``'s.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mmbot.backtest import RunSettings, run
from mmbot.backtest_summary import summarize
from mmbot.config import Profile, effective_knobs, load_profile, with_strategy_options
from mmbot.errors import UserError
from mmbot.instruments import ContractSpec
from mmbot.records import RunResult
from mmbot.strategy.params import fee_choice
from mmbot.strategy.registry import DEFAULT_QUOTER, make_qparams, resolve


@dataclass(frozen=True)
class BacktestProgress:
    """How far `backtest_files` is, for a progress display."""

    done_files: float | None  # files done (fractional inside the file simulated; None: unchanged)
    total_files: int
    description: str | None = None  # what it is doing now (None: unchanged)


@dataclass
class BacktestOutcome:
    """What `backtest_files` ran and wrote (``out``), for the console to show."""

    out: Path
    summary: dict  # `summarize` over every file, with wall and phase times
    per_file: list[tuple[str, dict]]  # (run name, `summarize` of that file)
    verdict: str | None  # the KPI gate's (None: --no-reports)
    gate: dict | None
    notes: list[str]  # runs without a fill, said plainly (`_stood_aside_lines`)
    phases_line: str  # where the wall time went (`firstrun.PhaseTimes.line`)
    pieces: dict | None = None  # EDGE_REPORT ``pieces`` (``pieces=True`` with reports)


@dataclass
class _FileRuns:
    """The runs of every file (and, with ``pieces``, each file's runs without each piece)."""

    results: list[RunResult] = field(default_factory=list)
    named: list[tuple[str, RunResult]] = field(default_factory=list)
    per_file: list[tuple[str, dict]] = field(default_factory=list)
    switches: tuple = ()
    without: dict[str, list[RunResult]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Market:
    """How each file's contract and funding are chosen (``--market``, ``--contract-size``,
    ``--funding-rate`` / ``--funding``)."""

    market: str | None
    contract_size: float | None
    funding: Any


def _market(
    market: str | None,
    contract_size: float | None,
    funding_rate: float | None,
    funding_file: Path | None,
) -> _Market:
    """The contract and funding flags, checked now (a bad flag exits 2 before anything runs)."""
    from mmbot.instruments import resolve_spec

    if market is not None or contract_size is not None:
        resolve_spec("", "", market=market, contract_size=contract_size)
    return _Market(market, contract_size, _funding_input(funding_rate, funding_file))


def _quiet(_: object) -> None:
    return None


def _run_name(i: int, path: Path) -> str:
    stem = path.name
    for suf in (".gz", ".jsonl", ".json", ".npz", ".csv", ".txt", ".parquet"):
        if stem.endswith(suf):
            stem = stem[: -len(suf)]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "data"
    return f"{i:02d}_{safe}"


def check_strategy(prof: Profile) -> Profile:
    """The profile's quoter and its parameters, checked before anything runs (UserError)."""
    spec = prof.strategy.name
    make_qparams(resolve(spec), prof.strategy.params, spec)
    return prof


def strategy_runtime(prof: Profile) -> dict[str, Any]:
    """What the EDGE_REPORT's runtime block records about the quoter and its limits."""
    return {
        "strategy": prof.strategy.name,
        "strategy_params": dict(prof.strategy.params),
        "order_qty": prof.strategy.order_qty,
        "max_position_qty": prof.strategy.max_position_qty,
        # the rates of the profile's tier (base unless named) on the default fee schedule; each
        # run's own market and rates are in its meta["fees"]
        "fee_tier": fee_choice(prof, None).tier,
        "maker_fee_bps": fee_choice(prof, None).maker_fee_rate * 1e4,
        "taker_fee_bps": fee_choice(prof, None).taker_fee_rate * 1e4,
    }


def backtest_files(
    *,
    data: Sequence[Path],
    out: Path,
    profile: str | None = "S1",
    overrides: Path | None = None,
    settings: RunSettings | None = None,
    strategy_options: Mapping[str, Any] | None = None,
    reports: bool = True,
    say: Callable[[str], None] | None = None,
    on_progress: Callable[[BacktestProgress], None] | None = None,
    market: str | None = None,
    contract_size: float | None = None,
    funding_rate: float | None = None,
    funding_file: Path | None = None,
    pieces: bool = False,
) -> BacktestOutcome:
    """``mmbot backtest`` (the module docstring): records to ``out/<NN_name>/``, EDGE_REPORT,
        KPI_GATE, reports and ``summary.json`` in ``out``; notes to ``say`` as they come, progress to
        ``on_progress``; the figures to show are returned. ``settings``: the venue's side of the run
    (``latency_ms``, ``queue_model``, ``seed``; None: ``RunSettings()``'s), its knobs and profile
    filled in from ``profile`` and ``overrides``. ``strategy_options``: the keyword arguments
    ``mmbot.config.with_strategy_options`` takes (--strategy, --param, the equal-limit flags and
    --fee-tier), as ``mmbot.soak.loop.run_soak`` takes them. ``pieces``: each file also runs once per
        piece of the quoter switched off (``mmbot.pieces``; EDGE_REPORT ``pieces``). A failure leaves
        ``out`` untouched (everything is staged beside it and moved into place at the end)."""
    from mmbot import firstrun, jitclock, staging
    from mmbot.inputs import output_dir
    from mmbot.rundir import place_run

    mkt = _market(market, contract_size, funding_rate, funding_file)
    say = say or _quiet
    progress = on_progress or _quiet
    data = [Path(p) for p in data]
    out = Path(out)
    options = dict(strategy_options or {})
    prof, ovr, settings = _checked_settings(
        data, profile, overrides, settings or RunSettings(), options, say
    )
    output_dir("--out", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging.make_staging_dir(out.parent, f".{out.name}.tmp-")
    try:
        phases = firstrun.PhaseTimes(
            cold=not jitclock.is_warm(options.get("strategy") or DEFAULT_QUOTER)
        )
        if phases.cold:
            say(firstrun.compile_announcement())
        t0 = time.perf_counter()
        runs = _run_files(data, tmp, settings, prof, pieces, mkt, phases, progress)
        summary = _summary(runs, phases, time.perf_counter() - t0)
        runtime = _runtime(prof, ovr, settings, data)
        edge, gate = _write_outputs(tmp, runs, summary, runtime, reports)
        _open_to_umask(tmp)
        place_run(tmp, out)
    except BaseException:
        staging.release(tmp)
        raise
    staging.release(tmp)
    return BacktestOutcome(
        out=out,
        summary=summary,
        per_file=runs.per_file,
        verdict=gate.get("verdict") if gate is not None else None,
        gate=gate,
        notes=_stood_aside_lines(runs.results),
        phases_line=phases.line(),
        pieces=edge.get("pieces"),
    )


def _open_to_umask(tmp: Path) -> None:
    """mkdtemp makes the staging directory private; the final directory should not be."""
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)


def _checked_settings(
    data: Sequence[Path],
    profile: str | None,
    overrides: Path | None,
    venue: RunSettings,
    options: Mapping[str, Any],
    say: Callable[[str], None],
) -> tuple[Profile, dict, RunSettings]:
    """(profile, overrides, the settings every file runs with: ``venue`` with the knobs and the
    profile): every input checked before anything is written (UserError naming the input), the
    notes and knob lines said."""
    from mmbot import firstrun
    from mmbot.config import load_overrides, overrides_source, with_override_params
    from mmbot.sim.config import parse_queue_model

    if not data:
        raise UserError("--data: at least one capture file is needed")
    for path in data:
        p = Path(path)
        if not p.exists():
            raise UserError(f"--data {p}: file not found")
        if not p.is_file():
            raise UserError(f"--data {p}: not a file")
    latency_ms = venue.latency_ms
    if not (math.isfinite(latency_ms) and latency_ms >= 0):
        raise UserError(f"--latency-ms {latency_ms!r}: must be a finite number >= 0")
    parse_queue_model(venue.queue_model)
    prof = check_strategy(with_strategy_options(load_profile(profile), **options))
    # a file an earlier soak left in the working directory is applied only when named (--overrides)
    ovr, messages = load_overrides(overrides, default_file=None)
    # the file's quoter parameters (param.NAME, e.g. a soak's tuned ones); --param wins
    source = overrides_source(overrides, default_file=None) or "overrides"
    prof = with_override_params(prof, ovr, source, keep=options.get("params"))
    for m in list(prof.messages) + messages:
        say(f"note: {m}")
    knob_values = effective_knobs(prof, ovr)
    for line in firstrun.knob_lines(prof, ovr, overrides):
        say(line)
    return prof, ovr, replace(venue, knobs=knob_values, profile=prof)


def _summary(runs: _FileRuns, phases: Any, wall_s: float) -> dict:
    """``summarize`` over every file, with the wall time, where it went and the event rate."""
    summary = summarize(runs.results)
    summary["wall_s"] = wall_s
    summary.update(phases.as_dict())
    summary["events_per_s"] = summary["events"] / wall_s if wall_s > 0 else None
    return summary


def _run_files(
    data: Sequence[Path],
    tmp: Path,
    settings: RunSettings,
    prof: Profile,
    pieces: bool,
    mkt: _Market,
    phases: Any,
    progress: Callable[[BacktestProgress], None],
) -> _FileRuns:
    """Every file read, run (and run without each piece) and its records written to ``tmp``."""
    from mmbot import jitclock
    from mmbot.audit.records_io import write_run

    n_files = len(data)
    clock = jitclock.CompileClock(
        on_start=lambda fn: progress(BacktestProgress(None, n_files, f"compiling {fn} (once)"))
    )
    runs = _FileRuns(switches=_piece_switches(prof) if pieces else ())
    runs.without = {label: [] for label, _ in runs.switches}
    progress(BacktestProgress(0.0, n_files, "backtest"))
    for i, path in enumerate(data):
        name = _run_name(i, path)
        res = _run_file(i, path, name, n_files, settings, mkt, runs, phases, clock, progress)
        write_run(tmp, res, name)
        runs.results.append(res)
        runs.named.append((name, res))
        runs.per_file.append((name, summarize([res])))
        progress(BacktestProgress(i + 1, n_files))
    return runs


def _run_file(
    i: int,
    path: Path,
    name: str,
    n_files: int,
    settings: RunSettings,
    mkt: _Market,
    runs: _FileRuns,
    phases: Any,
    clock: Any,
    progress: Callable[[BacktestProgress], None],
) -> RunResult:
    """One file: read, simulated, its fills' mids checked against the input's book, and (with
    pieces) run once per piece switched off (into ``runs.without``)."""
    from mmbot.audit.crosscheck import check_fill_mids
    from mmbot.data import load_events
    from mmbot.instruments import resolve_spec

    progress(BacktestProgress(i, n_files, f"{path.name}: reading"))
    with phases.timed("read", clock):
        events, stats = load_events(path)
    progress(BacktestProgress(i, n_files, f"{path.name}: simulating"))

    def _progress(frac: float) -> None:
        progress(BacktestProgress(i + frac, n_files, f"{path.name}: simulating"))

    cspec = resolve_spec(
        stats.format, stats.symbol or "", market=mkt.market, contract_size=mkt.contract_size
    )
    with phases.timed("simulate", clock):
        res = run(
            events,
            replace(settings, spec=cspec),
            symbol=stats.symbol or "",
            progress=_progress,
            data_format=stats.format,
        )
    res.meta["name"] = name
    res.meta["data_path"] = str(path)
    if mkt.funding is not None:
        res.meta["funding"] = _funding_for(mkt.funding, cspec, res.meta, path)
    # every fill's mid against a book rebuilt from the input (AuditError names a fill)
    res.meta["mid_crosscheck"] = check_fill_mids(events, res, name)
    res.meta["read_repairs"] = {k: v for k, v in stats.repairs.items() if v}
    for label, over in runs.switches:
        progress(BacktestProgress(None, n_files, f"{path.name}: without {label}"))
        s_off = replace(settings, spec=cspec, params={**settings.params, **over})
        r_off = run(events, s_off, symbol=stats.symbol or "", data_format=stats.format)
        r_off.meta["name"] = name
        r_off.meta["data_path"] = str(path)
        runs.without[label].append(r_off)
    return res


def _runtime(prof: Profile, ovr: dict, settings: RunSettings, data: Sequence[Path]) -> dict:
    """The EDGE_REPORT / summary.json runtime block of a ``backtest_files`` call."""
    from mmbot.audit.edge_report import make_runtime

    return make_runtime(
        profile=prof.name,
        overrides=ovr,
        seed=settings.seed,
        data_inputs=[str(p) for p in data],
        **strategy_runtime(prof),
        knobs=settings.knobs,
        latency_ms=settings.latency_ms,
        queue_model=settings.queue_model,
    )


def _write_outputs(
    tmp: Path, runs: _FileRuns, summary: dict, runtime: dict, reports: bool
) -> tuple[dict, dict | None]:
    """EDGE_REPORT, KPI_GATE and the reports (with ``reports``), audit.jsonl and summary.json into
    ``tmp``; returns (EDGE_REPORT or {}, KPI_GATE or None)."""
    from mmbot.audit.edge_report import build_edge_report, dump_json
    from mmbot.audit.records_io import write_audit_jsonl
    from mmbot.gate import evaluate

    gate = None
    edge: dict = {}
    if reports:
        from mmbot.report import write_reports

        edge = build_edge_report(runs.results, runtime)
        if runs.switches:
            from mmbot.pieces import pieces_block

            off = {k: build_edge_report(v, runtime)["totals"] for k, v in runs.without.items()}
            edge["pieces"] = pieces_block(edge["totals"], off, runs.switches)
        gate = evaluate(edge)
        dump_json(edge, tmp / "EDGE_REPORT.json")
        dump_json(gate, tmp / "KPI_GATE.json")
        write_reports(tmp, edge, runs.results, gate, md_name="BACKTEST_RESULTS.md")
    write_audit_jsonl(tmp / "audit.jsonl", runs.named)
    dump_json(
        {"totals": summary, "runs": dict(runs.per_file), "runtime": runtime}, tmp / "summary.json"
    )
    return edge, gate


def _piece_switches(prof: Profile) -> tuple:
    """The run's quoter's pieces (label, switch-off parameters); exit 2 when it declares none."""
    name = prof.strategy.name
    switches = resolve(name).pieces
    if not switches:
        raise UserError(f"--pieces: quoter {name!r} declares no switchable pieces")
    return switches


def _stood_aside_lines(results: Sequence[RunResult]) -> list[str]:
    """One line per run without a fill, saying how often its quoter chose not to quote and why
    that can be (a run with no fills otherwise reads as a broken one)."""
    lines = []
    for r in results:
        loop = r.meta.get("loop") or {}
        steps, idle = int(loop.get("steps", 0)), int(loop.get("no_quote_steps", 0))
        if len(r.fills) or not steps:
            continue
        maker_bps = float(r.meta.get("maker_fee_rate", 0.0)) * 1e4
        lines.append(
            f"note: {r.meta.get('run_name') or r.meta.get('symbol', '')}: no fill; "
            f"{r.meta.get('strategy')} sent {int(loop.get('sent', 0)):,} order(s) and chose not to "
            f"quote on {idle:,} of {steps:,} wakes (warm-up, or no depth expected to pay the maker "
            f"fee of {maker_bps:g} bps): see --fee-tier, or --strategy glft, which always quotes"
        )
    return lines


def _funding_input(rate: float | None, path: Path | None) -> Any:
    """``--funding-rate`` (a float, the schedule built per file) or ``--funding FILE`` (loaded once)."""
    from mmbot.funding import _check_rate, load_funding_csv

    if rate is not None and path is not None:
        raise UserError("--funding-rate and --funding: give one of them")
    if path is not None:
        return load_funding_csv(Path(path))
    return None if rate is None else _check_rate(float(rate), "--funding-rate")


def _funding_for(funding: Any, spec: ContractSpec, meta: dict, path: Path) -> dict:
    from mmbot.funding import schedule_from_rate, within

    if spec.spot:
        raise UserError(f"--funding: {path} is a spot market ({spec.market}); spot has no funding")
    start, end = int(meta["start_ts"]), int(meta["end_ts"])
    if isinstance(funding, float):
        return schedule_from_rate(funding, start, end).to_meta()
    return within(funding, start, end).to_meta()
