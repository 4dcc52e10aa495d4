"""`mmbot gate`."""

from __future__ import annotations

from pathlib import Path

import typer


def gate(
    report: Path = typer.Option(..., "--report", help="EDGE_REPORT.json"),
    out: Path = typer.Option(..., "--out", help="KPI_GATE.json to write"),
    thresholds: Path | None = typer.Option(
        None,
        "--thresholds",
        help="gate thresholds JSON (default: the shipped src/mmbot/assets/config/gates.json)",
    ),
) -> int:
    """Apply the KPI gate to an EDGE_REPORT: exit 0 PASS/WARN, 1 FAIL, 2 unreadable input."""
    from mmbot.gate import gate_command

    return gate_command(report, out, thresholds)
