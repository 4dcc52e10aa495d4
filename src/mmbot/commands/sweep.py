"""`mmbot sweep`: the console of the parameter search (library: ``mmbot.sweep``)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from mmbot.commands.options import OptionGroup
from mmbot.errors import UserError
from mmbot.extras import require
from mmbot.numfmt import fixed
from mmbot.strategy.registry import DEFAULT_QUOTER


def _check_strategy(strategy: str, space: Any) -> str:
    """The quoter spec resolved (a FILE.py path made absolute, for workers elsewhere) and every
    quoter parameter of the space checked against the quoter's own parameters."""
    from pathlib import Path as _Path

    from mmbot.strategy.registry import resolve
    from mmbot.sweep.space import ROUTE_QUOTER

    target, sep, attr = strategy.rpartition(":")
    if sep and target.endswith(".py"):
        strategy = f"{_Path(target).resolve()}:{attr}"
    quoter = resolve(strategy)
    for p in space.by_route(ROUTE_QUOTER):
        if p.field not in quoter.params:
            known = ", ".join(sorted(quoter.params)) or "none"
            raise UserError(
                f"{space.source}: {p.name}: quoter {quoter.name} has no parameter {p.field!r} "
                f"(known: {known})"
            )
    return strategy


def _fmt(v: Any, nd: int = 4) -> str:
    return fixed(v, nd, none="—")


def _eta(s: float | None) -> str:
    if s is None:
        return "ETA —"
    s = int(s)
    return f"ETA {s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _print_summary(con: Any, summ: dict, res: Any) -> None:
    from rich.table import Table

    obj = summ["objectives"][0]
    t = Table(title=f"walk-forward ({obj})")
    for col in ("step", "tune→judge", "best IS", "best OOS", "gap OOS−IS", "profile OOS"):
        t.add_column(col, justify="right")
    for s in summ["steps"]:
        f = s["objectives"][obj]
        t.add_row(
            str(s["step"]),
            f"fold {s['is_fold']}→{s['oos_fold']}",
            _fmt(f["best_is"]),
            _fmt(f["best_oos"]),
            _fmt(f["gap_oos_minus_is"]),
            _fmt(f["baseline_oos"]),
        )
    con.print(t)
    ch = summ["chosen"]
    c = Table(
        title=f"chosen (tuned on fold {ch['tuned_on_fold']}, judged on fold {ch['judged_on_fold']})"
    )
    c.add_column("parameter")
    c.add_column("value", justify="right")
    c.add_column("objective")
    c.add_column("IS", justify="right")
    c.add_column("OOS", justify="right")
    c.add_column("gap", justify="right")
    params = list(ch["params"].items())
    objs = list(ch["objectives"].items())
    for i in range(max(len(params), len(objs))):
        p = params[i] if i < len(params) else ("", "")
        o = objs[i] if i < len(objs) else None
        c.add_row(
            p[0],
            _fmt(p[1]),
            o[0] if o else "",
            _fmt(o[1]["best_is"]) if o else "",
            _fmt(o[1]["best_oos"]) if o else "",
            _fmt(o[1]["gap_oos_minus_is"]) if o else "",
        )
    con.print(c)
    cost = summ.get("cost") or {}
    if cost:
        con.print(
            "per trial (mean s): load {:.3f}  compile {:.3f}  simulate {:.3f}  audit {:.3f}  "
            "({:.0f} events)".format(
                cost["mean_load_s"],
                cost["mean_compile_s"],
                cost["mean_sim_s"],
                cost["mean_audit_s"],
                cost["mean_events"],
            ),
            markup=False,
            highlight=False,
        )
    ran, tune_s = res.trials_run, res.tune_s
    rate = ran / tune_s * 3600 if tune_s > 0 and ran else 0.0
    con.print(
        f"{ran} trials run in {tune_s:.1f} s of tuning ({rate:.0f} trials/hour; "
        f"{res.tasks_run} executor tasks; sampler and storage "
        f"{res.driver_s / max(ran, 1) * 1e3:.0f} ms/trial)",
        markup=False,
        highlight=False,
    )
    for kind, path in (summ.get("files") or {}).items():
        con.print(f"chosen {kind}: {path}", markup=False, highlight=False)


_OUT = typer.Option(..., "--out", help="output directory (study, folds, results, report)")
_DATA = typer.Option(None, "--data", help="capture file(s); one fold per capture unless --folds")
_MARKET = typer.Option(
    None, "--market", help="synthetic | synthetic:NAME | CALIBRATION.json (with --hours)"
)
_HOURS = typer.Option(2.0, "--hours", help="market hours of a synthetic market")
_FOLDS = typer.Option(
    None, "--folds", help="walk-forward folds (default 2; with several --data: one per capture)"
)
_SPACE = typer.Option(
    None,
    "--space",
    help="space file, YAML or JSON (default: the six knobs and the quoter's tunable "
    "parameters over their limits)",
)
_TRIALS = typer.Option(50, "--trials", help="trials per walk-forward step")
_OBJECTIVE = typer.Option(
    None,
    "--objective",
    help="net_bps_before_rebates (default) | net_bps | equity | risk_adj; repeat for multi-objective",
)
_STRATEGY = typer.Option(
    DEFAULT_QUOTER,
    "--strategy",
    help="quoter: adaptive | glft | glft_ref | touch | FILE.py:NAME | package.module:NAME",
)
_PARAM = typer.Option(
    None, "--param", help="quoter parameter NAME=VALUE fixed for every trial (repeatable)"
)
_PROFILE = typer.Option(None, "--profile", help="profile name or JSON path")
_STORAGE = typer.Option(
    None, "--storage", help="Optuna storage URL (default sqlite:///OUT/sweep.db)"
)
_WORKERS = typer.Option(0, "--workers", help="local worker processes (0 = the core count)")
_RAY = typer.Option(None, "--ray", help="run trials as Ray tasks: local | auto | ADDRESS")
_STEPS_IN_FLIGHT = typer.Option(
    0,
    "--steps-in-flight",
    help="walk-forward steps tuned at once (0 = all; each step's study is independent)",
)
_MIN_FILLS = typer.Option(10, "--min-fills", help="trials with fewer fills are failed")


def _trial_run(**values: Any) -> Any:
    """A `mmbot.sweep.trial.TrialRun` of the options (its quoter is set once the space is read)."""
    from mmbot.sweep.trial import TrialRun

    return TrialRun(**values)


# how every trial runs: TrialRun's fields but the quoter (checked against the space first)
_TRIAL_RUN_OPTIONS = OptionGroup(
    into="run",
    options=(
        ("min_fills", int, _MIN_FILLS),
        ("latency_ms", float, typer.Option(10.0, "--latency-ms")),
        ("queue_model", str, typer.Option("power2", "--queue-model")),
        ("seed", int, typer.Option(0, "--seed", help="market and sampler seed")),
    ),
    collect=_trial_run,
)


def _say_plan(con: Any, label: str, fold_list: list, trials: int, objectives: list[str]) -> None:
    con.print(
        f"{label}: {len(fold_list)} folds of "
        + ", ".join(f"{f.hours:.2f} h" for f in fold_list)
        + f"; {trials} trials x {len(fold_list) - 1} step(s); objective {', '.join(objectives)}",
        markup=False,
    )


@_TRIAL_RUN_OPTIONS
def sweep(
    out: Path = _OUT,
    data: list[Path] = _DATA,
    market: str | None = _MARKET,
    hours: float = _HOURS,
    folds: int | None = _FOLDS,
    space: Path | None = _SPACE,
    trials: int = _TRIALS,
    objective: list[str] = _OBJECTIVE,
    strategy: str = _STRATEGY,
    param: list[str] = _PARAM,
    profile: str | None = _PROFILE,
    storage: str | None = _STORAGE,
    study_name: str = typer.Option("mmbot-sweep", "--study-name"),
    workers: int = _WORKERS,
    ray: str | None = _RAY,
    steps_in_flight: int = _STEPS_IN_FLIGHT,
    sampler: str = typer.Option("tpe", "--sampler", help="tpe | random"),
    run: Any = None,  # _TRIAL_RUN_OPTIONS: a TrialRun
) -> int:
    """Search parameters with Optuna, walk-forward: tune on fold i, judge on fold i+1."""
    from rich.console import Console

    from mmbot.config import load_profile
    from mmbot.inputs import output_dir
    from mmbot.strategy.registry import parse_param_args
    from mmbot.sweep.driver import SweepConfig
    from mmbot.sweep.executors import make_executor
    from mmbot.sweep.objective import parse_objectives
    from mmbot.sweep.results import write_results
    from mmbot.sweep.space import default_space, load_space

    _check_options(data, market, folds, trials, steps_in_flight, run.queue_model, space)
    con = Console(highlight=False)
    objectives = parse_objectives(objective or [])
    spc = load_space(space) if space is not None else default_space(strategy)
    run = replace(run, strategy=_check_strategy(strategy, spc))
    fixed_params = parse_param_args(param)
    prof = load_profile(profile)
    output_dir("--out", out).mkdir(parents=True, exist_ok=True)
    fold_list, label = _prepare_folds(con, data, market, hours, folds, run.seed, out)
    _say_plan(con, label, fold_list, trials, objectives)
    cfg = SweepConfig(
        out=out,
        folds=fold_list,
        market_label=label,
        space=spc,
        profile=prof,
        objectives=objectives,
        trials=trials,
        run=run,
        storage=storage,
        study_name=study_name,
        sampler=sampler,
        fixed_params=fixed_params,
        steps_in_flight=steps_in_flight,
    )
    executor = make_executor(workers or os.cpu_count() or 1, ray)
    try:
        res = _run_with_progress(con, cfg, executor)
    finally:
        executor.close()
    _print_summary(con, write_results(res, out), res)
    con.print(
        f"results in {out} (results.parquet, SWEEP_SUMMARY.json, sweep_report.html)", markup=False
    )
    return 0


def _check_options(
    data: list[Path] | None,
    market: str | None,
    folds: int | None,
    trials: int,
    steps_in_flight: int,
    queue_model: str,
    space: Path | None,
) -> None:
    """The checks that need nothing built: the extras, one market source, counts, the queue."""
    from mmbot.sim.config import parse_queue_model

    require("optuna")  # the [sweep] extra; named before folds are built
    if space is not None and space.suffix.lower() in (".yaml", ".yml"):
        require("yaml")
    if bool(data) == bool(market):
        raise UserError("give either --data PATH... or --market synthetic|CALIBRATION.json")
    if folds is not None and folds < 2:
        raise UserError(f"--folds {folds}: walk-forward needs at least 2")
    if trials < 1:
        raise UserError(f"--trials {trials}: must be >= 1")
    if steps_in_flight < 0:
        raise UserError(f"--steps-in-flight {steps_in_flight}: must be >= 0 (0 = all)")
    parse_queue_model(queue_model)


def _prepare_folds(
    con: Any,
    data: list[Path] | None,
    market: str | None,
    hours: float,
    folds: int | None,
    seed: int,
    out: Path,
) -> tuple[list, str]:
    """The walk-forward folds on disk (synthetic market or captures) and their label."""
    from mmbot.sweep.folds import capture_folds, synthetic_folds

    with con.status("preparing folds"):
        if market:
            return synthetic_folds(market, hours, folds or 2, seed, out / "folds")
        return capture_folds(data, folds, out / "folds")


def _run_with_progress(con: Any, cfg: Any, executor: Any) -> Any:
    from mmbot.commands.progress import counting_bar
    from mmbot.sweep.driver import run_sweep

    tail = "{task.fields[best]}  {task.fields[eta]}"
    with counting_bar(con, head="{task.description}", tail=tail) as prog:
        task = prog.add_task("sweep", total=1, best="", eta="")
        last_line = [""]

        def on_progress(p: Any) -> None:
            v = f"{p.best_value:.4f}" if p.best_value is not None else "—"
            best = f"best {v}" if p.steps == 1 else f"step {p.step} best {v}"
            tuning = f"tuning {p.steps_tuning}/{p.steps} step(s)"
            desc = (tuning if p.phase == "tune" else "evaluating") + (
                f", {p.failed} failed" if p.failed else ""
            )
            prog.update(
                task,
                total=p.total,
                completed=p.done,
                description=desc,
                best=best,
                eta=_eta(p.eta_s),
            )
            if not con.is_terminal:  # a log line per trial when nobody watches a bar
                line = f"{p.done}/{p.total} {desc} {best} {_eta(p.eta_s)}"
                if line != last_line[0]:
                    con.print(line, markup=False, highlight=False)
                    last_line[0] = line

        return run_sweep(cfg, executor, on_progress)
