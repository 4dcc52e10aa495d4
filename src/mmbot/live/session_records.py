"""What a live/paper session leaves in its run directory: records (fills, actions, marks) in the
backtest's format (``RunResult``), EDGE_REPORT.json, and session.json (its summary, counters and
``replay`` block: what ``mmbot replay-compare`` needs to replay its recorded feed).

The fills come from the journal (this session's, after the ones journaled before it); the
position and cash it started from reach the audit as initial_position_qty / initial_equity, so
the edge identity holds from a non-flat start.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mmbot.live.order_flow import link_num
from mmbot.records import FILL_DTYPE, MARK_DTYPE, RunResult

if TYPE_CHECKING:
    from mmbot.live.session import Session

log = logging.getLogger("mmbot.live")


def session_result(s: Session) -> RunResult:
    if s.rest is not None:
        s.counters["rest_transport_errors"] = s.rest.n_transport_errors
        s.counters["rest_rate_limited"] = s.rest.n_rate_limited
    s.counters["ws_reconnects"] = sum(
        st.reconnects for st in (s.public, s.private) if st is not None
    )
    rows = [r for r in s.journal.fills(s.symbol) if int(r["seq"]) > s.start_fill_seq]
    cash, fees = s.journal.cash_and_fees(s.symbol)
    pos = s.journal.position_qty(s.symbol)
    # where this session started: the journal's position and cash less this session's fills
    pos0 = pos - sum(r["side"] * r["qty"] for r in rows)
    cash0 = cash - sum(-r["side"] * r["px"] * r["qty"] - r["fee"] for r in rows)
    fills = _fill_records(s, rows, pos0)
    marks_l = [(int(f["exch_ts"]), float(f["mid_px"]), float(f["position_qty"])) for f in fills]
    marks_l += s.marks
    final_mid = s.mid()
    end_ns = time.time_ns()
    if math.isfinite(final_mid):
        marks_l.append((end_ns, final_mid, pos))
    marks = (
        np.array(sorted(marks_l, key=lambda t: t[0]), dtype=MARK_DTYPE)
        if marks_l
        else np.zeros(0, MARK_DTYPE)
    )
    fm = final_mid if math.isfinite(final_mid) else (marks["mid_px"][-1] if len(marks) else 0.0)
    m0 = s.start_mid_px if math.isfinite(s.start_mid_px) else fm
    p = s.params[0]
    meta = {
        "symbol": s.symbol,
        "mode": s.cfg.mode,
        "tick_px": s.tick_px,
        "lot_qty": s.lot_qty,
        "maker_fee_rate": float(p["maker_fee_rate"]),
        "taker_fee_rate": float(p["taker_fee_rate"]),
        "start_ts": int(min([s.start_ns] + [int(r["exch_ts_ns"]) for r in rows])),
        "end_ts": end_ns,
        "final_mid_px": float(fm),
        "start_mid_px": float(m0),
        "initial_position_qty": float(pos0),
        # equity = cash from the journal's fills + position x mid, at the start and the end
        "initial_equity": float(cash0 + pos0 * m0),
        "sim_equity": float(cash + pos * fm),
        "position_qty": pos,
        "order_rtt_p50_ms": float(np.median(s.order_rtt_ms)) if s.order_rtt_ms else None,
        "decide_to_send_p50_ms": (
            float(np.median(s.decide_to_send_ms)) if s.decide_to_send_ms else None
        ),
        "ws_lag_p95_ms": float(np.percentile(s.lags_ms, 95)) if s.lags_ms else None,
        "events": s.n_events,
        "strategy": s.cfg.strategy,
        "knobs": dict(s.knobs),
        "kill_reason": s.kill_reason or None,
        "strategy_params": {k: float(s.qparams[0][k]) for k in s.quoter.params},
        "strategy_state": {
            k: float(s.state[0][k])
            for k in ("sigma_ticks", "a_per_s", "k_per_tick", "half_spread_px", "slip_cost_bps")
            if s.state is not None and k in (s.state.dtype.names or ())
        },
        **{f"live_{k}": v for k, v in s.counters.items()},
    }
    return RunResult(fills, s.actions[: s.n_actions].copy(), marks, meta)


def _fill_records(s: Session, rows: list[dict], pos0: float) -> np.ndarray:
    """This session's journal fills as FILL_DTYPE records, with the position after each (in the
    records' exchange-time order, from ``pos0``) and the order's age at the fill."""
    fills = np.zeros(len(rows), dtype=FILL_DTYPE)
    for k, r in enumerate(rows):
        f = fills[k]
        f["exch_ts"], f["local_ts"], f["order_id"], f["side"] = (
            r["exch_ts_ns"],
            r["local_ts_ns"],
            link_num(r["link_id"] or ""),
            r["side"],
        )
        f["maker"], f["px"], f["qty"], f["fee"], f["fee_rate"] = (
            r["maker"],
            r["px"],
            r["qty"],
            r["fee"],
            r["fee_rate"],
        )
        mid = r["mid_px"] if r["mid_px"] is not None and math.isfinite(r["mid_px"]) else r["px"]
        f["mid_px"], f["target_px"] = (
            mid,
            r["target_px"] if r["target_px"] is not None else math.nan,
        )
        o = s.journal.order(r["link_id"] or "")
        f["order_age_ns"] = (
            max(0, r["exch_ts_ns"] - int(o["acked_ns"] or o["created_ns"])) if o else 0
        )
    # the position after each fill in the records' (exchange time) order
    fills["position_qty"] = pos0 + np.cumsum(fills["side"] * fills["qty"])
    return fills


def write_records(s: Session) -> None:
    from mmbot.audit.edge_report import build_edge_report, dump_json, make_runtime
    from mmbot.audit.records_io import write_run

    out = s.cfg.out_dir
    res = session_result(s)
    write_run(out / "records", res, s.cfg.mode)
    try:
        report = build_edge_report(
            [res],
            make_runtime(
                profile=s.cfg.profile,
                overrides=dict(s.knobs),
                mode=s.cfg.mode,
                symbol=s.symbol,
            ),
        )
        dump_json(report, out / "EDGE_REPORT.json")
    except Exception as exc:  # noqa: BLE001 - the session's records are on disk; say why the report is not
        log.error("EDGE_REPORT not written: %s: %s", type(exc).__name__, exc)
    summary = {
        "mode": s.cfg.mode,
        "symbol": s.symbol,
        "fills": len(res.fills),
        "position_qty": res.meta["position_qty"],
        "pnl_quote": s.risk.pnl(),
        # the position held before the bot's first session: priced at its start mid, its
        # PnL is market risk the bot did not take (not counted by the loss limit)
        "inherited_position_qty": s.risk.inherited_qty,
        "inherited_mid_px": s.risk.inherited_mid_px
        if math.isfinite(s.risk.inherited_mid_px)
        else None,
        "inherited_pnl_quote": s.risk.inherited_pnl(),
        "kill_reason": s.kill_reason or None,
        "books_reconciliation": s.books,
        "counters": s.counters,
        "order_rtt_p50_ms": res.meta["order_rtt_p50_ms"],
        "decide_to_send_p50_ms": res.meta["decide_to_send_p50_ms"],
        "ws_lag_p95_ms": res.meta["ws_lag_p95_ms"],
        # paper: what its venue applied (order latency = compute + entry; see live.paper)
        **s.gateway.stats(),
        "replay": replay_inputs(s),
    }
    (out / "session.json").write_text(json.dumps(summary, sort_keys=True, indent=1))
    log.info("session: %s", json.dumps(summary, sort_keys=True))


def replay_inputs(s: Session) -> dict:
    """What ``mmbot replay-compare`` needs to replay this session's recorded feed through the
    backtest: the feed file (``--record``) and the quoter's settings as resolved here."""
    p = s.params[0] if s.params is not None else None
    rc = s.run_config
    rec = s.cfg.record_path
    return {
        "record_path": str(Path(rec).resolve()) if rec is not None else None,
        "profile": s.cfg.profile,
        "strategy": s.cfg.strategy,
        "params": dict(s.cfg.params or {}),
        "knobs": dict(s.knobs),
        "order_qty": float(p["order_qty"]) if p is not None else None,
        "max_position_qty": float(p["max_position_qty"]) if p is not None else None,
        "maker_fee_rate": float(p["maker_fee_rate"]) if p is not None else None,
        "taker_fee_rate": float(p["taker_fee_rate"]) if p is not None else None,
        "tick_px": s.tick_px,
        "lot_qty": s.lot_qty,
        "queue_model": s.gateway.queue_model,
        "rate_limit_per_s": int(s.profile.venue.rate_limit_per_s),
        "wake_interval_ms": rc.run.wake_interval_ms if rc is not None else None,
    }
