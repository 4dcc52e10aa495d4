"""Command-line options shared by several commands: the quoter and the equal-limit flags, and
``OptionGroup``, which writes a group of options once and hands the command one value for them."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

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
FEE_TIER_OPTION = typer.Option(
    None,
    "--fee-tier",
    help="tier of the venue's shipped fee schedule (base, vip1, mm1, ..., or 'rebate'); "
    "default: the profile's, else base",
)


def strategy_options(
    strategy: str | None,
    param: list[str] | None,
    order_qty: float | None,
    max_position_qty: float | None,
    maker_fee_bps: float | None,
    taker_fee_bps: float | None,
    fee_tier: str | None = None,
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
        "fee_tier": fee_tier,
    }


F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class OptionGroup:
    """Options written once as a table and received as one value: options several commands take
    alike, or a command's options that make one model (``collect`` builds it, e.g. a `TrialRun`).
    Used as a decorator, it puts them into the command's signature in place of the command's
    parameter ``into`` (typer reads the signature, so they show in --help there, in this order),
    and the command receives ``collect(**values)`` in that parameter instead of the separate
    values."""

    into: str
    options: tuple[tuple[str, Any, Any], ...]  # (parameter name, annotation, typer.Option)
    collect: Callable[..., Any]

    def __call__(self, command: F) -> F:
        sig = inspect.signature(command, eval_str=True)
        params = list(sig.parameters.values())
        at = [p.name for p in params].index(self.into)
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        added = [inspect.Parameter(n, kind, default=o, annotation=a) for n, a, o in self.options]
        params[at : at + 1] = added
        names = [n for n, _, _ in self.options]

        @functools.wraps(command)
        def run(**values: Any) -> Any:
            group = self.collect(**{n: values.pop(n) for n in names})
            return command(**values, **{self.into: group})

        run.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params} | {
            "return": sig.return_annotation
        }
        return run  # type: ignore[return-value]


# --strategy, --param, the equal-limit flags and the fee tier of `backtest` and `soak`, received as
# the keyword arguments ``mmbot.config.with_strategy_options`` takes
STRATEGY_OPTIONS = OptionGroup(
    into="strategy_options",
    options=(
        ("strategy", str | None, STRATEGY_OPTION),
        ("param", list[str] | None, PARAM_OPTION),
        ("order_qty", float | None, ORDER_QTY_OPTION),
        ("max_position_qty", float | None, MAX_POSITION_OPTION),
        ("maker_fee_bps", float | None, MAKER_FEE_OPTION),
        ("taker_fee_bps", float | None, TAKER_FEE_OPTION),
        ("fee_tier", str | None, FEE_TIER_OPTION),
    ),
    collect=strategy_options,
)
