"""Tardis.dev CSV files (optionally gzipped): ``incremental_book_L2`` and ``trades`` -> stage blocks.

Columns (Tardis docs): ``exchange,symbol,timestamp,local_timestamp,...``, times in microseconds;
``timestamp`` is the exchange time, ``local_timestamp`` the receive time.

- ``incremental_book_L2``: ``is_snapshot,side,price,amount``; rows sharing (timestamp,
  local_timestamp, is_snapshot) form one message. A snapshot message resets the book
  (``DEPTH_CLEAR | side`` + ``DEPTH_SNAPSHOT``); ``amount`` 0 deletes a level. Tardis carries no
  update ids, so no sequence check is possible.
- ``trades``: ``id,side,price,amount``; ``side`` is the aggressor (``buy`` -> ``TRADE | BUY``,
  ``sell`` -> ``| SELL``, ``unknown`` -> no side flag).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mmbot.data import core
from mmbot.data import replay as rp
from mmbot.data.timecheck import ns_column
from mmbot.errors import UserError
from mmbot.events import TRADE_EVENT

_US = 1000


def _col(path: Path, first_line: int, values: list[bytes], dtype, name: str) -> np.ndarray:
    try:
        return np.array(values, dtype="S").astype(dtype)
    except (ValueError, OverflowError):
        for k, v in enumerate(values):
            try:
                np.array([v], dtype="S").astype(dtype)
            except (ValueError, OverflowError):
                raise UserError(f"{path}:{first_line + k}: bad {name} value {v[:30]!r}") from None
        raise


class _TardisParser:
    def __init__(self, path: Path, book: bool) -> None:
        self.path = path
        self.book = book
        self.cols: dict[str, int] | None = None
        self.symbol = ""

    def parse(self, first_line: int, lines: list[bytes]) -> core.StageBlock:
        if self.cols is None:
            header = lines[0].decode("utf-8", "replace").strip().split(",")
            self.cols = {c: k for k, c in enumerate(header)}
            lines = lines[1:]
            first_line += 1
        c = self.cols
        need = ["timestamp", "local_timestamp", "side", "price", "amount"] + (
            ["is_snapshot"] if self.book else []
        )
        for name in need:
            if name not in c:
                raise UserError(f"{self.path}:1: Tardis CSV lacks column {name!r}")
        lines = [ln for ln in lines if ln.strip()]
        ncol = len(c)
        parts = [ln.rstrip(b"\r").split(b",") for ln in lines]
        for k, p in enumerate(parts):
            if len(p) != ncol:
                raise UserError(
                    f"{self.path}:{first_line + k}: expected {ncol} CSV fields, got {len(p)}"
                )
        cols = list(zip(*parts, strict=True)) if parts else [()] * ncol
        n = len(parts)
        if n and not self.symbol and "symbol" in c:
            self.symbol = parts[0][c["symbol"]].decode("utf-8", "replace")
        exch = ns_column(
            _col(self.path, first_line, list(cols[c["timestamp"]]), np.int64, "timestamp"), _US
        )
        loc = ns_column(
            _col(
                self.path, first_line, list(cols[c["local_timestamp"]]), np.int64, "local_timestamp"
            ),
            _US,
        )
        px = _col(self.path, first_line, list(cols[c["price"]]), np.float64, "price")
        qty = _col(self.path, first_line, list(cols[c["amount"]]), np.float64, "amount")
        side_raw = np.array(cols[c["side"]], dtype="S8") if n else np.empty(0, dtype="S8")
        side = np.where(
            (side_raw == b"bid") | (side_raw == b"buy"),
            1,
            np.where((side_raw == b"ask") | (side_raw == b"sell"), 2, 0),
        ).astype(np.int8)
        if self.book:
            snap = (
                np.array(cols[c["is_snapshot"]], dtype="S5") == b"true" if n else np.zeros(0, bool)
            )
            if np.any(side == 0):
                k = int(np.nonzero(side == 0)[0][0])
                raise UserError(f"{self.path}:{first_line + k}: book side must be bid or ask")
            newmsg = np.ones(n, dtype=bool)
            if n > 1:
                newmsg[1:] = (
                    (exch[1:] != exch[:-1]) | (loc[1:] != loc[:-1]) | (snap[1:] != snap[:-1])
                )
            starts = np.nonzero(newmsg)[0]
            n_lv = np.diff(np.append(starts, n))
            mt = np.where(snap[starts], rp.MT_SNAPSHOT, rp.MT_DIFF)
            m_exch = exch[starts]
            m_loc = loc[starts]
        else:
            starts = np.arange(n)
            n_lv = np.ones(n, dtype=np.int64)
            mt = np.full(n, rp.MT_TRADE)
            m_exch, m_loc = exch, loc
        z = np.zeros(len(starts), dtype=np.int64)
        blk = core.assemble_block(mt, m_loc, m_exch, z, z, z - 1, n_lv, px, qty, side)
        if not self.book:
            # unknown aggressor: no side flag
            unk = side == 0
            if unk.any():
                blk.rows["ev"][unk] = TRADE_EVENT
        return blk


def _group_key(line: bytes) -> tuple[bytes, ...]:
    p = line.split(b",")
    return (p[2], p[3], p[4]) if len(p) > 4 else (line,)


def iter_tardis(
    path: Path,
    stats: core.ReadStats,
    opts: core.BlockOptions,
) -> Iterator[np.ndarray]:
    book = stats.format == "tardis-book"
    pipe = opts.pipeline(stats, rp.SEQ_NONE)
    parser = _TardisParser(path, book)
    pending = None
    carry: list[bytes] = []
    carry_first = 1
    n_lines = 0
    for first_line, lines in core.iter_line_blocks(path, opts.block_bytes):
        n_lines = first_line + len(lines) - 1
        if carry:
            lines = carry + lines
            first_line = carry_first
        carry = []
        while lines and not lines[-1].strip():  # trailing blank lines carry no rows
            lines.pop()
        start = 1 if parser.cols is None else 0  # the header line
        if book and len(lines) > start:
            # hold the last message's rows back for the next block: a snapshot must not be split
            key = _group_key(lines[-1])
            cut = len(lines) - 1
            while cut > start and _group_key(lines[cut - 1]) == key:
                cut -= 1
            carry, carry_first, lines = lines[cut:], first_line + cut, lines[:cut]
            if len(lines) <= start:  # only the header (or nothing) before the held-back rows
                carry, carry_first, lines = lines + carry, first_line, []
        if not lines:
            continue
        blk = parser.parse(first_line, lines)
        outs = pipe.feed(pending) if pending is not None else []
        pending = blk
        yield from core.drain(outs)
    if carry:
        blk2 = parser.parse(carry_first, carry)
        outs = pipe.feed(pending) if pending is not None else []
        pending = blk2
        yield from core.drain(outs)
    if pending is not None:
        yield from core.drain(pipe.feed(pending, last=True))
    stats.n_lines = n_lines
    stats.symbol = parser.symbol
    pipe.finish()
