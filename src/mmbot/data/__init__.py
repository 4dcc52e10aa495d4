"""mmbot's data layer: readers that turn market-data captures into ``EVENT_DTYPE`` arrays.

Public API (see /tmp/team/APIS.md):

- ``load_events(path, *, use_cache=True) -> (events, ReadStats)``: the whole file, ordered by
  exchange time, local time never before exchange time (and non-decreasing), every repair counted.
- ``iter_event_chunks(path, chunk_events=1_000_000)``: the same events in chunks (bounded memory).
- ``ReadStats``: format, symbol, line count, per-kind counts, repairs, tick/lot guesses, clock offset.

Formats (detected by content): Binance raw captures (USD-M, spot), Bybit V5 orderbook/publicTrade
(plain JSON lines or ``<local_ns> <json>``), hftbacktest ``.npz``, Tardis CSV
(``incremental_book_L2``, ``trades``).
"""

from __future__ import annotations

from mmbot.data.core import (
    DEFAULT_BASE_LATENCY_NS,
    DEFAULT_FEED_LATENCY_NS,
    ReadStats,
)
from mmbot.data.reader import iter_event_chunks, load_events, read_stats

__all__ = [
    "DEFAULT_BASE_LATENCY_NS",
    "DEFAULT_FEED_LATENCY_NS",
    "ReadStats",
    "iter_event_chunks",
    "load_events",
    "read_stats",
]
