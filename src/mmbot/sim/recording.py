"""Record buffers of the venue: their append rule (grown by doubling), ACTION and MARK rows and
the mark rule (a row whenever the exchange mid changes).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mmbot.records import write_action

from .state import ladder_mid


@njit(cache=True)
def with_room(buf, n):
    """``buf`` when it has a row ``n``, else a copy twice as long: the append rule of the venue's
    record buffers (fills, actions, marks, responses)."""
    if n < buf.shape[0]:
        return buf
    out = np.zeros(buf.shape[0] * 2, buf.dtype)
    out[: buf.shape[0]] = buf
    return out


@njit(cache=True)
def push_action(v, local_ts, exch_ts, order_id, kind, side, op, reason, px, qty, age_ns):
    v.actions = with_room(v.actions, v.n_actions)
    write_action(
        v.actions[v.n_actions], local_ts, exch_ts, order_id, kind, side, op, reason, px, qty, age_ns
    )
    v.n_actions += 1


@njit(cache=True)
def push_mark(v, ts, mid):
    v.marks = with_room(v.marks, v.n_marks)
    put_mark(v.marks[v.n_marks], ts, mid, v.ex_pos)
    v.n_marks += 1


@njit(cache=True, forceinline=True)
def put_mark(m, ts, mid, position_qty):
    """One MARK row ``m`` (a record of the marks buffer, which must have room)."""
    m.exch_ts = ts
    m.mid_px = mid
    m.position_qty = position_qty


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
