"""mmbot: market making with exact per-fill edge attribution, self-tuning soak runs and a KPI gate.

The notebook API (docs/api.md), imported on first use so ``import mmbot`` stays light::

    r = mmbot.backtest("capture.gz", strategy="glft", knobs={"min_interval_ms": 100})
    r.fills_df()      # polars: every fill with gross/slippage/fees/inventory and markouts
    r.edge_report     # the EDGE_REPORT dict; r.gate the KPI gate; r.report("out/") the HTML

``mmbot.backtest`` is also the module of the backtest loop (``mmbot.backtest.run``): calling it
runs ``mmbot.api.backtest``. ``mmbot.load_events`` reads any capture; ``Side``, ``ActionKind``,
``Op`` and ``Reason`` name the records' codes.
"""

from typing import Any

from mmbot.jitcache import configure as _configure_numba_cache

__version__ = "0.1.0"

_configure_numba_cache()

_LAZY = {
    "BacktestResult": "mmbot.api",
    "KnobClampedWarning": "mmbot.api",
    "load_events": "mmbot.data",
    "Side": "mmbot.enums",
    "ActionKind": "mmbot.enums",
    "Op": "mmbot.enums",
    "Reason": "mmbot.enums",
}
__all__ = ["backtest", *_LAZY]


def __getattr__(name: str) -> Any:
    import importlib

    if name == "backtest":  # the submodule, made callable (see mmbot.backtest's last lines)
        return importlib.import_module("mmbot.backtest")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmbot' has no attribute {name!r}")
