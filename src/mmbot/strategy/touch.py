"""The touch baseline: join the best bid and the best ask, one order per side.

The simplest market maker and the yardstick every model is compared with: it quotes the local
touch on both sides, sized like ``glft`` (``order_qty`` capped at ``impact_cap_ratio`` of the
visible size near the touch, own orders excluded), and keeps no estimates. Its reprice tolerance is
the order manager's tick floor (no half-spread to scale it).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mmbot.strategy.contract import NOQUOTE_NO_BOOK, Quoter
from mmbot.strategy.glft import _size
from mmbot.strategy.views import ORD_NONE, SIDE_ASK, SIDE_BID


@njit(cache=True)
def quote(state, params, qparams, view, own, out) -> None:
    b = view[0]
    o = out[0]
    bid0 = b.best_bid_px
    ask0 = b.best_ask_px
    if not (bid0 > 0.0 and ask0 > 0.0 and ask0 > bid0):
        o.no_quote_reason = NOQUOTE_NO_BOOK
        return
    own_bid = own[SIDE_BID].qty if own[SIDE_BID].status != ORD_NONE else 0.0
    own_ask = own[SIDE_ASK].qty if own[SIDE_ASK].status != ORD_NONE else 0.0
    o.bid_px[0] = bid0
    o.ask_px[0] = ask0
    o.bid_qty[0] = _size(params, b.bid_near_qty, own_bid)
    o.ask_qty[0] = _size(params, b.ask_near_qty, own_ask)
    o.bid_target_px = bid0
    o.ask_target_px = ask0
    o.half_spread_px = np.nan


QUOTER = Quoter(
    name="touch",
    quote=quote,
    wake_interval_ms=50.0,
    wake_on_market=True,
    book_levels=0,  # reads the touch and the near-touch sizes only
    runtime_knobs=("impact_cap_ratio",),  # its size cap (glft's)
    doc="join the best bid and ask (baseline)",
)
