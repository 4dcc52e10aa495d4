"""All-or-nothing soak artifacts: staging, commit, abort, and a soak that fails half-way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmbot.soak import loop, runner
from mmbot.soak.artifacts import SoakPaths, Stage, strip_wall_clock
from mmbot.soak.start import SoakSettings


def test_stage_commit_moves_files_and_replaces_stale_iteration_files(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    old_iter = root / "soak" / "iterations" / "AUDIT_SNAPSHOT_iter9.json"
    old_iter.parent.mkdir(parents=True)
    old_iter.write_text("{}")
    outside = tmp_path / "elsewhere" / "x.json"
    st = Stage(root, replace_dirs=[root / "soak" / "iterations"])
    st.write_json(
        root / "soak" / "iterations" / "AUDIT_SNAPSHOT_iter1.json", {"b": 1, "a": float("nan")}
    )
    st.write_text(outside, "hello")
    # nothing is visible before commit
    assert not (root / "soak" / "iterations" / "AUDIT_SNAPSHOT_iter1.json").exists()
    assert not outside.exists()
    st.commit()
    new = root / "soak" / "iterations" / "AUDIT_SNAPSHOT_iter1.json"
    assert new.read_text() == '{\n  "a": null,\n  "b": 1\n}\n'  # sorted keys, NaN -> null
    assert outside.read_text() == "hello"
    assert not old_iter.exists()  # the earlier, longer soak's file is gone
    assert not st.dir.exists()


def test_stage_abort_leaves_nothing(tmp_path: Path) -> None:
    st = Stage(tmp_path / "artifacts")
    st.write_text(tmp_path / "artifacts" / "soak" / "summary.txt", "x")
    st.abort()
    assert list(tmp_path.rglob("*")) == []


def test_strip_wall_clock_is_recursive() -> None:
    obj = {"runtime": {"utc": "2024", "seed": 1}, "rows": [{"wall_s": 1.0, "net_bps": 2.0}]}
    assert strip_wall_clock(obj) == {"runtime": {"seed": 1}, "rows": [{"net_bps": 2.0}]}


def test_a_soak_failing_half_way_leaves_earlier_artifacts_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MM_RUNTIME_OVERRIDES_JSON", raising=False)
    monkeypatch.delenv("MM_PROFILE", raising=False)
    prev = tmp_path / "artifacts" / "reports" / "KPI_GATE.json"
    prev.parent.mkdir(parents=True)
    prev.write_text('{"verdict": "PASS"}')
    real = runner.run_iteration
    calls = {"n": 0}

    def failing(*args, **kwargs):  # the second iteration breaks (e.g. a venue error)
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("venue exploded")
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "run_iteration", failing)

    with pytest.raises(RuntimeError, match="venue exploded"):
        runner.run_soak(
            SoakSettings(
                hours=0.02,
                iterations=2,
                auto_tune=True,
                paths=SoakPaths.under(Path("artifacts")),
            ),
        )
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["artifacts/reports/KPI_GATE.json"]
    assert json.loads(prev.read_text()) == {"verdict": "PASS"}
