"""Where a live/paper session's orders go: the order gateway, chosen once per session
(``make_gateway``). The session itself has no paper/live branches.

- ``LiveGateway`` (this module): the exchange over ``BybitRest`` and the private stream. A request
  is an asyncio task; its answer wakes the strategy when it comes back; order and execution
  updates come on the private stream; the exchange's Disconnect Cancel All is armed; the books
  (wallet, executions) are reconciled with the journal (``live.reconcile_pnl``).
- ``PaperGateway`` (``live.paper_gateway``): the paper venue fed with the public stream, in
  event time.

Both expose ``venue`` (the BybitRest-shaped reads and cancels the reconciler and cancel-all use).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import numpy as np

from mmbot.errors import UserError
from mmbot.live.bybit import BybitError, BybitStream, TransportError
from mmbot.live.bybit_msgs import fmt
from mmbot.records import OP_NEW, OP_REPLACE

if TYPE_CHECKING:
    from mmbot.live.session import Session

log = logging.getLogger("mmbot.live")

DCP_WINDOW_S = 10  # Bybit's default Disconnect Cancel All window: orders go 10 s after the bot
TERMINAL = ("Filled", "Cancelled", "Rejected", "Deactivated", "NotFound")


class OrderGateway(Protocol):
    venue: Any  # open_orders, executions, position, order_by_link, cancel_order, cancel_all
    queue_model: str  # the queue model a replay of the session applies
    wall_clock_wakes: bool  # the session's watchdog wakes the quoter on the wall clock
    reconciled_across_reconnects: bool  # a stream reconnect keeps the reconcile standing
    # a rate-limit answer pauses order actions (``OrderFlow.slow_down``); paper: no, as in the
    # backtest, whose guards and venue limit are all there is
    pauses_on_rate_limit: bool

    async def open(self) -> None:
        """Ready to trade (the session's instrument and clock are known)."""

    async def start(self, http: aiohttp.ClientSession) -> list[asyncio.Task]:
        """The public stream runs: start what else trades (tasks the session stops at the end)."""

    def on_public(self, msg: dict, topic: str, rows: np.ndarray, local_ns: int) -> None:
        """A market message, received at ``local_ns``: to the session (``on_market``)."""

    def send(
        self, side_idx: int, op: int, link_id: str, px: float, qty: float, decided_ns: int
    ) -> None:
        """Send a request the wake at ``decided_ns`` decided; its answer goes to the session."""

    def on_public_down(self) -> None:
        """The public stream is down: its next book is a fresh snapshot."""

    def set_clock_offset(self, offset_ns: int) -> None: ...

    def now_ns(self) -> int:
        """The session's clock for its order state (ages, acks, fills, pauses): the wall clock,
        or paper's event time (the time of what the session is handling)."""

    async def books_baseline(self) -> None:
        """A fresh journal's start on the venue's books."""

    async def books_ok(self, since_ms: int) -> bool:
        """The venue's books agree with the journal (False: the kill switch tripped)."""

    def drain(self) -> None:
        """The session ends: requests in flight run and their answers reach it."""

    def stats(self) -> dict:
        """What the gateway applied, for session.json."""


def make_gateway(session: Session) -> OrderGateway:
    """The one place a session's mode is chosen."""
    if session.cfg.mode == "live":
        return LiveGateway(session)
    from mmbot.live.paper_gateway import PaperGateway

    return PaperGateway(session)


class LiveGateway:
    queue_model = "risk_averse"  # the backtest's default, for a replay of the session
    wall_clock_wakes = True
    reconciled_across_reconnects = False  # a reconnect may have missed order news: reconcile
    pauses_on_rate_limit = True

    def __init__(self, session: Session):
        self.s = session
        self.venue: Any = None

    async def open(self) -> None:
        s, cfg = self.s, self.s.cfg
        if cfg.keys is None:
            raise UserError("live mode needs API keys")
        try:  # a signed read first: wrong keys fail here, before any order
            await s.rest.position(s.symbol)
        except BybitError as exc:
            raise UserError(
                f"API keys refused by {cfg.endpoints.rest_url}: retCode {exc.ret_code} {exc.ret_msg}"
            ) from exc
        self.venue = s.rest

    async def start(self, http: aiohttp.ClientSession) -> list[asyncio.Task]:
        s, cfg = self.s, self.s.cfg
        s.private = BybitStream(
            http,
            cfg.endpoints.private_ws_url,
            ["order", "execution", "position", "wallet", "dcp"],
            self.on_private,
            keys=cfg.keys,
            on_connect=self.on_private_connect,
            on_disconnect=s.on_stream_down,
            name="private",
        )
        task = asyncio.create_task(s.private.run(s.stop))
        await self._arm_disconnect_cancel()
        return [task]

    async def _arm_disconnect_cancel(self) -> None:
        """Orders must not rest while the bot is down: arm the exchange's Disconnect Cancel All
        (the private stream subscribes "dcp"). An account without DCP keeps trading, said loudly."""
        s = self.s
        try:
            await s.rest.set_disconnect_cancel_all(DCP_WINDOW_S)
            s.counters["dcp_armed"] = 1
            log.info("disconnect cancel-all armed: %d s window", DCP_WINDOW_S)
        except Exception as exc:  # noqa: BLE001 - any refusal leaves the bot running, reported
            s.counters["dcp_armed"] = 0
            log.warning("disconnect cancel-all NOT armed (%s): orders rest if the bot dies", exc)

    async def on_private_connect(self) -> None:
        await self.s.reconciler.reconcile("private stream (re)connected")

    def on_private(self, msg: dict, local_ns: int) -> None:
        s = self.s
        topic = msg.get("topic")
        wake = False
        for item in msg.get("data", []):
            if topic == "order" and item.get("symbol") == s.symbol:
                s.on_order(item)
                # an order ending (filled, cancelled, rejected) is news, as a response is in the
                # backtest; a "New" only confirms what the REST answer (which wakes it) says
                wake |= str(item.get("orderStatus")) in TERMINAL
            elif topic == "execution" and item.get("symbol") == s.symbol:
                s.on_execution(item, "ws")
                wake = True
        if wake:
            s.quote(time.time_ns())  # order news wakes the strategy (as in the backtest)

    def on_public(self, msg: dict, topic: str, rows: np.ndarray, local_ns: int) -> None:
        self.s.on_market(msg, topic, rows, local_ns)

    def on_public_down(self) -> None:
        pass  # the session's book waits for the snapshot itself

    def send(
        self, side_idx: int, op: int, link_id: str, px: float, qty: float, decided_ns: int
    ) -> None:
        self.s.spawn(self._send(side_idx, op, link_id, px, qty, decided_ns))

    async def _send(
        self, side_idx: int, op: int, link_id: str, px: float, qty: float, decided_ns: int
    ) -> None:
        """The request to the exchange, then its answer (``Session.take_answer``)."""
        s = self.s
        side = 1 if side_idx % 2 == 0 else -1
        pxs, qtys = fmt(px, s.px_dec), fmt(qty, s.qty_dec)
        if decided_ns:
            s.decide_to_send_ms.append((time.time_ns() - decided_ns) / 1e6)
        t0 = time.perf_counter()
        try:
            try:
                if op == OP_NEW:
                    r = await self.venue.create_order(s.symbol, side, qtys, pxs, link_id)
                elif op == OP_REPLACE:
                    total = s.amend_total(link_id, qty)
                    r = await self.venue.amend_order(s.symbol, link_id, price=pxs, qty=total)
                else:
                    r = await self.venue.cancel_order(s.symbol, link_id)
                err = None
            except (BybitError, TransportError) as exc:
                r, err = None, exc
            rtt_ms = (time.perf_counter() - t0) * 1e3
            if s.take_answer(side_idx, op, link_id, px, qty, r, err, rtt_ms):
                await s.reconciler.resolve(side_idx, link_id)
        finally:
            s.after_answer(time.time_ns())  # a response wakes the strategy (as in the backtest)

    def set_clock_offset(self, offset_ns: int) -> None:
        pass  # the exchange keeps its own time

    def now_ns(self) -> int:
        return time.time_ns()

    async def books_baseline(self) -> None:
        """The wallet balance and the average entry of the adopted position, which the books
        reconciliation counts from."""
        s = self.s
        wallet = float((await s.rest.wallet_coin(s.settle_coin))["walletBalance"])
        avg_px = await s.rest.position_avg_px(s.symbol)
        s.journal.set_meta(f"start_wallet:{s.settle_coin}", repr(wallet))
        s.journal.set_meta(f"start_avg_px:{s.symbol}", repr(avg_px))

    def _books_start(self) -> tuple[float, float, float] | None:
        s = self.s
        wallet = s.journal.get_meta(f"start_wallet:{s.settle_coin}")
        if wallet is None:
            return None  # a journal started before the baseline was kept: fills only
        return (
            float(wallet),
            float(s.journal.get_meta(f"start_position:{s.symbol}") or 0.0),
            float(s.journal.get_meta(f"start_avg_px:{s.symbol}") or 0.0),
        )

    def _import_executions(self, rows: list[dict]) -> None:
        """Executions the journal lacks (known ones are not re-offered: dup_fills counts fills
        the streams deliver twice, not the reconciliation's own reads)."""
        s = self.s
        known = s.journal.exec_ids()
        for ex in sorted(rows, key=lambda e: int(e["execTime"])):
            if str(ex["execId"]) not in known:
                s.on_execution(ex, "rest")

    async def books_ok(self, since_ms: int) -> bool:
        """The journal against the exchange's own executions and wallet balance
        (``live.reconcile_pnl``). A mismatch is logged as an error naming the fill or the amount,
        journaled (risk_events), and stops the bot (kill switch); True when the books agree."""
        from mmbot.live.reconcile_pnl import judge, snapshot

        s = self.s
        coin = s.settle_coin

        async def wallet() -> float:
            return float((await s.rest.wallet_coin(coin))["walletBalance"])

        rows, balance = await snapshot(
            lambda: s.rest.executions(s.symbol, since_ms), wallet, self._import_executions
        )
        journal_rows = [r for r in s.journal.fills(s.symbol) if r["source"] != "sim"]
        verdict = judge(journal_rows, rows, balance, self._books_start(), coin)
        s.books = verdict.as_dict()
        if verdict.ok:
            msg = (
                f"books reconciled with the exchange: {verdict.fills_compared} fill(s) match, "
                f"wallet {coin} {verdict.wallet_exchange!r} vs journal {verdict.wallet_expected!r}"
            )
            log.info("%s", msg)
            s.journal.risk_event(s.symbol, "reconcile_ok", msg)
            return True
        for m in verdict.mismatches:
            log.error("RECONCILIATION MISMATCH: %s", m)
            s.journal.risk_event(s.symbol, "reconcile_mismatch", m)
        s.counters["reconcile_mismatches"] += len(verdict.mismatches)
        more = len(verdict.mismatches) - 1
        s.kill(
            f"books do not reconcile with the exchange: {verdict.mismatches[0]}"
            + (f" (and {more} more)" if more else "")
        )
        return False

    def drain(self) -> None:
        pass  # the session waits for its request tasks itself

    def stats(self) -> dict:
        return {"paper_order_latency_ms": None}
