"""The live/paper session: the quoter driven by the exchange stream through the backtest's own wake,
called from Python per market update: the quoter's compiled ``think`` (``mmbot.engine.build``: trades
and fills since the last wake, then ``quote``) and the order manager + guards over its slots
(``mmbot.engine.wake.act``); only the I/O differs (the exchange instead of the simulated venue).

The session owns the market side (book, wakes, watchdogs, start and shutdown); its roles are apart:
its own orders (``live.order_flow``, a part of the class), the order gateway chosen once for the
mode (``live.gateway``: the exchange, or ``live.paper_gateway``: the paper venue in event time),
the reconciler (``live.reconcile``), the risk monitor (``live.risk``) and what it leaves on disk
(``live.session_records``). Nothing here asks whether it trades paper or live.

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
import contextlib
import logging
import math
import signal
import time
from typing import TYPE_CHECKING

import aiohttp
import numpy as np

from mmbot.data.bybit import parse_message
from mmbot.errors import UserError
from mmbot.events import BUY_EVENT
from mmbot.live.bybit import BybitError, BybitRest, BybitStream, RateLimited, TransportError
from mmbot.live.bybit_msgs import LiveBook, book_topic, trade_topic
from mmbot.live.gateway import make_gateway
from mmbot.live.journal import Journal
from mmbot.live.order_flow import OrderFlow, Slot, link_num
from mmbot.live.orders import price_decimals
from mmbot.live.reconcile import Reconciler
from mmbot.live.risk import RiskMonitor
from mmbot.live.session_records import write_records
from mmbot.records import ACTION_DTYPE

if TYPE_CHECKING:
    from mmbot.config.run import RunConfig
    from mmbot.live.runner import RunnerConfig

log = logging.getLogger("mmbot.live")

EXIT_KILLED = 4


class Session(OrderFlow):
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
        # the run configuration's run.wake_interval_ms (setup_params); warm_up builds one before
        # the feed starts, so the interval is known before the first wake (it does not depend on
        # the price the session's own configuration waits for)
        self.wake_interval_ns = 0
        # a quoter woken on its interval only (the backtest's elapse loop, ``WAKE_ON_MARKET``
        # False) is woken on the backtest's grid: every interval from the feed's first stamp
        self.wake_on_market = bool(self.quoter.wake_on_market)
        self.wake_origin_ns = 0  # the feed's first stamp (the backtest venue's start time)
        self.last_timer_ns = 0  # the last timer wake handed to the bot (paper)
        self.slots = [Slot() for _ in range(2 * self.levels)]  # row level * 2 + side
        self.orders: dict[str, dict] = {}  # link_id -> {"side", "terminal", "created_ns", ...}
        self.run_config: RunConfig | None = None  # setup_params builds it at the first book
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

        self.settle_coin = spec_for("bybit-linear", cfg.symbol).settle or "quote"
        self.rest: BybitRest | None = None
        self.public: BybitStream | None = None
        self.private: BybitStream | None = None
        self.metrics = None
        self.recorder = None  # live.record.StreamRecorder when cfg.record_path is set
        self.risk = RiskMonitor(self)  # prices an inherited position from the journal
        self.reconciler = Reconciler(self)
        self.gateway = make_gateway(self)  # the one place paper and live differ

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

    def mid(self) -> float:
        return 0.5 * (self.book.best_bid() + self.book.best_ask())

    def pnl(self) -> float:
        """The bot's own PnL (``RiskMonitor.pnl``)."""
        return self.risk.pnl()

    @property
    def venue(self):  # noqa: ANN201 - BybitRest (live) or PaperVenue (paper)
        """The gateway's reads and cancels (open orders, executions, position, cancel-all)."""
        return self.gateway.venue

    def quoting_allowed(self) -> bool:
        return (
            self.reconciled
            and self.book.valid
            and not self.stale
            and not self.stop.is_set()
            and self.gateway.now_ns() >= self.pause_until_ns
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
        self.gateway.on_public(msg, topic, rows, local_ns)  # -> on_market

    def on_market(self, msg: dict, topic: str, rows: np.ndarray, local_ns: int) -> None:
        """One market message for the bot: its book or trades, then a wake at its stamp."""
        self.wake_t0_ns = time.time_ns()  # handed this message now (its stamp is its arrival)
        if not self.wake_origin_ns and len(rows):
            self.wake_origin_ns = min(int(rows["exch_ts"].min()), local_ns)
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
                self.risk.price_inherited(m)
            if math.isfinite(m) and (not self.marks or self.marks[-1][1] != m):
                self.marks.append((int(msg.get("ts", 0)) * 1_000_000, m, self.position_qty))
            if self.stale and self.book.valid:
                self.stale = False
                log.info("feed fresh again: quoting resumes")
            self.event_wake(local_ns, self.wake_t0_ns)
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
                self.event_wake(local_ns, self.wake_t0_ns)

    def event_wake(self, now_ns: int, wake_t0_ns: int | None = None) -> None:
        """A market message, order answer or order news wakes a quoter that wakes on them (the
        backtest's ``wait_next``); one woken on its interval only (``elapse``) sees it at its next
        timer wake."""
        if self.wake_on_market:
            self.quote(now_ns, wake_t0_ns)

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
        from mmbot.strategy.contract import new_views
        from mmbot.strategy.params import params_record, run_config

        # the session's resolved configuration (no simulated venue section: a paper session's
        # matcher is live.simmatch's); the compiled record is generated from it
        self.run_config = run_config(
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
            max_loss=self.cfg.loss_limit_quote,  # --loss-limit over the profile's risk.max_loss
            wake_interval_ms=self.cfg.wake_interval_ms,  # None: the quoter's own
        )
        self.wake_interval_ns = int(self.run_config.run.wake_interval_ms * 1e6)
        self.params = params_record(self.run_config)
        band_ticks = round(float(self.params[0]["near_band_bps"]) * 1e-4 * ref_px / self.tick_px)
        self.near_ticks = min(max(band_ticks, 1), MAX_NEAR_TICKS)
        self.state = self.quoter.new_state(self.params, self.qparams)
        self.guard = new_guard_state(self.params)
        self.view, self.order_view, self.out, self.trade_buf, self.fill_buf = new_views()
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
        # the session's own are set up on its book (the wake interval stays: the same setting)
        self.run_config = self.params = self.state = self.guard = None
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
        bids = self.book.top_px(1, DEPTH_LEVELS)
        asks = self.book.top_px(-1, DEPTH_LEVELS)
        for name, levels, book in (("bid", bids, self.book.bids), ("ask", asks, self.book.asks)):
            v[f"{name}_px"][:] = np.nan
            v[f"{name}_qty"][:] = 0.0
            v[f"{name}_px"][: len(levels)] = levels
            v[f"{name}_qty"][: len(levels)] = [book[p] for p in levels]
        v["position_qty"] = self.position_qty
        v["pnl"] = self.risk.pnl()

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
        if not self.quoting_allowed() or not self.risk.check_limits():
            return
        if self.risk.on_drawdown(now_ns):
            return
        args = (self.order_view, self.out, self.levels, self.position_qty, self.risk.pnl(), now_ns)
        _, n_ops = act(self.params, self.guard, *args, self.act_buf, 0, self.ops)
        self.record_and_dispatch(n_ops)

    def next_wake(self) -> int:
        """When the quoter's timer wakes it next; 0: not yet. A quoter woken on market data: one
        interval after its last step (the backtest's ``wait_next`` timeout); one woken on its
        interval only: the next point of the grid from the feed's first stamp after the last
        timer wake (the backtest's ``elapse``), whether or not that wake could quote."""
        if not self.wake_interval_ns:  # no run configuration yet (``warm_up`` builds one)
            return 0
        if self.wake_on_market:
            if not (self.last_step_ns and self.book.valid):
                return 0
            return self.last_step_ns + self.wake_interval_ns
        if not self.wake_origin_ns:
            return 0
        done = max(self.last_timer_ns, self.wake_origin_ns) - self.wake_origin_ns
        return self.wake_origin_ns + (done // self.wake_interval_ns + 1) * self.wake_interval_ns

    def timer_wake(self, t_ns: int) -> None:
        """The paper venue's timer wake at ``t_ns`` (``next_wake``)."""
        self.last_timer_ns = max(self.last_timer_ns, t_ns)
        self.quote(t_ns)

    # -- streams ----------------------------------------------------------------------------------
    def on_public_down(self) -> None:
        self.gateway.on_public_down()
        self.book.valid = (
            False  # no quoting on a book we no longer see; the resubscribe snapshots it
        )
        self.on_stream_down()

    def on_stream_down(self) -> None:
        self.counters["reconnects"] += 1
        if not self.gateway.reconciled_across_reconnects:
            self.reconciled = False

    async def on_public_connect(self) -> None:
        pass  # a fresh snapshot follows the subscribe; the book is valid from it

    # -- watchdogs --------------------------------------------------------------------------------
    def kill(self, reason: str) -> None:
        if not self.kill_reason:
            self.kill_reason = reason
            self.exit_code = EXIT_KILLED
            log.error("kill switch: %s", reason)
        self.stop.set()

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
            if self.gateway.wall_clock_wakes and self.book.valid and timer_due and not backlog:
                self.quote(now)  # (messages still to handle wake it instead: they came first)
            # the feed's age on the session's clock: paper lives in event time, a hold behind
            # the wall clock (its staleness is a gap between the market's own stamps)
            feed_now = now if self.gateway.wall_clock_wakes else self.gateway.now_ns()
            if (
                self.last_book_local_ns
                and (feed_now - self.last_book_local_ns) / 1e6 > self.cfg.stale_ms
                and not self.stale
            ):
                self.stale = True
                self.counters["stale_pauses"] += 1
                log.warning(
                    "feed stale for > %.0f ms: quoting paused, orders cancelled", self.cfg.stale_ms
                )
                self.spawn(self.cancel_all("stale feed"))
            if self.params is not None and self.reconciled:
                self.risk.check_limits()
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
            self.gateway.set_clock_offset(offset_ns)

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
            await self.gateway.open()
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
            runners = [
                asyncio.create_task(self.public.run(self.stop)),
                asyncio.create_task(self.watchdog()),
            ]
            runners += await self.gateway.start(http)
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
        self.gateway.drain()  # paper: requests in flight run, their answers reach the bot
        for t in list(self.tasks):  # let in-flight order requests finish (bounded)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(t), self.cfg.rest_timeout_s + 0.5)
        if self.venue is not None:
            await self.cancel_all("shutdown")
            with contextlib.suppress(Exception):
                await self.reconciler.reconcile("shutdown")
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
            write_records(self)
        if self.metrics is not None:
            self.metrics.close()
        if self.recorder is not None:
            self.recorder.close()
            log.info("recorded %d messages to %s", self.recorder.n_msgs, self.recorder.path)
