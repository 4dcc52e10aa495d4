"""`mmbot backtest`."""

from __future__ import annotations

from pathlib import Path

import typer

from mmbot.commands.options import (
    MAKER_FEE_OPTION,
    MAX_POSITION_OPTION,
    ORDER_QTY_OPTION,
    PARAM_OPTION,
    STRATEGY_OPTION,
    TAKER_FEE_OPTION,
    strategy_options,
)


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
    strategy: str | None = STRATEGY_OPTION,
    param: list[str] | None = PARAM_OPTION,
    order_qty: float | None = ORDER_QTY_OPTION,
    max_position_qty: float | None = MAX_POSITION_OPTION,
    maker_fee_bps: float | None = MAKER_FEE_OPTION,
    taker_fee_bps: float | None = TAKER_FEE_OPTION,
    seed: int = typer.Option(0, "--seed"),
    reports: bool = typer.Option(
        True, "--reports/--no-reports", help="EDGE_REPORT, KPI_GATE, Markdown and HTML reports"
    ),
    market: str | None = typer.Option(
        None,
        "--market",
        help="contract of every file: binance-usdm | binance-coinm | binance-spot | bybit-linear | "
        "bybit-inverse | bybit-spot (default: detected from each capture)",
    ),
    contract_size: float | None = typer.Option(
        None, "--contract-size", help="base units per contract, or USD per contract when inverse"
    ),
    fee_tier: str | None = typer.Option(
        None,
        "--fee-tier",
        help="tier of the venue's shipped fee schedule (base, vip1, mm1, ..., or 'rebate'); "
        "default: the profile's, else base",
    ),
    funding_rate: float | None = typer.Option(
        None,
        "--funding-rate",
        help="perpetual funding rate per 8 h interval (0.0001 = 1 bp), charged at 00/08/16 UTC",
    ),
    funding: Path | None = typer.Option(
        None, "--funding", help="CSV of time,rate: funding charged at those times"
    ),
) -> None:
    """Backtest the strategy on recorded data and write records, EDGE_REPORT, KPI_GATE and reports."""
    from mmbot.backtest import backtest_command

    backtest_command(
        data=data,
        out=out,
        profile=profile,
        overrides=overrides,
        latency_ms=latency_ms,
        queue_model=queue_model,
        **strategy_options(
            strategy, param, order_qty, max_position_qty, maker_fee_bps, taker_fee_bps
        ),
        seed=seed,
        reports=reports,
        market=market,
        contract_size=contract_size,
        fee_tier=fee_tier,
        funding_rate=funding_rate,
        funding_file=funding,
    )
