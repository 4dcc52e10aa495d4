"""Microprice +/- a fixed half-spread, skewed against the position (--strategy FILE.py:QUOTER)."""

import math

from numba import njit

from mmbot.strategy import Quoter


@njit
def quote(state, params, qparams, view, own, out):
    b, p, q = view[0], params[0], qparams[0]
    if not (b.best_bid_qty > 0.0 and b.best_ask_qty > 0.0):
        return  # no two-sided book: quote nothing
    # the microprice leans towards the side with less size: where the next trade likely goes
    fair = (b.best_bid_px * b.best_ask_qty + b.best_ask_px * b.best_bid_qty) / (
        b.best_bid_qty + b.best_ask_qty
    )
    half = q.half_spread_bps * 1e-4 * fair
    skew = q.skew_bps_per_order * 1e-4 * fair * b.position_qty / p.order_qty
    o = out[0]
    o.bid_px[0] = min(math.floor((fair - half - skew) / p.tick_px) * p.tick_px, b.best_bid_px)
    o.ask_px[0] = max(math.ceil((fair + half - skew) / p.tick_px) * p.tick_px, b.best_ask_px)
    o.bid_qty[0] = o.ask_qty[0] = p.order_qty
    o.bid_target_px, o.ask_target_px, o.half_spread_px = o.bid_px[0], o.ask_px[0], half


QUOTER = Quoter(name="microprice", quote=quote, wake_interval_ms=100.0,
                params={"half_spread_bps": 1.0, "skew_bps_per_order": 0.2})  # fmt: skip
