"""hftbacktest ``.npz`` event files (``np.savez_compressed(out, data=events)``): loaded as they are.

``mmbot data convert`` also stores the capture's symbol as a ``symbol`` member (hftbacktest reads
only ``data``); ``npz_symbol`` reads it back.

No repair or reordering is applied ("as is"): hftbacktest's own converter may split an event into
an exchange-only and a local-only copy when the two orders differ, and those rows are kept. The
``ReadStats`` still report counts, span, the guesses and (as notes) whether exchange order and
``local_ts >= exch_ts`` hold. The array is decompressed whole (npz members cannot be streamed),
then handed out in chunks.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mmbot.data.core import ReadStats, guess_step
from mmbot.data.timecheck import FUTURE_SLACK_NS
from mmbot.errors import UserError
from mmbot.events import (
    EVENT_DTYPE,
    EXCH_EVENT,
    KIND_MASK,
    KIND_NAMES,
    LOCAL_EVENT,
    TRADE_EVENT,
    as_events,
)


def load_npz_array(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            if isinstance(z, np.ndarray):
                arr = z
            elif "data" in z.files:
                arr = z["data"]
            elif len(z.files) == 1:
                arr = z[z.files[0]]
            else:
                raise UserError(f"{path}: npz has no 'data' array (members: {', '.join(z.files)})")
    except UserError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable npz ({type(exc).__name__}: {exc})") from None
    if arr.ndim != 1:
        raise UserError(f"{path}: npz 'data' is {arr.ndim}-dimensional, expected a 1-D event array")
    try:
        return as_events(arr)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None


def _check_times(path: Path, events: np.ndarray) -> None:
    """An npz is loaded as is, so a time it cannot hold stops the run (naming the row): a
    negative or far-future time would stretch the replay over decades."""
    hi = time.time_ns() + FUTURE_SLACK_NS
    for col in ("exch_ts", "local_ts"):
        bad = np.nonzero((events[col] < 0) | (events[col] > hi))[0]
        if len(bad):
            k = int(bad[0])
            raise UserError(
                f"{path}: row {k}: {col} {int(events[col][k])} is negative or more than a day "
                f"in the future ({len(bad)} such rows)"
            )


def npz_symbol(path: Path) -> str:
    """The ``symbol`` member ``mmbot data convert`` stores beside ``data`` ("" when absent)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return str(z["symbol"]) if "symbol" in getattr(z, "files", ()) else ""
    except (zipfile.BadZipFile, EOFError, OSError, ValueError):
        return ""


def iter_npz(path: Path, stats: ReadStats, chunk: int = 1_000_000) -> Iterator[np.ndarray]:
    events = load_npz_array(path)
    stats.symbol = npz_symbol(path) or stats.symbol
    describe_loaded(path, events, stats)
    for s in range(0, len(events), chunk):
        yield events[s : s + chunk]
    assert events.dtype == EVENT_DTYPE


def describe_loaded(path: Path, events: np.ndarray, stats: ReadStats) -> None:
    """Fill ``stats`` for an array loaded as it is (counts, span, guesses, order notes); a time
    it cannot hold is a UserError naming ``path`` and the row."""
    stats.n_lines = 0
    stats.n_events = len(events)
    kinds = (events["ev"] & KIND_MASK).astype(np.int64)
    counts = np.bincount(kinds, minlength=256)
    stats.counts = {name: int(counts[k]) for k, name in KIND_NAMES.items()}
    n_other = int(len(events) - sum(stats.counts.values()))
    if n_other:
        stats.notes.append(f"{n_other} events of custom kinds (not depth/trade/clear/snapshot/bbo)")
    stats.repairs = {}
    _check_times(path, events)
    if len(events):
        stats.first_exch_ts = int(events["exch_ts"][0])
        stats.last_exch_ts = int(events["exch_ts"][-1])
        exch_rows = (events["ev"] & EXCH_EVENT) != 0
        local_rows = (events["ev"] & LOCAL_EVENT) != 0
        if np.any(np.diff(events["exch_ts"][exch_rows]) < 0):
            stats.notes.append("exchange events are not in exchange-time order")
        if np.any(np.diff(events["local_ts"][local_rows]) < 0):
            stats.notes.append("local events are not in local-time order")
        n_split = int((exch_rows != local_rows).sum())
        if n_split:
            stats.notes.append(
                f"{n_split} rows are exchange-only or local-only (hftbacktest order split)"
            )
        n_neg = int((events["local_ts"] < events["exch_ts"]).sum())
        if n_neg:
            stats.notes.append(f"{n_neg} rows have local_ts < exch_ts")
        sample = events[:200_000]
        stats.tick_px_guess = guess_step(sample["px"][(sample["ev"] & KIND_MASK) <= 5])
        q = sample["qty"]
        stats.lot_qty_guess = guess_step(q[((sample["ev"] & KIND_MASK) == TRADE_EVENT) | (q > 0)])
