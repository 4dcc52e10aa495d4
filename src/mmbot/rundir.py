"""A run's output directory (``mmbot backtest --out``): what belongs to a run (its manifest) and
how a finished staging directory replaces it in one step, keeping the user's own files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from mmbot import staging

RUN_MANIFEST = ".mmbot-run.json"
"""Names of the entries a backtest wrote into its output directory (what the next run replaces)."""
_KNOWN_OUTPUTS = frozenset(
    {"EDGE_REPORT.json", "KPI_GATE.json", "BACKTEST_RESULTS.md", "REPORT.html", "summary.json"}
    | {"audit.jsonl", RUN_MANIFEST}
)


def _earlier_run_entries(out: Path) -> set[str]:
    """Entries of ``out`` that belong to an earlier run (its manifest, else the known names and
    run directories); everything else is the user's and is kept."""
    try:
        return set(json.loads((out / RUN_MANIFEST).read_text())["entries"]) | {RUN_MANIFEST}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return {
        e.name
        for e in out.iterdir()
        if e.name in _KNOWN_OUTPUTS or (e.is_dir() and (e / "meta.json").exists())
    }


def place_run(tmp: Path, out: Path) -> None:
    """Put the finished staging directory in place of ``out`` in one step (``staging.swap_dir``):
    ``out`` holds the earlier run or this one, never a mix. Entries of ``out`` that are not an
    earlier run's (the user's own files) are carried over, hard-linked where possible."""
    new_entries = sorted(e.name for e in tmp.iterdir() if e.name != staging.OWNER_FILE)
    (tmp / RUN_MANIFEST).write_text(json.dumps({"entries": new_entries}, indent=1) + "\n")
    if out.exists():
        ours = _earlier_run_entries(out)
        for e in sorted(out.iterdir()):
            if e.name in ours or (tmp / e.name).exists():
                continue
            if e.is_dir() and not e.is_symlink():
                shutil.copytree(e, tmp / e.name, symlinks=True, copy_function=_link_or_copy)
            else:
                _link_or_copy(e, tmp / e.name)
    staging.swap_dir(tmp, out)


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)
