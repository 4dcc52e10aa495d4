"""Bybit V5 adapter: signed REST (orders, queries) and websocket streams with reconnect.

Hand-written on aiohttp rather than a client library, because the endpoints must be pointable at the
loopback emulator: pybit 5.x builds its URLs as ``https://api{-testnet}.{domain}.{tld}`` and
``wss://stream….{domain}.com`` (scheme and host shape fixed, so no ``http://127.0.0.1:PORT``), and is
thread-based; ccxt can override ``urls`` but its Bybit class first loads markets/currencies/fee
endpoints the emulator would also have to serve, and it is a large dependency not in the environment.
The subset used here is small (7 REST paths, 2 sockets), and the signing is checked by the emulator.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp

from mmbot.errors import UserError
from mmbot.live.signing import DEFAULT_RECV_WINDOW_MS, ApiKeys, rest_headers, ws_auth_args

log = logging.getLogger("mmbot.live")


@dataclass(frozen=True)
class Endpoints:
    rest_url: str
    public_ws_url: str
    private_ws_url: str


MAINNET = Endpoints(
    "https://api.bybit.com",
    "wss://stream.bybit.com/v5/public/linear",
    "wss://stream.bybit.com/v5/private",
)
TESTNET = Endpoints(
    "https://api-testnet.bybit.com",
    "wss://stream-testnet.bybit.com/v5/public/linear",
    "wss://stream-testnet.bybit.com/v5/private",
)


def endpoints_at(base_url: str) -> Endpoints:
    """All three endpoints on one host (the emulator): http://H:P -> ws://H:P/v5/..."""
    base = base_url.rstrip("/")
    ws = "ws" + base[4:] if base.startswith("http") else base
    return Endpoints(base, f"{ws}/v5/public/linear", f"{ws}/v5/private")


class BybitError(Exception):
    """The exchange answered with a non-zero retCode (the request was processed and refused)."""

    def __init__(self, ret_code: int, ret_msg: str, path: str):
        super().__init__(f"{path}: retCode {ret_code} {ret_msg}")
        self.ret_code = ret_code
        self.ret_msg = ret_msg


class RateLimited(BybitError):
    """retCode 10006 (or HTTP 403/429 rate answers): not processed; slow down and retry later.
    ``reset_ms``: the exchange's ``X-Bapi-Limit-Reset-Timestamp`` (server ms when the limit frees),
    or None when the answer did not say."""

    def __init__(self, ret_code: int, ret_msg: str, path: str, reset_ms: int | None = None):
        super().__init__(ret_code, ret_msg, path)
        self.reset_ms = reset_ms


def _reset_ms(headers) -> int | None:
    v = headers.get("X-Bapi-Limit-Reset-Timestamp", "")
    return int(v) if v.isdigit() else None


class TransportError(Exception):
    """5xx, timeout or connection failure: the outcome of the request is UNKNOWN."""


AUTH_CODES = {10003, 10004, 10005, 33004}


class BybitRest:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        keys: ApiKeys | None,
        timeout_s: float = 2.0,
        recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
    ):
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.keys = keys
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.recv_window_ms = recv_window_ms
        self.time_offset_ms = (
            0  # server - local, from /v5/market/time; keeps signatures inside recv_window
        )
        self.latencies_ms: list[float] = []
        self.on_latency: Callable[[str, float], None] | None = None
        self.n_transport_errors = 0  # any path: 5xx, timeouts, connection failures
        self.n_rate_limited = 0

    async def _request(
        self, method: str, path: str, params: dict | None = None, signed: bool = True
    ) -> dict:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        url = self.base_url + path
        headers: dict[str, str] = {}
        body = ""
        if method == "GET":
            qs = urlencode(params)
            if qs:
                url += "?" + qs
            payload = qs
        else:
            body = json.dumps(params, separators=(",", ":"))
            payload = body
        if signed:
            if self.keys is None:
                raise UserError("API keys missing: private request without keys")
            ts = int(time.time() * 1000) + self.time_offset_ms
            headers = rest_headers(self.keys, ts, payload, self.recv_window_ms)
        t0 = time.perf_counter()
        try:
            return await self._send(method, path, url, body, headers, t0)
        except TransportError:
            self.n_transport_errors += 1
            raise
        except RateLimited:
            self.n_rate_limited += 1
            raise

    async def _send(
        self, method: str, path: str, url: str, body: str, headers: dict[str, str], t0: float
    ) -> dict:
        try:
            async with self.session.request(
                method,
                url,
                data=body if method != "GET" else None,
                headers=headers,
                timeout=self.timeout,
            ) as resp:
                text = await resp.text()
                status = resp.status
                reset_ms = _reset_ms(resp.headers)
        except TimeoutError as exc:
            raise TransportError(f"{path}: timeout after {self.timeout.total}s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise TransportError(
                f"{path}: cannot connect to {self.base_url} ({exc.os_error})"
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"{path}: {type(exc).__name__}") from exc
        dt_ms = (time.perf_counter() - t0) * 1e3
        if self.on_latency is not None:
            self.on_latency(path, dt_ms)
        if status in (403, 429):
            raise RateLimited(10006, f"HTTP {status}", path, reset_ms)
        if status >= 500:
            raise TransportError(f"{path}: HTTP {status}")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TransportError(f"{path}: HTTP {status} non-JSON answer") from exc
        code = int(obj.get("retCode", -1))
        if code == 10006:
            raise RateLimited(code, str(obj.get("retMsg", "")), path, reset_ms)
        if code != 0:
            raise BybitError(code, str(obj.get("retMsg", "")), path)
        return obj.get("result") or {}

    # -- public -----------------------------------------------------------------------------------
    async def server_time_ns(self) -> int:
        r = await self._request("GET", "/v5/market/time", signed=False)
        return int(r["timeNano"])

    async def instrument(self, symbol: str) -> dict:
        try:
            r = await self._request(
                "GET",
                "/v5/market/instruments-info",
                {"category": "linear", "symbol": symbol},
                signed=False,
            )
        except BybitError as exc:
            raise UserError(f"--symbol {symbol}: unknown to the exchange ({exc.ret_msg})") from exc
        rows = r.get("list") or []
        if not rows:
            raise UserError(f"--symbol {symbol}: unknown to the exchange")
        return rows[0]

    async def orderbook(self, symbol: str, limit: int = 25) -> dict:
        """V5 market/orderbook: ``{"s", "b": [[px, qty], ...] best first, "a", "ts", "u", "seq"}``."""
        return await self._request(
            "GET",
            "/v5/market/orderbook",
            {"category": "linear", "symbol": symbol, "limit": int(limit)},
            signed=False,
        )

    # -- private ----------------------------------------------------------------------------------
    async def create_order(
        self, symbol: str, side: int, qty: str, price: str, link_id: str, tif: str = "PostOnly"
    ) -> dict:
        return await self._request(
            "POST",
            "/v5/order/create",
            {
                "category": "linear",
                "symbol": symbol,
                "side": "Buy" if side > 0 else "Sell",
                "orderType": "Limit",
                "qty": qty,
                "price": price,
                "timeInForce": tif,
                "orderLinkId": link_id,
            },
        )

    async def amend_order(
        self, symbol: str, link_id: str, price: str | None = None, qty: str | None = None
    ) -> dict:
        return await self._request(
            "POST",
            "/v5/order/amend",
            {
                "category": "linear",
                "symbol": symbol,
                "orderLinkId": link_id,
                "price": price,
                "qty": qty,
            },
        )

    async def cancel_order(self, symbol: str, link_id: str) -> dict:
        return await self._request(
            "POST",
            "/v5/order/cancel",
            {"category": "linear", "symbol": symbol, "orderLinkId": link_id},
        )

    async def cancel_all(self, symbol: str) -> list[dict]:
        r = await self._request(
            "POST", "/v5/order/cancel-all", {"category": "linear", "symbol": symbol}
        )
        return list(r.get("list") or [])

    async def set_disconnect_cancel_all(self, window_s: int, product: str = "DERIVATIVES") -> None:
        """Arm Bybit's Disconnect Cancel All: open orders are cancelled when no private stream
        subscribed to "dcp" is connected for ``window_s`` seconds (3..300)."""
        await self._request(
            "POST",
            "/v5/order/disconnected-cancel-all",
            {"product": product, "timeWindow": int(window_s)},
        )

    async def open_orders(self, symbol: str) -> list[dict]:
        r = await self._request(
            "GET", "/v5/order/realtime", {"category": "linear", "symbol": symbol, "openOnly": 0}
        )
        return list(r.get("list") or [])

    async def order_by_link(self, symbol: str, link_id: str) -> dict | None:
        r = await self._request(
            "GET",
            "/v5/order/realtime",
            {"category": "linear", "symbol": symbol, "orderLinkId": link_id},
        )
        rows = r.get("list") or []
        return rows[0] if rows else None

    async def executions(self, symbol: str, start_ms: int = 0) -> list[dict]:
        out: list[dict] = []
        cursor = ""
        for _ in range(1000):
            r = await self._request(
                "GET",
                "/v5/execution/list",
                {
                    "category": "linear",
                    "symbol": symbol,
                    "startTime": start_ms or None,
                    "limit": 100,
                    "cursor": cursor or None,
                },
            )
            out.extend(r.get("list") or [])
            cursor = r.get("nextPageCursor") or ""
            if not cursor:
                break
        return out

    async def wallet_coin(self, coin: str) -> dict:
        """The unified account's row for ``coin`` (walletBalance, equity, unrealisedPnl, ...)."""
        r = await self._request(
            "GET", "/v5/account/wallet-balance", {"accountType": "UNIFIED", "coin": coin}
        )
        for acct in r.get("list") or []:
            for row in acct.get("coin") or []:
                if row.get("coin") == coin:
                    return row
        raise BybitError(10001, f"no {coin} row", "/v5/account/wallet-balance")

    async def position_avg_px(self, symbol: str) -> float:
        """The position's average entry price (0 when flat)."""
        r = await self._request(
            "GET", "/v5/position/list", {"category": "linear", "symbol": symbol}
        )
        for row in r.get("list") or []:
            if row.get("symbol") == symbol:
                return float(row.get("avgPrice") or 0.0)
        return 0.0

    async def position(self, symbol: str) -> float:
        r = await self._request(
            "GET", "/v5/position/list", {"category": "linear", "symbol": symbol}
        )
        for row in r.get("list") or []:
            if row.get("symbol") == symbol:
                size = float(row.get("size") or 0)
                return (
                    size
                    if row.get("side") == "Buy"
                    else (-size if row.get("side") == "Sell" else 0.0)
                )
        return 0.0


MessageHandler = Callable[[dict, int], None]


class BybitStream:
    """One websocket with auth (private), subscribe, ping, and reconnect with exponential backoff.

    ``on_connect`` runs after every (re)subscribe: the runner uses it to reconcile before quoting.

    Receive times: a reader task takes each frame off the socket as soon as the event loop sees it
    and stamps it then (``time.time_ns()``); ``on_message(obj, stamp)`` handles the frames one at a
    time, yielding to the loop between two, so a burst that arrives while the bot is busy keeps
    the times it arrived at instead of the times the bot got round to it (the bot's own processing
    backlog is not feed latency). ``backlog()`` = frames received and not yet handled.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        topics: list[str],
        on_message: MessageHandler,
        keys: ApiKeys | None = None,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        name: str = "public",
        backoff_s: tuple[float, float] = (0.1, 5.0),
        ping_s: float = 20.0,
    ):
        self.session, self.url, self.topics = session, url, topics
        self.on_message, self.keys, self.on_connect, self.on_disconnect = (
            on_message,
            keys,
            on_connect,
            on_disconnect,
        )
        self.name = name
        self.backoff_s = backoff_s
        self.ping_s = ping_s
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.fatal: BaseException | None = None
        self._inbox: collections.deque[tuple[int, str] | None] = collections.deque()

    def backlog(self) -> int:
        """Frames received (stamped) but not yet handed to ``on_message``."""
        return len(self._inbox)

    async def _read(
        self, ws: aiohttp.ClientWebSocketResponse, inbox: collections.deque, wake: asyncio.Event
    ) -> None:
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    inbox.append((time.time_ns(), msg.data))
                    wake.set()
                elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
        finally:
            inbox.append(None)  # end of this connection
            wake.set()

    async def resubscribe(self) -> None:
        """Unsubscribe + subscribe: the server answers with a fresh snapshot (book rebuild on a gap)."""
        if self.ws is not None and not self.ws.closed:
            await self.ws.send_json({"op": "unsubscribe", "args": self.topics, "req_id": "resub-u"})
            await self.ws.send_json({"op": "subscribe", "args": self.topics, "req_id": "resub-s"})

    async def _handshake(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        if self.keys is not None:
            expires = int(time.time() * 1000) + 10_000
            await ws.send_json(
                {"op": "auth", "args": ws_auth_args(self.keys, expires), "req_id": "auth"}
            )
            ans = await ws.receive_json(timeout=5)
            if not ans.get("success"):
                raise UserError(
                    f"private stream {self.url}: authentication refused ({ans.get('ret_msg', '')}); check the API keys"
                )
        await ws.send_json({"op": "subscribe", "args": self.topics, "req_id": "sub"})
        ans = await ws.receive_json(timeout=5)
        if not ans.get("success"):
            raise UserError(
                f"{self.name} stream: subscribe {self.topics} refused ({ans.get('ret_msg', '')})"
            )

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                async with self.session.ws_connect(
                    self.url, heartbeat=None, timeout=aiohttp.ClientWSTimeout(ws_close=2)
                ) as ws:
                    self.ws = ws
                    await self._handshake(ws)
                    attempt = 0
                    self.connected.set()
                    if self.on_connect is not None:
                        asyncio.create_task(self.on_connect())
                    pinger = asyncio.create_task(self._ping(ws))
                    inbox: collections.deque[tuple[int, str] | None] = collections.deque()
                    self._inbox = inbox
                    wake = asyncio.Event()
                    reader = asyncio.create_task(self._read(ws, inbox, wake))
                    try:
                        while not stop.is_set():
                            if not inbox:
                                wake.clear()
                                await wake.wait()
                                continue
                            item = inbox.popleft()
                            if item is None:
                                break  # the socket closed
                            stamp_ns, text = item
                            obj = json.loads(text)
                            if "op" in obj:
                                continue  # pong / (un)subscribe answers
                            self.on_message(obj, stamp_ns)
                            # let the loop read (and stamp) what arrived meanwhile, and run the
                            # order requests this message started, before the next message
                            await asyncio.sleep(0)
                    finally:
                        pinger.cancel()
                        reader.cancel()
                        with contextlib.suppress(BaseException):
                            await reader
                        inbox.clear()
            except UserError as exc:
                self.fatal = exc
                stop.set()
                return
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                log.warning("%s stream error: %s", self.name, type(exc).__name__)
            finally:
                self.ws = None
                if self.connected.is_set():
                    self.connected.clear()
                    if self.on_disconnect is not None:
                        self.on_disconnect()
            if stop.is_set():
                return
            self.reconnects += 1
            delay = min(self.backoff_s[1], self.backoff_s[0] * (2**attempt))
            attempt += 1
            log.info("%s stream: reconnect in %.2fs (attempt %d)", self.name, delay, attempt)
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(self.ping_s)
            with contextlib.suppress(Exception):
                await ws.send_json({"op": "ping"})
