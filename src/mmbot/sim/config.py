"""Venue configuration (`VenueConfig`) and its validation; owns nothing compiled."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from mmbot.errors import UserError

# queue model codes used inside compiled code
QM_RISK_AVERSE = 0
QM_POWER = 1  # f(x) = x**n, prob = f(back) / (f(back) + f(front))  (hftbacktest PowerProbQueueFunc)
QM_LOG = 2  # f(x) = ln(1 + x), same ratio                          (hftbacktest LogProbQueueFunc)


@dataclass
class VenueConfig:
    """Everything the simulated venue needs besides the events.

    Fee rates are fractions of notional paid (``-0.00005`` = 0.5 bps maker rebate). Latencies in ns:
    ``entry_latency_ns`` (strategy -> exchange) and ``response_latency_ns`` (exchange -> strategy);
    when ``latency`` is given (three equal-length arrays ``(ts_ns, entry_ns, response_ns)``, ts
    increasing) the latencies are interpolated linearly in time instead (entry at the send time,
    response at the exchange time). ``queue_model``: ``"risk_averse"``, ``"power<N>"`` (e.g.
    ``"power2"``, ``"power1.5"``) or ``"log"``. ``rate_limit_per_s`` = 0 disables the exchange-side
    orders/s limit (new orders and modifies count; cancels do not). ``max_orders`` = order slots.
    ``ladder_pad_ratio``: the dense price ladder spans the prices of the first events plus this
    fraction of the price on each side (at least 2000 ticks); levels beyond it are counted as out of
    band, not simulated. A replay knows its prices; a live feed does not, so it wants a wider pad.
    ``start_position_qty`` / ``start_cash``: the account the venue starts from (both the exchange's
    and the strategy's view), e.g. the position and cash a soak chunk carries from the previous
    one; ``start_cash`` holds what the position cost (``-position x contract value`` at entry).
    """

    tick_px: float
    lot_qty: float
    maker_fee_rate: float = 0.0
    taker_fee_rate: float = 0.0
    entry_latency_ns: int = 0
    response_latency_ns: int = 0
    latency: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    queue_model: str = "risk_averse"
    partial_fills: bool = False
    rate_limit_per_s: int = 0
    max_orders: int = 64
    ladder_pad_ratio: float = 0.02
    contract_size: float = 1.0
    inverse: bool = False
    start_position_qty: float = 0.0
    start_cash: float = 0.0
    extra: dict = field(default_factory=dict)


def parse_queue_model(name: str) -> tuple[int, float]:
    """``"risk_averse"`` -> (QM_RISK_AVERSE, 0); ``"power2"`` -> (QM_POWER, 2.0); ``"log"`` -> (QM_LOG, 0)."""
    key = str(name).strip().lower()
    if key in ("risk_averse", "riskaverse", "risk_adverse"):
        return QM_RISK_AVERSE, 0.0
    if key == "log":
        return QM_LOG, 0.0
    m = re.fullmatch(r"power\s*([0-9]+(?:\.[0-9]+)?)", key)
    if m:
        n = float(m.group(1))
        if n <= 0:
            raise UserError(f"queue_model {name!r}: the power exponent must be > 0")
        return QM_POWER, n
    raise UserError(
        f"queue_model {name!r}: expected 'risk_averse', 'power<N>' (e.g. 'power2') or 'log'"
    )


def price_decimals(tick_px: float) -> int:
    """Decimal places of the tick (0.1 -> 1, 0.01 -> 2, 5 -> 0): prices are rounded to it so that
    ``tick * tick_px`` prints as the exchange's own decimal price."""
    exp = Decimal(repr(float(tick_px))).normalize().as_tuple().exponent
    return max(0, -int(exp)) + 0


def validate_config(cfg: VenueConfig) -> None:
    """Raise UserError naming the field for any unusable setting."""
    for name in ("tick_px", "lot_qty"):
        val = getattr(cfg, name)
        if not (isinstance(val, (int, float)) and math.isfinite(val) and val > 0):
            raise UserError(f"VenueConfig.{name} must be a positive number (got {val!r})")
    for name in ("maker_fee_rate", "taker_fee_rate"):
        val = getattr(cfg, name)
        if not (isinstance(val, (int, float)) and math.isfinite(val) and abs(val) < 0.1):
            raise UserError(
                f"VenueConfig.{name} must be a finite fraction of notional (got {val!r})"
            )
    for name in ("entry_latency_ns", "response_latency_ns"):
        val = getattr(cfg, name)
        if int(val) != val or val < 0:
            raise UserError(
                f"VenueConfig.{name} must be a non-negative integer of ns (got {val!r})"
            )
    if int(cfg.rate_limit_per_s) != cfg.rate_limit_per_s or cfg.rate_limit_per_s < 0:
        raise UserError(
            f"VenueConfig.rate_limit_per_s must be an integer >= 0 (got {cfg.rate_limit_per_s!r})"
        )
    if int(cfg.max_orders) != cfg.max_orders or not (1 <= cfg.max_orders <= 100_000):
        raise UserError(
            f"VenueConfig.max_orders must be an integer in 1..100000 (got {cfg.max_orders!r})"
        )
    r = cfg.ladder_pad_ratio
    if not (isinstance(r, (int, float)) and math.isfinite(r) and 0.0 < r <= 1.0):
        raise UserError(f"VenueConfig.ladder_pad_ratio must be in (0, 1] (got {r!r})")
    c = cfg.contract_size
    if not (isinstance(c, (int, float)) and math.isfinite(c) and c > 0):
        raise UserError(f"VenueConfig.contract_size must be a positive number (got {c!r})")
    for name in ("start_position_qty", "start_cash"):
        val = getattr(cfg, name)
        if not (isinstance(val, (int, float)) and math.isfinite(val)):
            raise UserError(f"VenueConfig.{name} must be a finite number (got {val!r})")
    parse_queue_model(cfg.queue_model)
    if cfg.latency is not None:
        try:
            ts, ent, rsp = (np.asarray(a) for a in cfg.latency)
        except (TypeError, ValueError) as exc:
            raise UserError(
                "VenueConfig.latency must be three arrays (ts_ns, entry_ns, response_ns)"
            ) from exc
        if not (len(ts) == len(ent) == len(rsp)) or len(ts) == 0:
            raise UserError(
                "VenueConfig.latency: the three arrays must be non-empty and of equal length"
            )
        if np.any(np.diff(ts.astype(np.int64)) < 0):
            raise UserError("VenueConfig.latency: ts_ns must be non-decreasing")
        if np.any(ent < 0) or np.any(rsp < 0):
            raise UserError("VenueConfig.latency: latencies must be >= 0")
