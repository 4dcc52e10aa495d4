"""The fixed panel of strategy configurations the fidelity report ranks on real and synthetic data.

Owns ``PANEL`` (a plain list: add a quoter or a setting by appending one ``PanelConfig``) and
``run_panel`` (each configuration's net bps on one event array). Every configuration runs at equal
limits: the same profile risk limits and the same position limit in base units (the default order
size times the profile's ``max_position_orders``), whatever its own order size, so a ranking
compares quoting, not risk budgets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mmbot.config import Profile, load_profile


@dataclass(frozen=True)
class PanelConfig:
    """One quoter setting: ``strategy`` (a backtest strategy name), runtime ``knobs`` overriding the
    profile's, ``quoting`` fields overriding ``profile.quoting`` (skew: ``gamma`` inventory,
    ``obi_coef`` imbalance; size: ``order_notional``) and quoter ``params`` (the quoter's PARAMS)."""

    name: str
    strategy: str
    knobs: dict[str, float] = field(default_factory=dict)
    quoting: dict[str, float] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)


PANEL: list[PanelConfig] = [
    PanelConfig("glft_spread0", "glft", {"base_spread_bps_delta": 0.0}),
    PanelConfig("glft_spread0.3", "glft", {"base_spread_bps_delta": 0.3}),
    PanelConfig("glft_spread0.6", "glft", {"base_spread_bps_delta": 0.6}),
    PanelConfig("glft_skew_low", "glft", {}, {"gamma": 0.02}),
    PanelConfig("glft_skew_high", "glft", {}, {"gamma": 0.5}),
    PanelConfig("glft_no_imbalance", "glft", {}, {"obi_coef": 0.0}),
    PanelConfig("glft_half_size", "glft", {}, {"order_notional": 10000.0}),
    # the touch baseline quotes the best prices whatever the spread knob: it varies in size only
    PanelConfig("touch", "touch"),
    PanelConfig("touch_half_size", "touch", {}, {"order_notional": 10000.0}),
    PanelConfig("touch_small_impact_cap", "touch", {"impact_cap_ratio": 0.04}),
    # quoters resting deeper than the touch: their outcomes spread far wider than the touch-bound
    # settings above, which differ by a few hundredths of a bps (a ranking of those is noise).
    # glft_ref's calibration window is 60 s because the captures last ~345 s
    PanelConfig("adaptive", "adaptive"),
    PanelConfig("adaptive_one_level", "adaptive", params={"n_levels": 1.0}),
    PanelConfig("adaptive_no_markout_depth", "adaptive", params={"mk_on": 0.0}),
    PanelConfig("glft_ref", "glft_ref", params={"window_s": 60.0}),
]


def _profile_for(base: Profile, cfg: PanelConfig) -> Profile:
    if not cfg.quoting:
        return base
    quoting = base.quoting.model_copy(update=dict(cfg.quoting))
    return base.model_copy(update={"quoting": quoting})


def equal_position_limit_qty(profile: Profile, ref_px: float, lot_qty: float) -> float:
    """The panel's common position limit: the default order size (notional / price, rounded down to
    the lot, at least one lot) times ``max_position_orders``."""
    from mmbot.strategy.params import round_to_lot

    return profile.risk.max_position_orders * round_to_lot(
        profile.quoting.order_notional / ref_px, lot_qty
    )


def run_panel(
    events: np.ndarray,
    *,
    tick_px: float,
    lot_qty: float,
    panel: list[PanelConfig] | None = None,
    profile: Profile | None = None,
    on_done: Callable[[str, float], None] | None = None,
) -> list[float]:
    """Net bps (PnL marked at the final mid over turnover, fees included) of each configuration on
    ``events``; nan when a configuration never fills."""
    from mmbot.backtest import RunSettings, _reference_px, run, summarize

    panel = PANEL if panel is None else panel
    base = profile if profile is not None else load_profile()
    max_pos = equal_position_limit_qty(base, _reference_px(events), lot_qty)
    out = []
    for cfg in panel:
        settings = RunSettings(
            strategy=cfg.strategy,
            params=dict(cfg.params),
            knobs=dict(cfg.knobs),
            profile=_profile_for(base, cfg),
            max_position_qty=max_pos,
        )
        res = run(events, settings, tick_px=tick_px, lot_qty=lot_qty)
        net = float(summarize([res])["net_bps"])
        out.append(net)
        if on_done is not None:
            on_done(cfg.name, net)
    return out
