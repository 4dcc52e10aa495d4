"""Bybit V5 public stream files: ``orderbook.N.<SYM>`` snapshot/delta and ``publicTrade.<SYM>``,
as plain JSON lines or as ``<local_ns> <json>`` lines -> stage blocks.

Conventions (as hftbacktest's ``bybit.convert``): exchange time = message ``ts`` (ms) for the book,
each trade's own ``T`` for trades; ``b`` levels -> ``| BUY``, ``a`` -> ``| SELL``; size ``"0"``
deletes; a ``snapshot`` resets the book (``DEPTH_CLEAR | side`` up to the deepest snapshot price,
then ``DEPTH_SNAPSHOT`` levels); trade ``S == "Sell"`` -> ``TRADE | SELL`` (seller aggressed), else
``| BUY``. Sequence: ``data.u`` must grow by one per delta (a gap drops deltas until the next
snapshot; ``u == 1`` comes as a snapshot after a service restart and resets the book too).

Plain JSON lines have no receive time: ``local_ts = exch_ts + feed_latency_ns`` (default
``DEFAULT_FEED_LATENCY_NS`` = 10 ms, a parameter), reported as ``ReadStats.assumed_feed_latency_ns``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson

from mmbot.data import core
from mmbot.data import replay as rp
from mmbot.data.numparse import parse_decimal_strs
from mmbot.data.timecheck import to_ns
from mmbot.errors import UserError

_MS = 1_000_000


class _BybitParser:
    def __init__(self, path: Path, pipe: core.Pipeline, feed_latency_ns: int) -> None:
        self.path = path
        self.pipe = pipe
        self.feed_latency_ns = int(feed_latency_ns)
        self.timestamped: bool | None = None  # decided by the first data line

    def parse_block(self, first_line: int, lines: list[bytes]) -> core.StageBlock:
        out = _Rows()
        for k, line in enumerate(lines):
            if not line or line.isspace():
                continue
            where = f"{self.path}:{first_line + k}"
            local_ns, obj = self._decode(where, line)
            topic = obj.get("topic")
            if not isinstance(topic, str):
                self.pipe.parser_counters["non_market_line_skipped"] += 1
                continue
            try:
                self._message(out, topic, obj, local_ns)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                raise UserError(
                    f"{where}: malformed Bybit message ({type(exc).__name__}: {exc})"
                ) from None
        return out.block()

    def _decode(self, where: str, line: bytes) -> tuple[int | None, dict]:
        """(local receive time or None, the JSON object) of a ``<local_ns> <json>`` or JSON line."""
        body = line
        local_ns = None
        if line[:1] != b"{":
            sp = line.find(b" ")
            try:
                if sp <= 0:
                    raise ValueError
                local_ns = to_ns(int(line[:sp]), 1)
            except ValueError:
                raise UserError(
                    f"{where}: not a Bybit JSON line or '<local_ns> <json>': {core.short_line(line)!r}"
                ) from None
            body = line[sp + 1 :]
        if self.timestamped is None:
            self.timestamped = local_ns is not None
        elif self.timestamped != (local_ns is not None):
            raise UserError(f"{where}: mixes lines with and without a local receive time")
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UserError(f"{where}: broken JSON: {core.short_line(line)!r}") from None
        if type(obj) is not dict:
            raise UserError(f"{where}: JSON is not an object: {core.short_line(line)!r}")
        return local_ns, obj

    def _message(self, out: _Rows, topic: str, obj: dict, local_ns: int | None) -> None:
        """One message's rows: a book snapshot or delta, or the trades of a trade message."""
        data = obj["data"]
        if topic.startswith("orderbook."):
            ts = to_ns(obj["ts"], _MS)
            typ = obj.get("type")
            if typ not in ("snapshot", "delta"):
                raise KeyError(f"type {typ!r}")
            b = data.get("b", [])
            a = data.get("a", [])
            out.add(
                rp.MT_SNAPSHOT if typ == "snapshot" else rp.MT_DIFF,
                ts,
                local_ns if local_ns is not None else ts + self.feed_latency_ns,
                int(data["u"]),
                [x for lv in (*b, *a) for x in (lv[0], lv[1])],
                [1] * len(b) + [2] * len(a),
            )
            if not self.pipe.stats.symbol:
                self.pipe.stats.symbol = str(data.get("s", topic.rsplit(".", 1)[-1]))
        elif topic.startswith("publicTrade."):
            for tr in data:
                ts = to_ns(tr.get("T", obj["ts"]), _MS)
                loc = local_ns if local_ns is not None else ts + self.feed_latency_ns
                side = 2 if tr.get("S") == "Sell" else 1
                out.add(rp.MT_TRADE, ts, loc, 0, [tr["p"], tr["v"]], [side])
            if not self.pipe.stats.symbol:
                self.pipe.stats.symbol = topic.rsplit(".", 1)[-1]
        else:
            self.pipe.parser_counters["unsupported_message_skipped"] += 1


class _Rows:
    """A block's messages as the stage block's columns: one row per message, its levels' decimal
    strings and sides in order."""

    def __init__(self) -> None:
        self.mt: list[int] = []
        self.loc: list[int] = []
        self.exch: list[int] = []
        self.seq: list[int] = []
        self.n_lv: list[int] = []
        self.strs: list[str] = []
        self.sides: list[int] = []

    def add(self, mt: int, exch: int, loc: int, seq: int, strs: list, sides: list[int]) -> None:
        """A message; ``strs`` holds price, quantity, price, quantity... of its levels."""
        self.mt.append(mt)
        self.exch.append(exch)
        self.loc.append(loc)
        self.seq.append(seq)
        self.n_lv.append(len(sides))
        self.strs += strs
        self.sides += sides

    def block(self) -> core.StageBlock:
        vals = parse_decimal_strs(self.strs)
        seq_a = np.asarray(self.seq, dtype=np.int64)
        return core.assemble_block(
            np.asarray(self.mt, dtype=np.int64),
            np.asarray(self.loc, dtype=np.int64),
            np.asarray(self.exch, dtype=np.int64),
            seq_a,
            seq_a,
            np.full(len(seq_a), -1, dtype=np.int64),
            np.asarray(self.n_lv, dtype=np.int64),
            vals[0::2],
            vals[1::2],
            np.asarray(self.sides, dtype=np.int8),
        )


def parse_message(msg: dict, local_ts_ns: int) -> np.ndarray:
    """One Bybit V5 public message (already JSON-decoded) -> ``EVENT_DTYPE`` rows, stateless, with
    the reader's conventions (for the live connector): ``orderbook`` snapshot -> ``DEPTH_CLEAR |
    side`` (px = deepest level) + ``DEPTH_SNAPSHOT`` rows, delta -> ``DEPTH`` rows, ``publicTrade``
    -> ``TRADE`` rows at each trade's ``T``; other topics -> no rows. Sequence checks (``u``) are
    the caller's (they need state). Raises ``UserError`` on a malformed message."""
    from mmbot.events import EVENT_DTYPE

    topic = msg.get("topic") if isinstance(msg, dict) else None
    if not isinstance(topic, str):
        return np.zeros(0, dtype=EVENT_DTYPE)
    try:
        if topic.startswith("orderbook."):
            return _book_rows(msg, local_ts_ns)
        if topic.startswith("publicTrade."):
            return _trade_rows(msg, local_ts_ns)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise UserError(
            f"bybit message on {topic!r}: malformed ({type(exc).__name__}: {exc})"
        ) from None
    return np.zeros(0, dtype=EVENT_DTYPE)


def _book_rows(msg: dict, local_ts_ns: int) -> np.ndarray:
    """An ``orderbook`` snapshot (clear rows first) or delta as event rows."""
    from mmbot import events as ev

    flags = ev.EXCH_EVENT | ev.LOCAL_EVENT
    data = msg["data"]
    exch = int(msg["ts"]) * _MS
    snap = msg.get("type") == "snapshot"
    kind = ev.DEPTH_SNAPSHOT_EVENT if snap else ev.DEPTH_EVENT
    b = data.get("b", [])
    a = data.get("a", [])
    vals = parse_decimal_strs([x for lv in b for x in lv[:2]] + [x for lv in a for x in lv[:2]])
    px, qty = vals[0::2], vals[1::2]
    clears = []  # (side, deepest price) of each side a snapshot resets
    if snap and b:
        clears.append((ev.BUY_EVENT, px[: len(b)].min()))
    if snap and a:
        clears.append((ev.SELL_EVENT, px[len(b) :].max()))
    out = np.zeros(len(clears) + len(px), dtype=ev.EVENT_DTYPE)
    for k, (side, deepest_px) in enumerate(clears):
        out[k] = (ev.DEPTH_CLEAR_EVENT | side | flags, exch, local_ts_ns, deepest_px, 0, 0, 0, 0)
    body = out[len(clears) :]
    body["ev"][: len(b)] = kind | ev.BUY_EVENT | flags
    body["ev"][len(b) :] = kind | ev.SELL_EVENT | flags
    body["exch_ts"] = exch
    body["local_ts"] = local_ts_ns
    body["px"] = px
    body["qty"] = qty
    return out


def _trade_rows(msg: dict, local_ts_ns: int) -> np.ndarray:
    """A ``publicTrade`` message's trades as event rows, each at its own ``T``."""
    from mmbot import events as ev

    flags = ev.EXCH_EVENT | ev.LOCAL_EVENT
    trades = msg["data"]
    out = np.zeros(len(trades), dtype=ev.EVENT_DTYPE)
    for k, t in enumerate(trades):
        side = ev.SELL_EVENT if t.get("S") == "Sell" else ev.BUY_EVENT
        out[k] = (
            ev.TRADE_EVENT | side | flags,
            int(t.get("T", msg.get("ts"))) * _MS,
            local_ts_ns,
            float(t["p"]),
            float(t["v"]),
            0,
            0,
            0.0,
        )
    return out


def iter_bybit(
    path: Path,
    stats: core.ReadStats,
    opts: core.BlockOptions,
    *,
    feed_latency_ns: int,
) -> Iterator[np.ndarray]:
    """Event chunks of a Bybit V5 file; fills ``stats`` when exhausted."""
    pipe = opts.pipeline(stats, rp.SEQ_BYBIT)
    parser = _BybitParser(path, pipe, feed_latency_ns)
    n_lines = 0

    def blocks() -> Iterator[core.StageBlock]:
        nonlocal n_lines
        for k, (first_line, lines) in enumerate(core.iter_line_blocks(path, opts.block_bytes)):
            blk = parser.parse_block(first_line, lines)
            n_lines = first_line + len(lines) - 1
            if k == 0 and parser.timestamped is not None:
                pipe.has_local_time = bool(parser.timestamped)
            yield blk

    yield from core.feed_blocks(pipe, blocks())
    stats.n_lines = n_lines
    if parser.timestamped is False:
        stats.assumed_feed_latency_ns = int(feed_latency_ns)
        stats.notes.append(
            f"no local receive time in the file: local_ts = exch_ts + {feed_latency_ns / 1e6:g} ms (assumed)"
        )
    pipe.finish()
