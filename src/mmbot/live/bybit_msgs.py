"""Bybit V5 websocket topics and the bot's order book from ``orderbook.N`` messages.

``LiveBook`` keeps the update-id sequence (gap detection needs state) and applies the rows the data
layer's parser makes of each message (``mmbot.data.bybit.parse_message``: the conventions of the
reader of recorded Bybit files), so live and recorded data go through one parser.
``tests/test_live_record.py`` checks the file path agrees: a stream recorded by ``mmbot record`` and
read back by ``mmbot.data.load_events`` rebuilds the very book ``LiveBook`` built live.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
from pydantic import AfterValidator

from mmbot.data.bybit import parse_message
from mmbot.events import BUY_EVENT, DEPTH_CLEAR_EVENT, DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, KIND_MASK


def fmt(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}"


BOOK_DEPTHS = (1, 50, 200, 500)
"""Depths of Bybit V5's linear ``orderbook.N`` topic."""


def _topic_depth(depth: int) -> int:
    if depth not in BOOK_DEPTHS:
        raise ValueError(f"{depth} is not one of {', '.join(map(str, BOOK_DEPTHS))}")
    return depth


BookDepth = Annotated[int, AfterValidator(_topic_depth)]
"""A settings field holding an ``orderbook.N`` depth (one of ``BOOK_DEPTHS``)."""


def book_topic(symbol: str, depth: int = 50) -> str:
    return f"orderbook.{depth}.{symbol}"


def trade_topic(symbol: str) -> str:
    return f"publicTrade.{symbol}"


@dataclass
class LiveBook:
    """The bot's order book from ``orderbook.N`` messages, with update-id gap detection.

    ``apply`` returns "snapshot", "delta", "stale" (duplicate or older update id: ignored) or "gap"
    (an update id was skipped: the book is invalid until the next snapshot; the caller resubscribes).
    Each side's prices are also kept sorted, so the touch and the size near it cost a bisection, not
    a pass over every level (a diff stream's book keeps thousands).
    """

    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    last_u: int = -1
    valid: bool = False
    last_exch_ms: int = 0
    gaps: int = 0
    stale: int = 0
    _bid_px: list[float] = field(default_factory=list)  # ascending
    _ask_px: list[float] = field(default_factory=list)  # ascending

    def apply(self, msg: dict, rows: np.ndarray | None = None) -> str:
        """Apply one ``orderbook`` message; ``rows``: its ``parse_message`` rows if already made."""
        data = msg["data"]
        u = int(data.get("u", 0))
        snapshot = msg.get("type") == "snapshot"
        if not snapshot:
            if not self.valid or u <= self.last_u:
                self.stale += 1
                return "stale"
            if u != self.last_u + 1:
                self.valid = False
                self.gaps += 1
                return "gap"
        if rows is None:
            rows = parse_message(msg, 0)
        if snapshot:  # a snapshot is the whole book, a side it leaves empty included
            self.bids.clear()
            self.asks.clear()
            self._bid_px.clear()
            self._ask_px.clear()
        for flags, px, qty in zip(
            rows["ev"].tolist(), rows["px"].tolist(), rows["qty"].tolist(), strict=True
        ):
            buy = flags & BUY_EVENT
            book, prices = (self.bids, self._bid_px) if buy else (self.asks, self._ask_px)
            kind = flags & KIND_MASK
            if kind == DEPTH_CLEAR_EVENT:
                book.clear()
                prices.clear()
            elif kind in (DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT):
                if qty > 0:
                    if px not in book:
                        bisect.insort(prices, px)
                    book[px] = qty
                elif book.pop(px, None) is not None:
                    del prices[bisect.bisect_left(prices, px)]
        self.last_u, self.valid = u, True
        self.last_exch_ms = int(msg.get("ts", 0))
        return "snapshot" if snapshot else "delta"

    def best_bid(self) -> float:
        return self._bid_px[-1] if self._bid_px else float("nan")

    def best_ask(self) -> float:
        return self._ask_px[0] if self._ask_px else float("nan")

    def qty_from(self, side: int, limit_px: float) -> float:
        """Visible size at prices at or better than ``limit_px`` (bids >= it, asks <= it)."""
        if side > 0:
            lv = self._bid_px[bisect.bisect_left(self._bid_px, limit_px) :]
            return float(sum(self.bids[p] for p in lv))
        lv = self._ask_px[: bisect.bisect_right(self._ask_px, limit_px)]
        return float(sum(self.asks[p] for p in lv))

    def qty_at(self, side: int, px: float) -> float:
        return (self.bids if side > 0 else self.asks).get(px, 0.0)

    def depth_near(self, side: int, n_levels: int = 5) -> float:
        if side > 0:
            return float(sum(self.bids[p] for p in self._bid_px[::-1][:n_levels]))
        return float(sum(self.asks[p] for p in self._ask_px[:n_levels]))
