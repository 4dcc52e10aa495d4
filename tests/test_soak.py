"""`mmbot soak` end to end (subprocess, tmp cwd): artifacts, identity, exit code = gate verdict,
determinism, overrides precedence, bad input. Tiny market hours keep it fast."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mmbot.config import PROFILES_DIR
from mmbot.knobs import CONSERVATIVE_START, KNOB_NAMES
from mmbot.soak.artifacts import SoakPaths, strip_wall_clock

MMBOT = [sys.executable, "-m", "mmbot.cli"]
# glft: it fills in every 1.5-minute segment (the default adaptive warms up for 30 s and, at the base
# tier's 2 bps maker fee, rarely finds a depth worth quoting), which the keep-best checks need
SMOKE_ARGS = [
    *("soak", "--hours", "0.05", "--iterations", "2", "--auto-tune", "--seed", "7"),
    *("--strategy", "glft"),
]


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("MM_PROFILE", "MM_RUNTIME_OVERRIDES_JSON")
    }
    env.update(extra)
    env.setdefault("COLUMNS", "200")
    return env


def run_mmbot(cwd: Path, args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MMBOT, *args], cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=600
    )


def _write_start(cwd: Path) -> None:
    p = cwd / "artifacts" / "soak" / "runtime_overrides.json"
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps(CONSERVATIVE_START))


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list]:
    dirs, procs = [], []
    for name in ("a", "b"):
        d = tmp_path_factory.mktemp(f"soak_{name}")
        _write_start(d)
        procs.append(run_mmbot(d, SMOKE_ARGS))
        dirs.append(d)
    return dirs[0], dirs[1], procs


def test_smoke_writes_every_artifact_and_exit_code_follows_the_gate(two_runs) -> None:
    a, _, procs = two_runs
    p = procs[0]
    assert p.returncode in (0, 1), p.stderr[-3000:]
    paths = SoakPaths(
        a / "artifacts",
        a / "artifacts/reports/soak_metrics.json",
        a / "artifacts/reports/SOAK_RESULTS.md",
        a / "artifacts/reports/gates_summary.json",
    )
    missing = [str(f) for f in paths.required(2) if not f.exists()]
    assert not missing, missing
    assert (a / "artifacts/reports/REPORT.html").exists()
    gate = json.loads(paths.kpi_gate.read_text())
    assert p.returncode == (1 if gate["verdict"] == "FAIL" else 0)
    edge = json.loads(paths.edge_report.read_text())
    ident = edge["identity"]
    assert ident["checked_runs"] >= 2 and ident["max_rel_err"] <= ident["tolerance_rel"]
    # the records are kept: the report rebuilt from them is the soak's own
    from mmbot.audit import build_edge_report
    from mmbot.audit.records_io import read_run

    runs = read_run(a / "artifacts/soak/records")
    assert len(runs) == ident["checked_runs"]
    again = build_edge_report(runs, {})["totals"]
    assert again["net_bps"] == pytest.approx(edge["totals"]["net_bps"], rel=1e-9, abs=1e-12)
    assert again["fills"] == edge["totals"]["fills"]
    # the seed's markers
    assert "| soak_iter_artifacts | OK | iter=1 |" in p.stdout
    assert "| soak_iter_artifacts | OK | iter=2 |" in p.stdout
    # no staging directory left behind
    assert not list(a.glob(".mmbot-soak-staging-*"))
    assert not list((a / "artifacts").glob(".mmbot-soak-staging-*"))


def test_iteration_one_uses_the_overrides_file_and_final_is_keep_best(two_runs) -> None:
    a, _, _ = two_runs
    rows = [json.loads(x) for x in (a / "artifacts/soak/metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2]
    six = {k: v for k, v in rows[0]["knobs"].items() if k in KNOB_NAMES}  # + the quoter's param.*
    assert six == pytest.approx({k: float(v) for k, v in CONSERVATIVE_START.items()})
    # iteration 2 ran with the knobs the tuner chose after iteration 1
    assert rows[1]["knobs"] == rows[0]["next_knobs"]
    # keep-best on common market, recomputed here from the replayed net_bps the soak recorded:
    # every knob set that ran, scored by its mean net over the same segments (every iteration's);
    # the latest set stays unless an earlier one beats it by more than the margin
    # (KEEP_BEST_MARGIN_BPS at two segments, falling like 1/sqrt(n)), and never one scoring
    # below the start: then the best-scoring set
    from mmbot.soak.autotune import KEEP_BEST_MARGIN_BPS

    sm = json.loads((a / "artifacts/reports/soak_metrics.json").read_text())
    table = sm["keep_best"]
    assert {json.dumps(r["knobs"], sort_keys=True) for r in table} == {
        json.dumps(r["knobs"], sort_keys=True) for r in rows
    }
    assert all(t["segments"] == table[0]["segments"] for t in table)
    assert sorted(table[0]["segments"]) == [r["iteration"] for r in rows]
    scores = [sum(t["segment_score_bps"]) / len(t["segment_score_bps"]) for t in table]
    margin = KEEP_BEST_MARGIN_BPS * (2 / len(table[0]["segments"])) ** 0.5
    best = len(table) - 1
    for i in range(len(table) - 2, -1, -1):
        if scores[i] > scores[best] + margin:
            best = i
    i_start = next(i for i, t in enumerate(table) if t["knobs"] == pytest.approx(rows[0]["knobs"]))
    if scores[best] < scores[i_start]:
        best = max(range(len(table)), key=lambda i: (scores[i], i))
    final = json.loads((a / "artifacts/soak/runtime_overrides.json").read_text())
    assert final == pytest.approx(table[best]["knobs"])
    # every change the tuner made was printed as a seed-format marker
    out = two_runs[2][0].stdout
    for ch in (rows[0]["autotune"] or {}).get("changes", []):
        if ch["rule"] != "FALLBACK":
            assert f"{ch['field']} from=" in out


_UTC_RE = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?")
_UUID_RE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _normalise_text(data: bytes) -> bytes:
    data = re.sub(rb"git_rev[^\n]*", b"git_rev", data)
    return _UUID_RE.sub(b"<uuid>", _UTC_RE.sub(b"<utc>", data))


def _strip(obj: object) -> object:
    """Drop wall-clock keys, and git_rev: the tree can gain a commit between the two runs."""
    obj = strip_wall_clock(obj)
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k != "git_rev"}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _artifact_files(root: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(root)): p for p in sorted((root / "artifacts").rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_artifacts_modulo_wall_clock(two_runs) -> None:
    a, b, _ = two_runs
    fa, fb = _artifact_files(a), _artifact_files(b)
    assert sorted(fa) == sorted(fb)
    for rel in fa:
        da, db = fa[rel].read_bytes(), fb[rel].read_bytes()
        if rel.endswith(".json"):
            assert _strip(json.loads(da)) == _strip(json.loads(db)), rel
        elif rel.endswith(".jsonl"):
            la = [_strip(json.loads(x)) for x in da.splitlines()]
            lb = [_strip(json.loads(x)) for x in db.splitlines()]
            assert la == lb, rel
        else:
            # Markdown/HTML may carry the runtime's UTC time and plotly's random element ids
            assert _normalise_text(da) == _normalise_text(db), rel


def test_env_overrides_take_precedence_over_the_file(tmp_path: Path) -> None:
    _write_start(tmp_path)
    env_over = {"min_interval_ms": 120, "base_spread_bps_delta": 0.3}
    p = run_mmbot(
        tmp_path,
        ["soak", "--hours", "0.02", "--iterations", "1"],
        MM_RUNTIME_OVERRIDES_JSON=json.dumps(env_over),
    )
    assert p.returncode in (0, 1), p.stderr[-3000:]
    row = json.loads((tmp_path / "artifacts/soak/metrics.jsonl").read_text().splitlines()[0])
    assert row["knobs"]["min_interval_ms"] == 120
    assert row["knobs"]["base_spread_bps_delta"] == pytest.approx(0.3)
    # knobs not in the env JSON come from the profile (S1), not from the file
    s1 = json.loads((PROFILES_DIR / "market_maker_S1.json").read_text())
    assert row["knobs"]["tail_age_ms"] == s1["runtime"]["tail_age_ms"]
    assert set(KNOB_NAMES) <= set(row["knobs"])  # the default quoter adds its param.* knobs


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--market", "no/such/capture.gz"], {}, "--market"),
        (["--iterations", "0"], {}, "--iterations"),
        (["--hours", "-1"], {}, "--hours"),
        ([], {"MM_RUNTIME_OVERRIDES_JSON": '{"min_interval_ms": }'}, "MM_RUNTIME_OVERRIDES_JSON"),
        ([], {"MM_RUNTIME_OVERRIDES_JSON": '{"no_such_knob": 1}'}, "no_such_knob"),
        (["--market", "synthetic:no_such_market"], {}, "no_such_market"),
        (["--export-json", "."], {}, "--export-json"),
        (["--fee-tier", "vip9"], {}, "vip9"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, args: list[str], env: dict, needle: str
) -> None:
    p = run_mmbot(tmp_path, ["soak", "--hours", "0.02", "--iterations", "1", *args], **env)
    assert p.returncode == 2, (p.stdout[-2000:], p.stderr[-2000:])
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and needle in err[0], p.stderr
    assert "Traceback" not in p.stderr
    assert list(tmp_path.iterdir()) == []


def test_malformed_overrides_file_exits_2_and_leaves_it_alone(tmp_path: Path) -> None:
    f = tmp_path / "artifacts" / "soak" / "runtime_overrides.json"
    f.parent.mkdir(parents=True)
    f.write_text('{"min_interval_ms": 70,')
    p = run_mmbot(tmp_path, ["soak", "--hours", "0.02", "--iterations", "1"])
    assert p.returncode == 2 and p.stderr.startswith("error:"), p.stderr
    assert f.read_text() == '{"min_interval_ms": 70,'
    assert sorted(str(x.relative_to(tmp_path)) for x in tmp_path.rglob("*")) == [
        "artifacts",
        "artifacts/soak",
        "artifacts/soak/runtime_overrides.json",
    ]


def test_mm_profile_is_honoured(tmp_path: Path) -> None:
    s1 = json.loads((PROFILES_DIR / "market_maker_S1.json").read_text())
    s1["runtime"]["min_interval_ms"] = 150
    s1["name"] = "custom"
    prof = tmp_path / "custom_profile.json"
    prof.write_text(json.dumps(s1))
    work = tmp_path / "work"
    work.mkdir()
    p = run_mmbot(work, ["soak", "--hours", "0.02", "--iterations", "1"], MM_PROFILE=str(prof))
    assert p.returncode in (0, 1), p.stderr[-3000:]
    row = json.loads((work / "artifacts/soak/metrics.jsonl").read_text().splitlines()[0])
    assert row["knobs"]["min_interval_ms"] == 150
    bad = run_mmbot(work, ["soak", "--hours", "0.02", "--iterations", "1"], MM_PROFILE="NOPE")
    assert bad.returncode == 2 and "NOPE" in bad.stderr and "Traceback" not in bad.stderr


def test_demo_runs_the_seed_soak_from_the_conservative_start(tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "mmbot.cli", "demo"],
        cwd=tmp_path,
        env=_env(MM_RUNTIME_OVERRIDES_JSON='{"min_interval_ms": 200}'),  # the demo ignores it
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    gate = json.loads((tmp_path / "artifacts/reports/KPI_GATE.json").read_text())
    assert f"KPI gate verdict: {gate['verdict']}" in p.stdout
    for rel in ("artifacts/reports/SOAK_RESULTS.md", "artifacts/reports/REPORT.html"):
        assert rel in p.stdout and (tmp_path / rel).exists()
    rows = [
        json.loads(x) for x in (tmp_path / "artifacts/soak/metrics.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 6
    six = {k: v for k, v in rows[0]["knobs"].items() if k in KNOB_NAMES}  # + the quoter's param.*
    assert six == pytest.approx({k: float(v) for k, v in CONSERVATIVE_START.items()})
    assert sum(r["market_hours"] for r in rows) == pytest.approx(3.0)
