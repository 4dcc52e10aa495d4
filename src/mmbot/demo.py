"""`make demo` / `mmbot demo`: the seed's 3 h mini-soak with auto-tune on the embedded default market.

Writes the seed's conservative start package (`knobs.CONSERVATIVE_START`) to
``artifacts/soak/runtime_overrides.json`` (section G, step 1), runs
``mmbot soak --hours 3 --iterations 6 --auto-tune`` with the seed's export paths (step 2), and
prints the report paths and the KPI verdict. A FAIL verdict is a result, not an error: the demo
exits 0 unless something broke.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mmbot.errors import UserError
from mmbot.knobs import CONSERVATIVE_START

ARTIFACTS = Path("artifacts")
EXPORT_JSON = ARTIFACTS / "reports" / "soak_metrics.json"
EXPORT_MD = ARTIFACTS / "reports" / "SOAK_RESULTS.md"
GATE_SUMMARY = ARTIFACTS / "reports" / "gates_summary.json"


def main(hours: float = 3.0, iterations: int = 6) -> int:
    """The demo (``--hours`` / ``--iterations`` only shorten it, e.g. for a smoke test)."""
    from rich.console import Console

    from mmbot.commands.soak import print_outcome
    from mmbot.soak.artifacts import json_bytes
    from mmbot.soak.runner import run_soak

    con = Console(highlight=False)
    overrides = ARTIFACTS / "soak" / "runtime_overrides.json"
    overrides.parent.mkdir(parents=True, exist_ok=True)
    overrides.write_bytes(json_bytes(CONSERVATIVE_START))
    con.print(f"[OK] Runtime overrides written to {overrides}", markup=False)
    # The demo's start package must be the one used, whatever the caller's environment says.
    os.environ.pop("MM_RUNTIME_OVERRIDES_JSON", None)
    try:
        out = run_soak(
            hours=hours,
            iterations=iterations,
            auto_tune=True,
            export_json=EXPORT_JSON,
            export_md=EXPORT_MD,
            gate_summary=GATE_SUMMARY,
            market="synthetic",
            profile=os.environ.get("MM_PROFILE") or None,
            seed=1,
            artifacts=ARTIFACTS,
            console=con,
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    sys.exit(main())
