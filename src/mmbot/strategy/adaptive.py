"""The adaptive quoter: a GLFT grid whose spread covers the measured adverse selection.

Owns ``STATE_DTYPE`` (its whole memory), ``PARAMS`` (every piece switchable, so its contribution
can be measured by switching it off) and the three contract functions. Pieces:

- **Adverse-selection floor** (``as_on``): after each of our fills, the mid's move against us over
  ``as_horizon_ms`` (the audit's 1 s markout horizon) is measured, per side, into an exponentially
  weighted mean with a prior (``as_prior_bps`` worth ``as_prior_fills`` fills). The half-spread is at
  least ``as_mult`` x that mean, so the expected gross of a fill covers the expected adverse move.
- **Short-horizon fair value** (``fv_on``): microprice offset, depth imbalance (top
  ``FV_DEPTH`` levels) and decayed signed trade flow, regressed online (exponentially weighted ridge
  least squares) on the mid change ``fv_horizon_ms`` ahead. The prediction shifts the quote centre
  (``fv_coef`` x prediction) and a side whose predicted adverse move exceeds ``pull_ratio`` x the
  half-spread is pulled (not quoted).
- **GLFT half-spread and inventory skew** (``skew_on``): c1 + sigma c2 / 2 (ticks) from the online
  volatility and trade-arrival intensity fits shared with ``glft``; the skew is ``skew_coef`` x
  sigma c2 x position (in orders), at most ``skew_cap_ratio`` half-spreads. With
  ``skew_widen_only`` it pushes only the side that would add to the position further away (the
  reducing side stays where the sweeps pay for it; moved to the touch it is picked off there);
  without, it moves the centre as GLFT does.
- **Fees** (``fee_on``): the maker fee (a rebate: negative) is added to both floors below, so a
  depth is quoted only where its measured markout also pays the fee.
- **Grid** (``n_levels``): levels ``level_step_ratio`` half-spreads (at least one tick) apart per
  side, each one order; a level is quoted only while the position limit leaves room for it and the
  levels nearer the touch.
- **Queue-aware requoting** (``requote_tol_ratio``): a working order within that fraction of the
  side's half-spread of its new target keeps its price (its queue place is worth more than the move).
- **Warm-up** (``warmup_s``, ``warmup_trades``): nothing is quoted (``NOQUOTE_WARMUP``) until that much
  market time and that many trades were seen and the fair-value regression has ``fv_min_samples``.

Prices never improve the touch (a bid at most the best bid): the edge is taken from sweeps that
reach the grid, not from racing for the touch, where the captures show 1-1.5 bps of adverse move per
fill.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from mmbot.strategy import glft
from mmbot.strategy.contract import NOQUOTE_NO_BOOK, NOQUOTE_PAUSED, NOQUOTE_WARMUP, Quoter
from mmbot.strategy.views import ORD_NONE

LEVELS = 4  # slots the engine manages per side; n_levels <= LEVELS are used
# woken on the interval only (as hftbacktest's elapse loop): the estimators need no per-message
# wake, the quotes rest several ticks from the touch, and a backtest is ~2x faster (usdm)
WAKE_INTERVAL_MS = 100.0
WAKE_ON_MARKET = False
FV_N = 3  # fair-value features: microprice offset, depth imbalance, trade flow
FV_DEPTH = 5  # book levels per side in the imbalance feature
FV_RING = 128  # samples kept for the regression's delayed target (horizon / sample <= this)
PENDING = 64  # our fills waiting for their markout horizon
SWEEPS = 2048  # market sweeps waiting for their markout horizon
# candidate quote depths (bps from the mid before a sweep) whose markout is measured on every sweep
DEPTH_BPS = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0])
N_DEPTHS = 14
_LN2 = math.log(2.0)

# Every default below says which data chose it. "synthetic" = the default synthetic market,
# seeds 11-13, 1 h each (seeds 1-3 are kept for reporting); "usdm" = the shared USD-M BTCUSDT
# capture. The spot BTCUSDT capture chose nothing (held out).
PARAMS: dict[str, float] = {
    # adverse-selection floor
    "as_on": 1.0,
    "as_horizon_ms": 1000.0,  # the audit's 1 s markout horizon (not tuned)
    "as_mult": 1.0,  # break-even by construction; synthetic
    "as_prior_bps": 1.0,  # the measured 1-1.5 bps adverse move per touch fill (usdm)
    "as_prior_fills": 5.0,
    "as_halflife_fills": 30.0,
    # markout of candidate depths on every market sweep -> the quoted depth per side
    "mk_on": 1.0,
    "mk_horizon_ms": 5000.0,  # the audit's 5 s horizon: usdm (1 s: 4 fills, 5 s: 19)
    "mk_halflife_s": 600.0,
    "mk_prior_bps": -1.0,
    "mk_prior_n": 5.0,
    "mk_margin_bps": 0.0,
    "mk_through": 1.0,
    # the maker fee (or rebate) in both floors: the markout-selected depth and the adverse floor
    "fee_on": 1.0,  # by construction; synthetic 11-13 and both captures agreed
    # fair value
    "fv_on": 1.0,
    "fv_horizon_ms": 1000.0,
    "fv_sample_ms": 100.0,
    "fv_halflife_s": 300.0,
    "fv_ridge": 10.0,
    "fv_min_samples": 300.0,
    "fv_coef": 1.0,
    "flow_halflife_s": 2.0,
    "pull_ratio": 1.0,
    # GLFT
    "skew_on": 1.0,
    "gamma": 0.05,  # hftbacktest's GLFT tutorial value (not tuned)
    "glft_adj": 1.0,
    "skew_coef": 5.0,  # synthetic seeds 11-17 (3 h) and both captures: 1, 3, 5, 8, 12 tried
    "skew_cap_ratio": 2.0,
    "skew_widen_only": 1.0,  # both captures (a centre shift lost there); synthetic 11-17
    # the fraction of the inventory skew (bps, capped as the skew is) a fill reducing a position
    # of at least reduce_min_ratio x the position limit is worth in that side's depth choice and
    # adverse floor (0: the reducing side needs the same markout as the other). Synthetic seeds
    # 11-17 (3 h, limit 20 orders): ratio 0.5/1/2 x from 0/3/4/5 orders tried; from 5 orders
    # (0.25) neither capture's run changes (their positions stay smaller) and the worst seed goes
    # from -1.206 to +0.573 bps
    "skew_reduce_ratio": 2.0,
    "reduce_min_ratio": 0.25,
    "min_half_ticks": 1.0,
    # soft inventory limit: the side adding to the position is not quoted from this many orders
    # of position (0: off; the run's max_position_qty still applies). Synthetic 11-17: 3/5/8
    # tried, none raised the worst seed as much as skew_reduce_ratio did: off
    "inv_max_orders": 0.0,
    # grid and requoting
    "n_levels": 2.0,
    "level_step_ratio": 1.0,
    "requote_tol_ratio": 0.25,  # of the side's half-spread (the manager's reprice_tol_ratio)
    # warm-up
    "warmup_s": 30.0,
    "warmup_trades": 50.0,
}

STATE_DTYPE = np.dtype(
    [
        # glft's estimator and sweep fields (its compiled functions run on this state)
        *glft.ESTIMATOR_FIELDS,
        *glft.SWEEP_FIELDS,
        # warm-up
        ("first_ns", "i8"),
        # signed trade flow (decayed) and its decayed absolute for scale
        ("flow", "f8"),
        ("flow_abs", "f8"),
        ("flow_ns", "i8"),
        # fair-value regression: ring of (time, features, mid) samples and the weighted sums
        ("ring_ns", "i8", (FV_RING,)),
        ("ring_x", "f8", (FV_RING, FV_N)),
        ("ring_mid", "f8", (FV_RING,)),
        ("ring_head", "i8"),  # next sample slot
        ("ring_tail", "i8"),  # oldest sample not yet used as a regression row
        ("next_sample_ns", "i8"),
        ("sxx", "f8", (FV_N, FV_N)),
        ("sxy", "f8", (FV_N,)),
        ("beta", "f8", (FV_N,)),
        ("n_rows", "i8"),
        ("pred_ticks", "f8"),
        # adverse selection after our fills, per side (0 bought, 1 sold)
        ("pend_ns", "i8", (PENDING,)),
        ("pend_side", "i8", (PENDING,)),
        ("pend_mid", "f8", (PENDING,)),
        ("pend_head", "i8"),
        ("pend_tail", "i8"),
        ("as_sum", "f8", (2,)),
        ("as_w", "f8", (2,)),
        ("as_bps", "f8", (2,)),
        ("n_markouts", "i8"),
        # virtual fills of candidate depths on market sweeps: ring of sweeps and per side/depth sums
        ("sw_ns", "i8", (SWEEPS,)),
        ("sw_aggr", "i8", (SWEEPS,)),
        ("sw_ref_ticks", "f8", (SWEEPS,)),
        ("sw_depth_ticks", "f8", (SWEEPS,)),
        ("sw_head", "i8"),
        ("sw_tail", "i8"),
        ("mk_sum", "f8", (2, N_DEPTHS)),
        ("mk_n", "f8", (2, N_DEPTHS)),
        ("mk_ns", "i8"),
        ("depth_sel_bps", "f8", (2,)),
        # last quote (diagnostics)
        ("mid_px", "f8"),
        ("fair_px", "f8"),
        ("half_spread_px", "f8"),
        ("glft_half_px", "f8"),
        ("floor_half_px", "f8"),
        ("skew_px", "f8"),
        ("n_pulled", "i8", (2,)),
        ("n_steps", "i8"),
    ],
    align=True,
)


def new_state(params: np.ndarray, qparams: np.ndarray) -> np.ndarray:
    s = np.zeros(1, dtype=STATE_DTYPE)
    p = params[0]
    q = qparams[0]
    s["last_mid_ticks"] = np.nan
    s["sigma_ticks"] = p["prior_vol_ticks_per_sqrt_s"]
    s["a_per_s"] = p["prior_a_per_s"]
    s["k_per_tick"] = p["prior_k_per_tick"]
    s["as_bps"] = q["as_prior_bps"]
    for f in ("mid_px", "fair_px", "half_spread_px", "glft_half_px", "floor_half_px", "skew_px"):
        s[f] = np.nan
    return s


# ---------------------------------------------------------------------------------------------
# estimators
@njit(cache=True)
def _update_flow(st, qp, now_ns: int, signed_qty: float) -> None:
    if st.flow_ns != 0 and now_ns > st.flow_ns:
        w = math.exp(-(now_ns - st.flow_ns) * 1e-9 * _LN2 / qp.flow_halflife_s)
        st.flow *= w
        st.flow_abs *= w
    st.flow_ns = max(now_ns, st.flow_ns)
    st.flow += signed_qty
    st.flow_abs += abs(signed_qty)


@njit(cache=True)
def _features(st, b, x) -> None:
    """x <- (microprice offset in ticks-of-spread units, depth imbalance, normalized flow)."""
    bid0 = b.best_bid_px
    ask0 = b.best_ask_px
    qb = b.best_bid_qty
    qa = b.best_ask_qty
    x[0] = (qb - qa) / (qb + qa) if qb + qa > 0.0 else 0.0  # microprice offset / half-spread
    sb = 0.0
    sa = 0.0
    for j in range(FV_DEPTH):
        if b.bid_px[j] == b.bid_px[j]:
            sb += b.bid_qty[j]
        if b.ask_px[j] == b.ask_px[j]:
            sa += b.ask_qty[j]
    x[1] = (sb - sa) / (sb + sa) if sb + sa > 0.0 else 0.0
    x[2] = st.flow / st.flow_abs if st.flow_abs > 0.0 else 0.0
    _ = bid0 + ask0


@njit(cache=True)
def _solve3(a, y, out) -> bool:
    """out <- a^-1 y for a symmetric positive definite 3x3 (Cramer's rule)."""
    det = (
        a[0, 0] * (a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1])
        - a[0, 1] * (a[1, 0] * a[2, 2] - a[1, 2] * a[2, 0])
        + a[0, 2] * (a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0])
    )
    if not abs(det) > 1e-18:
        return False
    for c in range(3):
        m00 = y[0] if c == 0 else a[0, 0]
        m10 = y[1] if c == 0 else a[1, 0]
        m20 = y[2] if c == 0 else a[2, 0]
        m01 = y[0] if c == 1 else a[0, 1]
        m11 = y[1] if c == 1 else a[1, 1]
        m21 = y[2] if c == 1 else a[2, 1]
        m02 = y[0] if c == 2 else a[0, 2]
        m12 = y[1] if c == 2 else a[1, 2]
        m22 = y[2] if c == 2 else a[2, 2]
        d = (
            m00 * (m11 * m22 - m12 * m21)
            - m01 * (m10 * m22 - m12 * m20)
            + m02 * (m10 * m21 - m11 * m20)
        )
        out[c] = d / det
    return True


@njit(cache=True)
def _fv_update(st, qp, b, now_ns: int, mid_ticks: float) -> None:
    """Sample features every fv_sample_ms; regress matured samples on their mid change."""
    horizon_ns = int(qp.fv_horizon_ms * 1e6)
    # matured rows: samples at least the horizon old
    while st.ring_tail != st.ring_head:
        i = st.ring_tail % FV_RING
        if now_ns - st.ring_ns[i] < horizon_ns:
            break
        y = mid_ticks - st.ring_mid[i]
        w = math.exp(-qp.fv_sample_ms * 1e-3 * _LN2 / qp.fv_halflife_s)
        for r in range(FV_N):
            st.sxy[r] = st.sxy[r] * w + st.ring_x[i, r] * y
            for c in range(FV_N):
                st.sxx[r, c] = st.sxx[r, c] * w + st.ring_x[i, r] * st.ring_x[i, c]
        st.n_rows += 1
        st.ring_tail += 1
    if now_ns < st.next_sample_ns:
        return
    st.next_sample_ns = now_ns + int(qp.fv_sample_ms * 1e6)
    if st.ring_head - st.ring_tail >= FV_RING:
        st.ring_tail += 1  # horizon longer than the ring holds: drop the oldest
    i = st.ring_head % FV_RING
    st.ring_ns[i] = now_ns
    st.ring_mid[i] = mid_ticks
    _features(st, b, st.ring_x[i])
    st.ring_head += 1
    a = np.empty((FV_N, FV_N))
    for r in range(FV_N):
        for c in range(FV_N):
            a[r, c] = st.sxx[r, c] + (qp.fv_ridge if r == c else 0.0)
    _solve3(a, st.sxy, st.beta)


@njit(cache=True)
def _as_update(st, qp, now_ns: int, mid_px: float) -> None:
    """Markouts of our fills whose horizon has passed -> the per-side adverse-move means."""
    horizon_ns = int(qp.as_horizon_ms * 1e6)
    w = math.exp(-_LN2 / qp.as_halflife_fills)
    while st.pend_tail != st.pend_head:
        i = st.pend_tail % PENDING
        if now_ns - st.pend_ns[i] < horizon_ns:
            break
        side = st.pend_side[i]
        ref = st.pend_mid[i]
        if ref > 0.0:
            adverse_bps = -side * (mid_px - ref) / ref * 1e4
            k = 0 if side > 0 else 1
            st.as_sum[k] = st.as_sum[k] * w + adverse_bps
            st.as_w[k] = st.as_w[k] * w + 1.0
            pw = qp.as_prior_fills
            st.as_bps[k] = (st.as_sum[k] + qp.as_prior_bps * pw) / (st.as_w[k] + pw)
            st.n_markouts += 1
        st.pend_tail += 1


# ---------------------------------------------------------------------------------------------
# the contract
@njit(cache=True)
def _flush_sweep(state, params) -> None:
    """One aggressor order ended: glft's intensity fit, and a virtual fill for each depth it reached."""
    st = state[0]
    glft.on_trade_depth(state, params, st.sweep_last_ns, st.sweep_depth_ticks)
    if st.sw_head - st.sw_tail >= SWEEPS:
        st.sw_tail += 1
    i = st.sw_head % SWEEPS
    st.sw_ns[i] = st.sweep_last_ns
    st.sw_aggr[i] = st.sweep_side
    st.sw_ref_ticks[i] = st.sweep_ref_ticks
    st.sw_depth_ticks[i] = st.sweep_depth_ticks
    st.sw_head += 1
    st.sweep_side = 0


@njit(cache=True)
def on_market(state, params, qparams, view, trades, n_trades) -> None:
    """Prints -> signed flow, and sweeps (glft's grouping: one side, < SWEEP_GAP_NS apart)."""
    st = state[0]
    qp = qparams[0]
    p_tick = params[0].tick_px
    for k in range(n_trades):
        t = trades[k]
        _update_flow(st, qp, t.local_ts, t.side * t.qty)
        if glft.sweep_ends(st, t):
            _flush_sweep(state, params)
        glft.sweep_add(st, t, p_tick)
    if glft.sweep_idle(st, view[0].now_ns):
        _flush_sweep(state, params)


@njit(cache=True)
def _depth_ticks(ref_ticks: float, depth_bps: float, side: int) -> float:
    """Ticks from the mid ``ref_ticks`` to the passive price at ``depth_bps`` (side +1 ask)."""
    d = depth_bps * 1e-4 * ref_ticks
    if side > 0:
        return math.ceil(ref_ticks + d - 1e-9) - ref_ticks
    return ref_ticks - math.floor(ref_ticks - d + 1e-9)


@njit(cache=True)
def _mk_update(st, qp, now_ns: int, mid_ticks: float) -> None:
    """Sweeps whose horizon passed: each candidate depth they reached earned its markout."""
    horizon_ns = int(qp.mk_horizon_ms * 1e6)
    while st.sw_tail != st.sw_head:
        i = st.sw_tail % SWEEPS
        t = st.sw_ns[i]
        if now_ns - t < horizon_ns:
            break
        st.sw_tail += 1
        if st.mk_ns != 0 and t > st.mk_ns:
            w = math.exp(-(t - st.mk_ns) * 1e-9 * _LN2 / qp.mk_halflife_s)
            for k in range(2):
                for j in range(N_DEPTHS):
                    st.mk_sum[k, j] *= w
                    st.mk_n[k, j] *= w
        st.mk_ns = max(t, st.mk_ns)
        aggr = st.sw_aggr[i]
        ref = st.sw_ref_ticks[i]
        deep = st.sw_depth_ticks[i]
        k = 1 if aggr > 0 else 0  # a buyer sweeps our asks (side 1), a seller our bids (side 0)
        move = aggr * (mid_ticks - ref)  # the mid's move with the sweep (against the maker)
        for j in range(N_DEPTHS):
            dt = _depth_ticks(ref, DEPTH_BPS[j], aggr)
            hit = deep > dt + 1e-9 if qp.mk_through > 0.0 else deep >= dt - 1e-9
            if not hit:
                break
            st.mk_sum[k, j] += (dt - move) / ref * 1e4
            st.mk_n[k, j] += 1.0


@njit(cache=True)
def _select_depth(st, qp, k: int, fee_bps: float) -> float:
    """The candidate depth (bps) with the best expected profit rate n x (mean markout - margin -
    fee), each mean shrunk towards the prior; NaN when none is expected to earn."""
    best = 0.0
    best_bps = np.nan
    for j in range(N_DEPTHS):
        n = st.mk_n[k, j]
        mean = (st.mk_sum[k, j] + qp.mk_prior_bps * qp.mk_prior_n) / (n + qp.mk_prior_n)
        score = n * (mean - qp.mk_margin_bps - fee_bps)
        if score > best:
            best = score
            best_bps = DEPTH_BPS[j]
    return best_bps


@njit(cache=True)
def on_fill(state, params, qparams, fill) -> None:
    """Queue the fill for its markout, measured from the last mid we saw before learning it."""
    st = state[0]
    if st.pend_head - st.pend_tail >= PENDING:
        st.pend_tail += 1
    i = st.pend_head % PENDING
    st.pend_ns[i] = fill.local_ts
    st.pend_side[i] = fill.side
    st.pend_mid[i] = st.mid_px if st.mid_px == st.mid_px else fill.px
    st.pend_head += 1


@njit(cache=True)
def _sticky(own, slot: int, target_px: float, tol_px: float) -> float:
    """Keep a working order's price when it is within the tolerance of the new target."""
    o = own[slot]
    if o.status != ORD_NONE and o.px == o.px and abs(o.px - target_px) <= tol_px + 1e-9:
        return o.px
    return target_px


@njit(cache=True)
def _as_floor(st, qp, k: int, bar_bps: float, mid: float) -> float:
    """The adverse-selection floor of side k's half-spread (price): the measured adverse move
    after our fills times as_mult, plus the bar a fill must also clear (the maker fee)."""
    return (qp.as_mult * max(st.as_bps[k], 0.0) + bar_bps) * mid * 1e-4


@njit(cache=True)
def _side_half(st, qp, k: int, bar_bps: float, mid: float, glft_half: float, min_half: float):
    """Side k's half-spread (price) and its markout-selected depth (bps, NaN: none earns): the
    selected depth (or GLFT's), at least min_half, floored by the adverse-selection floor; a fill
    must clear ``bar_bps`` (the maker fee, less what reducing the position is worth)."""
    half = max(glft_half, min_half)
    sel = np.nan
    if qp.mk_on > 0.0:
        sel = _select_depth(st, qp, k, bar_bps)
        if sel == sel:
            half = max(sel * mid * 1e-4, min_half)
    if qp.as_on > 0.0:
        half = max(half, _as_floor(st, qp, k, bar_bps, mid))
    return half, sel


@njit(cache=True)
def quote(state, params, qparams, view, own, out) -> None:
    st = state[0]
    p = params[0]
    qp = qparams[0]
    b = view[0]
    o = out[0]
    now = b.now_ns
    st.n_steps += 1
    bid0 = b.best_bid_px
    ask0 = b.best_ask_px
    tick = p.tick_px
    if not (bid0 > 0.0 and ask0 > 0.0 and ask0 > bid0):
        o.no_quote_reason = NOQUOTE_NO_BOOK
        return
    mid = 0.5 * (bid0 + ask0)
    if st.first_ns == 0:
        st.first_ns = now
    glft._update_vol(st, params, mid / tick, now)
    if now - st.last_fit_ns >= p.refit_interval_ns:
        glft.fit_intensity(state, params, now)
    _fv_update(st, qp, b, now, mid / tick)
    _as_update(st, qp, now, mid)
    _mk_update(st, qp, now, mid / tick)
    st.mid_px = mid
    warm = (now - st.first_ns) * 1e-9 >= qp.warmup_s and st.n_trades >= qp.warmup_trades
    if qp.fv_on > 0.0 and st.n_rows < qp.fv_min_samples:
        warm = False
    if not warm:
        o.no_quote_reason = NOQUOTE_WARMUP
        return

    # half-spread per side: the markout-selected depth (or GLFT's model), floored by the adverse
    # move measured after our own fills
    c1, c2 = glft.glft_coefficients(qp.gamma, st.a_per_s, st.k_per_tick)
    sigma = st.sigma_ticks
    glft_half = (c1 + 0.5 * sigma * c2) * qp.glft_adj * tick
    min_half = qp.min_half_ticks * tick
    # a fill must also pay its maker fee (a rebate lowers the bar): both floors count it
    fee_bps = p.maker_fee_rate * 1e4 if qp.fee_on > 0.0 else 0.0
    q_units = b.position_qty / p.order_qty if p.order_qty > 0.0 else 0.0
    half_b, sel_b = _side_half(st, qp, 0, fee_bps, mid, glft_half, min_half)
    half_a, sel_a = _side_half(st, qp, 1, fee_bps, mid, glft_half, min_half)
    # a fill on the side that reduces the position is also worth a fraction of the inventory skew
    # (capped as the skew is): that side's depth choice and floor accept that much less markout
    reduce_from_qty = max(qp.reduce_min_ratio * p.max_position_qty, 1e-12)
    if qp.skew_on > 0.0 and qp.skew_reduce_ratio > 0.0 and abs(b.position_qty) >= reduce_from_qty:
        cap_bps = qp.skew_cap_ratio * 0.5 * (half_b + half_a) / mid * 1e4
        skew_bps = min(qp.skew_coef * sigma * c2 * abs(q_units) * tick / mid * 1e4, cap_bps)
        bar_bps = fee_bps - qp.skew_reduce_ratio * skew_bps
        if q_units < 0.0:
            half_b, sel_b = _side_half(st, qp, 0, bar_bps, mid, glft_half, min_half)
        else:
            half_a, sel_a = _side_half(st, qp, 1, bar_bps, mid, glft_half, min_half)
    st.depth_sel_bps[0] = sel_b
    st.depth_sel_bps[1] = sel_a
    # no depth expected to earn: stand aside on that side, unless it reduces the position
    # (a pulled grid must not sit on inventory: GLFT's depth and skew unwind it)
    pull_b = sel_b != sel_b and qp.mk_on > 0.0 and b.position_qty >= 0.0
    pull_a = sel_a != sel_a and qp.mk_on > 0.0 and b.position_qty <= 0.0
    floor_half = 0.0
    if qp.as_on > 0.0:
        floor_half = max(_as_floor(st, qp, 0, fee_bps, mid), _as_floor(st, qp, 1, fee_bps, mid))
    half = 0.5 * (half_b + half_a)

    # centre: fair value and inventory skew
    centre = mid
    pred_ticks = 0.0
    if qp.fv_on > 0.0:
        x = np.empty(FV_N)
        _features(st, b, x)
        for r in range(FV_N):
            pred_ticks += st.beta[r] * x[r]
        centre += qp.fv_coef * pred_ticks * tick
    st.pred_ticks = pred_ticks
    st.fair_px = centre
    skew = 0.0
    if qp.skew_on > 0.0:
        skew = qp.skew_coef * sigma * c2 * q_units * tick
        cap = qp.skew_cap_ratio * half
        skew = min(max(skew, -cap), cap)
    if qp.skew_widen_only > 0.0:
        # push the side that would add to the position away; the side that reduces it stays
        # where the market pays for it (a reducing quote moved to the touch is picked off there)
        half_b += max(skew, 0.0)
        half_a += max(-skew, 0.0)
    else:
        centre -= skew

    # soft inventory limit: stop adding to a position that large
    if qp.inv_max_orders > 0.0 and q_units >= qp.inv_max_orders - 1e-9:
        pull_b = True
    if qp.inv_max_orders > 0.0 and q_units <= -qp.inv_max_orders + 1e-9:
        pull_a = True
    # a side about to be run over is pulled
    if qp.fv_on > 0.0 and -pred_ticks * tick > qp.pull_ratio * half_b:
        pull_b = True
    if qp.fv_on > 0.0 and pred_ticks * tick > qp.pull_ratio * half_a:
        pull_a = True
    if pull_b:
        st.n_pulled[0] += 1
    if pull_a:
        st.n_pulled[1] += 1

    tol_b = qp.requote_tol_ratio * half_b
    tol_a = qp.requote_tol_ratio * half_a
    n_lv = min(max(int(qp.n_levels), 1), LEVELS)
    pos = b.position_qty
    qty = p.order_qty
    bid_top = min(math.floor((centre - half_b) / tick + 1e-9) * tick, bid0)
    ask_top = max(math.ceil((centre + half_a) / tick - 1e-9) * tick, ask0)
    step_b = max(math.floor(qp.level_step_ratio * half_b / tick + 0.5), 1.0) * tick
    step_a = max(math.floor(qp.level_step_ratio * half_a / tick + 0.5), 1.0) * tick
    for j in range(n_lv):
        room_bid = pos + (j + 1) * qty <= p.max_position_qty + 1e-12
        room_ask = pos - (j + 1) * qty >= -p.max_position_qty - 1e-12
        if room_bid and not pull_b:
            o.bid_px[j] = _sticky(own, 2 * j, bid_top - j * step_b, tol_b)
            o.bid_qty[j] = qty
        if room_ask and not pull_a:
            o.ask_px[j] = _sticky(own, 2 * j + 1, ask_top + j * step_a, tol_a)
            o.ask_qty[j] = qty
    if pull_b and pull_a:
        o.no_quote_reason = NOQUOTE_PAUSED
    o.bid_target_px = bid_top
    o.ask_target_px = ask_top
    o.half_spread_px = np.nan  # the quoter's own tolerance decides; the manager's tick floor stays
    st.half_spread_px = half
    st.glft_half_px = glft_half
    st.floor_half_px = floor_half
    st.skew_px = skew


# each piece and the parameters that switch it off (the ablation; EDGE_REPORT ``pieces``)
PIECES: tuple[tuple[str, dict[str, float]], ...] = (
    ("adverse-selection floor", {"as_on": 0.0}),
    ("markout depth selection", {"mk_on": 0.0}),
    ("fair value", {"fv_on": 0.0}),
    ("inventory skew", {"skew_on": 0.0}),
    ("one-sided skew", {"skew_widen_only": 0.0}),
    ("reducing bonus", {"skew_reduce_ratio": 0.0}),
    ("fee in the floors", {"fee_on": 0.0}),
    ("grid", {"n_levels": 1.0}),
    ("sticky requotes", {"requote_tol_ratio": 0.0}),
    ("warm-up", {"warmup_s": 0.0, "warmup_trades": 0.0}),
)

QUOTER = Quoter(
    name="adaptive",
    quote=quote,
    params=PARAMS,
    new_state=new_state,
    on_market=on_market,
    on_fill=on_fill,
    wake_interval_ms=WAKE_INTERVAL_MS,
    wake_on_market=WAKE_ON_MARKET,
    levels=LEVELS,
    runtime_knobs=(),  # its spread, size and skew are its own PARAMS, none of the seed's six
    doc="GLFT grid with an adverse-selection spread floor, an online fair value and sticky requotes",
    pieces=PIECES,
)
