"""Replay a recorded paper/live session's feed through the backtest and compare order by order.

A session run with ``--record`` leaves in its run directory ``session.json`` (with a ``replay``
block: the feed file and the quoter's settings as the session resolved them) and ``records/`` (its
orders, actions and fills). ``load_session`` reads both; ``replay`` runs ``mmbot.backtest`` on the
recorded feed with those settings and the session's order latency; ``compare`` pairs the two runs'
orders (same side, decided within ``match_window_ns`` of each other, nearest
first) and says, for every order whose fills differ, how (fill count, price, time) and why, as far
as the records tell: which side cancelled or moved it first, or that one side never quoted it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmbot.errors import UserError
from mmbot.records import (
    ACT_CANCELLED,
    ACT_FILLED,
    ACT_REJECTED,
    ACT_SENT,
    OP_NEW,
    OP_REPLACE,
    RunResult,
)

MATCH_WINDOW_NS = 100_000_000  # two orders are "the same" if decided within 100 ms (same side, px)
FILL_TIME_TOL_NS = 2_000_000  # fill times closer than 2 ms count as equal (ms-stamped exchange)
SESSION_MODES = ("paper", "live")


@dataclass
class SessionRun:
    run_dir: Path
    session: dict
    result: RunResult
    feed_path: Path


@dataclass
class Order:
    """One order as its run's records show it: when it was decided, its prices, how it ended."""

    order_id: int
    side: int
    decided_ns: int
    px: float
    qty: float
    last_px: float
    end: str = "open at the end"
    end_ns: int = 0
    fills: list[tuple[int, float, float]] = field(default_factory=list)  # (exch ns, px, qty)

    @property
    def filled_qty(self) -> float:
        return float(sum(q for _, _, q in self.fills))


@dataclass
class Difference:
    t_ns: int
    side: int
    px: float
    session: str
    replay: str
    cause: str
    kind: str  # short key for the per-cause counts


@dataclass
class Comparison:
    n_session: int
    n_replay: int
    n_matched: int
    n_same: int
    differences: list[Difference]
    fills_session: int
    fills_replay: int
    t0_ns: int
    decide_lag_p50_ms: (
        float | None
    )  # session send time - its paired replay order's decision, median


def _not_a_session(run_dir: Path, why: str) -> UserError:
    return UserError(f"{run_dir}: not a recorded paper/live session ({why})")


def load_session(run_dir: Path) -> SessionRun:
    """The session in ``run_dir`` and its recorded feed; anything else -> UserError (exit 2)."""
    from mmbot.audit.records_io import read_run

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise _not_a_session(run_dir, "no such directory")
    sp = run_dir / "session.json"
    if not sp.is_file():
        raise _not_a_session(run_dir, "no session.json: `mmbot paper|live --out DIR` writes it")
    try:
        session = json.loads(sp.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _not_a_session(run_dir, f"session.json unreadable: {exc}") from None
    if not isinstance(session, dict) or session.get("mode") not in SESSION_MODES:
        raise _not_a_session(run_dir, "session.json names no paper/live mode")
    rep = session.get("replay")
    if not isinstance(rep, dict):
        raise _not_a_session(
            run_dir, "session.json has no replay block (written before it existed)"
        )
    if not rep.get("record_path"):
        raise _not_a_session(run_dir, "run without --record PATH: its feed was not recorded")
    feed = Path(rep["record_path"])
    if not feed.is_file():
        raise _not_a_session(run_dir, f"its recorded feed {feed} is gone")
    if not (run_dir / "records").is_dir():
        raise _not_a_session(run_dir, "no records/ directory")
    (result,) = read_run(run_dir / "records")[:1]
    return SessionRun(run_dir, session, result, feed)


def session_latency_ms(session: dict) -> float:
    """The latency the session's orders met: paper = what its venue applied (compute + entry);
    live = decide-to-send plus half the order round trip."""
    if session.get("mode") == "paper" and session.get("paper_order_latency_ms") is not None:
        return float(session["paper_order_latency_ms"])
    one_way = (session.get("decide_to_send_p50_ms") or 0.0) + (
        session.get("order_rtt_p50_ms") or 0.0
    ) / 2
    return max(float(one_way), 0.1)


def replay(
    s: SessionRun, latency_ms: float | None = None, events: np.ndarray | None = None
) -> tuple[RunResult, float]:
    """The backtest of the session's recorded feed (or of ``events``: another feed, e.g. the
    capture an emulator replayed) with the session's settings."""
    from mmbot.backtest import RunSettings, run
    from mmbot.config import load_profile
    from mmbot.data import load_events
    from mmbot.instruments import spec_for

    rep = s.session["replay"]
    lat = session_latency_ms(s.session) if latency_ms is None else float(latency_ms)
    if events is None:
        events, _ = load_events(s.feed_path, use_cache=False)
    symbol = str(s.session.get("symbol") or s.result.meta.get("symbol", ""))
    settings = RunSettings(
        strategy=rep.get("strategy"),
        params=dict(rep.get("params") or {}),
        knobs=dict(rep.get("knobs") or {}),
        profile=load_profile(rep.get("profile")),
        latency_ms=lat,
        queue_model=str(rep.get("queue_model") or "risk_averse"),
        maker_fee_rate=rep.get("maker_fee_rate"),
        taker_fee_rate=rep.get("taker_fee_rate"),
        order_qty=rep.get("order_qty"),
        max_position_qty=rep.get("max_position_qty"),
        rate_limit_per_s=rep.get("rate_limit_per_s"),
        wake_interval_ms=rep.get("wake_interval_ms"),  # None (older session.json): the quoter's
        spec=spec_for("bybit-linear", symbol),  # the live connector trades Bybit linear
    )
    res = run(
        events,
        settings,
        symbol=symbol,
        tick_px=float(rep["tick_px"]),
        lot_qty=float(rep["lot_qty"]),
    )
    return res, lat


def orders_of(result: RunResult) -> list[Order]:
    """Each order's decision time and first price (its NEW request), later prices, end, fills."""
    acts, fills = result.actions, result.fills
    by_id: dict[int, Order] = {}
    sent = acts[acts["kind"] == ACT_SENT]
    for a in sent[np.argsort(sent["local_ts"], kind="stable")]:
        oid = int(a["order_id"])
        if int(a["op"]) == OP_NEW and oid not in by_id:
            by_id[oid] = Order(
                oid,
                int(a["side"]),
                int(a["local_ts"]),
                float(a["px"]),
                float(a["qty"]),
                float(a["px"]),
            )
        elif int(a["op"]) == OP_REPLACE and oid in by_id:
            by_id[oid].last_px = float(a["px"])
    ends = {ACT_CANCELLED: "cancelled", ACT_FILLED: "filled", ACT_REJECTED: "rejected"}
    for a in acts[np.isin(acts["kind"], list(ends))]:
        o = by_id.get(int(a["order_id"]))
        if o is not None and not o.end_ns:
            o.end, o.end_ns = ends[int(a["kind"])], int(a["local_ts"])
    for f in fills[np.argsort(fills["exch_ts"], kind="stable")]:
        o = by_id.get(int(f["order_id"]))
        if o is not None:
            o.fills.append((int(f["exch_ts"]), float(f["px"]), float(f["qty"])))
    return sorted(by_id.values(), key=lambda o: o.decided_ns)


def _pair(sess: list[Order], rep: list[Order], window_ns: int) -> list[tuple[Order, Order]]:
    """Greedy in session order: the unused replay order of the same side decided nearest in time
    (within ``window_ns``); its price may differ (that difference is reported)."""
    free: dict[int, list[Order]] = {1: [], -1: []}
    for o in rep:
        free.setdefault(o.side, []).append(o)
    pairs = []
    for o in sess:
        cands = free.get(o.side, [])
        best = min(cands, key=lambda r: abs(r.decided_ns - o.decided_ns), default=None)
        if best is not None and abs(best.decided_ns - o.decided_ns) <= window_ns:
            cands.remove(best)
            pairs.append((o, best))
    return pairs


def _story(o: Order, t0_ns: int) -> str:
    if o.fills:
        t, px, _ = o.fills[0]
        return f"filled {o.filled_qty:g} @ {px:g} at {_s(t, t0_ns)}"
    when = f" at {_s(o.end_ns, t0_ns)}" if o.end_ns else ""
    moved = f" (moved to {o.last_px:g})" if o.last_px != o.px else ""
    return f"{o.end}{when}{moved}"


def _s(t_ns: int, t0_ns: int) -> str:
    return f"+{(t_ns - t0_ns) / 1e9:.3f}s"


def _why_one_filled(filled: Order, other: Order, who: str, t0_ns: int) -> tuple[str, str]:
    """Cause for ``filled`` having fills its counterpart ``other`` (run ``who``) lacks."""
    t_fill = filled.fills[0][0]
    if other.end in ("cancelled", "rejected") and other.end_ns and other.end_ns <= t_fill:
        ms = (t_fill - other.end_ns) / 1e6
        return f"the {who} {other.end} it {ms:.1f} ms before that fill", f"{who} left first"
    if other.last_px != filled.fills[0][1]:
        return (
            f"the {who} had moved it to {other.last_px:g} (fill was at {filled.fills[0][1]:g})",
            f"{who} moved it",
        )
    return (
        f"the {who}'s order was at that price but not reached: its queue position was behind",
        "queue position",
    )


def compare(
    session: RunResult,
    replayed: RunResult,
    window_ns: int = MATCH_WINDOW_NS,
    fill_tol_ns: int = FILL_TIME_TOL_NS,
) -> Comparison:
    s_orders, r_orders = orders_of(session), orders_of(replayed)
    t0 = min([o.decided_ns for o in s_orders[:1] + r_orders[:1]] or [0])
    pairs = _pair(s_orders, r_orders, window_ns)
    diffs: list[Difference] = []
    n_same = 0
    for so, ro in pairs:
        d = _diff_pair(so, ro, fill_tol_ns, t0)
        if d is None:
            n_same += 1
        else:
            diffs.append(d)
    paired_s = {id(so) for so, _ in pairs}
    paired_r = {id(ro) for _, ro in pairs}
    for o, who, other in (
        *((o, "session", "replay") for o in s_orders if id(o) not in paired_s),
        *((o, "replay", "session") for o in r_orders if id(o) not in paired_r),
    ):
        story, none = _story(o, t0), "-"
        diffs.append(
            Difference(
                o.decided_ns,
                o.side,
                o.px,
                story if who == "session" else none,
                story if who == "replay" else none,
                f"the {other} placed no {'buy' if o.side > 0 else 'sell'} within "
                f"{window_ns / 1e6:.0f} ms of it: its quoting had diverged"
                + (" (and this one filled)" if o.fills else ""),
                f"{who} only" + (" (filled)" if o.fills else ""),
            )
        )
    diffs.sort(key=lambda d: d.t_ns)
    lags = [(so.decided_ns - ro.decided_ns) / 1e6 for so, ro in pairs]
    return Comparison(
        len(s_orders),
        len(r_orders),
        len(pairs),
        n_same,
        diffs,
        len(session.fills),
        len(replayed.fills),
        t0,
        float(np.median(lags)) if lags else None,
    )


def _diff_pair(so: Order, ro: Order, fill_tol_ns: int, t0: int) -> Difference | None:
    dt_ms = (so.decided_ns - ro.decided_ns) / 1e6
    when = f"; the session sent it {dt_ms:+.1f} ms from the replay's decision"
    if so.px != ro.px:
        when += f", at {so.px:g} vs {ro.px:g}"

    def mk(cause: str, kind: str) -> Difference:
        return Difference(
            so.decided_ns, so.side, so.px, _story(so, t0), _story(ro, t0), cause + when, kind
        )

    if not so.fills and not ro.fills:
        return None  # neither filled: how each ended does not change the result
    if so.fills and not ro.fills:
        return mk(*_why_one_filled(so, ro, "replay", t0))
    if ro.fills and not so.fills:
        return mk(*_why_one_filled(ro, so, "session", t0))
    if abs(so.filled_qty - ro.filled_qty) > 1e-12:
        return mk(f"filled {so.filled_qty:g} vs {ro.filled_qty:g}", "fill qty")
    if so.fills[0][1] != ro.fills[0][1]:
        return mk(f"fill price {so.fills[0][1]:g} vs {ro.fills[0][1]:g}", "fill price")
    dt_ns = so.fills[0][0] - ro.fills[0][0]
    if abs(dt_ns) > fill_tol_ns:
        return mk(
            f"same fill {dt_ns / 1e6:+.1f} ms apart (queue reached at a different trade)",
            "fill time",
        )
    return None


def report_lines(
    s: SessionRun, cmp: Comparison, lat_ms: float, net_bps: tuple[float, float], max_rows: int
) -> list[str]:
    rep = s.session["replay"]
    lines = [
        f"replay-compare {s.run_dir}: {s.session['mode']} session, {s.session.get('symbol', '')}",
        f"  feed {s.feed_path}; replayed by the backtest at {lat_ms:.3f} ms order latency, "
        f"queue model {rep.get('queue_model')}",
        f"fills: session {cmp.fills_session}, replay {cmp.fills_replay}; "
        f"net_bps: session {net_bps[0]:.3f}, replay {net_bps[1]:.3f}",
        f"orders: session {cmp.n_session}, replay {cmp.n_replay}; paired {cmp.n_matched} "
        f"({cmp.n_same} with the same fills or none), differences {len(cmp.differences)}",
    ]
    if cmp.decide_lag_p50_ms is not None:
        clock = (
            "event time: the receive stamp of the message that decided them"
            if s.session.get("mode") == "paper"
            else "wall-clock sends, its handling backlog included"
        )
        lines.append(
            f"timing: the session sent its paired orders a median {cmp.decide_lag_p50_ms:+.1f} ms "
            f"from the replay's decisions (positive: later; the session's times are {clock})"
        )
    if not cmp.differences:
        lines.append("no differences: every order paired, with the same fills")
        return lines
    counts: dict[str, int] = {}
    for d in cmp.differences:
        counts[d.kind] = counts.get(d.kind, 0) + 1
    lines.append(
        "causes: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    )
    shown = cmp.differences[:max_rows]
    lines.append(f"differences (first {len(shown)} of {len(cmp.differences)}, by decision time):")
    for d in shown:
        side = "buy " if d.side > 0 else "sell"
        lines.append(
            f"  {_s(d.t_ns, cmp.t0_ns)} {side} {d.px:g}: session {d.session} | replay {d.replay}"
            f" -> {d.cause}"
        )
    return lines
