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
import orjson

from mmbot.data import replay as rp
from mmbot.data.core import Pipeline, ReadStats, StageBlock, iter_line_blocks
from mmbot.data.numparse import parse_decimal_strs
from mmbot.errors import UserError
from mmbot.events import BUY_EVENT, SELL_EVENT

_MS = 1_000_000
_NO_TS = np.iinfo(np.int64).min


def _short(line: bytes) -> str:
    s = line[:60].decode("utf-8", "replace")
    return s + ("..." if len(line) > 60 else "")


class _BinanceParser:
    def __init__(self, path: Path, pipeline: Pipeline) -> None:
        self.path = path
        self.pipe = pipeline
        self.last_lat_ns: int | None = None  # feed latency of the latest time-stamped line
        self.market: str = ""  # "usdm" | "spot" once known

    def parse_block(self, first_line: int, lines: list[bytes]) -> StageBlock:
        loads = orjson.loads
        m_type: list[int] = []
        m_local: list[int] = []
        m_exch: list[int] = []
        m_first: list[int] = []
        m_last: list[int] = []
        m_prev: list[int] = []
        m_kind: list[int] = []
        m_nb: list[int] = []
        m_na: list[int] = []
        strs: list[str] = []  # flat px, qty, px, qty, ...
        pc = self.pipe.parser_counters
        append_strs = strs.extend
        for k, line in enumerate(lines):
            if not line or line.isspace():
                continue
            sp = line.find(b" ")
            try:
                if sp <= 0:
                    raise ValueError
                local_ns = int(line[:sp])
                obj = loads(line[sp + 1 :])
            except (ValueError, orjson.JSONDecodeError):
                raise UserError(
                    f"{self.path}:{first_line + k}: not a '<local_ns> <json>' Binance line: {_short(line)!r}"
                ) from None
            if type(obj) is not dict:
                raise UserError(f"{self.path}:{first_line + k}: JSON is not an object: {_short(line)!r}")
            data = obj.get("data")
            if data is None:
                if "lastUpdateId" in obj:
                    data = obj
                elif "e" in obj:
                    data = obj
                else:  # subscription acks, error objects, ...
                    pc["non_market_line_skipped"] += 1
                    continue
            try:
                e = data.get("e")
                if e == "depthUpdate":
                    b = data["b"]
                    a = data["a"]
                    m_type.append(rp.MT_DIFF)
                    m_exch.append(data["T"] * _MS if "T" in data else data["E"] * _MS)
                    m_first.append(data["U"])
                    m_last.append(data["u"])
                    if "pu" in data:
                        m_prev.append(data["pu"])
                        self.market = "usdm"
                    else:
                        m_prev.append(-1)
                        self.market = self.market or "spot"
                    m_kind.append(rp.DEPTH_EVENT)
                    m_nb.append(len(b))
                    m_na.append(len(a))
                    for lv in b:
                        append_strs(lv)
                    for lv in a:
                        append_strs(lv)
                elif e == "bookTicker" or (e is None and "B" in data and "A" in data):
                    m_type.append(rp.MT_BBO)
                    if "T" in data:
                        m_exch.append(data["T"] * _MS)
                    elif "E" in data:
                        m_exch.append(data["E"] * _MS)
                    else:
                        m_exch.append(_NO_TS)
                    m_first.append(0)
                    m_last.append(0)
                    m_prev.append(-1)
                    m_kind.append(rp.DEPTH_BBO_EVENT)
                    m_nb.append(1)
                    m_na.append(1)
                    append_strs((data["b"], data["B"], data["a"], data["A"]))
                elif e == "trade":
                    if data.get("X", "MARKET") != "MARKET":
                        pc["non_market_trade_skipped"] += 1
                        continue
                    m_type.append(rp.MT_TRADE)
                    m_exch.append(data["T"] * _MS if "T" in data else data["E"] * _MS)
                    m_first.append(0)
                    m_last.append(0)
                    m_prev.append(-1)
                    m_kind.append(rp.TRADE_EVENT)
                    if data["m"]:  # buyer is the maker: the seller aggressed
                        m_nb.append(0)
                        m_na.append(1)
                    else:
                        m_nb.append(1)
                        m_na.append(0)
                    append_strs((data["p"], data["q"]))
                elif "lastUpdateId" in data:
                    b = data["bids"]
                    a = data["asks"]
                    m_type.append(rp.MT_SNAPSHOT)
                    if "T" in data:
                        m_exch.append(data["T"] * _MS)
                    elif "E" in data:
                        m_exch.append(data["E"] * _MS)
                    else:
                        m_exch.append(_NO_TS)
                    m_first.append(data["lastUpdateId"])
                    m_last.append(data["lastUpdateId"])
                    m_prev.append(-1)
                    m_kind.append(rp.DEPTH_SNAPSHOT_EVENT)
                    m_nb.append(len(b))
                    m_na.append(len(a))
                    for lv in b:
                        append_strs(lv)
                    for lv in a:
                        append_strs(lv)
                else:
                    pc["unsupported_message_skipped"] += 1
                    continue
                if not self.pipe.stats.symbol and "s" in data:
                    self.pipe.stats.symbol = str(data["s"])
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                # a partially appended message would misalign the arrays: report, don't guess
                raise UserError(
                    f"{self.path}:{first_line + k}: malformed Binance message ({type(exc).__name__}: {exc})"
                ) from None
            m_local.append(local_ns)
        return self._assemble(m_type, m_local, m_exch, m_first, m_last, m_prev, m_kind, m_nb, m_na, strs)

    def _assemble(self, m_type, m_local, m_exch, m_first, m_last, m_prev, m_kind, m_nb, m_na, strs) -> StageBlock:
        n_msg = len(m_type)
        mt = np.asarray(m_type, dtype=np.int64)
        loc = np.asarray(m_local, dtype=np.int64)
        exch = np.asarray(m_exch, dtype=np.int64)
        nb = np.asarray(m_nb, dtype=np.int64)
        na = np.asarray(m_na, dtype=np.int64)
        kind = np.asarray(m_kind, dtype=np.uint64)
        # estimate missing exchange times from the latest time-stamped line's feed latency
        unknown = exch == _NO_TS
        if unknown.any():
            self.pipe.parser_counters["exch_ts_estimated"] += int(unknown.sum())
            lat = np.where(unknown, 0, loc - exch)
            idx = np.where(~unknown, np.arange(n_msg), -1)
            idx = np.maximum.accumulate(idx) if n_msg else idx
            if self.last_lat_ns is None:
                known = np.nonzero(~unknown)[0]
                self.last_lat_ns = int(lat[known[0]]) if len(known) else 0
            est_lat = np.where(idx >= 0, lat[np.maximum(idx, 0)], self.last_lat_ns)
            exch = np.where(unknown, loc - est_lat, exch)
        if n_msg and (~unknown).any():
            self.last_lat_ns = int((loc - exch)[np.nonzero(~unknown)[0][-1]])
        # rows: nb bid-side rows then na ask-side rows per message; empty messages get one placeholder
        n_rows_msg = nb + na
        n_place = np.maximum(n_rows_msg, 1)
        n_rows = int(n_place.sum())
        rows = np.empty(n_rows, dtype=rp.STAGE_DTYPE)
        msg_of_row = np.repeat(np.arange(n_msg, dtype=np.int64), n_place)
        start = np.cumsum(n_place) - n_place
        pos = np.arange(n_rows, dtype=np.int64) - start[msg_of_row]
        is_bid = pos < nb[msg_of_row]
        ev = kind[msg_of_row] | np.where(is_bid, np.uint64(BUY_EVENT), np.uint64(SELL_EVENT))
        real = pos < n_rows_msg[msg_of_row]
        ev[~real] = 0
        rows["ev"] = ev
        rows["exch_ts"] = exch[msg_of_row]
        rows["local_ts"] = loc[msg_of_row]
        rows["msg"] = msg_of_row
        rows["mtype"] = mt[msg_of_row]
        vals = parse_decimal_strs(strs)
        rows["px"] = np.nan
        rows["qty"] = np.nan
        if len(vals):
            rows["px"][real] = vals[0::2]
            rows["qty"][real] = vals[1::2]
        return StageBlock(
            m_type=mt,
            m_exch=exch,
            m_first=np.asarray(m_first, dtype=np.int64),
            m_last=np.asarray(m_last, dtype=np.int64),
            m_prev=np.asarray(m_prev, dtype=np.int64),
            rows=rows,
        )


def iter_binance(
    path: Path,
    stats: ReadStats,
    *,
    base_latency_ns: int,
    window_ns: int,
    block_bytes: int,
    spot: bool | None = None,
) -> Iterator[np.ndarray]:
    """Event chunks of a Binance raw capture; fills ``stats`` when exhausted."""
    seq_mode = rp.SEQ_BINANCE_SPOT if spot else rp.SEQ_BINANCE_FUT
    pipe = Pipeline(stats, seq_mode, base_latency_ns=base_latency_ns, window_ns=window_ns)
    parser = _BinanceParser(path, pipe)
    n_lines = 0
    pending = None
    for first_line, lines in iter_line_blocks(path, block_bytes):
        blk = parser.parse_block(first_line, lines)
        n_lines = first_line + len(lines) - 1
        if spot is None and parser.market:
            # futures diffs carry "pu"; spot ones do not
            pipe.seq_mode = rp.SEQ_BINANCE_SPOT if parser.market == "spot" else rp.SEQ_BINANCE_FUT
            stats.format = f"binance-{parser.market}"
            spot = parser.market == "spot"
        if pending is not None:
            yield pipe.feed(pending)
        pending = blk
    if pending is not None:
        yield pipe.feed(pending, last=True)
    stats.n_lines = n_lines
    pipe.finish()
