"""Queue-position models for resting orders (hftbacktest's): risk-averse (trades only, level
decreases cap the queue ahead) and ProbQueueModel with the power or log probability function.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import (
    QM_POWER,
)


@njit(cache=True)
def queue_prob(v, front, back):
    if v.qmodel == QM_POWER:
        fb = back**v.qpow
        ff = front**v.qpow
    else:
        fb = np.log1p(back)
        ff = np.log1p(front)
    d = fb + ff
    if d <= 0.0:
        return 1.0
    p = fb / d
    if not np.isfinite(p):
        return 1.0
    return p


@njit(cache=True)
def queue_on_depth(v, s, prev_qty, new_qty):
    """A level-quantity change at our price (hftbacktest QueueModel.depth)."""
    o = v.orders[s]
    if v.qmodel == 0:
        if new_qty < o.queue_ahead_qty:
            o.queue_ahead_qty = new_qty
        return
    chg = prev_qty - new_qty - o.cum_trade_qty  # trades already advanced us
    o.cum_trade_qty = 0.0
    if chg < 0.0:
        if new_qty < o.queue_ahead_qty:
            o.queue_ahead_qty = new_qty
        return
    front = o.queue_ahead_qty
    back = prev_qty - front
    p = queue_prob(v, front, back)
    est = front - (1.0 - p) * chg + min(back - p * chg, 0.0)
    o.queue_ahead_qty = min(est, new_qty)


@njit(cache=True)
def queue_fillable(v, s):
    """Quantity the queue model lets trade through us: the traded quantity beyond the queue ahead,
    rounded to whole lots (hftbacktest 2.4 ``is_filled``: ``round(-front / lot)`` lots when > 0)."""
    exec_lots = np.round(-v.orders[s].queue_ahead_qty / v.lot_qty)
    if exec_lots > 0.0:
        return exec_lots * v.lot_qty
    return 0.0


@njit(cache=True)
def depth_at_our_level(v, side, ix, prev_qty, new_qty):
    for k in range(v.n_live):
        s = v.live[k]
        o = v.orders[s]
        if o.side == side and o.ex_ix == ix:
            queue_on_depth(v, s, prev_qty, new_qty)
