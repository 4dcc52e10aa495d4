"""What a run says about itself: knob sources, a working-directory overrides file not applied
silently, the compile phase measured apart, failing gate checks named."""

from __future__ import annotations

import json

from numba import njit

from mmbot import firstrun, jitclock
from mmbot.config import load_profile
from mmbot.gate import failed_check_lines


def test_working_directory_overrides_file_is_named_and_not_applied(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MM_RUNTIME_OVERRIDES_JSON", raising=False)
    prof = load_profile("S1")
    assert not any("NOT applied" in s for s in firstrun.knob_lines(prof, {}, None))
    f = tmp_path / "artifacts" / "soak" / "runtime_overrides.json"
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"min_interval_ms": 100}))
    lines = firstrun.knob_lines(prof, {}, None)
    assert any("runtime_overrides.json exists" in s and "NOT applied" in s for s in lines)
    lines = firstrun.knob_lines(prof, {"min_interval_ms": 100}, f)
    assert f"overrides from --overrides {f}: min_interval_ms=100" in lines


def test_compile_clock_counts_a_compile_and_not_the_second_call() -> None:
    @njit
    def _add(a, b):
        return a + b

    starts: list[str] = []
    with jitclock.CompileClock(on_start=starts.append) as c:
        _add(1, 2)
    first = c.seconds
    assert c.count == 1 and first > 0 and starts and starts[0].endswith("_add")
    with jitclock.CompileClock() as c2:
        _add(3, 4)
    assert c2.count == 0 and c2.seconds == 0


def test_phase_times_put_compile_apart() -> None:
    @njit
    def _mul(a, b):
        return a * b

    ph = firstrun.PhaseTimes()
    with ph.timed("simulate", jitclock.CompileClock()):
        _mul(2.0, 3.0)
    assert ph.compile_s > 0 and ph.wall_s["simulate"] < ph.compile_s
    assert "compile" in ph.line() and "simulate" in ph.line()


def test_failed_checks_name_value_and_threshold() -> None:
    gate = {
        "checks": [
            {
                "tier": "hard",
                "metric": "net_bps",
                "op": "ge",
                "threshold": 2.5,
                "value": -0.5,
                "result": "fail",
            },
            {
                "tier": "soft",
                "metric": "fills",
                "op": "ge",
                "threshold": 10,
                "value": 20,
                "result": "pass",
            },
            {
                "tier": "ideal",
                "metric": "x",
                "op": "ge",
                "threshold": 1,
                "value": 0,
                "result": "fail",
            },
        ]
    }
    assert failed_check_lines(gate) == ["hard net_bps = -0.5, needs >= 2.5"]


def test_backtest_command_says_knob_source_timing_and_failed_checks(tmp_path, monkeypatch) -> None:
    import subprocess

    from conftest import REPO, TESTS_DATA

    f = tmp_path / "artifacts" / "soak" / "runtime_overrides.json"
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"min_interval_ms": 300}))
    env = {k: v for k, v in __import__("os").environ.items() if k != "MM_RUNTIME_OVERRIDES_JSON"}
    env["COLUMNS"] = "200"
    cmd = [
        str(REPO / ".venv" / "bin" / "mmbot"),
        "backtest",
        "--out",
        "o",
        "--data",
        str(TESTS_DATA / "binance_usdm_btcusdt_sample.gz"),
    ]
    p = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "overrides: none" in p.stdout and "NOT applied" in p.stdout
    assert "simulate " in p.stdout and "compile " in p.stdout
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["runtime"]["overrides"] == {}
    gate = json.loads((tmp_path / "o" / "KPI_GATE.json").read_text())
    for line in failed_check_lines(gate):
        assert f"KPI_GATE={gate['verdict']}: {line}" in p.stdout


def _short_soak(tmp_path, name: str) -> list[str]:
    from mmbot.soak.artifacts import SoakPaths
    from mmbot.soak.loop import run_soak
    from mmbot.soak.start import SoakSettings

    lines: list[str] = []
    root = tmp_path / name
    run_soak(
        SoakSettings(
            hours=60 / 3600,
            iterations=1,
            auto_tune=False,
            paths=SoakPaths(
                root,
                root / "soak_metrics.json",
                root / "SOAK_RESULTS.md",
                root / "gates_summary.json",
            ),
        ),
        say=lines.append,
    )
    return lines


def test_a_soak_announces_a_compile_by_its_own_quoters_loop(tmp_path, monkeypatch) -> None:
    """The soak's default quoter decides whether it starts cold, not glft's loop: a cache holding
    only the default quoter's loop is warm for it (``jitclock`` reads the variable per call; numba
    keeps the cache it opened, so the run itself is unaffected)."""
    from mmbot.strategy.registry import DEFAULT_QUOTER

    fake = tmp_path / "cache"
    fake.mkdir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(fake))
    (fake / f"mmbot_loop_{DEFAULT_QUOTER}_0.drive-1.py311.nbi").write_bytes(b"")
    assert not any("| soak | COMPILE |" in s for s in _short_soak(tmp_path, "warm"))
    (fake / f"mmbot_loop_{DEFAULT_QUOTER}_0.drive-1.py311.nbi").unlink()
    (fake / "mmbot_loop_glft_0.drive-1.py311.nbi").write_bytes(b"")
    assert any("| soak | COMPILE |" in s for s in _short_soak(tmp_path, "cold"))
