"""Profiles and runtime overrides: loading, validation (pydantic), clamping to the knob limits.

Owns: the profile schema (``Profile``), ``load_profile``, ``load_overrides`` (with its precedence
``--overrides FILE`` > ``$MM_RUNTIME_OVERRIDES_JSON`` > ``artifacts/soak/runtime_overrides.json``)
and ``effective_knobs``. Knob names and limits come from ``mmbot.knobs`` (defined there once).

Bad input (missing/unreadable file, malformed JSON, unknown key, wrong type, non-finite number)
raises ``UserError`` naming the key and the source. A value outside its limits is clamped and a
message naming the field is returned, never applied silently.

Profile-derived values. The seed's profile carries *deltas* (``concurrency_limit_delta`` and
friends) on top of a base the seed never showed; we keep its deltas verbatim and state the base
explicitly in ``base``. Effective values (see ``Profile.effective``):

- ``slippage_penalty_coef = base + delta``: half-spread widened by this × the EWMA of recent
  per-fill slippage *cost* in bps;
- ``inventory_tilt_cap = base + delta``: |inventory skew| capped at this × the base half-spread;
- ``vip_tilt_cap = base + delta``: tightening from a maker rebate capped at this × the base half-spread;
- ``concurrency_limit = max(1, floor(base × (1 + delta)))``: the delta is a relative change of an
  integer count.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mmbot import env as envvars
from mmbot import knobs
from mmbot.errors import UserError
from mmbot.inputs import read_json
from mmbot.settings_model import validation_message
from mmbot.strategy.registry import DEFAULT_QUOTER

# shipped with the package (package data), so an installed mmbot finds them from any directory
CONFIG_DIR = Path(__file__).resolve().parents[1] / "assets" / "config"
PROFILES_DIR = CONFIG_DIR / "profiles"
DEFAULT_OVERRIDES_FILE = Path("artifacts/soak/runtime_overrides.json")
OVERRIDES_ENV = "MM_RUNTIME_OVERRIDES_JSON"
PROFILE_ENV = "MM_PROFILE"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=False)


class ProfileDeltas(_Strict):
    """The seed's original profile deltas, kept verbatim."""

    concurrency_limit_delta: float = -0.1
    slippage_penalty_coef_delta: float = 0.10
    vip_tilt_cap_delta: float = 0.15
    inventory_tilt_cap_delta: float = -0.10


class ProfileBase(_Strict):
    """Base values the deltas apply to (see the module docstring for the rule)."""

    concurrency_limit: int = Field(4, ge=1)
    slippage_penalty_coef: float = Field(0.40, ge=0.0)
    vip_tilt_cap: float = Field(0.0, ge=0.0)
    inventory_tilt_cap: float = Field(1.0, ge=0.0)


class Quoting(_Strict):
    """Model and order-manager parameters (not tuned by the soak)."""

    order_notional: float = Field(20000.0, gt=0.0, description="order size in quote currency")
    gamma: float = Field(0.1, gt=0.0, description="GLFT risk aversion, per tick per order size")
    obi_coef: float = Field(
        0.3, ge=0.0, description="imbalance signal, fraction of touch half-spread"
    )
    near_band_bps: float = Field(
        1.0, gt=0.0, description="band from the touch for 'visible size near'"
    )
    reprice_tol_ratio: float = Field(0.25, ge=0.0, description="reprice tolerance / half-spread")
    reprice_min_ticks: float = Field(
        1.0,
        ge=0.0,
        description="reprice tolerance floor in ticks (a move of this much waits for tail_age)",
    )
    vol_halflife_s: float = Field(30.0, gt=0.0)
    intensity_halflife_s: float = Field(60.0, gt=0.0)
    refit_interval_ms: float = Field(500.0, gt=0.0)
    slippage_ewma_alpha: float = Field(0.1, gt=0.0, le=1.0)
    prior_vol_ticks_per_sqrt_s: float = Field(1.0, gt=0.0)
    prior_a_per_s: float = Field(1.0, gt=0.0)
    prior_k_per_tick: float = Field(1.0, gt=0.0)
    throttle_burst_s: float = Field(
        5.0, gt=0.0, description="token bucket capacity, seconds of rate"
    )


class Risk(_Strict):
    max_position_orders: float = Field(5.0, gt=0.0, description="max |position| in order sizes")
    max_notional: float = Field(
        150000.0, gt=0.0, description="max |position| x mid, quote currency"
    )
    max_loss: float = Field(
        3000.0, gt=0.0, description="kill switch: stop quoting below -max_loss PnL"
    )
    max_drawdown: float = Field(
        0.0,
        ge=0.0,
        description="pause new quotes when equity falls this far below its peak (quote); 0 = off",
    )
    drawdown_cooldown_s: float = Field(
        60.0, ge=0.0, description="pause length after a drawdown stop; then resume at a new peak"
    )
    spot_start_inventory_qty: float = Field(
        0.0, ge=0.0, description="spot: base held at the start; the position never goes below it"
    )
    spot_quote_balance: float = Field(
        100000.0, ge=0.0, description="spot: quote held at the start; buys are paid from it"
    )


class Fees(_Strict):
    """Fee tier of the venue's shipped schedule (``mmbot.fees``): ``base`` unless named; a rebate
    only from a named market-maker tier (``"rebate"`` = the schedule's). Explicit rates override."""

    tier: str | None = Field(
        None, description="tier name in assets/fees/<market>.json; None = base"
    )
    maker_fee_rate: float | None = Field(None, ge=-0.01, le=0.01, description="negative = rebate")
    taker_fee_rate: float | None = Field(None, ge=-0.01, le=0.01)


class FundingModel(_Strict):
    """The synthetic market's funding series (``mmbot.data.synthetic_funding``): the venues'
    formula on a premium modelled from the market's own mid path."""

    interest_rate: float = Field(
        0.0001, ge=-0.01, le=0.01, description="interest component per interval (0.01 % / 8 h)"
    )
    premium_coef: float = Field(
        0.05, ge=0.0, le=10.0, description="premium = coef x (interval mean mid / start mid - 1)"
    )
    cap_rate: float = Field(0.00375, gt=0.0, le=0.05, description="|rate| cap per interval")
    interval_s: int = Field(28800, ge=60, le=86400, description="funding every this many s")


class Venue(_Strict):
    rate_limit_per_s: float = Field(10.0, ge=0.0, description="exchange orders/s limit; 0 = none")


class StrategySection(_Strict):
    """Which quoter runs and at what size (``--strategy``, ``--param``, ``--order-qty``,
    ``--max-position-qty`` override these)."""

    name: str = Field(
        DEFAULT_QUOTER, description="quoter: built-in name, FILE.py:NAME or pkg.mod:NAME"
    )
    params: dict[str, float] = Field(default_factory=dict, description="the quoter's parameters")
    order_qty: float | None = Field(
        None, gt=0.0, description="order size, base units or contracts (default: order_notional)"
    )
    max_position_qty: float | None = Field(
        None, gt=0.0, description="max |position| (default: max_position_orders x order_qty)"
    )


class Profile(_Strict):
    """A strategy profile (e.g. S1). ``runtime`` holds the six knobs, clamped to their limits."""

    name: str = "S1"
    description: str = ""
    runtime: dict[str, float]
    profile: ProfileDeltas = ProfileDeltas()
    base: ProfileBase = ProfileBase()
    quoting: Quoting = Quoting()
    risk: Risk = Risk()
    fees: Fees = Fees()
    venue: Venue = Venue()
    funding: FundingModel = FundingModel()
    strategy: StrategySection = StrategySection()
    source: str = ""
    messages: list[str] = Field(default_factory=list)

    @field_validator("runtime", mode="before")
    @classmethod
    def _runtime_numbers(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("must be an object of knob -> number")
        for key, v in value.items():
            if key not in knobs.RUNTIME_LIMITS:
                raise ValueError(f"unknown knob {key!r} (known: {', '.join(knobs.KNOB_NAMES)})")
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"knob {key!r} must be a finite number, got {v!r}")
        missing = [k for k in knobs.KNOB_NAMES if k not in value]
        if missing:
            raise ValueError(f"missing knob(s): {', '.join(missing)}")
        return value

    def effective(self) -> dict[str, float]:
        """Profile-derived strategy/guard values (module docstring gives the rules)."""
        b, d = self.base, self.profile
        return {
            "concurrency_limit": float(
                max(1, math.floor(b.concurrency_limit * (1.0 + d.concurrency_limit_delta) + 1e-9))
            ),
            "slippage_penalty_coef": max(
                0.0, b.slippage_penalty_coef + d.slippage_penalty_coef_delta
            ),
            "vip_tilt_cap": max(0.0, b.vip_tilt_cap + d.vip_tilt_cap_delta),
            "inventory_tilt_cap": max(0.0, b.inventory_tilt_cap + d.inventory_tilt_cap_delta),
        }


def with_strategy_options(
    profile: Profile,
    *,
    strategy: str | None = None,
    params: Mapping[str, float] | None = None,
    order_qty: float | None = None,
    max_position_qty: float | None = None,
    maker_fee_bps: float | None = None,
    taker_fee_bps: float | None = None,
    fee_tier: str | None = None,
) -> Profile:
    """``profile`` with the equal-limit options a command line gives (None = keep the profile's);
    every value is validated by the profile's own model (UserError naming the option). ``fee_tier``
    names a tier of the venue's shipped schedule (explicit fee rates still win over it)."""
    st = profile.strategy.model_dump()
    fees = profile.fees.model_dump()
    if strategy is not None:
        st["name"] = strategy
        if strategy != profile.strategy.name:
            st["params"] = {}  # another quoter's parameters do not carry over
    st["params"] = {**st["params"], **dict(params or {})}
    for key, value in (("order_qty", order_qty), ("max_position_qty", max_position_qty)):
        if value is not None:
            st[key] = value
    if fee_tier is not None:
        fees["tier"] = fee_tier
    for key, bps in (("maker_fee_rate", maker_fee_bps), ("taker_fee_rate", taker_fee_bps)):
        if bps is not None:
            fees[key] = float(bps) * 1e-4
    try:
        new_st = StrategySection.model_validate(st)
        new_fees = Fees.model_validate(fees)
    except ValidationError as exc:
        raise UserError(validation_message(exc, "command-line options")) from exc
    for name, value in (("--maker-fee-bps", maker_fee_bps), ("--taker-fee-bps", taker_fee_bps)):
        if value is not None and not math.isfinite(float(value)):
            raise UserError(f"{name} {value!r}: must be a finite number")
    return profile.model_copy(update={"strategy": new_st, "fees": new_fees})


def _read_json(path: Path, what: str) -> Any:
    return read_json(f"{what} {path}", path)


def _clamp_all(values: Mapping[str, float], source: str) -> tuple[dict[str, float], list[str]]:
    out: dict[str, float] = {}
    messages: list[str] = []
    for name, raw in values.items():
        limits = knobs.knob_limits(name)
        if limits is None:  # a quoter parameter without tuning limits: as given
            out[name] = float(raw)
            continue
        v = knobs.clamp_any(name, raw)
        lo, hi = limits
        if not lo <= float(raw) <= hi:
            messages.append(
                f"{source}: {name}={raw:g} out of limits [{lo:g}, {hi:g}], clamped to {v:g}"
            )
        elif v != float(raw):
            messages.append(f"{source}: {name}={raw:g} must be whole, rounded to {v:g}")
        out[name] = int(v) if knobs.is_integer_knob(name) else float(v)
    return out, messages


def resolve_profile_path(name_or_path: str | None = None) -> Path:
    """Profile name ("S1") or JSON path -> file path (None -> $MM_PROFILE or "S1")."""
    name = name_or_path or envvars.read(PROFILE_ENV) or "S1"
    candidate = Path(name)
    if candidate.suffix == ".json" or candidate.exists() or os.sep in name:
        return candidate
    for folder in (PROFILES_DIR, Path.cwd() / "config" / "profiles"):
        p = folder / f"market_maker_{name}.json"
        if p.exists():
            return p
    raise UserError(
        f"profile {name!r} not found (looked for market_maker_{name}.json in {PROFILES_DIR} "
        "and ./config/profiles)"
    )


def load_profile(name_or_path: str | None = None) -> Profile:
    """Load and validate a profile; runtime knobs outside limits are clamped (see ``messages``)."""
    path = resolve_profile_path(name_or_path)
    raw = _read_json(path, "profile")
    source = f"profile {path}"
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a JSON object")
    raw = {k: v for k, v in raw.items() if k not in ("source", "messages")}
    try:
        prof = Profile.model_validate(raw)
    except ValidationError as exc:
        raise UserError(validation_message(exc, source)) from None
    runtime, messages = _clamp_all(prof.runtime, source)
    prof.runtime = runtime
    prof.source = str(path)
    prof.messages = messages
    return prof


def _overrides_source(
    file: Path | None, env: Mapping[str, str], default_file: Path
) -> tuple[str, Any] | None:
    """The one source that applies (highest precedence present) and its parsed JSON."""
    if file is not None:
        return f"--overrides {file}", _read_json(Path(file), "overrides file")
    env_value = env.get(OVERRIDES_ENV, "").strip()
    if env_value:
        if env_value.startswith("{"):
            try:
                return f"${OVERRIDES_ENV}", json.loads(env_value)
            except json.JSONDecodeError as exc:
                raise UserError(f"${OVERRIDES_ENV}: malformed JSON: {exc.msg}") from None
        p = Path(env_value)
        return f"${OVERRIDES_ENV}={p}", _read_json(p, f"${OVERRIDES_ENV} file")
    if default_file is not None and Path(default_file).exists():
        return f"{default_file}", _read_json(Path(default_file), "overrides file")
    return None


def load_overrides(
    file: Path | None = None,
    env: Mapping[str, str] | None = None,
    default_file: Path = DEFAULT_OVERRIDES_FILE,
) -> tuple[dict[str, float], list[str]]:
    """Runtime overrides from the highest-precedence source present, validated and clamped.

    Precedence: ``file`` (``--overrides``) > ``$MM_RUNTIME_OVERRIDES_JSON`` (inline JSON object
    or a path) > ``default_file``. Only that one source is used (sources are not merged). Returns
    (overrides, messages): one message per clamped/rounded field, naming the field and source.
    """
    env = envvars.snapshot() if env is None else env
    found = _overrides_source(file, env, default_file)
    if found is None:
        return {}, []
    source, raw = found
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a JSON object of knob -> number")
    for key, value in raw.items():
        if key not in knobs.RUNTIME_LIMITS and not (
            knobs.is_quoter_knob(key) and knobs.quoter_param(key).isidentifier()
        ):
            raise UserError(
                f"{source}: unknown key {key!r} (known: {', '.join(knobs.KNOB_NAMES)}, "
                f"or a quoter parameter {knobs.QUOTER_KNOB_PREFIX}NAME)"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(
                f"{source}: {key} must be a number, got {type(value).__name__} {value!r}"
            )
        if not math.isfinite(value):
            raise UserError(f"{source}: {key} must be finite, got {value!r}")
    return _clamp_all(raw, source)


def overrides_source(
    file: Path | None = None,
    env: Mapping[str, str] | None = None,
    default_file: Path = DEFAULT_OVERRIDES_FILE,
) -> str | None:
    """Name of the source ``load_overrides`` would use (None if none is present)."""
    env = envvars.snapshot() if env is None else env
    if file is not None:
        return f"--overrides {file}"
    if env.get(OVERRIDES_ENV, "").strip():
        return f"${OVERRIDES_ENV}"
    if default_file is not None and Path(default_file).exists():
        return str(default_file)
    return None


def effective_knobs(profile: Profile, overrides: Mapping[str, float]) -> dict[str, float]:
    """Profile runtime knobs with overrides applied (each clamped to its limits)."""
    merged: dict[str, float] = dict(profile.runtime)
    for key, value in overrides.items():
        if knobs.is_quoter_knob(key):
            continue  # a quoter parameter: `with_override_params` applies it
        if key not in knobs.RUNTIME_LIMITS:
            raise UserError(f"overrides: unknown key {key!r}")
        merged[key] = value
    out, _ = _clamp_all(merged, "effective knobs")
    return {k: out[k] for k in knobs.KNOB_NAMES}


def with_override_params(
    profile: Profile,
    overrides: Mapping[str, float],
    source: str = "overrides",
    keep: Mapping[str, float] | None = None,
) -> Profile:
    """``profile`` with the quoter parameters of ``overrides`` (its ``param.NAME`` keys, as
    `load_overrides` returns them) over its ``strategy.params``; ``keep`` (the command line's
    ``--param``) wins over the file. A parameter the profile's quoter does not have is a
    UserError naming ``source`` (the file was written for another quoter)."""
    _, params = knobs.split_knobs(overrides)
    if not params:
        return profile
    from mmbot.strategy.registry import resolve

    spec = profile.strategy.name
    known = resolve(spec).params
    for name in params:
        if name not in known:
            raise UserError(
                f"{source}: {knobs.quoter_knob_name(name)}: the quoter {spec} has no parameter "
                f"{name!r} (the file is for another quoter: pass its --strategy, or remove the key)"
            )
    merged = {**profile.strategy.params, **params, **dict(keep or {})}
    st = profile.strategy.model_copy(update={"params": merged})
    return profile.model_copy(update={"strategy": st})
