"""The embedded market's event loop (``_advance``): draws the next event, moves the efficient
price and applies a maker join, a maker leaving (cancel, queue-reactive or stale pull), the makers
pulling a side's near book, or a parent market order (a sweep printing maker orders one at a
time, then its impact)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from mmbot.book import ring_deeper, ring_pull, ring_scan, ring_slot
from mmbot.borrow import borrowed as _b
from mmbot.data.synthetic_book import (
    _ask_bot,
    _bid_top,
    _draw_next,
    _ladder_v,
    _latency_ns,
    _maker_lots,
    _pick_level,
    _resil_target,
    _side_slots,
    _thin_factor,
    _trim,
    informed_price,
)
from mmbot.data.synthetic_layout import (
    _EV_ASK_DEPTH,
    _EV_BID_DEPTH,
    _EV_BUY_TRADE,
    _EV_SELL_TRADE,
    _NONE,
    _RESERVE_ROWS,
    F_BOUND,
    F_FAR,
    F_HAWKES,
    F_LAST_SIDE,
    F_MOM,
    F_MOM_MID,
    F_NEAR,
    F_R0,
    F_RESIL_D,
    F_RESIL_G,
    F_SLOW,
    F_STEPS,
    F_SWEEP_LIMIT,
    F_TRANSIENT,
    F_V,
    K_JUMP,
    K_PULL,
    K_SWEEP,
    MAX_PRINTS,
    N_RATES,
    NEAR_LEVELS,
    P_CANCEL_RATE,
    P_DEEP_SPLIT,
    P_EXCESS_WHOLE,
    P_FRONT_KEEP,
    P_HAWKES_BETA,
    P_HAWKES_N,
    P_IMPACT,
    P_IMPACT_CAP,
    P_INFORMED_EDGE,
    P_JUMP_TICKS,
    P_LOT_QTY,
    P_MAKER_LOTS,
    P_MOM_DECAY,
    P_MOM_RATE,
    P_NOISE_MU,
    P_PRINTS_PER_MS,
    P_PULL_DEPLETION,
    P_PULL_HOLD_S,
    P_PULL_LEVELS,
    P_PULL_RATE,
    P_REFILL_WHOLE,
    P_RESIL_DEPLETION,
    P_RESIL_HALF_LIFE_S,
    P_SAME_SIDE,
    P_SIGMA_TICKS,
    P_SLOW_DECAY,
    P_SLOW_TRANSIENT,
    P_STALE_EDGE,
    P_STALE_WHOLE,
    P_SWEEP_REQUOTE,
    P_THIN_BETA,
    P_THIN_CAP,
    P_TICK_PX,
    P_TRANSIENT,
    P_TRANSIENT_DECAY,
    S_BEST_ASK,
    S_BEST_BID,
    S_FRONT_LOTS,
    S_FRONT_PX,
    S_HAS_PENDING,
    S_HOLD_END_NS,
    S_LAST_LOCAL_NS,
    S_PENDING_NS,
    S_RESIL_NULL,
    S_RESIL_T_NS,
    S_SWEEP_LAST,
    S_SWEEP_LOTS,
    S_SWEEP_NLV,
    S_SWEEP_NOISE,
    S_SWEEP_SIDE,
    S_SWEEP_TOUCH0,
    S_T_NS,
)
from mmbot.data.synthetic_rng import (
    _exp1,
    _normal,
    _table_sample,
    _table_sample_below,
    _uniform,
)
from mmbot.events import put_event


@njit(cache=True, inline="always")
def _move_v(P: np.ndarray, fs: np.ndarray, rng: np.ndarray, kind: int, dt_s: float) -> None:
    """The efficient price over the gap to this event: diffusion, a jump when the event is one,
    and the relaxation of the transient displacement of recent sweeps."""
    v = fs[F_V] + P[P_SIGMA_TICKS] * math.sqrt(dt_s) * _normal(rng, fs)
    if kind == K_JUMP:
        # jumps of v are events of their own (Poisson), double-exponential in size
        sz = P[P_JUMP_TICKS] * _exp1(rng)
        v += sz if _uniform(rng) < 0.5 else -sz
    u = fs[F_TRANSIENT]
    if u != 0.0:
        # the transient displacement of recent sweeps relaxes (propagator: impact decays), its
        # slow part at its own rate
        w = fs[F_SLOW]
        du = (u - w) * (1.0 - math.exp(-P[P_TRANSIENT_DECAY] * dt_s))
        if w != 0.0:
            dw = w * (1.0 - math.exp(-P[P_SLOW_DECAY] * dt_s))
            fs[F_SLOW] = w - dw
            du += dw
        v -= du
        fs[F_TRANSIENT] = u - du
    fs[F_V] = v


@njit(cache=True, inline="always")
def _zone_level(
    rng: np.ndarray,
    fs: np.ndarray,
    target: np.ndarray,
    q: np.ndarray,
    ref: int,
    sgn: int,
    slot: int,
    excess: bool,
    g: float,
    ds: np.ndarray,
) -> int:
    """A level drawn by ``_pick_level`` (by missing or ``excess`` queue; ``g`` < 1: missing
    against the depleted targets; ``ds`` its scratch) among the first NEAR_LEVELS levels or the
    deeper ones, the zone chosen in proportion to its total (``fs[F_NEAR + slot]``,
    ``fs[F_FAR + slot]``); -1 if none."""
    kmax = target.shape[0]
    kq = NEAR_LEVELS if kmax > NEAR_LEVELS else kmax
    zone_near = fs[F_NEAR + slot]
    if _uniform(rng) * (zone_near + fs[F_FAR + slot]) < zone_near:
        return _pick_level(rng, target, q, ref, sgn, 0, kq, excess, g, ds)
    return _pick_level(rng, target, q, ref, sgn, kq, kmax, excess, g, ds)


@njit(cache=True, inline="always")
def _maker_join(
    m: tuple, q: np.ndarray, kind: int, emit: bool, at: tuple[int, int], n: int, out: np.ndarray
) -> int:
    """A maker joins the level whose queue is furthest below its target (kind 0 bid, 1 ask);
    returns the rows written so far."""
    P, target, maker_tab, fs, ist, rng, bq, aq, lv, ds = m
    tick = P[P_TICK_PX]
    lot = P[P_LOT_QTY]
    bb = ist[S_BEST_BID]
    ba = ist[S_BEST_ASK]
    # a maker joins the level whose queue is furthest below its target (in proportion)
    sgn = -1 if kind == 0 else 1
    ref = _bid_top(_ladder_v(P, fs), ba) if kind == 0 else _ask_bot(_ladder_v(P, fs), bb)
    depleted = P[P_RESIL_HALF_LIFE_S] > 0.0 or P[P_PULL_HOLD_S] > 0.0
    g = fs[F_RESIL_G + kind] if depleted else 1.0
    k = _zone_level(rng, fs, target, q, ref, sgn, kind, False, g, ds)
    if k >= 0:
        p = ref + sgn * k
        j = ring_slot(p)
        lots = _maker_lots(rng, maker_tab, lot)
        tk = target[k] if g >= 1.0 else float(_resil_target(target, k, g))
        if P[P_REFILL_WHOLE] > 0.0 and tk - q[j] > lots:
            lots = int(tk - q[j])
        q[j] += lots
        best_s, deep_s, lots_s, ev = _side_slots(sgn)
        ist[lots_s] += lots
        best = ist[best_s]
        if best == _NONE or ring_deeper(best, p, sgn):
            ist[best_s] = p
            if best == _NONE:
                ist[deep_s] = p
        if ring_deeper(p, ist[deep_s], sgn):
            ist[deep_s] = p
        if emit:
            t_new, local_ns = at
            n = put_event(out, n, ev, t_new, local_ns, p * tick, q[j] * lot, 0)
    return n


@njit(cache=True, inline="always")
def _maker_leave(
    m: tuple,
    q: np.ndarray,
    kind: int,
    sgn: int,
    emit: bool,
    at: tuple[int, int],
    n: int,
    out: np.ndarray,
) -> int:
    """A maker order leaves (kind 2/3: the cancel hazard or a queue above its target; 6/7: a stale
    pull); returns the rows written so far."""
    P, target, maker_tab, fs, ist, rng, bq, aq, lv, ds = m
    tick = P[P_TICK_PX]
    lot = P[P_LOT_QTY]
    theta = P[P_CANCEL_RATE]
    maker = P[P_MAKER_LOTS]
    bb = ist[S_BEST_BID]
    ba = ist[S_BEST_ASK]
    r = fs[F_R0:]
    # one maker order leaves: any level in proportion to its queue, or the stale touch
    bid = sgn < 0
    best_s, deep_s, lots_s, ev = _side_slots(sgn)
    tot_lots = ist[lots_s]
    best = ist[best_s]
    p = best
    stop = ist[deep_s]
    excess = False
    if p != _NONE and tot_lots > 0 and (kind == 2 or kind == 3):
        # part of this rate is the queue-reactive cancel of queues above their target
        base = theta * tot_lots / maker
        if _uniform(rng) * r[kind] >= base:
            excess = True
            vr = _ladder_v(P, fs)
            ref = _bid_top(vr, ba) if bid else _ask_bot(vr, bb)
            # kind 2/3 -> excess slots 2/3
            k = _zone_level(rng, fs, target, q, ref, sgn, kind, True, 1.0, ds)
            p = ref + sgn * k if k >= 0 else _NONE
        else:
            y = _uniform(rng) * tot_lots
            c = 0.0
            while True:
                c += q[ring_slot(p)]
                if y < c or p == stop:
                    break
                p += sgn
    if p != _NONE and tot_lots > 0:
        j = ring_slot(p)
        if q[j] > 0:
            lots = _maker_lots(rng, maker_tab, lot)
            if lots > q[j]:
                lots = q[j]
            if excess and (lots > q[j] - target[abs(p - ref)] or P[P_EXCESS_WHOLE] > 0.0):
                lots = max(q[j] - int(target[abs(p - ref)]), 1)
            elif kind >= 6 and P[P_STALE_WHOLE] > 0.0:
                lots = q[j]
            q[j] -= lots
            ist[lots_s] -= lots
            side = 1 if sgn > 0 else 0
            if q[j] == 0 and P[P_FRONT_KEEP] > 0.0 and ist[S_FRONT_PX + side] == p:
                ist[S_FRONT_LOTS + side] = 0  # the level is gone, and the rest at its front
            if emit:
                t_new, local_ns = at
                n = put_event(out, n, ev, t_new, local_ns, p * tick, q[j] * lot, 0)
            if q[j] == 0 and p == best:
                ist[best_s] = ring_scan(q, p + sgn, ist[deep_s], sgn)
    return n


@njit(cache=True, inline="always")
def _pull_side(
    m: tuple, q: np.ndarray, sgn: int, emit: bool, at: tuple[int, int], n: int, out: np.ndarray
) -> int:
    """The makers pull side sgn's near book (bids -1, asks 1; K_PULL): the side enters the
    depleted state a sweep leaves for slow resilience (D = P_PULL_DEPLETION from now, halving
    every half-life; the refill then rebuilds it as after a sweep) or, with P_PULL_HOLD_S > 0, is
    held at D for an exponential time (``_side_gain``, ``_hold_recheck``), and each level within
    P_PULL_LEVELS of its touch is cancelled down to its depleted target, one row per level that
    changes. The touch keeps at least one lot: emptied, the touch would retreat and the spread
    widen (depleting on every retreat of the touch tripled the spread, see docs/data.md), while
    what the captures show is a thin near book at an unchanged touch. Returns the rows written."""
    P, target, maker_tab, fs, ist, rng, bq, aq, lv, ds = m
    side = 0 if sgn < 0 else 1
    if P[P_PULL_HOLD_S] > 0.0:
        end = ist[S_T_NS] + int(_exp1(rng) * P[P_PULL_HOLD_S] * 1e9)
        if end > ist[S_HOLD_END_NS + side]:
            ist[S_HOLD_END_NS + side] = end  # a pull during a hold keeps the later end
    else:
        fs[F_RESIL_D + side] = P[P_PULL_DEPLETION]
        ist[S_RESIL_T_NS + side] = ist[S_T_NS]
    g = 1.0 - P[P_PULL_DEPLETION]
    best_s, deep_s, lots_s, ev = _side_slots(sgn)
    p = ist[best_s]
    if p == _NONE:
        return n
    vr = _ladder_v(P, fs)
    ref = _bid_top(vr, ist[S_BEST_ASK]) if sgn < 0 else _ask_bot(vr, ist[S_BEST_BID])
    kmax = target.shape[0]
    stop = ist[deep_s]
    for i in range(int(P[P_PULL_LEVELS])):
        j = ring_slot(p)
        k = (p - ref) * sgn  # the level's place on the makers' ladder (< 0: a stale level)
        keep = _resil_target(target, k, g) if 0 <= k < kmax else 0
        if i == 0 and keep < 1:
            keep = 1
        if q[j] > keep:
            ist[lots_s] -= q[j] - keep
            q[j] = keep
            if emit:
                t_new, local_ns = at
                n = put_event(out, n, ev, t_new, local_ns, p * P[P_TICK_PX], keep * P[P_LOT_QTY], 0)
        if p == stop:
            break
        p += sgn
    return n


@njit(cache=True, inline="always")
def _noise_side(P: np.ndarray, fs: np.ndarray, rng: np.ndarray) -> bool:
    """A noise parent's side (True: buy): clustered flow keeps its direction with probability
    same_side, else a fair coin."""
    same = _uniform(rng) < P[P_SAME_SIDE]
    return fs[F_LAST_SIDE] > 0 if same else _uniform(rng) < 0.5


@njit(cache=True, inline="always")
def _noise_kind(x: float, acc: float, mu: float, hx: float, cap: float) -> tuple[int, bool]:
    """``x`` past the other rates (their sum ``acc``): a noise parent (N_RATES) or nothing (-1,
    the Hawkes part's decay), and whether it is a baseline candidate of the takers' thin-book
    factor (``cap`` > 0: the baseline drawn at ``cap`` times its rate; the excitation unscaled)."""
    if cap > 0.0:
        if x < acc + mu * cap:
            return N_RATES, True
        return (N_RATES if x < acc + mu * cap + hx else -1), False
    return (N_RATES if x < acc + mu + hx else -1), False


@njit(cache=True, inline="always")
def _mom_kind(x: float, acc: float, fs: np.ndarray) -> tuple[int, int, float]:
    """``x`` past the other rates (their sum ``acc``) against the momentum takers' decayed
    intensities: (N_RATES, side) for a momentum taker of that side, else (-1, 0); and ``acc``
    past them."""
    acc += fs[F_MOM]
    if x < acc:
        return N_RATES, 1, acc
    acc += fs[F_MOM + 1]
    if x < acc:
        return N_RATES, -1, acc
    return -1, 0, acc


@njit(cache=True, inline="always")
def _thin_side(
    P: np.ndarray, fs: np.ndarray, ist: np.ndarray, rng: np.ndarray, bq: np.ndarray, aq: np.ndarray
) -> int:
    """A noise candidate under the takers' thin-book factor: its side (+1 buy, -1 sell), kept
    with probability factor / cap of the side it takes, else 0 (a null event)."""
    buy = _noise_side(P, fs, rng)
    f = _thin_factor(P, ist, aq, 1) if buy else _thin_factor(P, ist, bq, -1)
    if _uniform(rng) * P[P_THIN_CAP] >= f:
        return 0
    return 1 if buy else -1


@njit(cache=True, inline="always")
def _sweep_start(
    P: np.ndarray,
    parent_tab: np.ndarray,
    fs: np.ndarray,
    ist: np.ndarray,
    rng: np.ndarray,
    kind: int,
    side: int,
    chase: bool,
) -> None:
    """A new parent market order: noise (side ``side``, +1 buy / -1 sell, drawn when 0; no limit)
    or informed (limit v -/+ edge). ``chase``: a momentum taker's noise order, which excites no
    Hawkes flow and moves v by no impact (it trades on a move the price has already made)."""
    if kind == N_RATES:
        buy = side > 0 if side != 0 else _noise_side(P, fs, rng)
        limit_ticks = 1e300 if buy else -1e300
        # self-excitation among noise traders only: an informed order exciting noise
        # flow, whose permanent impact feeds the informed again, would be a runaway loop
        if not chase:
            fs[F_HAWKES] += P[P_HAWKES_N] * P[P_HAWKES_BETA]
        fs[F_LAST_SIDE] = 1.0 if buy else -1.0
    else:
        buy = kind == 4
        f = informed_price(fs)
        limit_ticks = f - P[P_INFORMED_EDGE] if buy else f + P[P_INFORMED_EDGE]
    lots = int(_table_sample(rng, parent_tab) / P[P_LOT_QTY] + 0.5)
    ist[S_SWEEP_LOTS] = lots if lots > 0 else 1
    ist[S_SWEEP_SIDE] = 1 if buy else -1
    ist[S_SWEEP_NOISE] = 1 if kind == N_RATES and not chase else 0
    fs[F_SWEEP_LIMIT] = limit_ticks
    touch0 = ist[S_BEST_ASK] if buy else ist[S_BEST_BID]
    ist[S_SWEEP_TOUCH0] = touch0
    ist[S_SWEEP_LAST] = touch0
    ist[S_SWEEP_NLV] = 0


@njit(cache=True, inline="always")
def _next_order(
    P: np.ndarray,
    maker_tab: np.ndarray,
    ist: np.ndarray,
    rng: np.ndarray,
    q_lots: int,
    p: int,
    sgn: int,
) -> int:
    """Lots of the maker order the sweep's next print at level ``p`` (holding ``q_lots``) takes
    from: with P_FRONT_KEEP the rest a taker left at the front of that level, else a new order
    from the maker table (with P_DEEP_SPLIT, at a level past the sweep's first that holds less
    than the order drawn, an order it can hold: a deep level holds orders no larger than itself,
    the last one the rest)."""
    lot = P[P_LOT_QTY]
    side = 1 if sgn > 0 else 0
    if P[P_FRONT_KEEP] > 0.0 and ist[S_FRONT_LOTS + side] > 0 and ist[S_FRONT_PX + side] == p:
        return ist[S_FRONT_LOTS + side]
    take = _maker_lots(rng, maker_tab, lot)
    if take > q_lots and P[P_DEEP_SPLIT] > 0.0 and p != ist[S_SWEEP_TOUCH0]:
        take = max(int(_table_sample_below(rng, maker_tab, q_lots * lot) / lot + 0.5), 1)
    return take


@njit(cache=True, inline="always")
def _sweep_prints(
    m: tuple, emit: bool, at: tuple[int, int], n: int, out: np.ndarray
) -> tuple[int, bool]:
    """One ms of the sweep in progress: maker orders filled one at a time (a print each) up to
    the engine's prints per ms; returns (rows written, whether the sweep goes on next ms)."""
    P, target, maker_tab, fs, ist, rng, bq, aq, lv, ds = m
    t_new, local_ns = at
    tick = P[P_TICK_PX]
    lot = P[P_LOT_QTY]
    kmax = target.shape[0]
    per_ms = int(P[P_PRINTS_PER_MS])
    if per_ms <= 0 or per_ms > MAX_PRINTS:
        per_ms = MAX_PRINTS
    buy = ist[S_SWEEP_SIDE] > 0
    limit_ticks = fs[F_SWEEP_LIMIT]
    lots = ist[S_SWEEP_LOTS]
    nlv = ist[S_SWEEP_NLV]
    q = aq if buy else bq
    sgn = 1 if buy else -1  # the side it takes from: the asks for a buy
    best_s, deep_s, lots_s, _ = _side_slots(sgn)
    keep = P[P_FRONT_KEEP] > 0.0
    side = 1 if buy else 0
    prints = 0
    more = False
    while lots > 0:
        p = ist[best_s]
        if p == _NONE or (buy and p > limit_ticks) or (not buy and p < limit_ticks):
            break
        if nlv == 0 or lv[nlv - 1] != p:
            if nlv >= kmax:
                break
            lv[nlv] = p
            nlv += 1
        if prints >= per_ms:
            more = True  # the engine's ms is full: the rest prints in the next ms
            break
        j = ring_slot(p)
        ist[S_SWEEP_LAST] = p
        # fill the level's maker orders one at a time (one print each)
        while lots > 0 and q[j] > 0 and prints < per_ms:
            order = _next_order(P, maker_tab, ist, rng, q[j], p, sgn)
            take = order
            if take > lots:
                take = lots
            if take > q[j]:
                take = q[j]
            q[j] -= take
            if keep:
                # what the taker left of the order stays at the front (none once the level is gone)
                ist[S_FRONT_PX + side] = p
                ist[S_FRONT_LOTS + side] = order - take if q[j] > 0 else 0
            lots -= take
            prints += 1
            if emit:
                n = put_event(
                    out,
                    n,
                    _EV_BUY_TRADE if buy else _EV_SELL_TRADE,
                    t_new,
                    local_ns,
                    p * tick,
                    take * lot,
                    0,
                )
            ist[lots_s] -= take
        if q[j] == 0:
            ist[best_s] = ring_scan(q, p + sgn, ist[deep_s], sgn)
    ist[S_SWEEP_LOTS] = lots
    ist[S_SWEEP_NLV] = nlv
    return n, more


@njit(cache=True, inline="always")
def _sweep_end(m: tuple, emit: bool, at: tuple[int, int], n: int, out: np.ndarray) -> int:
    """The sweep is over: one book row per level it touched, then a noise sweep's impact on v."""
    P, target, maker_tab, fs, ist, rng, bq, aq, lv, ds = m
    t_new, local_ns = at
    tick = P[P_TICK_PX]
    lot = P[P_LOT_QTY]
    buy = ist[S_SWEEP_SIDE] > 0
    nlv = ist[S_SWEEP_NLV]
    q = aq if buy else bq
    # the sweep is over: one book row per level it touched, after its last print
    if emit:
        for i in range(nlv):
            p = lv[i]
            n = put_event(
                out,
                n,
                _EV_ASK_DEPTH if buy else _EV_BID_DEPTH,
                t_new,
                local_ns,
                p * tick,
                q[ring_slot(p)] * lot,
                0,
            )
    touch0 = ist[S_SWEEP_TOUCH0]
    if P[P_RESIL_HALF_LIFE_S] > 0.0 and (ist[S_BEST_ASK] if buy else ist[S_BEST_BID]) != touch0:
        # it emptied its first level: the swept side's level targets are depleted
        side = 1 if buy else 0
        fs[F_RESIL_D + side] = P[P_RESIL_DEPLETION]
        ist[S_RESIL_T_NS + side] = t_new
    if ist[S_SWEEP_NOISE] == 1 and touch0 != _NONE:
        # a noise sweep's move of the touch is partly permanent: the efficient price
        # follows it by the permanence ratio (the rest reverts as makers refill)
        touch1 = ist[S_BEST_ASK] if buy else ist[S_BEST_BID]
        if touch1 == _NONE:
            p_last = ist[S_SWEEP_LAST]
            touch1 = p_last + 1 if buy else p_last - 1
        # (a further transient share displaces the book and decays). Impact is concave
        # in the sweep's reach: it saturates at the cap's scale (captures: a sweep 2-4 bps
        # deep moves the price about as much as one 0.5-1 bps deep)
        move = float(touch1 - touch0)
        cap = P[P_IMPACT_CAP]
        if cap > 0.0:
            sat = cap * (1.0 - math.exp(-abs(move) / cap))
            move = sat if move > 0 else -sat
        v = fs[F_V] + (P[P_IMPACT] + P[P_TRANSIENT] + P[P_SLOW_TRANSIENT]) * move
        fs[F_TRANSIENT] += (P[P_TRANSIENT] + P[P_SLOW_TRANSIENT]) * move
        fs[F_SLOW] += P[P_SLOW_TRANSIENT] * move
        fs[F_V] = v
        if P[P_SWEEP_REQUOTE] > 0.0:
            n = _requote(m, buy, emit, at, n, out)
    ist[S_SWEEP_SIDE] = 0
    return n


@njit(cache=True, inline="always")
def _requote(m: tuple, buy: bool, emit: bool, at: tuple[int, int], n: int, out: np.ndarray) -> int:
    """After a noise sweep moved v: the swept side's makers pull at once every level
    that v has passed by more than the stale edge (one row each, zero quantity); returns the
    rows written so far. The edge leaves out the ladder hysteresis the order-by-order stale
    pulls wait for: with it (USD-M, 4 ticks) the mid stopped short of v after each sweep and the
    100 ms print markout stayed ~0.72x the capture's (0.83x without it, 600 s x 2 markets)."""
    P, target, maker_tab, fs, ist, rng, bq, aq, lv, ds = m
    t_new, local_ns = at
    v = fs[F_V]
    tick = P[P_TICK_PX]
    edge = P[P_STALE_EDGE]
    q = aq if buy else bq
    sgn = 1 if buy else -1  # the swept side: the asks for a buy
    best_s, deep_s, lots_s, ev = _side_slots(sgn)
    lim = v - edge if buy else v + edge
    p = ist[best_s]
    while p != _NONE and ring_deeper(lim, p, sgn):
        ist[lots_s] -= ring_pull(q, p)
        if emit:
            n = put_event(out, n, ev, t_new, local_ns, p * tick, 0.0, 0)
        p = ring_scan(q, p + sgn, ist[deep_s], sgn)
    ist[best_s] = p
    return n


@njit(cache=True, inline="always")
def _mom_excite(P: np.ndarray, fs: np.ndarray, ist: np.ndarray) -> None:
    """A move of the mid raises the momentum takers' intensity on the side it moved toward, by
    P_MOM_RATE per tick moved (P_MOM_RATE > 0); a one-sided book leaves the last mid as it was."""
    bb = ist[S_BEST_BID]
    ba = ist[S_BEST_ASK]
    if bb == _NONE or ba == _NONE:
        return
    mid2 = float(bb + ba)
    d = mid2 - fs[F_MOM_MID]
    if d != 0.0:
        if fs[F_MOM_MID] != 0.0:
            fs[F_MOM + (0 if d > 0.0 else 1)] += P[P_MOM_RATE] * 0.5 * abs(d)
        fs[F_MOM_MID] = mid2


@njit(cache=True, nogil=True)  # the fit runs two markets in threads
def _advance(
    P: np.ndarray,
    target: np.ndarray,
    maker_tab: np.ndarray,
    parent_tab: np.ndarray,
    lat_tab: np.ndarray,
    state: tuple,
    lv: np.ndarray,
    ds: np.ndarray,
    t_end_ns: int,
    emit: bool,
    out: np.ndarray,
    lat_t: np.ndarray,
) -> int:
    """Run the market until the next event would be at or after ``t_end_ns`` or the output
    buffer is nearly full. Returns the number of rows written (0 when ``emit`` is False).
    ``state``: the market's arrays (synthetic._Market.state); ``lv`` and ``ds``: scratch for a
    sweep's levels and a level draw's differences (``_pick_level``). ``lat_t`` of more than one
    element records the exchange time of every feed-latency draw (``lat_t[0]`` counts them; the
    run also stops when it is full); the draws are the same."""
    # the caller holds every array for the whole call: borrowed views spare the inlined per-event
    # functions (each takes the arrays anew) an atomic reference-count pair per array per call
    P, target, maker_tab, parent_tab = _b(P), _b(target), _b(maker_tab), _b(parent_tab)
    lat_tab, lv, ds, out, lat_t = _b(lat_tab), _b(lv), _b(ds), _b(out), _b(lat_t)
    fs, ist, rng, bq, aq = state
    fs, ist, rng, bq, aq = _b(fs), _b(ist), _b(rng), _b(bq), _b(aq)
    cap = out.shape[0] - _RESERVE_ROWS
    rec_cap = lat_t.shape[0] - 1
    n = 0
    beta = P[P_HAWKES_BETA]
    mu = P[P_NOISE_MU]
    thin = P[P_THIN_BETA] > 0.0
    pull = P[P_PULL_RATE]
    mom = P[P_MOM_RATE] > 0.0
    r = fs[F_R0:]
    # the arrays the per-event functions read, as one argument that each unpacks at its top with
    # these names (a NamedTuple read field by field instead measured 10-20 % slower generation)
    m = (P, target, maker_tab, fs, ist, rng, bq, aq, lv, ds)
    while True:
        if ist[S_HAS_PENDING] == 0:
            _draw_next(P, target, fs, ist, rng, bq, aq)
        if ist[S_PENDING_NS] >= t_end_ns or n >= cap or (rec_cap > 0 and lat_t[0] >= rec_cap):
            return n
        t_new = ist[S_PENDING_NS]
        ist[S_HAS_PENDING] = 0
        dt_s = (t_new - ist[S_T_NS]) * 1e-9
        ist[S_T_NS] = t_new
        hx = fs[F_HAWKES] * math.exp(-beta * dt_s)
        fs[F_HAWKES] = hx
        if mom:
            fm = math.exp(-P[P_MOM_DECAY] * dt_s)
            fs[F_MOM] *= fm
            fs[F_MOM + 1] *= fm
        cand = False
        side = 0  # a noise parent's side when set (+1 buy / -1 sell; 0: drawn)
        chase = False  # a momentum taker's order
        if ist[S_SWEEP_SIDE] != 0:
            # the engine is still printing a sweep: its next ms (nothing else happens meanwhile)
            kind = K_SWEEP
        elif ist[S_RESIL_NULL] == 1:
            # a re-evaluation of a depleted side's intensities (slow resilience): nothing happens
            ist[S_RESIL_NULL] = 0
            kind = -1
            fs[F_STEPS] += 1.0
        else:
            # ---- which event: the rates drawn with, the Hawkes part thinned to its decayed value
            x = _uniform(rng) * fs[F_BOUND]
            kind = -1
            acc = 0.0
            for i in range(N_RATES):
                acc += r[i]
                if x < acc:
                    kind = i
                    break
            if kind < 0 and pull > 0.0:
                acc += pull
                if x < acc:
                    kind = K_PULL
            if kind < 0 and mom:
                kind, side, acc = _mom_kind(x, acc, fs)
                chase = kind == N_RATES
            if kind < 0:
                kind, cand = _noise_kind(x, acc, mu, hx, P[P_THIN_CAP] if thin else 0.0)
            fs[F_STEPS + 1 + kind] += 1.0
        _move_v(P, fs, rng, kind, dt_s)
        if cand:
            side = _thin_side(P, fs, ist, rng, bq, aq)
            if side == 0:
                # a rejected candidate: counted as a null event
                fs[F_STEPS + 1 + N_RATES] -= 1.0
                fs[F_STEPS] += 1.0
                kind = -1
        if kind < 0 or kind == K_JUMP:
            continue
        local_ns = 0
        if emit:
            local_ns = t_new + _latency_ns(P, lat_tab, fs, ist, rng, t_new)
            if local_ns < ist[S_LAST_LOCAL_NS]:
                local_ns = ist[S_LAST_LOCAL_NS]
            ist[S_LAST_LOCAL_NS] = local_ns
            if rec_cap > 0:
                lat_t[0] += 1
                lat_t[lat_t[0]] = t_new
        at = (t_new, local_ns)  # the event's exchange and local time, as its rows carry them
        # a maker event is compiled once per side with the side given as a literal (its queue,
        # kind or sgn): the side's ist slots and comparisons then fold to constants
        if kind == 0:
            n = _maker_join(m, bq, 0, emit, at, n, out)
        elif kind == 1:
            n = _maker_join(m, aq, 1, emit, at, n, out)
        elif kind == 2 or kind == 6:
            n = _maker_leave(m, bq, kind, -1, emit, at, n, out)
        elif kind == 3 or kind == 7:
            n = _maker_leave(m, aq, kind, 1, emit, at, n, out)
        elif kind == K_PULL:
            # the side a fair coin
            if _uniform(rng) < 0.5:
                n = _pull_side(m, bq, -1, emit, at, n, out)
            else:
                n = _pull_side(m, aq, 1, emit, at, n, out)
        else:
            # a parent market order (K_SWEEP: the next ms of a sweep in progress)
            if kind != K_SWEEP:
                _sweep_start(P, parent_tab, fs, ist, rng, kind, side, chase)
            n, more = _sweep_prints(m, emit, at, n, out)
            if more:
                ist[S_PENDING_NS] = t_new + 1_000_000
                ist[S_HAS_PENDING] = 1
                continue
            n = _sweep_end(m, emit, at, n, out)
        # ---- trim levels that fell too far from the efficient price ----------------------------
        n = _trim(
            _ladder_v(P, fs),
            target.shape[0],
            emit,
            P[P_TICK_PX],
            P[P_LOT_QTY],
            t_new,
            local_ns,
            ist,
            bq,
            aq,
            n,
            out,
        )
        if mom:
            _mom_excite(P, fs, ist)
