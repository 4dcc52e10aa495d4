"""Staging directories and atomic placement of a run's outputs.

A run writes everything into a staging directory beside its destination and only then swaps it
in, so a destination holds one complete run (the old one or the new one, never a mix):

- ``swap_dir`` replaces a whole directory in one step (Linux ``renameat2(RENAME_EXCHANGE)``;
  elsewhere two renames, rolled back or forward by ``clean_stale``);
- ``commit`` places files spread over several directories (the soak's) from a written-down plan
  (``COMMIT_PLAN`` in the staging directory): once the plan exists the commit is completed, by this
  process or, after a kill -9, by the next ``mmbot`` start (``clean_stale``), so the outcome is
  always the whole new run;
- every staging directory is registered (``state_dir()/staging``) with its owner's pid; the next
  start removes those whose owner is gone (kill -9, power loss), finishing any planned commit.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from mmbot import env

COMMIT_PLAN = ".mmbot-commit-plan.json"
OWNER_FILE = ".mmbot-staging-owner"
_RENAME_EXCHANGE = 2

# called with the step number before each step of a commit (tests kill the process here)
STEP_HOOK: Callable[[int], None] | None = None


def state_dir() -> Path:
    d = env.read("MMBOT_STATE_DIR")
    return Path(d).expanduser() if d else Path.home() / ".cache" / "mmbot" / "state"


def _registry() -> Path:
    return state_dir() / "staging"


def _entry(d: Path) -> Path:
    return _registry() / f"{os.getpid()}-{abs(hash(str(d))):x}.json"


def make_staging_dir(parent: Path, prefix: str) -> Path:
    """A new private directory in ``parent`` (same file system as the destination), registered so
    that it is removed at the next start if this process dies without cleaning it."""
    parent = Path(parent)
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    (d / OWNER_FILE).write_text(str(os.getpid()))
    with contextlib.suppress(OSError):  # no writable state dir: only the next-start cleanup is lost
        _registry().mkdir(parents=True, exist_ok=True)
        _entry(d).write_text(json.dumps({"pid": os.getpid(), "dir": str(d.resolve())}))
    return d


def release(d: Path) -> None:
    """Remove a staging directory and its registration."""
    shutil.rmtree(d, ignore_errors=True)
    with contextlib.suppress(OSError):
        _entry(Path(d)).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale() -> list[Path]:
    """Finish the planned commits and remove the staging directories of dead processes."""
    done: list[Path] = []
    reg = _registry()
    if not reg.is_dir():
        return done
    for entry in sorted(reg.glob("*.json")):
        try:
            info = json.loads(entry.read_text())
            pid, d = int(info["pid"]), Path(info["dir"])
        except (OSError, ValueError, KeyError, TypeError):
            entry.unlink(missing_ok=True)
            continue
        if _alive(pid):
            continue
        # the registered path is a mkdtemp name only we create: whatever is there is ours
        if (d / COMMIT_PLAN).exists():
            _apply_plan(d)
        _finish_swap(d)
        shutil.rmtree(d, ignore_errors=True)
        done.append(d)
        entry.unlink(missing_ok=True)
    return done


# ---------------------------------------------------------------------------------------------
# one directory


def _renameat2_exchange(a: Path, b: Path) -> bool:
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    at_fdcwd = -100
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def swap_dir(new: Path, target: Path) -> None:
    """Make ``new`` (a finished staging directory) be ``target`` in one step; the previous content
    of ``target`` is deleted. ``new`` and ``target`` must be on the same file system."""
    new, target = Path(new), Path(target)
    (new / OWNER_FILE).unlink(missing_ok=True)
    if not target.exists():
        os.rename(new, target)
        return
    if _renameat2_exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # holds the old run now
        return
    # no atomic exchange here: old -> aside, new -> target; clean_stale restores or finishes
    aside = new.with_name(new.name + ".old")
    marker = new.with_name(new.name + ".swap-target")
    marker.write_text(str(target.resolve()))
    os.rename(target, aside)
    os.rename(new, target)
    shutil.rmtree(aside, ignore_errors=True)
    marker.unlink()


def _finish_swap(d: Path) -> None:
    marker = d.with_name(d.name + ".swap-target")
    aside = d.with_name(d.name + ".old")
    if marker.exists():  # killed between the two renames: the old run goes back
        target = Path(marker.read_text())
        if not target.exists() and aside.exists():
            os.rename(aside, target)
        marker.unlink()
    shutil.rmtree(aside, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# files over several directories


def commit(stage_dir: Path, moves: list[tuple[Path, Path]], dir_moves: list[tuple[Path, Path]]):
    """Place staged files and directories: ``moves`` (staged file, final path) and ``dir_moves``
    (staged directory, final directory replaced wholesale). The plan is written first; from then
    on the commit completes (here, or at the next start after a kill)."""
    plan = {
        "moves": [[str(a), str(b)] for a, b in moves],
        "dir_moves": [[str(a), str(b)] for a, b in dir_moves],
    }
    tmp = stage_dir / (COMMIT_PLAN + ".tmp")
    tmp.write_text(json.dumps(plan))
    os.replace(tmp, stage_dir / COMMIT_PLAN)
    _apply_plan(stage_dir)


def finish_commit(stage_dir: Path) -> None:
    """Finish a planned commit (after an interruption inside ``commit``)."""
    _apply_plan(stage_dir)


def _step(k: int) -> None:
    if STEP_HOOK is not None:
        STEP_HOOK(k)


def _apply_plan(stage_dir: Path) -> None:
    """Carry out (or finish) the plan; every step can be repeated after an interruption."""
    plan = json.loads((stage_dir / COMMIT_PLAN).read_text())
    trash = stage_dir / "trash"
    k = 0
    for i, (staged_s, final_s) in enumerate(plan["dir_moves"]):
        staged, final = Path(staged_s), Path(final_s)
        old = trash / str(i)
        if staged.exists():
            _step(k)
            k += 1
            if final.exists() and not old.exists():
                trash.mkdir(exist_ok=True)
                os.rename(final, old)
            _step(k)
            k += 1
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staged, final)
    for staged_s, final_s in plan["moves"]:
        staged, final = Path(staged_s), Path(final_s)
        if staged.exists():
            _step(k)
            k += 1
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(staged, final)
            except OSError:
                shutil.move(str(staged), str(final))  # across file systems
    _step(k)
    (stage_dir / COMMIT_PLAN).unlink()
