"""The configuration of a run, in one package (docs/config.md maps every layer).

- ``profile``: the profile schema (``Profile`` and its sections), loading it, the runtime overrides
  and their precedence, clamping the knobs to their limits (``mmbot.knobs``);
- ``run``: ``RunConfig``, a run's resolved configuration (profile, knobs, run settings, fees,
  market, contract, the simulated venue's own settings), frozen and validated; the params record
  is generated from it (``mmbot.strategy.params.PARAM_FIELDS``) and a backtest's venue settings
  derived from it (``RunConfig.venue_config``).

Environment variables are read in ``mmbot.env`` (it imports nothing, so it stays outside).
"""

from mmbot.config.profile import (
    CONFIG_DIR,
    DEFAULT_OVERRIDES_FILE,
    OVERRIDES_ENV,
    PROFILE_ENV,
    PROFILES_DIR,
    Fees,
    FundingModel,
    Profile,
    ProfileBase,
    ProfileDeltas,
    Quoting,
    Risk,
    StrategySection,
    Venue,
    effective_knobs,
    load_overrides,
    load_profile,
    overrides_source,
    resolve_profile_path,
    with_override_params,
    with_strategy_options,
)

__all__ = [
    "CONFIG_DIR",
    "DEFAULT_OVERRIDES_FILE",
    "OVERRIDES_ENV",
    "PROFILES_DIR",
    "PROFILE_ENV",
    "Fees",
    "FundingModel",
    "Profile",
    "ProfileBase",
    "ProfileDeltas",
    "Quoting",
    "Risk",
    "StrategySection",
    "Venue",
    "effective_knobs",
    "load_overrides",
    "load_profile",
    "overrides_source",
    "resolve_profile_path",
    "with_override_params",
    "with_strategy_options",
]
