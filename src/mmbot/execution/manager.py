"""The order manager: per side, keep / new / replace / cancel against the strategy's target.

Owns ``decide`` (what the side needs) and ``manage_side`` (decide, run the guards, write the
INTENDED / BLOCKED rows into an ``ACTION_DTYPE`` buffer, and tell the driver what to send). It never
talks to a venue: the driver sends the returned action and records SENT/ACKED/... itself.

Rules for a side with target (px, qty):
- a request is in flight on the side → wait;
- no target (qty 0 or px NaN) → cancel the live order, if any;
- no order → new;
- live order whose price is off the target by more than the reprice tolerance
  (``reprice_tol_ratio × half-spread``, at least ``reprice_min_ticks``), or whose open size is more than
  twice or less than half the target → replace;
- live order older than ``tail_age_ms`` (since its price became live) that differs from the target
  at all → replace (refresh), even inside the tolerance;
- otherwise keep.
Once the loss kill switch has fired, a live order is cancelled whatever the target. A new/replace
blocked by ``risk`` on a side with a live order falls back to cancelling it (a stale
order on a side we may not add to is the worst of both), through the guards like any action.

A quoter whose requote mode is ``cancel_new`` (``params.requote_mode``) gets exact quotes instead of
the tolerance and replace: a live order whose price differs from the target at all, or whose open
size exceeds it, is cancelled and a new order sent in the same wake (``OP_CANCEL_NEW``: the
driver's cancel then new in that slot), as hftbacktest's tutorials requote. The guards judge the
pair once, as the new order, with its cancel already counted in flight.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mmbot.execution.guards import check, commit, note_blocked
from mmbot.records import (
    ACT_BLOCKED,
    ACT_INTENDED,
    OP_CANCEL,
    OP_NEW,
    OP_REPLACE,
    REASON_NONE,
    REASON_RISK,
    write_action,
)
from mmbot.strategy.contract import REQUOTE_CANCEL_NEW
from mmbot.strategy.views import ORD_LIVE, ORD_NONE

OP_KEEP = -1
OP_CANCEL_NEW = -2  # manage_side's answer only: the driver sends OP_CANCEL, then OP_NEW
QTY_TOL_FACTOR = 2.0


@njit(cache=True)
def decide(order, tgt_px: float, tgt_qty: float, half_spread_px: float, params, now_ns: int) -> int:
    """OP_NEW / OP_REPLACE / OP_CANCEL / OP_KEEP for one side (``order`` is its ORDER_VIEW row)."""
    p = params[0]
    status = order.status
    if status != ORD_NONE and status != ORD_LIVE:
        return OP_KEEP  # a request is in flight on this side
    want = tgt_qty > 0.0 and tgt_px == tgt_px
    if not want:
        return OP_CANCEL if status == ORD_LIVE else OP_KEEP
    if status == ORD_NONE:
        return OP_NEW
    if p.requote_mode == REQUOTE_CANCEL_NEW:
        # exact quotes; a partly filled order at the target price stays (its open size is below)
        if abs(order.px - tgt_px) > 1e-6 * p.tick_px or order.qty > tgt_qty + 1e-9 * tgt_qty:
            return OP_REPLACE
        return OP_KEEP
    # tolerance: a fraction of the half-spread, at least reprice_min_ticks; a move within it (a
    # move of exactly the tolerance included) is left to the tail_age refresh
    tol = p.reprice_min_ticks * p.tick_px
    if half_spread_px == half_spread_px:
        tol = max(tol, p.reprice_tol_ratio * half_spread_px)
    dpx = abs(order.px - tgt_px)
    if dpx > tol + 1e-12 * tgt_px:
        return OP_REPLACE
    # size: replace when the open quantity is off by more than a factor QTY_TOL_FACTOR either
    # way (a partly filled order, or a cap that fell well below it); smaller drifts wait for tail_age
    if order.qty > QTY_TOL_FACTOR * tgt_qty + 1e-12 or order.qty * QTY_TOL_FACTOR < tgt_qty - 1e-12:
        return OP_REPLACE
    differs = dpx > 1e-9 * tgt_px or abs(order.qty - tgt_qty) > 1e-9 * tgt_qty
    if differs and now_ns - order.live_since_ns > p.tail_age_ns:
        return OP_REPLACE
    return OP_KEEP


@njit(cache=True)
def _attempt(
    guard_state,
    params,
    actions,
    n: int,
    order,
    slot: int,
    op: int,
    px: float,
    qty: float,
    cancel_first: bool,
    position_qty: float,
    pnl: float,
    now_ns: int,
) -> tuple[int, int]:
    """Run the guards for one attempt; returns (rows written so far, reason).

    ``cancel_first`` (``op`` is then OP_NEW): a cancel + new, judged once as the new order with its
    cancel counted in flight; when allowed, the cancel's INTENDED row comes first and it is a
    second request sent."""
    g = guard_state[0]
    side = 1 if slot % 2 == 0 else -1
    if cancel_first:
        g.inflight += 1
    reason = check(guard_state, params, slot, op, qty, px, position_qty, pnl, now_ns)
    if cancel_first:
        g.inflight -= 1
    oid = order.order_id if op != OP_NEW else 0
    if reason == REASON_NONE:
        if cancel_first:
            write_action(
                actions[n], now_ns, 0, order.order_id, ACT_INTENDED, side, OP_CANCEL, REASON_NONE,
                order.px, order.qty, 0,
            )  # fmt: skip
            n += 1
        write_action(actions[n], now_ns, 0, oid, ACT_INTENDED, side, op, REASON_NONE, px, qty, 0)
        n += 1
        commit(guard_state, params, slot, op, now_ns)
        if cancel_first:  # the cancel: a second request sent and in flight
            g.inflight += 1
            g.n_sent += 1
            g.n_intended += 1
    elif note_blocked(guard_state, slot, op, px, qty, reason):
        write_action(actions[n], now_ns, 0, oid, ACT_INTENDED, side, op, REASON_NONE, px, qty, 0)
        write_action(actions[n + 1], now_ns, 0, oid, ACT_BLOCKED, side, op, reason, px, qty, 0)
        n += 2
    return n, reason


@njit(cache=True)
def manage_side(
    guard_state,
    params,
    actions,
    n_actions: int,
    order,
    slot: int,
    tgt_px: float,
    tgt_qty: float,
    half_spread_px: float,
    position_qty: float,
    pnl: float,
    now_ns: int,
) -> tuple[int, int, float, float]:
    """Decide and guard one slot (level * 2 + side; with one level, the side index). Returns
    (n_actions, op to send or OP_KEEP, px, qty).

    ``actions`` must have room for 4 more rows after ``n_actions`` (see ``ensure_room``).
    """
    g = guard_state[0]
    if g.killed == 0 and pnl < -params[0].max_loss:
        g.killed = 1  # kill switch latches (guards.check_risk blocks every new/replace from now on)
    if g.killed != 0 and order.status == ORD_LIVE:
        op = OP_CANCEL  # a killed strategy keeps nothing on the book
    else:
        op = decide(order, tgt_px, tgt_qty, half_spread_px, params, now_ns)
    if op == OP_KEEP:
        return n_actions, OP_KEEP, np.nan, 0.0
    px = tgt_px if op != OP_CANCEL else order.px
    qty = tgt_qty if op != OP_CANCEL else order.qty
    cancel_new = op == OP_REPLACE and params[0].requote_mode == REQUOTE_CANCEL_NEW
    # at most two attempts: the action, then (a replace blocked by risk on a live quote) a cancel
    for fallback in (False, True):
        n_actions, reason = _attempt(
            guard_state, params, actions, n_actions, order, slot, OP_NEW if cancel_new else op,
            px, qty, cancel_new, position_qty, pnl, now_ns,
        )  # fmt: skip
        if reason == REASON_NONE:
            return n_actions, OP_CANCEL_NEW if cancel_new else op, px, qty
        if fallback or not (
            reason == REASON_RISK and op == OP_REPLACE and order.status == ORD_LIVE
        ):
            break
        # the replace would add risk: take the live quote off instead
        op, px, qty, cancel_new = OP_CANCEL, order.px, order.qty, False
    return n_actions, OP_KEEP, np.nan, 0.0


def ensure_room(actions: np.ndarray, n_actions: int, extra: int = 4) -> np.ndarray:
    """Grow (double) the buffer when fewer than ``extra`` rows are free (`ensure_room_nb`, called
    from Python)."""
    return ensure_room_nb(actions, n_actions, extra)


@njit(cache=True)
def ensure_room_nb(actions, n_actions: int, extra: int):
    """``actions``, or a copy at least twice as long when fewer than ``extra`` rows are free (for
    driver loops; `ensure_room` from Python)."""
    if n_actions + extra <= actions.shape[0]:
        return actions
    grown = np.zeros(max(2 * actions.shape[0], n_actions + extra, 64), dtype=actions.dtype)
    grown[:n_actions] = actions[:n_actions]
    return grown
