"""The auto-tuner's knob grid: steps, snapping, a knob set's identity and marker formatting, and
which knobs the tuner may move for a quoter.

Limits and names are `mmbot.knobs`'s; this module adds what only the tuner needs: the grid the
knobs live on (so markers print exactly and repeated steps do not accumulate float noise) and
`tunable_knobs`, the knobs a quoter's runs depend on. A quoter declares the seed's runtime knobs
its own functions read (`Quoter.runtime_knobs`; undeclared = all six); the order manager and
guards read ``knobs.ENGINE_KNOBS`` for every quoter; its tunable parameters (``param.NAME``) come
from ``knobs.QUOTER_KNOBS``. A knob outside that set stays in the knob set (overrides, markers and
artifacts keep the seed's six) but is never proposed: moving it cannot change a replay.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from mmbot.knobs import (
    KNOB_NAMES,
    clamp_any,
    engine_knobs,
    is_integer_knob,
    is_quoter_knob,
    knob_limits,
    knob_order,
    quoter_param,
    tunable_quoter_knobs,
)

KNOB_STEP: Final[dict[str, float]] = {
    "min_interval_ms": 1.0,
    "replace_rate_per_min": 1.0,
    "base_spread_bps_delta": 0.01,
    "tail_age_ms": 1.0,
    "impact_cap_ratio": 0.01,
    "max_delta_ratio": 0.01,
}
# The quoter knobs' grid (``param.NAME`` knobs; limits in knobs.QUOTER_KNOB_LIMITS), by parameter.
QUOTER_KNOB_STEP: Final[dict[str, float]] = {
    "as_mult": 0.05,
    "skew_coef": 0.05,
    "fv_coef": 0.05,
    "pull_ratio": 0.05,
    "n_levels": 1.0,
    "requote_tol_ratio": 0.01,
    "mk_horizon_ms": 100.0,
    "mk_margin_bps": 0.01,
}


def knob_step(name: str) -> float | None:
    """The grid step of a runtime knob or a quoter knob (None: a quoter parameter not tuned)."""
    if is_quoter_knob(name):
        return QUOTER_KNOB_STEP.get(quoter_param(name))
    return KNOB_STEP[name]


def snap(name: str, value: float) -> float:
    """Clamp to the knob's limits and put on its grid (integers stay integers)."""
    v = clamp_any(name, value)
    if is_integer_knob(name):
        return float(round(v))
    step = knob_step(name)
    limits = knob_limits(name)
    if step is None or limits is None:
        return float(v)
    snapped = round(round(v / step) * step, 10)
    return min(max(snapped, limits[0]), limits[1])


def fmt_knob(name: str, value: float) -> str:
    """Marker formatting: integers for the *_ms / per_min knobs (and whole-step quoter knobs),
    two decimals otherwise."""
    step = knob_step(name)
    if is_integer_knob(name) or (step is not None and step >= 1.0 and value == round(value)):
        return str(int(round(value)))
    if abs(value - round(value, 2)) < 1e-9:
        return f"{value:.2f}"
    return f"{value:.4f}"


def normalise_knobs(current: Mapping[str, float]) -> dict[str, float]:
    """The six runtime knobs (all required) and any quoter knobs (``param.NAME``), on their grid."""
    missing = [k for k in KNOB_NAMES if k not in current]
    if missing:
        raise ValueError(f"knobs missing: {', '.join(missing)}")
    return {k: snap(k, float(current[k])) for k in knob_order(current)}


def knob_key(knobs: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    """Hashable identity of a knob set (on the knobs' grid)."""
    return tuple((k, round(float(knobs[k]), 6)) for k in knob_order(knobs))


def tunable_knobs(spec: str) -> frozenset[str]:
    """The knobs the tuner may move when the soak runs quoter ``spec``: the engine's runtime knobs
    (for its requote mode), the runtime knobs the quoter declares it reads, and its tunable
    parameters (``param.NAME``)."""
    from mmbot.strategy.registry import resolve

    q = resolve(spec)
    declared = KNOB_NAMES if q.runtime_knobs is None else tuple(q.runtime_knobs)
    return (
        frozenset(engine_knobs(q.requote))
        | frozenset(declared)
        | frozenset(tunable_quoter_knobs(spec))
    )


def may_move(name: str, tunable: frozenset[str] | None) -> bool:
    """Whether the tuner may move knob ``name`` (``tunable`` None: every knob of the set)."""
    return tunable is None or name in tunable
