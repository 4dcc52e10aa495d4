"""Local Bybit V5 exchange emulator: loopback REST + websocket, replaying a capture as its market.

Speaks the subset of Bybit V5 the adapter uses (same paths, JSON shapes, retCodes and HMAC signing,
verified on every private request):
  REST  POST /v5/order/create|amend|cancel|cancel-all; GET /v5/order/realtime, /v5/execution/list,
        /v5/position/list, /v5/account/wallet-balance, /v5/market/time,
        /v5/market/instruments-info (with or without a symbol), /v5/market/orderbook, and what a
        third-party client reads first (/v5/asset/coin/query-info, /v5/user/query-api,
        /v5/account/info; ``emulator_ref``)
  WS    /v5/public/linear  (orderbook.50.SYMBOL, publicTrade.SYMBOL; snapshot on subscribe)
        /v5/private        (auth op, then order / execution / position / wallet)
The market is an EVENT_DTYPE array (``mmbot.data.load_events`` of any capture), replayed in wall time
(``speed`` x) as its recorder received it (one message per run of equal local_ts, sent at that time),
looped with shifted times if asked; orders are matched by ``mmbot.sim``'s venue over the same events
(``mmbot.live.simmatch.SimMatcher``: queue model, fees), each request at its arrival time.
A message goes out when due to within ~0.5 ms (median; the loop's own timers are late by up to a
ms, so the last 2 ms are timed by a waker thread, ``PreciseWaker``).

Faults, on request (``POST /control/fault {"kind", "count", "seconds", "stream"}`` or CLI
``--fault KIND[:COUNT][@AT_S]``): drop_ws, stall_feed (seconds), duplicate, reorder, seq_gap,
rest_5xx, rest_timeout (answer delayed by `seconds` *after* the request took effect), rate_limit
(retCode 10006), reject (retCode 110007), clock_skew (seconds added to server time).
``GET /control/state`` returns the emulator's own position, open orders and executions for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web
from pydantic import Field

from mmbot.errors import UserError
from mmbot.live import emulator_ref as ref
from mmbot.live import orders
from mmbot.live.bybit_msgs import BookDepth, book_topic, fmt, trade_topic
from mmbot.live.emulator_faults import Faults, parse_fault_spec  # noqa: F401 - re-exported
from mmbot.live.emulator_replay import (  # noqa: F401 - re-exported: commands.live reads a market
    MarketReplay,
    PreciseWaker,
    load_market,
)
from mmbot.live.ledger import Ledger, book_all
from mmbot.live.signing import ApiKeys, rest_signature, ws_auth_valid
from mmbot.settings_model import SettingsModel
from mmbot.sim.config import QueueModel

START_BALANCE_USDT = 100_000.0
DCP_PRODUCTS = ("OPTIONS", "DERIVATIVES", "SPOT")
MAX_RECV_WINDOW_MS = 60_000  # a signed request older than this is refused whatever it claims
MAX_WS_AUTH_AHEAD_MS = 3_600_000  # a websocket auth may not claim to stay valid longer than 1 h
HTTP_BAD_REQUEST = 400
HTTP_UNAUTHORIZED = 401
DCP_MIN_S, DCP_MAX_S = 3, 300  # Bybit V5 Disconnect Cancel All window bounds, seconds


class EmulatorConfig(SettingsModel):
    """The emulator's settings (``mmbot emulator`` options, docs/cli.md): frozen and validated like
    ``live.runner.RunnerConfig``; a bad value is one line naming the field
    (``EmulatorConfig.speed: Input should be greater than 0``)."""

    symbol: str = Field(min_length=1)
    tick_px: float = Field(gt=0.0)
    lot_qty: float = Field(gt=0.0)
    keys: ApiKeys
    maker_fee_rate: float = Field(0.0002, gt=-0.1, lt=0.1)
    taker_fee_rate: float = Field(0.00055, gt=-0.1, lt=0.1)
    speed: float = Field(1.0, gt=0.0)  # market seconds per wall second
    loop: bool = True
    depth: BookDepth = 50  # orderbook.N topic served
    # start the replay when the first client subscribes to the book
    wait_for_subscriber: bool = False
    rate_limit_per_s: int = Field(0, ge=0)  # order create/amend per 1 s; excess: retCode 10006
    queue_model: QueueModel = "risk_averse"  # the matching venue's queue model (mmbot.sim)
    scheduled_faults: list[tuple[float, dict]] = Field(default_factory=list)  # (at_s, fault)


def ok(
    result: Any, ret_code: int = 0, ret_msg: str = "OK", headers: dict[str, str] | None = None
) -> web.Response:
    body = {
        "retCode": ret_code,
        "retMsg": ret_msg,
        "result": result,
        "retExtInfo": {},
        "time": int(time.time() * 1000),
    }
    return web.json_response(body, headers=headers)


def err(ret_code: int, ret_msg: str, headers: dict[str, str] | None = None) -> web.Response:
    return ok({}, ret_code, ret_msg, headers)


def bad_request(ret_msg: str, status: int = HTTP_BAD_REQUEST) -> web.Response:
    """A malformed request: HTTP 4xx with a V5-shaped body, never a 500 and a traceback."""
    return web.json_response(
        {"retCode": 10001, "retMsg": ret_msg, "result": {}, "retExtInfo": {}, "time": 0},
        status=status,
    )


def _ws_request(text: str) -> dict | None:
    """A websocket request as a dict, or None when it is not a JSON object (answered, not raised)."""
    try:
        req = json.loads(text)
    except ValueError:
        return None
    return req if isinstance(req, dict) else None


class Emulator(MarketReplay, Faults):
    def __init__(self, events: np.ndarray, cfg: EmulatorConfig):
        if len(events) == 0:
            raise UserError("emulator market: the capture holds no events")
        self.events = events
        self.cfg = cfg
        self.px_dec = orders.price_decimals(cfg.tick_px)
        self.qty_dec = orders.price_decimals(cfg.lot_qty)
        from mmbot.live.simmatch import SimMatcher

        self.matcher = SimMatcher(
            cfg.symbol,
            cfg.tick_px,
            cfg.lot_qty,
            events,
            cfg.maker_fee_rate,
            cfg.taker_fee_rate,
            cfg.queue_model,
            listener=self._on_matcher,
            clock=self.capture_now_ns,
        )
        # a looped replay continues the venue's market with the capture's times shifted by this
        self.pass_offset_ns = 0
        t_all = np.concatenate([events["exch_ts"], events["local_ts"]])
        self._t_first_ns, self._t_last_ns = int(t_all.min()), int(t_all.max())
        self.public: dict[web.WebSocketResponse, set[str]] = {}
        self.private: dict[web.WebSocketResponse, set[str]] = {}
        self.private_authed: set[web.WebSocketResponse] = set()
        self.faults: dict[str, dict] = {}
        self.u = 0
        self.seq = 0
        self.trade_id = 0
        self.stall_until_ns = 0
        self.replay_e0_ns = int(events["exch_ts"][0])
        self.replay_t0_ns = 0  # wall time the replay started (0: not yet)
        self.replay_shift_ns = 0  # wall time the market stood still (stalls)
        self.clock_skew_ns = 0
        self._rate = orders.RateWindow(cfg.rate_limit_per_s)
        self._held: dict[str, str | None] = {"public": None, "private": None}
        self._priv_q: asyncio.Queue[tuple[str, dict]] | None = None
        self._tasks: list[asyncio.Task] = []
        self._runner: web.AppRunner | None = None
        self._waker: PreciseWaker | None = None
        self.port = 0
        self.counters: dict[str, int] = {
            "rest": 0,
            "orders_created": 0,
            "faults_fired": 0,
            "groups": 0,
        }
        self.dcp_window_s: dict[str, int] = {}  # product -> Disconnect Cancel All window
        self.dcp_log: list[tuple[int, int, int]] = []  # (gone ns, cancelled ns, orders) per DCP
        # money moved in or out of the account without a trade (a transfer): the wallet shows it
        self.transfers_usdt = 0.0

    # -- lifecycle --------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        for path in ("create", "amend", "cancel", "cancel-all"):
            app.router.add_post(
                f"/v5/order/{path}", self._rest(getattr(self, "_" + path.replace("-", "_")))
            )
        app.router.add_post("/v5/order/disconnected-cancel-all", self._rest(self._set_dcp))
        app.router.add_get("/v5/order/realtime", self._rest(self._realtime))
        app.router.add_get("/v5/execution/list", self._rest(self._execution_list))
        app.router.add_get("/v5/position/list", self._rest(self._position_list))
        app.router.add_get("/v5/account/wallet-balance", self._rest(self._wallet_balance))
        app.router.add_get("/v5/market/time", self._server_time)
        app.router.add_get("/v5/market/instruments-info", self._instruments)
        app.router.add_get("/v5/market/orderbook", self._orderbook)
        app.router.add_get("/v5/asset/coin/query-info", self._rest(self._coin_info))
        app.router.add_get("/v5/user/query-api", self._rest(self._api_key_info))
        app.router.add_get("/v5/account/info", self._rest(self._account_info))
        app.router.add_get("/v5/public/linear", self._ws_public)
        app.router.add_get("/v5/private", self._ws_private)
        app.router.add_post("/control/fault", self._control(self._control_fault))
        app.router.add_get("/control/state", self._control(self._control_state))
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._priv_q = asyncio.Queue()
        self._waker = PreciseWaker(asyncio.get_running_loop())
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._tasks = [
            asyncio.create_task(self._replay()),
            asyncio.create_task(self._private_sender()),
        ]
        for at_s, fault in self.cfg.scheduled_faults:
            self._tasks.append(asyncio.create_task(self._later(at_s, fault)))
        return self.port

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self._waker is not None:
            self._waker.close()
        for ws in list(self.public) + list(self.private):
            with contextlib.suppress(Exception):
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- REST -------------------------------------------------------------------------------------
    def _rest(self, handler):
        async def wrapped(request: web.Request) -> web.Response:
            self.counters["rest"] += 1
            if self._take_fault("rest_5xx"):
                return web.Response(status=503, text="service unavailable (emulated)")
            if self._take_fault("rate_limit"):
                return err(10006, "Too many visits!")
            payload = await request.text() if request.method == "POST" else request.query_string
            auth = self._check_auth(request, payload)
            if auth is not None:
                return auth
            body: dict = {}
            if request.method == "POST":
                try:
                    body = json.loads(payload or "{}")
                except json.JSONDecodeError:
                    return bad_request("params error: body is not JSON")
                if not isinstance(body, dict):
                    return bad_request("params error: body is not a JSON object")
            else:
                body = dict(request.query)
            if body.get("category", "linear") != "linear":
                return err(10001, "params error: category")
            if "symbol" in body and body["symbol"] != self.cfg.symbol:
                return err(10001, "params error: symbol invalid")
            try:
                resp = await handler(body)
            except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
                return bad_request(f"params error: {type(exc).__name__}")
            slow = self._take_fault("rest_timeout")
            if slow:
                await asyncio.sleep(slow["seconds"])
            return resp

        return wrapped

    def _check_auth(self, request: web.Request, payload: str) -> web.Response | None:
        h = request.headers
        key, sig, ts, rw = (
            h.get("X-BAPI-API-KEY"),
            h.get("X-BAPI-SIGN"),
            h.get("X-BAPI-TIMESTAMP"),
            h.get("X-BAPI-RECV-WINDOW", "5000"),
        )
        if not key or key != self.cfg.keys.key:
            return err(10003, "API key is invalid.")
        if not sig or not ts or not ts.isdigit() or not rw.isdigit():
            return err(10004, "error sign! missing signature headers")
        if int(rw) > MAX_RECV_WINDOW_MS:
            return err(10001, f"params error: recv_window above {MAX_RECV_WINDOW_MS} ms")
        server_ms = (time.time_ns() + self.clock_skew_ns) // 1_000_000
        if not (server_ms - int(rw) <= int(ts) < server_ms + 1000):
            return err(
                10002, "invalid request, please check your server timestamp or recv_window param"
            )
        if sig != rest_signature(self.cfg.keys, int(ts), int(rw), payload):
            return err(10004, "error sign!")
        return None

    def _order_json(self, o: orders.SimOrder) -> dict:
        return orders.order_json(o, self.cfg.symbol, self.px_dec, self.qty_dec)

    def _exec_json(self, e: orders.Execution) -> dict:
        return orders.exec_json(
            e, self.matcher.orders[e.order_id], self.cfg.symbol, self.px_dec, self.qty_dec
        )

    def _position_json(self) -> dict:
        m = self.matcher
        pos = m.position_qty
        mark_px = m.mid_px() if m.bids and m.asks else 0.0
        led = self._ledger()
        now_ms = str(time.time_ns() // 1_000_000)
        return {
            "category": "linear",
            "symbol": self.cfg.symbol,
            "side": "Buy" if pos > 0 else ("Sell" if pos < 0 else ""),
            "size": fmt(abs(pos), self.qty_dec),
            "avgPrice": repr(led.avg_entry_px),
            "positionValue": repr(abs(pos) * led.avg_entry_px),
            "markPrice": repr(mark_px),
            "unrealisedPnl": repr(pos * (mark_px - led.avg_entry_px)),
            "cumRealisedPnl": repr(led.realized),
            "leverage": "1",
            "liqPrice": "",
            "tradeMode": 0,
            "positionStatus": "Normal",
            "positionIdx": 0,
            "createdTime": now_ms,
            "updatedTime": now_ms,
        }

    def _ledger(self) -> Ledger:
        """The account's books from its executions (``live.ledger``: Bybit's entry/realized rule)."""
        return book_all((e.side, e.px, e.qty, e.fee) for e in self.matcher.executions)

    def _wallet_json(self) -> dict:
        """The USDT coin of the unified account: wallet balance = start + transfers + realized
        PnL - fees (no mark in it); equity adds the position's unrealized PnL at the mid."""
        m = self.matcher
        led = self._ledger()
        wallet = START_BALANCE_USDT + self.transfers_usdt + led.wallet_delta()
        mark = m.mid_px() if m.bids and m.asks else led.avg_entry_px
        upnl = led.position_qty * (mark - led.avg_entry_px)
        return {
            "accountType": "UNIFIED",
            "totalEquity": repr(wallet + upnl),
            "totalWalletBalance": repr(wallet),
            "coin": [
                {
                    "coin": "USDT",
                    "walletBalance": repr(wallet),
                    "equity": repr(wallet + upnl),
                    "unrealisedPnl": repr(upnl),
                    "cumRealisedPnl": repr(led.realized),
                }
            ],
        }

    def _find(self, body: dict) -> orders.SimOrder | None:
        return self.matcher.find(str(body.get("orderId", "")), str(body.get("orderLinkId", "")))

    def _over_rate(self) -> web.Response | None:
        """Over the order rate limit: the retCode 10006 answer, with Bybit's
        ``X-Bapi-Limit-Reset-Timestamp`` header (ms) saying when the window admits the next request."""
        reset_ms = self._rate.admit(time.time_ns())
        if reset_ms is None:
            return None
        self.counters["rate_limited"] = self._rate.n_limited
        reset_ms += self.clock_skew_ns // 1_000_000
        return err(10006, "Too many visits!", {"X-Bapi-Limit-Reset-Timestamp": str(reset_ms)})

    def _refused(self, what: str) -> web.Response | None:
        """The answer to an order request turned away before the matcher sees it: over the rate
        limit, or an injected reject fault ("ab not enough for ``what``"); None lets it through."""
        limited = self._over_rate()
        if limited is not None:
            return limited
        if self._take_fault("reject"):
            return err(110007, f"ab not enough for {what} (emulated reject)")
        return None

    async def _create(self, body: dict) -> web.Response:
        refused = self._refused("new order")
        if refused is not None:
            return refused
        try:
            side = {"Buy": orders.BUY, "Sell": orders.SELL}[body["side"]]
            qty = float(body["qty"])
            order_type = body.get("orderType", "Limit")
            px = float(body.get("price", 0) or 0)
        except (KeyError, ValueError):
            return err(10001, "params error: side/qty/price")
        tif = body.get("timeInForce", "GTC")
        code, msg, o = self.matcher.create(
            str(body.get("orderLinkId", "")), side, px, qty, tif, order_type, time.time_ns()
        )
        if o is None:
            return err(code, msg)
        self.counters["orders_created"] += 1
        return ok({"orderId": o.order_id, "orderLinkId": o.link_id})

    async def _amend(self, body: dict) -> web.Response:
        refused = self._refused("amended order")
        if refused is not None:
            return refused
        o = self._find(body)
        if o is None:
            return err(110001, "order not exists or too late to replace")
        px = float(body["price"]) if body.get("price") else None
        qty = float(body["qty"]) if body.get("qty") else None
        code, msg = self.matcher.amend(o, px, qty, time.time_ns())
        return (
            ok({"orderId": o.order_id, "orderLinkId": o.link_id}) if code == 0 else err(code, msg)
        )

    async def _cancel(self, body: dict) -> web.Response:
        o = self._find(body)
        if o is None:
            return err(110001, "order not exists or too late to cancel")
        code, msg = self.matcher.cancel(o, time.time_ns())
        return (
            ok({"orderId": o.order_id, "orderLinkId": o.link_id}) if code == 0 else err(code, msg)
        )

    async def _set_dcp(self, body: dict) -> web.Response:
        """Bybit V5 "Set Disconnect Cancel All": ``product`` (OPTIONS default, DERIVATIVES, SPOT)
        and ``timeWindow`` seconds in [3, 300]; armed for connections subscribed to "dcp"."""
        product = body.get("product", "OPTIONS")
        try:
            window_s = int(body["timeWindow"])
        except (KeyError, TypeError, ValueError):
            return err(10001, "params error: timeWindow")
        if product not in DCP_PRODUCTS or not DCP_MIN_S <= window_s <= DCP_MAX_S:
            return err(10001, "params error: product or timeWindow")
        self.dcp_window_s[product] = window_s
        return ok({})

    def _dcp_armed(self) -> bool:
        return any("dcp" in subs for ws, subs in self.private.items() if ws in self.private_authed)

    def _on_private_gone(self, subs: set) -> None:
        """A private connection subscribed to "dcp" closed: if none is back within the window,
        every open linear order is cancelled (as Bybit's DCP for DERIVATIVES)."""
        window_s = self.dcp_window_s.get("DERIVATIVES")
        if "dcp" not in subs or window_s is None or self._dcp_armed():
            return

        gone_ns = time.time_ns()

        async def countdown() -> None:
            await asyncio.sleep(window_s)  # wall-clock seconds, as on Bybit
            if not self._dcp_armed():
                done = self.matcher.cancel_all(time.time_ns())
                self.counters["dcp_cancelled"] = self.counters.get("dcp_cancelled", 0) + len(done)
                # when the connection went and when its orders were cancelled (wall ns)
                self.dcp_log.append((gone_ns, time.time_ns(), len(done)))

        self._tasks.append(asyncio.create_task(countdown()))

    async def _cancel_all(self, body: dict) -> web.Response:
        done = self.matcher.cancel_all(time.time_ns())
        return ok(
            {
                "list": [{"orderId": o.order_id, "orderLinkId": o.link_id} for o in done],
                "success": "1",
            }
        )

    async def _realtime(self, q: dict) -> web.Response:
        o = self._find(q)
        if q.get("orderId") or q.get("orderLinkId"):
            rows = [] if o is None else [o]
        else:
            rows = self.matcher.open_orders()
        return ok(
            {
                "category": "linear",
                "list": [self._order_json(x) for x in rows],
                "nextPageCursor": "",
            }
        )

    async def _execution_list(self, q: dict) -> web.Response:
        start_ms = int(q.get("startTime", 0) or 0)
        limit = max(1, min(100, int(q.get("limit", 50) or 50)))
        offset = int(q.get("cursor", 0) or 0)
        oid, lid = str(q.get("orderId", "")), str(q.get("orderLinkId", ""))
        rows = [
            e
            for e in reversed(self.matcher.executions)
            if e.exec_ns // 1_000_000 >= start_ms
            and (not oid or e.order_id == oid)
            and (not lid or e.link_id == lid)
        ]
        page = rows[offset : offset + limit]
        nxt = str(offset + limit) if offset + limit < len(rows) else ""
        return ok(
            {
                "category": "linear",
                "list": [self._exec_json(e) for e in page],
                "nextPageCursor": nxt,
            }
        )

    async def _position_list(self, q: dict) -> web.Response:
        return ok({"category": "linear", "list": [self._position_json()], "nextPageCursor": ""})

    async def _wallet_balance(self, q: dict) -> web.Response:
        return ok({"list": [self._wallet_json()]})

    async def _server_time(self, request: web.Request) -> web.Response:
        now = time.time_ns() + self.clock_skew_ns
        return ok({"timeSecond": str(now // 1_000_000_000), "timeNano": str(now)})

    async def _instruments(self, request: web.Request) -> web.Response:
        """V5 instruments-info: ``category`` required; ``symbol`` optional (without it: every
        instrument of the category, here the one emulated linear contract); ``status`` filters
        (a PreLaunch query finds none). Other categories have no instruments here."""
        q = request.query
        category = q.get("category", "")
        if category not in ref.INSTRUMENTS_CATEGORIES:
            return err(10001, "params error: category")
        if "symbol" in q and q["symbol"] != self.cfg.symbol:
            return err(10001, "params error: symbol invalid")
        listed = category == "linear" and q.get("status", "Trading") == "Trading"
        rows = (
            [
                ref.instrument_row(
                    self.cfg.symbol, self.cfg.tick_px, self.cfg.lot_qty, self.px_dec, self.qty_dec
                )
            ]
            if listed
            else []
        )
        return ok({"category": category, "list": rows, "nextPageCursor": ""})

    async def _orderbook(self, request: web.Request) -> web.Response:
        """V5 market/orderbook (linear: ``limit`` 1..500, default 25): the book the public stream
        has published, best levels first, with its update id and sequence."""
        q = request.query
        if q.get("category") != "linear":
            return err(10001, "params error: category")
        if q.get("symbol") != self.cfg.symbol:
            return err(10001, "params error: symbol invalid")
        limit_s = q.get("limit", str(ref.BOOK_LIMIT_DEFAULT))
        if not limit_s.isdigit() or not 1 <= int(limit_s) <= ref.BOOK_LIMIT_MAX:
            return err(10001, f"params error: limit must be 1..{ref.BOOK_LIMIT_MAX}")
        m = self.matcher
        b, a = ref.book_levels(m.bids, m.asks, int(limit_s), self.px_dec, self.qty_dec)
        now_ms = time.time_ns() // 1_000_000
        return ok(
            {
                "s": self.cfg.symbol,
                "b": b,
                "a": a,
                "ts": now_ms,
                "u": self.u,
                "seq": self.seq,
                "cts": now_ms,
            }
        )

    async def _coin_info(self, q: dict) -> web.Response:
        return ok({"rows": ref.coin_rows(self.cfg.symbol)})

    async def _api_key_info(self, q: dict) -> web.Response:
        return ok(ref.api_key_info(self.cfg.keys.key))

    async def _account_info(self, q: dict) -> web.Response:
        return ok(ref.account_info())

    # -- control ----------------------------------------------------------------------------------
    def _control(self, handler):
        """Control endpoints need the same signed headers as private REST calls."""

        async def wrapped(request: web.Request) -> web.Response:
            payload = await request.text() if request.method == "POST" else request.query_string
            if self._check_auth(request, payload) is not None:
                return bad_request("control endpoint: signed headers required", HTTP_UNAUTHORIZED)
            return await handler(payload)

        return wrapped

    async def _control_fault(self, payload: str) -> web.Response:
        try:
            fault = json.loads(payload)
            if not isinstance(fault, dict):
                raise ValueError
            await self.inject(fault)
        except UserError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=HTTP_BAD_REQUEST)
        except (ValueError, TypeError, KeyError):
            return bad_request("control/fault: body must be a fault object")
        return web.json_response({"ok": True})

    def state(self) -> dict:
        m = self.matcher
        return {
            "symbol": self.cfg.symbol,
            "position_qty": m.position_qty,
            "cash": m.cash,
            "fees_paid": m.fees_paid,
            "mid_px": m.mid_px() if m.bids and m.asks else None,
            "open_orders": [self._order_json(o) for o in m.open_orders()],
            "executions": [
                {
                    "exec_id": e.exec_id,
                    "link_id": e.link_id,
                    "side": e.side,
                    "px": e.px,
                    "qty": e.qty,
                    "fee": e.fee,
                    "maker": e.maker,
                }
                for e in m.executions
            ],
            "orders_created": self.counters["orders_created"],
            "counters": dict(self.counters),
            "dcp_armed": self._dcp_armed() and "DERIVATIVES" in self.dcp_window_s,
            "dcp_log": list(self.dcp_log),
        }

    async def _control_state(self, payload: str) -> web.Response:
        return web.json_response(self.state())

    # -- websocket --------------------------------------------------------------------------------
    async def _ws_serve(
        self,
        request: web.Request,
        on_op: Callable[[web.WebSocketResponse, Any, dict], Awaitable[None]],
        subs: dict[web.WebSocketResponse, set],
        on_close: Callable[[web.WebSocketResponse], None],
    ) -> web.WebSocketResponse:
        """One websocket connection, public or private: registered in ``subs`` with no topics, a bad
        frame answered "invalid request", ``ping`` answered ``pong``, any other op handed to
        ``on_op(ws, op, req)``; ``on_close(ws)`` once the connection ends."""
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        subs[ws] = set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                req = _ws_request(msg.data)
                if req is None:
                    await ws.send_json({"success": False, "ret_msg": "invalid request"})
                    continue
                op = req.get("op")
                if op == "ping":
                    await ws.send_json(
                        {
                            "success": True,
                            "ret_msg": "pong",
                            "op": "ping",
                            "req_id": req.get("req_id", ""),
                        }
                    )
                else:
                    await on_op(ws, op, req)
        finally:
            on_close(ws)
        return ws

    async def _ws_public(self, request: web.Request) -> web.WebSocketResponse:
        return await self._ws_serve(
            request, self._public_op, self.public, lambda ws: self.public.pop(ws, None)
        )

    async def _public_op(self, ws: web.WebSocketResponse, op: Any, req: dict) -> None:
        if op not in ("subscribe", "unsubscribe"):
            return
        valid = {
            book_topic(self.cfg.symbol, self.cfg.depth),
            trade_topic(self.cfg.symbol),
        }
        bad = [t for t in req.get("args", []) if t not in valid]
        if bad:
            await ws.send_json(
                {
                    "success": False,
                    "ret_msg": f"Invalid topic :{bad}",
                    "op": op,
                    "req_id": req.get("req_id", ""),
                }
            )
            return
        for t in req.get("args", []):
            (self.public[ws].add if op == "subscribe" else self.public[ws].discard)(t)
        await ws.send_json(
            {"success": True, "ret_msg": "", "op": op, "req_id": req.get("req_id", "")}
        )
        if op == "subscribe" and book_topic(self.cfg.symbol, self.cfg.depth) in req["args"]:
            await ws.send_str(json.dumps(self._snapshot_msg()))

    async def _ws_private(self, request: web.Request) -> web.WebSocketResponse:
        return await self._ws_serve(request, self._private_op, self.private, self._private_closed)

    async def _private_op(self, ws: web.WebSocketResponse, op: Any, req: dict) -> None:
        if op == "auth":
            args = req.get("args", [])
            now_ms = time.time_ns() // 1_000_000
            good = (
                isinstance(args, list)
                and ws_auth_valid(self.cfg.keys, args)
                and str(args[1]).isdigit()
                and now_ms < int(args[1]) <= now_ms + MAX_WS_AUTH_AHEAD_MS
            )
            if good:
                self.private_authed.add(ws)
            await ws.send_json(
                {
                    "success": good,
                    "ret_msg": "" if good else "Invalid apikey or signature",
                    "op": "auth",
                    "req_id": req.get("req_id", ""),
                }
            )
            if not good:
                await ws.close()
        elif op == "subscribe":
            if ws not in self.private_authed:
                await ws.send_json(
                    {"success": False, "ret_msg": "Request not authorized", "op": op}
                )
                return
            self.private[ws].update(req.get("args", []))
            await ws.send_json(
                {"success": True, "ret_msg": "", "op": op, "req_id": req.get("req_id", "")}
            )

    def _private_closed(self, ws: web.WebSocketResponse) -> None:
        subs = self.private.pop(ws, None) or set()
        authed = ws in self.private_authed
        self.private_authed.discard(ws)
        if authed:
            self._on_private_gone(subs)

    def _on_matcher(self, kind: str, obj: object) -> None:
        if self._priv_q is None:
            return
        now_ms = time.time_ns() // 1_000_000
        if kind == "order":
            msg = {"topic": "order", "creationTime": now_ms, "data": [self._order_json(obj)]}  # type: ignore[arg-type]
        elif kind == "execution":
            msg = {"topic": "execution", "creationTime": now_ms, "data": [self._exec_json(obj)]}  # type: ignore[arg-type]
        else:
            self._priv_q.put_nowait(
                (
                    "position",
                    {"topic": "position", "creationTime": now_ms, "data": [self._position_json()]},
                )
            )
            msg = {"topic": "wallet", "creationTime": now_ms, "data": [self._wallet_json()]}
            kind = "wallet"
        self._priv_q.put_nowait((kind, msg))

    async def _private_sender(self) -> None:
        assert self._priv_q is not None
        while True:
            topic, msg = await self._priv_q.get()
            for text in self._apply_msg_faults("private", json.dumps(msg)):
                for ws, subs in list(self.private.items()):
                    if topic in subs:
                        with contextlib.suppress(Exception):
                            await ws.send_str(text)


async def serve(
    events: np.ndarray, cfg: EmulatorConfig, host: str, port: int, duration_s: float | None
) -> None:
    emu = Emulator(events, cfg)
    actual = await emu.start(host, port)
    print(
        f"emulator listening on http://{host}:{actual} symbol={cfg.symbol} tick={cfg.tick_px} lot={cfg.lot_qty}",
        flush=True,
    )
    try:
        if duration_s is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(duration_s)
    finally:
        await emu.stop()
