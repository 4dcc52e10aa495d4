"""Guards between the strategy's targets and the orders actually sent, each with its block reason.

Owns ``GUARD_STATE_DTYPE`` and the compiled checks (order of evaluation, first failure wins):

1. ``risk``         (new/replace only; cancels always reduce risk): loss kill switch (PnL below
                    −max_loss; latches for the rest of the run), max |position| and max notional
                    if the order filled in full (an order that reduces |position| passes);
   ``spot_inventory`` (spot markets, new/replace): a sell that would take the position below the
                    starting inventory (``-spot_start_inventory_qty``: never short), or a buy whose
                    cost (position after × price) exceeds the quote balance plus PnL;
   ``drawdown``     (new/replace): equity fell ``max_drawdown`` below its running peak: new quotes
                    are blocked for ``drawdown_cooldown_ns``, then the peak restarts at the equity
                    then (resume); cancels always pass;
2. ``min_interval`` (all ops): less than ``min_interval_ms`` since the last action sent on that slot
                    (``slot`` = level * 2 + side; with one level, the side);
3. ``concurrency``  (all ops): ``concurrency_limit`` actions already in flight (sent, unacknowledged);
4. ``throttle``     (new/replace): the per-symbol token bucket of ``replace_rate_per_min`` is empty
                    (capacity = ``throttle_burst_s`` seconds of the rate); and (all ops that the exchange
                    counts: new/replace) the exchange's orders/s budget ``rate_limit_per_s`` is spent.

``check`` does not change the guard state except refilling buckets; ``commit`` records an action
that passed (tokens, last action time, in-flight count); ``on_response`` releases an in-flight slot.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mmbot.records import (
    OP_CANCEL,
    REASON_CONCURRENCY,
    REASON_DRAWDOWN,
    REASON_MIN_INTERVAL,
    REASON_NONE,
    REASON_RISK,
    REASON_SPOT_INVENTORY,
    REASON_THROTTLE,
)

N_REASON_SLOTS = 16
# order slots the per-slot state covers: row level * 2 + side of the own-order view (one level = the
# two sides); a quoter's second level is not held back by the first level's last action
N_GUARD_SLOTS = 16

GUARD_STATE_DTYPE = np.dtype(
    [
        ("last_action_ns", "i8", (N_GUARD_SLOTS,)),  # per slot (level * 2 + side)
        ("has_action", "u1", (N_GUARD_SLOTS,)),
        ("tokens", "f8"),
        ("tokens_ns", "i8"),
        ("rate_tokens", "f8"),
        ("rate_ns", "i8"),
        ("inflight", "i8"),
        ("killed", "u1"),
        ("n_intended", "i8"),
        ("n_blocked", "i8", (N_REASON_SLOTS,)),  # by REASON_* code
        ("n_sent", "i8"),
        # the last blocked intention per slot: an unchanged repeat is not a new attempt
        ("blk_op", "i8", (N_GUARD_SLOTS,)),
        ("blk_reason", "i8", (N_GUARD_SLOTS,)),
        ("blk_px", "f8", (N_GUARD_SLOTS,)),
        ("blk_qty", "f8", (N_GUARD_SLOTS,)),
        # drawdown stop
        ("peak_pnl", "f8"),
        ("has_peak", "u1"),
        ("dd_until_ns", "i8"),  # paused until (0 = not paused)
        ("n_dd_stops", "i8"),
    ],
    align=True,
)


def new_guard_state(params: np.ndarray) -> np.ndarray:
    g = np.zeros(1, dtype=GUARD_STATE_DTYPE)
    p = params[0]
    g["tokens"] = p["replace_rate_per_min"] / 60.0 * p["throttle_burst_s"]
    g["rate_tokens"] = p["rate_limit_per_s"]
    g["blk_op"] = -1
    return g


@njit(cache=True)
def _refill(g, params, now_ns: int) -> None:
    p = params[0]
    rate_per_s = p.replace_rate_per_min / 60.0
    cap = max(rate_per_s * p.throttle_burst_s, 1.0)
    if g.tokens_ns == 0:
        g.tokens_ns = now_ns
    dt_s = (now_ns - g.tokens_ns) * 1e-9
    if dt_s > 0.0:
        g.tokens = min(cap, g.tokens + dt_s * rate_per_s)
        g.tokens_ns = now_ns
    if p.rate_limit_per_s > 0.0:
        if g.rate_ns == 0:
            g.rate_ns = now_ns
        dt_s = (now_ns - g.rate_ns) * 1e-9
        if dt_s > 0.0:
            g.rate_tokens = min(p.rate_limit_per_s, g.rate_tokens + dt_s * p.rate_limit_per_s)
            g.rate_ns = now_ns


@njit(cache=True)
def check_risk(
    g, params, op: int, side_sign: int, qty: float, px: float, position_qty: float, pnl: float
) -> int:
    p = params[0]
    if op == OP_CANCEL:
        return REASON_NONE
    if g.killed == 0 and pnl < -p.max_loss:
        g.killed = 1  # latch: the kill switch stays on for the rest of the run
    if g.killed != 0:
        return REASON_RISK
    after = position_qty + side_sign * qty
    if abs(after) > abs(position_qty):
        if abs(after) > p.max_position_qty + 1e-12:
            return REASON_RISK
        # quote notional: contracts x size x px (linear), contracts x size USD (inverse)
        unit = p.contract_size if p.inverse != 0 else p.contract_size * px
        if abs(after) * unit > p.max_notional:
            return REASON_RISK
    return REASON_NONE


@njit(cache=True)
def check_spot_inventory(
    params, op: int, side_sign: int, qty: float, px: float, position_qty: float, pnl: float
) -> int:
    """Spot holds what it owns: never below the starting inventory, never buying past the quote."""
    p = params[0]
    if p.spot == 0 or op == OP_CANCEL:
        return REASON_NONE
    after = position_qty + side_sign * qty
    if side_sign < 0 and after < -p.spot_start_inventory_qty - 1e-12:
        return REASON_SPOT_INVENTORY
    # cash spent so far ~ position x px - pnl (pnl marks the position at mid, px is next to it)
    if side_sign > 0 and after * px * p.contract_size > p.spot_quote_balance + pnl + 1e-9:
        return REASON_SPOT_INVENTORY
    return REASON_NONE


@njit(cache=True)
def check_drawdown(g, params, op: int, pnl: float, now_ns: int) -> int:
    """Track the equity peak; pause new quotes for the cool-down after a max_drawdown fall."""
    p = params[0]
    if p.max_drawdown <= 0.0 or pnl != pnl:
        return REASON_NONE
    if g.dd_until_ns != 0:
        if now_ns < g.dd_until_ns:
            return REASON_DRAWDOWN if op != OP_CANCEL else REASON_NONE
        g.dd_until_ns = 0  # resume: the peak restarts here
        g.has_peak = 0
    if g.has_peak == 0 or pnl > g.peak_pnl:
        g.peak_pnl = pnl
        g.has_peak = 1
    if g.peak_pnl - pnl > p.max_drawdown:
        g.dd_until_ns = max(now_ns + p.drawdown_cooldown_ns, now_ns + 1)
        g.n_dd_stops += 1
        return REASON_DRAWDOWN if op != OP_CANCEL else REASON_NONE
    return REASON_NONE


@njit(cache=True)
def check(
    guard_state,
    params,
    slot: int,
    op: int,
    qty: float,
    px: float,
    position_qty: float,
    pnl: float,
    now_ns: int,
) -> int:
    """The first guard that blocks this action (REASON_*), or REASON_NONE. ``slot``: level * 2 +
    side (the side is ``slot % 2``)."""
    g = guard_state[0]
    p = params[0]
    side_sign = 1 if slot % 2 == 0 else -1
    r = check_risk(g, params, op, side_sign, qty, px, position_qty, pnl)
    if r != REASON_NONE:
        return r
    r = check_drawdown(g, params, op, pnl, now_ns)
    if r != REASON_NONE:
        return r
    r = check_spot_inventory(params, op, side_sign, qty, px, position_qty, pnl)
    if r != REASON_NONE:
        return r
    if g.has_action[slot] != 0 and now_ns - g.last_action_ns[slot] < p.min_interval_ns:
        return REASON_MIN_INTERVAL
    if g.inflight >= p.concurrency_limit:
        return REASON_CONCURRENCY
    _refill(g, params, now_ns)
    if op != OP_CANCEL:
        if g.tokens < 1.0:
            return REASON_THROTTLE
        if p.rate_limit_per_s > 0.0 and g.rate_tokens < 1.0:
            return REASON_THROTTLE
    return REASON_NONE


@njit(cache=True)
def commit(guard_state, params, slot: int, op: int, now_ns: int) -> None:
    """An action passed the guards and is being sent."""
    g = guard_state[0]
    p = params[0]
    g.last_action_ns[slot] = now_ns
    g.has_action[slot] = 1
    g.inflight += 1
    g.n_sent += 1
    g.n_intended += 1
    if op != OP_CANCEL:
        g.tokens -= 1.0
        if p.rate_limit_per_s > 0.0:
            g.rate_tokens -= 1.0
    g.blk_op[slot] = -1


@njit(cache=True)
def on_response(guard_state) -> None:
    """An action's response (ack or reject) arrived: one fewer in flight."""
    g = guard_state[0]
    if g.inflight > 0:
        g.inflight -= 1


@njit(cache=True)
def note_blocked(guard_state, slot: int, op: int, px: float, qty: float, reason: int) -> bool:
    """Count a blocked attempt; False when it repeats the side's last blocked intention unchanged
    (same op, price, size and reason), which is the same attempt still waiting, not a new one."""
    g = guard_state[0]
    if (
        g.blk_op[slot] == op
        and g.blk_reason[slot] == reason
        and g.blk_px[slot] == px
        and g.blk_qty[slot] == qty
    ):
        return False
    g.blk_op[slot] = op
    g.blk_reason[slot] = reason
    g.blk_px[slot] = px
    g.blk_qty[slot] = qty
    g.n_intended += 1
    g.n_blocked[reason] += 1
    return True
