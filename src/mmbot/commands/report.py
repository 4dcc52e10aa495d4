"""`mmbot report`."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    run: Path = typer.Option(..., "--run", help="run directory (records written by backtest/soak)"),
) -> int:
    """Write Markdown and self-contained HTML reports for a run directory."""
    from mmbot.report import report_command

    return report_command(run)
