"""The response queue: exchange -> local. A response is queued with the response latency
(per order, never overtaking an earlier one) and delivered to the local view (status, price,
leaves, position and cash as the strategy learns them).
"""

from __future__ import annotations

from numba import njit

from .codes import (
    I64_MAX,
    R_ACK_MODIFY,
    R_ACK_NEW,
    R_CANCELLED,
    R_EXPIRED,
    R_FILL,
    R_REJECT,
    REQ_NEW,
    REQ_NONE,
    ST_CANCELLED,
    ST_EXPIRED,
    ST_FILLED,
    ST_LIVE,
    ST_PENDING_NEW,
    ST_REJECTED,
)
from .latency import (
    response_latency,
)
from .recording import (
    with_room,
)
from .state import (
    contract_value,
)


@njit(cache=True)
def push_response(v, s, ex_ts, kind, clears_req, fill_px, fill_qty, fee):
    o = v.orders[s]
    rt = ex_ts + response_latency(v, ex_ts)
    if rt < o.last_resp_ts:
        rt = o.last_resp_ts  # responses of one order never overtake each other
    o.last_resp_ts = rt
    v.resp = with_room(v.resp, v.n_resp)
    r = v.resp[v.n_resp]
    r.ts = rt
    r.seq = v.resp_seq
    r.slot = s
    r.order_id = o.order_id
    r.kind = kind
    r.status = o.ex_status
    r.clears_req = clears_req
    r.px = o.ex_px
    r.qty = o.req_qty if kind == R_ACK_MODIFY else o.qty
    r.leaves_qty = o.ex_leaves_qty
    r.fill_px = fill_px
    r.fill_qty = fill_qty
    r.fee = fee
    v.resp_seq += 1
    v.n_resp += 1
    o.n_resp_pending += 1
    if rt < v.next_resp_ts:
        v.next_resp_ts = rt
    return rt


@njit(cache=True)
def apply_response(v):
    """Deliver the earliest response to the local view (ties: insertion order)."""
    best = -1
    bt = I64_MAX
    bseq = I64_MAX
    for k in range(v.n_resp):
        r = v.resp[k]
        if r.ts < bt or (r.ts == bt and r.seq < bseq):
            bt = r.ts
            bseq = r.seq
            best = k
    r = v.resp[best]
    s = r.slot
    o = v.orders[s]
    o.n_resp_pending -= 1
    if o.order_id == r.order_id:
        kind = r.kind
        if kind == R_FILL:
            side = o.side
            v.lo_pos += side * r.fill_qty
            v.lo_cash -= side * contract_value(v, r.fill_px) * r.fill_qty + r.fee
            v.lo_fills += 1
            o.exec_qty += r.fill_qty
            o.leaves_qty = r.leaves_qty
            if r.status == ST_FILLED:
                o.status = ST_FILLED
            elif o.status == ST_PENDING_NEW and r.status == ST_LIVE:
                o.status = ST_LIVE
        elif kind == R_ACK_NEW:
            o.status = ST_LIVE
            o.leaves_qty = r.leaves_qty
            o.px = r.px
        elif kind == R_ACK_MODIFY:
            o.px = r.px
            o.qty = r.qty
            o.leaves_qty = r.leaves_qty
        elif kind == R_CANCELLED:
            o.status = ST_CANCELLED
            o.leaves_qty = 0.0
        elif kind == R_EXPIRED:
            o.status = ST_EXPIRED
            o.leaves_qty = 0.0
        elif kind == R_REJECT and (o.req == REQ_NEW or r.status == ST_REJECTED):
            o.status = ST_REJECTED
            o.leaves_qty = 0.0
        if r.clears_req and o.req != REQ_NONE:
            o.req = REQ_NONE
            v.n_inflight -= 1
    # remove by moving the last entry here (selection is by (ts, seq), so order is irrelevant)
    v.n_resp -= 1
    if best != v.n_resp:
        v.resp[best] = v.resp[v.n_resp]
    t = I64_MAX
    for k in range(v.n_resp):
        if v.resp[k].ts < t:
            t = v.resp[k].ts
    v.next_resp_ts = t
    return bt
