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
    export_json: Path = typer.Option(
        Path("artifacts/reports/soak_metrics.json"),
        "--export-json",
        help="per-iteration metrics, tuner decisions and final overrides (JSON)",
    ),
    export_md: Path = typer.Option(
        Path("artifacts/reports/SOAK_RESULTS.md"),
        "--export-md",
        help="Markdown report: EDGE_REPORT, KPI gate, iterations and tuner changes",
    ),
    gate_summary: Path = typer.Option(
        Path("artifacts/reports/gates_summary.json"),
        "--gate-summary",
        help="KPI gate verdict of the whole soak and of each iteration (JSON)",
    ),
    market: str = typer.Option(
        "synthetic",
        "--market",
        help=(
            "'synthetic' (the embedded default market), 'synthetic:NAME' (a shipped calibration), "
            "a calibration JSON, or a capture file replayed in market-time windows"
        ),
    ),
    profile: str | None = typer.Option(
        None, "--profile", help="profile name (default: $MM_PROFILE or S1)"
    ),
    seed: int = typer.Option(
        1, "--seed", help="market and simulation seed (same seed -> same artifacts)"
    ),
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
