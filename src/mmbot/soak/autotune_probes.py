"""Where the auto-tuner's probes go: a probe of (field, direction) and its distance, the knobs'
least probe steps, the near probe of a quoter knob probed one way, and the probe markers and keys.
The probes' evidence and the decision are `mmbot.soak.autotune_counterfactual`'s."""

from __future__ import annotations

from typing import Final

from mmbot.knobs import is_quoter_knob, knob_limits, quoter_param
from mmbot.soak.autotune_grid import fmt_knob, snap
from mmbot.soak.autotune_rules import MAX_SPREAD_STEP_BPS

# Probes: a probe of (field, direction) moves the field by ``fraction`` of its room to the limit
# in that direction (at least ``PROBE_MIN_STEP``, the seed's low-end deltas). The fraction starts
# at 1 (the limit: the largest effect the market can show above its noise, and knob effects are
# far from linear here, e.g. min_interval matters mostly above ~200 ms), halves once that probe
# clearly loses (mean gain below minus the floor over at least two segments), and is kept
# otherwise, so an undecided probe is the same knob set next time and its evidence accumulates.
PROBE_MIN_STEP: Final[dict[str, float]] = {
    "min_interval_ms": 20.0,
    "replace_rate_per_min": 30.0,
    "base_spread_bps_delta": 0.02,
    "tail_age_ms": 50.0,
    "impact_cap_ratio": 0.01,
    "max_delta_ratio": 0.01,
}
# the same for the quoter knobs (by parameter)
QUOTER_PROBE_MIN_STEP: Final[dict[str, float]] = {
    "as_mult": 0.25,
    "skew_coef": 0.25,
    "fv_coef": 0.25,
    "pull_ratio": 0.25,
    "n_levels": 1.0,
    "requote_tol_ratio": 0.05,
    "mk_horizon_ms": 1000.0,
    "mk_margin_bps": 0.1,
}
PROBE_MIN_FRACTION: Final[float] = 0.125
# A quoter knob probed in one direction only (it sits at a limit, or hysteresis allows only onward
# after a move) gets two probes there, as a knob inside its range gets one each way: the far one
# (``fraction`` of the room, as above) and a near one at ``NEAR_PROBE_RATIO`` of that distance (at
# least the knob's min step). A quoter knob's effect is not monotone (the spread floor's multiplier
# and the inventory skew have optima inside their ranges), so from a start at a limit the far probe
# alone measures only the other end of the range (docs/autotune.md, "Near probes").
NEAR_PROBE_RATIO: Final[float] = 0.25
INERT_DECISIONS: Final[int] = 3  # a probe that changed nothing is skipped this many decisions


def probe_marker(name: str, old: float, new: float) -> str:
    return (
        f"| autotune | PROBE | field={name} from={fmt_knob(name, old)} to={fmt_knob(name, new)} |"
    )


def probe_key(name: str, d: int) -> str:
    return f"{name}:{'+' if d > 0 else '-'}"


def probe_value(name: str, value: float, d: int, fraction: float) -> float:
    """Where a probe of ``name`` in direction ``d`` goes from ``value`` (``value`` at the limit)."""
    limits = knob_limits(name)
    if limits is None:
        return snap(name, value)
    lo, hi = limits
    room = (hi - value) if d > 0 else (value - lo)
    if room <= 1e-12:
        return snap(name, value)
    min_step = (
        QUOTER_PROBE_MIN_STEP[quoter_param(name)] if is_quoter_knob(name) else PROBE_MIN_STEP[name]
    )
    dist = min(max(min_step, fraction * room), room)
    new = snap(name, value + d * dist)
    if name == "base_spread_bps_delta":
        new = min(new, snap(name, value + MAX_SPREAD_STEP_BPS))
    return new


def probe_distances(name: str, fraction: float, one_sided: bool) -> tuple[tuple[float, bool], ...]:
    """(fraction of the room, near?) of the probes of ``name`` in one direction: the far probe,
    and for a quoter knob probed in this direction only (``one_sided``: at a limit, or onward
    after a move) a near one (`NEAR_PROBE_RATIO`)."""
    if is_quoter_knob(name) and one_sided and NEAR_PROBE_RATIO > 0.0:
        return ((fraction, False), (fraction * NEAR_PROBE_RATIO, True))
    return ((fraction, False),)
