"""After a soak: summary.txt, the decision matrix in every output, and `mmbot soak --freeze`
(subprocess, tmp cwd, tiny market hours)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmbot.knobs import CONSERVATIVE_START, KNOB_NAMES
from mmbot.soak import autotune, decision, summary

MMBOT = [sys.executable, "-m", "mmbot.cli"]


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if k not in ("MM_PROFILE", "MM_RUNTIME_OVERRIDES_JSON")
    }
    env["COLUMNS"] = "250"
    return subprocess.run(
        [*MMBOT, "soak", *args, "--strategy", "glft"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _start(cwd: Path) -> None:
    p = cwd / "artifacts" / "soak" / "runtime_overrides.json"
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps(CONSERVATIVE_START))


def _read(cwd: Path) -> tuple[dict, dict, list[dict], str]:
    a = cwd / "artifacts"
    sm = json.loads((a / "reports/soak_metrics.json").read_text())
    gate = json.loads((a / "reports/KPI_GATE.json").read_text())
    rows = [json.loads(x) for x in (a / "soak/metrics.jsonl").read_text().splitlines()]
    return sm, gate, rows, (a / "soak/summary.txt").read_text()


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    d = tmp_path_factory.mktemp("tuned")
    _start(d)
    return d, _run(d, "--hours", "0.05", "--iterations", "2", "--auto-tune", "--seed", "3")


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    d = tmp_path_factory.mktemp("frozen")
    _start(d)
    return d, _run(d, "--freeze", "--hours", "0.1", "--iterations", "3", "--seed", "3")


def test_summary_lists_iterations_fallback_failing_checks_and_final_overrides(tuned) -> None:
    d, p = tuned
    assert p.returncode in (0, 1), p.stderr[-2000:]
    sm, gate, rows, text = _read(d)
    for r in rows:
        net = f"{r['metrics']['net_bps']:.3f}"
        assert f"iter={r['iteration']} net_bps={net} fills={r['metrics']['fills']}" in text
    fired = [r["iteration"] for r in rows if (r["autotune"] or {}).get("fallback")]
    assert ("fallback: FIRED after iteration" in text) == bool(fired)
    for c in gate["checks"]:
        if c["result"] == "fail" and c["tier"] != "ideal":
            assert f"{c['tier'].upper()} {c['metric']}:" in text
    final = json.loads((d / "artifacts/soak/runtime_overrides.json").read_text())
    assert "in artifacts/soak/runtime_overrides.json:" in text
    for k in KNOB_NAMES:
        assert f"  {k}={autotune.fmt_knob(k, final[k])}\n" in text
    # the file is the renderer's output for the exported JSON: one source for both
    assert text == summary.render(sm, gate, "artifacts/soak/runtime_overrides.json")


def test_decision_matrix_is_in_console_markdown_html_and_json(tuned) -> None:
    d, p = tuned
    sm, gate, _, text = _read(d)
    m = sm["decision"]
    assert m["band"] == decision.band_of(sm["final"]["net_bps"], decision.net_bands(gate))
    assert m["bands"]["market_profile"] == gate["market_profile"]["name"]
    for line in decision.text_lines(m):
        assert line in p.stdout and line in text
    md = (d / "artifacts/reports/SOAK_RESULTS.md").read_text()
    assert "## Decision matrix" in md and f"-> {m['band']}.**" in md
    html = (d / "artifacts/reports/REPORT.html").read_text()
    assert f"<h2>Decision matrix</h2><p><b>{m['band']}</b>" in html
    nxt = d / "artifacts/soak" / decision.NEXT_OVERRIDES_NAME
    assert nxt.exists() == (m["next_overrides"] is not None)
    if nxt.exists():
        assert json.loads(nxt.read_text()) == pytest.approx(m["next_overrides"])


def test_freeze_keeps_the_knobs_and_reports_dispersion(frozen) -> None:
    d, p = frozen
    assert p.returncode in (0, 1), p.stderr[-2000:]
    sm, gate, rows, text = _read(d)
    assert len(rows) == 3 and not sm["auto_tune"] and sm["freeze"]
    start = {k: float(v) for k, v in CONSERVATIVE_START.items()}
    for r in rows:
        assert r["knobs"] == pytest.approx(start) and r["autotune"] is None
    st = sm["stability"]
    nets = [r["metrics"]["net_bps"] for r in rows]
    assert st["net_bps_per_iteration"] == pytest.approx(nets)
    assert st["net_bps_dispersion"]["std"] == pytest.approx(np.std(nets, ddof=1))
    assert st["knobs_unchanged"] and st["knobs"] == pytest.approx(start)
    assert st["iterations_breaching_hard"] == [r["iteration"] for r in rows if r["failed_hard"]]
    assert "| stability | NET_BPS | iterations=3 " in p.stdout
    assert "| stability | KNOBS | unchanged=yes |" in text
    assert (
        "## Stability (frozen overrides)" in (d / "artifacts/reports/SOAK_RESULTS.md").read_text()
    )
    assert sm["decision"]["mode"] == "freeze"
    assert p.returncode == (1 if gate["verdict"] == "FAIL" else 0)


def test_freeze_refuses_auto_tune(tmp_path: Path) -> None:
    p = _run(tmp_path, "--freeze", "--auto-tune", "--hours", "1")
    assert p.returncode == 2
    assert p.stderr.strip().startswith("error: --freeze") and "Traceback" not in p.stderr
    assert not (tmp_path / "artifacts").exists()


def test_fallback_line_says_when_it_fired_or_was_refused() -> None:
    rows = [
        {"iteration": 1, "autotune": {"fallback": False, "trials": []}},
        {
            "iteration": 2,
            "autotune": {"trials": [{"candidate": "FALLBACK", "gain_bps": -0.1}]},
        },
        {"iteration": 3, "autotune": {"fallback": True}},
    ]
    lines = summary.fallback_lines(rows)
    assert lines[0].startswith("fallback: proposed after iteration 2, not adopted")
    assert lines[1] == "fallback: FIRED after iteration 3 (applied from iteration 4)"
    assert summary.fallback_lines(rows[:1]) == ["fallback: not fired"]
