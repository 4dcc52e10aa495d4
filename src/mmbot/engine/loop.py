"""The template of the per-quoter compiled loop: ``think`` (one wake of the quoter) and ``drive``.

numba compiles a call to another compiled function into the caller, so the loop that calls a
quoter must be compiled once per quoter, and numba's on-disk cache only works for functions that
live in a real file. ``mmbot.engine.build`` therefore writes a copy of this file per quoter with the
one import line below (``QUOTER_IMPORT``) replaced; this file itself runs the default quoter and
is what tests and readers see.

``think`` is the whole decision of a wake, shared by the backtest (``drive``) and the paper/live
session: market trades since the last wake -> ``on_market``, fills learnt since -> ``on_fill``,
then ``quote``. The order manager and guards (``mmbot.engine.wake.act``) turn the quote into
requests; the driver sends them (the venue here, the exchange in a session).
"""

from __future__ import annotations

from numba import njit

from mmbot.borrow import borrowed as _b
from mmbot.engine import wake as wk
from mmbot.sim import venue as sv
from mmbot.strategy.contract import clear_quote

# QUOTER_IMPORT (build.py replaces this line)
from mmbot.strategy.glft import QUOTER as _Q

q_on_market = _Q.on_market
q_on_fill = _Q.on_fill
q_quote = _Q.quote


@njit(cache=True)
def think(qstate, params, qparams, view, trades, n_trades, fills, n_fills, own, out) -> int:
    """One wake of the quoter; returns out's ``no_quote_reason``."""
    q_on_market(qstate, params, qparams, view, trades, n_trades)
    for i in range(n_fills):
        q_on_fill(qstate, params, qparams, fills[i])
    clear_quote(out)
    q_quote(qstate, params, qparams, view, own, out)
    return out[0].no_quote_reason


@njit(cache=True)
def drive(
    v,
    params,
    qparams,
    qstate,
    guard_state,
    view,
    own,
    oids,
    out,
    trades,
    fills,
    actions,
    ops,
    counters,
    cursors,
    levels: int,
    book_levels: int,
    near_ticks: int,
    wake_ns: int,
    wake_on_market: bool,
    stop_local_ts: int,
) -> bool:
    """The backtest: run until local time reaches ``stop_local_ts`` or the data ends (True)."""
    # the arrays live for the whole call: borrowed views hand them to the wake's functions without
    # the atomic reference-count pair numba spends on every array argument of every call
    params, qparams, qstate, guard_state = _b(params), _b(qparams), _b(qstate), _b(guard_state)
    view, own, oids, out, trades = _b(view), _b(own), _b(oids), _b(out), _b(trades)
    fills, actions, ops, counters, cursors = (
        _b(fills),
        _b(actions),
        _b(ops),
        _b(counters),
        _b(cursors),
    )
    g = guard_state[0]
    n_slots = 2 * levels
    while True:
        rc = sv.wait_next(v, wake_ns) if wake_on_market else sv.elapse(v, wake_ns)
        if rc == sv.END_OF_DATA:
            return True
        now = sv.now_ns(v)
        counters[wk.C_WAKES] += 1
        if rc == sv.WAIT_FEED:
            counters[wk.C_FEED_WAKES] += 1
        n_tr = wk.collect_trades(v, cursors, trades, view)
        counters[wk.C_TRADES_SEEN] += n_tr
        n_f = wk.collect_fills(v, cursors, fills, now)
        counters[wk.C_FILLS_SEEN] += n_f
        wk.fill_view(v, view, near_ticks, book_levels, cursors)
        wk.refresh_own(v, own, oids, n_slots, now)
        # targets on every wake, whether or not an order can be sent
        reason = think(qstate, params, qparams, view, trades, n_tr, fills, n_f, own, out)
        counters[wk.C_STEPS] += 1
        if reason != 0:
            counters[wk.C_NOQUOTE] += 1
        sv.set_targets(v, out[0].bid_target_px, out[0].ask_target_px)
        g.inflight = sv.inflight_count(v)
        b = view[0]
        n_act, n_ops = wk.act(
            params, guard_state, own, out, levels, b.position_qty, b.pnl, now, actions, 0, ops
        )
        wk.send_ops(v, ops, n_ops, actions, own, oids, now, counters)
        if now >= stop_local_ts:
            return False
