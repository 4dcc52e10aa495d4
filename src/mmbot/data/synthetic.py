"""The embedded market: a calibrated stochastic limit order book that emits the normal event array.

Owns the generator (``generate`` / ``generate_chunks``) and the loading of shipped calibrations
(``load_calibration``). The model (DESIGN.md, "The embedded market"):

* a latent efficient price ``v`` (in ticks) follows a jump-diffusion (sigma, jump rate and size);
* the visible book is rebuilt around ``v`` level by level: limit orders arrive at distance k from
  the efficient price (rate per level, Cont-Stoikov-Talreja), each resting order is cancelled with
  a constant hazard (so cancellation intensity grows with the queue, Huang-Lehalle-Rosenbaum), and
  a touch that sits on the wrong side of ``v`` (stale) is pulled by its makers at a high rate;
* market orders come from noise traders (a Hawkes process: clustered arrivals, random side) and
  from informed traders who trade only when ``v`` has moved past the touch by more than an edge
  (Glosten-Milgrom), sweeping the stale levels: this is what makes adverse selection real;
* every visible change is emitted: DEPTH level updates (price, new total qty; 0 = delete) and
  TRADE prints (BUY flag = buyer aggressor), each trade consuming the touch it hits.

The event loop is one numba function advancing an explicit state (own xoshiro256** RNG, book ring
buffers), so a long market can be produced in chunks whose concatenation is byte-identical to a
single ``generate`` call with the same seed (a soak never holds a whole day in memory).
Event times are drawn by thinning against a global intensity bound, so stopping at a chunk edge
never consumes random numbers that a one-shot run would not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numba import njit

from mmbot.errors import UserError
from mmbot.events import (
    BUY_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EVENT_DTYPE,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
)

MARKETS_DIR = Path(__file__).resolve().parents[1] / "assets" / "markets"
DEFAULT_MARKET = "binance_usdm_btcusdt_wide_tick"
SCHEMA = "mmbot.market.v1"

# ring-buffer size of each book side, in ticks (power of two); levels farther than this from the
# efficient price are trimmed, so it only bounds how far a single jump can leave stale levels.
RING_TICKS = 4096
_RING_MASK = RING_TICKS - 1
# warm-up of the book before the snapshot, so the first emitted book is already in its regime
WARMUP_NS = 60_000_000_000

# --- layout of the float parameter vector handed to the compiled core -------------------------
P_SIGMA_TICKS = 0  # diffusion of v, ticks per sqrt(s)
P_JUMP_RATE = 1  # jumps per s
P_JUMP_TICKS = 2  # mean absolute jump size, ticks (double-exponential)
P_CANCEL_RATE = 3  # cancel hazard of a resting order, per s
P_LIMIT_LOTS = 4  # mean limit order size, lots
P_STALE_RATE = 5  # cancel hazard of each order of a stale touch level, per s
P_NOISE_MU = 6  # Hawkes baseline, market orders per s (both sides)
P_HAWKES_N = 7  # branching ratio
P_HAWKES_BETA = 8  # kernel decay, per s
P_INFORMED_RATE = 9  # informed market orders per s per side while v is past the touch
P_INFORMED_EDGE = 10  # how far (ticks) v must be past the touch for the informed to trade
P_TICK_PX = 11
P_LOT_QTY = 12
P_MAX_LEVELS = 13  # levels kept per side beyond the efficient price
P_STALE_EDGE = 14  # how far (ticks) v must be past a touch level before its makers pull it
N_PARAMS = 15

# --- integer state ---------------------------------------------------------------------------
S_T_NS = 0
S_PENDING_NS = 1
S_HAS_PENDING = 2
S_BEST_BID = 3
S_BEST_ASK = 4
S_LO_BID = 5
S_HI_ASK = 6
S_QB_LOTS = 7
S_QA_LOTS = 8
S_LAST_LOCAL_NS = 9
N_ISTATE = 10
# --- float state -----------------------------------------------------------------------------
F_V = 0  # efficient price, ticks
F_HAWKES = 1  # excess Hawkes intensity, per s
F_BOUND = 2  # intensity bound used to draw the pending event time
N_FSTATE = 3

_NONE = -1  # empty book side

# per simulated event at most: a sweep of max_levels (trade + depth each) and the trims
_RESERVE_ROWS = 4 * RING_TICKS + 64

_FLAGS = EXCH_EVENT | LOCAL_EVENT
_EV_BID_DEPTH = DEPTH_EVENT | _FLAGS | BUY_EVENT
_EV_ASK_DEPTH = DEPTH_EVENT | _FLAGS | SELL_EVENT
_EV_BUY_TRADE = TRADE_EVENT | _FLAGS | BUY_EVENT
_EV_SELL_TRADE = TRADE_EVENT | _FLAGS | SELL_EVENT
_EV_BID_SNAP = DEPTH_SNAPSHOT_EVENT | _FLAGS | BUY_EVENT
_EV_ASK_SNAP = DEPTH_SNAPSHOT_EVENT | _FLAGS | SELL_EVENT


# ============================ RNG (xoshiro256**, explicit state) ================================
@njit(cache=True, inline="always")
def _rotl(x: np.uint64, k: int) -> np.uint64:
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True)
def _next_u64(s: np.ndarray) -> np.uint64:
    s0 = s[0]
    s1 = s[1]
    s2 = s[2]
    s3 = s[3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    s[0] = s0
    s[1] = s1
    s[2] = s2
    s[3] = s3
    return result


@njit(cache=True)
def _uniform(s: np.ndarray) -> float:
    """Uniform on [0, 1)."""
    return float(_next_u64(s) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _exp1(s: np.ndarray) -> float:
    return -math.log(1.0 - _uniform(s))


@njit(cache=True)
def _normal(s: np.ndarray) -> float:
    u1 = 1.0 - _uniform(s)
    u2 = _uniform(s)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True)
def _poisson(s: np.ndarray, lam: float) -> int:
    # inversion; only used with small means (jumps within one inter-event gap)
    if lam <= 0.0:
        return 0
    L = math.exp(-lam)
    k = 0
    p = _uniform(s)
    while p > L and k < 64:
        k += 1
        p *= _uniform(s)
    return k


@njit(cache=True)
def _table_sample(s: np.ndarray, tab: np.ndarray) -> float:
    """Inverse-CDF sample from quantiles ``tab`` at equally spaced probabilities 0..1."""
    m = tab.shape[0]
    x = _uniform(s) * (m - 1)
    i = int(x)
    if i >= m - 1:
        return tab[m - 1]
    f = x - i
    return tab[i] * (1.0 - f) + tab[i + 1] * f


def _seed_state(seed: int) -> np.ndarray:
    """splitmix64 expansion of the user seed into the 4-word xoshiro state."""
    mask = (1 << 64) - 1
    x = (int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & mask
    out = np.empty(4, dtype=np.uint64)
    for i in range(4):
        x = (x + 0x9E3779B97F4A7C15) & mask
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z = z ^ (z >> 31)
        out[i] = np.uint64(z)
    return out


# ================================== compiled core ===============================================
@njit(cache=True, inline="always")
def _emit(
    n: int,
    ev: int,
    exch_ns: int,
    local_ns: int,
    px: float,
    qty: float,
    o_ev: np.ndarray,
    o_exch: np.ndarray,
    o_local: np.ndarray,
    o_px: np.ndarray,
    o_qty: np.ndarray,
) -> int:
    o_ev[n] = ev
    o_exch[n] = exch_ns
    o_local[n] = local_ns
    o_px[n] = px
    o_qty[n] = qty
    return n + 1


@njit(cache=True)
def _scan_bid_down(bq: np.ndarray, start: int, lo: int) -> int:
    p = start
    while p >= lo:
        if bq[p & _RING_MASK] > 0:
            return p
        p -= 1
    return _NONE


@njit(cache=True)
def _scan_ask_up(aq: np.ndarray, start: int, hi: int) -> int:
    p = start
    while p <= hi:
        if aq[p & _RING_MASK] > 0:
            return p
        p += 1
    return _NONE


@njit(cache=True)
def _bound(
    P: np.ndarray, arr_total: float, ist: np.ndarray, fs: np.ndarray, bq: np.ndarray, aq: np.ndarray
) -> float:
    """Upper bound of the total intensity until the next event (Hawkes only decays; the
    state-dependent informed/stale terms are bounded by their constants)."""
    lim = P[P_LIMIT_LOTS]
    return (
        2.0 * arr_total
        + P[P_CANCEL_RATE] * (ist[S_QB_LOTS] + ist[S_QA_LOTS]) / lim
        + P[P_NOISE_MU]
        + fs[F_HAWKES]
        + 2.0 * P[P_INFORMED_RATE]
        + P[P_STALE_RATE]
        * (_touch_lots(bq, ist[S_BEST_BID]) + _touch_lots(aq, ist[S_BEST_ASK]))
        / lim
    )


@njit(cache=True, inline="always")
def _touch_lots(q: np.ndarray, p: int) -> float:
    return float(q[p & _RING_MASK]) if p != _NONE else 0.0


@njit(cache=True)
def _advance(
    P: np.ndarray,
    arr_rate: np.ndarray,
    size_tab: np.ndarray,
    lat_tab: np.ndarray,
    fs: np.ndarray,
    ist: np.ndarray,
    rng: np.ndarray,
    bq: np.ndarray,
    aq: np.ndarray,
    t_end_ns: int,
    emit: bool,
    o_ev: np.ndarray,
    o_exch: np.ndarray,
    o_local: np.ndarray,
    o_px: np.ndarray,
    o_qty: np.ndarray,
) -> int:
    """Run the market until the next event would be at or after ``t_end_ns`` or the output
    buffer is nearly full. Returns the number of rows written (0 when ``emit`` is False)."""
    cap = o_ev.shape[0] - _RESERVE_ROWS
    n = 0
    tick = P[P_TICK_PX]
    lot = P[P_LOT_QTY]
    sigma = P[P_SIGMA_TICKS]
    jump_rate = P[P_JUMP_RATE]
    jump_ticks = P[P_JUMP_TICKS]
    theta = P[P_CANCEL_RATE]
    lim = P[P_LIMIT_LOTS]
    stale_rate = P[P_STALE_RATE]
    mu = P[P_NOISE_MU]
    hawkes_jump = P[P_HAWKES_N] * P[P_HAWKES_BETA]
    beta = P[P_HAWKES_BETA]
    inf_rate = P[P_INFORMED_RATE]
    inf_edge = P[P_INFORMED_EDGE]
    stale_edge = P[P_STALE_EDGE]
    kmax = int(P[P_MAX_LEVELS])
    nlev = arr_rate.shape[0]
    arr_total = 0.0
    for k in range(nlev):
        arr_total += arr_rate[k]

    while True:
        if ist[S_HAS_PENDING] == 0:
            bound = _bound(P, arr_total, ist, fs, bq, aq)
            fs[F_BOUND] = bound
            dt_ns = int(_exp1(rng) / bound * 1e9)
            ist[S_PENDING_NS] = ist[S_T_NS] + dt_ns
            ist[S_HAS_PENDING] = 1
        if ist[S_PENDING_NS] >= t_end_ns or n >= cap:
            return n
        # ---- move to the pending event time ------------------------------------------------
        t_new = ist[S_PENDING_NS]
        ist[S_HAS_PENDING] = 0
        dt_s = (t_new - ist[S_T_NS]) * 1e-9
        ist[S_T_NS] = t_new
        v = fs[F_V] + sigma * math.sqrt(dt_s) * _normal(rng)
        nj = _poisson(rng, jump_rate * dt_s)
        for _ in range(nj):
            sz = jump_ticks * _exp1(rng)
            v += sz if _uniform(rng) < 0.5 else -sz
        fs[F_V] = v
        hx = fs[F_HAWKES] * math.exp(-beta * dt_s)
        fs[F_HAWKES] = hx
        bb = ist[S_BEST_BID]
        ba = ist[S_BEST_ASK]
        # ---- actual intensities at t_new ---------------------------------------------------
        r_arr = arr_total
        r_cb = theta * ist[S_QB_LOTS] / lim
        r_ca = theta * ist[S_QA_LOTS] / lim
        r_noise = mu + hx
        r_ib = inf_rate if (ba != _NONE and v > ba + inf_edge) else 0.0
        r_is = inf_rate if (bb != _NONE and v < bb - inf_edge) else 0.0
        # a touch on the wrong side of v melts: each of its orders is pulled at the stale rate
        r_sb = (
            stale_rate * bq[bb & _RING_MASK] / lim if (bb != _NONE and bb > v + stale_edge) else 0.0
        )
        r_sa = (
            stale_rate * aq[ba & _RING_MASK] / lim if (ba != _NONE and ba < v - stale_edge) else 0.0
        )
        x = _uniform(rng) * fs[F_BOUND]
        local_ns = 0
        if emit:
            local_ns = t_new + int(_table_sample(rng, lat_tab))
            if local_ns < ist[S_LAST_LOCAL_NS]:
                local_ns = ist[S_LAST_LOCAL_NS]
            ist[S_LAST_LOCAL_NS] = local_ns
        kind = -1
        acc = r_arr
        if x < acc:
            kind = 0  # bid arrival
        else:
            acc += r_arr
            if x < acc:
                kind = 1  # ask arrival
            else:
                acc += r_cb
                if x < acc:
                    kind = 2
                else:
                    acc += r_ca
                    if x < acc:
                        kind = 3
                    else:
                        acc += r_noise
                        if x < acc:
                            kind = 4
                        else:
                            acc += r_ib
                            if x < acc:
                                kind = 5
                            else:
                                acc += r_is
                                if x < acc:
                                    kind = 6
                                else:
                                    acc += r_sb
                                    if x < acc:
                                        kind = 7
                                    else:
                                        acc += r_sa
                                        if x < acc:
                                            kind = 8
        if kind == 0 or kind == 1:
            # limit order at distance k from the efficient price, never crossing the other side
            y = _uniform(rng) * arr_total
            k = 0
            c = arr_rate[0]
            while y >= c and k < nlev - 1:
                k += 1
                c += arr_rate[k]
            lots = int(lim * _exp1(rng) + 0.5)
            if lots < 1:
                lots = 1
            if kind == 0:
                top = int(math.ceil(v)) - 1
                if ba != _NONE and top > ba - 1:
                    top = ba - 1
                p = top - k
                j = p & _RING_MASK
                bq[j] += lots
                ist[S_QB_LOTS] += lots
                if bb == _NONE or p > bb:
                    ist[S_BEST_BID] = p
                    if bb == _NONE:
                        ist[S_LO_BID] = p
                if p < ist[S_LO_BID]:
                    ist[S_LO_BID] = p
                if emit:
                    n = _emit(
                        n,
                        _EV_BID_DEPTH,
                        t_new,
                        local_ns,
                        p * tick,
                        bq[j] * lot,
                        o_ev,
                        o_exch,
                        o_local,
                        o_px,
                        o_qty,
                    )
            else:
                bot = int(math.floor(v)) + 1
                if bb != _NONE and bot < bb + 1:
                    bot = bb + 1
                p = bot + k
                j = p & _RING_MASK
                aq[j] += lots
                ist[S_QA_LOTS] += lots
                if ba == _NONE or p < ba:
                    ist[S_BEST_ASK] = p
                    if ba == _NONE:
                        ist[S_HI_ASK] = p
                if p > ist[S_HI_ASK]:
                    ist[S_HI_ASK] = p
                if emit:
                    n = _emit(
                        n,
                        _EV_ASK_DEPTH,
                        t_new,
                        local_ns,
                        p * tick,
                        aq[j] * lot,
                        o_ev,
                        o_exch,
                        o_local,
                        o_px,
                        o_qty,
                    )
        elif kind == 2 or kind == 3:
            # cancel one order: level chosen in proportion to its queue
            if kind == 2:
                y = _uniform(rng) * ist[S_QB_LOTS]
                p = bb
                c = 0.0
                while p >= ist[S_LO_BID]:
                    c += bq[p & _RING_MASK]
                    if y < c:
                        break
                    p -= 1
                if p >= ist[S_LO_BID]:
                    j = p & _RING_MASK
                    lots = int(lim * _exp1(rng) + 0.5)
                    if lots < 1:
                        lots = 1
                    if lots > bq[j]:
                        lots = bq[j]
                    bq[j] -= lots
                    ist[S_QB_LOTS] -= lots
                    if emit:
                        n = _emit(
                            n,
                            _EV_BID_DEPTH,
                            t_new,
                            local_ns,
                            p * tick,
                            bq[j] * lot,
                            o_ev,
                            o_exch,
                            o_local,
                            o_px,
                            o_qty,
                        )
                    if bq[j] == 0 and p == bb:
                        ist[S_BEST_BID] = _scan_bid_down(bq, p - 1, ist[S_LO_BID])
            else:
                y = _uniform(rng) * ist[S_QA_LOTS]
                p = ba
                c = 0.0
                while p <= ist[S_HI_ASK]:
                    c += aq[p & _RING_MASK]
                    if y < c:
                        break
                    p += 1
                if p <= ist[S_HI_ASK]:
                    j = p & _RING_MASK
                    lots = int(lim * _exp1(rng) + 0.5)
                    if lots < 1:
                        lots = 1
                    if lots > aq[j]:
                        lots = aq[j]
                    aq[j] -= lots
                    ist[S_QA_LOTS] -= lots
                    if emit:
                        n = _emit(
                            n,
                            _EV_ASK_DEPTH,
                            t_new,
                            local_ns,
                            p * tick,
                            aq[j] * lot,
                            o_ev,
                            o_exch,
                            o_local,
                            o_px,
                            o_qty,
                        )
                    if aq[j] == 0 and p == ba:
                        ist[S_BEST_ASK] = _scan_ask_up(aq, p + 1, ist[S_HI_ASK])
        elif kind >= 4 and kind <= 6:
            # market order: noise (random side, unlimited price) or informed (limit at v)
            if kind == 4:
                buy = _uniform(rng) < 0.5
                limit_ticks = 1e300 if buy else -1e300
            else:
                buy = kind == 5
                limit_ticks = v - inf_edge if buy else v + inf_edge
            fs[F_HAWKES] = hx + hawkes_jump
            lots = int(_table_sample(rng, size_tab) / lot + 0.5)
            if lots < 1:
                lots = 1
            swept = 0
            if buy:
                while lots > 0 and ist[S_BEST_ASK] != _NONE and swept < kmax:
                    p = ist[S_BEST_ASK]
                    if p > limit_ticks:
                        break
                    j = p & _RING_MASK
                    take = lots if lots < aq[j] else aq[j]
                    aq[j] -= take
                    ist[S_QA_LOTS] -= take
                    lots -= take
                    swept += 1
                    if emit:
                        n = _emit(
                            n,
                            _EV_BUY_TRADE,
                            t_new,
                            local_ns,
                            p * tick,
                            take * lot,
                            o_ev,
                            o_exch,
                            o_local,
                            o_px,
                            o_qty,
                        )
                        n = _emit(
                            n,
                            _EV_ASK_DEPTH,
                            t_new,
                            local_ns,
                            p * tick,
                            aq[j] * lot,
                            o_ev,
                            o_exch,
                            o_local,
                            o_px,
                            o_qty,
                        )
                    if aq[j] == 0:
                        ist[S_BEST_ASK] = _scan_ask_up(aq, p + 1, ist[S_HI_ASK])
            else:
                while lots > 0 and ist[S_BEST_BID] != _NONE and swept < kmax:
                    p = ist[S_BEST_BID]
                    if p < limit_ticks:
                        break
                    j = p & _RING_MASK
                    take = lots if lots < bq[j] else bq[j]
                    bq[j] -= take
                    ist[S_QB_LOTS] -= take
                    lots -= take
                    swept += 1
                    if emit:
                        n = _emit(
                            n,
                            _EV_SELL_TRADE,
                            t_new,
                            local_ns,
                            p * tick,
                            take * lot,
                            o_ev,
                            o_exch,
                            o_local,
                            o_px,
                            o_qty,
                        )
                        n = _emit(
                            n,
                            _EV_BID_DEPTH,
                            t_new,
                            local_ns,
                            p * tick,
                            bq[j] * lot,
                            o_ev,
                            o_exch,
                            o_local,
                            o_px,
                            o_qty,
                        )
                    if bq[j] == 0:
                        ist[S_BEST_BID] = _scan_bid_down(bq, p - 1, ist[S_LO_BID])
        elif kind == 7:
            # a maker pulls one order from a bid that sits above the efficient price
            j = bb & _RING_MASK
            lots = int(lim * _exp1(rng) + 0.5)
            if lots < 1:
                lots = 1
            if lots > bq[j]:
                lots = bq[j]
            bq[j] -= lots
            ist[S_QB_LOTS] -= lots
            if emit:
                n = _emit(
                    n,
                    _EV_BID_DEPTH,
                    t_new,
                    local_ns,
                    bb * tick,
                    bq[j] * lot,
                    o_ev,
                    o_exch,
                    o_local,
                    o_px,
                    o_qty,
                )
            if bq[j] == 0:
                ist[S_BEST_BID] = _scan_bid_down(bq, bb - 1, ist[S_LO_BID])
        elif kind == 8:
            j = ba & _RING_MASK
            lots = int(lim * _exp1(rng) + 0.5)
            if lots < 1:
                lots = 1
            if lots > aq[j]:
                lots = aq[j]
            aq[j] -= lots
            ist[S_QA_LOTS] -= lots
            if emit:
                n = _emit(
                    n,
                    _EV_ASK_DEPTH,
                    t_new,
                    local_ns,
                    ba * tick,
                    aq[j] * lot,
                    o_ev,
                    o_exch,
                    o_local,
                    o_px,
                    o_qty,
                )
            if aq[j] == 0:
                ist[S_BEST_ASK] = _scan_ask_up(aq, ba + 1, ist[S_HI_ASK])
        # ---- trim levels that fell too far from the efficient price --------------------------
        far = int(math.ceil(v)) - kmax - 2
        # also bound the stale side so the live range always fits the ring buffer
        stale_cap = int(v) + RING_TICKS // 4
        if ist[S_BEST_BID] == _NONE:
            ist[S_QB_LOTS] = 0
        else:
            while ist[S_LO_BID] < far and ist[S_LO_BID] <= ist[S_BEST_BID]:
                p = ist[S_LO_BID]
                j = p & _RING_MASK
                if bq[j] > 0:
                    ist[S_QB_LOTS] -= bq[j]
                    bq[j] = 0
                    if emit:
                        n = _emit(
                            n,
                            _EV_BID_DEPTH,
                            t_new,
                            local_ns,
                            p * tick,
                            0.0,
                            o_ev,
                            o_exch,
                            o_local,
                            o_px,
                            o_qty,
                        )
                ist[S_LO_BID] = p + 1
            if ist[S_LO_BID] > ist[S_BEST_BID]:
                ist[S_BEST_BID] = _NONE
                ist[S_QB_LOTS] = 0
            while ist[S_BEST_BID] != _NONE and ist[S_BEST_BID] > stale_cap:
                p = ist[S_BEST_BID]
                j = p & _RING_MASK
                ist[S_QB_LOTS] -= bq[j]
                bq[j] = 0
                if emit:
                    n = _emit(
                        n,
                        _EV_BID_DEPTH,
                        t_new,
                        local_ns,
                        p * tick,
                        0.0,
                        o_ev,
                        o_exch,
                        o_local,
                        o_px,
                        o_qty,
                    )
                ist[S_BEST_BID] = _scan_bid_down(bq, p - 1, ist[S_LO_BID])
        far = int(math.floor(v)) + kmax + 2
        stale_cap = int(v) - RING_TICKS // 4
        if ist[S_BEST_ASK] == _NONE:
            ist[S_QA_LOTS] = 0
        else:
            while ist[S_HI_ASK] > far and ist[S_HI_ASK] >= ist[S_BEST_ASK]:
                p = ist[S_HI_ASK]
                j = p & _RING_MASK
                if aq[j] > 0:
                    ist[S_QA_LOTS] -= aq[j]
                    aq[j] = 0
                    if emit:
                        n = _emit(
                            n,
                            _EV_ASK_DEPTH,
                            t_new,
                            local_ns,
                            p * tick,
                            0.0,
                            o_ev,
                            o_exch,
                            o_local,
                            o_px,
                            o_qty,
                        )
                ist[S_HI_ASK] = p - 1
            if ist[S_HI_ASK] < ist[S_BEST_ASK]:
                ist[S_BEST_ASK] = _NONE
                ist[S_QA_LOTS] = 0
            while ist[S_BEST_ASK] != _NONE and ist[S_BEST_ASK] < stale_cap:
                p = ist[S_BEST_ASK]
                j = p & _RING_MASK
                ist[S_QA_LOTS] -= aq[j]
                aq[j] = 0
                if emit:
                    n = _emit(
                        n,
                        _EV_ASK_DEPTH,
                        t_new,
                        local_ns,
                        p * tick,
                        0.0,
                        o_ev,
                        o_exch,
                        o_local,
                        o_px,
                        o_qty,
                    )
                ist[S_BEST_ASK] = _scan_ask_up(aq, p + 1, ist[S_HI_ASK])


@njit(cache=True)
def _snapshot(
    P: np.ndarray,
    lat_tab: np.ndarray,
    ist: np.ndarray,
    rng: np.ndarray,
    bq: np.ndarray,
    aq: np.ndarray,
    t_ns: int,
    o_ev: np.ndarray,
    o_exch: np.ndarray,
    o_local: np.ndarray,
    o_px: np.ndarray,
    o_qty: np.ndarray,
) -> int:
    """Emit the current book as DEPTH_SNAPSHOT rows (bids best-first, then asks best-first)."""
    tick = P[P_TICK_PX]
    lot = P[P_LOT_QTY]
    local_ns = t_ns + int(_table_sample(rng, lat_tab))
    ist[S_LAST_LOCAL_NS] = local_ns
    n = 0
    if ist[S_BEST_BID] != _NONE:
        p = ist[S_BEST_BID]
        while p >= ist[S_LO_BID]:
            q = bq[p & _RING_MASK]
            if q > 0:
                n = _emit(
                    n,
                    _EV_BID_SNAP,
                    t_ns,
                    local_ns,
                    p * tick,
                    q * lot,
                    o_ev,
                    o_exch,
                    o_local,
                    o_px,
                    o_qty,
                )
            p -= 1
    if ist[S_BEST_ASK] != _NONE:
        p = ist[S_BEST_ASK]
        while p <= ist[S_HI_ASK]:
            q = aq[p & _RING_MASK]
            if q > 0:
                n = _emit(
                    n,
                    _EV_ASK_SNAP,
                    t_ns,
                    local_ns,
                    p * tick,
                    q * lot,
                    o_ev,
                    o_exch,
                    o_local,
                    o_px,
                    o_qty,
                )
            p += 1
    return n


# ================================== Python API ==================================================
def _model_arrays(calib: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Translate a calibration dict (bps / qty / s units) into the core's tick/lot arrays."""
    try:
        m = calib["model"]
        tick_px = float(calib["tick_px"])
        lot_qty = float(calib["lot_qty"])
        price0_px = float(calib["price0_px"])
        ticks_per_bps = price0_px * 1e-4 / tick_px
        P = np.zeros(N_PARAMS, dtype=np.float64)
        P[P_SIGMA_TICKS] = float(m["sigma_bps_per_sqrt_s"]) * ticks_per_bps
        P[P_JUMP_RATE] = float(m["jump_rate_per_s"])
        P[P_JUMP_TICKS] = float(m["jump_size_bps"]) * ticks_per_bps
        P[P_CANCEL_RATE] = float(m["cancel_rate_per_s"])
        P[P_LIMIT_LOTS] = max(float(m["limit_size_mean_qty"]) / lot_qty, 1.0)
        P[P_STALE_RATE] = float(m["stale_cancel_rate_per_s"])
        P[P_NOISE_MU] = float(m["noise_base_rate_per_s"])
        P[P_HAWKES_N] = float(m["hawkes_branching_ratio"])
        P[P_HAWKES_BETA] = float(m["hawkes_decay_per_s"])
        P[P_INFORMED_RATE] = float(m["informed_rate_per_s"])
        P[P_INFORMED_EDGE] = float(m["informed_edge_ticks"])
        P[P_STALE_EDGE] = float(m.get("stale_edge_ticks", 0.0))
        P[P_TICK_PX] = tick_px
        P[P_LOT_QTY] = lot_qty
        arr_rate = np.asarray(m["limit_arrival_rate_per_s"], dtype=np.float64)
        P[P_MAX_LEVELS] = max(int(m.get("max_levels", len(arr_rate))), len(arr_rate))
        size_tab = np.asarray(m["trade_size_quantiles_qty"], dtype=np.float64)
        lat_tab = np.asarray(calib["feed_latency_quantiles_ns"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"calibration: missing or malformed field ({exc!r})") from None
    bad = []
    if not (tick_px > 0 and lot_qty > 0 and price0_px > 0):
        bad.append("tick_px/lot_qty/price0_px must be > 0")
    if not np.all(np.isfinite(P)) or np.any(P < 0):
        bad.append("model parameters must be finite and >= 0")
    if P[P_HAWKES_N] >= 1.0:
        bad.append("hawkes_branching_ratio must be < 1 (stationary)")
    if arr_rate.ndim != 1 or len(arr_rate) < 1 or np.any(arr_rate < 0) or arr_rate.sum() <= 0:
        bad.append("limit_arrival_rate_per_s must be a non-empty list of rates >= 0")
    if (
        size_tab.ndim != 1
        or len(size_tab) < 2
        or np.any(~np.isfinite(size_tab))
        or np.any(size_tab <= 0)
    ):
        bad.append("trade_size_quantiles_qty must hold >= 2 positive quantiles")
    if (
        lat_tab.ndim != 1
        or len(lat_tab) < 2
        or np.any(~np.isfinite(lat_tab))
        or np.any(lat_tab < 0)
    ):
        bad.append("feed_latency_quantiles_ns must hold >= 2 quantiles >= 0")
    if P[P_MAX_LEVELS] * 2 + 8 > RING_TICKS // 4:
        bad.append(f"max_levels must be < {RING_TICKS // 8 - 4}")
    if bad:
        raise UserError("calibration: " + "; ".join(bad))
    size_tab = np.sort(size_tab)
    lat_tab = np.sort(lat_tab)
    return P, arr_rate, size_tab, lat_tab, price0_px / tick_px


class _Market:
    """Mutable generator state (arrays only, so the compiled core can advance it)."""

    def __init__(self, calib: dict, seed: int, start_ts_ns: int) -> None:
        self.P, self.arr_rate, self.size_tab, self.lat_tab, v0 = _model_arrays(calib)
        self.rng = _seed_state(seed)
        self.bq = np.zeros(RING_TICKS, dtype=np.int64)
        self.aq = np.zeros(RING_TICKS, dtype=np.int64)
        self.fs = np.zeros(N_FSTATE, dtype=np.float64)
        self.ist = np.zeros(N_ISTATE, dtype=np.int64)
        self.fs[F_V] = v0
        self.ist[S_T_NS] = int(start_ts_ns) - WARMUP_NS
        self.ist[S_BEST_BID] = _NONE
        self.ist[S_BEST_ASK] = _NONE
        self.ist[S_LO_BID] = 0
        self.ist[S_HI_ASK] = 0
        self.start_ts_ns = int(start_ts_ns)

    def run(self, t_end_ns: int, emit: bool, cap: int) -> np.ndarray:
        """Advance to ``t_end_ns`` and return the emitted events (in buffers of ``cap`` rows)."""
        parts = []
        cap = max(cap, 2 * _RESERVE_ROWS)
        while True:
            o_ev = np.empty(cap, dtype=np.uint64)
            o_exch = np.empty(cap, dtype=np.int64)
            o_local = np.empty(cap, dtype=np.int64)
            o_px = np.empty(cap, dtype=np.float64)
            o_qty = np.empty(cap, dtype=np.float64)
            n = _advance(
                self.P,
                self.arr_rate,
                self.size_tab,
                self.lat_tab,
                self.fs,
                self.ist,
                self.rng,
                self.bq,
                self.aq,
                t_end_ns,
                emit,
                o_ev,
                o_exch,
                o_local,
                o_px,
                o_qty,
            )
            if emit and n:
                parts.append(_pack(o_ev, o_exch, o_local, o_px, o_qty, n))
            if self.ist[S_HAS_PENDING] and self.ist[S_PENDING_NS] >= t_end_ns:
                break
        if not parts:
            return np.zeros(0, dtype=EVENT_DTYPE)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def snapshot(self) -> np.ndarray:
        cap = 4 * RING_TICKS
        o_ev = np.empty(cap, dtype=np.uint64)
        o_exch = np.empty(cap, dtype=np.int64)
        o_local = np.empty(cap, dtype=np.int64)
        o_px = np.empty(cap, dtype=np.float64)
        o_qty = np.empty(cap, dtype=np.float64)
        n = _snapshot(
            self.P,
            self.lat_tab,
            self.ist,
            self.rng,
            self.bq,
            self.aq,
            self.start_ts_ns,
            o_ev,
            o_exch,
            o_local,
            o_px,
            o_qty,
        )
        return _pack(o_ev, o_exch, o_local, o_px, o_qty, n)


def _pack(
    o_ev: np.ndarray,
    o_exch: np.ndarray,
    o_local: np.ndarray,
    o_px: np.ndarray,
    o_qty: np.ndarray,
    n: int,
) -> np.ndarray:
    out = np.zeros(n, dtype=EVENT_DTYPE)
    out["ev"] = o_ev[:n]
    out["exch_ts"] = o_exch[:n]
    out["local_ts"] = o_local[:n]
    out["px"] = o_px[:n]
    out["qty"] = o_qty[:n]
    return out


def _estimate_rows_per_s(calib: dict) -> float:
    m = calib.get("model", {})
    try:
        arr = float(np.sum(m.get("limit_arrival_rate_per_s", [0.0])))
        trades = float(m.get("noise_base_rate_per_s", 0.0)) / max(
            1e-9, 1.0 - float(m.get("hawkes_branching_ratio", 0.0))
        )
        return 4.0 * arr + 4.0 * trades + 2.0 * float(m.get("informed_rate_per_s", 0.0)) + 100.0
    except (TypeError, ValueError):
        return 1000.0


def generate_chunks(
    calib: dict, seed: int, start_ts_ns: int, duration_ns: int, chunk_ns: int = 600_000_000_000
) -> Iterator[np.ndarray]:
    """Yield the market in consecutive time chunks of ``chunk_ns`` (the first chunk starts with
    the DEPTH_SNAPSHOT of the initial book). Concatenated, the chunks equal
    ``generate(calib, seed, start_ts_ns, duration_ns)`` byte for byte."""
    if duration_ns <= 0:
        raise UserError(f"synthetic market: duration must be > 0 ns, got {duration_ns}")
    if chunk_ns <= 0:
        raise UserError(f"synthetic market: chunk must be > 0 ns, got {chunk_ns}")
    mk = _Market(calib, seed, start_ts_ns)
    mk.run(int(start_ts_ns), emit=False, cap=1 << 16)
    rows_per_s = _estimate_rows_per_s(calib)
    end_ns = int(start_ts_ns) + int(duration_ns)
    t = int(start_ts_ns)
    first = mk.snapshot()
    while t < end_ns:
        t_next = min(end_ns, t + int(chunk_ns))
        cap = int(rows_per_s * (t_next - t) * 1e-9 * 1.3) + 4 * _RESERVE_ROWS
        cap = min(cap, 8_000_000)
        body = mk.run(t_next, emit=True, cap=cap)
        if first is not None:
            body = np.concatenate([first, body])
            first = None
        yield body
        t = t_next


def generate(calib: dict, seed: int, start_ts_ns: int, duration_ns: int) -> np.ndarray:
    """The synthetic market from ``start_ts_ns`` for ``duration_ns`` as one EVENT_DTYPE array
    (deterministic by ``seed``; starts with a DEPTH_SNAPSHOT of the initial book)."""
    parts = list(
        generate_chunks(calib, seed, start_ts_ns, duration_ns, chunk_ns=max(int(duration_ns), 1))
    )
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


# ================================ calibration files =============================================
def available_markets() -> list[str]:
    return sorted(p.stem for p in MARKETS_DIR.glob("*.json"))


def load_calibration(name_or_path: str | Path = "default") -> dict[str, Any]:
    """A shipped calibration by name (``"default"`` = the wide-tick BTCUSDT market the demo uses)
    or a calibration JSON file written by ``mmbot data calibrate``."""
    name = str(name_or_path)
    if name in ("default", "synthetic"):
        name = DEFAULT_MARKET
    path = Path(name)
    if not path.suffix and not path.exists():
        path = MARKETS_DIR / f"{name}.json"
    if not path.exists():
        raise UserError(
            f"market calibration not found: {name_or_path} (shipped: {', '.join(available_markets())}, or a path to a calibration JSON)"
        )
    try:
        calib = orjson.loads(path.read_bytes())
    except (orjson.JSONDecodeError, OSError) as exc:
        raise UserError(f"market calibration {path}: not readable JSON ({exc})") from None
    if not isinstance(calib, dict) or calib.get("schema") != SCHEMA:
        raise UserError(
            f"market calibration {path}: not a {SCHEMA} file (missing or wrong 'schema')"
        )
    _model_arrays(calib)  # validates every field the generator needs
    return calib
