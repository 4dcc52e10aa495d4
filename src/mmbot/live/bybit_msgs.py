"""Bybit V5 websocket message shapes: events -> messages (emulator) and messages -> book/events (bot).

The bot's side (``LiveBook``, ``message_to_events``) reads the very messages a recorded Bybit file
holds (one JSON object a line: ``orderbook.N.SYMBOL`` snapshot/delta, ``publicTrade.SYMBOL``).
``message_to_events`` delegates to the data layer's per-message parser (``mmbot.data.bybit``) when it
exposes one, so recorded files and the live stream go through the same code; the fallback here is
used only until then and is checked against it in tests when both exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mmbot.events import (
    BUY_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EVENT_DTYPE,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
)


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


def _fallback_message_to_events(msg: dict, local_ts_ns: int) -> np.ndarray:
    topic = str(msg.get("topic", ""))
    exch_ns = int(msg.get("ts", 0)) * 1_000_000
    rows: list[tuple] = []
    flags = EXCH_EVENT | LOCAL_EVENT
    if topic.startswith("orderbook."):
        data = msg["data"]
        snap = msg.get("type") == "snapshot"
        kind = DEPTH_SNAPSHOT_EVENT if snap else DEPTH_EVENT
        if snap:
            rows.append((DEPTH_CLEAR_EVENT | flags, exch_ns, local_ts_ns, 0.0, 0.0, 0, 0, 0.0))
        for p, q in data.get("b", []):
            rows.append(
                (kind | flags | BUY_EVENT, exch_ns, local_ts_ns, float(p), float(q), 0, 0, 0.0)
            )
        for p, q in data.get("a", []):
            rows.append(
                (kind | flags | SELL_EVENT, exch_ns, local_ts_ns, float(p), float(q), 0, 0, 0.0)
            )
    elif topic.startswith("publicTrade."):
        for t in msg.get("data", []):
            side = BUY_EVENT if t.get("S") == "Buy" else SELL_EVENT
            rows.append(
                (
                    TRADE_EVENT | flags | side,
                    int(t["T"]) * 1_000_000,
                    local_ts_ns,
                    float(t["p"]),
                    float(t["v"]),
                    0,
                    0,
                    0.0,
                )
            )
    return np.array(rows, dtype=EVENT_DTYPE)


def message_to_events(msg: dict, local_ts_ns: int) -> np.ndarray:
    """One Bybit public message -> EVENT_DTYPE rows (the data layer's parser when it offers one)."""
    try:  # the data layer's per-message parser, if it exposes one under this name
        from mmbot.data.bybit import parse_message  # type: ignore[attr-defined]
    except ImportError:
        return _fallback_message_to_events(msg, local_ts_ns)
    return parse_message(msg, local_ts_ns)  # pragma: no cover - depends on helper A's module


# -- emulator side: events -> messages ---------------------------------------------------------
def group_bounds(events: np.ndarray) -> np.ndarray:
    """Start indices of runs of equal exch_ts (plus len), so each run becomes one message."""
    if len(events) == 0:
        return np.zeros(1, dtype=np.int64)
    ts = events["exch_ts"]
    starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
    return np.r_[starts, len(events)].astype(np.int64)
