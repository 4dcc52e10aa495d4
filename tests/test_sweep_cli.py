"""`mmbot sweep`: a tiny sweep end to end (progress, summary, files), bad input in one line, and
trials as Ray tasks on a local Ray (skipped when the optional extra is not installed)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import polars as pl
import pytest

from mmbot.config import load_overrides


def run_mmbot(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mmbot.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def _tiny(out, *extra: str) -> list[str]:
    return [
        "sweep",
        *("--strategy", "glft"),  # fills in 0.04 h at the base tier's fees (adaptive rarely does)
        "--market",
        "synthetic",
        "--hours",
        "0.04",
        "--folds",
        "2",
        "--trials",
        "2",
        "--min-fills",
        "1",
        "--out",
        str(out),
        *extra,
    ]


def test_tiny_sweep_end_to_end(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("parameters:\n  base_spread_bps_delta: {low: 0.0, high: 0.6}\n")
    proc = run_mmbot(*_tiny(tmp_path / "out", "--space", str(space), "--workers", "1"))
    assert proc.returncode == 0, proc.stderr
    assert "2/2" in proc.stdout and "ETA" in proc.stdout and "best" in proc.stdout
    assert "gap OOS−IS" in proc.stdout
    out = tmp_path / "out"
    for name in ("results.parquet", "SWEEP_SUMMARY.json", "sweep_report.html", "sweep.db"):
        assert (out / name).exists(), name
    table = pl.read_parquet(out / "results.parquet")
    assert set(table["sample"]) == {"is", "oos"} and "p.base_spread_bps_delta" in table.columns
    ovr, _ = load_overrides(out / "chosen_overrides.json")
    assert set(ovr) == {"base_spread_bps_delta"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sweep", "--out", "X"], "either --data"),
        (["sweep", "--out", "X", "--market", "synthetic", "--folds", "1"], "--folds 1"),
        (["sweep", "--out", "X", "--market", "synthetic", "--objective", "sharpe"], "sharpe"),
        (["sweep", "--out", "X", "--market", "synthetic", "--space", "nope.yaml"], "nope.yaml"),
        (["sweep", "--out", "X", "--market", "synthetic", "--strategy", "zz"], "zz"),
        (["sweep", "--out", "X", "--data", "missing.gz", "--folds", "2"], "missing.gz"),
        (
            ["sweep", "--out", "X", "--market", "synthetic", "--space", "q.json"],
            "no parameter 'skew'",
        ),
        (["sweep", "--out", "X", "--market", "synthetic", "--param", "skew"], "NAME=VALUE"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, needle):
    (tmp_path / "q.json").write_text('{"param.skew": {"low": 0, "high": 1}}')
    args = [str(tmp_path / a) if a in ("X", "q.json") else a for a in args]
    proc = run_mmbot(*args, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


RAY_MISSING = importlib.util.find_spec("ray") is None


@pytest.mark.slow  # ~30 s: a private Ray starts (and stops) on this machine
@pytest.mark.skipif(
    RAY_MISSING, reason="ray not installed (optional extra: pip install 'mmbot[ray]')"
)
def test_trials_run_as_ray_tasks_on_a_local_ray_one_task_per_symbol(tmp_path):
    from conftest import TESTS_DATA

    caps = ["binance_usdm_btcusdt_sample.gz", "bybit_xrpusdt_ob500_sample.jsonl"]
    args = [a for c in caps for a in ("--data", str(TESTS_DATA / c))]
    tiny = [a for a in _tiny(tmp_path) if a not in ("--market", "synthetic", "--hours", "0.04")]
    proc = run_mmbot(*tiny, *args, "--ray", "local", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    # 2 trials, the best out of sample, the baseline on each of 2 folds: each a task per symbol
    run = json.loads((tmp_path / "SWEEP_SUMMARY.json").read_text())["run"]
    assert (run["trials_run"], run["tasks_run"]) == (2, 2 * (2 + 1 + 2))
    assert run["combine_s"] == 0.0  # a Ray task scored each trial's parts, not the driver
    table = pl.read_parquet(tmp_path / "results.parquet")
    trials = table.filter(pl.col("role") == "trial")
    assert trials["state"].to_list() == ["COMPLETE", "COMPLETE"]
    # both symbols' parts reached their tasks through the object store
    folds = (tmp_path / "folds" / "folds.json").read_text()
    assert "XRPUSDT" in folds and (trials["events"] > 0).all()
    assert (
        trials["events"].to_list()[0]
        == table.filter(pl.col("role") == "baseline")["events"].to_list()[0]
    )


@pytest.mark.skipif(
    RAY_MISSING, reason="ray not installed (optional extra: pip install 'mmbot[ray]')"
)
def test_ray_auto_without_a_cluster_is_one_line(tmp_path):
    proc = run_mmbot(*_tiny(tmp_path, "--ray", "auto"), timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--ray auto" in proc.stderr and "--ray local" in proc.stderr
