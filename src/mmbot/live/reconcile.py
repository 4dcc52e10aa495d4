"""The live/paper session's reconciler: its journal, orders and position against the venue's.

``reconcile`` runs before quoting starts and after every reconnect of a stream (issue 8): the
venue's executions -> journal (counted once by execId), then its open orders (anything the
session does not track is cancelled: no order stays open unknowingly) and the journal's open
orders it no longer has, then the position; a mismatch trips the kill switch. The order gateway
adds the exchange's books (wallet, executions) where there are any (``books_ok``).
``resolve`` finds out what happened to one order whose request outcome is unknown (a timeout, a
5xx, a duplicate client id), by its client id, never by re-sending a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import TYPE_CHECKING

from mmbot.live.bybit import BybitError, RateLimited, TransportError

if TYPE_CHECKING:
    from mmbot.live.session import Session

log = logging.getLogger("mmbot.live")
RECONCILE_ATTEMPTS = 20
RESOLVE_ATTEMPTS = 8
EXECUTIONS_LOOKBACK_MS = 120_000  # executions re-read before the journal's last fill


class Reconciler:
    def __init__(self, session: Session):
        self.s = session

    async def reconcile(self, why: str) -> None:
        """Executions -> journal, then orders and position against the exchange, then quote."""
        s = self.s
        s.reconciled = False
        s.counters["reconciles"] += 1
        log.info("reconcile (%s)", why)
        for attempt in range(RECONCILE_ATTEMPTS):
            if s.stop.is_set() and why != "shutdown":
                return
            try:
                if await self._reconcile_once():
                    s.reconciled = True
                return
            except (TransportError, RateLimited) as exc:
                log.warning("reconcile attempt %d failed: %s", attempt + 1, exc)
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
        s.kill(f"reconcile failed {RECONCILE_ATTEMPTS} times")

    async def _reconcile_once(self) -> bool:
        """One pass; True when the session may quote (False: the kill switch tripped)."""
        s = self.s
        started = await self._started_ms()
        since_ms = max(
            started, s.journal.last_fill_ts_ns(s.symbol) // 1_000_000 - EXECUTIONS_LOOKBACK_MS
        )
        for ex in sorted(
            await s.venue.executions(s.symbol, since_ms), key=lambda e: int(e["execTime"])
        ):
            s.on_execution(ex, "rest")
        open_ids = await self._orders()
        # executions again: a fill may have landed while we looked at orders
        for ex in await s.venue.executions(s.symbol, since_ms):
            s.on_execution(ex, "rest")
        ex_pos = await s.venue.position(s.symbol)
        j_pos = s.journal.position_qty(s.symbol)
        s.position_qty = j_pos
        s.cash_quote = s.journal.cash_and_fees(s.symbol)[0]
        if abs(ex_pos - j_pos) > 0.5 * max(s.lot_qty, 1e-12):
            s.kill(f"position mismatch after reconcile: exchange {ex_pos} vs journal {j_pos}")
            return False
        if not await s.gateway.books_ok(started):
            return False
        log.info("reconciled: position %s, %d open order(s)", j_pos, len(open_ids))
        return True

    async def _started_ms(self) -> int:
        """When this journal started counting executions; a fresh journal adopts the account's
        current position as its start and only counts executions from now on (older account
        history is not this bot's)."""
        s = self.s
        started = s.journal.get_meta(f"started_ms:{s.symbol}")
        if started is None:
            start_pos = await s.venue.position(s.symbol)
            await s.gateway.books_baseline()
            s.journal.set_meta(f"start_position:{s.symbol}", repr(start_pos))
            started = str(time.time_ns() // 1_000_000)
            s.journal.set_meta(f"started_ms:{s.symbol}", started)
            s.position_qty = s.journal.position_qty(s.symbol)
            s.risk.load_inherited()
            m = s.mid()
            if math.isfinite(m):
                s.risk.price_inherited(m)
        return int(started)

    async def _orders(self) -> set[str]:
        """Open orders against the session's slots and the journal's; the ids left open."""
        s = self.s
        open_ids = set()
        for row in await s.venue.open_orders(s.symbol):
            lid = str(row.get("orderLinkId", ""))
            known = lid in s.orders and any(slot.link_id == lid for slot in s.slots)
            if not known:  # not something we are tracking: no order stays open unknowingly
                s.counters["foreign_orders_cancelled"] += 1
                with contextlib.suppress(BybitError):
                    await s.venue.cancel_order(s.symbol, lid)
                if s.journal.is_ours(lid) and s.journal.order(lid) is not None:
                    s.journal.order_event(lid, "reconcile_cancel", status="Cancelled")
                    s.orders.setdefault(
                        lid, {"side": 0, "terminal": True, "created_ns": 0, "live_ns": 0}
                    )["terminal"] = True
            else:
                open_ids.add(lid)
                s.on_order(row)
        for i, slot in enumerate(s.slots):
            if slot.link_id and slot.status == 2 and slot.link_id not in open_ids:
                await self.resolve(i, slot.link_id)
        for jo in s.journal.open_orders(s.symbol):  # journal says open, exchange says not
            if jo["link_id"] not in open_ids and not any(
                slot.link_id == jo["link_id"] for slot in s.slots
            ):
                row = await s.venue.order_by_link(s.symbol, jo["link_id"])
                st = "NotFound" if row is None else str(row.get("orderStatus"))
                if st in ("New", "PartiallyFilled"):
                    await s.venue.cancel_order(s.symbol, jo["link_id"])
                    st = "Cancelled"
                s.journal.order_event(jo["link_id"], "reconcile", status=st)
        return open_ids

    async def resolve(self, side_idx: int, link_id: str) -> None:
        """Find out what happened to an order whose request outcome is unknown."""
        s = self.s
        s.counters["resolved_unknown"] += 1
        for attempt in range(RESOLVE_ATTEMPTS):
            try:
                row = await s.venue.order_by_link(s.symbol, link_id)
                break
            except (TransportError, RateLimited):
                await asyncio.sleep(0.1 * 2**attempt)
        else:
            log.error("cannot resolve order %s: reconcile will", link_id)
            s.reconciled = False
            s.spawn(self.reconcile("unresolved order"))
            return
        s.resolved(side_idx, link_id, row)
