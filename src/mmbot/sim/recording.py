"""Record buffers of the venue: ACTION and MARK rows (grown by doubling) and the mark rule (a
row whenever the exchange mid changes).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mmbot.records import write_action

from .state import ladder_mid


@njit(cache=True)
def grow(arr):
    out = np.zeros(arr.shape[0] * 2, arr.dtype)
    out[: arr.shape[0]] = arr
    return out


@njit(cache=True)
def push_action(v, local_ts, exch_ts, order_id, kind, side, op, reason, px, qty, age_ns):
    if v.n_actions >= v.actions.shape[0]:
        v.actions = grow(v.actions)
    write_action(
        v.actions[v.n_actions], local_ts, exch_ts, order_id, kind, side, op, reason, px, qty, age_ns
    )
    v.n_actions += 1


@njit(cache=True)
def push_mark(v, ts, mid):
    if v.n_marks >= v.marks.shape[0]:
        v.marks = grow(v.marks)
    m = v.marks[v.n_marks]
    m.exch_ts = ts
    m.mid_px = mid
    m.position_qty = v.ex_pos
    v.n_marks += 1


@njit(cache=True)
def maybe_mark(v, ts):
    """A MARK row when the exchange touch moved the mid. Called on most touch changes (~75k per
    30 min of the USD-M market): the mid comes from the tick fields (`ladder_mid`), not through
    `exch_mid` / `mid_of` / `px_of`, each hand-over of the venue an atomic reference-count pair."""
    bb, ba = v.xbb, v.xba
    if bb == v.mark_bb and ba == v.mark_ba:
        return
    v.mark_bb = bb
    v.mark_ba = ba
    mid = ladder_mid(bb, ba, v.n_ticks, v.tick_lo, v.tick_units, v.px_scale)
    if mid == mid and mid != v.last_mark_mid:
        v.last_mark_mid = mid
        push_mark(v, ts, mid)
