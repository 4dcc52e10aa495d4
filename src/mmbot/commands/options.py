"""Command-line options shared by several commands: the quoter and the equal-limit flags."""

from __future__ import annotations

from typing import Any

import typer

from mmbot.strategy.registry import BUILTIN_QUOTERS

# the built-in quoters' names come from the registry, so a new one shows in every --help
STRATEGY_HELP = f"quoter: {' | '.join(BUILTIN_QUOTERS)}, FILE.py:NAME or pkg.module:NAME"
STRATEGY_OPTION = typer.Option(None, "--strategy", help=f"{STRATEGY_HELP} (default: the profile's)")
PARAM_OPTION = typer.Option(
    None, "--param", help="a quoter parameter NAME=VALUE (repeatable; unknown names are an error)"
)
ORDER_QTY_OPTION = typer.Option(
    None, "--order-qty", help="order size, base units (contracts on contract-sized markets)"
)
MAX_POSITION_OPTION = typer.Option(
    None, "--max-position-qty", help="max |position|, same unit as --order-qty"
)
MAKER_FEE_OPTION = typer.Option(None, "--maker-fee-bps", help="maker fee, bps (negative = rebate)")
TAKER_FEE_OPTION = typer.Option(None, "--taker-fee-bps", help="taker fee, bps")


def strategy_options(
    strategy: str | None,
    param: list[str] | None,
    order_qty: float | None,
    max_position_qty: float | None,
    maker_fee_bps: float | None,
    taker_fee_bps: float | None,
) -> dict[str, Any]:
    """The keyword arguments ``mmbot.config.with_strategy_options`` takes."""
    from mmbot.strategy.registry import parse_param_args

    return {
        "strategy": strategy,
        "params": parse_param_args(param),
        "order_qty": order_qty,
        "max_position_qty": max_position_qty,
        "maker_fee_bps": maker_fee_bps,
        "taker_fee_bps": taker_fee_bps,
    }
