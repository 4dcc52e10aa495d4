"""The embedded market: a calibrated stochastic limit order book that emits the normal event array.

Owns the generator (``generate`` / ``generate_chunks`` / ``generate_with_flow``) and the loading of
shipped calibrations (``load_calibration``). The model (DESIGN.md, "The embedded market"):

* a latent efficient price ``v`` (in ticks) follows a jump-diffusion (sigma; Poisson jumps with
  double-exponential sizes);
* the visible book is rebuilt around ``v`` level by level. Level k is the k-th price from ``v`` on
  each side, or from just inside the opposite touch when that is stale (never crossing it).
  Queue-reactive intensities (Huang-Lehalle-Rosenbaum 2015): makers join a level at
  ``refill * (D_k - q)+`` and leave it at ``excess * (q - D_k)+`` (queues left behind by a moving
  price are pulled), on top of a constant per-order cancel hazard (Cont-Stoikov-Talreja 2010). A
  touch on the wrong side of ``v`` (stale) melts: each of its orders is pulled at a calibrated
  rate (the race against the informed);
* market orders ("parents") come from noise traders (a
  Hawkes process: clustered arrivals, side persistence) and from informed traders who trade only
  when ``v`` is past the touch, with intensity growing with the mispricing and a limit at ``v``
  (Glosten-Milgrom). A noise sweep moves ``v`` by its touch move, saturating at a cap (impact is
  concave in a sweep's reach), times a permanent share plus a transient share that decays
  exponentially (a propagator, Bouchaud et al. 2004): the book is built around ``v`` while the
  informed trade against ``v`` without the transient part, so they arbitrage it away. Order flow
  carries information, and deep fills revert partly, as on the captures. A
  parent (sized from the capture's sweeps) fills maker orders one at a time, printing one TRADE
  per maker order (as venues do), at most the engine's calibrated prints per ms: a longer sweep
  goes on in the next ms (nothing else happens meanwhile) and the DEPTH rows of the levels it
  touched follow its last print, as on the venue's feed;
* fine-tick terms (the as-captured fits; off by default, so older calibrations generate the same
  bytes): stale pulls hit every order past v, not only the touch's; a queue-reactive join or
  cancel brings a level to its target in one row; and the makers re-centre their ladder only when
  v has moved more than a fitted hysteresis (on a 0.1 USDT tick a ladder keyed to v itself moved
  with every tick v crossed: the mid trailed v by seconds and the book emitted ~4x the capture's
  level updates); a stale pull can take the whole stale touch level in one row, its hazard per
  level (makers leave a level v has passed together: pulled order by order at the speed that keeps
  the mid on v, the touch changed far more often than the capture's);
* every visible change is emitted: DEPTH level updates (price, new total qty; 0 = delete) and
  TRADE prints (BUY flag = buyer aggressor), each consuming the touch it hits; feed latency follows
  the calibrated distribution with an AR(1) Gaussian copula (consecutive messages see similar
  latencies), local time kept non-decreasing.

The event loop is one numba function advancing an explicit state (own xoshiro256** RNG, book ring
buffers, pending event time and rates), so a long market can be produced in chunks whose
concatenation is byte-identical to one ``generate`` call with the same seed: a soak never holds a
whole day in memory. Intensities are evaluated at each event (piecewise constant between events;
the Hawkes decay is handled exactly by thinning).
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

# ring-buffer size of each book side, in ticks (power of two); levels farther than max_levels
# from the efficient price are trimmed and a stale side is capped at RING_TICKS/4 from it.
RING_TICKS = 4096
_RING_MASK = RING_TICKS - 1
MAX_DEPTH_LEVELS = RING_TICKS // 8  # most depth-target levels a calibration may list
# warm-up of the book before the snapshot, so the first emitted book is already in its regime
WARMUP_NS = 30_000_000_000
# prints one simulated event (one ms of a sweep) emits at most; the calibrated engine
# throughput (model.sweep_prints_per_ms) is capped at this
MAX_PRINTS = 512
# the first NEAR_LEVELS levels' intensities are exact at every event; deeper ones are refreshed
# every FAR_EVERY events or when the level grid moved by more than FAR_SHIFT ticks (speed)
NEAR_LEVELS = 16
FAR_EVERY = 16
FAR_SHIFT = 2

# --- layout of the float parameter vector handed to the compiled core -------------------------
P_SIGMA_TICKS = 0  # diffusion of v, ticks per sqrt(s)
P_JUMP_RATE = 1  # jumps per s
P_JUMP_TICKS = 2  # mean absolute jump size, ticks (double-exponential)
P_CANCEL_RATE = 3  # cancel hazard of a resting maker order, per s
P_REFILL_RATE = 4  # queue-reactive refill speed toward the level target, per s
P_STALE_RATE = 5  # cancel hazard of each order of a stale touch, per s
P_STALE_EDGE = 6  # how far (ticks) v must be past a touch before its makers pull it
P_NOISE_MU = 7  # Hawkes baseline, parent market orders per s (both sides)
P_HAWKES_N = 8  # branching ratio
P_HAWKES_BETA = 9  # kernel decay, per s
P_INFORMED_RATE = 10  # informed parents per s per tick of mispricing beyond the edge
P_INFORMED_EDGE = 11  # how far (ticks) v must be past the touch for the informed to trade
P_TICK_PX = 12
P_LOT_QTY = 13
P_MAKER_LOTS = 14  # mean maker order size, lots
P_SAME_SIDE = 15  # probability that a noise parent repeats the previous parent's side
P_IMPACT = 16  # share of a noise sweep's touch move that the efficient price keeps
P_LAT_TAU_S = 17  # correlation time of the feed latency, s
P_EXCESS_RATE = 18  # speed at which queues above their target are cancelled, per s
P_PRINTS_PER_MS = 19  # matching-engine throughput: prints one sweep stamps per ms
P_TRANSIENT = 20  # share of a noise sweep's touch move that displaces the book and then decays
P_TRANSIENT_DECAY = 21  # decay rate of that displacement, per s
P_IMPACT_CAP = 22  # ticks: the impact of a sweep saturates at this scale of its touch move
# 1: the stale-pull hazard covers every order on the wrong side of v, not only the touch's (on a
# fine tick v moves many levels past the touch, and pulling one level at a time left the mid
# trailing v by seconds: 60 s variance 3x the 1 s variance's sixtyfold). 0 (default): the touch's
P_STALE_DEPTH = 23
# 1: a queue-reactive cancel takes a level's whole excess over its target at once (one book row,
# as a depth-diff feed reports a level once per update) instead of one maker order (fine tick:
# the level ladder moves with v tick by tick, and order-by-order cancels were ~4x the capture's
# level updates). 0 (default): one maker order
P_EXCESS_WHOLE = 24
# 1: a queue-reactive join brings a level up to its target at once (one row), for the same reason
P_REFILL_WHOLE = 25
# ticks: makers re-centre the level ladder only when v has moved more than this from where it was
# last centred (fine tick: a ladder keyed to v itself moved with every tick v crossed, and the
# touch changed ~3x as often as the capture's). Stale pulls start this far past the touch too.
# 0 (default): the ladder follows v
P_REF_HYST = 26
# 1: a stale pull takes the whole stale touch level at once (one book row) and the pull hazard is
# per stale level, not per order (makers cancel quotes the efficient price has passed within a few
# ms of each other, and the depth-diff feed reports the level once). With per-order pulls fast
# enough to keep the mid on v, the touch changed ~2.5x as often as on the captures; slow enough to
# match the touch rate, the mid trailed v and its 100 ms returns continued each other
# (autocorrelation +0.14..+0.29 against the captures' +0.01..+0.10). 0 (default): one order
P_STALE_WHOLE = 27
N_PARAMS = 28

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
S_LAT_T_NS = 10  # exchange time of the last latency draw
S_FAR_AGE = 11  # draws since the deep-level sums were refreshed
S_FAR_TOP = 12  # bid / ask reference level they were computed for
S_FAR_BOT = 13
# a sweep longer than the engine prints in one ms continues at the next ms (the book rows of all
# the levels it consumed follow its last print, as on the venue's feed)
S_SWEEP_SIDE = 14  # +1 buy / -1 sell while a sweep is in progress, 0 otherwise
S_SWEEP_LOTS = 15  # lots the sweep still wants
S_SWEEP_NOISE = 16  # 1 if the sweep is a noise order (its touch move is partly permanent)
S_SWEEP_TOUCH0 = 17  # the opposite touch before the sweep's first print
S_SWEEP_NLV = 18  # levels it touched so far (their prices are in the sweep-level array)
S_SWEEP_LAST = 19  # last level it touched
N_ISTATE = 20
# --- float state: v, Hawkes excess, and the rates drawn with for the pending event -------------
F_V = 0
F_HAWKES = 1
F_BOUND = 2
F_R0 = 3  # 9 rates: bid arrivals, ask arrivals, bid cancels, ask cancels, informed buy,
N_RATES = 9  # informed sell, stale bid, stale ask, jump of v
K_JUMP = 8
K_SWEEP = N_RATES + 1  # the next ms of a sweep in progress (not a new order)
F_LAST_SIDE = F_R0 + N_RATES  # side of the last parent (+1 buy, -1 sell)
F_LAT_Z = F_LAST_SIDE + 1  # Gaussian state of the feed latency (AR(1) copula)
F_STEPS = F_LAT_Z + 1  # simulated events so far, by kind (-1 = null .. N_RATES = noise parent)
F_NEAR = F_STEPS + N_RATES + 2  # missing bid, missing ask, excess bid, excess ask: near levels
F_FAR = F_NEAR + 4  # the same over the deep levels (refreshed less often)
F_SPARE = F_FAR + 4  # second normal of the last Box-Muller pair, and whether it is unused
F_SPARE_OK = F_SPARE + 1
F_SWEEP_LIMIT = F_SPARE_OK + 1  # limit price (ticks) of the sweep in progress
# transient part of v (ticks): the book is built around v, the informed trade against v minus it
F_TRANSIENT = F_SWEEP_LIMIT + 1
F_VREF = F_TRANSIENT + 1  # where the makers' level ladder is centred (v, with P_REF_HYST)
N_FSTATE = F_VREF + 1

_NONE = -1  # empty book side

# rows one simulated event can emit at most: prints + depth rows of a sweep, plus trims
_RESERVE_ROWS = 2 * MAX_PRINTS + 4 * RING_TICKS + 64

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
def _normal(s: np.ndarray, fs: np.ndarray) -> float:
    """Standard normal (Box-Muller; the pair's second value is kept in the state)."""
    if fs[F_SPARE_OK] != 0.0:
        fs[F_SPARE_OK] = 0.0
        return fs[F_SPARE]
    u1 = 1.0 - _uniform(s)
    u2 = _uniform(s)
    rad = math.sqrt(-2.0 * math.log(u1))
    fs[F_SPARE] = rad * math.sin(2.0 * math.pi * u2)
    fs[F_SPARE_OK] = 1.0
    return rad * math.cos(2.0 * math.pi * u2)


@njit(cache=True)
def _table_sample(s: np.ndarray, tab: np.ndarray) -> float:
    """Inverse-CDF sample from positive quantiles ``tab`` at equally spaced probabilities 0..1,
    interpolated geometrically: sizes are heavy-tailed, and a straight line between two far
    apart tail quantiles would inflate the mean."""
    m = tab.shape[0]
    x = _uniform(s) * (m - 1)
    i = int(x)
    if i >= m - 1:
        return tab[m - 1]
    f = x - i
    return tab[i] * (tab[i + 1] / tab[i]) ** f


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
    out: np.ndarray,
) -> int:
    r = out[n]
    r.ev = ev
    r.exch_ts = exch_ns
    r.local_ts = local_ns
    r.px = px
    r.qty = qty
    r.order_id = 0
    r.ival = 0
    r.fval = 0.0
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


@njit(cache=True, inline="always")
def _lvl(q: np.ndarray, p: int) -> int:
    return q[p & _RING_MASK] if p != _NONE else 0


@njit(cache=True)
def _stale_lots(q: np.ndarray, touch: int, stop: int, edge: float, sgn: int) -> float:
    """Lots resting on the wrong side of ``edge`` (bids above it: sgn -1; asks below: sgn 1),
    from the touch inward."""
    if touch == _NONE:
        return 0.0
    tot = 0.0
    p = touch
    while p > edge if sgn < 0 else p < edge:
        tot += q[p & _RING_MASK]
        if p == stop:
            break
        p += sgn
    return tot


@njit(cache=True)
def _stale_levels(q: np.ndarray, touch: int, stop: int, edge: float, sgn: int) -> float:
    """Non-empty levels on the wrong side of ``edge`` (as ``_stale_lots``), from the touch inward."""
    if touch == _NONE:
        return 0.0
    tot = 0.0
    p = touch
    while p > edge if sgn < 0 else p < edge:
        if q[p & _RING_MASK] > 0:
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


@njit(cache=True)
def _zone_sums(
    target: np.ndarray, q: np.ndarray, ref: int, sgn: int, k0: int, k1: int
) -> tuple[float, float]:
    """(missing, excess) queue vs target over levels k0..k1-1 counted from ``ref``."""
    gap = 0.0
    ex = 0.0
    for k in range(k0, k1):
        d = target[k] - q[(ref + sgn * k) & _RING_MASK]
        if d > 0:
            gap += d
        else:
            ex -= d
    return gap, ex


@njit(cache=True)
def _pick_level(
    rng: np.ndarray,
    target: np.ndarray,
    q: np.ndarray,
    ref: int,
    sgn: int,
    k0: int,
    k1: int,
    excess: bool,
) -> int:
    """A level k in k0..k1-1 drawn in proportion to its missing (or excess) queue; -1 if none."""
    tot = 0.0
    for k in range(k0, k1):
        d = target[k] - q[(ref + sgn * k) & _RING_MASK]
        if excess:
            d = -d
        if d > 0:
            tot += d
    if tot <= 0.0:
        return -1
    y = _uniform(rng) * tot
    c = 0.0
    for k in range(k0, k1):
        d = target[k] - q[(ref + sgn * k) & _RING_MASK]
        if excess:
            d = -d
        if d > 0:
            c += d
            if y < c:
                return k
    return k1 - 1


@njit(cache=True)
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
    f = v - fs[F_TRANSIENT]
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
        r[6] = P[P_STALE_RATE] * _lvl(bq, bb) / maker if (bb != _NONE and bb > v + st_edge) else 0.0
        r[7] = P[P_STALE_RATE] * _lvl(aq, ba) / maker if (ba != _NONE and ba < v - st_edge) else 0.0
    r[K_JUMP] = P[P_JUMP_RATE]
    bound = P[P_NOISE_MU] + fs[F_HAWKES]
    for i in range(N_RATES):
        bound += r[i]
    fs[F_BOUND] = bound
    ist[S_PENDING_NS] = ist[S_T_NS] + int(_exp1(rng) / bound * 1e9)
    ist[S_HAS_PENDING] = 1


@njit(cache=True)
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


@njit(cache=True)
def _maker_lots(rng: np.ndarray, maker_tab: np.ndarray, lot: float) -> int:
    lots = int(_table_sample(rng, maker_tab) / lot + 0.5)
    return lots if lots > 0 else 1


@njit(cache=True, nogil=True)  # the fit runs two markets in threads
def _advance(
    P: np.ndarray,
    target: np.ndarray,
    maker_tab: np.ndarray,
    parent_tab: np.ndarray,
    lat_tab: np.ndarray,
    fs: np.ndarray,
    ist: np.ndarray,
    rng: np.ndarray,
    bq: np.ndarray,
    aq: np.ndarray,
    lv: np.ndarray,
    t_end_ns: int,
    emit: bool,
    out: np.ndarray,
) -> int:
    """Run the market until the next event would be at or after ``t_end_ns`` or the output
    buffer is nearly full. Returns the number of rows written (0 when ``emit`` is False)."""
    cap = out.shape[0] - _RESERVE_ROWS
    n = 0
    tick = P[P_TICK_PX]
    lot = P[P_LOT_QTY]
    sigma = P[P_SIGMA_TICKS]
    jump_ticks = P[P_JUMP_TICKS]
    mu = P[P_NOISE_MU]
    hawkes_jump = P[P_HAWKES_N] * P[P_HAWKES_BETA]
    beta = P[P_HAWKES_BETA]
    inf_edge = P[P_INFORMED_EDGE]
    kmax = target.shape[0]
    theta = P[P_CANCEL_RATE]
    maker = P[P_MAKER_LOTS]
    per_ms = int(P[P_PRINTS_PER_MS])
    if per_ms <= 0 or per_ms > MAX_PRINTS:
        per_ms = MAX_PRINTS
    r = fs[F_R0:]
    while True:
        if ist[S_HAS_PENDING] == 0:
            _draw_next(P, target, fs, ist, rng, bq, aq)
        if ist[S_PENDING_NS] >= t_end_ns or n >= cap:
            return n
        t_new = ist[S_PENDING_NS]
        ist[S_HAS_PENDING] = 0
        dt_s = (t_new - ist[S_T_NS]) * 1e-9
        ist[S_T_NS] = t_new
        hx = fs[F_HAWKES] * math.exp(-beta * dt_s)
        fs[F_HAWKES] = hx
        if ist[S_SWEEP_SIDE] != 0:
            # the engine is still printing a sweep: its next ms (nothing else happens meanwhile)
            kind = K_SWEEP
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
            if kind < 0 and x < acc + mu + hx:
                kind = N_RATES  # noise parent
            fs[F_STEPS + 1 + kind] += 1.0
        # ---- the efficient price moves over the gap --------------------------------------
        v = fs[F_V] + sigma * math.sqrt(dt_s) * _normal(rng, fs)
        if kind == K_JUMP:
            # jumps of v are events of their own (Poisson), double-exponential in size
            sz = jump_ticks * _exp1(rng)
            v += sz if _uniform(rng) < 0.5 else -sz
        u = fs[F_TRANSIENT]
        if u != 0.0:
            # the transient displacement of recent sweeps relaxes (propagator: impact decays)
            du = u * (1.0 - math.exp(-P[P_TRANSIENT_DECAY] * dt_s))
            v -= du
            fs[F_TRANSIENT] = u - du
        fs[F_V] = v
        if kind < 0 or kind == K_JUMP:
            continue
        bb = ist[S_BEST_BID]
        ba = ist[S_BEST_ASK]
        local_ns = 0
        if emit:
            local_ns = t_new + _latency_ns(P, lat_tab, fs, ist, rng, t_new)
            if local_ns < ist[S_LAST_LOCAL_NS]:
                local_ns = ist[S_LAST_LOCAL_NS]
            ist[S_LAST_LOCAL_NS] = local_ns
        if kind == 0 or kind == 1:
            # a maker joins the level whose queue is furthest below its target (in proportion)
            if kind == 0:
                ref = _bid_top(_ladder_v(P, fs), ba)
                q = bq
                sgn = -1
            else:
                ref = _ask_bot(_ladder_v(P, fs), bb)
                q = aq
                sgn = 1
            kq = NEAR_LEVELS if kmax > NEAR_LEVELS else kmax
            zone_near = fs[F_NEAR + kind]
            if _uniform(rng) * (zone_near + fs[F_FAR + kind]) < zone_near:
                k = _pick_level(rng, target, q, ref, sgn, 0, kq, False)
            else:
                k = _pick_level(rng, target, q, ref, sgn, kq, kmax, False)
            if k >= 0:
                p = ref + sgn * k
                j = p & _RING_MASK
                lots = _maker_lots(rng, maker_tab, lot)
                if P[P_REFILL_WHOLE] > 0.0 and target[k] - q[j] > lots:
                    lots = int(target[k] - q[j])
                q[j] += lots
                if kind == 0:
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
                            q[j] * lot,
                            out,
                        )
                else:
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
                            q[j] * lot,
                            out,
                        )
        elif kind == 2 or kind == 3 or kind == 6 or kind == 7:
            # one maker order leaves: any level in proportion to its queue, or the stale touch
            bid = kind == 2 or kind == 6
            q = bq if bid else aq
            if bid:
                tot_lots = ist[S_QB_LOTS]
                p = bb
                stop = ist[S_LO_BID]
            else:
                tot_lots = ist[S_QA_LOTS]
                p = ba
                stop = ist[S_HI_ASK]
            excess = False
            if p != _NONE and tot_lots > 0 and (kind == 2 or kind == 3):
                # part of this rate is the queue-reactive cancel of queues above their target
                base = theta * tot_lots / maker
                if _uniform(rng) * r[kind] >= base:
                    excess = True
                    vr = _ladder_v(P, fs)
                    ref = _bid_top(vr, ba) if bid else _ask_bot(vr, bb)
                    sgn = -1 if bid else 1
                    kq = NEAR_LEVELS if kmax > NEAR_LEVELS else kmax
                    zone_near = fs[F_NEAR + kind]  # kind 2/3 -> excess slots 2/3
                    if _uniform(rng) * (zone_near + fs[F_FAR + kind]) < zone_near:
                        k = _pick_level(rng, target, q, ref, sgn, 0, kq, True)
                    else:
                        k = _pick_level(rng, target, q, ref, sgn, kq, kmax, True)
                    p = ref + sgn * k if k >= 0 else _NONE
                else:
                    y = _uniform(rng) * tot_lots
                    c = 0.0
                    while True:
                        c += q[p & _RING_MASK]
                        if y < c or p == stop:
                            break
                        p = p - 1 if bid else p + 1
            if p != _NONE and tot_lots > 0:
                j = p & _RING_MASK
                if q[j] > 0:
                    lots = _maker_lots(rng, maker_tab, lot)
                    if lots > q[j]:
                        lots = q[j]
                    if excess and (lots > q[j] - target[abs(p - ref)] or P[P_EXCESS_WHOLE] > 0.0):
                        lots = max(q[j] - int(target[abs(p - ref)]), 1)
                    elif kind >= 6 and P[P_STALE_WHOLE] > 0.0:
                        lots = q[j]
                    q[j] -= lots
                    if bid:
                        ist[S_QB_LOTS] -= lots
                        if emit:
                            n = _emit(
                                n,
                                _EV_BID_DEPTH,
                                t_new,
                                local_ns,
                                p * tick,
                                q[j] * lot,
                                out,
                            )
                        if q[j] == 0 and p == bb:
                            ist[S_BEST_BID] = _scan_bid_down(bq, p - 1, ist[S_LO_BID])
                    else:
                        ist[S_QA_LOTS] -= lots
                        if emit:
                            n = _emit(
                                n,
                                _EV_ASK_DEPTH,
                                t_new,
                                local_ns,
                                p * tick,
                                q[j] * lot,
                                out,
                            )
                        if q[j] == 0 and p == ba:
                            ist[S_BEST_ASK] = _scan_ask_up(aq, p + 1, ist[S_HI_ASK])
        else:
            # a parent market order: noise (random side, no limit) or informed (limit v -/+ edge);
            # K_SWEEP is the next ms of a sweep in progress
            if kind != K_SWEEP:
                if kind == N_RATES:
                    # clustered flow keeps its direction with probability same_side
                    same = _uniform(rng) < P[P_SAME_SIDE]
                    buy = fs[F_LAST_SIDE] > 0 if same else _uniform(rng) < 0.5
                    limit_ticks = 1e300 if buy else -1e300
                    # self-excitation among noise traders only: an informed order exciting noise
                    # flow, whose permanent impact feeds the informed again, would be a runaway loop
                    fs[F_HAWKES] = hx + hawkes_jump
                    fs[F_LAST_SIDE] = 1.0 if buy else -1.0
                else:
                    buy = kind == 4
                    f = v - fs[F_TRANSIENT]
                    limit_ticks = f - inf_edge if buy else f + inf_edge
                lots = int(_table_sample(rng, parent_tab) / lot + 0.5)
                ist[S_SWEEP_LOTS] = lots if lots > 0 else 1
                ist[S_SWEEP_SIDE] = 1 if buy else -1
                ist[S_SWEEP_NOISE] = 1 if kind == N_RATES else 0
                fs[F_SWEEP_LIMIT] = limit_ticks
                touch0 = ist[S_BEST_ASK] if buy else ist[S_BEST_BID]
                ist[S_SWEEP_TOUCH0] = touch0
                ist[S_SWEEP_LAST] = touch0
                ist[S_SWEEP_NLV] = 0
            buy = ist[S_SWEEP_SIDE] > 0
            limit_ticks = fs[F_SWEEP_LIMIT]
            lots = ist[S_SWEEP_LOTS]
            nlv = ist[S_SWEEP_NLV]
            q = aq if buy else bq
            prints = 0
            more = False
            while lots > 0:
                p = ist[S_BEST_ASK] if buy else ist[S_BEST_BID]
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
                j = p & _RING_MASK
                ist[S_SWEEP_LAST] = p
                # fill the level's maker orders one at a time (one print each)
                while lots > 0 and q[j] > 0 and prints < per_ms:
                    take = _maker_lots(rng, maker_tab, lot)
                    if take > lots:
                        take = lots
                    if take > q[j]:
                        take = q[j]
                    q[j] -= take
                    lots -= take
                    prints += 1
                    if emit:
                        n = _emit(
                            n,
                            _EV_BUY_TRADE if buy else _EV_SELL_TRADE,
                            t_new,
                            local_ns,
                            p * tick,
                            take * lot,
                            out,
                        )
                    if buy:
                        ist[S_QA_LOTS] -= take
                    else:
                        ist[S_QB_LOTS] -= take
                if q[j] == 0:
                    if buy:
                        ist[S_BEST_ASK] = _scan_ask_up(aq, p + 1, ist[S_HI_ASK])
                    else:
                        ist[S_BEST_BID] = _scan_bid_down(bq, p - 1, ist[S_LO_BID])
            ist[S_SWEEP_LOTS] = lots
            ist[S_SWEEP_NLV] = nlv
            if more:
                ist[S_PENDING_NS] = t_new + 1_000_000
                ist[S_HAS_PENDING] = 1
                continue
            # the sweep is over: one book row per level it touched, after its last print
            if emit:
                for i in range(nlv):
                    p = lv[i]
                    n = _emit(
                        n,
                        _EV_ASK_DEPTH if buy else _EV_BID_DEPTH,
                        t_new,
                        local_ns,
                        p * tick,
                        q[p & _RING_MASK] * lot,
                        out,
                    )
            touch0 = ist[S_SWEEP_TOUCH0]
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
                v += (P[P_IMPACT] + P[P_TRANSIENT]) * move
                fs[F_TRANSIENT] += P[P_TRANSIENT] * move
                fs[F_V] = v
            ist[S_SWEEP_SIDE] = 0
        # ---- trim levels that fell too far from the efficient price ----------------------------
        n = _trim(
            _ladder_v(P, fs),
            kmax,
            emit,
            tick,
            lot,
            t_new,
            local_ns,
            ist,
            bq,
            aq,
            n,
            out,
        )


@njit(cache=True)
def _trim(v, kmax, emit, tick, lot, t_new, local_ns, ist, bq, aq, n, out) -> int:
    # levels are counted from the reference price (v, or just inside a stale opposite touch): a
    # book stays behind a stale opposite side instead of being trimmed away as it is rebuilt
    far = _bid_top(v, ist[S_BEST_ASK]) - kmax - 1
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
                        out,
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
                    out,
                )
            ist[S_BEST_BID] = _scan_bid_down(bq, p - 1, ist[S_LO_BID])
    far = _ask_bot(v, ist[S_BEST_BID]) + kmax + 1
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
                        out,
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
                    out,
                )
            ist[S_BEST_ASK] = _scan_ask_up(aq, p + 1, ist[S_HI_ASK])
    return n


@njit(cache=True)
def _snapshot(
    P: np.ndarray,
    lat_tab: np.ndarray,
    fs: np.ndarray,
    ist: np.ndarray,
    rng: np.ndarray,
    bq: np.ndarray,
    aq: np.ndarray,
    t_ns: int,
    out: np.ndarray,
) -> int:
    """Emit the current book as DEPTH_SNAPSHOT rows (bids best-first, then asks best-first)."""
    tick = P[P_TICK_PX]
    lot = P[P_LOT_QTY]
    local_ns = t_ns + _latency_ns(P, lat_tab, fs, ist, rng, t_ns)
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
                    out,
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
                    out,
                )
            p += 1
    return n


# ================================== Python API ==================================================
def _table(x: Any, name: str, *, positive: bool) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if (
        a.ndim != 1
        or len(a) < 2
        or not np.all(np.isfinite(a))
        or np.any(a <= 0 if positive else a < 0)
    ):
        raise UserError(
            f"calibration: {name} must be a list of >= 2 finite quantiles {'> 0' if positive else '>= 0'}"
        )
    return np.sort(a)


def model_arrays(
    calib: dict,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Translate a calibration dict (bps / qty / s units) into the core's tick/lot arrays:
    (params, depth target per level in lots, maker size table, parent size table, latency table,
    initial efficient price in ticks). Raises UserError naming the bad field."""
    try:
        m = calib["model"]
        tick_px = float(calib["tick_px"])
        lot_qty = float(calib["lot_qty"])
        price0_px = float(calib["price0_px"])
        if not (tick_px > 0 and lot_qty > 0 and price0_px > 0):
            raise UserError("calibration: tick_px, lot_qty and price0_px must be > 0")
        ticks_per_bps = price0_px * 1e-4 / tick_px
        maker_tab = _table(
            m["maker_size_quantiles_qty"], "model.maker_size_quantiles_qty", positive=True
        )
        parent_tab = _table(
            m["parent_size_quantiles_qty"], "model.parent_size_quantiles_qty", positive=True
        )
        lat_tab = _table(
            calib["feed_latency_quantiles_ns"], "feed_latency_quantiles_ns", positive=False
        )
        # maker orders are the prints' parents' counterparts: the capture shows them only as
        # (truncated) print sizes, so their scale is fitted to the capture's prints per order
        maker_tab = maker_tab * float(m.get("maker_size_scale", 1.0))
        target = np.asarray(m["depth_target_qty"], dtype=np.float64)
        P = np.zeros(N_PARAMS, dtype=np.float64)
        P[P_SIGMA_TICKS] = float(m["sigma_bps_per_sqrt_s"]) * ticks_per_bps
        P[P_JUMP_RATE] = float(m["jump_rate_per_s"])
        P[P_JUMP_TICKS] = float(m["jump_size_bps"]) * ticks_per_bps
        P[P_CANCEL_RATE] = float(m["cancel_rate_per_s"])
        P[P_REFILL_RATE] = float(m["refill_rate_per_s"])
        # queues left behind by a moving price are pulled at this speed (default: the refill's)
        P[P_EXCESS_RATE] = float(m.get("excess_cancel_rate_per_s", m["refill_rate_per_s"]))
        P[P_STALE_RATE] = float(m["stale_cancel_rate_per_s"])
        P[P_STALE_EDGE] = float(m["stale_edge_bps"]) * ticks_per_bps
        P[P_NOISE_MU] = float(m["noise_base_rate_per_s"])
        P[P_HAWKES_N] = float(m["hawkes_branching_ratio"])
        P[P_HAWKES_BETA] = float(m["hawkes_decay_per_s"])
        P[P_INFORMED_RATE] = float(m["informed_rate_per_s_per_bps"]) / ticks_per_bps
        P[P_INFORMED_EDGE] = float(m["informed_edge_bps"]) * ticks_per_bps
        P[P_TICK_PX] = tick_px
        P[P_LOT_QTY] = lot_qty
        P[P_MAKER_LOTS] = max(float(np.mean(maker_tab)) / lot_qty, 1.0)
        P[P_SAME_SIDE] = float(m.get("same_side_ratio", 0.0))
        P[P_IMPACT] = float(m["impact_permanence_ratio"])
        P[P_LAT_TAU_S] = float(calib.get("feed_latency_corr_s", 0.0))
        P[P_PRINTS_PER_MS] = float(m.get("sweep_prints_per_ms", MAX_PRINTS))
        P[P_TRANSIENT] = float(m.get("impact_transient_ratio", 0.0))
        P[P_TRANSIENT_DECAY] = float(m.get("impact_decay_per_s", 1.0))
        P[P_IMPACT_CAP] = float(m.get("impact_cap_bps", 0.0)) * ticks_per_bps
        P[P_STALE_DEPTH] = float(m.get("stale_pull_depth", 0.0))
        P[P_EXCESS_WHOLE] = float(m.get("excess_cancel_whole", 0.0))
        P[P_REFILL_WHOLE] = float(m.get("refill_whole", 0.0))
        P[P_REF_HYST] = float(m.get("ladder_hysteresis_bps", 0.0)) * ticks_per_bps
        P[P_STALE_WHOLE] = float(m.get("stale_pull_whole", 0.0))
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"calibration: missing or malformed field {exc!s}") from None
    if not np.all(np.isfinite(P)) or np.any(P < 0):
        raise UserError("calibration: model parameters must be finite and >= 0")
    if P[P_HAWKES_N] >= 1.0:
        raise UserError("calibration: model.hawkes_branching_ratio must be < 1 (stationary)")
    if (
        target.ndim != 1
        or not (1 <= len(target) <= MAX_DEPTH_LEVELS)
        or not np.all(np.isfinite(target))
        or np.any(target < 0)
        or target.sum() <= 0
    ):
        raise UserError(
            f"calibration: model.depth_target_qty must list 1..{MAX_DEPTH_LEVELS} depths >= 0 (not all 0)"
        )
    target_lots = np.round(target / lot_qty)
    return P, target_lots, maker_tab, parent_tab, lat_tab, price0_px / tick_px


class _Market:
    """Mutable generator state (arrays only, so the compiled core can advance it)."""

    def __init__(self, calib: dict, seed: int, start_ts_ns: int) -> None:
        self.P, self.target, self.maker_tab, self.parent_tab, self.lat_tab, v0 = model_arrays(calib)
        self.rng = _seed_state(seed)
        self.bq = np.zeros(RING_TICKS, dtype=np.int64)
        self.aq = np.zeros(RING_TICKS, dtype=np.int64)
        self.lv = np.zeros(RING_TICKS // 8 + 1, dtype=np.int64)  # levels of the sweep in progress
        self.fs = np.zeros(N_FSTATE, dtype=np.float64)
        self.ist = np.zeros(N_ISTATE, dtype=np.int64)
        self.fs[F_V] = v0
        self.ist[S_T_NS] = int(start_ts_ns) - WARMUP_NS
        self.ist[S_BEST_BID] = _NONE
        self.ist[S_BEST_ASK] = _NONE
        self.ist[S_FAR_AGE] = FAR_EVERY
        self.start_ts_ns = int(start_ts_ns)

    def run(self, t_end_ns: int, emit: bool, cap: int) -> np.ndarray:
        """Advance to ``t_end_ns`` and return the emitted events (buffers of ``cap`` rows)."""
        parts = []
        cap = max(cap, 2 * _RESERVE_ROWS)
        while True:
            out = np.empty(cap, dtype=EVENT_DTYPE)
            n = _advance(
                self.P,
                self.target,
                self.maker_tab,
                self.parent_tab,
                self.lat_tab,
                self.fs,
                self.ist,
                self.rng,
                self.bq,
                self.aq,
                self.lv,
                t_end_ns,
                emit,
                out,
            )
            if emit and n:
                parts.append(_pack(out, n))
            if self.ist[S_HAS_PENDING] and self.ist[S_PENDING_NS] >= t_end_ns:
                break
        if not parts:
            return np.zeros(0, dtype=EVENT_DTYPE)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def snapshot(self) -> np.ndarray:
        cap = 4 * RING_TICKS
        out = np.empty(cap, dtype=EVENT_DTYPE)
        n = _snapshot(
            self.P,
            self.lat_tab,
            self.fs,
            self.ist,
            self.rng,
            self.bq,
            self.aq,
            self.start_ts_ns,
            out,
        )
        return _pack(out, n)


def _pack(out: np.ndarray, n: int) -> np.ndarray:
    """The filled part of a buffer; copied when the buffer is mostly empty (memory)."""
    return out[:n] if 2 * n >= len(out) else out[:n].copy()


def _rows_per_s_guess(calib: dict) -> float:
    """Rough emitted rows per second (buffer sizing only; the buffers grow when short)."""
    fit = calib.get("fit_stats") or calib.get("target_stats") or {}
    try:
        return max(
            100.0, float(fit.get("n_events", 0)) / max(float(fit.get("duration_s", 1.0)), 1e-9)
        )
    except (TypeError, ValueError):
        return 2000.0


def generate_chunks(
    calib: dict, seed: int, start_ts_ns: int, duration_ns: int, chunk_ns: int = 600_000_000_000
) -> Iterator[np.ndarray]:
    """Yield the market in consecutive exchange-time chunks of ``chunk_ns`` (the first starts
    with the DEPTH_SNAPSHOT of the initial book). Concatenated, the chunks equal
    ``generate(calib, seed, start_ts_ns, duration_ns)`` byte for byte."""
    if int(duration_ns) <= 0:
        raise UserError(f"synthetic market: duration must be > 0 ns, got {duration_ns}")
    if int(chunk_ns) <= 0:
        raise UserError(f"synthetic market: chunk must be > 0 ns, got {chunk_ns}")
    mk = _Market(calib, seed, start_ts_ns)
    mk.run(int(start_ts_ns), emit=False, cap=1 << 16)
    rows_per_s = _rows_per_s_guess(calib)
    end_ns = int(start_ts_ns) + int(duration_ns)
    t = int(start_ts_ns)
    first: np.ndarray | None = mk.snapshot()
    while t < end_ns:
        t_next = min(end_ns, t + int(chunk_ns))
        cap = min(int(rows_per_s * (t_next - t) * 1e-9 * 1.2) + 4 * _RESERVE_ROWS, 4_000_000)
        body = mk.run(t_next, emit=True, cap=cap)
        if first is not None:
            body = np.concatenate([first, body])
            first = None
        yield body
        t = t_next


def generate_with_flow(
    calib: dict, seed: int, start_ts_ns: int, duration_ns: int
) -> tuple[np.ndarray, dict[str, float]]:
    """``generate`` plus the counts of simulated order-flow events by origin (what the event
    array cannot show): noise and informed market orders, stale pulls, jumps of v."""
    if int(duration_ns) <= 0:
        raise UserError(f"synthetic market: duration must be > 0 ns, got {duration_ns}")
    mk = _Market(calib, seed, start_ts_ns)
    mk.run(int(start_ts_ns), emit=False, cap=1 << 16)
    before = mk.fs[F_STEPS : F_STEPS + N_RATES + 2].copy()
    first = mk.snapshot()
    cap = min(
        int(_rows_per_s_guess(calib) * int(duration_ns) * 1e-9 * 1.2) + 4 * _RESERVE_ROWS, 4_000_000
    )
    body = mk.run(int(start_ts_ns) + int(duration_ns), emit=True, cap=cap)
    steps = mk.fs[F_STEPS : F_STEPS + N_RATES + 2] - before
    noise = float(steps[1 + N_RATES])
    informed = float(steps[1 + 4] + steps[1 + 5])
    flow = {
        "noise_orders": noise,
        "informed_orders": informed,
        "informed_share_of_orders": informed / (noise + informed) if noise + informed > 0 else 0.0,
        "stale_pulls": float(steps[1 + 6] + steps[1 + 7]),
        "jumps": float(steps[1 + K_JUMP]),
    }
    return np.concatenate([first, body]), flow


def generate(calib: dict, seed: int, start_ts_ns: int, duration_ns: int) -> np.ndarray:
    """The synthetic market from ``start_ts_ns`` for ``duration_ns`` as one EVENT_DTYPE array
    (deterministic by ``seed``; starts with a DEPTH_SNAPSHOT of the initial book)."""
    parts = list(generate_chunks(calib, seed, start_ts_ns, duration_ns, chunk_ns=int(duration_ns)))
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
    model_arrays(calib)  # validates every field the generator needs
    return calib
