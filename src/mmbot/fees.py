"""Venue fee schedules shipped as data (``assets/fees/<market>.json``) and the choice of a tier.

Owns ``FeeChoice`` and ``choose_fees``. Each schedule names its tiers (``base`` = the venue's
regular / VIP 0 rates, VIP tiers, market-maker program tiers ``mm1``...), each with the published
maker and taker rates (fractions of notional; negative maker = rebate), the page it came from and
its date. The default is always the ``base`` tier: a rebate is used only when the profile names a
tier (``fees.tier``; ``"rebate"`` is the schedule's ``rebate_tier``). A profile may instead give
explicit ``maker_fee_rate``/``taker_fee_rate`` (tier ``custom``). Markets of unknown venue (a
synthetic market, an ``.npz``) use the Binance USD-M schedule, the venue the embedded market is
calibrated from, and say so in ``source``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mmbot.errors import UserError

FEES_DIR = Path(__file__).resolve().parent / "assets" / "fees"
BASE_TIER = "base"
REBATE_ALIAS = "rebate"
CUSTOM_TIER = "custom"
DEFAULT_FEE_MARKET = "binance-usdm"  # the embedded synthetic market is calibrated from it


@dataclass(frozen=True)
class FeeChoice:
    """The fee rates a run uses and where they come from."""

    market: str
    tier: str
    maker_fee_rate: float
    taker_fee_rate: float
    source: str
    date: str

    def to_meta(self) -> dict:
        return asdict(self)


def _file_for(market: str) -> Path:
    return FEES_DIR / f"{market.replace('-', '_')}.json"


@lru_cache(maxsize=16)
def load_schedule(market: str) -> dict[str, Any]:
    """The shipped schedule of ``market`` (e.g. ``binance-coinm``); UserError when none ships."""
    path = _file_for(market)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        known = sorted(p.stem.replace("_", "-") for p in FEES_DIR.glob("*.json"))
        raise UserError(
            f"fee schedule for market {market!r} not found (shipped: {', '.join(known)})"
        ) from None
    tiers = data.get("tiers")
    if not isinstance(tiers, dict) or BASE_TIER not in tiers:
        raise UserError(f"{path}: a fee schedule needs a 'tiers' object with a '{BASE_TIER}' tier")
    return data


def tier_names(market: str) -> list[str]:
    return sorted(load_schedule(market)["tiers"])


def choose_fees(
    market: str,
    tier: str | None = None,
    maker_fee_rate: float | None = None,
    taker_fee_rate: float | None = None,
) -> FeeChoice:
    """Rates for ``market``: explicit rates (both or one over the tier's), else the named tier,
    else ``base``. ``market`` "unknown" uses DEFAULT_FEE_MARKET's schedule."""
    fee_market = market if _file_for(market).exists() else DEFAULT_FEE_MARKET
    sched = load_schedule(fee_market)
    name = tier or BASE_TIER
    if name == REBATE_ALIAS:
        name = str(sched.get("rebate_tier") or BASE_TIER)
    if name not in sched["tiers"]:
        raise UserError(
            f"fee tier {name!r} is not in the {fee_market} schedule "
            f"(tiers: {', '.join(sorted(sched['tiers']))}, or '{REBATE_ALIAS}')"
        )
    t = sched["tiers"][name]
    source = str(t.get("source", ""))
    if fee_market != market:
        source = f"{fee_market} schedule (market {market!r} has none): {source}"
    maker = float(t["maker_fee_rate"]) if maker_fee_rate is None else float(maker_fee_rate)
    taker = float(t["taker_fee_rate"]) if taker_fee_rate is None else float(taker_fee_rate)
    if maker_fee_rate is not None or taker_fee_rate is not None:
        name = CUSTOM_TIER if tier is None else f"{name}+custom"
        source = "explicit rates" + (f" over {fee_market} {tier}" if tier else "")
    return FeeChoice(
        market=fee_market,
        tier=name,
        maker_fee_rate=maker,
        taker_fee_rate=taker,
        source=source,
        date=str(t.get("date", "")),
    )
