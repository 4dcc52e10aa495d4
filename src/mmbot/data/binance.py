"""Binance raw captures (USD-M futures and spot): ``<local_ns> <json>`` lines -> stage blocks.

Each line is a combined-stream message ``{"stream": ..., "data": {...}}`` (or a bare stream
message), or the REST depth snapshot (``lastUpdateId``, ``bids``, ``asks``). Conventions follow
hftbacktest's ``binancefutures.convert``:

- exchange time = ``T`` (transaction time) when present, else ``E`` (event time), in ms -> ns;
- depth diff levels -> ``DEPTH_EVENT | BUY`` (bids) / ``| SELL`` (asks), qty 0 deletes the level;
- ``trade`` -> ``TRADE_EVENT | SELL`` when ``m`` (buyer is maker, so the seller aggressed) else
  ``| BUY``; futures trades with ``X`` other than ``MARKET`` (insurance fund, ADL) are skipped;
- snapshot -> ``DEPTH_CLEAR | side`` (px = deepest level) then ``DEPTH_SNAPSHOT | side`` levels;
- ``bookTicker`` -> two ``DEPTH_BBO_EVENT`` rows (bid ``| BUY``, ask ``| SELL``); hftbacktest
  leaves it out by default, mmbot keeps it (the book's touch is updated by it).

Spot ``bookTicker`` and the spot REST snapshot carry no exchange time: it is estimated as
``local_ts - (feed latency of the latest time-stamped line)`` and counted as ``exch_ts_estimated``.
Futures use the ``pu`` continuity check, spot ``U == previous u + 1``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mmbot.data import binance_scan as bs
from mmbot.data import core
from mmbot.data import replay as rp
from mmbot.data.readahead import map_ahead
from mmbot.errors import UserError

_MS = 1_000_000
_NO_TS = np.iinfo(np.int64).min


def _line_of(block: bytes, idx: int) -> bytes:
    lines = block.split(b"\n", idx + 1)
    return lines[idx] if idx < len(lines) else b""


class _BinanceParser:
    def __init__(self, path: Path, pipeline: core.Pipeline) -> None:
        self.path = path
        self.pipe = pipeline
        self.last_lat_ns: int | None = None  # feed latency of the latest time-stamped line
        self.market: str = ""  # "usdm" | "spot" once known
        self.lines_in_block = 0

    def parse_block(
        self, first_line: int, block: bytes, scanned: tuple | None = None
    ) -> core.StageBlock:
        """The StageBlock of ``block``; ``scanned`` is its ``scan_block`` result if already made."""
        if scanned is None:
            scanned = scan(block)
        (
            m_type,
            m_local,
            m_exch,
            m_first,
            m_last,
            m_prev,
            m_nb,
            m_na,
            m_status,
            l_px,
            l_qty,
            l_side,
            err,
            err_idx,
            sym_s,
            sym_e,
            market,
        ) = scanned
        self.lines_in_block = int(err_idx)
        if err != bs.ERR_NONE:
            line = _line_of(block, int(err_idx))
            where = f"{self.path}:{first_line + int(err_idx)}"
            if err == bs.ERR_LOCAL_TS:
                raise UserError(
                    f"{where}: not a '<local_ns> <json>' Binance line: {core.short_line(line)!r}"
                )
            if err == bs.ERR_JSON:
                raise UserError(f"{where}: broken JSON: {core.short_line(line)!r}")
            raise UserError(
                f"{where}: Binance message lacks required fields: {core.short_line(line)!r}"
            )
        pc = self.pipe.parser_counters
        if len(m_status):
            cnt = np.bincount(m_status, minlength=4)
            pc["non_market_line_skipped"] += int(cnt[bs.ST_SKIP_NONMARKET])
            pc["unsupported_message_skipped"] += int(cnt[bs.ST_SKIP_UNSUPPORTED])
            pc["non_market_trade_skipped"] += int(cnt[bs.ST_SKIP_NONMARKET_TRADE])
        if sym_s >= 0 and not self.pipe.stats.symbol:
            self.pipe.stats.symbol = block[sym_s:sym_e].decode("utf-8", "replace")
        if market and not self.market:
            self.market = "usdm" if market == 1 else "spot"
        keep = m_status == bs.ST_OK
        if not keep.all():
            # drop skipped messages (they have no levels)
            m_type, m_local, m_exch, m_first, m_last, m_prev, m_nb, m_na = (
                a[keep] for a in (m_type, m_local, m_exch, m_first, m_last, m_prev, m_nb, m_na)
            )
        return self._assemble(
            m_type, m_local, m_exch, m_first, m_last, m_prev, m_nb, m_na, l_px, l_qty, l_side
        )

    def _assemble(
        self, mt, loc, exch, m_first, m_last, m_prev, nb, na, l_px, l_qty, l_side
    ) -> core.StageBlock:
        n_msg = len(mt)
        # estimate missing exchange times from the latest time-stamped line's feed latency
        unknown = exch == _NO_TS
        if unknown.any():
            self.pipe.parser_counters["exch_ts_estimated"] += int(unknown.sum())
            lat = np.where(unknown, 0, loc - np.where(unknown, 0, exch))
            idx = np.where(~unknown, np.arange(n_msg), -1)
            idx = np.maximum.accumulate(idx)
            if self.last_lat_ns is None:
                known = np.nonzero(~unknown)[0]
                self.last_lat_ns = int(lat[known[0]]) if len(known) else 0
            est_lat = np.where(idx >= 0, lat[np.maximum(idx, 0)], self.last_lat_ns)
            exch = np.where(unknown, loc - est_lat, exch)
        if n_msg and (~unknown).any():
            self.last_lat_ns = int((loc - exch)[np.nonzero(~unknown)[0][-1]])
        return core.assemble_block(
            mt, loc, exch, m_first, m_last, m_prev, nb + na, l_px, l_qty, l_side
        )


def scan(block: bytes) -> tuple:
    """``binance_scan.scan_block`` of a block of whole lines (pure: no parser state)."""
    return bs.scan_block(np.frombuffer(block, dtype=np.uint8), bs._POW10)


def _scanned(numbered_block: tuple[int, bytes]) -> tuple[int, bytes, tuple]:
    first_line, block = numbered_block
    return first_line, block, scan(block)


def iter_binance(
    path: Path,
    stats: core.ReadStats,
    opts: core.BlockOptions,
    *,
    spot: bool | None = None,
) -> Iterator[np.ndarray]:
    """Event chunks of a Binance raw capture; fills ``stats`` when exhausted."""
    seq_mode = rp.SEQ_BINANCE_SPOT if spot else rp.SEQ_BINANCE_FUT
    pipe = opts.pipeline(stats, seq_mode)
    parser = _BinanceParser(path, pipe)
    n_lines = 0

    def blocks() -> Iterator[core.StageBlock]:
        nonlocal n_lines, spot
        # the next blocks are scanned on worker threads (GIL released) while this one is fed
        raw = core.iter_byte_blocks(path, opts.block_bytes)
        for first_line, block, scanned in map_ahead(_scanned, raw):
            blk = parser.parse_block(first_line, block, scanned)
            n_lines = first_line + parser.lines_in_block - 1
            if spot is None and parser.market:
                # futures diffs carry "pu"; spot ones do not
                pipe.seq_mode = (
                    rp.SEQ_BINANCE_SPOT if parser.market == "spot" else rp.SEQ_BINANCE_FUT
                )
                stats.format = f"binance-{parser.market}"
                spot = parser.market == "spot"
            yield blk

    yield from core.feed_blocks(pipe, blocks())
    stats.n_lines = n_lines
    pipe.finish()
