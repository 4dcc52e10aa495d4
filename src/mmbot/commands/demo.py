"""`mmbot demo` (what `make demo` runs, reachable without make, e.g. from PowerShell): the demo
soak (`mmbot.demo`) on the console, then the report paths and the KPI verdict. A FAIL verdict is a
result, not an error: the demo exits 0 unless something broke."""

from __future__ import annotations

import typer


def demo(
    hours: float = typer.Option(3.0, "--hours", help="market hours (the seed's 3 h by default)"),
    iterations: int = typer.Option(6, "--iterations", help="iterations the hours are split into"),
) -> int:
    """The seed's mini-soak: write the conservative start overrides, soak with auto-tune, report."""
    from rich.console import Console

    from mmbot.commands.soak import print_outcome, soak_console
    from mmbot.demo import run_demo_soak, write_start_package

    con = Console(highlight=False)
    overrides = write_start_package()
    con.print(f"[OK] Runtime overrides written to {overrides}", markup=False)
    with soak_console(con) as view:
        out = run_demo_soak(hours, iterations, say=view.say, on_progress=view.progress)
    print_outcome(con, out)
    con.print("")
    con.print("Reports:", markup=False)
    for p in (
        out.paths.edge_report,
        out.paths.kpi_gate,
        out.paths.export_md,
        out.paths.export_json,
        out.paths.gate_summary,
        out.html,
        out.paths.runtime_overrides,
        out.paths.summary_txt,
        out.paths.metrics_jsonl,
    ):
        if p is not None:
            con.print(f"  {p}", markup=False)
    colour = {"PASS": "green", "WARN": "yellow", "FAIL": "red"}.get(out.verdict, "white")
    con.print(f"KPI gate verdict: [bold {colour}]{out.verdict}[/]")
    if out.verdict == "FAIL":
        con.print(
            "(FAIL is the gate's verdict on what the strategy earned on this market, "
            "not a crash; see KPI_GATE.json for the failing metrics)",
            markup=False,
        )
    return 0
