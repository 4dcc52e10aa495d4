"""mmbot: market making with exact per-fill edge attribution, self-tuning soak runs and a KPI gate."""

from mmbot.jitcache import configure as _configure_numba_cache

__version__ = "0.1.0"

_configure_numba_cache()
