"""mmbot's data layer: readers that turn market-data captures into ``EVENT_DTYPE`` arrays.

Public API (docs/api.md; the event layout and file formats: docs/data.md):

- ``load_events(path, *, use_cache=True) -> (events, ReadStats)``: the whole file, ordered by
  exchange time, local time never before exchange time (and non-decreasing), every repair counted.
- ``iter_event_chunks(path, chunk_events=1_000_000)``: the same events in chunks (bounded memory).
- ``ReadStats``: format, symbol, line count, per-kind counts, repairs, tick/lot guesses, clock offset.

Formats (detected by content): Binance raw captures (USD-M, spot), Bybit V5 orderbook/publicTrade
(plain JSON lines or ``<local_ns> <json>``), hftbacktest ``.npz`` (loaded as is), Tardis CSV
(``incremental_book_L2``, ``trades``).

Conventions of the events (hftbacktest's, so its venue and ours consume the same arrays):
- every market event carries ``EXCH_EVENT | LOCAL_EVENT``; ``BUY_EVENT`` = bid level / buyer
  aggressed, ``SELL_EVENT`` = ask level / seller aggressed; depth ``qty == 0`` deletes a level;
- a snapshot is ``DEPTH_CLEAR | side`` (px = deepest snapshot level: clear from the touch up to it)
  followed by ``DEPTH_SNAPSHOT | side`` levels; ``bookTicker`` -> ``DEPTH_BBO`` rows;
- rows a repair adds (qty-0 deletions of crossed or stale levels) have ``ival == 1``
  (``replay.REPAIR_IVAL``); replaying the array never shows a crossed book at any exchange time;
- ``exch_ts`` is non-decreasing; ``local_ts >= exch_ts``; local time is kept as received (after the
  constant clock offset), so it can go back in array order (counted as ``local_order_inversion``):
  replay local rows in local-time order. ``mmbot data convert`` writes hftbacktest's split layout.
- defaults: ``DEFAULT_BASE_LATENCY_NS`` (1 ms, the minimum feed latency after the clock-offset
  correction), ``DEFAULT_FEED_LATENCY_NS`` (10 ms, assumed when a file has no receive times).
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
