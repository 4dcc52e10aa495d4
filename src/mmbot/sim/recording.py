"""Record buffers of the venue: ACTION and MARK rows (grown by doubling) and the mark rule (a
row whenever the exchange mid changes).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mmbot.records import write_action

from .borrow import borrowed
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


@njit(cache=True, forceinline=True)
def _write_mark(marks, i, ts, mid, position_qty):
    m = marks[i]
    m.exch_ts = ts
    m.mid_px = mid
    m.position_qty = position_qty


@njit(cache=True)
def push_mark(v, ts, mid):
    if v.n_marks >= v.marks.shape[0]:
        v.marks = grow(v.marks)
    _write_mark(borrowed(v.marks), v.n_marks, ts, mid, v.ex_pos)
    v.n_marks += 1


@njit(cache=True)
def maybe_mark(v, ts):
    """A MARK row when the exchange touch moved the mid. Called on most touch changes (~75k per
    30 min of the USD-M market): the venue is read here, not handed to helpers, since each
    hand-over of it costs an atomic reference-count pair."""
    bb, ba = v.xbb, v.xba
    if bb == v.mark_bb and ba == v.mark_ba:
        return
    v.mark_bb = bb
    v.mark_ba = ba
    mid = ladder_mid(bb, ba, v.n_ticks, v.tick_lo, v.tick_units, v.px_scale)
    if mid == mid and mid != v.last_mark_mid:
        v.last_mark_mid = mid
        if v.n_marks >= v.marks.shape[0]:
            v.marks = grow(v.marks)
        _write_mark(borrowed(v.marks), v.n_marks, ts, mid, v.ex_pos)
        v.n_marks += 1
