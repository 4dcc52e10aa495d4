"""`mmbot sweep` benchmark: the 64-trial x 2-fold walk-forward on the synthetic market (in-sample
and out-of-sample figures of the chosen parameters, their gap), trials/hour with 1 and 2 local
workers and with Ray on this machine (the load average beside each row: the machine is shared),
the per-trial cost split (data loading, compile, simulation, audit), a fold of two symbols run as
one task per (trial, symbol) (records shipped back, the driver's combine), and the cold compile of
the trial loop (empty JIT cache). Figures feed docs/sweep.md.

    python bench/bench_sweep.py [--trials 64] [--hours 2] [--scaling-trials 16] [--no-ray] [--no-cold]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import polars as pl

from mmbot.jitcache import configure as configure_jit_cache

configure_jit_cache()  # an entry point: before compiled modules are imported (mmbot.jitcache)

from mmbot.config import load_profile  # noqa: E402
from mmbot.sweep.driver import SweepConfig, run_sweep  # noqa: E402
from mmbot.sweep.executors import InlineExecutor, ProcessExecutor, RayExecutor  # noqa: E402
from mmbot.sweep.folds import Fold, synthetic_folds  # noqa: E402
from mmbot.sweep.results import TIMING_COLUMNS, results_table, write_results  # noqa: E402
from mmbot.sweep.space import default_space, parse_space  # noqa: E402
from mmbot.sweep.trial import TrialRun  # noqa: E402

SPACE = {
    "base_spread_bps_delta": {"low": 0.0, "high": 0.6},
    "min_interval_ms": {"low": 50, "high": 300},
    "replace_rate_per_min": {"low": 120, "high": 360},
    "tail_age_ms": {"low": 400, "high": 1000},
    "impact_cap_ratio": {"low": 0.04, "high": 0.12},
    "max_delta_ratio": {"low": 0.10, "high": 0.20},
    "quoting.gamma": {"low": 0.02, "high": 0.5, "log": True},
}


# --strategy: the quoter every trial runs; with --default-space its space is `mmbot sweep`'s default
# (the six knobs and the quoter's tunable parameters) instead of SPACE
QUOTER = {"strategy": "glft", "default_space": False}


def _space():
    if QUOTER["default_space"]:
        return default_space(str(QUOTER["strategy"]))
    return parse_space(SPACE, "bench space")


def _cfg(out: Path, folds, trials: int, seed: int) -> SweepConfig:
    return SweepConfig(
        out=out,
        folds=folds,
        market_label="synthetic:default",
        space=_space(),
        profile=load_profile("S1"),
        objectives=("net_bps_before_rebates",),
        trials=trials,
        run=TrialRun(strategy=str(QUOTER["strategy"]), seed=seed),
    )


def _cost_lines(table: pl.DataFrame) -> list[str]:
    t = table.filter(pl.col("role") == "trial")
    first = t.filter(pl.col("compile_s") > 0)
    later = t.filter(pl.col("compile_s") == 0)
    lines = []
    for name, part in (("first trial of a worker", first), ("later trials", later)):
        if part.height == 0:
            continue
        means = "  ".join(f"{c[:-2]} {part[c].mean():.3f} s" for c in TIMING_COLUMNS)
        lines.append(f"  {name} (n={part.height}): {means}")
    tot = {c: t[c].sum() for c in TIMING_COLUMNS}
    whole = sum(tot.values())
    lines.append(
        "  share of trial time: "
        + "  ".join(f"{c[:-2]} {tot[c] / whole * 100:.1f}%" for c in TIMING_COLUMNS)
    )
    lines.append(f"  events per trial: {t['events'].mean():,.0f}")
    return lines


def walk_forward(root: Path, folds, trials: int, workers: int) -> None:
    out = root / "wf64"
    ex = InlineExecutor() if workers == 1 else ProcessExecutor(workers)
    try:
        res = run_sweep(_cfg(out, folds, trials, seed=1), ex)
    finally:
        ex.close()
    summ = write_results(res, out)
    table = pl.read_parquet(out / "results.parquet")
    st = summ["steps"][0]
    f = st["objectives"]["net_bps_before_rebates"]
    done = table.filter((pl.col("role") == "trial") & (pl.col("state") == "COMPLETE")).height
    print(f"walk-forward: {trials} trials on fold 0 ({folds[0].hours:.2f} h), judged on fold 1")
    print(f"  trials complete {done}/{trials}; tuning {res.tune_s:.1f} s with {workers} worker(s)")
    print(f"  chosen (trial {st['best_trial']}): {json.dumps(st['best_params'], sort_keys=True)}")
    print(
        "  net_bps_before_rebates: in-sample {:+.4f}  out-of-sample {:+.4f}  gap (OOS-IS) {:+.4f}".format(
            f["best_is"], f["best_oos"], f["gap_oos_minus_is"]
        )
    )
    print(
        "  profile S1 (no tuning): fold 0 {:+.4f}  fold 1 {:+.4f}; chosen minus S1 out of sample {:+.4f}".format(
            f["baseline_is"], f["baseline_oos"], f["oos_minus_baseline_oos"]
        )
    )
    top = (
        table.filter((pl.col("role") == "trial") & (pl.col("state") == "COMPLETE"))
        .sort("net_bps_before_rebates", descending=True)
        .head(5)
    )
    print(
        "  top-5 in-sample trials: " + ", ".join(f"{v:+.4f}" for v in top["net_bps_before_rebates"])
    )
    print("per-trial cost split:")
    for line in _cost_lines(table):
        print(line)


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _executor(workers: int, ray: str | None):
    if ray:
        return RayExecutor(ray, workers)
    return InlineExecutor() if workers == 1 else ProcessExecutor(workers)


def _split(t: pl.DataFrame) -> str:
    return "  ".join(f"{c[:-2]} {t[c].mean():.3f} s" for c in TIMING_COLUMNS)


def scaling(root: Path, folds, trials: int, use_ray: bool) -> None:
    kinds = [("1 local worker", 1, None), ("2 local workers", 2, None)]
    if use_ray:
        kinds.append(("Ray local (2 CPUs)", 2, "local"))
    print(
        f"scaling: {trials} trials on fold 0 ({folds[0].hours:.2f} h, {folds[0].parts[0].events:,} events)"
    )
    print(
        f"  {'executor':<20} {'tune s':>7} {'trials/hour':>11} {'startup s':>9} "
        f"{'warm s':>6} {'driver ms/trial':>15}  load avg 1/5/15 min (before -> after)"
    )
    for label, workers, ray in kinds:
        before = _load()
        t0 = time.perf_counter()
        ex = _executor(workers, ray)
        startup = time.perf_counter() - t0
        try:
            res = run_sweep(_cfg(root / f"scale_{workers}_{ray or 'proc'}", folds, trials, 2), ex)
        finally:
            ex.close()
        rate = res.trials_run / res.tune_s * 3600
        per = res.driver_s / max(res.trials_run, 1) * 1e3
        print(
            f"  {label:<20} {res.tune_s:>7.1f} {rate:>11.0f} {startup:>9.1f} "
            f"{res.warm_s:>6.2f} {per:>15.1f}  {before} -> {_load()}"
        )
        t = results_table(res).filter(pl.col("role") == "trial")
        first, later = t.filter(pl.col("compile_s") > 0), t.filter(pl.col("compile_s") == 0)
        if first.height:
            print(f"    first trial of a worker (n={first.height}): {_split(first)}")
        if later.height:
            print(f"    later trials (n={later.height}): {_split(later)}")


def two_symbols(root: Path, hours: float, trials: int, use_ray: bool) -> None:
    """A fold of two symbols (two independently seeded synthetic markets): one task per (trial,
    symbol); what the parts ship back and who scores the trial from them (the driver with local
    workers, a Ray task under Ray)."""
    a, _ = synthetic_folds("synthetic", hours, 2, 1, root / "folds")
    b, _ = synthetic_folds("synthetic", hours, 2, 2, root / "folds_b")
    folds = [
        Fold(i, (replace(fa.parts[0], symbol="SYNTH_A"), replace(fb.parts[0], symbol="SYNTH_B")))
        for i, (fa, fb) in enumerate(zip(a, b, strict=True))
    ]
    print(
        f"two symbols per fold ({sum(p.events for p in folds[0].parts):,} events in fold 0), "
        f"{trials} trials, 2 workers"
    )
    kinds = [("2 local workers", None)] + ([("Ray local (2 CPUs)", "local")] if use_ray else [])
    for label, ray in kinds:
        before = _load()
        ex = _executor(2, ray)
        try:
            res = run_sweep(_cfg(root / f"two_symbols_{ray or 'proc'}", folds, trials, 3), ex)
        finally:
            ex.close()
        t = results_table(res).filter(pl.col("role") == "trial")
        print(
            f"  {label}: {res.tasks_run} executor tasks, tuning {res.tune_s:.1f} s "
            f"({res.trials_run / res.tune_s * 3600:.0f} trials/hour); load avg {before} -> {_load()}"
        )
        print(f"    per trial (sum of its 2 parts): {_split(t)}")
        print(
            f"    records shipped back per trial {t['records_bytes'].mean() / 1e6:.2f} MB "
            f"({t['records_bytes'].mean() / t['events'].mean():.1f} bytes per event); scoring "
            f"in the driver {res.combine_s / max(res.trials_run, 1) * 1e3:.0f} ms per trial "
            "(0: scored by a Ray task; either way included in audit above)"
        )


COLD_SNIPPET = """
import time, sys
from mmbot.config import load_profile
from mmbot.sweep.folds import Fold, FoldPart
from mmbot.sweep.trial import TrialTask, run_trial
import json
fold = json.loads(sys.argv[1])
f = Fold(fold["index"], tuple(FoldPart(**p) for p in fold["parts"]))
t = time.perf_counter()
out = run_trial(TrialTask("cold", f, {}, load_profile("S1"), {}, ("net_bps",)))
print(f"cold: compile {out.compile_s:.1f} s, simulate {out.sim_s:.2f} s, ok={out.ok}")
"""


def cold_compile(folds) -> None:
    from dataclasses import asdict

    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        fold = json.dumps({"index": 0, "parts": [asdict(p) for p in folds[0].parts]})
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", COLD_SNIPPET, fold], env=env, capture_output=True, text=True
        )
        print(proc.stdout.strip() or proc.stderr.strip().splitlines()[-1])
        print(f"  process wall with an empty JIT cache: {time.perf_counter() - t0:.1f} s")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=64)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scaling-trials", type=int, default=16)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--no-cold", action="store_true")
    ap.add_argument("--no-walk-forward", action="store_true")
    ap.add_argument("--two-symbol-trials", type=int, default=8)
    ap.add_argument("--strategy", default="glft")
    ap.add_argument("--default-space", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    QUOTER.update(strategy=args.strategy, default_space=args.default_space)
    print(f"quoter {args.strategy}; space: {_space().source}; {', '.join(_space().names)}")
    root = args.out or Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    t0 = time.perf_counter()
    folds, _ = synthetic_folds("synthetic", args.hours, 2, 1, root / "folds")
    print(
        f"folds: 2 x {folds[0].hours:.2f} h synthetic ({sum(p.events for f in folds for p in f.parts):,} events), "
        f"made in {time.perf_counter() - t0:.1f} s; cores {os.cpu_count()}; load avg {_load()}"
    )
    use_ray = not args.no_ray and importlib.util.find_spec("ray") is not None
    if not use_ray and not args.no_ray:
        print("ray not installed (pip install 'mmbot[ray]'): Ray rows skipped")
    if not args.no_walk_forward:
        walk_forward(root, folds, args.trials, args.workers)
    if args.scaling_trials:
        scaling(root, folds, args.scaling_trials, use_ray)
    if args.two_symbol_trials:
        two_symbols(root, args.hours, args.two_symbol_trials, use_ray)
    if not args.no_cold:
        cold_compile(folds)
    print(f"outputs in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
