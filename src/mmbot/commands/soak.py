"""`mmbot soak` and the soak's console: its marker lines, its progress bar, and the view of a
finished soak (stability figures, decision matrix)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from mmbot.commands.options import STRATEGY_OPTIONS
from mmbot.commands.progress import transient_bar


class SoakConsole:
    """What `mmbot.soak.loop.run_soak` shows, on a rich console: ``say`` prints a marker line as
    it is, ``progress`` drives a transient progress bar (`mmbot.soak.loop.SoakProgress`)."""

    def __init__(self, con: Any, bar: Any = None) -> None:
        self.con = con
        self.bar = bar
        self.task: Any = None

    def say(self, line: str) -> None:
        self.con.print(line, markup=False, highlight=False, soft_wrap=True)

    def progress(self, p: Any) -> None:
        if self.bar is None:
            return
        if self.task is None:
            self.task = self.bar.add_task("soak", total=p.total_ns)
        description = None
        if p.fills is not None:
            from mmbot.soak.market import NS_PER_HOUR

            net = "n/a" if p.net_bps_so_far is None else f"{p.net_bps_so_far:.2f}"
            description = (
                f"iter {p.iteration}/{p.iterations}  market {p.done_ns / NS_PER_HOUR:.2f} h  "
                f"fills {p.fills}  net_bps {net}"
            )
        self.bar.update(self.task, completed=p.done_ns, description=description)


@contextmanager
def soak_console(con: Any, progress: bool = True) -> Iterator[SoakConsole]:
    """A `SoakConsole` on ``con``, with its progress bar shown for the duration of the block."""
    if not progress:
        yield SoakConsole(con)
        return
    with transient_bar(con) as bar:
        yield SoakConsole(con, bar)


def print_outcome(con: Any, out: Any) -> None:
    """The fee tier with net before and after rebates, the frozen soak's stability lines and the
    decision-matrix lines, after the gate line."""
    from mmbot.soak import decision, stability

    lines = [fees_line(out.paths.edge_report)]
    lines += stability.text_lines(out.stability) if out.stability else []
    lines += decision.text_lines(out.decision) if out.decision else []
    for line in filter(None, lines):
        con.print(line, markup=False, highlight=False, soft_wrap=True)


def fees_line(edge_report: Path) -> str:
    """The soak's fee tier and its net with and without rebates ('' when the report is absent)."""
    from mmbot.inputs import read_json
    from mmbot.numfmt import finite

    if not Path(edge_report).is_file():
        return ""
    rep = read_json(f"EDGE_REPORT {edge_report}", edge_report)
    rt, t = rep.get("runtime", {}), rep.get("totals", {})
    return (
        f"| soak | FEES | tier {rt.get('fee_tier')} (maker {finite(rt.get('maker_fee_bps'), 2)} "
        f"bps, taker {finite(rt.get('taker_fee_bps'), 2)} bps) | "
        f"net_bps={finite(t.get('net_bps'))} | "
        f"net_bps_before_rebates={finite(t.get('net_bps_before_rebates'))} |"
    )


_FREEZE_OPTION = typer.Option(
    False,
    "--freeze",
    help=(
        "stability soak: the overrides stay fixed (no tuning); reports per-iteration net_bps "
        "and its dispersion, drawdown and hard-gate breaches"
    ),
)
_EXPORT_JSON_OPTION = typer.Option(
    Path("artifacts/reports/soak_metrics.json"),
    "--export-json",
    help="per-iteration metrics, tuner decisions and final overrides (JSON)",
)
_EXPORT_MD_OPTION = typer.Option(
    Path("artifacts/reports/SOAK_RESULTS.md"),
    "--export-md",
    help="Markdown report: EDGE_REPORT, KPI gate, iterations and tuner changes",
)
_GATE_SUMMARY_OPTION = typer.Option(
    Path("artifacts/reports/gates_summary.json"),
    "--gate-summary",
    help="KPI gate verdict of the whole soak and of each iteration (JSON)",
)
_MARKET_OPTION = typer.Option(
    "synthetic",
    "--market",
    help=(
        "'synthetic' (the embedded default market), 'synthetic:NAME' (a shipped calibration), "
        "a calibration JSON, or a capture file replayed in market-time windows"
    ),
)


@STRATEGY_OPTIONS
def soak(
    hours: float = typer.Option(3.0, "--hours", help="market hours to run"),
    iterations: int | None = typer.Option(
        None,
        "--iterations",
        help="iterations the hours are split into (default 6; with --freeze one per half hour)",
    ),
    auto_tune: bool = typer.Option(
        False,
        "--auto-tune",
        help="re-tune the runtime knobs (and the quoter's tunable parameters) between iterations",
    ),
    freeze: bool = _FREEZE_OPTION,
    export_json: Path = _EXPORT_JSON_OPTION,
    export_md: Path = _EXPORT_MD_OPTION,
    gate_summary: Path = _GATE_SUMMARY_OPTION,
    market: str = _MARKET_OPTION,
    profile: str | None = typer.Option(
        None, "--profile", help="profile name (default: $MM_PROFILE or S1)"
    ),
    seed: int = typer.Option(
        1, "--seed", help="market and simulation seed (same seed -> same artifacts)"
    ),
    artifacts: Path = typer.Option(Path("artifacts"), "--artifacts", help="artifacts root"),
    strategy_options: dict[str, Any] | None = None,  # STRATEGY_OPTIONS
) -> int:
    """Soak: run the strategy for HOURS of market time in ITERATIONS, auto-tune, report and gate."""
    from rich.console import Console

    from mmbot.soak.artifacts import SoakPaths
    from mmbot.soak.runner import SoakSettings, run_soak, validate_paths
    from mmbot.soak.stability import freeze_iterations

    if iterations is None:
        iterations = freeze_iterations(hours) if freeze and 0 < hours < math.inf else 6
    paths = SoakPaths(artifacts, export_json, export_md, gate_summary)
    # every output path usable before the soak starts (exit 2 naming the option otherwise)
    validate_paths(paths)
    settings = SoakSettings(
        hours=hours,
        iterations=iterations,
        auto_tune=auto_tune,
        paths=paths,
        market=market,
        profile=profile,
        seed=seed,
        freeze=freeze,
        strategy_options=strategy_options,
    )
    con = Console(highlight=False)
    with soak_console(con) as view:
        out = run_soak(settings, say=view.say, on_progress=view.progress)
    print_outcome(con, out)
    return out.exit_code
