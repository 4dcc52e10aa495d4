"""Join the touch, but step back on the side the order book is about to run over.

Order-book imbalance over the first ``depth_levels`` levels, I = (bid - ask) / (bid + ask), predicts
the next mid move: when |I| passes ``threshold`` the thin side is likely to be taken out, so the
quoter pulls its order there back by ``backoff_ticks`` (or cancels it with ``cancel`` = 1). It keeps
an EWMA of I in its own state to show how a quoter carries memory between wakes.

Run: mmbot backtest --data CAPTURE --out out --strategy examples/quoters/imbalance.py:QUOTER \
         --param threshold=0.5
"""

import numpy as np
from numba import njit

from mmbot.strategy import Quoter

STATE = np.dtype([("imbalance_ewma", "f8"), ("n_wakes", "i8")], align=True)


def new_state(params, qparams):
    return np.zeros(1, dtype=STATE)


@njit
def on_market(state, params, qparams, view, trades, n_trades):
    b, q, st = view[0], qparams[0], state[0]
    n = int(q.depth_levels)
    bid_qty = b.bid_qty[:n].sum()
    ask_qty = b.ask_qty[:n].sum()
    if bid_qty + ask_qty > 0.0:
        imb = (bid_qty - ask_qty) / (bid_qty + ask_qty)
        st.imbalance_ewma += q.ewma_alpha * (imb - st.imbalance_ewma)
    st.n_wakes += 1


@njit
def quote(state, params, qparams, view, own, out):
    b, p, q, st = view[0], params[0], qparams[0], state[0]
    if not (b.best_bid_px > 0.0 and b.best_ask_px > b.best_bid_px):
        return
    o = out[0]
    o.bid_px[0], o.ask_px[0] = b.best_bid_px, b.best_ask_px
    o.bid_target_px, o.ask_target_px = b.best_bid_px, b.best_ask_px
    size = p.order_qty
    o.bid_qty[0] = size if b.position_qty < p.max_position_qty else 0.0
    o.ask_qty[0] = size if b.position_qty > -p.max_position_qty else 0.0
    imb = st.imbalance_ewma
    if imb < -q.threshold:  # sellers dominate: our bid is the side about to be run over
        o.bid_px[0] -= q.backoff_ticks * p.tick_px
        if q.cancel > 0.0:
            o.bid_qty[0] = 0.0
    elif imb > q.threshold:
        o.ask_px[0] += q.backoff_ticks * p.tick_px
        if q.cancel > 0.0:
            o.ask_qty[0] = 0.0


QUOTER = Quoter(
    name="imbalance",
    quote=quote,
    new_state=new_state,
    on_market=on_market,
    wake_interval_ms=100.0,
    params={
        "depth_levels": 5.0,
        "ewma_alpha": 0.3,
        "threshold": 0.4,
        "backoff_ticks": 2.0,
        "cancel": 0.0,
    },
)
