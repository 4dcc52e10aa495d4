"""The venue's settings (``VenueSettings``, ``VenueConfig``) and their validation; owns nothing
compiled.

``VenueSettings`` are the venue's own settings (latency, queue model, partial fills, order slots,
ladder pad, the starting account): the ``venue`` section of a run's ``mmbot.config.run.RunConfig``.
``VenueConfig`` adds what the venue shares with the rest of a run (the grid, the fees, the exchange
rate limit, the contract) and the time-varying latency; ``RunConfig.venue_config()`` builds it from
the run's sections, the one place a run derives what ``make_venue`` needs. Both are frozen pydantic
models (``mmbot.settings_model.SettingsModel``): a bad value is a ``UserError`` of one line naming
the model and the field (``VenueConfig.tick_px: ...``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, Field, field_validator

from mmbot.errors import UserError
from mmbot.settings_model import SettingsModel

# queue model codes used inside compiled code
QM_RISK_AVERSE = 0
QM_POWER = 1  # f(x) = x**n, prob = f(back) / (f(back) + f(front))  (hftbacktest PowerProbQueueFunc)
QM_LOG = 2  # f(x) = ln(1 + x), same ratio                          (hftbacktest LogProbQueueFunc)


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


def _queue_model_name(name: str) -> str:
    try:
        parse_queue_model(name)
    except UserError as exc:
        raise ValueError(str(exc)) from None
    return name


# numpy scalars (np.int64, np.float32, np.bool_) are plain numbers here, as they were for the
# hand-written checks this replaces
def _number(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


_Num = Annotated[float, Field(allow_inf_nan=False)]
QueueModel = Annotated[str, AfterValidator(_queue_model_name)]


class VenueSettings(SettingsModel):
    """The venue's own settings (a run's ``RunConfig.venue`` section).

    Latencies in ns: ``entry_latency_ns`` (strategy -> exchange) and ``response_latency_ns``
    (exchange -> strategy). ``queue_model``: ``"risk_averse"``, ``"power<N>"`` (e.g. ``"power2"``,
    ``"power1.5"``) or ``"log"``. ``max_orders`` = order slots. ``ladder_pad_ratio``: the dense price
    ladder spans the prices of the first events plus this fraction of the price on each side (at
    least 2000 ticks); levels beyond it are counted as out of band, not simulated. A replay knows
    its prices; a live feed does not, so it wants a wider pad. ``start_position_qty`` /
    ``start_cash``: the account the venue starts from (both the exchange's and the strategy's
    view), e.g. the position and cash a soak chunk carries from the previous one; ``start_cash``
    holds what the position cost (``-position x contract value`` at entry). A section of a
    validated model (``RunConfig``), it reports bad values through that model (``run
    configuration: venue.max_orders: ...``); built directly, a bad value is one line naming this
    model (``VenueSettings.max_orders: ...``, ``mmbot.settings_model.SettingsModel``).
    """

    entry_latency_ns: int = Field(0, ge=0, description="strategy -> exchange, ns")
    response_latency_ns: int = Field(0, ge=0, description="exchange -> strategy, ns")
    queue_model: QueueModel = Field("risk_averse", description="risk_averse | power<N> | log")
    partial_fills: bool = Field(False, description="a trade may fill part of an order")
    max_orders: int = Field(64, ge=1, le=100_000, description="order slots")
    ladder_pad_ratio: float = Field(
        0.02, gt=0.0, le=1.0, description="price ladder pad beyond the first prices, x price"
    )
    start_position_qty: _Num = Field(0.0, description="position the account starts with")
    start_cash: _Num = Field(0.0, description="cash the account starts with, settle coin")


class VenueConfig(VenueSettings):
    """Everything the simulated venue needs besides the events: ``VenueSettings`` plus the grid,
    the fees, the exchange rate limit, the contract and the time-varying latency.

    Fee rates are fractions of notional paid (``-0.00005`` = 0.5 bps maker rebate). When
    ``latency`` is given (three equal-length arrays ``(ts_ns, entry_ns, response_ns)``, ts
    increasing) the latencies are interpolated linearly in time instead of the constant ones (entry
    at the send time, response at the exchange time). ``rate_limit_per_s`` = 0 disables the
    exchange-side orders/s limit (new orders and modifies count; cancels do not).
    """

    tick_px: float = Field(gt=0.0, description="price step")
    lot_qty: float = Field(gt=0.0, description="quantity step")
    maker_fee_rate: float = Field(0.0, gt=-0.1, lt=0.1, description="fraction of notional")
    taker_fee_rate: float = Field(0.0, gt=-0.1, lt=0.1, description="fraction of notional")
    rate_limit_per_s: int = Field(0, ge=0, description="exchange orders/s; 0 = none")
    contract_size: float = Field(1.0, gt=0.0, description="base (inverse: USD) per contract")
    inverse: bool = Field(False, description="a contract is worth -contract_size/px coin")
    latency: Any = Field(None, description="(ts_ns, entry_ns, response_ns) arrays or None")

    def __init__(self, **data: Any) -> None:
        super().__init__(**{k: _number(v) for k, v in data.items()})

    @field_validator("latency")
    @classmethod
    def _latency_arrays(cls, value: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        if value is None:
            return None
        try:
            ts, ent, rsp = (np.asarray(a) for a in value)
        except (TypeError, ValueError):
            raise ValueError("must be three arrays (ts_ns, entry_ns, response_ns)") from None
        if not (len(ts) == len(ent) == len(rsp)) or len(ts) == 0:
            raise ValueError("the three arrays must be non-empty and of equal length")
        if np.any(np.diff(ts.astype(np.int64)) < 0):
            raise ValueError("ts_ns must be non-decreasing")
        if np.any(ent < 0) or np.any(rsp < 0):
            raise ValueError("latencies must be >= 0")
        return ts, ent, rsp


def validate_config(cfg: VenueConfig) -> None:
    """Raise UserError unless ``cfg`` is a valid ``VenueConfig`` (its constructor validates; this
    catches another object, or one built around the constructor)."""
    if not isinstance(cfg, VenueConfig):
        raise UserError(
            f"venue config: expected a mmbot.sim.VenueConfig (got {type(cfg).__name__})"
        )
    VenueConfig(**dict(cfg))
