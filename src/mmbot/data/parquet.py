"""Events as Parquet, in and out (written by polars; no pyarrow needed).

Schema (docs/data.md): one row per event, the columns and types of ``mmbot.events.EVENT_DTYPE`` in
its order (``ev`` u64, ``exch_ts`` i64 ns, ``local_ts`` i64 ns, ``px`` f64, ``qty`` f64,
``order_id`` u64, ``ival`` i64, ``fval`` f64), with the file's key-value metadata
``mmbot.schema = "events/1"``, ``mmbot.symbol``, ``mmbot.source_format`` (the capture's format).
``mmbot data convert CAPTURE --out X.parquet`` writes the events exactly as the readers return them
(exchange-time order, repairs applied), so reading X.parquet gives the same array back. A Parquet
file written elsewhere is accepted when it has those columns (extra columns are ignored, a missing
or null one is an error naming it); it is loaded as it is, like an ``.npz``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from mmbot.data.core import ReadStats
from mmbot.errors import UserError
from mmbot.events import EVENT_DTYPE
from mmbot.frame_io import struct_from_frame

SCHEMA_TAG = "events/1"
_META_SCHEMA = "mmbot.schema"
_META_SYMBOL = "mmbot.symbol"
_META_FORMAT = "mmbot.source_format"
PARQUET_MAGIC = b"PAR1"


def write_events_parquet(path: Path, events: np.ndarray, symbol: str, source_format: str) -> Path:
    """Write ``events`` (EVENT_DTYPE) to ``path`` with the schema of the module docstring."""
    if events.dtype != EVENT_DTYPE:
        raise ValueError("events must be EVENT_DTYPE")
    df = pl.DataFrame({n: np.ascontiguousarray(events[n]) for n in EVENT_DTYPE.names})
    meta = {_META_SCHEMA: SCHEMA_TAG, _META_SYMBOL: symbol, _META_FORMAT: source_format}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        df.write_parquet(tmp, compression="zstd", metadata=meta)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{path}: cannot write ({exc.strerror})") from None
    return path


def load_parquet_events(path: Path) -> tuple[np.ndarray, dict[str, str]]:
    """(events, key-value metadata) of an events Parquet file; UserError naming what is wrong."""
    try:
        df = pl.read_parquet(path)
        meta = pl.read_parquet_metadata(path)
    except Exception as exc:  # noqa: BLE001 - any parse failure is bad input
        raise UserError(f"{path}: unreadable Parquet ({type(exc).__name__}: {exc})") from None
    missing = [n for n in EVENT_DTYPE.names if n not in df.columns]
    if missing:
        raise UserError(
            f"{path}: not an events file: missing column(s) {', '.join(missing)} "
            f"(expected {', '.join(EVENT_DTYPE.names)}; see docs/data.md)"
        )
    return struct_from_frame(df, EVENT_DTYPE, str(path)), meta


def iter_parquet(path: Path, stats: ReadStats, chunk: int = 1_000_000) -> Iterator[np.ndarray]:
    """The events of ``path`` in chunks, ``stats`` described like an ``.npz`` (loaded as is)."""
    from mmbot.data.npz import describe_loaded

    events, meta = load_parquet_events(path)
    stats.symbol = meta.get(_META_SYMBOL) or stats.symbol
    describe_loaded(path, events, stats)
    for s in range(0, len(events), chunk):
        yield events[s : s + chunk]
