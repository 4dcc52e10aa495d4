"""mmbot: market making with exact per-fill edge attribution, self-tuning soak runs and a KPI gate.

The notebook API (docs/api.md), imported on first use so ``import mmbot`` stays light::

    r = mmbot.backtest("capture.gz", strategy="glft", knobs={"min_interval_ms": 100})
    r.fills_df()      # polars: every fill with gross/slippage/fees/inventory and markouts
    r.edge_report     # the EDGE_REPORT dict; r.gate the KPI gate; r.report("out/") the HTML

``mmbot.backtest`` is also the module of the backtest loop (``mmbot.backtest.run``): calling it
runs ``mmbot.api.backtest``. ``mmbot.load_events`` reads any capture; ``Side``, ``ActionKind``,
``Op`` and ``Reason`` name the records' codes.

``import mmbot`` leaves the environment alone; reaching the API through these names sets up the
JIT cache first (``mmbot.jitcache.configure``), as every entry point does.
"""

from typing import Any

__version__ = "0.1.0"

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

    if name == "backtest" or name in _LAZY:
        from mmbot.jitcache import configure

        configure()  # before the first compiled module is imported
    if name == "backtest":  # the submodule, made callable (see mmbot.backtest's last lines)
        return importlib.import_module("mmbot.backtest")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmbot' has no attribute {name!r}")
