"""The numeric parameter record the compiled strategy and guards read, and how it is built.

Owns ``PARAMS_DTYPE`` (one structured record: runtime knobs, profile-derived values, quoting model
parameters, risk limits, fees, market tick/lot) and ``make_params``. Knobs travel as *data* in this
record, never as compile-time constants, so a soak run with new knobs reuses the cached machine code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from mmbot.fees import FeeChoice, choose_fees
from mmbot.instruments import LINEAR_DEFAULT, ContractSpec

if TYPE_CHECKING:
    from mmbot.config import Profile

STRATEGY_GLFT = 0
STRATEGY_TOUCH = 1
STRATEGY_OTHER = 2  # any other quoter (mmbot.strategy.registry names them)
STRATEGY_CODES = {"glft": STRATEGY_GLFT, "touch": STRATEGY_TOUCH}

PARAMS_DTYPE = np.dtype(
    [
        ("strategy", "i8"),  # STRATEGY_*
        ("tick_px", "f8"),
        ("lot_qty", "f8"),
        ("order_qty", "f8"),  # base units, a multiple of lot_qty
        # runtime knobs (DESIGN.md table), converted to ns where they are times
        ("min_interval_ns", "i8"),
        ("replace_rate_per_min", "f8"),
        ("base_spread_bps_delta", "f8"),
        ("tail_age_ns", "i8"),
        ("impact_cap_ratio", "f8"),
        ("max_delta_ratio", "f8"),
        # profile-derived
        ("concurrency_limit", "i8"),
        ("slippage_penalty_coef", "f8"),
        ("vip_tilt_cap", "f8"),
        ("inventory_tilt_cap", "f8"),
        # quoting model
        ("gamma", "f8"),
        ("obi_coef", "f8"),
        ("near_band_bps", "f8"),
        ("reprice_tol_ratio", "f8"),
        ("reprice_min_ticks", "f8"),
        ("vol_halflife_s", "f8"),
        ("intensity_halflife_s", "f8"),
        ("refit_interval_ns", "i8"),
        ("slippage_ewma_alpha", "f8"),
        ("prior_vol_ticks_per_sqrt_s", "f8"),
        ("prior_a_per_s", "f8"),
        ("prior_k_per_tick", "f8"),
        ("throttle_burst_s", "f8"),
        # risk
        ("max_position_qty", "f8"),
        ("max_notional", "f8"),
        ("max_loss", "f8"),
        # fees and venue
        ("maker_fee_rate", "f8"),
        ("taker_fee_rate", "f8"),
        ("rate_limit_per_s", "f8"),  # exchange orders/s the throttle guard respects; 0 = none
        # order manager
        ("requote_mode", "i8"),  # REQUOTE_* of the quoter (contract.Quoter.requote)
        # instrument (mmbot.instruments): quantities are contracts
        ("contract_size", "f8"),  # base units per contract, or USD per contract when inverse
        ("inverse", "i8"),  # 1: value of a contract = -contract_size/px coin
        # spot inventory (guards.check_spot_inventory); spot = 0 disables it
        ("spot", "i8"),
        ("spot_start_inventory_qty", "f8"),  # base held at the start: position >= -this
        ("spot_quote_balance", "f8"),  # quote held at the start: a buy must be paid from it
        # drawdown stop (guards.check_drawdown), settle coin; max_drawdown = 0 disables it
        ("max_drawdown", "f8"),
        ("drawdown_cooldown_ns", "i8"),
    ],
    align=True,
)


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


def make_params(
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
) -> np.ndarray:
    """A 1-element ``PARAMS_DTYPE`` array from knobs + profile + market.

    ``order_qty`` defaults to the profile's ``order_notional`` (quote currency) in contracts of
    ``spec`` at ``ref_px``, rounded down to the lot (at least one lot); ``max_position_qty`` to
    ``max_position_orders × order_qty``. Money limits of the profile (``max_loss``,
    ``max_drawdown``) are in quote currency; for an inverse contract they are converted to the
    settle coin at ``ref_px`` (``max_notional`` stays quote: the guard values positions in quote).
    """
    q, r = profile.quoting, profile.risk
    eff = profile.effective()
    spec = spec if spec is not None else LINEAR_DEFAULT
    if order_qty is None:
        order_qty = round_to_lot(spec.qty_for_notional(q.order_notional, ref_px), lot_qty)
    # quote -> settle coin for the money limits the guards compare with equity
    money = 1.0 / ref_px if spec.inverse else 1.0
    if max_position_qty is None:
        max_position_qty = r.max_position_orders * order_qty
    p = np.zeros(1, dtype=PARAMS_DTYPE)
    rec = p[0]
    rec["strategy"] = STRATEGY_CODES.get(strategy, STRATEGY_OTHER)
    rec["tick_px"] = tick_px
    rec["lot_qty"] = lot_qty
    rec["order_qty"] = order_qty
    rec["min_interval_ns"] = int(round(float(knob_values["min_interval_ms"]) * 1e6))
    rec["replace_rate_per_min"] = float(knob_values["replace_rate_per_min"])
    rec["base_spread_bps_delta"] = float(knob_values["base_spread_bps_delta"])
    rec["tail_age_ns"] = int(round(float(knob_values["tail_age_ms"]) * 1e6))
    rec["impact_cap_ratio"] = float(knob_values["impact_cap_ratio"])
    rec["max_delta_ratio"] = float(knob_values["max_delta_ratio"])
    rec["concurrency_limit"] = int(eff["concurrency_limit"])
    rec["slippage_penalty_coef"] = eff["slippage_penalty_coef"]
    rec["vip_tilt_cap"] = eff["vip_tilt_cap"]
    rec["inventory_tilt_cap"] = eff["inventory_tilt_cap"]
    rec["gamma"] = q.gamma
    rec["obi_coef"] = q.obi_coef
    rec["near_band_bps"] = q.near_band_bps
    rec["reprice_tol_ratio"] = q.reprice_tol_ratio
    rec["reprice_min_ticks"] = q.reprice_min_ticks
    rec["vol_halflife_s"] = q.vol_halflife_s
    rec["intensity_halflife_s"] = q.intensity_halflife_s
    rec["refit_interval_ns"] = int(q.refit_interval_ms * 1e6)
    rec["slippage_ewma_alpha"] = q.slippage_ewma_alpha
    rec["prior_vol_ticks_per_sqrt_s"] = q.prior_vol_ticks_per_sqrt_s
    rec["prior_a_per_s"] = q.prior_a_per_s
    rec["prior_k_per_tick"] = q.prior_k_per_tick
    rec["throttle_burst_s"] = q.throttle_burst_s
    rec["max_position_qty"] = max_position_qty
    rec["max_notional"] = r.max_notional
    rec["max_loss"] = r.max_loss * money
    fee = fee_choice(profile, spec, fee_tier, maker_fee_rate, taker_fee_rate)
    rec["maker_fee_rate"] = fee.maker_fee_rate
    rec["taker_fee_rate"] = fee.taker_fee_rate
    rec["rate_limit_per_s"] = (
        profile.venue.rate_limit_per_s if rate_limit_per_s is None else rate_limit_per_s
    )
    rec["requote_mode"] = _requote_mode(strategy)
    rec["contract_size"] = spec.contract_size
    rec["inverse"] = 1 if spec.inverse else 0
    rec["spot"] = 1 if spec.spot else 0
    rec["spot_start_inventory_qty"] = r.spot_start_inventory_qty
    rec["spot_quote_balance"] = r.spot_quote_balance
    rec["max_drawdown"] = r.max_drawdown * money
    rec["drawdown_cooldown_ns"] = int(round(r.drawdown_cooldown_s * 1e9))
    return p


def _requote_mode(strategy: str) -> int:
    """The quoter's REQUOTE_* code: the record carries it so every driver requotes alike."""
    from mmbot.strategy.contract import REQUOTE_MODES
    from mmbot.strategy.registry import resolve

    return REQUOTE_MODES[resolve(strategy).requote]
