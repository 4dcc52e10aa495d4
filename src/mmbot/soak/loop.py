"""The soak loop behind `mmbot soak`: a `SoakState` advanced by phase functions.

Owns `run_soak` and the order of its phases (DESIGN.md "Soak and auto-tune"): `start.prepare`
(the `SoakSettings` checked, profile, knobs, market; nothing written yet) -> `_iterate` once per
iteration (the iteration's market in chunks, `mmbot.soak.iteration.run_iteration`; its EDGE_REPORT
(`mmbot.audit.build_edge_report`) and per-iteration files; with --auto-tune the tuner,
`mmbot.soak.autotune.counterfactual_tune`, validating every change on replays of the market seen so
far, `mmbot.soak.replay.Replayer`) -> `_finish` (keep-best, the final EDGE_REPORT and KPI gate) ->
`report.write_final` -> commit. Neither events (except the kept segments) nor records are kept
across iterations: an iteration's records are written to disk when it ends, and the soak keeps
only what the final EDGE_REPORT reads of each run (`mmbot.audit.edge_report.RunDigest`: fills'
decomposition, action counts, ages of orders leaving the book) and a `StoredRun` per run (its
meta; its records read back from disk by the end-of-soak reports one run at a time). All artifacts are staged in a temporary directory and moved into place when the soak
finished (`mmbot.soak.artifacts.Stage`).

Presentation is the caller's (commands/soak.py): marker lines go to ``say`` and progress to
``on_progress`` (`SoakProgress`); this module imports no console library.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmbot.soak import autotune
from mmbot.soak import decision as soak_decision
from mmbot.soak import stability as soak_stability
from mmbot.soak.account_carry import AccountCarry
from mmbot.soak.artifacts import SoakPaths, Stage, jsonl_line
from mmbot.soak.iteration import Segment, run_iteration
from mmbot.soak.limits import drawdown_line, drawdown_stops, kill_stop, stop_line
from mmbot.soak.market import NS_PER_HOUR
from mmbot.soak.replay import Replayer, replay_workers
from mmbot.soak.report import (
    final_lines,
    fmt,
    fmt_knobs,
    iteration_artifacts,
    iteration_metrics,
    write_final,
)
from mmbot.soak.start import SoakPlan, SoakSettings, prepare, start_lines

if TYPE_CHECKING:
    from mmbot.audit.edge_report import RunDigest
    from mmbot.audit.records_io import StoredRun


@dataclass(frozen=True)
class SoakProgress:
    """How far the soak is, for a progress display: after each chunk (``fills`` None) and at each
    iteration's end (with the soak's fills and net_bps so far)."""

    done_ns: int  # market time done
    total_ns: int
    iteration: int
    iterations: int
    fills: int | None = None
    net_bps_so_far: float | None = None


@dataclass
class SoakOutcome:
    verdict: str
    exit_code: int
    paths: SoakPaths
    final_overrides: dict[str, float]
    best_iteration: int | None
    history: list[dict]
    html: Path | None = None
    md: Path | None = None
    decision: dict | None = None  # the decision matrix (`mmbot.soak.decision.decide`)
    stability: dict | None = None  # frozen soaks (`mmbot.soak.stability.stability_report`)


@dataclass
class SoakState:
    """What the soak carries from one iteration to the next, and what it has produced so far."""

    plan: SoakPlan
    stage: Stage
    say: Callable[[str], None]
    on_progress: Callable[[SoakProgress], None]
    knobs: dict[str, float]  # the next iteration's
    account: AccountCarry  # the soak's one account, carried along
    replayer: Replayer | None = None  # counterfactual replays (auto-tune only)
    history: list[dict] = field(default_factory=list)
    digests: list[RunDigest] = field(default_factory=list)  # every run's (final EDGE_REPORT)
    stored_runs: list[StoredRun] = field(default_factory=list)  # every run's (final reports)
    metrics_lines: list[bytes] = field(default_factory=list)
    audit_parts: list[Path] = field(default_factory=list)
    iter_rows: list[dict] = field(default_factory=list)
    pnl_sum: float = 0.0
    turnover_sum: float = 0.0
    fills_sum: int = 0
    stop: dict | None = None  # where the kill switch latched (`limits.kill_stop`): the soak ends

    def net_bps_so_far(self) -> float:
        return self.pnl_sum / self.turnover_sum * 1e4 if self.turnover_sum > 0 else float("nan")


@dataclass
class SoakFinal:
    """The soak's end: the kept knobs, the final EDGE_REPORT and its gate."""

    best_iteration: int | None
    final_overrides: dict[str, float]
    keep_best_table: list[dict]
    report: dict
    gate: dict
    verdict: str
    wall_s: float


def _quiet(_: object) -> None:
    return None


def run_soak(
    settings: SoakSettings,
    say: Callable[[str], None] | None = None,
    on_progress: Callable[[SoakProgress], None] | None = None,
) -> SoakOutcome:
    """Run a soak and write its artifacts; returns the outcome (the CLI maps it to an exit code).
    ``say`` receives each marker line, ``on_progress`` the progress (both: nothing shown)."""
    say = say or _quiet
    plan = prepare(settings)
    for line in start_lines(plan):
        say(line)
    from mmbot import firstrun, jitclock

    phases = firstrun.PhaseTimes(cold=not jitclock.is_warm(plan.prof.strategy.name))
    if phases.cold:
        say(f"| soak | COMPILE | {firstrun.compile_announcement()} |")
    st = _open(plan, say, on_progress or _quiet)
    try:
        wall0 = time.perf_counter()
        with phases.timed("soak", jitclock.CompileClock()):
            for it in range(1, plan.settings.iterations + 1):
                _iterate(st, it)
                if st.stop is not None:
                    break
        plan.mkt.close()  # a stopped soak's next market, if it was being generated
        fin = _finish(st, wall0)
        soak_metrics = _soak_metrics(st, fin)
        md, html = _write(st, fin, soak_metrics)
        st.stage.commit()
    except BaseException:
        plan.mkt.close()
        if st.replayer is not None:
            st.replayer.close()
        st.stage.abort()
        raise
    for line in final_lines(fin.report, fin.gate, soak_metrics):
        say(line)
    say(f"| soak | TIME | {phases.line()} |")
    return SoakOutcome(
        verdict=fin.verdict,
        exit_code=1 if fin.verdict == "FAIL" else 0,
        paths=plan.settings.paths,
        final_overrides=fin.final_overrides,
        best_iteration=fin.best_iteration,
        history=st.history,
        html=html,
        md=md,
        decision=soak_metrics["decision"],
        stability=soak_metrics.get("stability"),
    )


def _write(st: SoakState, fin: SoakFinal, soak_metrics: dict) -> tuple[Path, Path]:
    """Stage the end-of-soak artifacts (`report.write_final`): (Markdown path, HTML path)."""
    return write_final(
        st.stage,
        st.plan.settings.paths,
        soak_metrics,
        fin.report,
        fin.gate,
        st.stored_runs,
        st.metrics_lines,
        st.audit_parts,
    )


def _open(
    plan: SoakPlan, say: Callable[[str], None], on_progress: Callable[[SoakProgress], None]
) -> SoakState:
    """The soak's state before its first iteration: nothing run, nothing written yet."""
    paths = plan.settings.paths
    return SoakState(
        plan=plan,
        stage=Stage(paths.root, replace_dirs=[paths.iterations, paths.records]),
        say=say,
        on_progress=on_progress,
        knobs=dict(plan.knobs),
        account=AccountCarry(funded_to_ns=plan.start_ns),
        replayer=(
            Replayer(plan.mkt, plan.prof, autotune.MAX_KEPT_SEGMENTS, workers=replay_workers())
            if plan.settings.auto_tune
            else None
        ),
    )


def _iterate(st: SoakState, it: int) -> None:
    """One iteration: its market, its report and files, the tuner's decision for the next."""
    from mmbot.audit.edge_report import digest_runs, make_runtime, report_from_digests
    from mmbot.gate import evaluate

    plan = st.plan
    t_wall = time.perf_counter()
    it_start = plan.start_ns + (it - 1) * plan.iter_ns
    knobs_used = dict(st.knobs)
    results = _run_market(st, it, it_start, knobs_used)
    runtime = make_runtime(
        profile=plan.prof_name,
        overrides=knobs_used,
        seed=plan.settings.seed,
        data_inputs=[plan.mkt.label],
        iteration=it,
        market_start_ns=it_start,
        market_duration_ns=plan.iter_ns,
    )
    digests = digest_runs(results)
    report = report_from_digests(digests, runtime)
    totals = report["totals"]
    st.pnl_sum += float(totals.get("pnl") or 0.0)
    st.turnover_sum += float(totals.get("turnover") or 0.0)
    st.fills_sum += int(totals.get("fills") or 0)
    for kind, obj in iteration_artifacts(it, report).items():
        st.stage.write_json(plan.settings.paths.iteration_file(kind, it), obj)
    st.say(f"| soak_iter_artifacts | OK | iter={it} |")

    st.stop = kill_stop(results, it)
    dd = drawdown_stops(results)
    replays_before = st.replayer.replays if st.replayer is not None else 0
    decision = None if st.stop is not None else _tune(st, it, report, knobs_used)
    st.history.append(autotune.history_entry(it, report, knobs_used, decision))
    st.digests.extend(digests)
    it_gate = evaluate(report, plan.thresholds)
    row = {
        "iteration": it,
        "market_start_ns": it_start,
        "market_hours": plan.iter_ns / NS_PER_HOUR,
        "knobs": knobs_used,
        "next_knobs": dict(st.knobs),
        "metrics": iteration_metrics(totals),
        "verdict": it_gate.get("verdict"),
        "failed_hard": list(it_gate.get("failed_hard") or []),
        "autotune": decision.as_dict() if decision else None,
        "net_bps_so_far": st.net_bps_so_far(),
        "replays": (st.replayer.replays - replays_before) if st.replayer is not None else 0,
        "wall_s": time.perf_counter() - t_wall,
    }
    if dd is not None:
        row["drawdown"] = dd
    if st.stop is not None:
        row["stop"] = st.stop
    st.iter_rows.append(row)
    st.metrics_lines.append(jsonl_line(row))
    _write_records(st, it, results)
    _say_iteration(st, it, totals, row["wall_s"], decision)
    if dd is not None:
        st.say(drawdown_line(it, dd))
    if st.stop is not None:
        st.say(stop_line(st.stop))
    st.on_progress(
        SoakProgress(
            done_ns=it * plan.iter_ns,
            total_ns=plan.total_ns,
            iteration=it,
            iterations=plan.settings.iterations,
            fills=st.fills_sum,
            net_bps_so_far=st.net_bps_so_far(),
        )
    )


def _run_market(st: SoakState, it: int, it_start: int, knobs: dict[str, float]) -> list[Any]:
    """The iteration's chunks (progress after each); with auto-tune its last one is kept."""
    plan = st.plan

    def on_chunk(last_exch_ns: int) -> None:
        done = min(last_exch_ns - plan.start_ns, it * plan.iter_ns)
        st.on_progress(SoakProgress(done, plan.total_ns, it, plan.settings.iterations))

    seg_out: list[Segment] | None = [] if plan.settings.auto_tune else None
    results = run_iteration(
        plan.mkt,
        plan.prof,
        knobs,
        plan.settings.seed,
        it,
        it_start,
        plan.iter_ns,
        on_chunk=on_chunk,
        segment_out=seg_out,
        account=st.account,
        close_end=it == plan.settings.iterations,
        # the next iteration's market is generated while this one runs, audits and tunes
        ahead_ns=plan.iter_ns if it < plan.settings.iterations else 0,
    )
    if st.replayer is not None and seg_out:
        st.replayer.add(seg_out[0], knobs)
    return results


def _tune(st: SoakState, it: int, report: dict, knobs_used: dict[str, float]) -> Any:
    """The tuner's decision after iteration ``it`` (None: not tuning, or the last iteration);
    sets the next iteration's knobs."""
    if not (st.plan.settings.auto_tune and it < st.plan.settings.iterations):
        return None
    assert st.replayer is not None
    # the knobs the quoter reads: the tuner moves no other (the six stay in every knob set)
    tunable = autotune.tunable_knobs(st.plan.prof.strategy.name)
    if autotune.uses_chained(knobs_used):
        decision = autotune.chained_tune(
            report, knobs_used, st.history, st.replayer, st.replayer.ids(), tunable=tunable
        )
    else:
        decision = autotune.counterfactual_tune(
            report,
            knobs_used,
            st.history,
            st.replayer,
            st.replayer.ids(),
            budget=autotune.replay_budget(knobs_used),
            tunable=tunable,
        )
    st.knobs = dict(decision.knobs)
    return decision


def _write_records(st: SoakState, it: int, results: list[Any]) -> None:
    """The iteration's records (so `mmbot report --run artifacts/soak/records` can rebuild the
    report) and its part of the seed's audit.jsonl (one line per fill and per action)."""
    from mmbot.audit.records_io import StoredRun, write_audit_jsonl, write_run

    staged_records = st.stage.dir_for(st.plan.settings.paths.records)
    for r in results:
        d = write_run(staged_records, r, str(r.meta.get("name")), audit_jsonl=False)
        st.stored_runs.append(StoredRun(d, r.meta))
    part = st.stage.dir / "audit_parts" / f"iter{it:05d}.jsonl"
    write_audit_jsonl(part, [(str(r.meta.get("name")), r) for r in results])
    st.audit_parts.append(part)


def _say_iteration(
    st: SoakState, it: int, totals: Mapping[str, Any], wall_s: float, decision: Any
) -> None:
    plan = st.plan
    st.say(
        f"| soak_iter | iter={it}/{plan.settings.iterations} "
        f"| market_h={it * plan.iter_ns / NS_PER_HOUR:.3f} "
        f"| fills={totals.get('fills')} | net_bps={fmt(totals.get('net_bps'))} "
        f"| net_bps_so_far={fmt(st.net_bps_so_far())} | wall_s={wall_s:.2f} |"
    )
    if decision is not None:
        for m in decision.markers:
            st.say(m)
        if decision.changes:
            st.say(f"| soak | KNOBS | iter={it + 1} {fmt_knobs(st.knobs)} |")


def _finish(st: SoakState, wall0: float) -> SoakFinal:
    """Keep-best (auto-tune), then the final EDGE_REPORT over every chunk and its KPI gate."""
    from mmbot.audit.edge_report import make_runtime, report_from_digests
    from mmbot.backtest import strategy_runtime
    from mmbot.gate import evaluate

    plan, history, replayer = st.plan, st.history, st.replayer
    keep_best_table: list[dict] = []
    best_it: int | None
    if plan.settings.auto_tune and replayer is not None and replayer.ids():
        # keep-best on common market: every knob set that ran, replayed on the same segments
        select = (
            autotune.select_best_chained
            if autotune.uses_chained(history[0]["knobs"])
            else autotune.select_best_common
        )
        best_it, best_knobs, keep_best_table = select(history, replayer, replayer.ids())
    elif plan.settings.auto_tune:
        best_it, best_knobs = autotune.select_best(history)
    else:
        best_it, best_knobs = None, dict(history[0]["knobs"])
    if replayer is not None:
        replayer.close()
    if plan.settings.auto_tune:
        assert best_it is not None
        common = next((r["score_bps"] for r in keep_best_table if r["kept"]), None)
        st.say(
            f"| autotune | KEEP_BEST | iter={best_it} net_bps={fmt(history[best_it - 1]['net_bps'])} "
            f"common_segments_score_bps={fmt(common)} {fmt_knobs(best_knobs)} |"
        )
    final_runtime = make_runtime(
        **strategy_runtime(plan.prof),
        profile=plan.prof_name,
        overrides=plan.overrides_in,
        seed=plan.settings.seed,
        data_inputs=[plan.mkt.label],
        hours=plan.hours,
        iterations=plan.settings.iterations,
        auto_tune=plan.settings.auto_tune,
        final_overrides=best_knobs,
        best_iteration=best_it,
    )
    final_report = report_from_digests(st.digests, final_runtime)
    gate = evaluate(final_report, plan.thresholds)
    return SoakFinal(
        best_iteration=best_it,
        final_overrides=best_knobs,
        keep_best_table=keep_best_table,
        report=final_report,
        gate=gate,
        verdict=str(gate.get("verdict")),
        wall_s=time.perf_counter() - wall0,
    )


def _soak_metrics(st: SoakState, fin: SoakFinal) -> dict[str, Any]:
    """soak_metrics.json: the soak's settings, every iteration, the final figures and decision."""
    plan = st.plan
    out: dict[str, Any] = {
        "hours": plan.hours,
        "iterations": plan.settings.iterations,
        "auto_tune": plan.settings.auto_tune,
        "market": plan.mkt.label,
        "seed": plan.settings.seed,
        "profile": plan.prof_name,
        "start_overrides": plan.overrides_in,
        "final_overrides": fin.final_overrides,
        "best_iteration": fin.best_iteration,
        "keep_best": fin.keep_best_table,
        "replays": st.replayer.replays if st.replayer is not None else 0,
        "per_iteration": st.iter_rows,
        "final": iteration_metrics(fin.report["totals"]),
        "verdict": fin.verdict,
        "rules": autotune.rule_table(),
        "wall_s_total": fin.wall_s,
        "freeze": plan.settings.freeze,
    }
    if st.stop is not None:
        out["stop"] = st.stop
    if plan.settings.freeze:
        out["stability"] = soak_stability.stability_report(st.iter_rows)
    out["decision"] = soak_decision.decide(
        fin.report,
        fin.gate,
        final_overrides=fin.final_overrides,
        history=st.history,
        mode=plan.mode,
        overrides_path=plan.settings.paths.runtime_overrides.as_posix(),
        stability=out.get("stability"),
    )
    return out
