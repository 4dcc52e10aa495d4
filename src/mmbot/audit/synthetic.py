"""Synthetic RunResult records for benchmarks, report previews and property tests (seeded, vectorised).

Not a market model: a random-walk mid sampled on a grid, fills at a random subset of grid times (so
the marks carry a row at every fill, as the venue's do), maker fills at mid ± half-spread with a
rebate, taker fills across the spread with a fee, targets close to the fill price, a few blocked and
cancelled actions. Every identity the audit checks holds by construction.
"""

from __future__ import annotations

import numpy as np

from mmbot.records import (
    ACT_ACKED,
    ACT_BLOCKED,
    ACT_CANCELLED,
    ACT_FILLED,
    ACT_INTENDED,
    ACT_SENT,
    ACTION_DTYPE,
    FILL_DTYPE,
    GUARD_REASONS,
    MARK_DTYPE,
    OP_NEW,
    RunResult,
)


def synthetic_result(
    n_fills: int,
    *,
    seed: int = 0,
    start_ts_ns: int = 1_700_000_000_000_000_000,
    step_ns: int = 50_000_000,
    marks_per_fill: int = 4,
    mid0_px: float = 100.0,
    vol_bps_per_step: float = 0.5,
    half_spread_bps: float = 2.0,
    maker_fee_rate: float = -0.0001,
    taker_fee_rate: float = 0.0005,
    taker_share: float = 0.1,
    symbol: str = "SYNUSDT",
) -> RunResult:
    """A consistent synthetic run with ``n_fills`` fills and about ``marks_per_fill`` marks per fill."""
    rng = np.random.default_rng(seed)
    n_marks = max(2, n_fills * marks_per_fill)
    ts = start_ts_ns + np.arange(n_marks, dtype=np.int64) * step_ns
    mid = mid0_px * np.exp(np.cumsum(rng.normal(0.0, vol_bps_per_step * 1e-4, n_marks)))
    mid = np.round(mid, 6)

    fill_idx = (
        np.sort(rng.choice(n_marks - 1, size=n_fills, replace=False))
        if n_fills
        else np.zeros(0, np.int64)
    )
    fills = _fills(
        rng,
        ts[fill_idx],
        mid[fill_idx],
        half_spread_bps,
        maker_fee_rate,
        taker_fee_rate,
        taker_share,
    )
    side, px, qty, position = fills["side"], fills["px"], fills["qty"], fills["position_qty"]
    marks = _marks(ts, mid, fill_idx, position)
    actions = _actions(rng, ts, fill_idx, side, px, mid)

    final_mid = float(mid[-1])
    cash = float(-(side * qty * px).sum() - fills["fee"].sum())
    meta = {
        "symbol": symbol,
        "tick_px": 0.000001,
        "lot_qty": 0.001,
        "maker_fee_rate": maker_fee_rate,
        "taker_fee_rate": taker_fee_rate,
        "start_ts": int(ts[0]),
        "end_ts": int(ts[-1]),
        "final_mid_px": final_mid,
        "sim_equity": cash + (float(position[-1]) if n_fills else 0.0) * final_mid,
        "ws_lag_p95_ms": 25.0,
        "events": int(n_marks),
    }
    return RunResult(fills, actions, marks, meta)


def _fills(
    rng: np.random.Generator,
    ts: np.ndarray,
    m: np.ndarray,
    half_spread_bps: float,
    maker_fee_rate: float,
    taker_fee_rate: float,
    taker_share: float,
) -> np.ndarray:
    """Fills at times ``ts`` (mids ``m``): maker at mid -/+ half-spread, taker across it."""
    n_fills = len(ts)
    fills = np.zeros(n_fills, dtype=FILL_DTYPE)
    side = rng.choice(np.array([-1, 1], dtype=np.int8), size=n_fills)
    maker = rng.random(n_fills) >= taker_share
    half = m * half_spread_bps * 1e-4
    # maker: buy below mid, sell above; taker: buy above, sell below
    px = np.where(maker, m - side * half, m + side * half)
    qty = np.round(rng.uniform(0.1, 2.0, n_fills), 3)
    rate = np.where(maker, maker_fee_rate, taker_fee_rate)
    target = px + rng.normal(0.0, 0.2, n_fills) * half
    target[rng.random(n_fills) < 0.01] = np.nan  # some fills without a target
    fills["exch_ts"] = ts
    fills["local_ts"] = ts + 1_000_000
    fills["order_id"] = np.arange(n_fills)
    fills["side"] = side
    fills["maker"] = maker
    fills["px"] = px
    fills["qty"] = qty
    fills["fee_rate"] = rate
    fills["fee"] = rate * px * qty
    fills["mid_px"] = m
    fills["target_px"] = target
    fills["order_age_ns"] = rng.integers(1_000_000, 900_000_000, n_fills)
    fills["position_qty"] = np.cumsum(side * qty)
    return fills


def _marks(
    ts: np.ndarray, mid: np.ndarray, fill_idx: np.ndarray, position: np.ndarray
) -> np.ndarray:
    """A mark at every grid time with the position after the last fill at or before it."""
    marks = np.zeros(len(ts), dtype=MARK_DTYPE)
    marks["exch_ts"] = ts
    marks["mid_px"] = mid
    k = np.searchsorted(fill_idx, np.arange(len(ts)), side="right") - 1
    marks["position_qty"] = np.where(
        k >= 0, position[np.maximum(k, 0)] if len(fill_idx) else 0.0, 0.0
    )
    return marks


def _actions(
    rng: np.random.Generator,
    ts: np.ndarray,
    fill_idx: np.ndarray,
    side: np.ndarray,
    px: np.ndarray,
    mid: np.ndarray,
) -> np.ndarray:
    """Per fill an intended/sent/acked/filled chain, plus as many blocked or cancelled attempts."""
    n_fills = n_extra = len(fill_idx)
    n_act = 4 * n_fills + 2 * n_extra
    actions = np.zeros(n_act, dtype=ACTION_DTYPE)
    kinds = np.concatenate(
        [
            np.repeat(np.array([ACT_INTENDED, ACT_SENT, ACT_ACKED, ACT_FILLED], np.uint8), n_fills),
            np.repeat(np.array([ACT_INTENDED], np.uint8), n_extra),
            np.where(rng.random(n_extra) < 0.5, ACT_BLOCKED, ACT_CANCELLED).astype(np.uint8),
        ]
    )
    actions["kind"] = kinds
    actions["op"] = OP_NEW
    actions["local_ts"] = np.resize(ts[fill_idx] if n_fills else ts[:1], n_act)
    actions["exch_ts"] = actions["local_ts"]
    actions["side"] = np.resize(side if n_fills else np.ones(1, np.int8), n_act)
    actions["px"] = np.resize(px if n_fills else mid[:1], n_act)
    actions["qty"] = 1.0
    blocked = kinds == ACT_BLOCKED
    actions["reason"][blocked] = rng.choice(
        np.array(GUARD_REASONS, np.uint8), size=int(blocked.sum())
    )
    leaves = (kinds == ACT_FILLED) | (kinds == ACT_CANCELLED)
    actions["order_age_ns"][leaves] = rng.integers(1_000_000, 800_000_000, int(leaves.sum()))
    return actions
