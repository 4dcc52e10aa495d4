"""Builders for small hand-written RunResult records (shared by the audit, gate and report tests;
no tests here)."""

from __future__ import annotations

import numpy as np

from mmbot.records import ACTION_DTYPE, FILL_DTYPE, MARK_DTYPE, RunResult

S = 1_000_000_000  # one second in ns
T0 = 1_700_000_000 * S


def fills_array(rows: list[dict]) -> np.ndarray:
    """rows: dicts with t_s, side, maker, px, qty, fee, mid, target, pos (+ optional age_ms)."""
    a = np.zeros(len(rows), dtype=FILL_DTYPE)
    for i, r in enumerate(rows):
        a[i]["exch_ts"] = T0 + round(r["t_s"] * S)
        a[i]["local_ts"] = a[i]["exch_ts"] + 5_000_000
        a[i]["order_id"] = i + 1
        a[i]["side"] = r["side"]
        a[i]["maker"] = r["maker"]
        a[i]["px"] = r["px"]
        a[i]["qty"] = r["qty"]
        a[i]["fee"] = r["fee"]
        a[i]["fee_rate"] = r.get("fee_rate", 0.0)
        a[i]["mid_px"] = r["mid"]
        a[i]["target_px"] = r["target"]
        a[i]["order_age_ns"] = round(r.get("age_ms", 100.0) * 1e6)
        a[i]["position_qty"] = r["pos"]
    return a


def marks_array(rows: list[tuple[float, float, float]]) -> np.ndarray:
    """rows: (t_s, mid, position after)."""
    a = np.zeros(len(rows), dtype=MARK_DTYPE)
    for i, (t, mid, pos) in enumerate(rows):
        a[i]["exch_ts"] = T0 + round(t * S)
        a[i]["mid_px"] = mid
        a[i]["position_qty"] = pos
    return a


def actions_array(rows: list[dict]) -> np.ndarray:
    """rows: dicts with kind, op (default NEW), reason (default NONE), age_ms (default 0)."""
    a = np.zeros(len(rows), dtype=ACTION_DTYPE)
    for i, r in enumerate(rows):
        a[i]["local_ts"] = T0 + i * 1_000_000
        a[i]["exch_ts"] = a[i]["local_ts"]
        a[i]["order_id"] = r.get("order_id", i + 1)
        a[i]["kind"] = r["kind"]
        a[i]["side"] = r.get("side", 1)
        a[i]["op"] = r.get("op", 0)
        a[i]["reason"] = r.get("reason", 0)
        a[i]["px"] = r.get("px", 100.0)
        a[i]["qty"] = r.get("qty", 1.0)
        a[i]["order_age_ns"] = round(r.get("age_ms", 0.0) * 1e6)
    return a


def run(
    fills: list[dict],
    marks: list[tuple[float, float, float]],
    actions: list[dict] | None = None,
    **meta,
) -> RunResult:
    m = marks_array(marks)
    meta.setdefault("symbol", "TESTUSDT")
    meta.setdefault("final_mid_px", float(m["mid_px"][-1]) if len(m) else float("nan"))
    meta.setdefault("end_ts", int(m["exch_ts"][-1]) if len(m) else T0)
    meta.setdefault("start_ts", T0)
    meta.setdefault("ws_lag_p95_ms", 20.0)
    return RunResult(fills_array(fills), actions_array(actions or []), m, meta)
