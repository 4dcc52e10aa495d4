"""Soak artifacts: names, deterministic serialisation and all-or-nothing placement.

Owns where every soak artifact lives (DESIGN.md "Soak and auto-tune") and `Stage`, which collects
them in a private temporary directory and moves them into place only when the soak finished, so a
failed or interrupted soak never leaves half-written artifacts behind.

Wall-clock values are confined to the keys in `WALL_CLOCK_KEYS`; everything else is a function of
the inputs and the seed, so two runs with the same seed give byte-identical files once those keys
are dropped (`strip_wall_clock`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import orjson

from mmbot import staging
from mmbot.audit.edge_report import jsonable

# Keys that hold wall-clock time (the only non-deterministic values in soak artifacts).
WALL_CLOCK_KEYS: Final[frozenset[str]] = frozenset({"utc", "utc_time", "wall_s", "wall_s_total"})


def json_bytes(obj: Any) -> bytes:
    """Deterministic JSON: sorted keys, 2-space indent, non-finite -> null, trailing newline."""
    return orjson.dumps(jsonable(obj), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def jsonl_line(obj: Any) -> bytes:
    return orjson.dumps(jsonable(obj), option=orjson.OPT_SORT_KEYS) + b"\n"


def strip_wall_clock(obj: Any) -> Any:
    """``obj`` without the wall-clock keys (recursively); for determinism checks."""
    if isinstance(obj, dict):
        return {k: strip_wall_clock(v) for k, v in obj.items() if k not in WALL_CLOCK_KEYS}
    if isinstance(obj, list):
        return [strip_wall_clock(v) for v in obj]
    return obj


class SoakPaths:
    """Final locations of every soak artifact under the artifacts root (+ the export paths)."""

    def __init__(self, root: Path, export_json: Path, export_md: Path, gate_summary: Path):
        self.root = root
        self.soak = root / "soak"
        self.iterations = self.soak / "iterations"
        self.reports = root / "reports"
        self.runtime_overrides = self.soak / "runtime_overrides.json"
        self.metrics_jsonl = self.soak / "metrics.jsonl"
        self.summary_txt = self.soak / "summary.txt"
        self.audit_jsonl = self.soak / "audit.jsonl"
        self.records = self.soak / "records"  # one records_io run directory per chunk
        self.edge_report = self.reports / "EDGE_REPORT.json"
        self.kpi_gate = self.reports / "KPI_GATE.json"
        self.export_json = export_json
        self.export_md = export_md
        self.gate_summary = gate_summary

    @classmethod
    def under(cls, root: Path) -> SoakPaths:
        """The paths of a soak whose exports stand in ``root``/reports, where `mmbot soak` puts
        them by default (``--artifacts artifacts``: artifacts/reports/soak_metrics.json, ...)."""
        reports = root / "reports"
        return cls(
            root,
            reports / "soak_metrics.json",
            reports / "SOAK_RESULTS.md",
            reports / "gates_summary.json",
        )

    def iteration_file(self, kind: str, iteration: int) -> Path:
        return self.iterations / f"{kind}_iter{iteration}.json"

    def required(self, iterations: int) -> list[Path]:
        """Every file a finished soak must have written (the HTML report aside)."""
        out = [
            self.runtime_overrides,
            self.metrics_jsonl,
            self.summary_txt,
            self.audit_jsonl,
            self.edge_report,
            self.kpi_gate,
            self.export_json,
            self.export_md,
            self.gate_summary,
        ]
        for i in range(1, iterations + 1):
            for kind in ("AUDIT_SNAPSHOT", "BLOCKS_BREAKDOWN", "NEG_EDGE_DRIVERS"):
                out.append(self.iteration_file(kind, i))
        return out


def _existing_ancestor(p: Path) -> Path:
    p = p.resolve()
    while not p.exists():
        p = p.parent
    return p


class Stage:
    """Collects files in a temporary directory; `commit` moves them to their final paths.

    Final paths are mapped into the staging directory by their position relative to the common
    anchor (the artifacts root, or "abs/..." for paths outside it). `commit` replaces
    ``replace_dirs`` wholesale (so stale per-iteration files of an earlier, longer soak go away).
    The commit follows a written plan (``mmbot.staging.commit``): interrupted, even by kill -9, it
    is finished rather than left half done, so the artifacts are the old soak's or the new one's.
    """

    def __init__(self, root: Path, replace_dirs: Iterable[Path] = ()):
        self.root = root.resolve()
        self.dir = staging.make_staging_dir(
            _existing_ancestor(self.root), ".mmbot-soak-staging-"
        ).resolve()
        self.files: dict[Path, Path] = {}  # final -> staged
        self.replace_dirs = [Path(d).resolve() for d in replace_dirs]
        self.dirs: dict[Path, Path] = {}  # final dir -> staged dir (files written by others)

    def _staged_path(self, final: Path) -> Path:
        final = Path(final).resolve()
        try:
            rel = Path("root") / final.relative_to(self.root)
        except ValueError:
            rel = Path("abs") / final.relative_to(final.anchor)
        return self.dir / rel

    def path(self, final: Path) -> Path:
        """The staging path for ``final`` (parents created)."""
        staged = self._staged_path(final)
        staged.parent.mkdir(parents=True, exist_ok=True)
        self.files[Path(final).resolve()] = staged
        return staged

    def dir_for(self, final_dir: Path) -> Path:
        """A staging directory whose files (written by someone else) land in ``final_dir``."""
        staged = self.path(Path(final_dir) / ".dir")
        staged = staged.parent
        self.dirs[Path(final_dir).resolve()] = staged
        return staged

    def write_bytes(self, final: Path, data: bytes) -> Path:
        p = self.path(final)
        p.write_bytes(data)
        return p

    def write_json(self, final: Path, obj: Any) -> Path:
        return self.write_bytes(final, json_bytes(obj))

    def write_text(self, final: Path, text: str) -> Path:
        return self.write_bytes(final, text.encode("utf-8"))

    def _under_replaced(self, final: Path) -> bool:
        return any(final == d or d in final.parents for d in self.replace_dirs)

    def commit(self) -> list[Path]:
        """Move every staged file into place; returns the final paths (sorted)."""
        files = dict(self.files)
        for final_dir, staged_dir in self.dirs.items():
            for f in staged_dir.rglob("*"):
                if f.is_file() and f not in files.values():
                    files[final_dir / f.relative_to(staged_dir)] = f
        dir_moves = []
        for d in self.replace_dirs:
            staged_d = self._staged_path(d)
            staged_d.mkdir(parents=True, exist_ok=True)  # empty: the old directory still goes
            dir_moves.append((staged_d, d))
        moves = sorted(
            (staged, final)
            for final, staged in files.items()
            if staged.exists() and not self._under_replaced(final)
        )
        done = [final for final, staged in files.items() if staged.exists()]
        staging.commit(self.dir, moves, dir_moves)
        self.abort()
        return sorted(done)

    def abort(self) -> None:
        """Drop the staging directory; a commit already planned is finished first."""
        if (self.dir / staging.COMMIT_PLAN).exists():
            staging.finish_commit(self.dir)
        staging.release(self.dir)
