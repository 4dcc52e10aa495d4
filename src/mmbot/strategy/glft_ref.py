"""``glft_ref``: hftbacktest's GLFT market-making tutorial, ported as a quoter.

Source: nkaz001/hftbacktest, ``docs/tutorials/GLFT Market Making Model and Grid Trading.ipynb``
("Guéant–Lehalle–Fernandez-Tapia Market Making Model and Grid Trading"), the ``glft_market_maker``
loop with the adjustment factors (``adj1``, ``adj2``); functions ``measure_trading_intensity``,
``linear_regression`` and ``compute_coeff``. The model is eq. (4.6)/(4.7) of Guéant, "Optimal
market making" (arXiv:1605.01862). Every constant of the tutorial is a parameter (``PARAMS``).

Per step (the tutorial's ``hbt.elapse(100 ms)`` loop; here ``WAKE_ON_MARKET = False``):

1. arrival depth of this step = the furthest market trade since the last step, in ticks from the
   previous step's mid (buy: px - mid, sell: mid - px); no mid yet: NaN, no trade: -inf;
2. mid (ticks) = (best bid tick + best ask tick) / 2; its change since the last step is recorded;
3. every ``refit_s`` (t % 50 == 0) once ``window_s`` of steps exist: A, k by linear regression of
   ln(λ) on depth over the window (λ(δ_j) = trades that reached beyond δ_j = j + 0.5 ticks, per
   second; the first ``fit_ticks`` bins; only when more than 2 bins are non-empty), volatility =
   std of the window's mid changes × sqrt(steps per second);
4. c1 = ln(1 + ξΔ/k) / (ξΔ), c2 = sqrt(γ / (2AΔk) · (1 + ξΔ/k)^(k/(ξΔ) + 1)),
   half spread = (c1 + Δ/2 · c2 · σ) · adj1, skew = c2 · σ · adj2 (ticks);
5. reservation r = mid - skew · q, with q the position in orders (position / order_qty: the
   tutorial trades one unit per order, so its position is counted in orders);
   bid = min(round(r - half spread), best bid), ask = max(round(r + half spread), best ask) (ticks:
   never inside the touch);
6. a side whose position is at the limit (q ≥ max_position_qty / order_qty on the bid, ≤ minus it
   on the ask, compared in orders with a 1e-9 tolerance) gets no new order; as in the tutorial an order already resting at the new price is
   left alone, any other is cancelled.

The tutorial cancels an order whose price differs and submits a new one (order id = price in
ticks) in the same step: ``REQUOTE = "cancel_new"`` asks the engine's order manager for exactly that
(no reprice tolerance, cancel + new rather than a replace). Rolling windows live in ring buffers
inside the state record, so every step is compiled code with no allocation.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from mmbot.errors import UserError
from mmbot.strategy.contract import NOQUOTE_NO_BOOK, NOQUOTE_WARMUP, Quoter
from mmbot.strategy.views import ORD_LIVE, SIDE_ASK, SIDE_BID

NAME = "glft_ref"
WAKE_INTERVAL_MS = 100.0  # the tutorial's hbt.elapse(100_000_000)
WAKE_ON_MARKET = False
REQUOTE = "cancel_new"  # the tutorial cancels an order off the new price and submits a new one

# the longest window the ring buffers hold (steps), and the depth bins of the intensity count
MAX_WINDOW_STEPS = 36_000  # one hour of 100 ms steps
MAX_DEPTH_BINS = 500  # the tutorial's tmp = np.zeros(500)
# A degenerate fit (k near 0) puts the tutorial's quotes at absurd prices, negative ones included;
# it would send them and they would never fill. No exchange takes a price <= 0 or one of 2^53
# ticks or more (beyond float's integers), so such a side is left without an order.
MAX_PRICE_TICKS = float(2**53)

PARAMS = {
    "gamma": 0.05,  # risk aversion γ
    "xi": 0.0,  # ξ; 0 = γ (the tutorial calls compute_coeff(gamma, gamma, ...))
    "delta": 1.0,  # Δ, in orders
    "adj1": 1.0,  # half-spread multiplier
    "adj2": 0.05,  # skew multiplier
    "window_s": 600.0,  # calibration window (the tutorial's 6_000 steps = 10 min)
    "refit_s": 5.0,  # refit every (the tutorial's t % 50 == 0)
    "step_ms": 100.0,  # the step the window, refit and volatility scale count in
    "fit_ticks": 70.0,  # depth bins in the regression (lambda_[:70])
    "depth_bins": 500.0,  # arrival depths of this many ticks or more are not counted
}

STATE_DTYPE = np.dtype(
    [
        ("t", "i8"),  # steps so far
        ("window_steps", "i8"),
        ("refit_steps", "i8"),
        ("steps_per_s", "f8"),
        ("mid_tick", "f8"),
        ("step_depth", "f8"),  # this step's arrival depth (on_market -> quote)
        ("arrival_depth", "f8", (MAX_WINDOW_STEPS,)),  # ring, slot t % MAX_WINDOW_STEPS
        ("mid_chg", "f8", (MAX_WINDOW_STEPS,)),
        ("hist", "f8", (MAX_DEPTH_BINS + 1,)),  # scratch: trades per depth bin
        ("lam", "f8", (MAX_DEPTH_BINS,)),  # scratch: trades beyond each bin
        ("a_per_s", "f8"),  # A
        ("k_per_tick", "f8"),  # k
        ("sigma_ticks", "f8"),  # volatility, ticks / sqrt(s)
        ("n_fits", "i8"),
        ("half_spread_tick", "f8"),
        ("skew_tick", "f8"),
        ("reservation_tick", "f8"),
    ],
    align=True,
)


def new_state(params: np.ndarray, qparams: np.ndarray) -> np.ndarray:
    q = qparams[0]
    step_ms = float(q["step_ms"])
    if not step_ms > 0.0:
        raise UserError(f"--param step_ms={step_ms:g}: must be > 0")
    window_steps = int(round(float(q["window_s"]) * 1000.0 / step_ms))
    if not 1 <= window_steps <= MAX_WINDOW_STEPS:
        limit_s = MAX_WINDOW_STEPS * step_ms / 1000.0
        raise UserError(
            f"--param window_s={float(q['window_s']):g}: must span 1..{MAX_WINDOW_STEPS} steps "
            f"of step_ms (at most {limit_s:g} s)"
        )
    refit_steps = int(round(float(q["refit_s"]) * 1000.0 / step_ms))
    if refit_steps < 1:
        raise UserError(f"--param refit_s={float(q['refit_s']):g}: must be at least one step")
    bins = float(q["depth_bins"])
    if not 1.0 <= bins <= MAX_DEPTH_BINS:
        raise UserError(f"--param depth_bins={bins:g}: must be 1..{MAX_DEPTH_BINS}")
    if not float(q["fit_ticks"]) >= 3.0:
        raise UserError(f"--param fit_ticks={float(q['fit_ticks']):g}: must be >= 3")
    s = np.zeros(1, dtype=STATE_DTYPE)
    s["window_steps"] = window_steps
    s["refit_steps"] = refit_steps
    s["steps_per_s"] = 1000.0 / step_ms
    for f in ("mid_tick", "step_depth", "a_per_s", "k_per_tick", "sigma_ticks"):
        s[f] = np.nan
    for f in ("half_spread_tick", "skew_tick", "reservation_tick"):
        s[f] = np.nan
    s["arrival_depth"] = np.nan
    s["mid_chg"] = np.nan
    return s


@njit(cache=True)
def compute_coeff(xi: float, gamma: float, delta: float, a: float, k: float) -> tuple[float, float]:
    """The tutorial's ``compute_coeff`` (NaN, not an exception, for a degenerate fit)."""
    inv_k = np.divide(1.0, k)
    c1 = 1.0 / (xi * delta) * np.log(1.0 + xi * delta * inv_k)
    c2 = np.sqrt(
        np.divide(gamma, 2.0 * a * delta * k)
        * ((1.0 + xi * delta * inv_k) ** (k / (xi * delta) + 1.0))
    )
    return c1, c2


@njit(cache=True)
def _fit(st, qparams) -> None:
    """A, k and the volatility over the last ``window_steps`` steps (the tutorial's refit block)."""
    q = qparams[0]
    w = st.window_steps
    first = st.t + 1 - w
    n_bins = int(q.depth_bins)
    for j in range(n_bins):
        st.hist[j] = 0.0
    # measure_trading_intensity: a trade reaching bin `tick` counts in every bin below it; kept as a
    # histogram and summed from the deep end (same counts as out[:tick] += 1 per trade)
    max_tick = 0
    for i in range(first, st.t + 1):
        depth = st.arrival_depth[i % MAX_WINDOW_STEPS]
        if not np.isfinite(depth):
            continue
        tick = round(depth / 0.5) - 1
        if tick < 0 or tick >= n_bins:
            continue
        st.hist[tick] += 1.0
        max_tick = max(max_tick, tick)
    if max_tick > 2:
        # lambda_ = out[:max_tick][:fit_ticks] / window_s, out[j] = trades beyond bin j
        n = min(max_tick, int(q.fit_ticks))
        above = 0.0
        for j in range(max_tick - 1, -1, -1):
            above += st.hist[j + 1]
            st.lam[j] = above
        sx = 0.0
        sy = 0.0
        sx2 = 0.0
        sxy = 0.0
        for j in range(n):
            x = j + 0.5
            y = math.log(st.lam[j] / q.window_s)
            sx += x
            sy += y
            sx2 += x * x
            sxy += x * y
        # the tutorial's linear_regression
        slope = (n * sxy - sx * sy) / (n * sx2 - sx * sx)
        intercept = (sy - slope * sx) / n
        st.a_per_s = math.exp(intercept)
        st.k_per_tick = -slope
    # the volatility: population std of the mid changes (NaN ones skipped) x sqrt(steps per s)
    cnt = 0
    total = 0.0
    for i in range(first, st.t + 1):
        x = st.mid_chg[i % MAX_WINDOW_STEPS]
        if x == x:
            cnt += 1
            total += x
    if cnt > 0:
        mean = total / cnt
        ss = 0.0
        for i in range(first, st.t + 1):
            x = st.mid_chg[i % MAX_WINDOW_STEPS]
            if x == x:
                ss += (x - mean) * (x - mean)
        st.sigma_ticks = math.sqrt(ss / cnt) * math.sqrt(st.steps_per_s)
    st.n_fits += 1


@njit(cache=True)
def on_market(state, params, qparams, view, trades, n_trades) -> None:
    """The step's arrival depth: the furthest trade from the previous step's mid."""
    st = state[0]
    if st.mid_tick != st.mid_tick:
        st.step_depth = np.nan
        return
    tick = params[0].tick_px
    depth = -np.inf
    for i in range(n_trades):
        tr = trades[i]
        px_tick = tr.px / tick
        if tr.side > 0:
            depth = max(px_tick - st.mid_tick, depth)
        else:
            depth = max(st.mid_tick - px_tick, depth)
    st.step_depth = depth


@njit(cache=True)
def _keep_at_limit(px: float, order, tick: float) -> float:
    """At the position limit: no new order, but one already resting at ``px`` stays (the tutorial
    only cancels orders whose price differs)."""
    if order.status == ORD_LIVE and abs(order.px - px) <= 1e-6 * tick:
        return px
    return np.nan


@njit(cache=True)
def quote(state, params, qparams, view, own, out) -> None:
    st = state[0]
    p = params[0]
    q = qparams[0]
    b = view[0]
    o = out[0]
    slot = st.t % MAX_WINDOW_STEPS
    st.arrival_depth[slot] = st.step_depth
    tick = p.tick_px
    ok_book = b.best_bid_px > 0.0 and b.best_ask_px > 0.0
    prev_mid = st.mid_tick
    if ok_book:
        best_bid_tick = round(b.best_bid_px / tick)
        best_ask_tick = round(b.best_ask_px / tick)
        st.mid_tick = (best_bid_tick + best_ask_tick) / 2.0
    else:
        best_bid_tick = 0
        best_ask_tick = 0
        st.mid_tick = np.nan
    st.mid_chg[slot] = st.mid_tick - prev_mid
    if st.t % st.refit_steps == 0 and st.t >= st.window_steps - 1:
        _fit(st, qparams)
    st.t += 1
    if not ok_book:
        o.no_quote_reason = NOQUOTE_NO_BOOK
        return

    xi = q.xi if q.xi > 0.0 else q.gamma
    c1, c2 = compute_coeff(xi, q.gamma, q.delta, st.a_per_s, st.k_per_tick)
    half_spread = (c1 + q.delta / 2.0 * c2 * st.sigma_ticks) * q.adj1
    skew = c2 * st.sigma_ticks * q.adj2
    position = b.position_qty
    q_orders = position / p.order_qty
    r = st.mid_tick - skew * q_orders
    st.half_spread_tick = half_spread
    st.skew_tick = skew
    st.reservation_tick = r
    bid_tick = np.round(r - half_spread)
    ask_tick = np.round(r + half_spread)
    if not (np.isfinite(bid_tick) and np.isfinite(ask_tick)):
        o.no_quote_reason = NOQUOTE_WARMUP
        return
    bid_tick = min(bid_tick, best_bid_tick)
    ask_tick = max(ask_tick, best_ask_tick)
    bid_px = bid_tick * tick if 0.0 < bid_tick < MAX_PRICE_TICKS else np.nan
    ask_px = ask_tick * tick if 0.0 < ask_tick < MAX_PRICE_TICKS else np.nan
    # the limit in orders, so that twenty float sums of 0.01 compare as twenty orders
    limit = p.max_position_qty / p.order_qty - 1e-9
    o.bid_px[0] = bid_px if q_orders < limit else _keep_at_limit(bid_px, own[SIDE_BID], tick)
    o.ask_px[0] = ask_px if q_orders > -limit else _keep_at_limit(ask_px, own[SIDE_ASK], tick)
    o.bid_qty[0] = p.order_qty
    o.ask_qty[0] = p.order_qty
    o.bid_target_px = bid_px
    o.ask_target_px = ask_px
    o.half_spread_px = half_spread * tick


QUOTER = Quoter(
    name=NAME,
    quote=quote,
    params=PARAMS,
    new_state=new_state,
    on_market=on_market,
    wake_interval_ms=WAKE_INTERVAL_MS,
    wake_on_market=WAKE_ON_MARKET,
    requote=REQUOTE,
    book_levels=0,  # reads the touch only
    runtime_knobs=(),  # every constant of the tutorial is one of its PARAMS
    doc="hftbacktest's GLFT market-making tutorial (faithful port)",
)
