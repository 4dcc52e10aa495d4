"""A run's resolved configuration (``RunConfig``): frozen, validated, one value per setting.

Owns the ``RunConfig`` model and ``build_run_config``. The layers of docs/config.md map onto its
sections: the profile's ``quoting`` and ``risk`` sections as they are, its base + deltas as
``effective``, the six runtime knobs after overrides and clamping as ``knobs``, what the run
resolves from its own settings (``RunSettings`` / ``RunnerConfig`` / the command line: quoter,
order size, position limit, exchange rate limit, wake interval) as ``run``, the fee rates and where
they come from as ``fees``, the market's grid as ``market``, the contract as ``spec`` and the
simulated venue's own settings (latency, queue model, partial fills, order slots, ladder pad, the
starting account: ``mmbot.sim.config.VenueSettings``) as ``venue``. ``mmbot.strategy.params``
generates the compiled record from it: each ``PARAM_FIELDS`` line names the ``section.field`` it
reads here; ``RunConfig.venue_config()`` is the one place a run derives the ``sim.VenueConfig`` its
venue is built from (grid, fees, rate limit and contract from their sections, the rest from
``venue``).

Every section forbids unknown keys and non-finite numbers and states its limits; a bad value is a
``UserError`` of one line naming the field (``run configuration: run.order_qty: ...``). Knob values
are not re-limited here: the profile and overrides layer clamps them to ``mmbot.knobs``' limits
with a message naming the field (the seed's rule), and a test may drive a record outside them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from mmbot import knobs
from mmbot.config.profile import Quoting, Risk
from mmbot.errors import UserError
from mmbot.settings_model import validation_message
from mmbot.sim.config import VenueConfig, VenueSettings

_FROZEN = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Frozen(BaseModel):
    model_config = _FROZEN


class RunValues(_Frozen):
    """What the run resolved from its settings and the profile (``make_params``' docstring)."""

    quoter: str = Field(min_length=1, description="quoter spec (mmbot.strategy.registry)")
    strategy: int = Field(ge=0, description="STRATEGY_* code of the quoter")
    requote_mode: int = Field(ge=0, description="REQUOTE_* of the quoter")
    order_qty: float = Field(gt=0.0, description="order size, base units or contracts")
    max_position_qty: float = Field(gt=0.0, description="max absolute position")
    rate_limit_per_s: float = Field(ge=0.0, description="exchange orders/s; 0 = none")
    wake_interval_ms: float = Field(gt=0.0, description="the loop wakes at least this often")


class FeeRates(_Frozen):
    """The fee rates a run uses and where they come from (``mmbot.fees.FeeChoice``)."""

    market: str = Field(description="the market whose schedule was read")
    tier: str = Field(description="the tier, or 'custom' for explicit rates")
    maker_fee_rate: float = Field(gt=-0.1, lt=0.1, description="fraction of notional; < 0 rebate")
    taker_fee_rate: float = Field(gt=-0.1, lt=0.1, description="fraction of notional")
    source: str = Field(description="where the rates come from")
    date: str = Field(description="the schedule's date")


class MarketGrid(_Frozen):
    tick_px: float = Field(gt=0.0, description="price step")
    lot_qty: float = Field(gt=0.0, description="quantity step")
    ref_px: float = Field(gt=0.0, description="the price orders are sized at")


class Effective(_Frozen):
    """Profile base + deltas (``Profile.effective``; its docstring gives the rules)."""

    concurrency_limit: float = Field(ge=1.0)
    slippage_penalty_coef: float = Field(ge=0.0)
    vip_tilt_cap: float = Field(ge=0.0)
    inventory_tilt_cap: float = Field(ge=0.0)


class Contract(_Frozen):
    contract_size: float = Field(gt=0.0, description="base (inverse: USD) per contract")
    inverse: bool
    spot: bool


class FrozenQuoting(Quoting):
    model_config = _FROZEN


class FrozenRisk(Risk):
    model_config = _FROZEN


# the six runtime knobs, one float field each (names from mmbot.knobs, defined there once)
Knobs = create_model(  # type: ignore[call-overload]
    "Knobs",
    __base__=_Frozen,
    **{
        name: (float, Field(description=f"runtime knob, limits {lim}"))
        for name, lim in knobs.RUNTIME_LIMITS.items()
    },
)


class RunConfig(_Frozen):
    """A run's resolved configuration; ``mmbot.strategy.params.PARAM_FIELDS`` reads it."""

    run: RunValues
    fees: FeeRates
    market: MarketGrid
    knobs: Knobs  # type: ignore[valid-type]
    effective: Effective
    quoting: FrozenQuoting
    risk: FrozenRisk
    spec: Contract
    venue: VenueSettings | None = Field(
        None, description="the simulated venue's own settings; None: no venue (a live session)"
    )

    def venue_config(self) -> VenueConfig:
        """What ``mmbot.sim.make_venue`` needs: the grid, the fees, the exchange rate limit and the
        contract from their sections (the guards read the same values from the record), the
        venue's own settings from ``venue``."""
        if self.venue is None:
            raise UserError("run configuration: venue: this run has no simulated venue settings")
        return VenueConfig(
            tick_px=self.market.tick_px,
            lot_qty=self.market.lot_qty,
            maker_fee_rate=self.fees.maker_fee_rate,
            taker_fee_rate=self.fees.taker_fee_rate,
            rate_limit_per_s=int(self.run.rate_limit_per_s),  # the venue counts whole orders
            contract_size=self.spec.contract_size,
            inverse=self.spec.inverse,
            **self.venue.model_dump(),
        )

    def value(self, source: str) -> Any:
        """The value a ``section.field`` path names (``"quoting.gamma"``)."""
        section, _, name = source.partition(".")
        return getattr(getattr(self, section), name)


def build_run_config(sections: Mapping[str, Mapping[str, Any]]) -> RunConfig:
    """A validated ``RunConfig`` from plain values by section; UserError of one line when a value
    is missing, unknown, non-finite or outside its limits."""
    try:
        return RunConfig.model_validate(sections)
    except ValidationError as exc:
        raise UserError(validation_message(exc, "run configuration")) from None
