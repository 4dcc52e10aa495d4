"""The embedded market's book mechanics on ``mmbot.book``'s ring (the storage: slots, scans,
pulls): emitting rows, stale levels and the makers' ladder, the queue-reactive zone sums, the next
event's intensities and time (``_draw_next``), feed latency, trimming far levels and the opening
snapshot.

What runs per event is inlined into the event loop (``inline="always"``): a compiled call hands
its arrays over with atomic reference-count updates, which cost more than these small functions'
work (before, about half of the generation's time was spent in them)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from mmbot.book import ring_deeper, ring_lots, ring_pull, ring_scan, ring_slot
from mmbot.data.synthetic_layout import (
    _EV_ASK_DEPTH,
    _EV_ASK_SNAP,
    _EV_BID_DEPTH,
    _EV_BID_SNAP,
    _NONE,
    F_BOUND,
    F_FAR,
    F_HAWKES,
    F_LAT_Z,
    F_MOM,
    F_NEAR,
    F_R0,
    F_RESIL_D,
    F_RESIL_G,
    F_SLOW,
    F_TRANSIENT,
    F_V,
    F_VREF,
    FAR_EVERY,
    FAR_SHIFT,
    K_JUMP,
    N_RATES,
    NEAR_LEVELS,
    P_CANCEL_RATE,
    P_EXCESS_RATE,
    P_INFORMED_EDGE,
    P_INFORMED_RATE,
    P_JUMP_RATE,
    P_LAT_TAU_S,
    P_LOT_QTY,
    P_MAKER_LOTS,
    P_MOM_RATE,
    P_NOISE_MU,
    P_PULL_DEPLETION,
    P_PULL_HOLD_S,
    P_PULL_RATE,
    P_REF_HYST,
    P_REFILL_RATE,
    P_RESIL_DEPLETION,
    P_RESIL_HALF_LIFE_S,
    P_RESIL_RETREAT,
    P_STALE_DEPTH,
    P_STALE_EDGE,
    P_STALE_RATE,
    P_STALE_WHOLE,
    P_THIN_BETA,
    P_THIN_CAP,
    P_THIN_LEVELS,
    P_THIN_TARGET_LOTS,
    P_TICK_PX,
    PICK_BLOCK,
    RESIL_CHECK_MIN_NS,
    RESIL_CHECKS_PER_HALF_LIFE,
    RING_TICKS,
    S_BEST_ASK,
    S_BEST_BID,
    S_FAR_AGE,
    S_FAR_BOT,
    S_FAR_TOP,
    S_HAS_PENDING,
    S_HI_ASK,
    S_HOLD_END_NS,
    S_LAST_LOCAL_NS,
    S_LAT_T_NS,
    S_LO_BID,
    S_PENDING_NS,
    S_QA_LOTS,
    S_QB_LOTS,
    S_RESIL_NULL,
    S_RESIL_T_NS,
    S_RESIL_TOUCH,
    S_T_NS,
)
from mmbot.data.synthetic_rng import (
    _exp1,
    _normal,
    _table_sample,
    _uniform,
)
from mmbot.events import put_event


@njit(cache=True, inline="always")
def _side_slots(sgn: int) -> tuple[int, int, int, int]:
    """The ``ist`` slots of a side (touch, deepest level, total lots) and its depth event: the bid
    side for sgn -1, the ask side for sgn 1."""
    if sgn < 0:
        return S_BEST_BID, S_LO_BID, S_QB_LOTS, _EV_BID_DEPTH
    return S_BEST_ASK, S_HI_ASK, S_QA_LOTS, _EV_ASK_DEPTH


@njit(cache=True, inline="always")
def _stale_lots(q: np.ndarray, touch: int, stop: int, edge: float, sgn: int) -> float:
    """Lots resting on the wrong side of ``edge`` (bids above it: sgn -1; asks below: sgn 1),
    from the touch inward."""
    if touch == _NONE:
        return 0.0
    tot = 0.0
    p = touch
    while p > edge if sgn < 0 else p < edge:
        tot += q[ring_slot(p)]
        if p == stop:
            break
        p += sgn
    return tot


@njit(cache=True, inline="always")
def _stale_levels(q: np.ndarray, touch: int, stop: int, edge: float, sgn: int) -> float:
    """Non-empty levels on the wrong side of ``edge`` (as ``_stale_lots``), from the touch inward."""
    if touch == _NONE:
        return 0.0
    tot = 0.0
    p = touch
    while p > edge if sgn < 0 else p < edge:
        if q[ring_slot(p)] > 0:
            tot += 1.0
        if p == stop:
            break
        p += sgn
    return tot


@njit(cache=True, inline="always")
def _ladder_v(P: np.ndarray, fs: np.ndarray) -> float:
    """The price the makers' ladder is centred on: v, re-centred only on moves past P_REF_HYST."""
    v = fs[F_V]
    if abs(v - fs[F_VREF]) > P[P_REF_HYST] or P[P_REF_HYST] <= 0.0:
        fs[F_VREF] = v
    return fs[F_VREF]


@njit(cache=True)
def _bid_top(v: float, ba: int) -> int:
    top = int(math.ceil(v)) - 1
    if ba != _NONE and top > ba - 1:
        top = ba - 1
    return top


@njit(cache=True)
def _ask_bot(v: float, bb: int) -> int:
    bot = int(math.floor(v)) + 1
    if bb != _NONE and bot < bb + 1:
        bot = bb + 1
    return bot


@njit(cache=True, inline="always")
def _target_lots(target: np.ndarray, k: int) -> int:
    """Level k's target (k >= 0), whole lots. The index is unsigned: with a signed one numba
    adds the negative-index wrap, and the level walks then gathered their targets element by
    element instead of loading them in a row."""
    return np.int64(target[np.uint64(k)])


@njit(cache=True, inline="always")
def _zone_sums(
    target: np.ndarray, q: np.ndarray, ref: int, sgn: int, k0: int, k1: int
) -> tuple[float, float]:
    """(missing, excess) queue vs target over levels k0..k1-1 counted from ``ref``. Targets and
    queues are whole lots (``model_arrays`` rounds the targets), so the sums are exact whole
    numbers, added here as integers (a short dependency chain, unlike float additions)."""
    gap = 0
    ex = 0
    for k in range(k0, k1):
        d = _target_lots(target, k) - q[ring_slot(ref + sgn * k)]
        if d > 0:
            gap += d
        else:
            ex -= d
    return float(gap), float(ex)


@njit(cache=True, inline="always")
def _resil_target(target: np.ndarray, k: int, g: float) -> int:
    """Level k's depleted target, whole lots: target x g, rounded (g = 1 - D, slow resilience;
    k >= 0, an unsigned index as in ``_target_lots``)."""
    return np.int64(target[np.uint64(k)] * g + 0.5)


@njit(cache=True, inline="always")
def _zone_sums_resil(
    target: np.ndarray, q: np.ndarray, ref: int, sgn: int, k0: int, k1: int, g: float
) -> tuple[float, float]:
    """``_zone_sums`` with the missing queue counted against the depleted target (x ``g``) and
    the excess against the full one: a depleted side is rebuilt slowly, and what the sweep did
    not take is not pulled."""
    gap = 0
    ex = 0
    for k in range(k0, k1):
        qk = q[ring_slot(ref + sgn * k)]
        full = _target_lots(target, k)
        if qk > full:
            ex += qk - full
        else:
            tk = _resil_target(target, k, g)
            if tk > qk:
                gap += tk - qk
    return float(gap), float(ex)


@njit(cache=True, inline="always")
def _resil_gain(P: np.ndarray, fs: np.ndarray, ist: np.ndarray, side: int) -> float:
    """1 - D of a side (0 bids, 1 asks) now: D halves every P_RESIL_HALF_LIFE_S from its value
    at the last depleting sweep; below 1e-6 it is dropped (the targets are whole again)."""
    d0 = fs[F_RESIL_D + side]
    if d0 <= 0.0:
        return 1.0
    age_s = (ist[S_T_NS] - ist[S_RESIL_T_NS + side]) * 1e-9
    d = d0 * math.exp(-math.log(2.0) * age_s / P[P_RESIL_HALF_LIFE_S])
    if d < 1e-6:
        fs[F_RESIL_D + side] = 0.0
        return 1.0
    return 1.0 - d


@njit(cache=True, inline="always")
def _side_gain(P: np.ndarray, fs: np.ndarray, ist: np.ndarray, side: int) -> float:
    """1 - D of a side now: slow resilience's (``_resil_gain``, when on), and while a pull holds
    the side (P_PULL_HOLD_S) at most 1 - P_PULL_DEPLETION."""
    g = _resil_gain(P, fs, ist, side) if P[P_RESIL_HALF_LIFE_S] > 0.0 else 1.0
    if ist[S_HOLD_END_NS + side] > ist[S_T_NS]:
        g = min(g, 1.0 - P[P_PULL_DEPLETION])
    return g


@njit(cache=True, inline="always")
def _resil_retreat(P: np.ndarray, fs: np.ndarray, ist: np.ndarray, bb: int, ba: int) -> None:
    """P_RESIL_RETREAT: a side whose touch retreated since the last draw (bid lower, ask higher,
    or emptied) is depleted now."""
    if bb < ist[S_RESIL_TOUCH]:
        fs[F_RESIL_D] = P[P_RESIL_DEPLETION]
        ist[S_RESIL_T_NS] = ist[S_T_NS]
    if ba > ist[S_RESIL_TOUCH + 1] or (ba == _NONE and ist[S_RESIL_TOUCH + 1] != _NONE):
        fs[F_RESIL_D + 1] = P[P_RESIL_DEPLETION]
        ist[S_RESIL_T_NS + 1] = ist[S_T_NS]
    ist[S_RESIL_TOUCH] = bb
    ist[S_RESIL_TOUCH + 1] = ba


@njit(cache=True, inline="always")
def _level_gap(
    target: np.ndarray, q: np.ndarray, ref: int, sgn: int, k: int, excess: bool, g: float
) -> int:
    """Level k's missing queue against its target, whole lots (``excess``: the queue above it;
    ``g`` < 1: against the depleted target, ``_resil_target``); <= 0 when there is none."""
    qk = q[ring_slot(ref + sgn * k)]
    if excess:
        return qk - _target_lots(target, k)
    if g < 1.0:
        return _resil_target(target, k, g) - qk
    return _target_lots(target, k) - qk


@njit(cache=True, inline="always")
def _pick_level(
    rng: np.ndarray,
    target: np.ndarray,
    q: np.ndarray,
    ref: int,
    sgn: int,
    k0: int,
    k1: int,
    excess: bool,
    g: float,
    ds: np.ndarray,
) -> int:
    """A level k in k0..k1-1 drawn in proportion to its missing (or excess) queue; -1 if none.
    The differences are whole lots, summed as integers (the same exact sums as in floats); the
    first walk keeps them (``ds``, scratch of at least k1 - k0 slots, none below 0) and the second
    skips PICK_BLOCK levels at a time while the draw lies past their sum: the first level whose
    running sum exceeds the draw is the same (the sums only grow), and the far zone's ~300
    levels are read in blocks instead of one compare each."""
    n = k1 - k0
    tot = 0
    for i in range(n):
        d = _level_gap(target, q, ref, sgn, k0 + i, excess, g)
        d = d if d > 0 else 0
        ds[i] = d
        tot += d
    if tot <= 0:
        return -1
    y = _uniform(rng) * float(tot)
    c = 0
    i = 0
    while i + PICK_BLOCK <= n:
        b = 0
        for j in range(i, i + PICK_BLOCK):
            b += ds[j]
        if y < float(c + b):
            break
        c += b
        i += PICK_BLOCK
    for j in range(i, n):
        c += ds[j]
        if y < float(c):
            return k0 + j
    return k1 - 1


@njit(cache=True, inline="always")
def _draw_next(
    P: np.ndarray,
    target: np.ndarray,
    fs: np.ndarray,
    ist: np.ndarray,
    rng: np.ndarray,
    bq: np.ndarray,
    aq: np.ndarray,
) -> None:
    """Evaluate every intensity in the current state, store them and draw the next event time
    against their sum plus the (decaying, hence bounding) Hawkes intensity."""
    v = fs[F_V]
    bb = ist[S_BEST_BID]
    ba = ist[S_BEST_ASK]
    maker = P[P_MAKER_LOTS]
    refill = P[P_REFILL_RATE]
    vr = _ladder_v(P, fs)
    top = _bid_top(vr, ba)
    bot = _ask_bot(vr, bb)
    nlev = target.shape[0]
    kq = NEAR_LEVELS if nlev > NEAR_LEVELS else nlev
    near = fs[F_NEAR : F_NEAR + 4]
    far = fs[F_FAR : F_FAR + 4]
    resil = P[P_RESIL_HALF_LIFE_S] > 0.0
    held = P[P_PULL_HOLD_S] > 0.0
    if resil or held:
        if resil and P[P_RESIL_RETREAT] > 0.0:
            _resil_retreat(P, fs, ist, bb, ba)
        gb = _side_gain(P, fs, ist, 0)
        ga = _side_gain(P, fs, ist, 1)
        fs[F_RESIL_G] = gb
        fs[F_RESIL_G + 1] = ga
        near[0], near[2] = _zone_sums_resil(target, bq, top, -1, 0, kq, gb)
        near[1], near[3] = _zone_sums_resil(target, aq, bot, 1, 0, kq, ga)
    else:
        near[0], near[2] = _zone_sums(target, bq, top, -1, 0, kq)
        near[1], near[3] = _zone_sums(target, aq, bot, 1, 0, kq)
    if nlev > kq:
        # deep levels change slowly: their sums are refreshed every FAR_EVERY draws or when the
        # efficient price has moved the level grid by more than FAR_SHIFT ticks
        if (
            ist[S_FAR_AGE] >= FAR_EVERY
            or abs(top - ist[S_FAR_TOP]) > FAR_SHIFT
            or abs(bot - ist[S_FAR_BOT]) > FAR_SHIFT
        ):
            if resil or held:
                far[0], far[2] = _zone_sums_resil(target, bq, top, -1, kq, nlev, fs[F_RESIL_G])
                far[1], far[3] = _zone_sums_resil(target, aq, bot, 1, kq, nlev, fs[F_RESIL_G + 1])
            else:
                far[0], far[2] = _zone_sums(target, bq, top, -1, kq, nlev)
                far[1], far[3] = _zone_sums(target, aq, bot, 1, kq, nlev)
            ist[S_FAR_TOP] = top
            ist[S_FAR_BOT] = bot
            ist[S_FAR_AGE] = 0
        else:
            ist[S_FAR_AGE] += 1
    # queue-reactive: queues below their target attract makers, queues above it lose them
    r = fs[F_R0:]
    r[0] = refill * (near[0] + far[0]) / maker
    r[1] = refill * (near[1] + far[1]) / maker
    excess = P[P_EXCESS_RATE]
    r[2] = (P[P_CANCEL_RATE] * ist[S_QB_LOTS] + excess * (near[2] + far[2])) / maker
    r[3] = (P[P_CANCEL_RATE] * ist[S_QA_LOTS] + excess * (near[3] + far[3])) / maker
    inf_edge = P[P_INFORMED_EDGE]
    # informed intensity grows with the mispricing they see (per tick beyond the edge); they see
    # the efficient price without the transient displacement of recent sweeps
    f = informed_price(fs)
    r[4] = P[P_INFORMED_RATE] * (f - ba - inf_edge) if (ba != _NONE and f > ba + inf_edge) else 0.0
    r[5] = P[P_INFORMED_RATE] * (bb - f - inf_edge) if (bb != _NONE and f < bb - inf_edge) else 0.0
    st_edge = P[P_STALE_EDGE] + P[P_REF_HYST]
    if P[P_STALE_WHOLE] > 0.0:
        r[6] = P[P_STALE_RATE] * _stale_levels(bq, bb, ist[S_LO_BID], v + st_edge, -1)
        r[7] = P[P_STALE_RATE] * _stale_levels(aq, ba, ist[S_HI_ASK], v - st_edge, 1)
    elif P[P_STALE_DEPTH] > 0.0:
        r[6] = P[P_STALE_RATE] * _stale_lots(bq, bb, ist[S_LO_BID], v + st_edge, -1) / maker
        r[7] = P[P_STALE_RATE] * _stale_lots(aq, ba, ist[S_HI_ASK], v - st_edge, 1) / maker
    else:
        stale_b = bb != _NONE and bb > v + st_edge
        stale_a = ba != _NONE and ba < v - st_edge
        r[6] = P[P_STALE_RATE] * ring_lots(bq, bb) / maker if stale_b else 0.0
        r[7] = P[P_STALE_RATE] * ring_lots(aq, ba) / maker if stale_a else 0.0
    r[K_JUMP] = P[P_JUMP_RATE]
    if P[P_THIN_BETA] > 0.0:
        # opportunistic takers: baseline noise candidates at the cap times its rate, thinned per
        # side (the Hawkes excitation is not scaled: n x factor above 1 would explode)
        bound = P[P_NOISE_MU] * P[P_THIN_CAP] + fs[F_HAWKES]
    else:
        bound = P[P_NOISE_MU] + fs[F_HAWKES]
    for i in range(N_RATES):
        bound += r[i]
    if P[P_PULL_RATE] > 0.0:
        bound += P[P_PULL_RATE]  # the makers' pulls of a near book (K_PULL)
    if P[P_MOM_RATE] > 0.0:
        bound += fs[F_MOM] + fs[F_MOM + 1]  # momentum takers (decaying, so a bound too)
    fs[F_BOUND] = bound
    ist[S_PENDING_NS] = ist[S_T_NS] + int(_exp1(rng) / bound * 1e9)
    ist[S_HAS_PENDING] = 1
    if resil:
        _resil_recheck(P, fs, ist)
    if held:
        _hold_recheck(ist)


@njit(cache=True, inline="always")
def _hold_recheck(ist: np.ndarray) -> None:
    """A held side's targets are whole again at its hold's end: a pending event drawn past it is
    brought forward to a null one there (``S_RESIL_NULL``), where the rates are drawn again."""
    for side in range(2):
        end = ist[S_HOLD_END_NS + side]
        if ist[S_T_NS] < end < ist[S_PENDING_NS]:
            ist[S_PENDING_NS] = end
            ist[S_RESIL_NULL] = 1


@njit(cache=True, inline="always")
def _resil_recheck(P: np.ndarray, fs: np.ndarray, ist: np.ndarray) -> None:
    """While a side is depleted its refill intensity grows between events: the pending event
    is brought forward to a null one (``S_RESIL_NULL``) RESIL_CHECKS_PER_HALF_LIFE times a
    half-life, where the rates are drawn again (exact for the constant rates drawn with: an
    exponential time is memoryless)."""
    ist[S_RESIL_NULL] = 0
    if fs[F_RESIL_D] > 0.0 or fs[F_RESIL_D + 1] > 0.0:
        step_ns = int(P[P_RESIL_HALF_LIFE_S] * 1e9 / RESIL_CHECKS_PER_HALF_LIFE)
        t_chk = ist[S_T_NS] + max(step_ns, RESIL_CHECK_MIN_NS)
        if ist[S_PENDING_NS] > t_chk:
            ist[S_PENDING_NS] = t_chk
            ist[S_RESIL_NULL] = 1


@njit(cache=True, inline="always")
def _latency_ns(
    P: np.ndarray, lat_tab: np.ndarray, fs: np.ndarray, ist: np.ndarray, rng: np.ndarray, t_ns: int
) -> int:
    """Feed latency of a message at ``t_ns``: the calibrated distribution, with a Gaussian AR(1)
    copula so consecutive messages see similar latencies (as on a real link) instead of a
    running maximum of independent draws once local time is kept non-decreasing."""
    tau = P[P_LAT_TAU_S]
    z = _normal(rng, fs)
    if tau > 0.0:
        phi = math.exp(-(t_ns - ist[S_LAT_T_NS]) * 1e-9 / tau)
        z = phi * fs[F_LAT_Z] + math.sqrt(1.0 - phi * phi) * z
    fs[F_LAT_Z] = z
    ist[S_LAT_T_NS] = t_ns
    u = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
    m = lat_tab.shape[0]
    x = u * (m - 1)
    i = int(x)
    if i >= m - 1:
        return int(lat_tab[m - 1])
    f = x - i
    return int(lat_tab[i] * (1.0 - f) + lat_tab[i + 1] * f)


@njit(cache=True, inline="always")
def _maker_lots(rng: np.ndarray, maker_tab: np.ndarray, lot: float) -> int:
    lots = int(_table_sample(rng, maker_tab) / lot + 0.5)
    return lots if lots > 0 else 1


@njit(cache=True, inline="always")
def _trim(v, kmax, emit, tick, lot, t_new, local_ns, ist, bq, aq, n, out) -> int:
    # levels are counted from the reference price (v, or just inside a stale opposite touch): a
    # book stays behind a stale opposite side instead of being trimmed away as it is rebuilt;
    # the stale side is bounded too, so the live range always fits the ring buffer
    far = _bid_top(v, ist[S_BEST_ASK]) - kmax - 1
    n = _trim_side(bq, ist, -1, far, int(v) + RING_TICKS // 4, tick, t_new, local_ns, emit, n, out)
    far = _ask_bot(v, ist[S_BEST_BID]) + kmax + 1
    n = _trim_side(aq, ist, 1, far, int(v) - RING_TICKS // 4, tick, t_new, local_ns, emit, n, out)
    return n


@njit(cache=True, inline="always")
def _trim_side(
    q: np.ndarray,
    ist: np.ndarray,
    sgn: int,
    far: int,
    stale_cap: int,
    tick: float,
    t_new: int,
    local_ns: int,
    emit: bool,
    n: int,
    out: np.ndarray,
) -> int:
    """Side sgn (bids -1, asks 1) drops its levels deeper than ``far`` and its touch while it is
    on the wrong side of ``stale_cap``; returns the rows written so far."""
    best_s, deep_s, lots_s, ev = _side_slots(sgn)
    if ist[best_s] == _NONE:
        ist[lots_s] = 0
        return n
    while ring_deeper(ist[deep_s], far, sgn) and not ring_deeper(ist[best_s], ist[deep_s], sgn):
        p = ist[deep_s]
        if q[ring_slot(p)] > 0:
            ist[lots_s] -= ring_pull(q, p)
            if emit:
                n = put_event(out, n, ev, t_new, local_ns, p * tick, 0.0, 0)
        ist[deep_s] = p - sgn
    if ring_deeper(ist[best_s], ist[deep_s], sgn):
        ist[best_s] = _NONE
        ist[lots_s] = 0
    while ist[best_s] != _NONE and ring_deeper(stale_cap, ist[best_s], sgn):
        p = ist[best_s]
        ist[lots_s] -= ring_pull(q, p)
        if emit:
            n = put_event(out, n, ev, t_new, local_ns, p * tick, 0.0, 0)
        ist[best_s] = ring_scan(q, p + sgn, ist[deep_s], sgn)
    return n


@njit(cache=True, inline="always")
def informed_price(fs: np.ndarray) -> float:
    """The price the informed trade against (ticks): v without the fast transient displacement
    of recent sweeps (the slow part, P_SLOW_TRANSIENT, they count as price)."""
    return fs[F_V] - (fs[F_TRANSIENT] - fs[F_SLOW])


@njit(cache=True)
def _snapshot(P: np.ndarray, lat_tab: np.ndarray, state: tuple, t_ns: int, out: np.ndarray) -> int:
    """Emit the current book as DEPTH_SNAPSHOT rows (bids best-first, then asks best-first).
    ``state``: the market's arrays (synthetic._Market.state)."""
    fs, ist, rng, bq, aq = state
    local_ns = t_ns + _latency_ns(P, lat_tab, fs, ist, rng, t_ns)
    ist[S_LAST_LOCAL_NS] = local_ns
    n = _snapshot_side(P, bq, ist, -1, t_ns, local_ns, 0, out)
    return _snapshot_side(P, aq, ist, 1, t_ns, local_ns, n, out)


@njit(cache=True)
def _snapshot_side(
    P: np.ndarray,
    q: np.ndarray,
    ist: np.ndarray,
    sgn: int,
    t_ns: int,
    local_ns: int,
    n: int,
    out: np.ndarray,
) -> int:
    """Side sgn's (bids -1, asks 1) non-empty levels, from its touch to its deepest level, as
    DEPTH_SNAPSHOT rows."""
    best_s, deep_s = _side_slots(sgn)[:2]
    ev = _EV_BID_SNAP if sgn < 0 else _EV_ASK_SNAP
    tick = P[P_TICK_PX]
    lot = P[P_LOT_QTY]
    p = ist[best_s]
    if p == _NONE:
        return n
    while not ring_deeper(p, ist[deep_s], sgn):
        lots = q[ring_slot(p)]
        if lots > 0:
            n = put_event(out, n, ev, t_ns, local_ns, p * tick, lots * lot, 0)
        p += sgn
    return n


@njit(cache=True, inline="always")
def _thin_factor(P: np.ndarray, ist: np.ndarray, q: np.ndarray, sgn: int) -> float:
    """The taker intensity factor of side sgn (the side a parent takes: asks 1, bids -1),
    min(cap, (near lots / their target) ** -beta), near: P_THIN_LEVELS levels from its touch;
    the cap when the side is empty."""
    best_s, deep_s, lots_s, ev = _side_slots(sgn)
    cap = P[P_THIN_CAP]
    p = ist[best_s]
    if p == _NONE:
        return cap
    stop = ist[deep_s]
    lots = 0
    for _ in range(int(P[P_THIN_LEVELS])):
        lots += q[ring_slot(p)]
        if p == stop:
            break
        p += sgn
    if lots <= 0:
        return cap
    f = (lots / P[P_THIN_TARGET_LOTS]) ** -P[P_THIN_BETA]
    return f if f < cap else cap
