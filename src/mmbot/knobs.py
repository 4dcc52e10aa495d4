"""The runtime knobs: names, units, limits and the seed's packages. Defined here once.

Everything that needs a knob's limit (config validation, the auto-tuner, tests) imports it from
here. Meanings are DESIGN.md's "Strategy and runtime knobs" table. Besides the seed's six runtime
knobs, a quoter's tunable parameters are knobs too (``QUOTER_KNOBS``: which quoter has which, with
their limits); in a knob set (an overrides file, the soak's history) they are named
``param.NAME`` (``QUOTER_KNOB_PREFIX``, the sweep's spelling of a quoter parameter).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# field -> (low, high), inclusive
RUNTIME_LIMITS: Final[dict[str, tuple[float, float]]] = {
    "min_interval_ms": (50.0, 300.0),
    "replace_rate_per_min": (120.0, 360.0),
    "base_spread_bps_delta": (0.0, 0.6),
    "tail_age_ms": (400.0, 1000.0),
    "impact_cap_ratio": (0.04, 0.12),
    "max_delta_ratio": (0.10, 0.20),
}
KNOB_NAMES: Final[tuple[str, ...]] = tuple(RUNTIME_LIMITS)
INTEGER_KNOBS: Final[frozenset[str]] = frozenset(
    {"min_interval_ms", "replace_rate_per_min", "tail_age_ms"}
)
# The runtime knobs the engine's order manager and guards read for every quoter (min_interval and
# the replace budget in the guards, tail_age in the manager's refresh of a 'replace' quoter); the
# other three (base_spread_bps_delta, impact_cap_ratio, max_delta_ratio) move only a quoter whose
# own functions read them (it says so in `Quoter.runtime_knobs`).
ENGINE_KNOBS: Final[tuple[str, ...]] = ("min_interval_ms", "replace_rate_per_min", "tail_age_ms")
# the manager's refresh of an old order (tail_age) applies to 'replace' quoters only: 'cancel_new'
# requotes every change at once
_REFRESH_KNOBS: Final[frozenset[str]] = frozenset({"tail_age_ms"})


def engine_knobs(requote: str) -> tuple[str, ...]:
    """The runtime knobs the engine reads for a quoter of requote mode ``requote``."""
    if requote == "replace":
        return ENGINE_KNOBS
    return tuple(k for k in ENGINE_KNOBS if k not in _REFRESH_KNOBS)


# The seed's conservative starting package (written before soak iteration 1).
CONSERVATIVE_START: Final[dict[str, float]] = {
    "min_interval_ms": 70,
    "replace_rate_per_min": 280,
    "base_spread_bps_delta": 0.10,
    "tail_age_ms": 650,
    "impact_cap_ratio": 0.09,
    "max_delta_ratio": 0.14,
}


def fallback_package(current: dict[str, float]) -> dict[str, float]:
    """The seed's conservative fallback: 90 / 220 / 0.12 / max(700, cur) / max(0.08, cur) / 0.14."""
    return {
        "min_interval_ms": 90,
        "replace_rate_per_min": 220,
        "base_spread_bps_delta": 0.12,
        "tail_age_ms": max(700, current.get("tail_age_ms", 700)),
        "impact_cap_ratio": max(0.08, current.get("impact_cap_ratio", 0.08)),
        "max_delta_ratio": 0.14,
    }


def clamp_knob(name: str, value: float) -> float:
    lo, hi = RUNTIME_LIMITS[name]
    v = min(max(float(value), lo), hi)
    return float(round(v)) if name in INTEGER_KNOBS else v


# The seed's driver-aware packages (section D, "Iteration 2+"), as changes to the current knobs;
# scenario D is `fallback_package`. The decision matrix names the one that applies.
SCENARIO_DELTAS: Final[dict[str, dict[str, float]]] = {
    "A": {"base_spread_bps_delta": 0.05, "tail_age_ms": 50},
    "B": {"impact_cap_ratio": -0.02, "max_delta_ratio": -0.02},
    "C": {"min_interval_ms": -10, "replace_rate_per_min": 30},
}
SCENARIO_NAMES: Final[dict[str, str]] = {
    "A": "slippage dominant",
    "B": "adverse dominant",
    "C": "age relief (healthy execution)",
    "D": "fallback (2 consecutive negative iterations)",
}


def scenario_package(name: str, current: dict[str, float]) -> dict[str, float]:
    """The seed's package ``name`` (A-D) applied to ``current`` (all knobs), within the limits."""
    if name == "D":
        new = {**current, **fallback_package(current)}
    else:
        new = {k: v + SCENARIO_DELTAS[name].get(k, 0.0) for k, v in current.items()}
    # the packages move runtime knobs only; quoter knobs in ``current`` are carried unchanged
    return {k: round(clamp_any(k, v), 6) for k, v in new.items()}


# The adaptive quoter's tunable parameters (mmbot.strategy.adaptive.PARAMS) and their limits:
# spread-floor multiplier, skew and signal coefficients, levels, requote tolerance, and the
# markout horizon its depth selection is judged at. Separate from the seed's six runtime knobs
# (whose names, packages and soak markers stay as they are); a tuner moves them as quoter params.
QUOTER_KNOB_LIMITS: Final[dict[str, tuple[float, float]]] = {
    "as_mult": (0.5, 3.0),
    "skew_coef": (0.0, 12.0),
    "fv_coef": (0.0, 2.0),
    "pull_ratio": (0.5, 4.0),
    "n_levels": (1.0, 4.0),
    "requote_tol_ratio": (0.0, 0.5),
    "mk_horizon_ms": (1000.0, 30000.0),
    "mk_margin_bps": (0.0, 1.0),
}
INTEGER_QUOTER_KNOBS: Final[frozenset[str]] = frozenset({"n_levels"})


def clamp_quoter_knob(name: str, value: float) -> float:
    lo, hi = QUOTER_KNOB_LIMITS[name]
    v = min(max(float(value), lo), hi)
    return float(round(v)) if name in INTEGER_QUOTER_KNOBS else v


# Which quoters have tunable parameters, and their limits: the quoter spec -> QUOTER_KNOB_LIMITS-style
# table. glft has no quoter parameters (its spread and skew are the six runtime knobs and the
# profile's quoting section); glft_ref is hftbacktest's tutorial replica, the reference the
# benchmarks compare against, so it is not tuned; touch has none.
QUOTER_KNOBS: Final[dict[str, dict[str, tuple[float, float]]]] = {
    "adaptive": QUOTER_KNOB_LIMITS,
}
QUOTER_KNOB_PREFIX: Final[str] = "param."


def quoter_knob_name(param: str) -> str:
    """The knob name of quoter parameter ``param`` (``as_mult`` -> ``param.as_mult``)."""
    return QUOTER_KNOB_PREFIX + param


def is_quoter_knob(name: str) -> bool:
    return name.startswith(QUOTER_KNOB_PREFIX) and len(name) > len(QUOTER_KNOB_PREFIX)


def quoter_param(name: str) -> str:
    """The quoter parameter a quoter knob sets (``param.as_mult`` -> ``as_mult``)."""
    return name[len(QUOTER_KNOB_PREFIX) :]


def tunable_quoter_knobs(spec: str) -> dict[str, tuple[float, float]]:
    """The tunable knobs of the quoter ``spec`` (``param.NAME`` -> limits); {} when it has none."""
    return {quoter_knob_name(p): lim for p, lim in QUOTER_KNOBS.get(spec, {}).items()}


def knob_limits(name: str) -> tuple[float, float] | None:
    """Limits of a runtime knob or of a tunable quoter knob (``param.NAME``); None when unknown."""
    if name in RUNTIME_LIMITS:
        return RUNTIME_LIMITS[name]
    if is_quoter_knob(name):
        return QUOTER_KNOB_LIMITS.get(quoter_param(name))
    return None


def is_integer_knob(name: str) -> bool:
    if name in RUNTIME_LIMITS:
        return name in INTEGER_KNOBS
    return is_quoter_knob(name) and quoter_param(name) in INTEGER_QUOTER_KNOBS


def clamp_any(name: str, value: float) -> float:
    """``value`` within the limits of knob ``name`` (runtime or quoter; one without limits as is)."""
    if name in RUNTIME_LIMITS:
        return clamp_knob(name, value)
    if is_quoter_knob(name) and quoter_param(name) in QUOTER_KNOB_LIMITS:
        return clamp_quoter_knob(quoter_param(name), value)
    return float(value)


def knob_order(knobs: Mapping[str, float]) -> tuple[str, ...]:
    """The names of a knob set in display order: the six runtime knobs, then its quoter knobs."""
    return tuple(k for k in KNOB_NAMES if k in knobs) + tuple(
        sorted(k for k in knobs if is_quoter_knob(k))
    )


def split_knobs(knobs: Mapping[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """(runtime knobs, quoter parameters by their bare names) of a knob set."""
    runtime = {k: v for k, v in knobs.items() if not is_quoter_knob(k)}
    params = {quoter_param(k): float(v) for k, v in knobs.items() if is_quoter_knob(k)}
    return runtime, params
