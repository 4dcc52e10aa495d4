"""The numeric parameter record the compiled strategy and guards read, and how it is built.

Owns ``PARAM_FIELDS`` (the record, one line per field: name, dtype, the ``RunConfig`` path its
value comes from, what it means), ``PARAMS_DTYPE`` generated from it, ``run_config`` (knobs +
profile + run settings + market -> the frozen, validated ``mmbot.config.run.RunConfig``),
``params_record`` (RunConfig -> record) and ``make_params`` (both). A new ``RunConfig`` number
reaches the compiled record with one ``PARAM_FIELDS`` line. Knobs travel as *data* in this
record, never as compile-time constants, so a soak run with new knobs reuses the cached machine code.
docs/config.md lists the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbot.fees import FeeChoice, choose_fees
from mmbot.instruments import LINEAR_DEFAULT, ContractSpec
from mmbot.knobs import KNOB_NAMES

if TYPE_CHECKING:
    from mmbot.config import Profile
    from mmbot.config.run import RunConfig

STRATEGY_GLFT = 0
STRATEGY_TOUCH = 1
STRATEGY_OTHER = 2  # any other quoter (mmbot.strategy.registry names them)
STRATEGY_CODES = {"glft": STRATEGY_GLFT, "touch": STRATEGY_TOUCH}


@dataclass(frozen=True)
class ParamField:
    """One field of the record: name and dtype, where `make_params` takes its value from, and what
    it means. ``source`` is ``SECTION.NAME`` (`SOURCES` says what each section is); the value
    written is ``source x scale`` (ms -> ns: 1e6), converted from quote currency to the settle coin
    when ``settle`` (an inverse contract's money limits), rounded to a whole number for ``i8``."""

    name: str
    dtype: str  # "f8" or "i8"
    source: str
    doc: str
    scale: float = 1.0
    settle: bool = False


# Where a field's value comes from: the sections of `mmbot.config.run.RunConfig`.
SOURCES: dict[str, str] = {
    "run": "resolved by make_params from its arguments and the profile (see its docstring)",
    "fees": "the fee rates: explicit, else the tier of the market's schedule (fee_choice)",
    "market": "the market's grid (make_params' tick_px, lot_qty)",
    "knobs": "the six runtime knobs (mmbot.knobs), after overrides and clamping",
    "effective": "profile base + deltas (Profile.effective)",
    "quoting": "the profile's quoting section",
    "risk": "the profile's risk section",
    "spec": "the contract (mmbot.instruments.ContractSpec)",
}

_F, _I = "f8", "i8"
_MS, _S = 1e6, 1e9  # ns per ms, per s

# The record, one line per field, in record order. A new parameter is one line here (plus its
# profile field and its line in docs/config.md); PARAMS_DTYPE and make_params follow from it.
PARAM_FIELDS: tuple[ParamField, ...] = (
    ParamField("strategy", _I, "run.strategy", "STRATEGY_* code of the quoter"),
    ParamField("tick_px", _F, "market.tick_px", "price step"),
    ParamField("lot_qty", _F, "market.lot_qty", "quantity step"),
    ParamField("order_qty", _F, "run.order_qty", "order size, a multiple of lot_qty"),
    # runtime knobs (DESIGN.md table), converted to ns where they are times
    ParamField("min_interval_ns", _I, "knobs.min_interval_ms", "least time between requotes", _MS),
    ParamField("replace_rate_per_min", _F, "knobs.replace_rate_per_min", "replace budget / min"),
    ParamField("base_spread_bps_delta", _F, "knobs.base_spread_bps_delta", "spread widening, bps"),
    ParamField("tail_age_ns", _I, "knobs.tail_age_ms", "refresh an order older than this", _MS),
    ParamField("impact_cap_ratio", _F, "knobs.impact_cap_ratio", "impact cap / half-spread"),
    ParamField("max_delta_ratio", _F, "knobs.max_delta_ratio", "max quote move / half-spread"),
    # profile-derived
    ParamField("concurrency_limit", _I, "effective.concurrency_limit", "live orders per side"),
    ParamField("slippage_penalty_coef", _F, "effective.slippage_penalty_coef", "x slippage bps"),
    ParamField("vip_tilt_cap", _F, "effective.vip_tilt_cap", "rebate tightening cap / half-spread"),
    ParamField("inventory_tilt_cap", _F, "effective.inventory_tilt_cap", "skew cap / half-spread"),
    # quoting model
    ParamField("gamma", _F, "quoting.gamma", "GLFT risk aversion"),
    ParamField("obi_coef", _F, "quoting.obi_coef", "imbalance signal / touch half-spread"),
    ParamField("near_band_bps", _F, "quoting.near_band_bps", "band of 'visible size near'"),
    ParamField("reprice_tol_ratio", _F, "quoting.reprice_tol_ratio", "reprice tol / half-spread"),
    ParamField("reprice_min_ticks", _F, "quoting.reprice_min_ticks", "reprice tolerance floor"),
    ParamField("vol_halflife_s", _F, "quoting.vol_halflife_s", "volatility EWMA half-life"),
    ParamField("intensity_halflife_s", _F, "quoting.intensity_halflife_s", "intensity half-life"),
    ParamField("refit_interval_ns", _I, "quoting.refit_interval_ms", "model refit period", _MS),
    ParamField("slippage_ewma_alpha", _F, "quoting.slippage_ewma_alpha", "slippage EWMA weight"),
    ParamField(
        "prior_vol_ticks_per_sqrt_s", _F, "quoting.prior_vol_ticks_per_sqrt_s", "volatility prior"
    ),
    ParamField("prior_a_per_s", _F, "quoting.prior_a_per_s", "fill intensity prior A"),
    ParamField("prior_k_per_tick", _F, "quoting.prior_k_per_tick", "fill intensity prior k"),
    ParamField("throttle_burst_s", _F, "quoting.throttle_burst_s", "token bucket, s of rate"),
    # risk
    ParamField("max_position_qty", _F, "run.max_position_qty", "max absolute position"),
    ParamField("max_notional", _F, "risk.max_notional", "max absolute position x mid, quote"),
    ParamField("max_loss", _F, "risk.max_loss", "kill switch below -max_loss PnL", settle=True),
    # fees and venue
    ParamField("maker_fee_rate", _F, "fees.maker_fee_rate", "fraction of notional; < 0 rebate"),
    ParamField("taker_fee_rate", _F, "fees.taker_fee_rate", "fraction of notional"),
    ParamField("rate_limit_per_s", _F, "run.rate_limit_per_s", "exchange orders/s; 0 = none"),
    # order manager
    ParamField("requote_mode", _I, "run.requote_mode", "REQUOTE_* of the quoter"),
    # instrument (mmbot.instruments): quantities are contracts
    ParamField("contract_size", _F, "spec.contract_size", "base (inverse: USD) per contract"),
    ParamField("inverse", _I, "spec.inverse", "1: a contract is worth -contract_size/px coin"),
    # spot inventory (guards.check_spot_inventory); spot = 0 disables it
    ParamField("spot", _I, "spec.spot", "1: spot inventory checks on"),
    ParamField(
        "spot_start_inventory_qty", _F, "risk.spot_start_inventory_qty", "spot base at start"
    ),
    ParamField("spot_quote_balance", _F, "risk.spot_quote_balance", "spot quote at start"),
    # drawdown stop (guards.check_drawdown), settle coin; max_drawdown = 0 disables it
    ParamField("max_drawdown", _F, "risk.max_drawdown", "drawdown stop; 0 = off", settle=True),
    ParamField("drawdown_cooldown_ns", _I, "risk.drawdown_cooldown_s", "pause after a stop", _S),
)


def params_dtype(fields: tuple[ParamField, ...] = PARAM_FIELDS) -> np.dtype:
    """The record's dtype: one field per table line, in table order."""
    return np.dtype([(f.name, f.dtype) for f in fields], align=True)


PARAMS_DTYPE = params_dtype()


def fee_choice(
    profile: Profile,
    spec: ContractSpec | None,
    fee_tier: str | None = None,
    maker_fee_rate: float | None = None,
    taker_fee_rate: float | None = None,
) -> FeeChoice:
    """The fees a run uses: explicit rates (arguments, else the profile's), else the named tier
    (``fee_tier``, else the profile's), else the base tier of the market's shipped schedule."""
    f = profile.fees
    market = (spec or LINEAR_DEFAULT).market
    return choose_fees(
        market,
        fee_tier if fee_tier is not None else f.tier,
        f.maker_fee_rate if maker_fee_rate is None else maker_fee_rate,
        f.taker_fee_rate if taker_fee_rate is None else taker_fee_rate,
    )


def round_to_lot(qty: float, lot_qty: float) -> float:
    """Round down to the lot, at least one lot."""
    n = max(1, int(np.floor(qty / lot_qty + 1e-9)))
    return float(n * lot_qty)


def make_params(knob_values: Mapping[str, float], profile: Profile, **run: Any) -> np.ndarray:
    """A 1-element ``PARAMS_DTYPE`` array from knobs + profile + market: ``params_record`` of
    ``run_config`` (same arguments)."""
    return params_record(run_config(knob_values, profile, **run))


def run_config(
    knob_values: Mapping[str, float],
    profile: Profile,
    *,
    tick_px: float,
    lot_qty: float,
    ref_px: float,
    strategy: str = "glft",
    order_qty: float | None = None,
    max_position_qty: float | None = None,
    maker_fee_rate: float | None = None,
    taker_fee_rate: float | None = None,
    rate_limit_per_s: float | None = None,
    spec: ContractSpec | None = None,
    fee_tier: str | None = None,
    max_loss: float | None = None,
    wake_interval_ms: float | None = None,
    venue: Mapping[str, Any] | None = None,
) -> RunConfig:
    """The run's resolved, validated configuration (``mmbot.config.run.RunConfig``).

    ``order_qty`` defaults to the profile's ``order_notional`` (quote currency) in contracts of
    ``spec`` at ``ref_px``, rounded down to the lot (at least one lot); ``max_position_qty`` to
    ``max_position_orders × order_qty``; fees, explicit rates, else the tier (``fee_choice``);
    ``rate_limit_per_s`` to the profile's ``venue.rate_limit_per_s``; ``max_loss`` (quote currency;
    the live session's ``--loss-limit``) over the profile's ``risk.max_loss``; ``wake_interval_ms``
    to the quoter's own; ``venue``: the simulated venue's own settings
    (``mmbot.sim.config.VenueSettings`` fields; missing ones take its defaults; None: the run builds
    no venue from this configuration, as a live session). A bad value is a UserError naming the
    field.
    """
    from mmbot.config.run import build_run_config

    spec = spec if spec is not None else LINEAR_DEFAULT
    quoter = _quoter(strategy)
    if order_qty is None:
        order_qty = round_to_lot(
            spec.qty_for_notional(profile.quoting.order_notional, ref_px), lot_qty
        )
    if max_position_qty is None:
        max_position_qty = profile.risk.max_position_orders * order_qty
    run = {
        "quoter": strategy,
        "strategy": STRATEGY_CODES.get(strategy, STRATEGY_OTHER),
        "requote_mode": _requote_mode(quoter),
        "order_qty": order_qty,
        "max_position_qty": max_position_qty,
        "rate_limit_per_s": (
            profile.venue.rate_limit_per_s if rate_limit_per_s is None else rate_limit_per_s
        ),
        "wake_interval_ms": _first(wake_interval_ms, quoter.wake_interval_ms),
    }
    risk = profile.risk.model_dump()
    if max_loss is not None:
        risk["max_loss"] = max_loss
    return build_run_config(
        {
            "run": run,
            "fees": fee_choice(profile, spec, fee_tier, maker_fee_rate, taker_fee_rate).to_meta(),
            "market": {"tick_px": tick_px, "lot_qty": lot_qty, "ref_px": ref_px},
            "knobs": {k: knob_values[k] for k in KNOB_NAMES if k in knob_values},
            "effective": profile.effective(),
            "quoting": profile.quoting.model_dump(),
            "risk": risk,
            "venue": None if venue is None else dict(venue),
            "spec": {
                "contract_size": spec.contract_size,
                "inverse": spec.inverse,
                "spot": spec.spot,
            },
        }
    )


def params_record(cfg: RunConfig, fields: tuple[ParamField, ...] = PARAM_FIELDS) -> np.ndarray:
    """The compiled record of ``cfg``: each field of the table (``PARAM_FIELDS``) from its source.
    Money limits of the profile (``max_loss``, ``max_drawdown``) are in quote currency; for an
    inverse contract they are converted to the settle coin at ``ref_px`` (``max_notional`` stays
    quote: the guard values positions in quote)."""
    money = 1.0 / cfg.market.ref_px if cfg.spec.inverse else 1.0
    p = np.zeros(1, dtype=PARAMS_DTYPE if fields is PARAM_FIELDS else params_dtype(fields))
    rec = p[0]
    for f in fields:
        v = float(cfg.value(f.source)) * f.scale
        if f.settle:
            v *= money
        rec[f.name] = int(round(v)) if f.dtype == _I else v
    return p


def _first(value: float | None, default: float) -> float:
    return default if value is None else value


def _quoter(strategy: str) -> Any:
    from mmbot.strategy.registry import resolve

    return resolve(strategy)


def _requote_mode(quoter: Any) -> int:
    """The quoter's REQUOTE_* code: the record carries it so every driver requotes alike."""
    from mmbot.strategy.contract import REQUOTE_MODES

    return REQUOTE_MODES[quoter.requote]
