"""`mmbot record`: the public stream written as a capture (one Bybit V5 message a line, as received).

The file has a layout the data layer's Bybit reader (``mmbot.data.bybit``) reads: one
``<local receive time ns> <message JSON>`` line per ``orderbook.N.SYMBOL`` snapshot/delta or
``publicTrade.SYMBOL`` message, exactly as received, so a backtest can replay it. The book's sequence is checked as it is recorded; on a gap the stream is resubscribed and the
fresh snapshot is recorded too (the reader resets the book on it).

``StreamRecorder`` owns the line format; ``mmbot record`` and ``mmbot paper|live --record PATH``
(the stream a session traded on) both write through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import aiohttp

from mmbot.errors import UserError
from mmbot.live.bybit import BybitRest, BybitStream, Endpoints, TransportError
from mmbot.live.bybit_msgs import LiveBook, book_topic, trade_topic


class StreamRecorder:
    """Writes received public messages as capture lines: ``<local receive ns> <message JSON>``.

    The data layer's Bybit reader takes the receive time from the prefix, so a backtest of the file
    sees the recording process's real feed latency and message boundaries."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fh = self.path.open("w")
        except OSError as exc:
            raise UserError(f"capture file {self.path}: cannot write ({exc.strerror})") from exc
        self.n_msgs = 0

    def write(self, msg: dict, local_ns: int) -> None:
        self.fh.write(f"{int(local_ns)} {json.dumps(msg, separators=(',', ':'))}\n")
        self.n_msgs += 1

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.close()

    def __enter__(self) -> StreamRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _record(symbol: str, out: Path, eps: Endpoints, duration_s: float) -> int:
    book = LiveBook()
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as http:
        try:
            await BybitRest(http, eps.rest_url, None, timeout_s=10.0).instrument(symbol)
        except TransportError as exc:
            raise UserError(f"exchange at {eps.rest_url} not reachable ({exc})") from exc
        with StreamRecorder(out) as rec:
            stream: BybitStream

            def on_msg(msg: dict, local_ns: int) -> None:
                if str(msg.get("topic", "")).startswith("orderbook.") and book.apply(msg) == "gap":
                    asyncio.get_running_loop().create_task(stream.resubscribe())
                    return
                rec.write(msg, local_ns)

            stream = BybitStream(
                http, eps.public_ws_url, [book_topic(symbol), trade_topic(symbol)], on_msg
            )
            task = asyncio.create_task(stream.run(stop))
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(stop.wait(), duration_s)
            stop.set()
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    if stream.fatal is not None:
        raise stream.fatal
    print(f"recorded {rec.n_msgs} messages to {out}")
    return 0


def record_command(symbol: str, out: Path, eps: Endpoints, duration_s: float) -> int:
    return asyncio.run(_record(symbol, Path(out), eps, duration_s))
