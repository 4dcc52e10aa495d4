"""`mmbot backtest` and its console: notes, a progress bar, the one-screen summary tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from mmbot.commands.options import STRATEGY_OPTIONS
from mmbot.commands.progress import transient_bar

_MARKET_OPTION = typer.Option(
    None,
    "--market",
    help="contract of every file: binance-usdm | binance-coinm | binance-spot | bybit-linear | "
    "bybit-inverse | bybit-spot (default: detected from each capture)",
)
_PIECES_OPTION = typer.Option(
    False,
    "--pieces",
    help="also run each file once per piece of the quoter with that piece switched off, and "
    "report what each piece contributed (EDGE_REPORT pieces; one extra run per piece)",
)


@STRATEGY_OPTIONS
def backtest(
    data: list[Path] = typer.Option(
        ..., "--data", help="capture file; repeat for several, run one after another"
    ),
    out: Path = typer.Option(..., "--out", help="output directory for records and reports"),
    profile: str | None = typer.Option(
        None, "--profile", help="profile name or JSON path (default: $MM_PROFILE or S1)"
    ),
    overrides: Path | None = typer.Option(
        None,
        "--overrides",
        help="runtime overrides JSON file (else $MM_RUNTIME_OVERRIDES_JSON; a soak's "
        "artifacts/soak/runtime_overrides.json is applied only when named here)",
    ),
    latency_ms: float = typer.Option(
        10.0, "--latency-ms", help="order entry and response latency, ms"
    ),
    queue_model: str = typer.Option("power2", "--queue-model", help="risk_averse | power<N> | log"),
    strategy_options: dict[str, Any] | None = None,  # STRATEGY_OPTIONS
    seed: int = typer.Option(0, "--seed"),
    reports: bool = typer.Option(
        True, "--reports/--no-reports", help="EDGE_REPORT, KPI_GATE, Markdown and HTML reports"
    ),
    market: str | None = _MARKET_OPTION,
    contract_size: float | None = typer.Option(
        None, "--contract-size", help="base units per contract, or USD per contract when inverse"
    ),
    funding_rate: float | None = typer.Option(
        None,
        "--funding-rate",
        help="perpetual funding rate per 8 h interval (0.0001 = 1 bp), charged at 00/08/16 UTC",
    ),
    funding: Path | None = typer.Option(
        None, "--funding", help="CSV of time,rate: funding charged at those times"
    ),
    pieces: bool = _PIECES_OPTION,
) -> None:
    """Backtest the strategy on recorded data and write records, EDGE_REPORT, KPI_GATE and reports."""
    from rich.console import Console

    from mmbot.backtest import RunSettings

    run_backtest(
        Console(highlight=False),
        data=data,
        out=out,
        profile=profile,
        overrides=overrides,
        settings=RunSettings(latency_ms=latency_ms, queue_model=queue_model, seed=seed),
        strategy_options=strategy_options,
        reports=reports,
        market=market,
        contract_size=contract_size,
        funding_rate=funding_rate,
        funding_file=funding,
        pieces=pieces,
    )


def run_backtest(con: Any, **options: Any) -> Any:
    """`mmbot.backtest_files.backtest_files` with ``options``, shown on the rich console ``con``: notes
    as they come, a progress bar (on a terminal), then the summary tables, the KPI gate's failed
    checks, runs without a fill and where the time went. Returns its `BacktestOutcome`."""
    from mmbot.backtest_files import backtest_files
    from mmbot.gate import failed_check_lines

    def say(line: str) -> None:
        con.print(line, markup=False, highlight=False, soft_wrap=True)

    with _progress_bar(con) as on_progress:
        res = backtest_files(say=say, on_progress=on_progress, **options)
    for table in _summary_tables(res.summary, res.per_file, res.verdict):
        con.print(table)
    if res.gate is not None and res.verdict != "PASS":
        for line in failed_check_lines(res.gate):
            con.print(f"KPI_GATE={res.verdict}: {line}", markup=False, highlight=False)
    if res.pieces:
        con.print(_pieces_table(res.pieces))
    for line in res.notes:
        con.print(line, markup=False, highlight=False)
    con.print(
        f"{res.summary['events']:,} events; {res.phases_line}; records and reports in {res.out}",
        markup=False,
        highlight=False,
    )
    return res


def _pieces_table(block: dict) -> Any:
    """EDGE_REPORT ``pieces``: the run with every piece, then each piece switched off."""
    from rich.table import Table

    t = Table(title="what each piece contributed (re-run without it)", caption=block["method"])
    cols = ("piece", "fills without", "net bps without", "contribution PnL", "bps", "pre-rebate")
    for col in cols:
        t.add_column(col, justify="left" if col == "piece" else "right")

    def f(x: Any) -> str:
        return "n/a" if x is None or x != x else f"{x:.3f}"

    w = block["with_all"]
    t.add_row("(all pieces)", f"{w['fills']:,}", f(w["net_bps"]), "", "", "", style="bold")
    for r in block["rows"]:
        t.add_row(
            r["piece"],
            f"{r['fills_without']:,}",
            f(r["net_bps_without"]),
            f(r["contribution_pnl"]),
            f(r["contribution_bps"]),
            f(r["contribution_before_rebates_bps"]),
        )
    return t


@contextmanager
def _progress_bar(con: Any) -> Iterator[Any]:
    """A transient progress bar on ``con`` (hidden off a terminal), driven by `BacktestProgress`."""
    with transient_bar(con, disable=not con.is_terminal) as prog:
        task: list[Any] = []

        def update(p: Any) -> None:
            if not task:
                task.append(prog.add_task(p.description or "backtest", total=float(p.total_files)))
            prog.update(task[0], completed=p.done_files, description=p.description)

        yield update


def _summary_tables(summary: dict, per_file: list[tuple[str, dict]], verdict: str | None) -> list:
    """Results per file (and total) and guard blocks by reason: fits one 80-column screen."""
    from rich.table import Table

    t = Table(title="mmbot backtest", caption=f"KPI_GATE={verdict}" if verdict else None)
    coin = summary["settle"] not in ("", "USD", "USDT", "USDC")
    pnl_head = f"PnL {summary['settle']}".strip()
    for col in ("run", "events", "fills", "turnover USD", pnl_head, "net bps", "maker %"):
        t.add_column(col, justify="left" if col == "run" else "right", overflow="fold")

    def row(name: str, s: dict) -> list[str]:
        return [
            name if len(name) <= 22 else name[:21] + "…",
            f"{s['events']:,}",
            f"{s['fills']:,}",
            f"{s['turnover_usd']:,.0f}",
            f"{s['pnl']:,.6f}" if coin else f"{s['pnl']:,.4f}",
            f"{s['net_bps']:.3f}",
            f"{s['maker_share_pct']:.1f}",
        ]

    for name, s in per_file:
        t.add_row(*row(name, s))
    if len(per_file) > 1:
        t.add_row(*row("total", summary), style="bold")
    t.caption = (t.caption + " · " if t.caption else "") + (
        f"fee tier {summary['fee_tier']}: net {summary['net_bps']:.3f} bps, "
        f"{summary['net_bps_before_rebates']:.3f} before rebates"
    )
    if coin:
        t.caption += f" · PnL {summary['pnl_usd']:,.4f} USD at the final mid"
    b = Table(title="guard blocks (attempts blocked / all attempts)")
    b.add_column("reason")
    b.add_column("blocked", justify="right")
    b.add_column("ratio", justify="right")
    attempts = max(int(summary["intended"]), 1)
    for reason, count in summary["blocked"].items():
        b.add_row(reason, f"{count:,}", f"{count / attempts:.3f}")
    b.add_row("attempts", f"{summary['intended']:,}", "", style="dim")
    return [t, b]
