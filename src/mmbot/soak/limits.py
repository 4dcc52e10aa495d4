"""The soak's loss limits: what tripped, when, and the lines that say so.

A soak's chunks carry the account (`mmbot.soak.account_carry`), so the guards compare the soak's
cumulative PnL with their limits: the ``max_loss`` kill switch, the ``max_drawdown`` stop (from an
equity peak reached in any earlier chunk) and the spot balance check. Owns reading that back from
the chunks' records: `kill_stop` (the chunk in which the kill switch latched and the first
exchange time the soak's PnL was below the limit), `drawdown_stops` (per iteration) and their
marker lines. The soak stops after the chunk in which the kill switch latched: a latched kill
switch quotes nothing for the rest of a run, so later iterations would only hold the position and
give the tuner nothing to judge; the position is closed at taker cost as at any soak end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from mmbot.instruments import spec_from_meta

KILL_RULE = (
    "kill switch: the soak's cumulative PnL (every chunk's, carried) below -max_loss; no new "
    "quotes after it latched, so the soak stops after that chunk and its position is closed at "
    "taker cost"
)


def utc(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def equity_path(res: Any) -> tuple[np.ndarray, np.ndarray]:
    """(exch_ts, equity) at every mark of a chunk, as its venue books it (cash, which holds the
    soak's PnL before the chunk, plus the position at the mid): the guards' figure, seen from the
    exchange side."""
    meta = res.meta
    spec = spec_from_meta(meta)
    pos0 = float(meta.get("initial_position_qty") or 0.0)
    start_mid = float(meta.get("start_mid_px") or math.nan)
    cash0 = float(meta["initial_equity"]) - (pos0 * spec.value(start_mid) if pos0 else 0.0)
    f, m = res.fills, res.marks
    value = np.vectorize(spec.value, otypes=[np.float64])
    signed = (f["side"] * f["qty"]).astype(np.float64)
    flow = signed * value(f["px"]) + f["fee"] if len(f) else np.zeros(0)
    # cash and position after the fills up to each mark, from the same fills
    spent = np.concatenate([[0.0], np.cumsum(flow)])
    pos = pos0 + np.concatenate([[0.0], np.cumsum(signed)])
    n_done = np.searchsorted(f["exch_ts"], m["exch_ts"], side="right")
    with np.errstate(invalid="ignore", divide="ignore"):
        held = np.where(pos[n_done] != 0.0, pos[n_done] * value(m["mid_px"]), 0.0)
    return m["exch_ts"], cash0 - spent[n_done] + held


def kill_stop(results: Sequence[Any], iteration: int) -> dict | None:
    """Where the kill switch latched among an iteration's chunks (None: it did not)."""
    for chunk, res in enumerate(results):
        g = res.meta.get("guards") or {}
        before = ((res.meta.get("carry_in") or {}).get("guards") or {}).get("killed")
        if not g.get("killed") or before:
            continue
        limit = float(g["max_loss"])
        ts, eq = equity_path(res)
        below = np.flatnonzero(eq < -limit)
        at_ns = int(ts[below[0]]) if len(below) else None
        return {
            "reason": "kill_switch",
            "rule": KILL_RULE,
            "iteration": iteration,
            "chunk": chunk,
            "run": res.meta.get("name"),
            "max_loss": limit,
            "first_below_ns": at_ns,
            "first_below_utc": utc(at_ns) if at_ns is not None else None,
            "soak_pnl_then": float(eq[below[0]]) if len(below) else None,
            "soak_pnl_at_chunk_end": float(res.meta["sim_equity"]),
        }
    return None


def stop_line(stop: dict) -> str:
    when = (
        f"the soak's PnL first {stop['soak_pnl_then']:.2f} at {stop['first_below_utc']} "
        "(exchange time; the guard latched on its next wake)"
        if stop["first_below_ns"] is not None
        else "the guard's own mark crossed it (no exchange-side mark below it)"
    )
    return (
        f"| soak | STOP | kill switch: iter={stop['iteration']} chunk={stop['chunk']} "
        f"max_loss={stop['max_loss']:g}: {when}; no new quotes after it, so the soak stops here "
        "and the position is closed at taker cost |"
    )


def drawdown_stops(results: Sequence[Any]) -> dict | None:
    """The drawdown stops of an iteration's chunks (None: no stop, or the stop is off)."""
    n = sum(int((r.meta.get("guards") or {}).get("drawdown_stops") or 0) for r in results)
    if not n:
        return None
    g = results[0].meta["guards"]
    return {"stops": n, "max_drawdown": float(g.get("max_drawdown") or 0.0)}


def drawdown_line(iteration: int, dd: dict) -> str:
    return (
        f"| soak | DRAWDOWN | iter={iteration} stops={dd['stops']}: the soak's equity fell more "
        f"than max_drawdown={dd['max_drawdown']:g} below its peak (reached in this or an earlier "
        "chunk); new quotes paused for the cool-down each time |"
    )
