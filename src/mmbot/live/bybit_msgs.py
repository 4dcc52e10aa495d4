"""Bybit V5 websocket topics and the bot's order book from ``orderbook.N`` messages.

``LiveBook`` (the order book module's ``DictBook``, the published book of live and paper) keeps
the update-id sequence (gap detection needs state) and applies the rows the data layer's parser
makes of each message (``mmbot.data.bybit.parse_message``: the conventions of the reader of
recorded Bybit files), so live and recorded data go through one parser.
``tests/test_live_record.py`` checks the file path agrees: a stream recorded by ``mmbot record`` and
read back by ``mmbot.data.load_events`` rebuilds the very book ``LiveBook`` built live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
from pydantic import AfterValidator

from mmbot.book import DictBook
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
class LiveBook(DictBook):
    """The bot's order book from ``orderbook.N`` messages (``mmbot.book.DictBook``: px -> qty and
    sorted prices per side), with update-id gap detection.

    ``apply`` returns "snapshot", "delta", "stale" (duplicate or older update id: ignored) or "gap"
    (an update id was skipped: the book is invalid until the next snapshot; the caller resubscribes).
    """

    last_u: int = -1
    valid: bool = False
    last_exch_ms: int = 0
    gaps: int = 0
    stale: int = 0

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
            self.clear()
        for flags, px, qty in zip(
            rows["ev"].tolist(), rows["px"].tolist(), rows["qty"].tolist(), strict=True
        ):
            side = 1 if flags & BUY_EVENT else -1
            kind = flags & KIND_MASK
            if kind == DEPTH_CLEAR_EVENT:
                self.clear(side)
            elif kind in (DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT):
                self.set_level(side, px, qty)
        self.last_u, self.valid = u, True
        self.last_exch_ms = int(msg.get("ts", 0))
        return "snapshot" if snapshot else "delta"
