"""mmbot.sweep driver, checks and results on a tiny synthetic market: a broken accounting injected
into a trial is caught and the trial failed (never scored); walk-forward figures; resume."""

from __future__ import annotations

import math

import polars as pl
import pytest

from mmbot.config import load_overrides, load_profile
from mmbot.sweep.driver import ATTR_REASON, SweepConfig, open_study, run_sweep
from mmbot.sweep.executors import InlineExecutor
from mmbot.sweep.folds import synthetic_folds
from mmbot.sweep.results import write_results
from mmbot.sweep.space import parse_space, suggest
from mmbot.sweep.trial import (
    FAULT_FEE_RATE_SIGN,
    FAULT_FEE_RECORD_SIGN,
    FAULT_MID_RECORD,
    TrialRun,
    TrialTask,
    run_trial,
)

HOURS = 0.04  # two folds of 1.2 min: a trial simulates in well under a second


@pytest.fixture(scope="module")
def folds(tmp_path_factory):
    return synthetic_folds("synthetic", HOURS, 2, 3, tmp_path_factory.mktemp("folds"))[0]


def _cfg(out, folds, trials, **kw):
    space = parse_space(
        {
            "base_spread_bps_delta": {"low": 0.0, "high": 0.6},
            "tail_age_ms": {"low": 400, "high": 1000},
        },
        "test space",
    )
    return SweepConfig(
        out=out,
        folds=folds,
        market_label="synthetic:test",
        space=space,
        profile=load_profile("S1"),
        objectives=("net_bps_before_rebates",),
        trials=trials,
        run=TrialRun(seed=5, min_fills=kw.pop("min_fills", 1)),
        sampler="random",
        **kw,
    )


def test_flipped_fee_sign_in_one_trial_is_caught_and_never_scored(tmp_path, folds):
    faults = {(0, 1): FAULT_FEE_RECORD_SIGN, (0, 2): FAULT_FEE_RATE_SIGN}
    cfg = _cfg(tmp_path, folds, 4, faults=faults)
    res = run_sweep(cfg, InlineExecutor())
    trials = {t.number: t for t in res.studies[0].get_trials()}
    assert [trials[n].state.name for n in range(4)] == ["COMPLETE", "FAIL", "FAIL", "COMPLETE"]
    # records' fee sign flipped: the audit's pnl no longer equals the simulator's equity
    assert "simulator's equity" in trials[1].user_attrs[ATTR_REASON]
    # venue run with the maker rate's sign flipped: venue and records agree, the configuration not
    assert "maker_fee_rate" in trials[2].user_attrs[ATTR_REASON]
    assert trials[1].values is None and trials[2].values is None
    assert res.steps[0].best_trial in (0, 3)

    summ = write_results(res, tmp_path)
    table = pl.read_parquet(tmp_path / "results.parquet")
    failed = table.filter(pl.col("state") == "FAIL").sort("trial")
    assert failed["trial"].to_list() == [1, 2]
    assert failed["fault"].to_list() == [FAULT_FEE_RECORD_SIGN, FAULT_FEE_RATE_SIGN]
    assert failed["net_bps_before_rebates"].is_nan().all()  # no KPI of a failed trial is kept
    assert "Failed trials (2)" in (tmp_path / "sweep_report.html").read_text()
    assert summ["chosen"]["params"] == res.steps[0].best_params


def test_walk_forward_judges_the_best_out_of_sample(tmp_path, folds):
    res = run_sweep(_cfg(tmp_path, folds, 3), InlineExecutor())
    summ = write_results(res, tmp_path)
    (step,) = summ["steps"]
    figs = step["objectives"]["net_bps_before_rebates"]
    best = res.studies[0].best_trial
    assert figs["best_is"] == pytest.approx(best.values[0])
    assert figs["gap_oos_minus_is"] == pytest.approx(figs["best_oos"] - figs["best_is"])
    table = pl.read_parquet(tmp_path / "results.parquet")
    oos = table.filter((pl.col("role") == "best") & (pl.col("sample") == "oos"))
    assert oos["fold"].to_list() == [1] and oos["trial"].to_list() == [best.number]
    assert oos["net_bps_before_rebates"][0] == pytest.approx(figs["best_oos"])
    # net before rebates: a rebate (positive fee component, all fills maker) taken out of net; at
    # S1's base fee tier the maker fee is a cost, so there is no rebate and the two nets agree
    row = oos.row(0, named=True)
    rebate_bps = max(row["fees_eff_bps"], 0.0)
    assert row["net_bps_before_rebates"] == pytest.approx(row["net_bps"] - rebate_bps)
    # the chosen overrides are a file the other commands accept, with the chosen values
    ovr, messages = load_overrides(tmp_path / "chosen_overrides.json")
    assert messages == [] and ovr["tail_age_ms"] == best.params["tail_age_ms"]
    assert math.isfinite(summ["cost"]["mean_sim_s"]) and summ["cost"]["trials"] == 3


def test_an_interrupted_study_resumes_where_it_stopped(tmp_path, folds):
    cfg = _cfg(tmp_path, folds, 2)
    first = run_sweep(cfg, InlineExecutor())
    assert first.trials_run == 2
    # a trial left RUNNING by a killed sweep
    study = open_study(cfg, 0)
    stuck = study.ask()
    suggest(stuck, cfg.space)
    assert stuck.number == 2
    cfg.trials = 3
    again = run_sweep(cfg, InlineExecutor())
    assert again.trials_run == 1  # the two finished trials are kept, the interrupted one re-run
    trials = again.studies[0].get_trials()
    assert trials[2].state.name == "FAIL" and "interrupted" in trials[2].user_attrs[ATTR_REASON]
    assert trials[3].state.name == "COMPLETE" and trials[3].params == trials[2].params
    write_results(again, tmp_path)
    table = pl.read_parquet(tmp_path / "results.parquet")
    assert sorted(table.filter(pl.col("role") == "trial")["trial"].to_list()) == [0, 1, 3]


def test_a_trial_with_too_few_fills_is_failed_not_scored(tmp_path, folds):
    res = run_sweep(_cfg(tmp_path, folds, 1, min_fills=10**9), InlineExecutor())
    (t,) = res.studies[0].get_trials()
    assert t.state.name == "FAIL" and "--min-fills" in t.user_attrs[ATTR_REASON]
    assert res.steps[0].best_trial is None and "best_oos" not in res.steps[0].evaluations


def test_a_fill_with_a_corrupted_mid_fails_its_trial_naming_the_fill(tmp_path, folds):
    res = run_sweep(_cfg(tmp_path, folds, 2, faults={(0, 1): FAULT_MID_RECORD}), InlineExecutor())
    trials = {t.number: t for t in res.studies[0].get_trials()}
    assert [trials[n].state.name for n in range(2)] == ["COMPLETE", "FAIL"]
    reason = trials[1].user_attrs[ATTR_REASON]
    assert reason.startswith("audit: fold0_") and " fill " in reason and "carries mid" in reason
    assert trials[1].values is None


def test_an_inverse_capture_runs_as_inverse_with_its_own_fee_schedule(tmp_path):
    from conftest import COINM_CAPTURE, need_shared
    from mmbot.instruments import detect_spec
    from mmbot.sweep.folds import capture_folds

    cap = need_shared(COINM_CAPTURE)
    cfolds, _ = capture_folds([cap], 2, tmp_path / "folds")
    part = cfolds[0].parts[0]
    assert detect_spec(part.data_format, part.symbol).kind == "inverse"
    task = TrialTask(
        "t0",
        cfolds[0],
        dict(load_profile("S1").runtime),
        load_profile("S1"),
        {},
        ("net_bps",),
        run=TrialRun(min_fills=1),
    )
    out = run_trial(task)
    assert out.ok, out.reason
    # counted in BTC, the settle coin: contracts x 100 USD / px (a few BTC here); read as linear
    # contracts it would be px x contracts, about 56,000 per contract
    assert 0 < out.kpis["turnover"] < 100, out.kpis["turnover"]


@pytest.fixture(scope="module")
def folds3(tmp_path_factory):
    return synthetic_folds("synthetic", 1.5 * HOURS, 3, 3, tmp_path_factory.mktemp("folds3"))[0]


def _trial_order(progress: list) -> list[int]:
    """The step of each trial as it finished (from the progress callbacks)."""
    order, done = [], 0
    for p in progress:
        if p.done > done:
            order.append(p.step)
            done = p.done
    return order


def _per_step(res) -> list[list[tuple]]:
    return [[(t.number, t.params, t.values) for t in study.get_trials()] for study in res.studies]


def test_walk_forward_steps_run_concurrently_and_agree_with_one_at_a_time(tmp_path, folds3):
    conc_seen: list = []
    seq_seen: list = []
    conc = run_sweep(_cfg(tmp_path / "c", folds3, 3), InlineExecutor(), conc_seen.append)
    seq = run_sweep(
        _cfg(tmp_path / "s", folds3, 3, steps_in_flight=1), InlineExecutor(), seq_seen.append
    )
    assert _trial_order(conc_seen) == [0, 1, 0, 1, 0, 1]  # both steps tune together
    assert _trial_order(seq_seen) == [0, 0, 0, 1, 1, 1]
    # each step's study sees only its own trials: the same trials, values and choices either way
    assert _per_step(conc) == _per_step(seq)
    assert [s.evaluations["best_oos"]["values"] for s in conc.steps] == [
        s.evaluations["best_oos"]["values"] for s in seq.steps
    ]
    # the profile's own parameters run once per fold, shared by the two steps that use the fold
    assert conc.steps[0].evaluations["base_oos"] == conc.steps[1].evaluations["base_is"]
    assert conc.tasks_run == 2 * 3 + 2 + 3  # trials, best out of sample per step, base per fold


def _two_symbol_folds(tmp_path):
    from conftest import TESTS_DATA
    from mmbot.sweep.folds import capture_folds

    caps = [
        TESTS_DATA / "binance_usdm_btcusdt_sample.gz",
        TESTS_DATA / "bybit_xrpusdt_ob500_sample.jsonl",
    ]
    return capture_folds(caps, 2, tmp_path / "folds")[0]


def test_a_fold_of_several_symbols_runs_a_task_per_symbol_scored_as_one(tmp_path):
    from dataclasses import replace

    from mmbot.sweep.trial import finish_parts, split_parts

    folds2 = _two_symbol_folds(tmp_path)
    assert [p.symbol for p in folds2[0].parts] == ["BTCUSDT", "XRPUSDT"]
    prof = load_profile("S1")
    task = TrialTask("t0", folds2[0], {}, prof, {}, ("net_bps",), run=TrialRun(min_fills=1))
    whole = run_trial(task)
    parts = split_parts(task)
    assert [(p.key, p.part) for p in parts] == [("t0#p0", 0), ("t0#p1", 1)]
    outs = [run_trial(p) for p in parts]
    assert all(o.ok and len(o.records) == 1 and o.records_bytes > 0 for o in outs)
    combined = finish_parts(task, outs)
    assert whole.ok and combined.ok, (whole.reason, combined.reason)
    assert combined.kpis == whole.kpis and combined.values == whole.values
    assert combined.events == whole.events == sum(p.events for p in folds2[0].parts)
    # a broken accounting in the parts fails the whole trial, naming the first broken part
    bad = replace(task, fault=FAULT_FEE_RECORD_SIGN)
    failed = finish_parts(bad, [run_trial(p) for p in split_parts(bad)])
    assert not failed.ok and failed.reason.startswith("part BTCUSDT: audit:"), failed.reason
    assert failed.values == []


def test_a_sweep_over_several_symbols_in_worker_processes(tmp_path):
    from mmbot.sweep.executors import ProcessExecutor

    folds2 = _two_symbol_folds(tmp_path)
    ex = ProcessExecutor(2)
    try:
        res = run_sweep(_cfg(tmp_path, folds2, 3, faults={(0, 1): FAULT_FEE_RATE_SIGN}), ex)
    finally:
        ex.close()
    trials = {t.number: t for t in res.studies[0].get_trials()}
    assert [trials[n].state.name for n in range(3)] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert (
        trials[1]
        .user_attrs[ATTR_REASON]
        .startswith("part BTCUSDT: run 0 (BTCUSDT): maker_fee_rate")
    )
    # one task per (trial, symbol); evaluations too
    assert res.tasks_run == 2 * (3 + 1 + 2)
    assert res.combine_s > 0  # the driver scored each trial from its parts' records
    workers = {w for t in trials.values() for w in t.user_attrs["timing"]["worker"].split(",")}
    assert len(workers) == 2  # both worker processes ran parts
