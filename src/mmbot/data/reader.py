"""Format detection (by content, not extension) and the public entry points of ``mmbot.data``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson

from mmbot.data import records
from mmbot.data.core import (
    BLOCK_BYTES,
    DEFAULT_BASE_LATENCY_NS,
    DEFAULT_FEED_LATENCY_NS,
    DEFAULT_WINDOW_NS,
    OFFSET_SAMPLE_ROWS,
    BlockOptions,
    ReadStats,
    peek_lines,
    rechunk,
)
from mmbot.errors import UserError
from mmbot.events import EVENT_DTYPE

_TS_LINE = re.compile(rb"^\s*(\d{10,20})\s+(\{.*)$", re.S)

FORMATS = (
    "binance",  # raw capture, USD-M or spot decided by content ("pu" in depth diffs)
    "bybit",
    "npz",
    "parquet",  # events as written by `mmbot data convert --out X.parquet` (docs/data.md)
    "tardis-book",
    "tardis-trades",
)


def _starts_with(path: Path, magic: bytes) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(magic)) == magic
    except OSError:
        return False


def detect_format(path: Path) -> str:
    """One of FORMATS, decided from the file's first bytes/lines; ``UserError`` otherwise."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a capture file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: empty file")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic.startswith(b"PK\x03\x04") or magic.startswith(b"\x93NUMPY"):
        return "npz"
    if magic == b"PAR1":
        return "parquet"
    lines = peek_lines(path, 5)
    if not lines:
        raise UserError(f"{path}: empty file (no data lines)")
    first = lines[0]
    header = first.decode("utf-8", "replace").strip().lower()
    if header.startswith("exchange,symbol,timestamp,local_timestamp"):
        cols = header.split(",")
        if "is_snapshot" in cols and "side" in cols:
            return "tardis-book"
        if "side" in cols and "price" in cols and "amount" in cols:
            return "tardis-trades"
        raise UserError(
            f"{path}:1: Tardis CSV of an unsupported data type (columns: {header[:80]})"
        )
    for k, line in enumerate(lines):
        m = _TS_LINE.match(line)
        body = m.group(2) if m else line.strip()
        if not body.startswith(b"{"):
            break
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UserError(f"{path}:{k + 1}: broken JSON near the start of the file") from None
        if not isinstance(obj, dict):
            break
        if "topic" in obj:
            return "bybit"
        if m is not None and ("stream" in obj or "lastUpdateId" in obj or "e" in obj):
            return "binance"
        # subscription acks and similar control lines: look at the next line
    raise UserError(
        f"{path}: not a recognised capture (Binance raw, Bybit V5 JSON lines, hftbacktest .npz, "
        f"Tardis CSV); first line starts {first[:40]!r}"
    )


def _iter_raw(
    path: Path, stats: ReadStats, blocks: BlockOptions, feed_latency_ns: int
) -> Iterator[np.ndarray]:
    fmt = stats.format
    if fmt == "binance":
        from mmbot.data.binance import iter_binance

        return iter_binance(path, stats, blocks)
    if fmt == "bybit":
        from mmbot.data.bybit import iter_bybit

        return iter_bybit(path, stats, blocks, feed_latency_ns=feed_latency_ns)
    if fmt == "npz":
        from mmbot.data.npz import iter_npz

        return iter_npz(path, stats)
    if fmt == "parquet":
        from mmbot.data.parquet import iter_parquet

        return iter_parquet(path, stats)
    if fmt in ("tardis-book", "tardis-trades"):
        from mmbot.data.tardis import iter_tardis

        return iter_tardis(path, stats, blocks)
    raise UserError(f"{path}: unsupported format {fmt!r}")


def iter_event_chunks(
    path: str | Path,
    chunk_events: int = 1_000_000,
    *,
    stats: ReadStats | None = None,
    base_latency_ns: int = DEFAULT_BASE_LATENCY_NS,
    feed_latency_ns: int = DEFAULT_FEED_LATENCY_NS,
    window_ns: int = DEFAULT_WINDOW_NS,
    block_bytes: int = BLOCK_BYTES,
    offset_sample_rows: int = OFFSET_SAMPLE_ROWS,
) -> Iterator[np.ndarray]:
    """Events of ``path`` in chunks of about ``chunk_events`` (bounded memory, no cache).

    Pass a ``ReadStats`` as ``stats`` to have it filled once the iterator is exhausted.
    ``feed_latency_ns`` is the latency assumed for files without local receive times.
    """
    path = Path(path)
    fmt = detect_format(path)
    st = stats if stats is not None else ReadStats(path=str(path), format=fmt)
    st.path = str(path)
    st.format = fmt
    blocks = BlockOptions(
        base_latency_ns=base_latency_ns,
        window_ns=window_ns,
        block_bytes=block_bytes,
        offset_sample_rows=offset_sample_rows,
    )
    raw = _iter_raw(path, st, blocks, feed_latency_ns)
    yield from rechunk(raw, chunk_events)


def _read_all(path: Path, **kw) -> tuple[np.ndarray, ReadStats]:
    st = ReadStats(path=str(path), format="")
    chunks = list(iter_event_chunks(path, 1 << 62, stats=st, **kw))
    if not chunks:
        raise UserError(f"{path}: no market events in the file")
    events = chunks[0] if len(chunks) == 1 else records.concat(chunks)
    return events, st


def load_events(
    path: str | Path,
    *,
    use_cache: bool = True,
    base_latency_ns: int = DEFAULT_BASE_LATENCY_NS,
    feed_latency_ns: int = DEFAULT_FEED_LATENCY_NS,
) -> tuple[np.ndarray, ReadStats]:
    """All events of ``path`` (``EVENT_DTYPE``, exchange-time order) and the read's ``ReadStats``.

    With ``use_cache`` a parsed file is stored once (see ``mmbot.data.cache``) and reused while its
    size and mtime are unchanged. Raises ``UserError`` on bad input.
    """
    path = Path(path)
    kw = {"base_latency_ns": int(base_latency_ns), "feed_latency_ns": int(feed_latency_ns)}
    loaded_as_is = _starts_with(path, b"PK\x03\x04") or _starts_with(path, b"PAR1")  # npz, parquet
    if use_cache and not loaded_as_is:  # npz and Parquet events are already the parsed form
        from mmbot.data import cache

        hit = cache.get(path, kw)
        if hit is not None:
            return hit
        events, st = _read_all(path, **kw)
        cache.put(path, kw, events, st)
        return events, st
    events, st = _read_all(path, **kw)
    assert events.dtype == EVENT_DTYPE
    return events, st


def read_stats(path: str | Path, *, use_cache: bool = True) -> ReadStats:
    """Only the ``ReadStats`` of ``path`` (reads it, or takes them from the cache)."""
    return load_events(path, use_cache=use_cache)[1]
