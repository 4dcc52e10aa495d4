"""The live/paper session: the quoter driven by the exchange stream through the backtest's own wake,
called from Python per market update: the quoter's compiled ``think`` (``mmbot.engine.build``: trades
and fills since the last wake, then ``quote``) and the order manager + guards over its slots
(``mmbot.engine.wake.act``); only the I/O differs (the exchange instead of the simulated venue).

Reliability rules (issue 8):
- every order intent is journaled (``Journal.new_order``) before its request leaves; every fill is
  journaled before it moves the position; fills are keyed by execId (counted once);
- quoting starts only after a reconcile (executions -> journal, open orders, position vs exchange);
  every reconnect of a stream re-runs it; a book sequence gap invalidates the book and resubscribes
  (fresh snapshot) before quoting resumes;
- an order request whose outcome is unknown (timeout, 5xx, duplicate client id) is resolved by
  querying the order by its client id, never by re-sending a new id;
- rate-limit answers (retCode 10006) pause order actions with exponential backoff;
- stale data pauses quoting and cancels our orders; loss limit, position limit and clock drift
  trip the kill switch (cancel-all, records written, exit code 4);
- SIGINT/SIGTERM: cancel-all, final reconcile, records and EDGE_REPORT, exit 0.
Keys live only in ``ApiKeys`` (masked repr); nothing here logs a request's headers.

Times: market messages carry the time they reached the process (``BybitStream`` stamps them on
arrival, not when the bot gets round to them); a wake's requests are decided at the wake's time
(the deciding message's stamp, or now for a response / timer wake) and the paper venue times them
from it (``live.paper``). ``RunnerConfig.record_path`` (``--record``) writes every market message
the session handled, with its stamp, in ``mmbot record``'s capture format (``live.record``).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np

from mmbot.data.bybit import parse_message
from mmbot.errors import UserError
from mmbot.events import BUY_EVENT
from mmbot.live.bybit import (
    BybitError,
    BybitRest,
    BybitStream,
    Endpoints,
    RateLimited,
    TransportError,
)
from mmbot.live.bybit_msgs import LiveBook, book_topic, fmt, trade_topic
from mmbot.live.journal import FillRow, Journal
from mmbot.live.orders import price_decimals
from mmbot.live.signing import ApiKeys
from mmbot.records import (
    ACT_ACKED,
    ACT_CANCELLED,
    ACT_FILLED,
    ACT_REJECTED,
    ACT_SENT,
    ACTION_DTYPE,
    FILL_DTYPE,
    MARK_DTYPE,
    OP_CANCEL,
    OP_NEW,
    OP_REPLACE,
    REASON_NONE,
    REASON_POST_ONLY,
    REASON_RATE_LIMIT,
    REASON_UNKNOWN_ORDER,
    RunResult,
)

log = logging.getLogger("mmbot.live")

EXIT_KILLED = 4
DCP_WINDOW_S = 10  # Bybit's default Disconnect Cancel All window: orders go 10 s after the bot
TERMINAL = ("Filled", "Cancelled", "Rejected", "Deactivated", "NotFound")


@dataclass
class RunnerConfig:
    mode: str  # "paper" | "live"
    symbol: str
    endpoints: Endpoints
    out_dir: Path
    keys: ApiKeys | None = None
    journal_path: Path | None = None
    duration_s: float | None = None
    profile: str | None = None
    overrides_file: Path | None = None
    strategy: str = "glft"
    params: dict | None = None  # the quoter's parameters (--param)
    order_qty: float | None = None
    max_position_qty: float | None = None
    hard_position_ratio: float = 1.5  # kill switch at this multiple of max_position_qty
    loss_limit_quote: float | None = None  # default: profile risk.max_loss
    stale_ms: float = 3000.0
    max_clock_drift_ms: float = 1000.0
    clock_check_s: float = 5.0
    rest_timeout_s: float = 2.0
    paper_latency_ms: float | None = None  # None: the feed's measured median latency
    metrics_port: int = 0
    book_depth: int = 50  # orderbook.N topic: 50 (20 ms) or 500 (100 ms) on Bybit linear
    maker_fee_rate: float | None = None
    taker_fee_rate: float | None = None
    record_path: Path | None = None  # write the public stream traded on here (capture format)


@dataclass
class Slot:
    """Our working order on one side, as the runner tracks it."""

    link_id: str = ""
    status: int = 0  # views.ORD_*
    px: float = math.nan
    qty: float = 0.0
    live_since_ns: int = 0
    sent_ns: int = 0


def link_num(link_id: str) -> int:
    try:
        return int(link_id.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


class Session:
    def __init__(self, cfg: RunnerConfig):
        from mmbot.config import effective_knobs, load_overrides, load_profile, overrides_source

        self.cfg = cfg
        self.symbol = cfg.symbol
        self.profile = load_profile(cfg.profile)
        # as the backtest: only --overrides or $MM_RUNTIME_OVERRIDES_JSON, never a soak's file
        # that happens to sit in the working directory, and the log says which source it was
        overrides, msgs = load_overrides(cfg.overrides_file, default_file=None)
        source = overrides_source(cfg.overrides_file, default_file=None)
        log.info(
            "knobs: %s", f"overrides from {source}" if source else "the profile's (no overrides)"
        )
        for m in msgs:
            log.warning("%s", m)
        self.knobs = effective_knobs(self.profile, overrides)
        self.journal = Journal(cfg.journal_path or (cfg.out_dir / "journal.sqlite"))
        # a restart resumes from the journal: exact position and cash before anything else runs
        self.position_qty = self.journal.position_qty(cfg.symbol)
        self.cash_quote = self.journal.cash_and_fees(cfg.symbol)[0]
        # this session's records start after the fills journaled before it; the position and cash
        # it starts from (the adopted start position and earlier sessions) reach the audit as
        # initial_position_qty / initial_equity, so its identity holds from a non-flat start
        self.start_fill_seq = max(
            (int(r["seq"]) for r in self.journal.fills(cfg.symbol)), default=0
        )
        self.start_mid_px = math.nan  # the first mid this session sees
        self._load_inherited()
        self.book = LiveBook()
        self.stop = asyncio.Event()
        self.exit_code = 0
        self.kill_reason = ""
        self.reconciled = False
        self.stale = False
        self.pause_until_ns = 0
        self.backoff_s = 0.0
        self.last_rate_limit_ns = 0
        self.tasks: set[asyncio.Task] = set()
        from mmbot.engine.build import compiled_loop
        from mmbot.strategy.registry import make_qparams, resolve

        self.quoter = resolve(cfg.strategy)
        self.qparams = make_qparams(self.quoter, cfg.params or {}, cfg.strategy)
        self.loop = compiled_loop(cfg.strategy)  # think: the wake the backtest's drive runs
        self.levels = int(self.quoter.levels)
        self.wake_interval_ns = int(self.quoter.wake_interval_ms * 1e6)
        self.slots = [Slot() for _ in range(2 * self.levels)]  # row level * 2 + side
        self.orders: dict[str, dict] = {}  # link_id -> {"side", "terminal", "created_ns", ...}
        self.params: np.ndarray | None = None
        self.state: np.ndarray | None = None  # the quoter's
        self.guard: np.ndarray | None = None
        self.n_actions = 0
        self.n_trades = 0  # market trades since the last wake (in self.trade_buf)
        self.n_fills = 0  # our fills since the last wake (in self.fill_buf)
        self.tgt_ns: list[int] = []  # local ns of each change of the strategy's targets
        self.tgt_px: list[tuple[float, float]] = []  # (bid, ask) target from then on
        self.clock_offset_ns = 0  # exchange clock - local clock (the smallest-round-trip sample)
        self.clock_rtt_ns = 1 << 62  # round trip of the sample clock_offset_ns comes from
        self.decided_ns = 0  # the current wake's time (quote)
        self.wake_t0_ns = 0  # when the bot started on the current wake
        self.order_rtt_ms: list[float] = []
        # per request: from the wake's time (the deciding message's receive stamp) to its sending
        self.decide_to_send_ms: list[float] = []
        self.actions = np.zeros(1024, dtype=ACTION_DTYPE)
        self.marks: list[tuple[int, float, float]] = []
        self.lags_ms: list[float] = []
        self.n_events = 0
        self.start_ns = time.time_ns()
        self.last_book_local_ns = 0
        self.last_step_ns = 0
        self.tick_px = 0.0
        self.lot_qty = 0.0
        self.counters: dict[str, int] = {
            "gaps": 0,
            "stale_msgs": 0,
            "bad_msgs": 0,
            "reconnects": 0,
            "rate_limited": 0,
            "transport_errors": 0,
            "rejects": 0,
            "resolved_unknown": 0,
            "stale_pauses": 0,
            "reconciles": 0,
            "dup_fills": 0,
            "foreign_orders_cancelled": 0,
            "drawdown_stops": 0,
            "drawdown_resumes": 0,
            "reconcile_mismatches": 0,
        }
        self.books: dict | None = None  # the last books reconciliation (live.reconcile_pnl)
        from mmbot.instruments import spec_for
        from mmbot.live.drawdown import DrawdownWatch

        self.drawdown = DrawdownWatch()
        self.dd_cancelling = False  # the drawdown stop's cancel-all is in flight
        self.settle_coin = spec_for("bybit-linear", cfg.symbol).settle or "quote"
        self.rest: BybitRest | None = None
        self.venue = None  # BybitRest (live) or PaperVenue (paper)
        self.public: BybitStream | None = None
        self.private: BybitStream | None = None
        self.metrics = None
        self.recorder = None  # live.record.StreamRecorder when cfg.record_path is set

    # -- helpers ----------------------------------------------------------------------------------
    def spawn(self, coro) -> None:
        t = asyncio.create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self._task_done)

    def _task_done(self, t: asyncio.Task) -> None:
        self.tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            exc = t.exception()
            log.error("task failed: %s: %s", type(exc).__name__, exc)

    def action(
        self,
        kind: int,
        side: int,
        op: int,
        link_id: str,
        px: float,
        qty: float,
        reason: int = REASON_NONE,
        exch_ts: int = 0,
        age_ns: int = 0,
    ) -> None:
        from mmbot.execution.manager import ensure_room

        self.actions = ensure_room(self.actions, self.n_actions, 1)
        a = self.actions[self.n_actions]
        a["local_ts"], a["exch_ts"], a["order_id"], a["kind"], a["side"] = (
            time.time_ns(),
            exch_ts,
            link_num(link_id),
            kind,
            side,
        )
        a["op"], a["reason"], a["px"], a["qty"], a["order_age_ns"] = op, reason, px, qty, age_ns
        self.n_actions += 1
        if self.metrics is not None:
            self.metrics.action(kind, reason)

    def slot_of(self, link_id: str, side: int) -> int:
        """The slot working ``link_id`` (row level * 2 + side), else the side's first slot."""
        for i, s in enumerate(self.slots):
            if s.link_id == link_id and link_id:
                return i
        return 0 if side == 1 else 1

    def mid(self) -> float:
        return 0.5 * (self.book.best_bid() + self.book.best_ask())

    async def _arm_disconnect_cancel(self) -> None:
        """Orders must not rest while the bot is down: arm the exchange's Disconnect Cancel All
        (the private stream subscribes "dcp"). An account without DCP keeps trading, said loudly."""
        try:
            await self.rest.set_disconnect_cancel_all(DCP_WINDOW_S)
            self.counters["dcp_armed"] = 1
            log.info("disconnect cancel-all armed: %d s window", DCP_WINDOW_S)
        except Exception as exc:  # noqa: BLE001 - any refusal leaves the bot running, reported
            self.counters["dcp_armed"] = 0
            log.warning("disconnect cancel-all NOT armed (%s): orders rest if the bot dies", exc)

    def pnl(self) -> float:
        """The bot's own PnL: its fills' cash plus the position they built, marked at the mid. A
        position held before the bot's first session (inherited) is not its trading: it is
        priced at that session's start mid and reported apart (``inherited_pnl``), so the loss
        limit counts only what the bot did."""
        m = self.mid()
        own_qty = self.position_qty - self.inherited_qty
        return self.cash_quote + own_qty * m if math.isfinite(m) else self.cash_quote

    def inherited_pnl(self) -> float:
        """Mark-to-market of the inherited position since the start mid it was priced at."""
        m = self.mid()
        if self.inherited_qty == 0.0 or not (
            math.isfinite(m) and math.isfinite(self.inherited_mid_px)
        ):
            return 0.0
        return self.inherited_qty * (m - self.inherited_mid_px)

    def _load_inherited(self) -> None:
        sym = self.cfg.symbol
        self.inherited_qty = float(self.journal.get_meta(f"start_position:{sym}") or 0.0)
        self.inherited_mid_px = float(self.journal.get_meta(f"start_mid:{sym}") or math.nan)

    def _price_inherited(self, mid_px: float) -> None:
        """The first mid after the start position is known prices it (once per journal)."""
        if self.inherited_qty != 0.0 and not math.isfinite(self.inherited_mid_px):
            self.inherited_mid_px = mid_px
            self.journal.set_meta(f"start_mid:{self.cfg.symbol}", repr(mid_px))

    def quoting_allowed(self) -> bool:
        return (
            self.reconciled
            and self.book.valid
            and not self.stale
            and not self.stop.is_set()
            and time.time_ns() >= self.pause_until_ns
            and self.params is not None
        )

    # -- market data ------------------------------------------------------------------------------
    def on_public(self, msg: dict, local_ns: int) -> None:
        topic = str(msg.get("topic", ""))
        if not topic.startswith(("orderbook.", "publicTrade.")):
            return
        try:  # the data layer's parser, the one that reads recorded Bybit files
            rows = parse_message(msg, local_ns)
        except UserError as exc:
            self.counters["bad_msgs"] += 1
            log.warning("market message skipped: %s", exc)
            return
        if self.paper is None:
            self.on_market(msg, topic, rows, local_ns)
            return
        # paper: the venue plays the market as it comes in; the bot gets the message at its
        # receive stamp, in time order with the venue's answers (live.paper's queue)
        self._feed_paper(msg, topic, rows, local_ns)
        self.paper.defer(local_ns, lambda: self.on_market(msg, topic, rows, local_ns))
        self.paper.pump()

    def _feed_paper(self, msg: dict, topic: str, rows: np.ndarray, local_ns: int) -> None:
        """The paper venue takes the book messages that continue its sequence (a gap waits for the
        fresh snapshot the bot's book asks for) and the trades while its book is whole."""
        if topic.startswith("orderbook."):
            u = int(msg.get("data", {}).get("u", 0))
            if msg.get("type") != "snapshot" and u != self.paper_u + 1:
                if u > self.paper_u + 1:
                    self.paper_u = 0  # a gap: nothing more until the snapshot
                return
            self.paper_u = u
        elif not self.paper_u:
            return
        self.paper.on_events(rows, local_ns)

    def on_market(self, msg: dict, topic: str, rows: np.ndarray, local_ns: int) -> None:
        """One market message for the bot: its book or trades, then a wake at its stamp."""
        self.wake_t0_ns = time.time_ns()  # handed this message now (its stamp is its arrival)
        if topic.startswith("orderbook."):
            res = self.book.apply(msg, rows)
            if res == "stale":
                self.counters["stale_msgs"] += 1
                return
            if res == "gap":
                self.counters["gaps"] += 1
                log.warning(
                    "book gap at u=%s: rebuilding from a fresh snapshot", msg["data"].get("u")
                )
                if self.public is not None:
                    self.spawn(self.public.resubscribe())
                return
            self.n_events += 1
            self.last_book_local_ns = local_ns
            if self.recorder is not None:
                self.recorder.write(msg, local_ns)
            lag_ms = (local_ns - int(msg.get("ts", 0)) * 1_000_000) / 1e6
            self.lags_ms.append(lag_ms)
            if self.metrics is not None:
                self.metrics.feed(lag_ms)
            m = self.mid()
            if math.isfinite(m) and not math.isfinite(self.start_mid_px):
                self.start_mid_px = m
            if math.isfinite(m):
                self._price_inherited(m)
            if math.isfinite(m) and (not self.marks or self.marks[-1][1] != m):
                self.marks.append((int(msg.get("ts", 0)) * 1_000_000, m, self.position_qty))
            if self.stale and self.book.valid:
                self.stale = False
                log.info("feed fresh again: quoting resumes")
            self.quote(local_ns, self.wake_t0_ns)
        else:
            self.n_events += 1
            if self.recorder is not None:
                self.recorder.write(msg, local_ns)
            if self.state is not None and self.params is not None:
                for px, qty, flags in zip(
                    rows["px"].tolist(), rows["qty"].tolist(), rows["ev"].tolist(), strict=True
                ):
                    self.on_print(local_ns, px, qty, 1 if flags & BUY_EVENT else -1)
            if self.book.valid:
                # the backtest steps on every local feed event, trades too
                self.quote(local_ns, self.wake_t0_ns)

    paper = None
    paper_u = 0  # the paper venue's last book update id (0: waiting for a snapshot)

    def on_print(self, local_ns: int, px: float, qty: float, side: int) -> None:
        """A market trade for the quoter's next wake (``on_market``), stamped at its arrival."""
        from mmbot.strategy.contract import TRADE_BUFFER

        if self.n_trades >= TRADE_BUFFER:  # a burst longer than the buffer keeps its newest part
            self.trade_buf[:-1] = self.trade_buf[1:]
            self.n_trades -= 1
        t = self.trade_buf[self.n_trades]
        t["local_ts"], t["px"], t["qty"], t["side"] = local_ns, px, qty, side
        self.view[0]["last_trade_px"] = px
        self.n_trades += 1

    # -- quoting ----------------------------------------------------------------------------------
    def setup_params(self, ref_px: float) -> None:
        from mmbot.backtest import MAX_NEAR_TICKS
        from mmbot.engine import wake as wk
        from mmbot.execution.guards import new_guard_state
        from mmbot.instruments import spec_for
        from mmbot.strategy.contract import (
            FILL_VIEW_DTYPE,
            TRADE_BUFFER,
            TRADE_VIEW_DTYPE,
            new_market_view,
            new_own_orders,
            new_quote,
        )
        from mmbot.strategy.params import make_params

        self.params = make_params(
            self.knobs,
            self.profile,
            tick_px=self.tick_px,
            lot_qty=self.lot_qty,
            ref_px=ref_px,
            strategy=self.cfg.strategy,
            order_qty=self.cfg.order_qty,
            max_position_qty=self.cfg.max_position_qty,
            maker_fee_rate=self.cfg.maker_fee_rate,
            taker_fee_rate=self.cfg.taker_fee_rate,
            spec=spec_for("bybit-linear", self.symbol),  # the live connector trades Bybit linear
        )
        if self.cfg.loss_limit_quote is not None:
            self.params[0]["max_loss"] = self.cfg.loss_limit_quote
        band_ticks = round(float(self.params[0]["near_band_bps"]) * 1e-4 * ref_px / self.tick_px)
        self.near_ticks = min(max(band_ticks, 1), MAX_NEAR_TICKS)
        self.state = self.quoter.new_state(self.params, self.qparams)
        self.guard = new_guard_state(self.params)
        self.view = new_market_view()
        self.order_view = new_own_orders()
        self.out = new_quote()
        self.trade_buf = np.zeros(TRADE_BUFFER, TRADE_VIEW_DTYPE)
        self.fill_buf = np.zeros(256, FILL_VIEW_DTYPE)
        self.act_buf = np.zeros(wk.ACTION_ROWS_PER_SLOT * wk.N_SLOTS, ACTION_DTYPE)
        self.ops = np.zeros(wk.N_SLOTS, wk.OP_DTYPE)
        self.n_trades = self.n_fills = 0

    def warm_up(self) -> None:
        """Load the compiled quoter loop, order manager and guards (numba cache) before the feed
        starts: each first call costs up to a few hundred ms, and the messages queued meanwhile
        would reach the quoter as one burst (prints merged into sweeps, mids skipped)."""
        from mmbot.engine.wake import act
        from mmbot.execution.guards import on_response

        ref_px = 1000 * self.tick_px
        self.setup_params(ref_px)
        v = self.view[0]
        v["now_ns"] = 2
        v["best_bid_px"], v["best_ask_px"] = ref_px, ref_px + self.tick_px
        v["best_bid_qty"] = v["best_ask_qty"] = 100 * self.lot_qty
        v["bid_near_qty"] = v["ask_near_qty"] = 100 * self.lot_qty
        self.on_print(1, ref_px, self.lot_qty, 1)
        f = self.fill_buf[0]
        f["side"], f["px"], f["qty"], f["target_px"] = 1, ref_px, self.lot_qty, ref_px
        self.loop.think(*self._think_args(1))
        args = (self.order_view, self.out, 1, 0.0, 0.0, 3, self.act_buf, 0, self.ops)
        act(self.params, self.guard, *args)
        on_response(self.guard)
        self.params = self.state = self.guard = None  # the session's own are set up on its book
        self.n_trades = 0

    def _think_args(self, n_fills: int) -> tuple:
        return (
            self.state,
            self.params,
            self.qparams,
            self.view,
            self.trade_buf,
            self.n_trades,
            self.fill_buf,
            n_fills,
            self.order_view,
            self.out,
        )

    def _fill_view(self, now_ns: int) -> None:
        """The market view from the live book, as ``engine.wake.fill_view`` builds it from the
        venue's: touch, size near it (near_ticks fixed at setup), 10 levels a side, account."""
        from mmbot.strategy.contract import DEPTH_LEVELS

        v = self.view[0]
        bb, ba = self.book.best_bid(), self.book.best_ask()
        v["now_ns"] = now_ns
        v["best_bid_px"], v["best_ask_px"] = bb, ba
        v["best_bid_qty"], v["best_ask_qty"] = self.book.qty_at(1, bb), self.book.qty_at(-1, ba)
        v["bid_near_qty"] = self.book.qty_from(1, bb - (self.near_ticks + 0.5) * self.tick_px)
        v["ask_near_qty"] = self.book.qty_from(-1, ba + (self.near_ticks + 0.5) * self.tick_px)
        bids = self.book._bid_px[::-1][:DEPTH_LEVELS]
        asks = self.book._ask_px[:DEPTH_LEVELS]
        for name, levels, book in (("bid", bids, self.book.bids), ("ask", asks, self.book.asks)):
            v[f"{name}_px"][:] = np.nan
            v[f"{name}_qty"][:] = 0.0
            v[f"{name}_px"][: len(levels)] = levels
            v[f"{name}_qty"][: len(levels)] = [book[p] for p in levels]
        v["position_qty"] = self.position_qty
        v["pnl"] = self.pnl()

    def quote(self, now_ns: int, wake_t0_ns: int | None = None) -> None:
        """One wake of the strategy (as the backtest loop's): targets from every book state the bot
        sees, so its estimators sample the same mids whether or not orders may be sent now; then the
        order manager and guards, when quoting is allowed.

        ``now_ns``: the wake's time (a market message's receive stamp, or now); requests sent in this
        wake are decided then (the paper venue times them from it). ``wake_t0_ns``: when the bot
        started on this wake (default now), to measure its compute time."""
        # the strategy's clock never goes back (a stamped message handled after a later wake)
        now_ns = max(now_ns, self.last_step_ns)
        self.decided_ns = now_ns
        self.wake_t0_ns = time.time_ns() if wake_t0_ns is None else wake_t0_ns
        if self.params is None and self.book.valid and math.isfinite(self.mid()):
            self.setup_params(self.mid())
        if self.state is None:
            return
        if not self.book.valid:
            return
        self.last_step_ns = now_ns
        from mmbot.engine.wake import act

        self._fill_view(now_ns)
        for i, s in enumerate(self.slots):
            ov = self.order_view[i]
            ov["order_id"], ov["status"], ov["px"], ov["qty"] = (
                link_num(s.link_id),
                s.status,
                s.px,
                s.qty,
            )
            ov["live_since_ns"], ov["sent_ns"] = s.live_since_ns, s.sent_ns
        n_fills, self.n_fills = self.n_fills, 0
        self.loop.think(*self._think_args(n_fills))
        self.n_trades = 0
        q = self.out[0]
        bid_tgt, ask_tgt = float(q["bid_target_px"]), float(q["ask_target_px"])
        if not self.tgt_ns or self.tgt_px[-1] != (bid_tgt, ask_tgt):
            # target history: a fill is attributed to the target in force when it happened at the
            # exchange (as the backtest's set_targets does), not when its message reached us
            self.tgt_ns.append(now_ns)
            self.tgt_px.append((bid_tgt, ask_tgt))
        if not self.quoting_allowed() or not self.check_limits():
            return
        if self.on_drawdown(now_ns):
            return
        args = (self.order_view, self.out, self.levels, self.position_qty, self.pnl(), now_ns)
        _, n_ops = act(self.params, self.guard, *args, self.act_buf, 0, self.ops)
        self.record_and_dispatch(n_ops)

    def on_drawdown(self, now_ns: int) -> bool:
        """The drawdown stop (``live.drawdown``): a stop cancels every order and says so, the end
        of the cool-down says quoting resumes. True while the stop's cancel-all is in flight."""
        from mmbot.live.drawdown import RESUME, STOP, resume_message, stop_message

        pnl = self.pnl()
        event = self.drawdown.step(self.guard, self.params, pnl, self.mid(), now_ns)
        if event == STOP:
            msg = stop_message(self.guard, self.params, pnl, self.settle_coin)
            log.warning("%s", msg)
            self.journal.risk_event(self.symbol, STOP, msg)
            self.counters["drawdown_stops"] += 1
            self.dd_cancelling = True
            self.spawn(self._drawdown_cancel_all())
        elif event == RESUME:
            msg = resume_message(pnl, self.settle_coin)
            log.warning("%s", msg)
            self.journal.risk_event(self.symbol, RESUME, msg)
            self.counters["drawdown_resumes"] += 1
        return self.dd_cancelling

    async def _drawdown_cancel_all(self) -> None:
        try:
            await self.cancel_all("drawdown stop")
        finally:
            self.dd_cancelling = False

    def record_and_dispatch(self, n_ops: int) -> None:
        """Each slot's action rows, then its request (the backtest's ``send_ops`` order)."""
        from mmbot.execution.manager import OP_KEEP, ensure_room

        row = 0
        for k in range(n_ops):
            r = self.ops[k]
            end = int(r["rows_end"])
            self.actions = ensure_room(self.actions, self.n_actions, end - row + 1)
            self.actions[self.n_actions : self.n_actions + end - row] = self.act_buf[row:end]
            self.n_actions += end - row
            if self.metrics is not None:
                for a in self.act_buf[row:end]:
                    self.metrics.action(int(a["kind"]), int(a["reason"]))
            row = end
            if int(r["op"]) != OP_KEEP:
                self.dispatch(int(r["slot"]), int(r["op"]), float(r["px"]), float(r["qty"]))

    def dispatch(self, side_idx: int, op: int, px: float, qty: float) -> None:
        s = self.slots[side_idx]
        side = 1 if side_idx % 2 == 0 else -1
        now = time.time_ns()
        if op == OP_NEW:
            link_id = self.journal.new_order(
                self.symbol, side, px, qty, now
            )  # journaled before sending
            self.orders[link_id] = {
                "side": side,
                "terminal": False,
                "created_ns": now,
                "live_ns": 0,
            }
            s.link_id, s.status, s.px, s.qty, s.sent_ns, s.live_since_ns = (
                link_id,
                1,
                px,
                qty,
                now,
                0,
            )
        elif op == OP_REPLACE:
            self.journal.order_event(
                s.link_id, "amend_sent", px=None, qty=None, detail=f"px={px} qty={qty}", now_ns=now
            )
            s.status, s.sent_ns = 3, now
        else:
            self.journal.order_event(s.link_id, "cancel_sent", now_ns=now)
            s.status, s.sent_ns = 4, now
        self.action(ACT_SENT, side, op, s.link_id, px, qty)
        if self.paper is not None:
            self.paper.note_compute(now - self.wake_t0_ns)
            self.send_paper(side_idx, op, s.link_id, px, qty, self.decided_ns)
        else:
            self.spawn(self.send(side_idx, op, s.link_id, px, qty, self.decided_ns))

    def _amend_total(self, link_id: str, qty: float) -> str:
        """Bybit's amend qty is the order's new total, filled part included: the manager asks for
        ``qty`` open (as the backtest's modify does), so add what has filled."""
        filled = self.orders.get(link_id, {}).get("cum_qty", 0.0)
        return fmt(filled + qty, self.qty_dec)

    async def send(
        self, side_idx: int, op: int, link_id: str, px: float, qty: float, decided_ns: int = 0
    ) -> None:
        """live: the request to the exchange, then its answer (``take_answer``)."""
        side = 1 if side_idx % 2 == 0 else -1
        pxs, qtys = fmt(px, self.px_dec), fmt(qty, self.qty_dec)
        if decided_ns:
            self.decide_to_send_ms.append((time.time_ns() - decided_ns) / 1e6)
        t0 = time.perf_counter()
        try:
            try:
                if op == OP_NEW:
                    r = await self.venue.create_order(self.symbol, side, qtys, pxs, link_id)
                elif op == OP_REPLACE:
                    total = self._amend_total(link_id, qty)
                    r = await self.venue.amend_order(self.symbol, link_id, price=pxs, qty=total)
                else:
                    r = await self.venue.cancel_order(self.symbol, link_id)
                err = None
            except (BybitError, TransportError) as exc:
                r, err = None, exc
            rtt_ms = (time.perf_counter() - t0) * 1e3
            if self.take_answer(side_idx, op, link_id, px, qty, r, err, rtt_ms):
                await self.resolve(side_idx, link_id)
        finally:
            self.after_answer(time.time_ns())  # a response wakes the strategy (as in the backtest)

    def send_paper(
        self, side_idx: int, op: int, link_id: str, px: float, qty: float, decided_ns: int
    ) -> None:
        """paper: the request joins the venue's queue at once, timed from the wake that decided it;
        its answer reaches the bot one order latency after it ran there (``live.paper``)."""
        side = 1 if side_idx % 2 == 0 else -1
        pxs, qtys = fmt(px, self.px_dec), fmt(qty, self.qty_dec)
        if decided_ns:
            self.decide_to_send_ms.append((time.time_ns() - decided_ns) / 1e6)
        if op == OP_NEW:
            path, fn = self.paper.create_fn(side, qtys, pxs, link_id)
        elif op == OP_REPLACE:
            path, fn = self.paper.amend_fn(link_id, pxs, self._amend_total(link_id, qty))
        else:
            path, fn = self.paper.cancel_fn(link_id)

        def answer(r: dict | None, err: BaseException | None, known_ns: int) -> None:
            rtt_ms = (known_ns - decided_ns) / 1e6
            if self.take_answer(side_idx, op, link_id, px, qty, r, err, rtt_ms):
                self.counters["resolved_unknown"] += 1
                self.resolved(side_idx, link_id, self.paper.order_row(link_id))
            self.after_answer(known_ns)

        try:
            self.paper.submit(path, decided_ns or None, fn, answer)
        except BybitError as exc:  # no book yet: refused at once
            now = time.time_ns()
            self.paper.defer(now, lambda e=exc: answer(None, e, now))

    def take_answer(
        self,
        side_idx: int,
        op: int,
        link_id: str,
        px: float,
        qty: float,
        r: dict | None,
        err: BaseException | None,
        rtt_ms: float,
    ) -> bool:
        """A request's outcome: journal, actions, slot. True when it is unknown (a timeout, a
        duplicate id, an order gone): the caller asks the exchange by the client id."""
        side = 1 if side_idx % 2 == 0 else -1
        if err is None:
            if op == OP_NEW:
                self.journal.order_event(link_id, "ack", order_id=str((r or {}).get("orderId", "")))
                self.on_ack(side_idx, link_id, px, qty, op)
            elif op == OP_REPLACE:
                self.journal.order_event(link_id, "amend_ack", px=px, qty=qty)
                self.on_ack(side_idx, link_id, px, qty, op)
            else:
                self.journal.order_event(link_id, "cancel_ack")
                self.action(ACT_ACKED, side, op, link_id, px, qty)
            self.order_rtt_ms.append(rtt_ms)
            if self.metrics is not None:
                self.metrics.order_latency(rtt_ms)
        elif isinstance(err, RateLimited):
            self.counters["rate_limited"] += 1
            self.journal.order_event(
                link_id, "rate_limited", status="Rejected" if op == OP_NEW else None
            )
            self.action(ACT_REJECTED, side, op, link_id, px, qty, REASON_RATE_LIMIT)
            self.slow_down(err.reset_ms)
            self.release(side_idx, link_id, op, rejected_new=op == OP_NEW)
        elif isinstance(err, BybitError):
            if err.ret_code == 110072 or err.ret_code == 110001:
                return True  # duplicate id / order gone: ask the exchange
            self.counters["rejects"] += 1
            self.journal.order_event(
                link_id,
                "rejected",
                status="Rejected" if op == OP_NEW else None,
                detail=f"{err.ret_code} {err.ret_msg}",
            )
            self.action(ACT_REJECTED, side, op, link_id, px, qty, REASON_NONE)
            self.release(side_idx, link_id, op, rejected_new=op == OP_NEW)
        else:
            self.counters["transport_errors"] += 1
            log.warning(
                "order request outcome unknown (%s): resolving %s by its client id", err, link_id
            )
            return True
        return False

    def after_answer(self, known_ns: int) -> None:
        """A response wakes the strategy (as in the backtest), at the time it became known."""
        from mmbot.execution.guards import on_response

        if self.guard is not None:
            on_response(self.guard)
        self.quote(known_ns)

    def on_ack(self, side_idx: int, link_id: str, px: float, qty: float, op: int) -> None:
        s = self.slots[side_idx]
        o = self.orders.get(link_id, {})
        self.action(ACT_ACKED, 1 if side_idx % 2 == 0 else -1, op, link_id, px, qty)
        if s.link_id == link_id and not o.get("terminal"):
            s.status, s.px, s.qty, s.live_since_ns = 2, px, qty, time.time_ns()

    def release(self, side_idx: int, link_id: str, op: int, rejected_new: bool = False) -> None:
        s = self.slots[side_idx]
        if s.link_id != link_id:
            return
        if rejected_new:
            self.orders.get(link_id, {})["terminal"] = True
            self.slots[side_idx] = Slot()
        elif not self.orders.get(link_id, {}).get("terminal"):
            s.status = 2  # amend/cancel refused: the order is still live as it was

    def slow_down(self, reset_ms: int | None = None) -> None:
        """A rate-limit answer pauses order actions: until the exchange's reset time when the answer
        carries one (Bybit's X-Bapi-Limit-Reset-Timestamp: its sliding window admits the next
        request then), else with exponential backoff (0.25 s doubling to 5 s; back to 0.25 s after
        10 s without a limit). Either way at most 5 s."""
        now = time.time_ns()
        if reset_ms is not None:
            wait_ns = min(max(reset_ms * 1_000_000 - self.clock_offset_ns - now, 0), 5_000_000_000)
            self.pause_until_ns = max(self.pause_until_ns, now + wait_ns)
            self.last_rate_limit_ns = now
            log.warning(
                "rate limited: order actions paused for %.3fs (exchange reset time)", wait_ns / 1e9
            )
            return
        if now - self.last_rate_limit_ns > 10_000_000_000:
            self.backoff_s = 0.0
        self.backoff_s = min(5.0, max(0.25, 2 * self.backoff_s))
        self.last_rate_limit_ns = now
        self.pause_until_ns = now + int(self.backoff_s * 1e9)
        log.warning("rate limited: order actions paused for %.2fs", self.backoff_s)

    async def resolve(self, side_idx: int, link_id: str) -> None:
        """Find out what happened to an order whose request outcome is unknown."""
        self.counters["resolved_unknown"] += 1
        for attempt in range(8):
            try:
                row = await self.venue.order_by_link(self.symbol, link_id)
                break
            except (TransportError, RateLimited):
                await asyncio.sleep(0.1 * 2**attempt)
        else:
            log.error("cannot resolve order %s: reconcile will", link_id)
            self.reconciled = False
            self.spawn(self.reconcile("unresolved order"))
            return
        self.resolved(side_idx, link_id, row)

    def resolved(self, side_idx: int, link_id: str, row: dict | None) -> None:
        """What the exchange says of an order whose request outcome was unknown."""
        if row is None:
            self.journal.order_event(link_id, "not_found", status="NotFound")
            self.orders.get(link_id, {})["terminal"] = True
            self.action(
                ACT_REJECTED,
                1 if side_idx % 2 == 0 else -1,
                OP_NEW,
                link_id,
                math.nan,
                0.0,
                REASON_UNKNOWN_ORDER,
            )
            if self.slots[side_idx].link_id == link_id:
                self.slots[side_idx] = Slot()
        else:
            self.on_order(row)
            s = self.slots[side_idx]
            if s.link_id == link_id and row.get("orderStatus") in ("New", "PartiallyFilled"):
                s.status, s.px, s.qty = 2, float(row["price"]), float(row["leavesQty"])
                s.live_since_ns = s.live_since_ns or time.time_ns()

    # -- private events ---------------------------------------------------------------------------
    def on_private(self, msg: dict, local_ns: int) -> None:
        topic = msg.get("topic")
        wake = False
        for item in msg.get("data", []):
            if topic == "order" and item.get("symbol") == self.symbol:
                self.on_order(item)
                # an order ending (filled, cancelled, rejected) is news, as a response is in the
                # backtest; a "New" only confirms what the REST answer (which wakes it) says
                wake |= str(item.get("orderStatus")) in TERMINAL
            elif topic == "execution" and item.get("symbol") == self.symbol:
                self.on_execution(item, "ws")
                wake = True
        if wake:
            self.quote(time.time_ns())  # order news wakes the strategy (as in the backtest)

    def on_paper(self, topic: str, item: dict) -> None:
        if topic == "order":
            self.on_order(item)
            if str(item.get("orderStatus")) not in TERMINAL:
                return  # as on_private: a confirmation is not news
        else:
            self.on_execution(item, "sim")
        # the bot learns it one order latency after it happened at the venue (live.paper's queue)
        self.quote(self.paper.known_ns or time.time_ns())

    def on_order(self, item: dict) -> None:
        link_id = str(item.get("orderLinkId", ""))
        o = self.orders.get(link_id)
        if o is None:
            if not self.journal.is_ours(link_id) or self.journal.order(link_id) is None:
                return  # not ours: the reconcile cancels foreign open orders
            o = self.orders.setdefault(
                link_id,
                {
                    "side": 1 if item.get("side") == "Buy" else -1,
                    "terminal": False,
                    "created_ns": 0,
                    "live_ns": 0,
                },
            )
        if o["terminal"]:
            return  # terminal states are sticky: a late/duplicated "New" cannot revive an order
        status = str(item.get("orderStatus"))
        side = o["side"]
        side_idx = self.slot_of(link_id, side)
        px = float(item.get("price") or "nan")
        self.journal.order_event(
            link_id,
            "update",
            status=status,
            order_id=str(item.get("orderId", "")),
            cum_qty=None,
            detail=str(item.get("rejectReason", "")),
        )
        s = self.slots[side_idx]
        if status in TERMINAL:
            o["terminal"] = True
            age = time.time_ns() - (o.get("live_ns") or o.get("created_ns") or time.time_ns())
            if status == "Filled":
                self.action(ACT_FILLED, side, OP_NEW, link_id, px, 0.0, age_ns=age)
            elif item.get("rejectReason") == "EC_PostOnlyWillTakeLiquidity":
                self.action(ACT_REJECTED, side, OP_NEW, link_id, px, 0.0, REASON_POST_ONLY)
            else:
                self.action(ACT_CANCELLED, side, OP_CANCEL, link_id, px, 0.0, age_ns=age)
            if s.link_id == link_id:
                self.slots[side_idx] = Slot()
        elif s.link_id == link_id:
            if s.status == 1:  # the stream's "New" can beat the REST answer
                s.status, s.live_since_ns = 2, time.time_ns()
            if s.status == 2:
                s.px, s.qty = px, float(item.get("leavesQty") or s.qty)
            o["live_ns"] = o["live_ns"] or time.time_ns()

    def on_execution(self, item: dict, source: str) -> None:
        if item.get("execType", "Trade") == "Funding":
            return  # a funding charge, not a fill: the books reconciliation counts it
        link_id = str(item.get("orderLinkId", ""))
        side = 1 if item.get("side") == "Buy" else -1
        px, qty = float(item["execPrice"]), float(item["execQty"])
        exch_ns = int(item.get("execTime", 0)) * 1_000_000
        # execTime has ms resolution: the target in force by the end of that ms, on our clock
        k = bisect.bisect_right(self.tgt_ns, exch_ns + 999_999 - self.clock_offset_ns) - 1
        target = self.tgt_px[k][0 if side == 1 else 1] if k >= 0 else math.nan
        row = FillRow(
            exec_id=str(item["execId"]),
            link_id=link_id,
            order_id=str(item.get("orderId", "")),
            symbol=self.symbol,
            side=side,
            px=px,
            qty=qty,
            fee=float(item.get("execFee") or 0.0),
            fee_rate=float(item.get("feeRate") or 0.0),
            maker=bool(item.get("isMaker")),
            exch_ts_ns=int(item.get("execTime", 0)) * 1_000_000,
            local_ts_ns=time.time_ns(),
            mid_px=self.mid(),
            target_px=target,
            source=source,
        )
        pnl_before = self.pnl()
        new, pos = self.journal.record_fill(row)  # journaled before the position moves
        if not new:
            self.counters["dup_fills"] += 1
            return
        self.position_qty = pos
        self.cash_quote += -side * px * qty - row.fee
        if link_id in self.orders:
            self.orders[link_id]["cum_qty"] = self.orders[link_id].get("cum_qty", 0.0) + qty
        if self.state is not None and self.params is not None and self.n_fills < len(self.fill_buf):
            f = self.fill_buf[self.n_fills]  # the quoter's on_fill at its next wake
            f["local_ts"], f["exch_ts"], f["side"], f["px"], f["qty"] = (
                row.local_ts_ns,
                row.exch_ts_ns,
                side,
                px,
                qty,
            )
            f["maker"], f["target_px"], f["position_qty"] = int(row.maker), target, pos
            self.n_fills += 1
        m = self.mid()
        if math.isfinite(m):
            self.marks.append((row.exch_ts_ns, m, self.position_qty))
        if self.metrics is not None:
            self.metrics.fill(row, self.position_qty, pnl_before)
        slot = self.slot_of(link_id, side)
        s = self.slots[slot]
        if s.link_id == link_id and item.get("leavesQty") is not None:
            s.qty = float(item["leavesQty"])
            o = self.orders.get(link_id)
            if s.qty <= 0.5 * self.lot_qty and o is not None and not o["terminal"]:
                # filled in full: the order is done now (the order topic's "Filled" may come
                # later, or first); the side is free at once, as a fill response frees it in the
                # backtest, instead of the order manager amending an order that no longer rests
                o["terminal"] = True
                age = time.time_ns() - (o.get("live_ns") or o.get("created_ns") or time.time_ns())
                self.journal.order_event(link_id, "filled", status="Filled")
                self.action(ACT_FILLED, side, OP_NEW, link_id, px, 0.0, age_ns=age)
                self.slots[slot] = Slot()

    # -- reconcile --------------------------------------------------------------------------------
    async def reconcile(self, why: str) -> None:
        """Executions -> journal, then orders and position against the exchange, then quote."""
        self.reconciled = False
        self.counters["reconciles"] += 1
        log.info("reconcile (%s)", why)
        for attempt in range(20):
            if self.stop.is_set() and why != "shutdown":
                return
            try:
                started = self.journal.get_meta(f"started_ms:{self.symbol}")
                if started is None:
                    # a fresh journal adopts the account's current position as its start and only
                    # counts executions from now on (older account history is not this bot's)
                    start_pos = await self.venue.position(self.symbol)
                    if self.cfg.mode == "live":
                        await self._record_books_baseline()
                    self.journal.set_meta(f"start_position:{self.symbol}", repr(start_pos))
                    started = str(time.time_ns() // 1_000_000)
                    self.journal.set_meta(f"started_ms:{self.symbol}", started)
                    self.position_qty = self.journal.position_qty(self.symbol)
                    self._load_inherited()
                    m = self.mid()
                    if math.isfinite(m):
                        self._price_inherited(m)
                since_ms = max(
                    int(started), self.journal.last_fill_ts_ns(self.symbol) // 1_000_000 - 120_000
                )
                for ex in sorted(
                    await self.venue.executions(self.symbol, since_ms),
                    key=lambda e: int(e["execTime"]),
                ):
                    self.on_execution(ex, "rest")
                open_rows = await self.venue.open_orders(self.symbol)
                open_ids = set()
                for row in open_rows:
                    lid = str(row.get("orderLinkId", ""))
                    known = lid in self.orders and any(s.link_id == lid for s in self.slots)
                    if not known:  # not something we are tracking: no order stays open unknowingly
                        self.counters["foreign_orders_cancelled"] += 1
                        with contextlib.suppress(BybitError):
                            await self.venue.cancel_order(self.symbol, lid)
                        if self.journal.is_ours(lid) and self.journal.order(lid) is not None:
                            self.journal.order_event(lid, "reconcile_cancel", status="Cancelled")
                            self.orders.setdefault(
                                lid, {"side": 0, "terminal": True, "created_ns": 0, "live_ns": 0}
                            )["terminal"] = True
                    else:
                        open_ids.add(lid)
                        self.on_order(row)
                for i, s in enumerate(self.slots):
                    if s.link_id and s.status == 2 and s.link_id not in open_ids:
                        await self.resolve(i, s.link_id)
                for jo in self.journal.open_orders(
                    self.symbol
                ):  # journal says open, exchange says not
                    if jo["link_id"] not in open_ids and not any(
                        s.link_id == jo["link_id"] for s in self.slots
                    ):
                        row = await self.venue.order_by_link(self.symbol, jo["link_id"])
                        st = "NotFound" if row is None else str(row.get("orderStatus"))
                        if st in ("New", "PartiallyFilled"):
                            await self.venue.cancel_order(self.symbol, jo["link_id"])
                            st = "Cancelled"
                        self.journal.order_event(jo["link_id"], "reconcile", status=st)
                # executions again: a fill may have landed while we looked at orders
                for ex in await self.venue.executions(self.symbol, since_ms):
                    self.on_execution(ex, "rest")
                ex_pos = await self.venue.position(self.symbol)
                j_pos = self.journal.position_qty(self.symbol)
                self.position_qty = j_pos
                self.cash_quote = self.journal.cash_and_fees(self.symbol)[0]
                if abs(ex_pos - j_pos) > 0.5 * max(self.lot_qty, 1e-12):
                    self.kill(
                        f"position mismatch after reconcile: exchange {ex_pos} vs journal {j_pos}"
                    )
                    return
                if self.cfg.mode == "live" and not await self.reconcile_books(int(started)):
                    return
                self.reconciled = True
                log.info("reconciled: position %s, %d open order(s)", j_pos, len(open_ids))
                return
            except (TransportError, RateLimited) as exc:
                log.warning("reconcile attempt %d failed: %s", attempt + 1, exc)
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
        self.kill("reconcile failed 20 times")

    async def _record_books_baseline(self) -> None:
        """A fresh journal's start on the exchange's books: the wallet balance and the average
        entry of the adopted position, which the books reconciliation counts from."""
        wallet = float((await self.rest.wallet_coin(self.settle_coin))["walletBalance"])
        avg_px = await self.rest.position_avg_px(self.symbol)
        self.journal.set_meta(f"start_wallet:{self.settle_coin}", repr(wallet))
        self.journal.set_meta(f"start_avg_px:{self.symbol}", repr(avg_px))

    def _books_baseline(self) -> tuple[float, float, float] | None:
        wallet = self.journal.get_meta(f"start_wallet:{self.settle_coin}")
        if wallet is None:
            return None  # a journal started before the baseline was kept: fills only
        return (
            float(wallet),
            float(self.journal.get_meta(f"start_position:{self.symbol}") or 0.0),
            float(self.journal.get_meta(f"start_avg_px:{self.symbol}") or 0.0),
        )

    def _import_executions(self, rows: list[dict]) -> None:
        """Executions the journal lacks (known ones are not re-offered: dup_fills counts fills
        the streams deliver twice, not the reconciliation's own reads)."""
        known = self.journal.exec_ids()
        for ex in sorted(rows, key=lambda e: int(e["execTime"])):
            if str(ex["execId"]) not in known:
                self.on_execution(ex, "rest")

    async def reconcile_books(self, since_ms: int) -> bool:
        """The journal against the exchange's own executions and wallet balance
        (``live.reconcile_pnl``). A mismatch is logged as an error naming the fill or the amount,
        journaled (risk_events), and stops the bot (kill switch); True when the books agree."""
        from mmbot.live.reconcile_pnl import judge, snapshot

        coin = self.settle_coin

        async def wallet() -> float:
            return float((await self.rest.wallet_coin(coin))["walletBalance"])

        rows, balance = await snapshot(
            lambda: self.rest.executions(self.symbol, since_ms), wallet, self._import_executions
        )
        journal_rows = [r for r in self.journal.fills(self.symbol) if r["source"] != "sim"]
        verdict = judge(journal_rows, rows, balance, self._books_baseline(), coin)
        self.books = verdict.as_dict()
        if verdict.ok:
            msg = (
                f"books reconciled with the exchange: {verdict.fills_compared} fill(s) match, "
                f"wallet {coin} {verdict.wallet_exchange!r} vs journal {verdict.wallet_expected!r}"
            )
            log.info("%s", msg)
            self.journal.risk_event(self.symbol, "reconcile_ok", msg)
            return True
        for m in verdict.mismatches:
            log.error("RECONCILIATION MISMATCH: %s", m)
            self.journal.risk_event(self.symbol, "reconcile_mismatch", m)
        self.counters["reconcile_mismatches"] += len(verdict.mismatches)
        more = len(verdict.mismatches) - 1
        self.kill(
            f"books do not reconcile with the exchange: {verdict.mismatches[0]}"
            + (f" (and {more} more)" if more else "")
        )
        return False

    def next_wake(self) -> int:
        """When the quoter's timer wakes it next (the backtest's ``wait_next`` timeout); 0: not yet."""
        if not (self.last_step_ns and self.book.valid):
            return 0
        return self.last_step_ns + self.wake_interval_ns

    def on_public_down(self) -> None:
        self.paper_u = 0
        self.book.valid = (
            False  # no quoting on a book we no longer see; the resubscribe snapshots it
        )
        self.on_stream_down()

    def on_stream_down(self) -> None:
        self.counters["reconnects"] += 1
        self.reconciled = False if self.cfg.mode == "live" else self.reconciled

    async def on_private_connect(self) -> None:
        await self.reconcile("private stream (re)connected")

    async def on_public_connect(self) -> None:
        pass  # a fresh snapshot follows the subscribe; the book is valid from it

    # -- watchdogs --------------------------------------------------------------------------------
    def kill(self, reason: str) -> None:
        if not self.kill_reason:
            self.kill_reason = reason
            self.exit_code = EXIT_KILLED
            log.error("kill switch: %s", reason)
        self.stop.set()

    def check_limits(self) -> bool:
        """Kill switch on the position hard limit and the loss limit; False once tripped."""
        p = self.params[0]
        hard_qty = self.cfg.hard_position_ratio * float(p["max_position_qty"])
        if abs(self.position_qty) > hard_qty + 1e-9:
            self.kill(f"position {self.position_qty} beyond the hard limit {hard_qty}")
        elif self.pnl() < -float(p["max_loss"]):
            self.kill(f"loss limit: pnl {self.pnl():.4f} < -{float(p['max_loss'])}")
        return not self.kill_reason

    async def watchdog(self) -> None:
        last_clock = 0.0
        while not self.stop.is_set():
            # the quoter wakes at the latest wake_interval_ns after its last step (as the
            # backtest's wait_next timeout); feed messages and order responses wake it sooner
            due_ns = self.last_step_ns + self.wake_interval_ns - time.time_ns()
            await asyncio.sleep(min(max(due_ns, 1_000_000), self.wake_interval_ns) / 1e9)
            now = time.time_ns()
            backlog = self.public.backlog() if self.public is not None else 0
            # (paper: the venue's queue wakes it, in event time: ``next_wake``)
            timer_due = now - self.last_step_ns >= self.wake_interval_ns
            if self.paper is None and self.book.valid and timer_due and not backlog:
                self.quote(now)  # (messages still to handle wake it instead: they came first)
            if (
                self.last_book_local_ns
                and (now - self.last_book_local_ns) / 1e6 > self.cfg.stale_ms
                and not self.stale
            ):
                self.stale = True
                self.counters["stale_pauses"] += 1
                log.warning(
                    "feed stale for > %.0f ms: quoting paused, orders cancelled", self.cfg.stale_ms
                )
                self.spawn(self.cancel_all("stale feed"))
            if self.params is not None and self.reconciled:
                self.check_limits()
            if self.metrics is not None:
                self.metrics.state(self)
            if self.rest is not None and time.monotonic() - last_clock > self.cfg.clock_check_s:
                last_clock = time.monotonic()
                self.spawn(self.check_clock())

    async def check_clock(self) -> None:
        try:
            t0 = time.time_ns()
            server = await self.rest.server_time_ns()
            t1 = time.time_ns()
        except (TransportError, RateLimited, BybitError):
            return
        drift_ms = (server - (t0 + t1) / 2) / 1e6
        self.note_clock(int(drift_ms * 1e6), t1 - t0)
        if self.metrics is not None:
            self.metrics.clock(drift_ms)
        if abs(drift_ms) > self.cfg.max_clock_drift_ms:
            self.kill(f"clock drift {drift_ms:.0f} ms > {self.cfg.max_clock_drift_ms:.0f} ms")

    def note_clock(self, offset_ns: int, rtt_ns: int) -> None:
        """Keep the clock offset of the smallest round trip seen (its midpoint error is at most half
        of it): a noisy later sample must not shift the exchange's times against ours (the paper
        venue's market vs our orders). A sample far off the kept one (a real clock step) replaces it."""
        if rtt_ns <= self.clock_rtt_ns or abs(offset_ns - self.clock_offset_ns) > max(
            rtt_ns, 50_000_000
        ):
            self.clock_offset_ns, self.clock_rtt_ns = offset_ns, rtt_ns
            if self.paper is not None:
                self.paper.clock_offset_ns = offset_ns

    async def cancel_all(self, why: str) -> None:
        for attempt in range(10):
            try:
                rows = await self.venue.cancel_all(self.symbol)
                for r in rows:
                    lid = str(r.get("orderLinkId", ""))
                    if self.journal.order(lid) is not None:
                        self.journal.order_event(lid, "cancel_all", status="Cancelled", detail=why)
                    o = self.orders.get(lid)
                    if o is not None and not o["terminal"]:
                        o["terminal"] = True
                        self.action(ACT_CANCELLED, o["side"], OP_CANCEL, lid, math.nan, 0.0)
                self.slots = [Slot() for _ in range(2 * self.levels)]
                return
            except (TransportError, RateLimited, BybitError) as exc:
                log.warning("cancel-all attempt %d failed: %s", attempt + 1, exc)
                await asyncio.sleep(min(1.0, 0.05 * 2**attempt))
        log.error("cancel-all failed 10 times")

    # -- main -------------------------------------------------------------------------------------
    async def run(self) -> int:
        cfg = self.cfg
        async with aiohttp.ClientSession() as http:
            # start-up checks are not latency-critical: a generous timeout, then the trading one
            self.rest = BybitRest(http, cfg.endpoints.rest_url, cfg.keys, timeout_s=10.0)
            try:
                inst = await self.rest.instrument(self.symbol)
            except TransportError as exc:
                raise UserError(
                    f"exchange at {cfg.endpoints.rest_url} not reachable ({exc})"
                ) from exc
            self.tick_px = float(inst["priceFilter"]["tickSize"])
            self.lot_qty = float(inst["lotSizeFilter"]["qtyStep"])
            self.px_dec, self.qty_dec = price_decimals(self.tick_px), price_decimals(self.lot_qty)
            self.warm_up()
            t0 = time.time_ns()
            server = await self.rest.server_time_ns()
            t1 = time.time_ns()
            drift_ms = (server - (t0 + t1) / 2) / 1e6
            self.note_clock(int(drift_ms * 1e6), t1 - t0)
            if abs(drift_ms) > cfg.max_clock_drift_ms:
                raise UserError(
                    f"clock drift {drift_ms:.0f} ms vs the exchange exceeds --max-clock-drift-ms {cfg.max_clock_drift_ms:.0f}"
                )
            if cfg.mode == "live":
                if cfg.keys is None:
                    raise UserError("live mode needs API keys")
                try:  # a signed read first: wrong keys fail here, before any order
                    await self.rest.position(self.symbol)
                except BybitError as exc:
                    raise UserError(
                        f"API keys refused by {cfg.endpoints.rest_url}: retCode {exc.ret_code} {exc.ret_msg}"
                    ) from exc
                self.venue = self.rest
            else:
                from mmbot.instruments import spec_for
                from mmbot.live.paper import PaperVenue
                from mmbot.strategy.params import fee_choice

                fee = fee_choice(  # the profile's tier of the Bybit linear schedule
                    self.profile,
                    spec_for("bybit-linear", self.symbol),
                    None,
                    cfg.maker_fee_rate,
                    cfg.taker_fee_rate,
                )
                maker, taker = fee.maker_fee_rate, fee.taker_fee_rate
                self.paper = PaperVenue(
                    self.symbol,
                    self.tick_px,
                    self.lot_qty,
                    maker,
                    taker,
                    self.on_paper,
                    cfg.paper_latency_ms,
                    start_position_qty=self.journal.position_qty(self.symbol),
                    rate_limit_per_s=int(self.profile.venue.rate_limit_per_s),
                )
                self.paper.clock_offset_ns = self.clock_offset_ns
                self.paper.next_wake = self.next_wake
                self.paper.on_wake = self.quote
                from mmbot.live.simmatch import warm_up

                warm_up(self.tick_px, self.lot_qty)
                self.venue = self.paper
            self.rest.timeout = aiohttp.ClientTimeout(total=cfg.rest_timeout_s)
            if cfg.metrics_port:
                from mmbot.live.metrics import Metrics

                self.metrics = Metrics(cfg.metrics_port)
            self.rest.on_latency = None
            if cfg.record_path is not None:
                from mmbot.live.record import StreamRecorder

                self.recorder = StreamRecorder(cfg.record_path)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self._on_signal, sig)
            self.public = BybitStream(
                http,
                cfg.endpoints.public_ws_url,
                [book_topic(self.symbol, cfg.book_depth), trade_topic(self.symbol)],
                self.on_public,
                on_connect=self.on_public_connect,
                on_disconnect=self.on_public_down,
                name="public",
            )
            if self.paper is not None:
                self.paper.backlog = self.public.backlog
            runners = [
                asyncio.create_task(self.public.run(self.stop)),
                asyncio.create_task(self.watchdog()),
            ]
            if cfg.mode == "live":
                self.private = BybitStream(
                    http,
                    cfg.endpoints.private_ws_url,
                    ["order", "execution", "position", "wallet", "dcp"],
                    self.on_private,
                    keys=cfg.keys,
                    on_connect=self.on_private_connect,
                    on_disconnect=self.on_stream_down,
                    name="private",
                )
                runners.append(asyncio.create_task(self.private.run(self.stop)))
                await self._arm_disconnect_cancel()
            else:
                await self.reconcile("start")
            try:
                if cfg.duration_s is not None:
                    with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), cfg.duration_s)
                else:
                    await self.stop.wait()
            finally:
                self.stop.set()
                await self.shutdown(runners)
        for st in (self.public, self.private):
            if st is not None and st.fatal is not None:
                raise st.fatal
        return self.exit_code

    def _on_signal(self, sig: int) -> None:
        log.info("signal %s: cancel-all and clean exit", signal.Signals(sig).name)
        self.stop.set()

    async def shutdown(self, runners: list[asyncio.Task]) -> None:
        self.reconciled = False
        if self.paper is not None:
            self.paper.drain()  # requests in flight run, their answers reach the bot
        for t in list(self.tasks):  # let in-flight order requests finish (bounded)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(t), self.cfg.rest_timeout_s + 0.5)
        if self.venue is not None:
            await self.cancel_all("shutdown")
            with contextlib.suppress(Exception):
                await self.reconcile("shutdown")
            with contextlib.suppress(Exception):
                left = await self.venue.open_orders(self.symbol)
                if left:
                    log.error("%d order(s) still open after cancel-all", len(left))
        for t in runners:
            t.cancel()
        for t in runners:
            with contextlib.suppress(BaseException):
                await t
        if self.params is not None:
            self.write_records()
        if self.metrics is not None:
            self.metrics.close()
        if self.recorder is not None:
            self.recorder.close()
            log.info("recorded %d messages to %s", self.recorder.n_msgs, self.recorder.path)

    # -- records ----------------------------------------------------------------------------------
    def result(self) -> RunResult:
        if self.rest is not None:
            self.counters["rest_transport_errors"] = self.rest.n_transport_errors
            self.counters["rest_rate_limited"] = self.rest.n_rate_limited
        self.counters["ws_reconnects"] = sum(
            st.reconnects for st in (self.public, self.private) if st is not None
        )
        rows = [r for r in self.journal.fills(self.symbol) if int(r["seq"]) > self.start_fill_seq]
        cash, fees = self.journal.cash_and_fees(self.symbol)
        pos = self.journal.position_qty(self.symbol)
        # where this session started: the journal's position and cash less this session's fills
        pos0 = pos - sum(r["side"] * r["qty"] for r in rows)
        cash0 = cash - sum(-r["side"] * r["px"] * r["qty"] - r["fee"] for r in rows)
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
            o = self.journal.order(r["link_id"] or "")
            f["order_age_ns"] = (
                max(0, r["exch_ts_ns"] - int(o["acked_ns"] or o["created_ns"])) if o else 0
            )
        # the position after each fill in the records' (exchange time) order
        fills["position_qty"] = pos0 + np.cumsum(fills["side"] * fills["qty"])
        marks_l = [(int(f["exch_ts"]), float(f["mid_px"]), float(f["position_qty"])) for f in fills]
        marks_l += self.marks
        final_mid = self.mid()
        end_ns = time.time_ns()
        if math.isfinite(final_mid):
            marks_l.append((end_ns, final_mid, pos))
        marks = (
            np.array(sorted(marks_l, key=lambda t: t[0]), dtype=MARK_DTYPE)
            if marks_l
            else np.zeros(0, MARK_DTYPE)
        )
        fm = final_mid if math.isfinite(final_mid) else (marks["mid_px"][-1] if len(marks) else 0.0)
        m0 = self.start_mid_px if math.isfinite(self.start_mid_px) else fm
        p = self.params[0]
        meta = {
            "symbol": self.symbol,
            "mode": self.cfg.mode,
            "tick_px": self.tick_px,
            "lot_qty": self.lot_qty,
            "maker_fee_rate": float(p["maker_fee_rate"]),
            "taker_fee_rate": float(p["taker_fee_rate"]),
            "start_ts": int(min([self.start_ns] + [int(r["exch_ts_ns"]) for r in rows])),
            "end_ts": end_ns,
            "final_mid_px": float(fm),
            "start_mid_px": float(m0),
            "initial_position_qty": float(pos0),
            # equity = cash from the journal's fills + position x mid, at the start and the end
            "initial_equity": float(cash0 + pos0 * m0),
            "sim_equity": float(cash + pos * fm),
            "position_qty": pos,
            "order_rtt_p50_ms": float(np.median(self.order_rtt_ms)) if self.order_rtt_ms else None,
            "decide_to_send_p50_ms": (
                float(np.median(self.decide_to_send_ms)) if self.decide_to_send_ms else None
            ),
            "ws_lag_p95_ms": float(np.percentile(self.lags_ms, 95)) if self.lags_ms else None,
            "events": self.n_events,
            "strategy": self.cfg.strategy,
            "knobs": dict(self.knobs),
            "kill_reason": self.kill_reason or None,
            "strategy_params": {k: float(self.qparams[0][k]) for k in self.quoter.params},
            "strategy_state": {
                k: float(self.state[0][k])
                for k in ("sigma_ticks", "a_per_s", "k_per_tick", "half_spread_px", "slip_cost_bps")
                if self.state is not None and k in (self.state.dtype.names or ())
            },
            **{f"live_{k}": v for k, v in self.counters.items()},
        }
        return RunResult(fills, self.actions[: self.n_actions].copy(), marks, meta)

    def write_records(self) -> None:
        from mmbot.audit.edge_report import build_edge_report, dump_json, make_runtime
        from mmbot.audit.records_io import write_run

        out = self.cfg.out_dir
        res = self.result()
        write_run(out / "records", res, self.cfg.mode)
        try:
            report = build_edge_report(
                [res],
                make_runtime(
                    profile=self.cfg.profile,
                    overrides=dict(self.knobs),
                    mode=self.cfg.mode,
                    symbol=self.symbol,
                ),
            )
            dump_json(report, out / "EDGE_REPORT.json")
        except Exception as exc:  # noqa: BLE001 - the session's records are on disk; say why the report is not
            log.error("EDGE_REPORT not written: %s: %s", type(exc).__name__, exc)
        summary = {
            "mode": self.cfg.mode,
            "symbol": self.symbol,
            "fills": len(res.fills),
            "position_qty": res.meta["position_qty"],
            "pnl_quote": self.pnl(),
            # the position held before the bot's first session: priced at its start mid, its
            # PnL is market risk the bot did not take (not counted by the loss limit)
            "inherited_position_qty": self.inherited_qty,
            "inherited_mid_px": self.inherited_mid_px
            if math.isfinite(self.inherited_mid_px)
            else None,
            "inherited_pnl_quote": self.inherited_pnl(),
            "kill_reason": self.kill_reason or None,
            "books_reconciliation": self.books,
            "counters": self.counters,
            "order_rtt_p50_ms": res.meta["order_rtt_p50_ms"],
            "decide_to_send_p50_ms": res.meta["decide_to_send_p50_ms"],
            "ws_lag_p95_ms": res.meta["ws_lag_p95_ms"],
            # paper: what its venue applied (order latency = compute + entry; see live.paper)
            **(self.paper.stats() if self.paper is not None else {"paper_order_latency_ms": None}),
            "replay": self.replay_inputs(),
        }
        (out / "session.json").write_text(json.dumps(summary, sort_keys=True, indent=1))
        log.info("session: %s", json.dumps(summary, sort_keys=True))

    def replay_inputs(self) -> dict:
        """What ``mmbot replay-compare`` needs to replay this session's recorded feed through the
        backtest: the feed file (``--record``) and the quoter's settings as resolved here."""
        p = self.params[0] if self.params is not None else None
        rec = self.cfg.record_path
        return {
            "record_path": str(Path(rec).resolve()) if rec is not None else None,
            "profile": self.cfg.profile,
            "strategy": self.cfg.strategy,
            "params": dict(self.cfg.params or {}),
            "knobs": dict(self.knobs),
            "order_qty": float(p["order_qty"]) if p is not None else None,
            "max_position_qty": float(p["max_position_qty"]) if p is not None else None,
            "maker_fee_rate": float(p["maker_fee_rate"]) if p is not None else None,
            "taker_fee_rate": float(p["taker_fee_rate"]) if p is not None else None,
            "tick_px": self.tick_px,
            "lot_qty": self.lot_qty,
            "queue_model": self.paper.queue_model if self.paper is not None else "risk_averse",
            "rate_limit_per_s": int(self.profile.venue.rate_limit_per_s),
        }


def setup_logging(out_dir: Path) -> None:
    """Structured (JSON lines) log to OUT/live.log and a short human line on stderr."""
    out_dir.mkdir(parents=True, exist_ok=True)

    class JsonFmt(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return json.dumps(
                {
                    "ts": round(record.created, 6),
                    "level": record.levelname,
                    "msg": record.getMessage(),
                },
                sort_keys=True,
            )

    lg = logging.getLogger("mmbot.live")
    lg.setLevel(logging.INFO)
    lg.handlers.clear()
    log_path = out_dir / "live.log"
    os.close(os.open(log_path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600))  # private log
    fh = logging.FileHandler(log_path)
    fh.setFormatter(JsonFmt())
    sh = logging.StreamHandler(sys.stderr)
    sh.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    sh.setLevel(logging.WARNING if not os.environ.get("MMBOT_VERBOSE") else logging.INFO)
    lg.addHandler(fh)
    lg.addHandler(sh)
    lg.propagate = False


def run_session(cfg: RunnerConfig) -> int:
    setup_logging(cfg.out_dir)
    return asyncio.run(Session(cfg).run())
