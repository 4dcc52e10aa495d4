"""What a driver hands the strategy and the guards: the local book/account view and own orders.

Owns ``BOOK_VIEW_DTYPE`` (one record: local best bid/ask, visible size near the touch, our position
and marked PnL) and ``ORDER_VIEW_DTYPE`` (two rows, ``SIDE_BID`` = 0 and ``SIDE_ASK`` = 1: our
working order per side as the strategy knows it). The backtest loop fills them from the venue; the
live runner fills them from the exchange feed. Neither knows the other exists.
"""

from __future__ import annotations

import numpy as np

SIDE_BID = 0
SIDE_ASK = 1

# order status as the strategy sees it
ORD_NONE = 0  # no working order on this side
ORD_PENDING_NEW = 1  # sent, not yet acknowledged
ORD_LIVE = 2  # resting at the exchange
ORD_PENDING_REPLACE = 3  # replace sent, not yet acknowledged
ORD_PENDING_CANCEL = 4  # cancel sent, not yet acknowledged

BOOK_VIEW_DTYPE = np.dtype(
    [
        ("best_bid_px", "f8"),
        ("best_bid_qty", "f8"),
        ("best_ask_px", "f8"),
        ("best_ask_qty", "f8"),
        (
            "bid_near_qty",
            "f8",
        ),  # visible bid size within near_band_bps of the best bid (own included)
        (
            "ask_near_qty",
            "f8",
        ),  # visible ask size within near_band_bps of the best ask (own included)
        ("position_qty", "f8"),  # our position, base units (+ long)
        ("pnl", "f8"),  # our PnL in quote currency, marked at the local mid (fees included)
    ],
    align=True,
)

ORDER_VIEW_DTYPE = np.dtype(
    [
        ("order_id", "i8"),
        ("status", "i8"),  # ORD_*
        ("px", "f8"),
        ("qty", "f8"),  # leaves quantity
        ("live_since_ns", "i8"),  # local time the current price became live (ack of new/replace)
        ("sent_ns", "i8"),  # local time of the last request on this order
    ],
    align=True,
)


def new_book_view() -> np.ndarray:
    v = np.zeros(1, dtype=BOOK_VIEW_DTYPE)
    for f in ("best_bid_px", "best_ask_px"):
        v[f] = np.nan
    return v


def new_order_view() -> np.ndarray:
    o = np.zeros(2, dtype=ORDER_VIEW_DTYPE)
    o["px"] = np.nan
    return o
