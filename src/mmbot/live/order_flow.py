"""The session's own orders: one working order per slot (level x side), the requests the order
manager decides (journaled before they leave, handed to the order gateway), their answers, and
the order and execution updates from the venue (fills journaled before the position moves,
counted once by execId; terminal states sticky). ``OrderFlow`` is a part of ``Session``.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
from dataclasses import dataclass

from mmbot.live.bybit import BybitError, RateLimited, TransportError
from mmbot.live.bybit_msgs import fmt
from mmbot.live.gateway import TERMINAL
from mmbot.live.journal import FillRow
from mmbot.records import (
    ACT_ACKED,
    ACT_CANCELLED,
    ACT_FILLED,
    ACT_REJECTED,
    ACT_SENT,
    OP_CANCEL,
    OP_NEW,
    OP_REPLACE,
    REASON_NONE,
    REASON_POST_ONLY,
    REASON_RATE_LIMIT,
    REASON_UNKNOWN_ORDER,
)

log = logging.getLogger("mmbot.live")
RATE_LIMIT_QUIET_NS = 10_000_000_000  # backoff starts over after this long without a limit
MAX_PAUSE_NS = 5_000_000_000  # a rate-limit pause never lasts longer


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


class OrderFlow:
    """The order side of ``Session`` (its attributes are the session's)."""

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
            self.gateway.now_ns(),
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
        now = self.gateway.now_ns()
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
        self.gateway.send(side_idx, op, s.link_id, px, qty, self.decided_ns)

    def amend_total(self, link_id: str, qty: float) -> str:
        """Bybit's amend qty is the order's new total, filled part included: the manager asks for
        ``qty`` open (as the backtest's modify does), so add what has filled."""
        filled = self.orders.get(link_id, {}).get("cum_qty", 0.0)
        return fmt(filled + qty, self.qty_dec)

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
            if self.gateway.pauses_on_rate_limit:
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
        """A response wakes the strategy (as in the backtest), at the time it became known
        (``Session.event_wake``)."""
        from mmbot.execution.guards import on_response

        if self.guard is not None:
            on_response(self.guard)
        self.event_wake(known_ns)

    def on_ack(self, side_idx: int, link_id: str, px: float, qty: float, op: int) -> None:
        s = self.slots[side_idx]
        o = self.orders.get(link_id, {})
        self.action(ACT_ACKED, 1 if side_idx % 2 == 0 else -1, op, link_id, px, qty)
        if s.link_id == link_id and not o.get("terminal"):
            s.status, s.px, s.qty, s.live_since_ns = 2, px, qty, self.gateway.now_ns()

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
        now = self.gateway.now_ns()
        if reset_ms is not None:
            wait_ns = min(max(reset_ms * 1_000_000 - self.clock_offset_ns - now, 0), MAX_PAUSE_NS)
            self.pause_until_ns = max(self.pause_until_ns, now + wait_ns)
            self.last_rate_limit_ns = now
            log.warning(
                "rate limited: order actions paused for %.3fs (exchange reset time)", wait_ns / 1e9
            )
            return
        if now - self.last_rate_limit_ns > RATE_LIMIT_QUIET_NS:
            self.backoff_s = 0.0
        self.backoff_s = min(5.0, max(0.25, 2 * self.backoff_s))
        self.last_rate_limit_ns = now
        self.pause_until_ns = now + int(self.backoff_s * 1e9)
        log.warning("rate limited: order actions paused for %.2fs", self.backoff_s)

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
                s.live_since_ns = s.live_since_ns or self.gateway.now_ns()

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
            age = self.gateway.now_ns() - (
                o.get("live_ns") or o.get("created_ns") or self.gateway.now_ns()
            )
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
                s.status, s.live_since_ns = 2, self.gateway.now_ns()
            if s.status == 2:
                s.px, s.qty = px, float(item.get("leavesQty") or s.qty)
            o["live_ns"] = o["live_ns"] or self.gateway.now_ns()

    def on_execution(self, item: dict, source: str) -> None:
        if item.get("execType", "Trade") == "Funding":
            return  # a funding charge, not a fill: the books reconciliation counts it
        link_id = str(item.get("orderLinkId", ""))
        side = 1 if item.get("side") == "Buy" else -1
        px, qty = float(item["execPrice"]), float(item["execQty"])
        exch_ns = int(item.get("execTime", 0)) * 1_000_000
        # execTime has ms resolution: the target in force by the end of that ms, on our clock
        # (the paper venue gives the fill's time to the ns: the target in force then)
        at_ns = item.get("venueNs")
        at_ns = exch_ns + 999_999 - self.clock_offset_ns if at_ns is None else int(at_ns)
        k = bisect.bisect_right(self.tgt_ns, at_ns) - 1
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
            local_ts_ns=self.gateway.now_ns(),
            mid_px=self.mid(),
            target_px=target,
            source=source,
        )
        pnl_before = self.risk.pnl()
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
                age = self.gateway.now_ns() - (
                    o.get("live_ns") or o.get("created_ns") or self.gateway.now_ns()
                )
                self.journal.order_event(link_id, "filled", status="Filled")
                self.action(ACT_FILLED, side, OP_NEW, link_id, px, 0.0, age_ns=age)
                self.slots[slot] = Slot()

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
