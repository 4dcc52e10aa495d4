"""Market statistics computed identically on real captures and on the synthetic market.

Owns ``market_stats(events)``: the one yardstick the calibration fits against and the fidelity
test compares with. The book is rebuilt from the events themselves (snapshot / depth / clear /
BBO rows) in one compiled pass on ``mmbot.book``'s table storage and rules, sampled on a regular
exchange-time grid (so spread and depth are time-weighted), and every trade's 1 s markout is
measured against the mid the book showed just before that trade.

Crossed feeds: the readers' replay repairs them per message, but the rows here are applied one
at a time, so a message that sets a level through the opposite touch before its later rows delete
that touch crosses for a moment (``crossed_book_repairs``: 1439 on the USD-M capture). Such a row,
and a feed that still crosses (an array from elsewhere, a synthetic market), is repaired with the
book module's repair rule (``mmbot.book.stale_sides``: the level the row just set is fresh, the
opposite touch is stale and goes, level by level, each counted in ``crossed_book_repairs``), not
the venue's keep rule: the statistics describe the market a quoter sees, which is never crossed.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from mmbot import book as bk_
from mmbot import events as ev_
from mmbot.errors import UserError

GRID_NS = 10_000_000  # spread / mid sampling step (time weighting)
DEPTH_EVERY = 10  # depth sampled every DEPTH_EVERY grid steps (100 ms)
N_LEVELS = 5  # depth profile: qty at touch + k ticks, k = 0..4
DEPTH_BPS = np.array([1.0, 2.0, 5.0, 10.0])  # cumulative depth within these distances of mid
MARKOUT_NS = 1_000_000_000
# markouts of prints at these horizons (name suffix -> ns); 1 s is also the fitted one
MARKOUT_HORIZONS_NS = {"100ms": 100_000_000, "1s": 1_000_000_000, "5s": 5_000_000_000}
# aggressor orders that reached at least this far past their first print are "deep sweeps"; the
# mid's move after them (at these horizons) is the impact a deep resting quote is filled against
DEEP_SWEEP_BPS = 1.0
DEEP_SWEEP_HORIZONS_NS = {"1s": 1_000_000_000, "30s": 30_000_000_000}
# trade-throughs: an aggressor order whose furthest print is at least d bps (each of
# TRADE_THROUGH_BPS) beyond the mid TRADE_THROUGH_LAG_NS before it, on its own side, counted once
# per side per TRADE_THROUGH_BIN_NS (a quote resting d bps from the mid is filled at most once
# there: the captures' deep prints come in bursts of dozens of orders within a second). 1, 2 and
# 5 bps are where the fidelity panel's deep quoters rest on the USD-M capture (acked orders, bps
# from the mid, p10 / p50 / p90): glft_ref 1.55 / 2.65 / 5.18, adaptive without its markout
# depth 2.84 / 5.68 / 10.5; 0.5 bps is where glft_ref measures the trade intensity that sets its
# depth (its regression's 70 half-tick bins reach 0.58 bps on USD-M)
TRADE_THROUGH_BPS = (0.5, 1.0, 2.0, 5.0)
TRADE_THROUGH_LAG_NS = 100_000_000
TRADE_THROUGH_BIN_NS = 1_000_000_000
VOL_LONG_S = 60  # overlapping 60 s returns, one a second: the long-horizon volatility
# lag-1 autocorrelations of mid returns sampled every this many ns (name suffix -> ns)
AUTOCORR_RETURN_NS = {"100ms": 100_000_000, "1s": 1_000_000_000}
_TABLE_SLOTS = 4096  # initial hash-table slots per side (grown with the book)


@njit(cache=True)
def _new_book():
    """An empty table book (``mmbot.book``'s sparse storage): bid keys/qty, ask keys/qty, state."""
    bk = np.full(_TABLE_SLOTS, bk_.EMPTY_KEY, dtype=np.int64)
    ak = np.full(_TABLE_SLOTS, bk_.EMPTY_KEY, dtype=np.int64)
    bs = np.zeros(bk_.N_BOOK_STATE, dtype=np.int64)
    bs[bk_.B_BEST_BID] = bk_.NO_BID
    bs[bk_.B_BEST_ASK] = bk_.NO_ASK
    return bk, np.zeros(_TABLE_SLOTS), ak, np.zeros(_TABLE_SLOTS), bs


@njit(cache=True, inline="always")
def _book_row(bk, bv, ak, av, bs, flags, p, q):
    """Apply one depth / snapshot / BBO row (tick key ``p``, qty ``q``; 0 deletes) with the book
    module's rules: a BBO row first deletes the better levels of its side; a level set at or
    through the opposite touch is fresh and the opposite touch is stale (the repair rule,
    ``mmbot.book.stale_sides``). Returns how many levels the repair deleted. The tables must have
    room for one more level."""
    kind = flags & ev_.KIND_MASK
    is_bid = (flags & ev_.BUY_EVENT) != 0
    if not is_bid and not (flags & ev_.SELL_EVENT):
        return 0
    keys, vals = (bk, bv) if is_bid else (ak, av)
    if kind == ev_.DEPTH_BBO_EVENT and q > 0.0:
        bk_.table_drop_better(keys, vals, p, is_bid, bs)
    bk_.table_set(keys, vals, p, q, is_bid, bs)
    if q > 0.0 and bs[bk_.B_BEST_BID] >= bs[bk_.B_BEST_ASK]:
        if is_bid:
            return bk_.table_uncross(bk, bv, ak, av, bs, p, bk_.NO_ASK)
        return bk_.table_uncross(bk, bv, ak, av, bs, bk_.NO_BID, p)
    return 0


@njit(cache=True)
def _clear(bk, bv, ak, av, bs, flags, px, tick):
    """A DEPTH_CLEAR row: its side from the touch up to ``px``, the whole side when ``px`` is not
    a price; both sides, whole, when the row names neither side or both."""
    buy = (flags & ev_.BUY_EVENT) != 0
    sell = (flags & ev_.SELL_EVENT) != 0
    whole = buy == sell or not px > 0.0
    key = np.int64(0) if whole else np.int64(math.floor(px / tick + 0.5))
    if buy or not sell:
        bk_.table_clear_upto(bk, bv, key, True, bs)
    if sell or not buy:
        bk_.table_clear_upto(ak, av, bk_.NO_ASK if whole else key, False, bs)


@njit(cache=True)
def _cum_qty(keys, vals, touch, half_sum, lim, is_bid):
    """Quantity from the touch out to ``lim`` ticks from the mid (``half_sum`` = (bid+ask)/2 in
    ticks), level by level."""
    c = 0.0
    p = touch
    if is_bid:
        while half_sum - p <= lim:
            c += bk_.table_get(keys, vals, p)
            p -= 1
    else:
        while p - half_sum <= lim:
            c += bk_.table_get(keys, vals, p)
            p += 1
    return c


@njit(cache=True)
def _sample(gi, bk, bv, ak, av, bs, tick, depth_bps, g_mid, g_spr, d_lvl, d_cum):
    """Grid point ``gi`` with the book as it stands: mid and spread, and every DEPTH_EVERY points
    the depth by level and within ``depth_bps`` of the mid (nothing while a side is empty)."""
    bb = bs[bk_.B_BEST_BID]
    ba = bs[bk_.B_BEST_ASK]
    if bb == bk_.NO_BID or ba == bk_.NO_ASK or ba <= bb:
        return
    mid = 0.5 * (bb + ba) * tick
    g_mid[gi] = mid
    g_spr[gi] = (ba - bb) * tick / mid * 1e4
    if gi % DEPTH_EVERY != 0:
        return
    di = gi // DEPTH_EVERY
    for k in range(N_LEVELS):
        d_lvl[di, k] = bk_.table_get(bk, bv, bb - k)
        d_lvl[di, N_LEVELS + k] = bk_.table_get(ak, av, ba + k)
    nd = depth_bps.shape[0]
    for m in range(nd):
        lim = depth_bps[m] * 1e-4 * mid / tick
        d_cum[di, m] = _cum_qty(bk, bv, bb, 0.5 * (bb + ba), lim, True)
        d_cum[di, nd + m] = _cum_qty(ak, av, ba, 0.5 * (bb + ba), lim, False)


@njit(cache=True)
def _trade(
    ntr, last_grp, t, flags, px, qty, bs, tick, tr_t, tr_px, tr_qty, tr_side, tr_mid, tr_new
):
    """Record print ``ntr`` with the mid before it; returns its aggressor group (the ms)."""
    side = 1 if (flags & ev_.BUY_EVENT) else (-1 if (flags & ev_.SELL_EVENT) else 0)
    tr_t[ntr] = t
    tr_px[ntr] = px
    tr_qty[ntr] = qty
    tr_side[ntr] = side
    # prints of one aggressor order (same ms, same side) share the mid seen before the first of
    # them: a sweep's later prints must not be marked against its own impact
    grp = t // 1_000_000
    if ntr > 0 and grp == last_grp and side == tr_side[ntr - 1]:
        tr_mid[ntr] = tr_mid[ntr - 1]
        tr_new[ntr] = False
    else:
        bb = bs[bk_.B_BEST_BID]
        ba = bs[bk_.B_BEST_ASK]
        ok_book = bb != bk_.NO_BID and ba != bk_.NO_ASK and ba > bb
        tr_mid[ntr] = 0.5 * (bb + ba) * tick if ok_book else np.nan
        tr_new[ntr] = True
    return grp


@njit(cache=True, nogil=True)
def _scan(
    ev: np.ndarray,
    exch: np.ndarray,
    pxs: np.ndarray,
    qtys: np.ndarray,
    tick: float,
    depth_bps: np.ndarray,
):
    """One pass over the events: the book rebuilt on ``mmbot.book``'s table storage (keys = tick
    indices), sampled on the grid before each event, and every print with the mid before it."""
    n = ev.shape[0]
    bk, bv, ak, av, bs = _new_book()
    t0 = exch[0]
    ngrid = int((exch[n - 1] - t0) // GRID_NS) + 1
    g_mid = np.full(ngrid, np.nan)
    g_spr = np.full(ngrid, np.nan)
    ndep = ngrid // DEPTH_EVERY + 1
    d_lvl = np.full((ndep, 2 * N_LEVELS), np.nan)
    d_cum = np.full((ndep, 2 * depth_bps.shape[0]), np.nan)
    tr_t = np.empty(n, dtype=np.int64)
    tr_px = np.empty(n, dtype=np.float64)
    tr_qty = np.empty(n, dtype=np.float64)
    tr_side = np.empty(n, dtype=np.int64)
    tr_mid = np.empty(n, dtype=np.float64)
    tr_new = np.empty(n, dtype=np.bool_)
    last_grp = -1
    ntr = 0
    touch_changes = 0
    crossed_fixes = 0
    lt = np.array([bk_.NO_BID, bk_.NO_ASK])  # the touch last counted: bid key, ask key
    lt_q = np.zeros(2)  # and its quantities
    gi = 0
    for i in range(n):
        t = exch[i]
        # sample the grid points strictly before this event with the book as it stood
        while gi < ngrid and t0 + gi * GRID_NS < t:
            _sample(gi, bk, bv, ak, av, bs, tick, depth_bps, g_mid, g_spr, d_lvl, d_cum)
            gi += 1
        kind = ev[i] & ev_.KIND_MASK
        if kind == ev_.TRADE_EVENT:
            last_grp = _trade(
                ntr, last_grp, t, ev[i], pxs[i], qtys[i], bs, tick,
                tr_t, tr_px, tr_qty, tr_side, tr_mid, tr_new,
            )  # fmt: skip
            ntr += 1
            continue
        if kind == ev_.DEPTH_CLEAR_EVENT:
            _clear(bk, bv, ak, av, bs, ev[i], pxs[i], tick)
            continue
        if (
            kind != ev_.DEPTH_EVENT
            and kind != ev_.DEPTH_SNAPSHOT_EVENT
            and kind != ev_.DEPTH_BBO_EVENT
        ):
            continue
        q = qtys[i]
        if math.isnan(q) or q < 0.0:
            continue
        p = np.int64(math.floor(pxs[i] / tick + 0.5))
        if 2 * (bs[bk_.B_NB] + 1) > len(bk):
            bk, bv = bk_.table_room(bk, bv, bs[bk_.B_NB], 1)
        if 2 * (bs[bk_.B_NA] + 1) > len(ak):
            ak, av = bk_.table_room(ak, av, bs[bk_.B_NA], 1)
        crossed_fixes += _book_row(bk, bv, ak, av, bs, ev[i], p, q)
        bb = bs[bk_.B_BEST_BID]
        ba = bs[bk_.B_BEST_ASK]
        if bb != bk_.NO_BID and ba != bk_.NO_ASK:
            cbq = bk_.table_get(bk, bv, bb)
            caq = bk_.table_get(ak, av, ba)
            if bb != lt[0] or ba != lt[1] or cbq != lt_q[0] or caq != lt_q[1]:
                touch_changes += 1
                lt[0] = bb
                lt[1] = ba
                lt_q[0] = cbq
                lt_q[1] = caq
    return (
        g_mid,
        g_spr,
        d_lvl,
        d_cum,
        tr_t[:ntr],
        tr_px[:ntr],
        tr_qty[:ntr],
        tr_side[:ntr],
        tr_mid[:ntr],
        tr_new[:ntr],
        touch_changes,
        crossed_fixes,
    )


def guess_tick(events: np.ndarray) -> float:
    """Smallest price increment seen among book and trade prices (rounded to 1e-9)."""
    px = np.unique(np.round(events["px"][events["px"] > 0], 9))
    if len(px) < 2:
        raise UserError(
            "market_stats: events hold fewer than two distinct prices; cannot infer the tick"
        )
    d = np.diff(px)
    d = d[d > 1e-9]
    return float(np.round(d.min(), 9))


def _q(x: np.ndarray, p: float) -> float:
    return float(np.quantile(x, p)) if len(x) else float("nan")


def _lag1_autocorr(x: np.ndarray) -> float:
    """Lag-1 autocorrelation over consecutive pairs where both values are finite (nan if the
    series is constant or shorter than 3)."""
    a = x[:-1]
    b = x[1:]
    ok = np.isfinite(a) & np.isfinite(b)
    a = a[ok]
    b = b[ok]
    if len(a) < 3:
        return float("nan")
    mu = float(np.mean(np.concatenate([a, b])))
    var = float(np.mean((x[np.isfinite(x)] - mu) ** 2))
    if var <= 0:
        return float("nan")
    return float(np.mean((a - mu) * (b - mu)) / var)


def _markouts_bps(
    g_mid: np.ndarray,
    t0: int,
    tr_t: np.ndarray,
    tr_side: np.ndarray,
    tr_mid: np.ndarray,
    horizon_ns: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-print markout (bps, signed by the aggressor) against the grid mid at or after
    t + horizon, and the mask of prints where it is defined."""
    gi = np.ceil((tr_t + horizon_ns - t0) / GRID_NS).astype(np.int64)
    valid = (gi < len(g_mid)) & np.isfinite(tr_mid) & (tr_side != 0)
    after = g_mid[np.minimum(gi, len(g_mid) - 1)]
    mo = tr_side * (after - tr_mid) / tr_mid * 1e4
    return mo, valid & np.isfinite(mo)


def _deep_sweep_stats(
    g_mid: np.ndarray,
    t0: int,
    tr_t: np.ndarray,
    tr_px: np.ndarray,
    tr_side: np.ndarray,
    tr_mid: np.ndarray,
    tr_new: np.ndarray,
) -> dict:
    """How far aggressor orders that swept at least DEEP_SWEEP_BPS past their first print
    reached, and how far the mid had moved (from before the order, signed by its side) 1 s and
    30 s later: the impact curve a quote resting that deep is filled against."""
    out: dict = {"deep_sweep_share": float("nan"), "deep_sweep_count": 0.0}
    for name in DEEP_SWEEP_HORIZONS_NS:
        out[f"deep_sweep_impact_{name}_bps"] = float("nan")
        out[f"deep_sweep_impact_{name}_se_bps"] = float("nan")
    out["deep_sweep_reach_bps"] = float("nan")
    n_par = int(tr_new.sum())
    if n_par == 0:
        return out
    starts = np.flatnonzero(tr_new)
    first_px = tr_px[starts]
    side = tr_side[starts].astype(np.float64)
    hi = np.maximum.reduceat(tr_px, starts)
    lo = np.minimum.reduceat(tr_px, starts)
    reach_bps = np.where(side > 0, hi - first_px, first_px - lo) / first_px * 1e4
    deep = (reach_bps >= DEEP_SWEEP_BPS) & (side != 0) & np.isfinite(tr_mid[starts])
    out["deep_sweep_share"] = float(np.mean(deep))
    out["deep_sweep_count"] = float(np.sum(deep))
    if not deep.any():
        return out
    out["deep_sweep_reach_bps"] = float(np.mean(reach_bps[deep]))
    for name, h_ns in DEEP_SWEEP_HORIZONS_NS.items():
        mo, ok = _markouts_bps(g_mid, t0, tr_t[starts], side, tr_mid[starts], h_ns)
        sel = deep & ok
        out[f"deep_sweep_impact_{name}_bps"] = (
            float(np.mean(mo[sel])) if sel.any() else float("nan")
        )
        # its standard error over the sweeps (a few dozen on a 345 s capture)
        out[f"deep_sweep_impact_{name}_se_bps"] = (
            float(np.std(mo[sel], ddof=1) / np.sqrt(sel.sum())) if sel.sum() >= 2 else float("nan")
        )
    return out


def _trade_through_stats(
    g_mid: np.ndarray,
    t0: int,
    dur_s: float,
    tr_t: np.ndarray,
    tr_px: np.ndarray,
    tr_side: np.ndarray,
    tr_new: np.ndarray,
) -> dict:
    """``trade_through_{d}bps_per_min``: (second, side) pairs a minute in which an aggressor
    order printed at or beyond mid x (1 +- d bps), the mid being the book's TRADE_THROUGH_LAG_NS
    before the order (the grid point at or before then): how often a quote resting d bps from the
    mid is traded through."""
    names = [f"trade_through_{d:g}bps_per_min" for d in TRADE_THROUGH_BPS]
    out = {k: float("nan") for k in names}
    if dur_s <= 0:
        return out
    starts = np.flatnonzero(tr_new)
    if len(starts) == 0:
        return {k: 0.0 for k in names}
    side = tr_side[starts]
    t = tr_t[starts]
    far_px = np.where(
        side > 0, np.maximum.reduceat(tr_px, starts), np.minimum.reduceat(tr_px, starts)
    )
    gi = (t - TRADE_THROUGH_LAG_NS - t0) // GRID_NS
    ok = (gi >= 0) & (side != 0)
    mid = g_mid[np.clip(gi, 0, len(g_mid) - 1)]
    with np.errstate(invalid="ignore"):
        reach_bps = side * (far_px - mid) / mid * 1e4
    ok &= np.isfinite(reach_bps)
    slot = ((t - t0) // TRADE_THROUGH_BIN_NS) * 2 + (side > 0)
    for d, name in zip(TRADE_THROUGH_BPS, names, strict=True):
        sel = ok & (reach_bps >= d)
        out[name] = len(np.unique(slot[sel])) / (dur_s / 60.0)
    return out


def _extra_stats(
    g_mid: np.ndarray,
    t0: int,
    tr_t: np.ndarray,
    tr_side: np.ndarray,
    tr_mid: np.ndarray,
    tr_new: np.ndarray,
) -> dict:
    """Statistics outside the calibration's targets: markouts at 100 ms and 5 s, the 60 s
    volatility, and lag-1 autocorrelations of mid returns and of trade signs."""
    out: dict = {}
    for name, h_ns in MARKOUT_HORIZONS_NS.items():
        if name == "1s":
            continue
        mo, ok = _markouts_bps(g_mid, t0, tr_t, tr_side, tr_mid, h_ns)
        out[f"markout_{name}_bps"] = float(np.mean(mo[ok])) if ok.any() else float("nan")
        par = ok & tr_new
        out[f"parent_markout_{name}_bps"] = float(np.mean(mo[par])) if par.any() else float("nan")
    logm = np.log(g_mid)
    step = 1_000_000_000 // GRID_NS
    lm1 = logm[::step]
    r_long = (lm1[VOL_LONG_S:] - lm1[:-VOL_LONG_S]) * 1e4 if len(lm1) > VOL_LONG_S else np.zeros(0)
    r_long = r_long[np.isfinite(r_long)]
    out[f"vol_{VOL_LONG_S}s_bps"] = float(np.std(r_long)) if len(r_long) > 1 else float("nan")
    for name, h_ns in AUTOCORR_RETURN_NS.items():
        lm = logm[:: h_ns // GRID_NS]
        out[f"autocorr_mid_return_{name}"] = _lag1_autocorr(np.diff(lm))
    signs = tr_side[tr_side != 0].astype(np.float64)
    out["autocorr_trade_sign_lag1"] = _lag1_autocorr(signs)
    out["autocorr_parent_sign_lag1"] = _lag1_autocorr(
        tr_side[tr_new & (tr_side != 0)].astype(np.float64)
    )
    return out


def market_stats(events: np.ndarray, *, tick_px: float | None = None, moves: bool = False) -> dict:
    """Spread, trade rate/size, volatility (1 s and 60 s), depth profile, trade markouts (100 ms, 1 s,
    5 s), lag-1 autocorrelations of mid returns and trade signs, and feed latency of
    an event array. The same function serves the real capture and the synthetic market.
    ``moves``: also the mid's 100 ms move profile (`_mid_move_stats`, from the same scan; off by
    default, so the fidelity report and the fits that do not use it are as they were)."""
    if events.dtype.names is None or "exch_ts" not in events.dtype.names:
        raise UserError("market_stats: not an event array")
    if len(events) < 2:
        raise UserError(f"market_stats: need at least 2 events, got {len(events)}")
    if np.any(np.diff(events["exch_ts"]) < 0):
        raise UserError("market_stats: events are not sorted by exch_ts")
    tick = float(tick_px) if tick_px else guess_tick(events)
    res = _scan(events["ev"], events["exch_ts"], events["px"], events["qty"], tick, DEPTH_BPS)
    (
        g_mid,
        g_spr,
        d_lvl,
        d_cum,
        tr_t,
        tr_px,
        tr_qty,
        tr_side,
        tr_mid,
        tr_new,
        touch_changes,
        crossed,
    ) = res
    t0 = int(events["exch_ts"][0])
    dur_s = (int(events["exch_ts"][-1]) - t0) * 1e-9
    if dur_s <= 0:
        raise UserError("market_stats: events span zero time")
    ok = np.isfinite(g_spr)
    spr = g_spr[ok]
    # 1 s mid returns on the grid
    step = 1_000_000_000 // GRID_NS
    mid1 = g_mid[::step]
    r = np.diff(np.log(mid1)) * 1e4
    r = r[np.isfinite(r)]
    # markouts: mid 1 s after the trade (grid point at or after t + 1 s) vs mid before the trade
    gi = np.ceil((tr_t + MARKOUT_NS - t0) / GRID_NS).astype(np.int64)
    valid = (gi < len(g_mid)) & np.isfinite(tr_mid) & (tr_side != 0)
    gi_v = np.minimum(gi, len(g_mid) - 1)
    after = g_mid[gi_v]
    mo = tr_side * (after - tr_mid) / tr_mid * 1e4
    valid &= np.isfinite(mo)
    mo_parent = mo[valid & tr_new]
    mo = mo[valid]
    lat_ms = (events["local_ts"] - events["exch_ts"]).astype(np.float64) * 1e-6
    counts = (
        np.bincount(((tr_t - t0) // 1_000_000_000).astype(np.int64), minlength=max(1, int(dur_s)))
        if len(tr_t)
        else np.zeros(1)
    )
    counts = counts[: max(1, int(dur_s))]
    gaps_ns = np.diff(tr_t)
    mid_all = g_mid[ok]
    # aggressor ("parent") orders: prints sharing a ms and a side
    grp_id = np.cumsum(tr_new) - 1
    n_par = int(tr_new.sum())
    par_qty = np.bincount(grp_id, weights=tr_qty, minlength=n_par) if n_par else np.zeros(0)
    par_t = tr_t[tr_new]
    par_side = tr_side[tr_new]
    nsec = max(1, int(dur_s))
    pcounts = np.bincount(((par_t - t0) // 1_000_000_000).astype(np.int64), minlength=nsec)[:nsec]
    lvl = np.nanmean(d_lvl, axis=0) if np.isfinite(d_lvl).any() else np.full(2 * N_LEVELS, np.nan)
    cum = (
        np.nanmean(d_cum, axis=0)
        if np.isfinite(d_cum).any()
        else np.full(2 * len(DEPTH_BPS), np.nan)
    )
    nd = len(DEPTH_BPS)
    out = {
        "duration_s": dur_s,
        "n_events": int(len(events)),
        "n_trades": int(len(tr_t)),
        "tick_px": tick,
        "tick_bps": float(tick / np.median(mid_all) * 1e4) if len(mid_all) else float("nan"),
        "mid_px_mean": float(np.mean(mid_all)) if len(mid_all) else float("nan"),
        # share of the sampled time the book had both sides (spread and mid defined)
        "two_sided_ratio": float(np.mean(ok)) if len(ok) else float("nan"),
        "spread_bps_mean": float(np.mean(spr)) if len(spr) else float("nan"),
        "spread_bps_median": float(np.median(spr)) if len(spr) else float("nan"),
        "spread_bps_p95": _q(spr, 0.95),
        "spread_ticks_mean": float(np.mean(spr) * np.median(mid_all) * 1e-4 / tick)
        if len(spr)
        else float("nan"),
        "spread_one_tick_ratio": float(np.mean(spr * np.median(mid_all) * 1e-4 / tick < 1.5))
        if len(spr)
        else float("nan"),
        "trade_rate_per_s": len(tr_t) / dur_s,
        "trade_size_mean_qty": float(np.mean(tr_qty)) if len(tr_qty) else float("nan"),
        "trade_size_p50_qty": _q(tr_qty, 0.5),
        "trade_size_p90_qty": _q(tr_qty, 0.9),
        "trade_size_p99_qty": _q(tr_qty, 0.99),
        "trade_buy_ratio": float(np.mean(tr_side > 0)) if len(tr_side) else float("nan"),
        "trade_count_fano_1s": float(np.var(counts) / np.mean(counts))
        if np.mean(counts) > 0
        else float("nan"),
        "trade_gap_lt_1ms_ratio": float(np.mean(gaps_ns < 1_000_000))
        if len(gaps_ns)
        else float("nan"),
        "parent_rate_per_s": n_par / dur_s,
        "parent_size_mean_qty": float(np.mean(par_qty)) if n_par else float("nan"),
        "parent_size_p50_qty": _q(par_qty, 0.5),
        "parent_size_p90_qty": _q(par_qty, 0.9),
        "parent_same_side_ratio": float(np.mean(par_side[1:] == par_side[:-1]))
        if n_par > 1
        else float("nan"),
        "prints_per_parent": len(tr_t) / n_par if n_par else float("nan"),
        "parent_count_fano_1s": float(np.var(pcounts) / np.mean(pcounts))
        if n_par
        else float("nan"),
        "vol_bps_per_sqrt_s": float(np.std(r)) if len(r) > 1 else float("nan"),
        "return_kurtosis_1s": float(np.mean((r - r.mean()) ** 4) / np.var(r) ** 2)
        if len(r) > 3 and np.var(r) > 0
        else float("nan"),
        "markout_1s_bps": float(np.mean(mo)) if len(mo) else float("nan"),
        "parent_markout_1s_bps": float(np.mean(mo_parent)) if len(mo_parent) else float("nan"),
        "markout_1s_bps_qty_weighted": float(np.sum(mo * tr_qty[valid]) / np.sum(tr_qty[valid]))
        if len(mo)
        else float("nan"),
        "touch_update_rate_per_s": touch_changes / dur_s,
        "crossed_book_repairs": int(crossed),
        "depth_bid_qty_by_level": [float(x) for x in lvl[:N_LEVELS]],
        "depth_ask_qty_by_level": [float(x) for x in lvl[N_LEVELS:]],
        "depth_qty_by_level": [float(0.5 * (lvl[k] + lvl[N_LEVELS + k])) for k in range(N_LEVELS)],
        "depth_within_bps": [float(x) for x in DEPTH_BPS],
        "depth_qty_within_bps": [float(0.5 * (cum[m] + cum[nd + m])) for m in range(nd)],
        "feed_latency_ms_p50": float(np.quantile(lat_ms, 0.5)),
        "feed_latency_ms_p95": float(np.quantile(lat_ms, 0.95)),
    }
    out["touch_qty"] = out["depth_qty_by_level"][0]
    out["depth_qty_within_5bps"] = out["depth_qty_within_bps"][list(DEPTH_BPS).index(5.0)]
    out.update(_extra_stats(g_mid, t0, tr_t, tr_side, tr_mid, tr_new))
    out.update(_deep_sweep_stats(g_mid, t0, tr_t, tr_px, tr_side, tr_mid, tr_new))
    out.update(_trade_through_stats(g_mid, t0, dur_s, tr_t, tr_px, tr_side, tr_new))
    if moves:
        out.update(_mid_move_stats(g_mid, dur_s))
    return out


# the mid's 100 ms move profile (``market_stats(moves=True)``): (second, side) pairs a minute in
# which the mid moved at least d bps (each of MID_MOVE_BPS) that side's way over some
# MID_MOVE_STEP_NS window, counted like the trade-throughs (once per side per second), which
# follow it
MID_MOVE_BPS = (0.5, 2.0)
MID_MOVE_STEP_NS = 100_000_000


def _mid_move_stats(g_mid: np.ndarray, dur_s: float) -> dict:
    """``mid_move_{d}bps_per_min``: (second, side) pairs a minute in which the grid mid ``g_mid``
    moved at least d bps (MID_MOVE_BPS) over a MID_MOVE_STEP_NS window (windows sliding on the
    exchange-time grid, each counted in the second it ends in)."""
    log_mid = np.log(g_mid)
    lag = MID_MOVE_STEP_NS // GRID_NS
    with np.errstate(invalid="ignore"):
        move_bps = (log_mid[lag:] - log_mid[:-lag]) * 1e4
    end_s = (np.arange(len(move_bps)) + lag) * GRID_NS // 1_000_000_000
    slot = end_s * 2 + (move_bps > 0)
    ok = np.isfinite(move_bps)
    out = {}
    for d in MID_MOVE_BPS:
        sel = ok & (np.abs(move_bps) >= d)
        out[f"mid_move_{d:g}bps_per_min"] = len(np.unique(slot[sel])) / (dur_s / 60.0)
    return out
