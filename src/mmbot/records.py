"""Record layouts written by a run (simulated or live) and read by the audit. Defined here once.

A run produces three record arrays plus a little metadata:

- ``fills``   one row per fill (``FILL_DTYPE``)
- ``actions`` one row per order action and order state change (``ACTION_DTYPE``), blocked ones included
- ``marks``   the venue's mid and our position over time (``MARK_DTYPE``): a row at every change of the
              exchange-side mid and at every fill; the audit's inventory term, markouts and plots use it

Units: times in ns since the epoch, prices in quote currency, quantities in base units.
Signs: ``side`` is +1 buy / -1 sell; ``fee`` is the quote amount *paid* (a rebate is negative), so
the audit's fee contribution is ``-fee``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FILL_DTYPE = np.dtype(
    [
        ("exch_ts", "i8"),  # fill time at the exchange
        ("local_ts", "i8"),  # time the strategy learns of it
        ("order_id", "i8"),
        ("side", "i1"),  # +1 buy, -1 sell
        ("maker", "u1"),  # 1 maker, 0 taker
        ("px", "f8"),
        ("qty", "f8"),
        ("fee", "f8"),  # quote paid; negative = rebate
        ("fee_rate", "f8"),
        ("mid_px", "f8"),  # venue's (exchange-side) mid at the fill
        (
            "target_px",
            "f8",
        ),  # strategy's current target price for this side at the fill (NaN if none)
        ("order_age_ns", "i8"),  # fill time - time the order became live at the exchange
        ("position_qty", "f8"),  # position after this fill
    ],
    align=True,
)

ACTION_DTYPE = np.dtype(
    [
        ("local_ts", "i8"),  # time of the action at the strategy (request) or of its response
        ("exch_ts", "i8"),  # exchange time where known (0 when the action never reached it)
        ("order_id", "i8"),
        ("kind", "u1"),  # ACT_* below
        ("side", "i1"),
        ("op", "u1"),  # OP_* below: what the strategy tried to do
        ("reason", "u1"),  # REASON_* below (NONE unless blocked/rejected)
        ("px", "f8"),
        ("qty", "f8"),
        ("order_age_ns", "i8"),  # for CANCELLED/FILLED/… : age when it left the book, else 0
    ],
    align=True,
)


@njit(cache=True, inline="always")
def write_action(
    row,
    local_ts: int,
    exch_ts: int,
    order_id: int,
    kind: int,
    side: int,
    op: int,
    reason: int,
    px: float,
    qty: float,
    order_age_ns: int,
) -> None:
    """Fill one ACTION_DTYPE row in place (``row`` is ``actions[i]``): the one writer of an ACTION
    row, for the simulated venue (``sim.recording``) and the order manager alike."""
    row.local_ts = local_ts
    row.exch_ts = exch_ts
    row.order_id = order_id
    row.kind = kind
    row.side = side
    row.op = op
    row.reason = reason
    row.px = px
    row.qty = qty
    row.order_age_ns = order_age_ns


MARK_DTYPE = np.dtype([("exch_ts", "i8"), ("mid_px", "f8"), ("position_qty", "f8")], align=True)

# ACTION kinds
ACT_INTENDED = 0  # the strategy wanted to act (every attempt, blocked or not)
ACT_BLOCKED = 1  # a guard blocked it (reason set)
ACT_SENT = 2  # request left the strategy
ACT_ACKED = 3  # the exchange accepted it (order live / cancel done)
ACT_REJECTED = 4  # the exchange refused it (reason set)
ACT_CANCELLED = 5  # order left the book by cancel
ACT_FILLED = 6  # order left the book fully filled
ACT_EXPIRED = 7  # IOC remainder dropped
ACT_NAMES = {
    ACT_INTENDED: "intended",
    ACT_BLOCKED: "blocked",
    ACT_SENT: "sent",
    ACT_ACKED: "acked",
    ACT_REJECTED: "rejected",
    ACT_CANCELLED: "cancelled",
    ACT_FILLED: "filled",
    ACT_EXPIRED: "expired",
}

# ops
OP_NEW = 0
OP_REPLACE = 1
OP_CANCEL = 2
OP_NAMES = {OP_NEW: "new", OP_REPLACE: "replace", OP_CANCEL: "cancel"}

# reasons (guards first, then exchange rejects)
REASON_NONE = 0
REASON_MIN_INTERVAL = 1
REASON_CONCURRENCY = 2
REASON_THROTTLE = 3
REASON_RISK = 4
REASON_SPOT_INVENTORY = 5  # spot: a sell below the starting inventory or a buy beyond the quote
REASON_DRAWDOWN = 6  # equity fell max_drawdown below its peak: paused for the cool-down
REASON_POST_ONLY = 10  # GTX order would cross
REASON_RATE_LIMIT = 11  # exchange-side orders/s limit
REASON_UNKNOWN_ORDER = 12  # cancel/modify of an order no longer live
REASON_PRICE_BAND = (
    13  # price outside the venue's price ladder (far from any price seen in the data)
)
REASON_NAMES = {
    REASON_NONE: "none",
    REASON_MIN_INTERVAL: "min_interval",
    REASON_CONCURRENCY: "concurrency",
    REASON_THROTTLE: "throttle",
    REASON_RISK: "risk",
    REASON_SPOT_INVENTORY: "spot_inventory",
    REASON_DRAWDOWN: "drawdown",
    REASON_POST_ONLY: "post_only",
    REASON_RATE_LIMIT: "rate_limit",
    REASON_UNKNOWN_ORDER: "unknown_order",
    REASON_PRICE_BAND: "price_band",
}
GUARD_REASONS = (
    REASON_MIN_INTERVAL,
    REASON_CONCURRENCY,
    REASON_THROTTLE,
    REASON_RISK,
    REASON_SPOT_INVENTORY,
    REASON_DRAWDOWN,
)


def empty(dtype: np.dtype, n: int = 0) -> np.ndarray:
    return np.zeros(n, dtype=dtype)


class RunResult:
    """What one run (one data file or one soak iteration) hands to the audit.

    ``meta`` carries at least: symbol, tick_px, lot_qty, maker_fee_rate, taker_fee_rate,
    start_ts, end_ts, final_mid_px, sim_equity (the venue's own cash + position × final mid),
    ws_lag_p95_ms (p95 feed latency of processed market events), events (count processed),
    and any guard/venue counters.
    """

    __slots__ = ("fills", "actions", "marks", "meta")

    def __init__(self, fills: np.ndarray, actions: np.ndarray, marks: np.ndarray, meta: dict):
        self.fills = fills
        self.actions = actions
        self.marks = marks
        self.meta = meta

    def n_rows(self, name: str) -> int:
        """Rows of the records ``name`` (fills, actions or marks), without keeping them."""
        return len(getattr(self, name))
