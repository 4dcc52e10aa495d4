"""Closing a soak's end position at taker cost, booked as a fill.

Owns ``close_at_taker``. A soak carries its position from chunk to chunk
(`mmbot.soak.account_carry`); the position left at the soak's very end is not marked at the mid
but closed at the last chunk's final touch (a long sells at the best bid, a short buys at the best
ask) paying the taker fee, as one more taker fill row: the decomposition books the half-spread as gross (mid − px) and
the fee as fees, and the venue's equity in ``meta`` is moved by the same cash so the audit's
cross-check with it still holds. ``meta["close_out"]`` records what was closed and what it cost.
"""

from __future__ import annotations

import math

import numpy as np

from mmbot.instruments import spec_from_meta
from mmbot.records import RunResult

CLOSE_ORDER_ID = -1  # the close-out fill belongs to no order of the strategy


def close_at_taker(res: RunResult) -> RunResult:
    """``res`` with its end position closed at the final touch plus the taker fee (module doc).
    A flat run, or one without a two-sided final book, is returned as it is (``close_out`` says)."""
    f = res.fills
    pos = float(f["position_qty"][-1]) if len(f) else 0.0
    meta = dict(res.meta)
    bid, ask = meta.get("final_bid_px"), meta.get("final_ask_px")
    mid = meta.get("final_mid_px")
    if pos == 0.0:
        meta["close_out"] = {"closed": False, "why": "flat"}
        return RunResult(f, res.actions, res.marks, meta)
    if not all(isinstance(x, float) and math.isfinite(x) and x > 0 for x in (bid, ask, mid)):
        meta["close_out"] = {"closed": False, "why": "no two-sided book at the end"}
        return RunResult(f, res.actions, res.marks, meta)
    spec = spec_from_meta(meta)
    side = -1 if pos > 0 else 1
    px = bid if side < 0 else ask
    qty = abs(pos)
    rate = float(meta.get("taker_fee_rate") or 0.0)
    fee = rate * abs(spec.value(px)) * qty
    end_ts = max(int(meta.get("end_ts") or 0), int(f["exch_ts"][-1]))
    row = np.zeros(1, f.dtype)
    row["exch_ts"] = row["local_ts"] = end_ts
    row["order_id"] = CLOSE_ORDER_ID
    row["side"], row["maker"], row["px"], row["qty"] = side, 0, px, qty
    row["fee"], row["fee_rate"] = fee, rate
    row["mid_px"] = mid
    row["target_px"] = np.nan  # no intention: all of its cost is gross (mid - px) and fee
    row["position_qty"] = 0.0
    mark = np.zeros(1, res.marks.dtype)
    mark["exch_ts"], mark["mid_px"], mark["position_qty"] = end_ts, mid, 0.0
    # the venue's equity marked pos at V(mid); the close realises V(px) and pays the fee
    cost = pos * (spec.value(mid) - spec.value(px)) + fee
    if isinstance(meta.get("sim_equity"), (int, float)):
        meta["sim_equity"] = float(meta["sim_equity"]) - cost
    meta["close_out"] = {
        "closed": True,
        "position_qty": pos,
        "px": px,
        "fee": fee,
        "cost": cost,
        "rule": "the soak's end position closed at its final touch with the taker fee, booked",
    }
    return RunResult(np.concatenate([f, row]), res.actions, np.concatenate([res.marks, mark]), meta)
