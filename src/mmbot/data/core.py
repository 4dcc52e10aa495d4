"""Shared reader machinery: file opening, block-wise line reading, ``ReadStats`` and the pipeline
that turns a format parser's "stage" rows into ordered, repaired ``EVENT_DTYPE`` chunks.

A format parser (``binance``, ``bybit``, ``tardis``) yields ``StageBlock``s in file order: message-level
arrays (type, exchange time, local time, update ids) plus one stage row per level / trade / BBO side.
``Pipeline`` then, block by block (bounded memory):

1. runs ``replay.sequence_check`` on the messages (file order) and drops rejected depth messages;
2. fixes the clock: on the first block, if the smallest feed latency ``local - exch`` is negative the
   local clock is behind, and a constant ``offset = base_latency_ns - min_latency`` is added to every
   local time (hftbacktest's ``correct_local_timestamp``), so the minimum feed latency becomes
   ``base_latency_ns``; the offset is reported in ``ReadStats.local_offset_ns``;
3. orders rows by exchange time inside a sliding window (``window_ns`` of exchange time is held back
   so lines that arrive out of order are reordered; a line older than what was already emitted is
   dropped and counted as ``out_of_order_line_dropped``);
4. runs ``replay.replay`` (book, crossed-book repair, local-time rules) and yields the events.
"""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from mmbot.data import records
from mmbot.data import replay as rp
from mmbot.data.timecheck import TIME_REPAIR_NAMES, TimeFilter

try:  # ISA-L's gzip is ~4x faster to decompress than zlib's; optional (same output, same errors)
    from isal import igzip as _gzip_impl
    from isal.isal_zlib import error as _IsalError

    _GZ_ERRORS: tuple[type[BaseException], ...] = (EOFError, zlib.error, OSError, _IsalError)
except ImportError:  # pragma: no cover - depends on the environment
    _gzip_impl = gzip
    _GZ_ERRORS = (EOFError, zlib.error, OSError)
from mmbot.errors import UserError
from mmbot.events import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EVENT_DTYPE,
    KIND_MASK,
    KIND_NAMES,
    SELL_EVENT,
    TRADE_EVENT,
)

DEFAULT_BASE_LATENCY_NS = 1_000_000
"""Minimum feed latency after the clock-offset correction (1 ms): a small positive value."""
DEFAULT_FEED_LATENCY_NS = 10_000_000
"""Feed latency assumed for files without a local receive time (plain Bybit JSON lines): 10 ms."""
DEFAULT_WINDOW_NS = 5_000_000_000
"""Exchange-time window (5 s) within which out-of-order lines are reordered rather than dropped."""
OFFSET_SAMPLE_ROWS = 1_000_000
"""Stage rows (levels/trades) held back at the start to fix the local-clock offset."""
BLOCK_BYTES = 4 << 20
"""Decompressed bytes parsed per block: bounds the reader's working memory."""
MAX_LINE_BYTES = 64 << 20
"""A line longer than this (64 MiB, no newline) is refused: one line cannot exhaust memory."""

PARSER_COUNTER_NAMES = (
    "out_of_order_line_reordered",
    "out_of_order_line_dropped",
    "exch_ts_estimated",
    "non_market_line_skipped",
    "unsupported_message_skipped",
    "non_market_trade_skipped",
    *TIME_REPAIR_NAMES,
)


@dataclass
class ReadStats:
    """What a read produced and every repair it made (``repairs``: name -> count, zeros included).

    ``repairs`` keys: ``sequence_gap`` (update-id gaps), ``depth_msg_dropped_unsynced`` /
    ``depth_msg_dropped_stale`` (diffs dropped while out of sync / older than the book),
    ``resync_from_snapshot``, ``snapshot_skipped_older_than_book``, ``crossed_book`` (messages
    after which the book crossed) and ``crossed_level_removed``, ``stale_level_removed_by_bbo``,
    ``bad_price_row_dropped``, ``bad_qty_row_dropped`` (NaN/inf/non-positive price, NaN/negative
    qty), ``out_of_order_line_dropped`` (beyond the reorder window), ``local_before_exch_clamped``,
    ``non_market_line_skipped``, ``unsupported_message_skipped``, ``non_market_trade_skipped``.
    Informational (no data changed): ``out_of_order_line_reordered``, ``exch_ts_estimated``
    (spot bookTicker / snapshot without exchange time), ``local_order_inversion`` and
    ``local_order_inversion_max_ns``. An ``.npz`` is loaded as is: ``repairs`` is empty.
    """

    path: str
    format: str
    symbol: str = ""
    n_lines: int = 0
    n_events: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    repairs: dict[str, int] = field(default_factory=dict)
    tick_px_guess: float = math.nan
    lot_qty_guess: float = math.nan
    local_offset_ns: int = 0
    base_latency_ns: int = DEFAULT_BASE_LATENCY_NS
    assumed_feed_latency_ns: int | None = None
    first_exch_ts: int = 0
    last_exch_ts: int = 0
    from_cache: bool = False
    notes: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict:
        d = dict(self.__dict__)
        d["counts"] = dict(sorted(self.counts.items()))
        d["repairs"] = dict(sorted(self.repairs.items()))
        return d


@dataclass
class StageBlock:
    """One parsed block: message arrays (file order) and stage rows (``replay.STAGE_DTYPE``)."""

    m_type: np.ndarray  # i8, MT_*
    m_exch: np.ndarray  # i8
    m_first: np.ndarray  # i8
    m_last: np.ndarray  # i8
    m_prev: np.ndarray  # i8
    rows: np.ndarray  # STAGE_DTYPE; rows["msg"] indexes the message arrays (block-local)


_KIND_OF_MT = np.zeros(4, dtype=np.uint64)
_KIND_OF_MT[rp.MT_DIFF] = DEPTH_EVENT
_KIND_OF_MT[rp.MT_SNAPSHOT] = DEPTH_SNAPSHOT_EVENT
_KIND_OF_MT[rp.MT_TRADE] = TRADE_EVENT
_KIND_OF_MT[rp.MT_BBO] = DEPTH_BBO_EVENT


def assemble_block(
    mt: np.ndarray,
    loc: np.ndarray,
    exch: np.ndarray,
    m_first: np.ndarray,
    m_last: np.ndarray,
    m_prev: np.ndarray,
    n_lv: np.ndarray,
    l_px: np.ndarray,
    l_qty: np.ndarray,
    l_side: np.ndarray,
) -> StageBlock:
    """Build a StageBlock from message arrays and the flat level arrays (``n_lv[k]`` levels of
    message k, in order; ``l_side`` 1 = bid / buyer-aggressor, 2 = ask / seller-aggressor). A
    message without levels gets one placeholder row (``ev = 0``) so its sequence id is checked."""
    mt = np.asarray(mt, dtype=np.int64)
    n_msg = len(mt)
    n_lv = np.asarray(n_lv, dtype=np.int64)
    kind = _KIND_OF_MT[mt] if n_msg else np.empty(0, dtype=np.uint64)
    n_place = np.maximum(n_lv, 1)
    n_rows = int(n_place.sum())
    rows = np.empty(n_rows, dtype=rp.STAGE_DTYPE)
    msg_of_row = np.repeat(np.arange(n_msg, dtype=np.int64), n_place)
    if n_rows == len(l_px):
        rows["px"] = l_px
        rows["qty"] = l_qty
        side = np.asarray(l_side)
        real = None
    else:
        start = np.cumsum(n_place) - n_place
        pos = np.arange(n_rows, dtype=np.int64) - start[msg_of_row]
        real = pos < n_lv[msg_of_row]
        rows["px"] = np.nan
        rows["qty"] = np.nan
        rows["px"][real] = l_px
        rows["qty"][real] = l_qty
        side = np.zeros(n_rows, dtype=np.int8)
        side[real] = l_side
    ev = kind[msg_of_row] | np.where(side == 1, np.uint64(BUY_EVENT), np.uint64(SELL_EVENT))
    if real is not None:
        ev[~real] = 0
    rows["ev"] = ev
    rows["exch_ts"] = np.asarray(exch, dtype=np.int64)[msg_of_row]
    rows["local_ts"] = np.asarray(loc, dtype=np.int64)[msg_of_row]
    rows["msg"] = msg_of_row
    rows["mtype"] = mt[msg_of_row]
    return StageBlock(
        m_type=mt,
        m_exch=np.asarray(exch, dtype=np.int64),
        m_first=np.asarray(m_first, dtype=np.int64),
        m_last=np.asarray(m_last, dtype=np.int64),
        m_prev=np.asarray(m_prev, dtype=np.int64),
        rows=rows,
    )


def select_messages(blk: StageBlock, keep: np.ndarray) -> StageBlock:
    """``blk`` restricted to the messages where ``keep`` is true (rows renumbered)."""
    if keep.all():
        return blk
    new_id = np.cumsum(keep) - 1
    rows = records.compress(blk.rows, keep[blk.rows["msg"]])
    rows["msg"] = new_id[rows["msg"]]
    return StageBlock(
        m_type=blk.m_type[keep],
        m_exch=blk.m_exch[keep],
        m_first=blk.m_first[keep],
        m_last=blk.m_last[keep],
        m_prev=blk.m_prev[keep],
        rows=rows,
    )


# ---------------------------------------------------------------------------------------------
# file access


def open_binary(path: Path) -> IO[bytes]:
    """Open ``path`` for reading, transparently gunzipping (detected by magic bytes)."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a capture file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    if magic == b"\x1f\x8b":
        return _gzip_impl.open(path, "rb")
    return open(path, "rb")


def iter_line_blocks(
    path: Path, block_bytes: int = BLOCK_BYTES
) -> Iterator[tuple[int, list[bytes]]]:
    """Yield ``(first_line_number, lines)`` blocks of whole lines (without newline), 1-based numbers.

    A truncated or corrupt gzip stream raises ``UserError`` naming the file and the last good line.
    """
    for first, block in iter_byte_blocks(path, block_bytes):
        lines = block.split(b"\n")
        if block.endswith(b"\n"):
            lines.pop()
        yield first, lines


def iter_byte_blocks(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, bytes]]:
    """Yield ``(first_line_number, block)``: blocks of whole lines (each ends with a newline except
    possibly the file's last). ``UserError`` on a truncated or corrupt gzip stream, naming the last
    complete line read."""
    line_no = 1
    rest = b""
    piece = min(block_bytes, 256 << 10)  # small reads: a stream error still tells how far we got
    with open_binary(path) as fh:
        eof = False
        while not eof:
            parts = [rest] if rest else []
            got = len(rest)
            # a line longer than a block: read on until its newline (bounded by MAX_LINE_BYTES)
            want = max(block_bytes, len(rest) + piece)
            while got < want:
                try:
                    b = fh.read(piece)
                except _GZ_ERRORS as exc:
                    done = b"".join(parts)
                    n_ok = line_no - 1 + done.count(b"\n")
                    raise UserError(
                        f"{path}: truncated or corrupt gzip stream after line {n_ok} ({exc})"
                    ) from None
                if not b:
                    eof = True
                    break
                parts.append(b)
                got += len(b)
            buf = b"".join(parts)
            if not buf:
                break
            if eof:
                if buf:
                    yield line_no, buf
                break
            cut = buf.rfind(b"\n")
            if cut < 0:
                if len(buf) > MAX_LINE_BYTES:
                    raise UserError(
                        f"{path}:{line_no}: line longer than {MAX_LINE_BYTES >> 20} MiB "
                        "(not a capture line)"
                    )
                rest = buf
                continue
            block = buf[: cut + 1]
            rest = buf[cut + 1 :]
            yield line_no, block
            line_no += block.count(b"\n")


def peek_lines(path: Path, n: int = 5, max_bytes: int = 1 << 20) -> list[bytes]:
    """The first ``n`` non-empty lines (for format detection)."""
    out: list[bytes] = []
    with open_binary(path) as fh:
        try:
            buf = fh.read(max_bytes)
        except _GZ_ERRORS as exc:
            raise UserError(f"{path}: truncated or corrupt gzip stream ({exc})") from None
    for line in buf.split(b"\n"):
        if line.strip():
            out.append(line)
        if len(out) >= n:
            break
    return out


# ---------------------------------------------------------------------------------------------
# guesses


def guess_step(values: np.ndarray, max_decimals: int = 10) -> float:
    """Largest 10^-d * g grid step the positive finite ``values`` lie on (tick / lot guess), or NaN."""
    v = values[np.isfinite(values) & (values > 0)]
    if len(v) == 0:
        return math.nan
    v = np.unique(v)
    vmax = float(v.max())
    # the number of decimals d: smallest d with every value an integer multiple of 10^-d
    d_found = None
    for d in range(0, max_decimals + 1):
        if vmax * 10.0**d > 2**52:
            break
        x = v * 10.0**d
        if np.all(np.abs(x - np.rint(x)) <= 1e-6):
            d_found = d
            break
    if d_found is None:
        return math.nan
    keys = np.rint(v * 10.0**d_found).astype(np.int64)
    g = int(np.gcd.reduce(keys))
    if len(keys) > 1:
        g = int(np.gcd(g, np.gcd.reduce(np.diff(keys))))
    return g / 10.0**d_found


def price_scale(max_px: float) -> float:
    """Power of ten used to key price levels as integers (exact below 2^53)."""
    d = 8
    while d > 0 and max_px * 10.0**d >= 1e15:
        d -= 1
    return 10.0**d


# ---------------------------------------------------------------------------------------------
# pipeline


@dataclass(frozen=True)
class BlockOptions:
    """How the line readers (Binance, Bybit, Tardis) read a file: ``block_bytes`` decompressed per
    block, ``offset_sample_rows`` held back to fix the local-clock offset, the ``base_latency_ns``
    floor after it, and the ``window_ns`` of exchange time within which late lines are reordered."""

    base_latency_ns: int = DEFAULT_BASE_LATENCY_NS
    window_ns: int = DEFAULT_WINDOW_NS
    block_bytes: int = BLOCK_BYTES
    offset_sample_rows: int = OFFSET_SAMPLE_ROWS

    def pipeline(self, stats: ReadStats, seq_mode: int) -> Pipeline:
        """The pipeline a line reader feeds its blocks to."""
        return Pipeline(
            stats,
            seq_mode,
            base_latency_ns=self.base_latency_ns,
            window_ns=self.window_ns,
            offset_sample_rows=self.offset_sample_rows,
        )


class Pipeline:
    """Turns a parser's StageBlocks into ordered, repaired event chunks and fills ``stats``."""

    def __init__(
        self,
        stats: ReadStats,
        seq_mode: int,
        *,
        has_local_time: bool = True,
        base_latency_ns: int = DEFAULT_BASE_LATENCY_NS,
        window_ns: int = DEFAULT_WINDOW_NS,
        offset_sample_rows: int = OFFSET_SAMPLE_ROWS,
    ) -> None:
        self.offset_sample_rows = int(offset_sample_rows)
        self.stats = stats
        self.seq_mode = seq_mode
        self.has_local_time = has_local_time
        self.base_latency_ns = int(base_latency_ns)
        self.window_ns = int(window_ns)
        self.counters = np.zeros(rp.N_COUNTERS, dtype=np.int64)
        self.parser_counters: dict[str, int] = dict.fromkeys(PARSER_COUNTER_NAMES, 0)
        self.seq_state = rp.new_state(0, self.base_latency_ns)
        self.state: np.ndarray | None = None
        self.book: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.scale = 1e8
        self.carry = np.empty(0, dtype=rp.STAGE_DTYPE)
        self.watermark = np.iinfo(np.int64).min
        self.max_exch_seen = np.iinfo(np.int64).min  # over accepted messages (reorder count)
        self.max_exch_processed = np.iinfo(np.int64).min  # over rows already sorted (window cut)
        self.msg_base = 0
        self.kind_counts = np.zeros(256, dtype=np.int64)
        self._tick_sample: list[np.ndarray] = []
        self._lot_sample: list[np.ndarray] = []
        self._sample_rows = 0
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self.time_filter: TimeFilter | None = None  # made on the first block (has_local_time known)

    # -- per block --------------------------------------------------------------------------
    def _check_times(self, blk: StageBlock) -> StageBlock:
        if self.time_filter is None:
            self.time_filter = TimeFilter(self.has_local_time)
        n_msg = len(blk.m_type)
        if n_msg == 0:
            return blk
        # one local time per message: the first row of each (every message has at least one)
        first_row = np.searchsorted(blk.rows["msg"], np.arange(n_msg))
        m_local = blk.rows["local_ts"][first_row]
        keep = self.time_filter.keep(blk.m_exch, m_local)
        for name, n in self.time_filter.counts.items():
            self.parser_counters[name] = n
        return select_messages(blk, keep)

    def _accept(self, blk: StageBlock) -> np.ndarray:
        blk = self._check_times(blk)
        n_msg = len(blk.m_type)
        reason = np.zeros(n_msg, dtype=np.int64)
        sync_diff = np.full(n_msg, -1, dtype=np.int64)
        rp.sequence_check(
            blk.m_type,
            blk.m_first,
            blk.m_last,
            blk.m_prev,
            self.seq_mode,
            self.seq_state,
            self.counters,
            reason,
            sync_diff,
        )
        rows = blk.rows
        # a snapshot is applied no later (in exchange time) than the diff that synced on it
        snaps = np.nonzero(sync_diff >= 0)[0]
        if len(snaps):
            for k in snaps:
                cap = blk.m_exch[sync_diff[k]]
                if blk.m_exch[k] > cap:
                    sel = rows["msg"] == k
                    rows["exch_ts"][sel] = cap
        # count lines that needed reordering (exch time below the running max of earlier lines)
        ok_msg = reason == rp.R_ACCEPT
        m_exch = blk.m_exch[ok_msg]
        if len(m_exch):
            run_max = np.maximum.accumulate(np.concatenate(([self.max_exch_seen], m_exch)))[:-1]
            self.parser_counters["out_of_order_line_reordered"] += int((m_exch < run_max).sum())
            self.max_exch_seen = max(self.max_exch_seen, int(m_exch.max()))
        keep = ok_msg[rows["msg"]] & (rows["ev"] != 0)
        return rows if keep.all() else records.compress(rows, keep)

    def _first_block_setup(self, blocks: list[np.ndarray]) -> None:
        offset = 0
        lats = [int((r["local_ts"] - r["exch_ts"]).min()) for r in blocks if len(r)]
        if self.has_local_time and lats:
            min_lat = min(lats)
            if min_lat < 0:
                offset = self.base_latency_ns - min_lat
        self.stats.local_offset_ns = offset
        max_px = 1.0
        for r in blocks:
            px = r["px"][np.isfinite(r["px"])]
            if len(px):
                max_px = max(max_px, float(px.max()))
        self.scale = price_scale(max_px)
        self.state = rp.new_state(offset, self.base_latency_ns)
        self.book = rp.new_books()

    def _sample_guesses(self, events: np.ndarray) -> None:
        if self._sample_rows > 50_000 or len(events) == 0:
            return
        ev = events[:50_000]
        self._sample_rows += len(ev)
        self._tick_sample.append(ev["px"][ev["ival"] != rp.REPAIR_IVAL])
        qty = ev["qty"]
        kinds = ev["ev"] & KIND_MASK
        self._lot_sample.append(qty[(kinds == TRADE_EVENT) | (qty > 0)])

    def feed(self, blk: StageBlock, last: bool = False) -> list[np.ndarray]:
        """Events made ready by this block (possibly none), as a list of arrays."""
        rows = self._accept(blk)
        # message ids global so the tie-break (file order) works across blocks
        if len(rows):
            rows["msg"] += self.msg_base
        self.msg_base += len(blk.m_type)
        if self.state is None:
            # the clock offset is fixed from the first OFFSET_SAMPLE_ROWS rows (the whole file for
            # captures of usual size, so it equals hftbacktest's global minimum)
            self._pending.append(rows)
            self._pending_rows += len(rows)
            if self._pending_rows < self.offset_sample_rows and not last:
                return []
            pending = self._pending
            self._pending = []
            self._pending_rows = 0
            self._first_block_setup(pending)
            outs = []
            n_pending = len(pending)
            for k in range(n_pending):
                r = pending[k]
                pending[k] = None  # free each held-back block once processed
                o = self._process(r, last and k == n_pending - 1)
                del r
                if len(o):
                    outs.append(o)
            return outs
        out = self._process(rows, last)
        return [out] if len(out) else []

    def _process(self, rows: np.ndarray, last: bool) -> np.ndarray:
        # lines older than what is already emitted cannot be placed: drop (counted per message)
        late = rows["exch_ts"] < self.watermark
        if late.any():
            self.parser_counters["out_of_order_line_dropped"] += int(
                len(np.unique(rows["msg"][late]))
            )
            rows = records.compress(rows, ~late)
        if len(rows):
            self.max_exch_processed = max(self.max_exch_processed, int(rows["exch_ts"].max()))
        buf = records.concat((self.carry, rows)) if len(self.carry) else rows
        # stable sort on (exch_ts, snapshot first); ties keep file order (carry rows precede new
        # rows and both are in message order). exch_ts * 2 fits int64 for any epoch-ns time.
        if not rp.is_ordered(buf):
            key = buf["exch_ts"] * 2 + (buf["mtype"] != rp.MT_SNAPSHOT)
            buf = records.take(buf, np.argsort(key, kind="stable"))
        if last:
            emit, self.carry = buf, np.empty(0, dtype=rp.STAGE_DTYPE)
        else:
            cut = self.max_exch_processed - self.window_ns
            n_emit = int(np.searchsorted(buf["exch_ts"], cut, side="right"))
            # never split a message across the cut
            while 0 < n_emit < len(buf) and buf["msg"][n_emit] == buf["msg"][n_emit - 1]:
                n_emit -= 1
            emit, self.carry = buf[:n_emit], buf[n_emit:]
            if n_emit:
                self.watermark = max(self.watermark, int(emit["exch_ts"][-1]))
        if len(emit) == 0:
            return np.empty(0, dtype=EVENT_DTYPE)
        events, *book = rp.replay(emit, self.scale, self.state, *self.book, self.counters)
        self.book = tuple(book)
        self.kind_counts += np.bincount((events["ev"] & KIND_MASK).astype(np.int64), minlength=256)
        if len(events):
            if self.stats.n_events == 0:
                self.stats.first_exch_ts = int(events["exch_ts"][0])
            self.stats.last_exch_ts = int(events["exch_ts"][-1])
            self.stats.n_events += len(events)
        self._sample_guesses(events)
        return events

    def finish(self) -> None:
        st = self.stats
        reps = {name: int(self.counters[k]) for k, name in enumerate(rp.COUNTER_NAMES)}
        reps.update(self.parser_counters)
        st.repairs = dict(sorted(reps.items()))
        st.counts = {name: int(self.kind_counts[k]) for k, name in KIND_NAMES.items()}
        if self._tick_sample:
            st.tick_px_guess = guess_step(np.concatenate(self._tick_sample))
            st.lot_qty_guess = guess_step(np.concatenate(self._lot_sample))
        st.base_latency_ns = self.base_latency_ns


def short_line(line: bytes) -> str:
    """The first 60 characters of an input line, for an error message naming it."""
    s = line[:60].decode("utf-8", "replace")
    return s + ("..." if len(line) > 60 else "")


def drain(outs: list[np.ndarray]) -> Iterator[np.ndarray]:
    """Yield the arrays of ``outs`` and drop each reference as it goes (bounded memory)."""
    outs.reverse()
    while outs:
        yield outs.pop()


def feed_blocks(pipe: Pipeline, blocks: Iterable[StageBlock]) -> Iterator[np.ndarray]:
    """Feed a reader's stage blocks to ``pipe`` one block behind the parser (so whatever the
    parser learns from a block, e.g. the market or the time stamping, is set before the block
    before it is fed; the last block goes in with ``last=True``), yielding the output chunks."""
    pending = None
    for blk in blocks:
        outs = pipe.feed(pending) if pending is not None else []
        pending = blk
        yield from drain(outs)
    if pending is not None:
        yield from drain(pipe.feed(pending, last=True))


def rechunk(chunks: Iterator[np.ndarray], chunk_events: int) -> Iterator[np.ndarray]:
    """Regroup arrays into chunks of exactly ``chunk_events`` (the last may be shorter; never
    empty). Pieces are copied into a preallocated chunk as they arrive, so at most one chunk plus
    one piece is alive here; a piece already large enough is handed out as views, without a copy."""
    if chunk_events > 16_000_000:  # "everything" (load_events): gather and concatenate once
        pending = [c for c in chunks if len(c)]
        if pending:
            yield records.concat(pending) if len(pending) > 1 else pending[0]
        return
    buf: np.ndarray | None = None
    n = 0
    for c in chunks:
        while len(c):
            if buf is None and len(c) >= chunk_events:
                yield c[:chunk_events]
                c = c[chunk_events:]
                continue
            if buf is None:
                buf = np.empty(chunk_events, dtype=EVENT_DTYPE)
            take = min(len(c), chunk_events - n)
            records.put(buf, n, c[:take])
            n += take
            c = c[take:]
            if n == chunk_events:
                yield buf
                buf, n = None, 0
    if buf is not None and n:
        yield buf[:n]
