"""The drawdown stop in live/paper trading: the guard's own peak tracker, run on every wake, turned
into actions a trader sees: on a stop every order is cancelled and the stop is said (log line and a
journal ``risk_events`` row); on the cool-down's end the resume is said the same way.

The peak, the stop and the cool-down are ``execution.guards.check_drawdown``'s (profile keys
``risk.max_drawdown``, ``risk.drawdown_cooldown_s``), so live and backtest stop at the same equity.
It is run through ``guards.check`` with a cancel probe: a cancel is never blocked by the drawdown
guard and ``check`` commits nothing (its bucket refill depends only on the time), so the probe only
moves the drawdown state; new quotes during the pause are then blocked by the order manager's own
guard pass with the ``drawdown`` reason, as in the backtest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STOP = "drawdown_stop"
RESUME = "drawdown_resume"


@dataclass
class DrawdownWatch:
    """Edges of the guard's drawdown state between wakes (``step`` returns STOP, RESUME or '')."""

    stops_seen: int = 0
    paused: bool = False

    def step(
        self, guard: np.ndarray, params: np.ndarray, pnl: float, px: float, now_ns: int
    ) -> str:
        from mmbot.execution.guards import check
        from mmbot.records import OP_CANCEL

        if float(params[0]["max_drawdown"]) <= 0.0:
            return ""
        check(guard, params, 0, OP_CANCEL, 0.0, px, 0.0, pnl, now_ns)
        g = guard[0]
        if int(g["n_dd_stops"]) > self.stops_seen:
            self.stops_seen = int(g["n_dd_stops"])
            self.paused = True
            return STOP
        if self.paused and int(g["dd_until_ns"]) == 0:
            self.paused = False
            return RESUME
        return ""


def stop_message(guard: np.ndarray, params: np.ndarray, pnl: float, unit: str) -> str:
    g, p = guard[0], params[0]
    return (
        f"drawdown stop: equity {pnl:.6g} {unit} is {float(g['peak_pnl']) - pnl:.6g} below its "
        f"peak {float(g['peak_pnl']):.6g} (max_drawdown {float(p['max_drawdown']):.6g}): "
        f"all orders cancelled, quoting paused for {int(p['drawdown_cooldown_ns']) / 1e9:g} s"
    )


def resume_message(pnl: float, unit: str) -> str:
    return f"drawdown cool-down over: quoting resumes, peak restarts at equity {pnl:.6g} {unit}"
