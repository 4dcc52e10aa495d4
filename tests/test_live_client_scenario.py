"""A client nobody here wrote agrees with the emulator: ccxt's Bybit client, its API URLs pointed at
the emulator, and our own ``BybitRest`` run the same scenario against it: load the market, read the
order book and the position, place a post-only order and see it rejected when it would cross,
place one that rests, amend and cancel it, read its executions (none), then take liquidity and
read that order's executions and the position they left. Every answer is checked against the
emulator's own state."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import aiohttp
import pytest

from mmbot.live.bybit import BybitError, BybitRest
from mmbot.live.signing import ApiKeys
from mmbot.live.testing import SYMBOL, TEST_KEY, TEST_SECRET, EmulatorThread, wait_for
from mmbot.live.testmarket import LOT_QTY, TICK_PX

CCXT_SYMBOL = "XRP/USDT:USDT"
POST_ONLY_REJECT = "EC_PostOnlyWillTakeLiquidity"
TAKER_FEE_RATE = 0.00055


class CcxtClient:
    """ccxt's synchronous bybit client with every API URL at the emulator."""

    def __init__(self, url: str):
        ccxt = pytest.importorskip("ccxt", reason="ccxt is not installed (pip install -e '.[dev]')")
        self.ex = ccxt.bybit({"apiKey": TEST_KEY, "secret": TEST_SECRET, "enableRateLimit": False})
        self.ex.urls["api"] = {name: url for name in self.ex.urls["api"]}
        self.not_found = ccxt.OrderNotFound

    def market(self) -> tuple[float, float]:
        self.ex.load_markets()
        m = self.ex.market(CCXT_SYMBOL)
        assert m["id"] == SYMBOL and m["linear"] and m["swap"] and m["settle"] == "USDT"
        return float(m["precision"]["price"]), float(m["precision"]["amount"])

    def book(self) -> tuple[list, list]:
        ob = self.ex.fetch_order_book(CCXT_SYMBOL, 50)
        return [tuple(x[:2]) for x in ob["bids"]], [tuple(x[:2]) for x in ob["asks"]]

    def position(self) -> float:
        rows = [p for p in self.ex.fetch_positions([CCXT_SYMBOL]) if p["symbol"] == CCXT_SYMBOL]
        if not rows or not rows[0]["contracts"]:
            return 0.0
        return float(rows[0]["contracts"]) * (1 if rows[0]["side"] == "long" else -1)

    def place(self, side: str, qty: float, px: float, post_only: bool, link: str) -> str:
        params = {"clientOrderId": link} | ({"postOnly": True} if post_only else {})
        return self.ex.create_order(CCXT_SYMBOL, "limit", side, qty, px, params)["id"]

    def order(self, oid: str) -> dict:
        o = self.ex.fetch_order(oid, CCXT_SYMBOL, {"acknowledged": True})
        status = {"open": "New", "canceled": "Cancelled", "closed": "Filled"}[o["status"]]
        return {
            "status": status,
            "reject": o["info"]["rejectReason"],
            "px": o["price"],
            "qty": o["amount"],
            "link": o["clientOrderId"],
        }

    def amend(self, oid: str, side: str, px: float, qty: float) -> None:
        self.ex.edit_order(oid, CCXT_SYMBOL, "limit", side, qty, px)

    def cancel(self, oid: str) -> None:
        self.ex.cancel_order(oid, CCXT_SYMBOL)

    def cancel_is_refused(self, oid: str) -> bool:
        try:
            self.cancel(oid)
        except self.not_found:
            return True
        return False

    def trades(self, oid: str) -> list[tuple[float, float, float, bool]]:
        return [
            (t["price"], t["amount"], t["fee"]["cost"], t["takerOrMaker"] == "maker")
            for t in self.ex.fetch_order_trades(oid, CCXT_SYMBOL)
        ]

    def close(self) -> None:
        pass


class OwnClient:
    """mmbot's ``BybitRest`` on its own event loop (its calls made synchronous for the scenario)."""

    def __init__(self, url: str):
        self.loop = asyncio.new_event_loop()
        self.http = self.loop.run_until_complete(self._session())
        self.rest = BybitRest(self.http, url, ApiKeys(TEST_KEY, TEST_SECRET))
        self.links: dict[str, str] = {}  # orderId -> orderLinkId (our client works by link id)

    async def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def _run(self, coro):
        return self.loop.run_until_complete(coro)

    def market(self) -> tuple[float, float]:
        row = self._run(self.rest.instrument(SYMBOL))
        return float(row["priceFilter"]["tickSize"]), float(row["lotSizeFilter"]["qtyStep"])

    def book(self) -> tuple[list, list]:
        r = self._run(self.rest.orderbook(SYMBOL, 50))
        return (
            [(float(p), float(q)) for p, q in r["b"]],
            [(float(p), float(q)) for p, q in r["a"]],
        )

    def position(self) -> float:
        return self._run(self.rest.position(SYMBOL))

    def place(self, side: str, qty: float, px: float, post_only: bool, link: str) -> str:
        tif = "PostOnly" if post_only else "GTC"
        r = self._run(
            self.rest.create_order(
                SYMBOL, 1 if side == "buy" else -1, f"{qty:g}", f"{px:.4f}", link, tif
            )
        )
        self.links[r["orderId"]] = link
        return r["orderId"]

    def order(self, oid: str) -> dict:
        row = self._run(self.rest.order_by_link(SYMBOL, self.links[oid]))
        assert row is not None and row["orderId"] == oid
        return {
            "status": row["orderStatus"],
            "reject": row["rejectReason"],
            "px": float(row["price"]),
            "qty": float(row["qty"]),
            "link": row["orderLinkId"],
        }

    def amend(self, oid: str, side: str, px: float, qty: float) -> None:
        self._run(self.rest.amend_order(SYMBOL, self.links[oid], f"{px:.4f}", f"{qty:g}"))

    def cancel(self, oid: str) -> None:
        self._run(self.rest.cancel_order(SYMBOL, self.links[oid]))

    def cancel_is_refused(self, oid: str) -> bool:
        try:
            self.cancel(oid)
        except BybitError as exc:
            return exc.ret_code == 110001
        return False

    def trades(self, oid: str) -> list[tuple[float, float, float, bool]]:
        return [
            (float(e["execPrice"]), float(e["execQty"]), float(e["execFee"]), bool(e["isMaker"]))
            for e in self._run(self.rest.executions(SYMBOL))
            if e["orderId"] == oid
        ]

    def close(self) -> None:
        self._run(self.http.close())
        self.loop.close()


def _emu_execs(emu: EmulatorThread, link: str) -> list[tuple[float, float, float, bool]]:
    return sorted(
        (e["px"], e["qty"], e["fee"], e["maker"])
        for e in emu.state()["executions"]
        if e["link_id"] == link
    )


def _emu_touch(emu: EmulatorThread) -> tuple[float, float]:
    async def _t() -> tuple[float, float]:
        return emu.emu.matcher.best_bid(), emu.emu.matcher.best_ask()

    return emu.call(_t())


def run_scenario(client, emu: EmulatorThread) -> dict:
    """The scenario; returns what it saw (printed by the tests)."""
    seen: dict = {}
    assert wait_for(lambda: emu.state()["mid_px"] is not None, 10), "the emulator published no book"
    assert client.market() == (TICK_PX, LOT_QTY)
    before = _emu_touch(emu)
    bids, asks = client.book()
    after = _emu_touch(emu)
    assert bids and asks and len(bids) <= 50 and len(asks) <= 50
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert bids[0][0] < asks[0][0]
    assert (bids[0][0], asks[0][0]) in (before, after)  # the emulator's book at that moment
    assert client.position() == 0.0
    bb, ba = after
    # a post-only buy through the ask would take liquidity: accepted, then cancelled (V5)
    cross = client.place("buy", 3 * LOT_QTY, ba + TICK_PX, True, "scn-cross")
    o = client.order(cross)
    assert (o["status"], o["reject"], o["link"]) == ("Cancelled", POST_ONLY_REJECT, "scn-cross")
    seen["cross"] = o
    # a post-only buy well below the touch rests; amended (price and qty), then cancelled
    rest_px = round(bb - 20 * TICK_PX, 4)
    rest = client.place("buy", 3 * LOT_QTY, rest_px, True, "scn-rest")
    o = client.order(rest)
    assert (o["status"], o["px"], o["qty"]) == ("New", rest_px, 3 * LOT_QTY)
    new_px = round(rest_px - 5 * TICK_PX, 4)
    client.amend(rest, "buy", new_px, 5 * LOT_QTY)
    o = client.order(rest)
    assert (o["status"], o["px"], o["qty"]) == ("New", new_px, 5 * LOT_QTY)
    assert [x["orderId"] for x in emu.state()["open_orders"]] == [rest]
    client.cancel(rest)
    assert client.order(rest)["status"] == "Cancelled"
    assert client.cancel_is_refused(rest)  # V5 retCode 110001: gone already
    assert emu.state()["open_orders"] == []
    assert client.trades(rest) == [] == _emu_execs(emu, "scn-rest")
    # a GTC buy through the ask takes liquidity: its executions and the position they leave
    take = client.place("buy", 10 * LOT_QTY, round(ba + 5 * TICK_PX, 4), False, "scn-take")
    trades = sorted(client.trades(take))
    assert trades == _emu_execs(emu, "scn-take")
    assert sum(q for _, q, _, _ in trades) == 10 * LOT_QTY
    assert all(
        not maker and fee == pytest.approx(px * q * TAKER_FEE_RATE) for px, q, fee, maker in trades
    )
    assert client.order(take)["status"] == "Filled"
    assert client.position() == 10 * LOT_QTY == emu.state()["position_qty"]
    seen["take_trades"] = trades
    return seen


@pytest.mark.parametrize("which", ["ccxt", "mmbot"])
def test_bybit_clients_pass_the_same_scenario_against_the_emulator(which):
    emu = EmulatorThread()
    client = None
    try:
        client = (CcxtClient if which == "ccxt" else OwnClient)(emu.url)
        seen = run_scenario(client, emu)
        print(f"\n{which}: {json.dumps(seen, default=str)}")
    finally:
        if client is not None:
            client.close()
        emu.close()


def test_instruments_info_and_orderbook_follow_the_v5_api():
    """Without a symbol instruments-info lists the category's instruments; other categories and
    PreLaunch have none here; market/orderbook answers V5's shape and refuses a limit past 500."""
    emu = EmulatorThread()
    try:

        def get(path: str) -> dict:
            with urllib.request.urlopen(emu.url + path, timeout=5) as r:
                return json.loads(r.read())

        rows = get("/v5/market/instruments-info?category=linear")["result"]["list"]
        assert [r["symbol"] for r in rows] == [SYMBOL]
        assert rows[0]["settleCoin"] == "USDT" and rows[0]["priceFilter"]["tickSize"] == "0.0001"
        for q in (
            "category=option&baseCoin=BTC",
            "category=spot",
            "category=linear&status=PreLaunch",
        ):
            body = get(f"/v5/market/instruments-info?{q}")
            assert (body["retCode"], body["result"]["list"]) == (0, []), q
        assert get("/v5/market/instruments-info?category=futures")["retCode"] == 10001
        book_q = f"/v5/market/orderbook?category=linear&symbol={SYMBOL}&limit=1"
        # the book is empty until the feed's first snapshot has played (~0.1-0.5 s after start)
        assert wait_for(lambda: get(book_q)["result"]["b"], 10.0), "no book published in 10 s"
        ob = get(book_q)
        assert ob["retCode"] == 0 and len(ob["result"]["b"]) == 1 and len(ob["result"]["a"]) == 1
        assert set(ob["result"]) == {"s", "b", "a", "ts", "u", "seq", "cts"}
        for bad in ("limit=0", "limit=501", "limit=x"):
            body = get(f"/v5/market/orderbook?category=linear&symbol={SYMBOL}&{bad}")
            assert body["retCode"] == 10001, bad
    finally:
        emu.close()
