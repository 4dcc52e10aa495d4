"""``mmbot data inspect`` and ``mmbot data convert``: what a capture holds, and its normalised events.

``inspect`` reports (``mmbot.commands.data`` shows it as tables) the format, symbol, lines, event counts by kind, span, feed-latency
percentiles (``local_ts - exch_ts`` after the clock correction), tick and lot guesses, the clock
offset applied and every repair count. ``convert`` writes the events as an hftbacktest-loadable
``.npz`` (``np.savez_compressed(out, data=rows)``) in hftbacktest's layout: EXCH rows in exchange
order, LOCAL rows in local order, an event split in two where the orders differ
(``replay.to_hftbacktest_order``); loading it back with mmbot gives exactly those rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmbot.data.core import DEFAULT_FEED_LATENCY_NS, ReadStats
from mmbot.errors import UserError
from mmbot.events import EVENT_DTYPE, KIND_MASK
from mmbot.instruments import detect_spec


def feed_latency_percentiles_ms(
    events: np.ndarray, qs: tuple[float, ...] = (50, 95, 99)
) -> dict[str, float]:
    """Feed-latency percentiles in ms over events that are both exchange and local rows."""
    if len(events) == 0:
        return {f"p{q:g}": math.nan for q in qs}
    lat_ms = (events["local_ts"] - events["exch_ts"]).astype(np.float64) / 1e6
    vals = np.percentile(lat_ms, qs)
    return {f"p{q:g}": float(v) for q, v in zip(qs, vals, strict=True)}


def summary(events: np.ndarray, stats: ReadStats) -> dict:
    """Everything ``inspect`` prints, as a plain dict (sorted keys when dumped)."""
    span_s = (stats.last_exch_ts - stats.first_exch_ts) / 1e9 if len(events) else 0.0
    kinds = (events["ev"] & KIND_MASK).astype(np.int64)
    n_custom = int((kinds > 5).sum())
    out = {
        "path": stats.path,
        "format": stats.format,
        "symbol": stats.symbol,
        "market": detect_spec(stats.format, stats.symbol).label(),
        "lines": stats.n_lines,
        "events": int(len(events)),
        "counts": dict(sorted(stats.counts.items())),
        "custom_kind_events": n_custom,
        "span_s": span_s,
        "first_exch_ts": stats.first_exch_ts,
        "last_exch_ts": stats.last_exch_ts,
        "feed_latency_ms": feed_latency_percentiles_ms(events),
        "tick_px_guess": stats.tick_px_guess,
        "lot_qty_guess": stats.lot_qty_guess,
        "local_offset_ns": stats.local_offset_ns,
        "base_latency_ns": stats.base_latency_ns,
        "assumed_feed_latency_ns": stats.assumed_feed_latency_ns,
        "repairs": dict(sorted(stats.repairs.items())),
        "notes": list(stats.notes),
        "from_cache": stats.from_cache,
    }
    return out


def inspect_capture(
    path: Path, *, use_cache: bool = True, feed_latency_ns: int = DEFAULT_FEED_LATENCY_NS
) -> dict:
    """What ``mmbot data inspect`` shows about the capture at ``path`` (`summary`)."""
    from mmbot.data import load_events

    if not (0 <= feed_latency_ns < 60_000_000_000):
        raise UserError(f"--feed-latency-ms: {feed_latency_ns / 1e6:g} ms is outside [0, 60000)")
    events, stats = load_events(path, use_cache=use_cache, feed_latency_ns=feed_latency_ns)
    return summary(events, stats)


@dataclass(frozen=True)
class Converted:
    """What `convert_capture` wrote."""

    out: Path
    events: int
    rows: int  # rows written (an .npz splits an event whose local and exchange orders differ)
    format: str
    symbol: str

    def line(self) -> str:
        """One line saying what was written."""
        if self.out.suffix == ".parquet":
            return (
                f"wrote {self.events:,} events ({self.format}, {self.symbol or '-'}) to {self.out}"
            )
        return (
            f"wrote {self.events:,} events as {self.rows:,} rows ({self.rows - self.events:,} "
            "split into exchange-only and local-only rows where the orders differ; "
            f"{self.format}, {self.symbol or '-'}) to {self.out}"
        )


def convert_capture(
    path: Path,
    out: Path,
    *,
    use_cache: bool = True,
    feed_latency_ns: int = DEFAULT_FEED_LATENCY_NS,
) -> Converted:
    """Write the normalised events of ``path`` to ``out`` (.npz or .parquet)."""
    from mmbot.data import load_events

    if not (0 <= feed_latency_ns < 60_000_000_000):
        raise UserError(f"--feed-latency-ms: {feed_latency_ns / 1e6:g} ms is outside [0, 60000)")
    events, stats = load_events(path, use_cache=use_cache, feed_latency_ns=feed_latency_ns)
    assert events.dtype == EVENT_DTYPE
    out = Path(out)
    if out.suffix == ".parquet":
        from mmbot.data.parquet import write_events_parquet

        write_events_parquet(out, events, stats.symbol or "", stats.format)
        return Converted(out, len(events), len(events), stats.format, stats.symbol or "")
    if out.suffix != ".npz":
        raise UserError(
            f"{out}: output must be .npz (hftbacktest format) or .parquet (docs/data.md)"
        )
    # local times are kept as received, so local order can disagree with exchange order; write
    # hftbacktest's layout (such events split into exchange-only + local-only rows) so its
    # backtester and validate_event_order accept the file
    from mmbot.data.replay import to_hftbacktest_order

    hb = events if stats.format == "npz" else to_hftbacktest_order(events)  # an npz: as it is
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, data=hb, symbol=np.array(stats.symbol or ""))
    except OSError as exc:
        raise UserError(f"{out}: cannot write ({exc.strerror})") from None
    return Converted(out, len(events), len(hb), stats.format, stats.symbol or "")
