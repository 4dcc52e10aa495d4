"""The emulator's market: a capture replayed in wall time as its recorder received it, published
on the public stream and played by the matching venue (``MarketReplay``, a part of ``Emulator``),
the waker thread that times each message to within ~0.5 ms (``PreciseWaker``), and reading a
capture for it (``load_market``).

The feed goes out as the capture's recorder received it: rows it saw (LOCAL_EVENT, or neither
flag) in receive order, one message per run of equal receive time, sent at that time mapped to
wall time from the replay start (``speed`` x); each message's "ts" (trade "T") is its exchange time
on the same mapping. A looped replay continues with the capture's times shifted past everything
the venue has seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import time
from pathlib import Path

import numpy as np

from mmbot import events as ev_
from mmbot.errors import UserError
from mmbot.live.bybit_msgs import book_topic, fmt, trade_topic
from mmbot.live.orders import BUY, SELL

# the loop's own timers wake up to ~1 ms late (epoll rounds its timeout up to the ms); the last
# stretch before a message is due is timed by a thread (time.sleep: ~0.1 ms) that wakes the loop
PRECISE_LAST_NS = 2_000_000


class PreciseWaker:
    """Wakes an event loop at precise wall times: ``await waker.until(t_ns)``. One thread sleeps to
    each deadline and sets its future through ``call_soon_threadsafe`` (which interrupts the loop's
    poll at once); the loop stays free for sockets and requests meanwhile (no spinning, no blocking)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.q: queue.SimpleQueue[tuple[int, asyncio.Future] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="emulator-waker", daemon=True)
        self.thread.start()

    def until(self, t_ns: int) -> asyncio.Future:
        fut = self.loop.create_future()
        self.q.put((int(t_ns), fut))
        return fut

    def close(self) -> None:
        self.q.put(None)

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            t_ns, fut = item
            wait_ns = t_ns - time.time_ns()
            if wait_ns > 0:
                time.sleep(wait_ns / 1e9)
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self.loop.call_soon_threadsafe(_set_done, fut)


def _set_done(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class MarketReplay:
    """The market side of ``Emulator`` (its attributes are the emulator's)."""

    # -- market replay ----------------------------------------------------------------------------
    def capture_now_ns(self) -> int:
        """The market's time now: the wall clock mapped onto the capture (replay start, speed,
        stalls). The "sim" matcher processes a request at this time, as the backtest's venue
        processes it when it arrives; 0 (keep the matcher's own time) before the replay starts and
        while the feed is stalled."""
        if self.replay_t0_ns == 0 or time.time_ns() < self.stall_until_ns:
            return 0  # the matcher keeps its own latest time
        elapsed_ns = time.time_ns() - self.replay_t0_ns - self.replay_shift_ns
        return self.pass_offset_ns + self.replay_e0_ns + int(elapsed_ns * self.cfg.speed)

    def _next_pass(self) -> None:
        """A looped replay's next pass: the matching venue continues with the capture's events
        shifted past everything it has seen (its clock only moves forward)."""
        period_ns = self._t_last_ns - self._t_first_ns + 1_000_000
        self.pass_offset_ns = max(
            self.pass_offset_ns + period_ns, self.matcher.now_capture_ns + 1 - self._t_first_ns
        )
        shifted = self.events.copy()
        shifted["exch_ts"] += self.pass_offset_ns
        shifted["local_ts"] += self.pass_offset_ns
        self.matcher.extend(shifted)

    def _snapshot_msg(self, ts_ms: int | None = None) -> dict:
        """The book as a snapshot, stamped ``ts_ms`` (default: the wall clock now)."""
        m, n = self.matcher, self.cfg.depth
        bids = sorted(m.bids.items(), reverse=True)[:n]
        asks = sorted(m.asks.items())[:n]
        now_ms = time.time_ns() // 1_000_000 if ts_ms is None else ts_ms
        return {
            "topic": book_topic(self.cfg.symbol, n),
            "type": "snapshot",
            "ts": now_ms,
            "data": {
                "s": self.cfg.symbol,
                "b": [[fmt(p, self.px_dec), fmt(q, self.qty_dec)] for p, q in bids],
                "a": [[fmt(p, self.px_dec), fmt(q, self.qty_dec)] for p, q in asks],
                "u": self.u,
                "seq": self.seq,
            },
            "cts": now_ms,
        }

    async def _publish(self, topic: str, msg: dict) -> None:
        texts = [json.dumps(msg)]
        if (
            topic.startswith("orderbook.")
            and msg["type"] == "delta"
            and self._take_fault("seq_gap", "public")
        ):
            texts = []  # the update is applied to the book but never sent: the client sees a u gap
        else:
            texts = self._apply_msg_faults("public", texts[0], topic.startswith("orderbook."))
        for text in texts:
            for ws, subs in list(self.public.items()):
                if topic in subs:
                    with contextlib.suppress(Exception):
                        await ws.send_str(text)

    def _aligned_t0_ns(self) -> int:
        """The replay's start on the wall clock: now, moved forward (< 1 ms) so the capture's ms
        stamps map onto whole wall ms: each message's "ts" is then its exchange time exactly, not
        floored by a phase that changes from run to run (up to 1 ms of the feed's lag, at random)."""
        now_ns = time.time_ns()
        return now_ns + (self.replay_e0_ns - now_ns) % 1_000_000

    def _wall_ms(self, capture_ns: int) -> int:
        """Wall-clock ms of capture time ``capture_ns`` on the running replay's mapping."""
        elapsed_ns = int((capture_ns - self.replay_e0_ns) / self.cfg.speed)
        return (self.replay_t0_ns + self.replay_shift_ns + elapsed_ns) // 1_000_000

    async def _wait_capture(self, capture_ns: int) -> None:
        """Sleep until capture time ``capture_ns`` on the replay's wall clock (``speed``); a stall
        freezes the market and shifts the clock by its length."""
        while True:
            now = time.time_ns()
            if now < self.stall_until_ns:
                self.replay_shift_ns += self.stall_until_ns - now
                await asyncio.sleep((self.stall_until_ns - now) / 1e9)
                continue
            elapsed_ns = int((capture_ns - self.replay_e0_ns) / self.cfg.speed)
            due_ns = self.replay_t0_ns + self.replay_shift_ns + elapsed_ns
            wait_ns = due_ns - now
            if wait_ns <= 0:
                return
            if wait_ns > PRECISE_LAST_NS or self._waker is None:
                await asyncio.sleep(max(wait_ns - PRECISE_LAST_NS, 0) / 1e9)
            else:  # the last stretch: sent when due, as the capture's recorder received it
                await self._waker.until(due_ns)

    async def _replay(self) -> None:
        ev = self.events
        # the feed as the capture's recorder received it: rows it saw (ev_.LOCAL_EVENT, or neither
        # flag) in receive order, one message per run of equal receive time (local_ts), sent at
        # that time mapped to wall time from the replay start. The bot thus sees the capture's own
        # feed latency and message boundaries, as the backtest's local book does; each message's
        # "ts" (trade "T") is its exchange time on the same wall-time mapping
        is_local = ((ev["ev"] & ev_.LOCAL_EVENT) != 0) | ((ev["ev"] & ev_.EXCH_EVENT) == 0)
        rows = np.flatnonzero(is_local)
        recv_all = np.maximum(ev["local_ts"][rows], ev["exch_ts"][rows])
        order = np.argsort(recv_all, kind="stable")
        rows, recv = rows[order], recv_all[order]
        bounds = np.r_[np.flatnonzero(np.r_[True, recv[1:] != recv[:-1]]), len(rows)]
        kinds = (ev["ev"] & ev_.KIND_MASK).astype(np.int64)
        # the matching venue also wakes at exchange event times between messages (while we have
        # orders resting), so our fills happen, and are reported, when they happen at the exchange
        # (as in the backtest), not when the next message that carries their trade is published
        is_exch = ((ev["ev"] & ev_.EXCH_EVENT) != 0) | ((ev["ev"] & ev_.LOCAL_EVENT) == 0)
        exch_pts = np.setdiff1d(np.unique(ev["exch_ts"][is_exch]), recv[bounds[:-1]])
        btopic, ttopic = book_topic(self.cfg.symbol, self.cfg.depth), trade_topic(self.cfg.symbol)
        m = self.matcher
        while self.cfg.wait_for_subscriber and not any(
            btopic in subs for subs in self.public.values()
        ):
            await asyncio.sleep(0.005)
        first_pass = True
        while True:
            if not first_pass:
                self._next_pass()
            first_pass = False
            self.replay_t0_ns, self.replay_shift_ns = self._aligned_t0_ns(), 0
            k_x = 0  # next exchange wake point
            for g in range(len(bounds) - 1):
                a, b = int(bounds[g]), int(bounds[g + 1])
                while k_x < len(exch_pts) and exch_pts[k_x] < recv[a]:
                    if m.has_open_orders():
                        await self._wait_capture(int(exch_pts[k_x]))
                        m.sync(self.pass_offset_ns + int(exch_pts[k_x]))
                    k_x += 1
                await self._wait_capture(int(recv[a]))
                changed_b: dict[float, float] = {}
                changed_a: dict[float, float] = {}
                trades: list[dict] = []
                snapshot = False
                book_exch_ns = 0
                for i in rows[a:b]:
                    k, flags = int(kinds[i]), int(ev["ev"][i])
                    side = BUY if flags & ev_.BUY_EVENT else (SELL if flags & ev_.SELL_EVENT else 0)
                    px, qty = float(ev["px"][i]), float(ev["qty"][i])
                    if k == ev_.DEPTH_CLEAR_EVENT:
                        m.clear_book(side)
                        snapshot = True
                        book_exch_ns = max(book_exch_ns, int(ev["exch_ts"][i]))
                    elif k in (ev_.DEPTH_EVENT, ev_.DEPTH_SNAPSHOT_EVENT) and side != 0:
                        px = m.round_px(px)
                        m.set_level(side, px, qty)
                        (changed_b if side == BUY else changed_a)[px] = qty
                        snapshot |= k == ev_.DEPTH_SNAPSHOT_EVENT
                        book_exch_ns = max(book_exch_ns, int(ev["exch_ts"][i]))
                    elif k == ev_.TRADE_EVENT and side != 0:
                        px = m.round_px(px)
                        self.trade_id += 1
                        trades.append(
                            {
                                "T": self._wall_ms(int(ev["exch_ts"][i])),
                                "s": self.cfg.symbol,
                                "S": "Buy" if side == BUY else "Sell",
                                "v": fmt(qty, self.qty_dec),
                                "p": fmt(px, self.px_dec),
                                "L": "ZeroMinusTick",
                                "i": f"t{self.trade_id}",
                                "BT": False,
                            }
                        )
                    # DEPTH_BBO (top-of-book tickers) carry no level diffs: the depth stream is the book
                m.sync(self.pass_offset_ns + int(recv[a]))
                if trades:  # prints first: they met the book as it was before this message
                    ts_ms = max(t["T"] for t in trades)
                    await self._publish(
                        ttopic, {"topic": ttopic, "type": "snapshot", "ts": ts_ms, "data": trades}
                    )
                if changed_b or changed_a or snapshot:
                    self.u += 1
                    self.seq += 1
                    if snapshot:
                        # stamped on the replay's mapping as the deltas are (a late send keeps
                        # the capture's order of exchange times)
                        await self._publish(btopic, self._snapshot_msg(self._wall_ms(book_exch_ns)))
                    else:
                        ts_ms = self._wall_ms(book_exch_ns)
                        await self._publish(
                            btopic,
                            {
                                "topic": btopic,
                                "type": "delta",
                                "ts": ts_ms,
                                "data": {
                                    "s": self.cfg.symbol,
                                    "b": [
                                        [fmt(p, self.px_dec), fmt(q, self.qty_dec)]
                                        for p, q in changed_b.items()
                                    ],
                                    "a": [
                                        [fmt(p, self.px_dec), fmt(q, self.qty_dec)]
                                        for p, q in changed_a.items()
                                    ],
                                    "u": self.u,
                                    "seq": self.seq,
                                },
                                "cts": ts_ms,
                            },
                        )
                self.counters["groups"] += 1
            if not self.cfg.loop:
                return  # the feed goes quiet: clients see stale data


def guess_tick(values: np.ndarray) -> float:
    """Smallest price/qty increment present (for captures whose reader gives no guess)."""
    v = np.unique(np.round(values[values > 0], 10))
    if len(v) < 2:
        return 1.0
    d = np.diff(v)
    d = d[d > 1e-12]
    step = float(d.min())
    exp = np.floor(np.log10(step))
    return float(np.round(step, int(max(0, -exp + 2))))


def load_market(path: Path) -> tuple[np.ndarray, float, float]:
    """Events + (tick_px, lot_qty) of a capture, through the data layer's ``load_events``."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"--data {path}: not found")
    events = None
    tick = lot = 0.0
    try:
        from mmbot.data import load_events  # type: ignore[attr-defined]

        events, stats = load_events(path)
        tick = float(getattr(stats, "tick_px_guess", 0.0) or 0.0)
        lot = float(getattr(stats, "lot_qty_guess", 0.0) or 0.0)
    except ImportError:  # data layer incomplete: read hftbacktest-style npz ourselves
        if path.suffix != ".npz":
            raise UserError(
                f"--data {path}: cannot read (mmbot.data.load_events unavailable)"
            ) from None
    if events is None:
        with np.load(path) as z:
            events = z["data"] if "data" in z else z[z.files[0]]
    depth = events[(events["ev"] & ev_.KIND_MASK) != ev_.TRADE_EVENT]
    tick = tick or guess_tick(depth["px"])
    lot = lot or guess_tick(events["qty"])
    return events, tick, lot
