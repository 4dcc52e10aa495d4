"""Atomic placement: a kill -9 at any step of a commit leaves (after the next start's cleanup) the
old run or the new one, whole, never a mix; staging directories of dead processes are removed."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from mmbot import staging
from mmbot.soak.artifacts import Stage

MMBOT = str(Path(sys.executable).with_name("mmbot"))
KILLS = 20

# The child runs a command with a hook on every commit step: at step 0 it copies the staged new run
# (the plan is written by then) to SNAP, at step K it kills itself with SIGKILL.
_CHILD = r"""
import json, os, shutil, signal, sys
from pathlib import Path
import mmbot.staging as st

K, ROOT, SNAP = int(sys.argv[1]), Path(sys.argv[2]).resolve(), Path(sys.argv[3])
steps = [0]

def snapshot():
    plans = list(ROOT.parent.glob("**/.mmbot-*staging-*/" + st.COMMIT_PLAN))
    plan = json.loads(plans[0].read_text())
    for staged, final in plan["moves"]:
        dst = SNAP / Path(final).resolve().relative_to(ROOT)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(staged, dst)
    for staged, final in plan["dir_moves"]:
        shutil.copytree(staged, SNAP / Path(final).resolve().relative_to(ROOT))
    (SNAP / ".replaced").write_text(json.dumps(
        [str(Path(f).resolve().relative_to(ROOT)) for _, f in plan["dir_moves"]]))

def hook(k):
    steps[0] = k
    if k == 0:
        snapshot()
    if k == K:
        os.kill(os.getpid(), signal.SIGKILL)

st.STEP_HOOK = hook
mode = sys.argv[4]
if mode == "stage":
    from mmbot.soak.artifacts import Stage
    stage = Stage(ROOT, replace_dirs=[ROOT / "soak" / "iterations"])
    tag = sys.argv[5]
    for i in range(int(sys.argv[6])):
        stage.write_text(ROOT / "soak" / "iterations" / f"it{i}.json", tag + str(i))
    for name in ("reports/EDGE_REPORT.json", "reports/KPI_GATE.json", "soak/metrics.jsonl",
                 "soak/runtime_overrides.json", "reports/soak_metrics.json"):
        stage.write_text(ROOT / name, tag + name)
    stage.commit()
else:
    from mmbot.cli import app
    sys.argv = ["mmbot", *sys.argv[5:]]
    try:
        app()
    except SystemExit:
        pass
print("steps", steps[0])
"""


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".mmbot")
    }


def _expected_new(old: dict[str, bytes], snap: Path) -> dict[str, bytes]:
    import json

    replaced = json.loads((snap / ".replaced").read_text())
    new = {k: v for k, v in old.items() if not any(k.startswith(r + "/") for r in replaced)}
    new.update({k: v for k, v in _tree(snap).items() if k != ".replaced"})
    return new


def _child(
    d: Path, k: int, mode: str, *args: str, snap: str = "snap"
) -> subprocess.CompletedProcess:
    snap = d / snap
    env = dict(os.environ, MMBOT_STATE_DIR=str(d / "state"))
    env.pop("MM_RUNTIME_OVERRIDES_JSON", None)
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(k), str(d / "artifacts"), str(snap), mode, *args],
        cwd=d,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _next_start(d: Path, cli: bool) -> None:
    """What the next ``mmbot`` start does first (``staging.clean_stale``): via the CLI, or direct."""
    env = dict(os.environ, MMBOT_STATE_DIR=str(d / "state"))
    if cli:
        p = subprocess.run([MMBOT, "--help"], cwd=d, env=env, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    else:
        os.environ["MMBOT_STATE_DIR"] = env["MMBOT_STATE_DIR"]
        try:
            staging.clean_stale()
        finally:
            os.environ.pop("MMBOT_STATE_DIR")


def _kill_at_steps(d: Path, mode: str, old_args, new_args, kills: int | None) -> list[str]:
    """Runs the old run, then the new one killed at ``kills`` random commit steps (None: at every
    step once); after each kill and the next start, the tree must equal the old run or the new
    one. Returns the outcomes."""
    p = _child(d, -1, mode, *old_args)
    assert p.returncode == 0, p.stderr
    n_steps = int(p.stdout.split()[-1]) + 1
    old = _tree(d / "artifacts")
    rng = random.Random(21)
    outcomes = []
    ks = range(n_steps) if kills is None else sorted(rng.randrange(n_steps) for _ in range(kills))
    for i, k in enumerate(ks):
        p = _child(d, k, mode, *new_args, snap=f"snap{i}")
        assert p.returncode == -9, (k, p.stderr[-2000:])
        _next_start(d, cli=mode == "cli")
        got = _tree(d / "artifacts")
        new = _expected_new(old, d / f"snap{i}")
        assert got in (old, new), f"step {k}: a mix of runs"
        assert not list(d.glob("**/.mmbot-soak-staging-*")), f"step {k}: staging left"
        outcomes.append(f"step {k}/{n_steps}: {'new' if got == new else 'old'}")
        # back to the old run for the next kill
        _restore(d / "artifacts", old)
    return outcomes


def _restore(root: Path, tree: dict[str, bytes]) -> None:
    import shutil

    shutil.rmtree(root)
    for rel, data in tree.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def test_kill_9_at_every_commit_step_leaves_one_whole_run(tmp_path: Path) -> None:
    outcomes = _kill_at_steps(tmp_path, "stage", ["old", "6"], ["new", "3"], kills=None)
    # the plan is written before step 0: from then on the next start completes the new run
    assert outcomes and all(o.endswith("new") for o in outcomes), outcomes


@pytest.mark.slow
def test_kill_9_at_20_random_moments_of_a_soak_final_commit(tmp_path: Path) -> None:
    soak = ["soak", "--hours", "0.05", "--iterations", "2"]
    outcomes = _kill_at_steps(
        tmp_path, "cli", [*soak, "--seed", "1"], [*soak, "--seed", "2"], kills=KILLS
    )
    print("\n".join(outcomes))
    assert len(outcomes) == KILLS


def test_stage_abort_after_the_plan_finishes_the_commit(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "art"
    stage = Stage(root, replace_dirs=[root / "it"])
    stage.write_text(root / "it" / "a.json", "A")
    stage.write_text(root / "r.json", "R")

    def interrupt(k: int) -> None:
        if k == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(staging, "STEP_HOOK", interrupt)
    with pytest.raises(KeyboardInterrupt):
        stage.commit()
    monkeypatch.setattr(staging, "STEP_HOOK", None)
    stage.abort()
    assert (root / "it" / "a.json").read_text() == "A" and (root / "r.json").read_text() == "R"
    assert not stage.dir.exists()


def test_swap_dir_replaces_a_directory_whole(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    (target / "old.txt").write_text("old")
    new = staging.make_staging_dir(tmp_path, ".run.tmp-")
    (new / "new.txt").write_text("new")
    staging.swap_dir(new, target)
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_clean_stale_removes_dead_owners_only(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MMBOT_STATE_DIR", str(tmp_path / "state"))
    mine = staging.make_staging_dir(tmp_path, ".a-")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    gone = staging.make_staging_dir(tmp_path, ".b-")
    entry = staging._entry(gone)
    entry.write_text(entry.read_text().replace(str(os.getpid()), str(pid)))
    assert staging.clean_stale() == [gone.resolve()]
    assert mine.exists() and not gone.exists()
    staging.release(mine)
