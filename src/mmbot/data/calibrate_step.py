"""One fixed-point step of the calibration fit (``mmbot.data.calibrate``): how each parameter of
the embedded market moves toward the capture statistic it drives most, and the search ranges
that bound it. The rounds, their simulations and the averaging stay in ``mmbot.data.calibrate``.
"""

from __future__ import annotations

import numpy as np

# search range of the permanence of noise-sweep impact (a ratio of the sweep's touch move). It
# is a range for the fit, not a stability cap: above 1 a sweep reveals more than its own
# mechanical move (the efficient price overshoots the book, the informed follow; they do not
# excite noise flow, so there is no runaway). The market once broke above ~2: v ran more than
# the book's depth past a stale touch and the trim, counted from v, deleted every level the
# other side rebuilt (one side empty ~40 % of the time); levels are now counted from the
# reference touch, so the range is wide.
MAX_PERMANENCE = 8.0
MIN_PERMANENCE = 0.05
INITIAL_TRANSIENT = 1.0
# decay of the transient impact, per s, and the scale (bps of touch move) at which a sweep's
# impact saturates (its start; the as-captured fit then fits it). Chosen on the USD-M BTCUSDT
# capture (the decay is not refitted per capture): sweeps that
# reached 0.5-1, 1-2 and 2-4 bps past their first print had moved the price by about the same
# 1.1 bps a second later, and the deep sweeps' impact fell from 2.24 bps at 1 s to 1.45 at 30 s
IMPACT_DECAY_PER_S = 0.3
IMPACT_CAP_BPS = 1.0
MIN_IMPACT_CAP_BPS = 0.1  # search range of the fitted saturation scale (as-captured fit)
MAX_IMPACT_CAP_BPS = 10.0
WHOLE_MAX_IMPACT_CAP_BPS = 30.0  # the same, with whole-level pulls (their fit drove it past 10)
# the deep-sweep statistics rest on a few hundred sweeps a round: smaller steps
IMPACT_DAMPING = 0.25
MAX_INFORMED_RATE = 1000.0  # informed parents per s per bps of mispricing (search range)
MIN_INFORMED_RATE = 0.01
# opt-in (calibrate(whole_level_pulls=True), `mmbot data calibrate --whole-level-pulls`): stale
# pulls take whole levels (synthetic.P_STALE_WHOLE) and the stale-pull hazard (per level) follows the
# lag-1 autocorrelation of mid returns (mean of 100 ms and 1 s): pulls slower than the makers' on
# the capture leave the mid trailing the efficient price, a smoothed random walk whose returns
# continue each other. Log step per unit of autocorrelation: on the USD-M capture's market a
# tenfold pull rate moved that mean by ~0.04 (a 300 s market measures it to +-0.05): a gain of
# 10 is a quarter of the full step
INITIAL_STALE_LEVEL_RATE = 100.0
STALE_AUTOCORR_GAIN = 10.0
# with whole-level pulls the transient impact's decay follows the print markout's reversion from 100 ms
# to 5 s (the capture's 5 s / 100 ms markout ratio); the wide tick keeps IMPACT_DECAY_PER_S
MIN_IMPACT_DECAY_PER_S = 0.03
MAX_IMPACT_DECAY_PER_S = 30.0
# opt-in (calibrate(slow_impact=True), `mmbot data calibrate --slow-impact`): the transient
# impact in two parts (synthetic.P_SLOW_TRANSIENT). The fast part decays at FAST_IMPACT_DECAY_PER_S
# (not fitted; chosen on the USD-M BTCUSDT capture's shipped market, 4 x 1800 s by hand: fast
# decay 3 / 8 per s gave 1 s return autocorrelations -0.081 / -0.012, the capture's -0.018) and
# its share trades the 100 ms print markout (which it raises) against the 100 ms return
# autocorrelation (which it lowers), each miss over its fidelity band (log step FAST_STEP per
# band); the slow part (which the informed do not see
# through) carries the deep sweeps' 1 s impact and its decay the print markout's reversion from
# 1 s to 5 s
FAST_IMPACT_DECAY_PER_S = 8.0
FAST_STEP = 0.25
INITIAL_SLOW_DECAY_PER_S = 0.1
INITIAL_HYSTERESIS_BPS = 0.1
MIN_HYSTERESIS_BPS = 1e-3  # search range
MAX_HYSTERESIS_BPS = 2.0
HYSTERESIS_EDGE_SHARE = 0.5  # largest hysteresis as a share of the informed edge
MIN_CANCEL_RATE = 1e-4  # cancel hazard of a resting order, per s (search range)
MAX_CANCEL_RATE = 10.0
MIN_STALE_RATE = 0.1  # stale-quote pulls per order per s (search range)
MAX_STALE_RATE = 500.0
MAX_STALE_LEVEL_RATE = 2000.0  # whole-level pulls: per stale level per s
# opt-in (calibrate(fit_trade_through=True), `mmbot data calibrate --fit-trade-through`): the
# noise flow's Hawkes decay (otherwise the hand-set HAWKES_DECAY_PER_S) follows the trade-through
# rates (market_stats.TRADE_THROUGH_BPS): a faster decay brings a sweep's children within the
# 100 ms the rates look back over, after the sweep moved the mid. Measured on the shipped USD-M
# market (2 x 600 s): decay 20 -> 80/s raised the rates at 0.5 / 1 / 2 / 5 bps by 32 / 37 / 28 /
# 42 % (log-elasticity ~0.25): a gain of 2 is half the full step
HAWKES_DECAY_PER_S = 20.0
TRADE_THROUGH_GAIN = 2.0
ZERO_RATE_SHARE = 0.1  # a synthetic trade-through rate of 0 counts as this share of the capture's
MIN_HAWKES_DECAY_PER_S = 2.0  # search range
MAX_HAWKES_DECAY_PER_S = 500.0
# opt-in (calibrate(fit_resilience=True), `mmbot data calibrate --fit-resilience`): slow
# resilience after a sweep (synthetic.P_RESIL_HALF_LIFE_S), its half-life stepped on the share
# of aggressor orders that sweep deep (the statistic it moved most by hand: shipped COIN-M,
# 2 x 600 s, half-life 3 / 10 / 30 s at depletion 0.9 gave 0.1232 / 0.3362 / 0.5141 of the
# capture's share; log-elasticity ~0.6, so a gain of 0.8 is about half the full step); the
# depletion is held at RESIL_DEPLETION and the depth step keeps touch_qty as fitted
INITIAL_RESIL_HALF_LIFE_S = 3.0
RESIL_DEPLETION = 0.9
RESIL_GAIN = 0.8
MIN_RESIL_HALF_LIFE_S = 0.1  # search range
MAX_RESIL_HALF_LIFE_S = 120.0
# opt-in (calibrate(graded_moves=True), `mmbot data calibrate --graded-moves`): v's jump rate
# follows the capture's 100 ms mid moves of this many bps (market_stats.MID_MOVE_BPS), which the
# 0.5 bps trade-through rate follows; its search range
GRADED_MOVE_BPS = 0.5
MIN_JUMP_RATE_PER_S = 0.01
MAX_JUMP_RATE_PER_S = 20.0
MAX_LOG_STEP = 1.0  # largest |log| of one round's multiplicative step
DAMPING = 0.5  # exponent of the multiplicative fixed-point steps (sim noise vs speed)


def _clip(x: float, lo: float, hi: float) -> float:
    return float(min(max(x, lo), hi)) if np.isfinite(x) else 1.0


def _ratio(tgt: float, sim: float, power: float = DAMPING) -> float:
    """Damped multiplicative step toward the target: exp(power * (tgt - sim) / tgt), 1 when
    either side is not finite or the target is not > 0.

    The step is linear in the simulated statistic, so the rounds settle where the statistic's
    *mean* equals the target (the method of simulated moments). A step in log(tgt / sim)
    settles at its geometric mean instead, which for the right-skewed markouts and volatility
    of a market with rare big sweeps left their means 10-20 % above the capture's."""
    if not (np.isfinite(tgt) and np.isfinite(sim) and tgt > 0):
        return 1.0
    return float(np.exp(np.clip(power * (tgt - sim) / tgt, -MAX_LOG_STEP, MAX_LOG_STEP)))


def _update(
    m: dict,
    s: dict,
    target: dict,
    *,
    fit_spread: bool,
    fit_trade_through: bool = False,
    graded_moves: bool = False,
    permanence_markout: bool = False,
) -> None:
    """One fixed-point step: each parameter moves toward the statistic it drives most
    (``graded_moves``: v's jumps as ``_step_jumps`` says; ``permanence_markout``: the
    permanence as ``_permanence_step`` says)."""
    _step_flow(m, s, target, graded_moves=graded_moves)
    if fit_trade_through:
        _step_trade_through(m, s, target)
    if m.get("resilience_half_life_s", 0.0) > 0.0:
        _step_resilience(m, s, target)
    if fit_spread:
        _step_book(m, s, target)
    whole = m.get("stale_pull_whole", 0.0) > 0.0
    _step_impact(m, s, target, fit_spread=fit_spread, whole=whole, markout=permanence_markout)
    _step_race(m, s, target, whole=whole)


def _step_flow(m: dict, s: dict, target: dict, *, graded_moves: bool = False) -> None:
    """v's diffusion and jumps, the noise-order rate, Hawkes clustering and the maker order size."""
    # volatility not carried by trades comes from v's diffusion and jumps: scale both. (Fitting
    # them to the 60 s volatility instead was tried, with the transient impact noted below: the
    # fit drifted to a 1 s volatility 1.9x the capture's.)
    vol_f = _ratio(target["vol_bps_per_sqrt_s"], s["vol_bps_per_sqrt_s"])
    m["sigma_bps_per_sqrt_s"] *= vol_f
    if graded_moves:
        _step_jumps(m, s, target)
    else:
        m["jump_size_bps"] *= vol_f
    m["noise_base_rate_per_s"] *= _ratio(target["parent_rate_per_s"], s["parent_rate_per_s"])
    # Hawkes: the count Fano factor over windows >> 1/beta is 1/(1-n)^2
    f_sim = max(float(s["parent_count_fano_1s"]), 1.0)
    f_tgt = max(float(target["parent_count_fano_1s"]), 1.0)
    if two_speed(m):
        # with the slow transient more of the orders are informed (unclustered): on the
        # geometric mean the prints' Fano settled at 0.74x the capture's (USD-M, 3 x 1 h) with
        # the branching ratio at 0.867; 0.9 by hand gave 0.96x. The prints' Fano alone
        f_sim = max(float(s["trade_count_fano_1s"]), 1.0)
        f_tgt = max(float(target["trade_count_fano_1s"]), 1.0)
    elif m.get("sweep_requote", 0.0) > 0.0:
        # with the re-quote the informed no longer trade the stale quotes a sweep leaves, a
        # burst of prints the parents' Fano does not see: the prints' Fano counts half
        # (USD-M: parents' 1.13x, prints' 0.73x the capture's when fitted on the parents alone)
        f_sim = np.sqrt(f_sim * max(float(s["trade_count_fano_1s"]), 1.0))
        f_tgt = np.sqrt(f_tgt * max(float(target["trade_count_fano_1s"]), 1.0))
    n = m["hawkes_branching_ratio"]
    n_new = _clip(1.0 - (1.0 - n) * (f_sim / f_tgt) ** (0.5 * DAMPING), 0.0, 0.95)
    m["hawkes_branching_ratio"] = n_new
    # keep the mean noise rate mu / (1 - n) where the rate step put it: n shapes clustering only
    m["noise_base_rate_per_s"] *= (1.0 - n_new) / (1.0 - n)
    # bigger maker orders -> fewer prints per aggressor order
    m["maker_size_scale"] = _clip(
        m.get("maker_size_scale", 1.0)
        / _ratio(target["prints_per_parent"], s["prints_per_parent"]),
        0.2,
        50.0,
    )


def _step_jumps(m: dict, s: dict, target: dict) -> None:
    """--graded-moves: v's jump rate steps toward the capture's count of 100 ms mid moves of
    GRADED_MOVE_BPS (``market_stats(moves=True)``); the jump size is held at its start (a jump
    about the size of the capture's moves) and the vol step scales the diffusion alone. With the
    size scaled by the vol step instead, the rate ran to its bound (20/s of 0.024 bps): at a
    fixed variance, jumps smaller than half the move size add fewer such moves, not more."""
    key = f"mid_move_{GRADED_MOVE_BPS:g}bps_per_min"
    m["jump_rate_per_s"] = _clip(
        m["jump_rate_per_s"] * _ratio(float(target[key]), float(s[key])),
        MIN_JUMP_RATE_PER_S,
        MAX_JUMP_RATE_PER_S,
    )


def trade_through_log_gap(s: dict, target: dict) -> float:
    """Mean over the trade-through distances of log(capture rate / synthetic rate) (nan when no
    distance has a capture rate > 0 and a synthetic one). A synthetic rate of 0 (no trade-through
    in the fit's markets: COIN-M's 5 bps) counts as ZERO_RATE_SHARE of the capture's, not as
    missing: left out, the furthest miss would not pull the step at all."""
    from mmbot.data.market_stats import TRADE_THROUGH_BPS

    gaps = []
    for d in TRADE_THROUGH_BPS:
        key = f"trade_through_{d:g}bps_per_min"
        a = float(s.get(key, float("nan")))
        b = float(target.get(key, float("nan")))
        if np.isfinite(a) and np.isfinite(b) and a >= 0 and b > 0:
            gaps.append(np.log(b / max(a, ZERO_RATE_SHARE * b)))
    return float(np.mean(gaps)) if gaps else float("nan")


def _step_trade_through(m: dict, s: dict, target: dict) -> None:
    """The Hawkes decay steps up while the market trades through levels 0.5-5 bps from the mid
    less often than the capture (mean log gap over the distances), down while more often."""
    gap = trade_through_log_gap(s, target)
    if not np.isfinite(gap):
        return
    step = float(np.exp(np.clip(TRADE_THROUGH_GAIN * gap, -MAX_LOG_STEP, MAX_LOG_STEP)))
    m["hawkes_decay_per_s"] = _clip(
        m.get("hawkes_decay_per_s", HAWKES_DECAY_PER_S) * step,
        MIN_HAWKES_DECAY_PER_S,
        MAX_HAWKES_DECAY_PER_S,
    )


def _step_resilience(m: dict, s: dict, target: dict) -> None:
    """The half-life of slow resilience steps up while the market has fewer deep sweeps than
    the capture, down while more (a share of 0 counts as ZERO_RATE_SHARE of the capture's)."""
    a = float(s.get("deep_sweep_share", float("nan")))
    b = float(target.get("deep_sweep_share", float("nan")))
    if not (np.isfinite(a) and np.isfinite(b) and a >= 0 and b > 0):
        return
    gap = np.log(b / max(a, ZERO_RATE_SHARE * b))
    step = float(np.exp(np.clip(RESIL_GAIN * gap, -MAX_LOG_STEP, MAX_LOG_STEP)))
    m["resilience_half_life_s"] = _clip(
        m["resilience_half_life_s"] * step, MIN_RESIL_HALF_LIFE_S, MAX_RESIL_HALF_LIFE_S
    )


def _step_book(m: dict, s: dict, target: dict) -> None:
    """At the captured tick: the makers' cancel hazard, ladder hysteresis, excess-cancel and
    refill speeds, from the book's churn, touch updates, depth behind the touch and spread."""
    # the book's churn (level updates per s) is set mostly by makers cancelling resting
    # orders (each cancel is a row, and the refill it causes another)
    m["cancel_rate_per_s"] = _clip(
        m["cancel_rate_per_s"]
        * _ratio(target["depth_update_rate_per_s"], s["depth_update_rate_per_s"]),
        MIN_CANCEL_RATE,
        MAX_CANCEL_RATE,
    )
    # a ladder re-centred less often changes the touch less often
    if "ladder_hysteresis_bps" in m and not two_speed(m):
        # below half the informed edge: a ladder left further from v is traded by the
        # informed at once (COIN-M: the hysteresis grew to 1.2 bps, every order was informed)
        m["ladder_hysteresis_bps"] = _clip(
            m["ladder_hysteresis_bps"]
            / _ratio(target["touch_update_rate_per_s"], s["touch_update_rate_per_s"]),
            MIN_HYSTERESIS_BPS,
            min(MAX_HYSTERESIS_BPS, HYSTERESIS_EDGE_SHARE * m["informed_edge_bps"]),
        )
    # queues behind the touch are mostly old touches the price left: how fast makers pull
    # them sets the depth one level behind the touch
    m["excess_cancel_rate_per_s"] = _clip(
        m["excess_cancel_rate_per_s"]
        / _ratio(target["depth_qty_by_level"][1], s["depth_qty_by_level"][1]),
        1.0,
        5000.0,
    )
    # faster refill -> the touch is rebuilt sooner -> the spread's excess over one tick shrinks
    m["refill_rate_per_s"] *= 1.0 / _ratio(
        max(target["spread_ticks_mean"] - 1.0, 1e-3), max(s["spread_ticks_mean"] - 1.0, 1e-3)
    )


def _step_impact(
    m: dict, s: dict, target: dict, *, fit_spread: bool, whole: bool, markout: bool = False
) -> None:
    """The permanent and transient shares of sweep impact, its decay and saturation scale."""
    # impact of noise sweeps on v (a ratio of their touch move, saturating at IMPACT_CAP_BPS):
    # the permanent share follows the deep sweeps' 30 s impact, the transient share (decaying at
    # IMPACT_DECAY_PER_S) their 1 s impact (stepping it on the part gone by 30 s diverged: with
    # informed follow-through that difference can be negative on a fit market). Impact saturates, so
    # the wide tick's coarser sweeps are compared in bps, not per bps of reach. Fitting a wholly
    # permanent, linear impact to the print markout instead made the synthetic market trend
    # (deep-sweep impact 2.4x their reach and no reversion, 60 s volatility 1.8x the capture's):
    # a quote resting a few ticks deep lost there on every seed while it earned on the captures.
    # (A transient impact fitted to the 100 ms / 1 s / 5 s print markouts was tried earlier and
    # turned explosive: the informed then chased the displaced price; they now trade against v
    # without the transient part.)
    s1 = float(s.get("deep_sweep_impact_1s_bps", float("nan")))
    t1 = float(target.get("deep_sweep_impact_1s_bps", float("nan")))
    slow = two_speed(m)
    m["impact_permanence_ratio"] = _clip(
        m["impact_permanence_ratio"] * _permanence_step(s, target, markout=markout and slow),
        MIN_PERMANENCE,
        MAX_PERMANENCE,
    )
    one_s = "impact_slow_ratio" if slow else "impact_transient_ratio"
    m[one_s] = _clip(
        m.get(one_s, INITIAL_TRANSIENT) * _ratio(t1, s1, IMPACT_DAMPING),
        MIN_PERMANENCE,
        MAX_PERMANENCE,
    )
    if slow:
        _step_two_speed(m, s, target)
    elif whole or m.get("sweep_requote", 0.0) > 0.0:
        # the mid follows v at once after a sweep (whole-level pulls or the re-quote), so the
        # transient impact's decay shows in the print markout's reversion: fitted to it
        _step_impact_decay(m, s, target)
    else:
        m["impact_decay_per_s"] = IMPACT_DECAY_PER_S
    if fit_spread:
        # at the captured tick the saturation scale is fitted: a larger one lets the biggest
        # sweeps (which carry most prints) move the price more, so it follows the 1 s markout of
        # single prints, which the deep-sweep statistics above do not pin down
        m["impact_cap_bps"] = _clip(
            m.get("impact_cap_bps", IMPACT_CAP_BPS)
            * _ratio(target["markout_1s_bps"], s["markout_1s_bps"], IMPACT_DAMPING),
            MIN_IMPACT_CAP_BPS,
            WHOLE_MAX_IMPACT_CAP_BPS if whole else MAX_IMPACT_CAP_BPS,
        )
    else:
        m["impact_cap_bps"] = IMPACT_CAP_BPS


def _permanence_step(s: dict, target: dict, *, markout: bool) -> float:
    """The permanence's multiplicative step: toward the deep sweeps' 30 s impact, or (``markout``,
    `--fit-permanence-markout` with the two-speed transient) on a capture whose 30 s deep-sweep
    impact is not positive (COIN-M's: -3.663 bps over 22 sweeps, no target for a multiplicative
    step), toward the print markout at 5 s, which the fast part has left by then (the slow
    part's decay follows the 5 s / 1 s markout ratio, the permanence the 5 s level)."""
    if markout and no_deep_sweep_target(target):
        t5 = float(target.get("markout_5s_bps", float("nan")))
        return _ratio(t5, float(s.get("markout_5s_bps", float("nan"))), IMPACT_DAMPING)
    t30 = float(target.get("deep_sweep_impact_30s_bps", float("nan")))
    s30 = float(s.get("deep_sweep_impact_30s_bps", float("nan")))
    return _ratio(t30, s30, IMPACT_DAMPING)


def no_deep_sweep_target(target: dict) -> bool:
    """Is the capture's 30 s deep-sweep impact measured but not positive (no multiplicative
    target for the permanence)?"""
    t30 = float(target.get("deep_sweep_impact_30s_bps", float("nan")))
    return bool(np.isfinite(t30) and t30 <= 0.0)


def _step_race(m: dict, s: dict, target: dict, *, whole: bool) -> None:
    """The informed intensity and the stale-quote pull speed, from the aggressor-order markout."""
    # information per aggressor order is the race between takers who see the efficient price
    # past the touch and makers pulling those stale quotes: the step moves both, the informed
    # intensity up by its square root and the stale-pull speed down by it. (On the wide tick
    # the stale touch melts before the informed trade unless the pulls slow down.)
    if whole:
        # whole-level pulls: the pull speed has its own statistic (the mid's return
        # autocorrelation), the informed intensity alone follows the aggressor-order markout
        m["informed_rate_per_s_per_bps"] = _clip(
            m["informed_rate_per_s_per_bps"]
            * _ratio(target["parent_markout_1s_bps"], s["parent_markout_1s_bps"]),
            MIN_INFORMED_RATE,
            MAX_INFORMED_RATE,
        )
        _step_stale_rate(m, s, target)
        return
    if two_speed(m):
        # a slow transient the informed leave alone leaves them less to earn: on the race's
        # line (informed up, pulls down) the fit drove the pulls to their floor with the touch
        # updates at 0.71x (USD-M). Each follows the statistic it moves most instead: the
        # informed intensity the aggressor-order markout, the pull speed the touch updates
        # unless the informed alone out-trade the capture (_two_speed_pull_step; the ladder
        # hysteresis is left at its start)
        m["informed_rate_per_s_per_bps"] = _clip(
            m["informed_rate_per_s_per_bps"]
            * _ratio(target["parent_markout_1s_bps"], s["parent_markout_1s_bps"]),
            MIN_INFORMED_RATE,
            MAX_INFORMED_RATE,
        )
        m["stale_cancel_rate_per_s"] = _clip(
            m["stale_cancel_rate_per_s"] * _two_speed_pull_step(s, target),
            MIN_STALE_RATE,
            MAX_STALE_RATE,
        )
        return
    race = np.sqrt(_ratio(target["parent_markout_1s_bps"], s["parent_markout_1s_bps"], 2.0))
    m["informed_rate_per_s_per_bps"] = _clip(
        m["informed_rate_per_s_per_bps"] * race, MIN_INFORMED_RATE, MAX_INFORMED_RATE
    )
    m["stale_cancel_rate_per_s"] = _clip(
        m["stale_cancel_rate_per_s"] / race, MIN_STALE_RATE, MAX_STALE_RATE
    )


def _two_speed_pull_step(s: dict, target: dict) -> float:
    """The stale-pull speed's step under --slow-impact: toward the capture's touch updates, unless
    the informed alone make more aggressor orders than the capture has (informed share x parent
    rate above the capture's parent rate). No noise rate reaches the parent rate then (its step
    only moves the noise flow), and slower pulls leave the informed more stale quotes: the pulls
    speed up toward the informed orders' excess instead. (COIN-M: the touch changed 7x as often as
    the capture's at the start, the touch step took the pulls to their floor, the informed made
    every aggressor order and the fit ended at 5x the capture's parent rate, the noise rate at
    2e-5 / s; docs/data.md, "The COIN-M fit under --slow-impact".)"""
    nan = float("nan")
    share = float(s.get("informed_share_of_orders", nan))
    informed = share * float(s.get("parent_rate_per_s", nan))
    wanted = float(target.get("parent_rate_per_s", nan))
    if np.isfinite(informed) and informed > wanted > 0:
        return 1.0 / _ratio(wanted, informed)
    return _ratio(target["touch_update_rate_per_s"], s["touch_update_rate_per_s"])


def _mean_return_autocorr(stats: dict) -> float:
    return 0.5 * (
        float(stats["autocorr_mid_return_100ms"]) + float(stats["autocorr_mid_return_1s"])
    )


def _step_stale_rate(m: dict, s: dict, target: dict) -> None:
    """Faster stale pulls keep the mid on the efficient price: the step raises the pull hazard
    while the synthetic mid's returns are more autocorrelated than the capture's."""
    gap = _mean_return_autocorr(s) - _mean_return_autocorr(target)
    if not np.isfinite(gap):
        return
    step = float(np.exp(np.clip(STALE_AUTOCORR_GAIN * gap, -MAX_LOG_STEP, MAX_LOG_STEP)))
    m["stale_cancel_rate_per_s"] = _clip(
        m["stale_cancel_rate_per_s"] * step, MIN_STALE_RATE, MAX_STALE_LEVEL_RATE
    )


def two_speed(m: dict) -> bool:
    """Is the model's transient impact in two parts (``--slow-impact``)?"""
    return m.get("impact_slow_ratio", 0.0) > 0.0


def _step_impact_decay(m: dict, s: dict, target: dict) -> None:
    """A faster-decaying transient impact reverts more of the print markout between 100 ms and
    5 s: the decay rate steps toward the capture's 5 s / 100 ms markout ratio."""
    decay = float(m.get("impact_decay_per_s", IMPACT_DECAY_PER_S))
    m["impact_decay_per_s"] = _decay_toward_kept(
        decay, s, target, "markout_100ms_bps", IMPACT_DAMPING
    )


def _step_two_speed(m: dict, s: dict, target: dict) -> None:
    """The two-speed transient impact: the fast share between the 100 ms print markout and the
    100 ms return autocorrelation, the slow part's decay on the print markout's reversion from
    1 s to 5 s."""
    from mmbot.fidelity.compare import AUTOCORR_MAX_DIFF, RATIO_BAND

    m["impact_decay_per_s"] = FAST_IMPACT_DECAY_PER_S
    # the fast part raises the 100 ms print markout and reverts the mid's 100 ms returns: its
    # share settles where the two misses are the same share of their fidelity bands
    t100, s100 = float(target["markout_100ms_bps"]), float(s["markout_100ms_bps"])
    short = (t100 - s100) / t100 / (1.0 - RATIO_BAND[0]) if t100 > 0 else float("nan")
    ac = "autocorr_mid_return_100ms"
    reverts = (float(target[ac]) - float(s[ac])) / AUTOCORR_MAX_DIFF
    if np.isfinite(short) and np.isfinite(reverts):
        step = float(np.exp(np.clip(FAST_STEP * (short - reverts), -MAX_LOG_STEP, MAX_LOG_STEP)))
        m["impact_transient_ratio"] = _clip(
            m["impact_transient_ratio"] * step, MIN_PERMANENCE, MAX_PERMANENCE
        )
    decay = float(m.get("impact_slow_decay_per_s", INITIAL_SLOW_DECAY_PER_S))
    m["impact_slow_decay_per_s"] = _decay_toward_kept(decay, s, target, "markout_1s_bps", DAMPING)


def _decay_toward_kept(decay: float, s: dict, target: dict, early: str, power: float) -> float:
    """``decay`` stepped (``power``) toward the capture's share of the ``early`` print markout
    still there at 5 s, within the decay's search range: more kept than the capture -> faster."""
    t_keep, s_keep = _kept_at_5s(target, early), _kept_at_5s(s, early)
    if np.isfinite(t_keep) and np.isfinite(s_keep) and t_keep > 0 and s_keep > 0:
        decay /= _ratio(t_keep, s_keep, power)
    return _clip(decay, MIN_IMPACT_DECAY_PER_S, MAX_IMPACT_DECAY_PER_S)


def _kept_at_5s(stats: dict, early: str) -> float:
    """The share of the ``early`` print markout still there at 5 s (NaN without one)."""
    e = float(stats[early])
    return float(stats["markout_5s_bps"]) / e if e > 0 else float("nan")


def _step_depth_targets(
    m: dict, s: dict, target: dict, *, tick_bps: float, fit_depth_by_level: bool
) -> None:
    """Level targets toward the capture's depth profile: level by level near the touch (at the
    captured tick), then per distance band."""
    tk = np.asarray(m["depth_target_qty"], dtype=np.float64)
    if fit_depth_by_level:
        sim_l = np.asarray(s["depth_qty_by_level"])
        tgt_l = np.asarray(target["depth_qty_by_level"])
        for k in range(min(len(tk), len(sim_l))):
            tk[k] *= _clip(tgt_l[k] / max(sim_l[k], 1e-9), 0.5, 2.0)
    # further out, per distance band (0-1, 1-2, 2-5 bps from mid): scale the band's targets by
    # the capture's / the synthetic's depth in that band
    start = len(s["depth_qty_by_level"]) if fit_depth_by_level else 0
    dist = (np.arange(len(tk)) + 0.5) * tick_bps
    prev_t = float(np.sum(target["depth_qty_by_level"][:start]))
    prev_s = float(np.sum(s["depth_qty_by_level"][:start]))
    lo = -1.0
    for b, hi in enumerate((1.0, 2.0, 5.0)):
        sel = (dist > lo) & (dist <= hi)
        sel[:start] = False
        t_band = target["depth_qty_within_bps"][b] - prev_t
        s_band = s["depth_qty_within_bps"][b] - prev_s
        if sel.any() and t_band > 0 and s_band > 0:
            tk[sel] *= _clip(t_band / s_band, 0.5, 2.0)
        prev_t = target["depth_qty_within_bps"][b]
        prev_s = s["depth_qty_within_bps"][b]
        lo = hi
    m["depth_target_qty"] = [float(x) for x in tk]
