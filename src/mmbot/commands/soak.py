"""`mmbot soak`."""

from __future__ import annotations

from pathlib import Path

import typer


def soak(
    hours: float = typer.Option(3.0, "--hours", help="market hours to run"),
    iterations: int = typer.Option(6, "--iterations", help="iterations the hours are split into"),
    auto_tune: bool = typer.Option(
        False, "--auto-tune", help="re-tune the runtime knobs between iterations"
    ),
    export_json: Path = typer.Option(Path("artifacts/reports/soak_metrics.json"), "--export-json"),
    export_md: Path = typer.Option(Path("artifacts/reports/SOAK_RESULTS.md"), "--export-md"),
    gate_summary: Path = typer.Option(
        Path("artifacts/reports/gates_summary.json"), "--gate-summary"
    ),
    market: str = typer.Option(
        "synthetic",
        "--market",
        help="'synthetic' (embedded calibrated market), a calibration JSON, or a capture path",
    ),
    profile: str | None = typer.Option(
        None, "--profile", help="profile name (default: $MM_PROFILE or S1)"
    ),
    seed: int = typer.Option(1, "--seed"),
    artifacts: Path = typer.Option(Path("artifacts"), "--artifacts", help="artifacts root"),
) -> int:
    """Soak: run the strategy for HOURS of market time in ITERATIONS, auto-tune, report and gate."""
    from mmbot.soak.runner import soak_command

    return soak_command(
        hours=hours,
        iterations=iterations,
        auto_tune=auto_tune,
        export_json=export_json,
        export_md=export_md,
        gate_summary=gate_summary,
        market=market,
        profile=profile,
        seed=seed,
        artifacts=artifacts,
    )
