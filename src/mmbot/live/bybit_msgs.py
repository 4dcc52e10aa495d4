"""Bybit V5 websocket message shapes: the bot's order book from ``orderbook.N`` messages, and the
helpers the emulator uses to turn event runs into messages.

The data layer's Bybit reader (``mmbot.data.bybit``) parses recorded files in blocks and exposes no
per-message function, so the live book is kept here (``LiveBook``, dict levels, update-id gap
detection). ``tests/test_live_record.py`` checks the two agree: a stream recorded by ``mmbot record``
and read back by ``mmbot.data.load_events`` rebuilds the very book ``LiveBook`` built live.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def fmt(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}"


def book_topic(symbol: str, depth: int = 50) -> str:
    return f"orderbook.{depth}.{symbol}"


def trade_topic(symbol: str) -> str:
    return f"publicTrade.{symbol}"


@dataclass
class LiveBook:
    """The bot's order book from ``orderbook.N`` messages, with update-id gap detection.

    ``apply`` returns "snapshot", "delta", "stale" (duplicate or older update id: ignored) or "gap"
    (an update id was skipped: the book is invalid until the next snapshot; the caller resubscribes).
    """

    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    last_u: int = -1
    valid: bool = False
    last_exch_ms: int = 0
    gaps: int = 0
    stale: int = 0

    def apply(self, msg: dict) -> str:
        data = msg["data"]
        u = int(data.get("u", 0))
        if msg.get("type") == "snapshot":
            self.bids = {float(p): float(q) for p, q in data.get("b", []) if float(q) > 0}
            self.asks = {float(p): float(q) for p, q in data.get("a", []) if float(q) > 0}
            self.last_u, self.valid = u, True
            self.last_exch_ms = int(msg.get("ts", 0))
            return "snapshot"
        if not self.valid or u <= self.last_u:
            self.stale += 1
            return "stale"
        if u != self.last_u + 1:
            self.valid = False
            self.gaps += 1
            return "gap"
        for p, q in data.get("b", []):
            (
                self.bids.__setitem__(float(p), float(q))
                if float(q) > 0
                else self.bids.pop(float(p), None)
            )
        for p, q in data.get("a", []):
            (
                self.asks.__setitem__(float(p), float(q))
                if float(q) > 0
                else self.asks.pop(float(p), None)
            )
        self.last_u = u
        self.last_exch_ms = int(msg.get("ts", 0))
        return "delta"

    def best_bid(self) -> float:
        return max(self.bids) if self.bids else float("nan")

    def best_ask(self) -> float:
        return min(self.asks) if self.asks else float("nan")

    def qty_at(self, side: int, px: float) -> float:
        return (self.bids if side > 0 else self.asks).get(px, 0.0)

    def depth_near(self, side: int, n_levels: int = 5) -> float:
        book = self.bids if side > 0 else self.asks
        lv = sorted(book, reverse=side > 0)[:n_levels]
        return float(sum(book[p] for p in lv))
