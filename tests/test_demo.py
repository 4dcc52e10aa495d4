"""`mmbot demo` (what `make demo` runs, without make): the seed's start package, soak, decision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmbot.knobs import CONSERVATIVE_START


def test_mmbot_demo_writes_the_start_package_soaks_and_prints_the_decision(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MM_RUNTIME_OVERRIDES_JSON"}
    env["COLUMNS"] = "250"
    p = subprocess.run(
        [sys.executable, "-m", "mmbot.cli", "demo", "--hours", "0.05", "--iterations", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    start = {k: float(v) for k, v in CONSERVATIVE_START.items()}
    rows = (tmp_path / "artifacts/soak/metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1
    knobs = json.loads(rows[0])["knobs"]
    # the six from the start package, plus the default quoter's own knobs (param.*) at its defaults
    assert {k: v for k, v in knobs.items() if k in start} == pytest.approx(start)
    assert all(k in start or k.startswith("param.") for k in knobs)
    sm = json.loads((tmp_path / "artifacts/reports/soak_metrics.json").read_text())
    assert sm["hours"] == pytest.approx(0.05)
    assert f"| decision | BAND | {sm['decision']['band']} |" in p.stdout
    assert "artifacts/soak/summary.txt" in p.stdout.replace("\\", "/")
    # the demo names the venue's market-maker tier and shows net before its rebate beside net
    edge = json.loads((tmp_path / "artifacts/reports/EDGE_REPORT.json").read_text())
    assert edge["runtime"]["fee_tier"] == "mm1" and edge["runtime"]["maker_fee_bps"] < 0
    t = edge["totals"]
    assert f"net_bps_before_rebates={t['net_bps_before_rebates']:.3f}" in p.stdout
    assert "| soak | FEES | tier mm1 " in p.stdout
