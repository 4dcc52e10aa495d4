"""Emulator: Bybit V5 signing is verified, orders rest/fill/cancel, faults do what they say."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from mmbot.live.bybit import BybitError, BybitRest, RateLimited, TransportError
from mmbot.live.bybit_msgs import LiveBook
from mmbot.live.emulator import Emulator, EmulatorConfig, parse_fault_spec
from mmbot.live.signing import ApiKeys, rest_headers, sign_hex
from mmbot.live.testmarket import LOT_QTY, TICK_PX, make_market

KEYS = ApiKeys("k-test", "s-test")


def test_rest_signature_matches_bybit_documented_recipe():
    # Bybit V5: HMAC_SHA256(secret, timestamp + api_key + recv_window + payload), hex
    import hashlib
    import hmac

    ts, payload = 1658384314791, '{"category":"linear","symbol":"XRPUSDT"}'
    want = hmac.new(b"s-test", f"{ts}k-test5000{payload}".encode(), hashlib.sha256).hexdigest()
    assert rest_headers(KEYS, ts, payload)["X-BAPI-SIGN"] == want
    assert (
        sign_hex("s", "GET/realtime1")
        == hmac.new(b"s", b"GET/realtime1", hashlib.sha256).hexdigest()
    )
    assert "s-test" not in repr(KEYS) and "s-test" not in str(KEYS)


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ({"speed": 0.0}, "EmulatorConfig.speed: Input should be greater than 0"),
        ({"tick_px": float("nan")}, "EmulatorConfig.tick_px: Input should be a finite number"),
        ({"depth": 7}, "EmulatorConfig.depth: Value error, 7 is not one of 1, 50, 200, 500"),
        ({"queue_model": "nope"}, "EmulatorConfig.queue_model: Value error, queue_model 'nope'"),
        ({"rate_limit_per_s": -1}, "EmulatorConfig.rate_limit_per_s: Input should be greater"),
        ({"speeed": 2.0}, "EmulatorConfig.speeed: unknown key"),
    ],
)
def test_emulator_config_is_validated_and_names_the_field(bad, said):
    from mmbot.errors import UserError

    good = {"symbol": "XRPUSDT", "tick_px": TICK_PX, "lot_qty": LOT_QTY, "keys": KEYS}
    with pytest.raises(UserError) as err:
        EmulatorConfig(**(good | bad))
    assert str(err.value).startswith(said)
    cfg = EmulatorConfig(**good)
    with pytest.raises(ValueError):  # frozen: a running emulator's settings do not change
        cfg.speed = 2.0  # type: ignore[misc]


async def _with_emulator(fn, **kw):
    emu = Emulator(
        make_market(30),
        EmulatorConfig(symbol="XRPUSDT", tick_px=TICK_PX, lot_qty=LOT_QTY, keys=KEYS, **kw),
    )
    port = await emu.start()
    try:
        async with aiohttp.ClientSession() as http:
            return await asyncio.wait_for(fn(emu, http, f"http://127.0.0.1:{port}"), 20)
    finally:
        await emu.stop()


def test_auth_failures_are_refused():
    async def fn(emu, http, url):
        codes = {}
        for name, keys in (
            ("wrong_key", ApiKeys("nope", "s-test")),
            ("wrong_secret", ApiKeys("k-test", "bad")),
        ):
            with pytest.raises(BybitError) as ei:
                await BybitRest(http, url, keys).open_orders("XRPUSDT")
            codes[name] = ei.value.ret_code
        rest = BybitRest(http, url, KEYS)
        rest.time_offset_ms = -60_000  # a timestamp outside recv_window
        with pytest.raises(BybitError) as ei:
            await rest.open_orders("XRPUSDT")
        codes["stale_ts"] = ei.value.ret_code
        assert await BybitRest(http, url, KEYS).open_orders("XRPUSDT") == []
        return codes

    assert asyncio.run(_with_emulator(fn)) == {
        "wrong_key": 10003,
        "wrong_secret": 10004,
        "stale_ts": 10002,
    }


def test_post_only_order_rests_then_fills_or_cancels_and_position_follows():
    async def fn(emu, http, url):
        rest = BybitRest(http, url, KEYS)
        await asyncio.sleep(0.3)
        bb, ba = emu.matcher.best_bid(), emu.matcher.best_ask()
        # a post-only buy at the ask would take liquidity: Bybit cancels it (EC_PostOnlyWillTakeLiquidity)
        await rest.create_order("XRPUSDT", 1, "10", f"{ba:.4f}", "cross-1")
        row = await rest.order_by_link("XRPUSDT", "cross-1")
        assert (
            row["orderStatus"] == "Cancelled"
            and row["rejectReason"] == "EC_PostOnlyWillTakeLiquidity"
        )
        # a buy far below the touch rests, a duplicate client id is refused, cancel works once
        await rest.create_order("XRPUSDT", 1, "10", f"{bb - 50 * TICK_PX:.4f}", "rest-1")
        with pytest.raises(BybitError) as ei:
            await rest.create_order("XRPUSDT", 1, "10", f"{bb - 50 * TICK_PX:.4f}", "rest-1")
        assert ei.value.ret_code == 110072
        assert [o["orderLinkId"] for o in await rest.open_orders("XRPUSDT")] == ["rest-1"]
        await rest.cancel_order("XRPUSDT", "rest-1")
        with pytest.raises(BybitError) as ei:
            await rest.cancel_order("XRPUSDT", "rest-1")
        assert ei.value.ret_code == 110001
        # a GTC buy through the ask takes liquidity (taker) at the ask levels
        await rest.create_order("XRPUSDT", 1, "10", f"{ba + 5 * TICK_PX:.4f}", "take-1", tif="GTC")
        ex = await rest.executions("XRPUSDT")
        assert len(ex) >= 1 and all(not e["isMaker"] for e in ex if e["orderLinkId"] == "take-1")
        assert sum(float(e["execQty"]) for e in ex if e["orderLinkId"] == "take-1") == 10.0
        assert abs(float(ex[0]["feeRate"]) - 0.00055) < 1e-12
        assert await rest.position("XRPUSDT") == 10.0

    asyncio.run(_with_emulator(fn))


def test_rest_faults_5xx_rate_limit_reject_timeout():
    async def fn(emu, http, url):
        rest = BybitRest(http, url, KEYS, timeout_s=0.5)
        await asyncio.sleep(0.2)
        bb = emu.matcher.best_bid()
        px = f"{bb - 40 * TICK_PX:.4f}"
        await emu.inject({"kind": "rest_5xx", "count": 1})
        with pytest.raises(TransportError):
            await rest.open_orders("XRPUSDT")
        await emu.inject({"kind": "rate_limit", "count": 1})
        with pytest.raises(RateLimited):
            await rest.create_order("XRPUSDT", 1, "10", px, "a1")
        await emu.inject({"kind": "reject", "count": 1})
        with pytest.raises(BybitError) as ei:
            await rest.create_order("XRPUSDT", 1, "10", px, "a2")
        assert ei.value.ret_code == 110007
        # timeout: the order took effect at the exchange although the client never got the answer
        await emu.inject({"kind": "rest_timeout", "count": 1, "seconds": 1.5})
        with pytest.raises(TransportError):
            await rest.create_order("XRPUSDT", 1, "10", px, "a3")
        assert (await rest.order_by_link("XRPUSDT", "a3"))["orderStatus"] == "New"
        assert await rest.order_by_link("XRPUSDT", "a1") is None  # rate-limited: never processed

    asyncio.run(_with_emulator(fn))


def test_public_stream_snapshot_then_deltas_and_seq_gap_is_visible():
    async def fn(emu, http, url):
        await asyncio.sleep(0.3)  # past the replay's opening snapshot: one snapshot, then deltas
        async with http.ws_connect(url.replace("http", "ws") + "/v5/public/linear") as ws:
            await ws.send_json(
                {"op": "subscribe", "args": ["orderbook.50.XRPUSDT", "publicTrade.XRPUSDT"]}
            )
            assert (await ws.receive_json(timeout=2))["success"] is True
            book = LiveBook()
            seen = []
            injected = False
            # bounded by messages, not by the wall clock: a loaded machine sends fewer per second
            for _ in range(500):
                msg = await ws.receive_json(timeout=2)
                if msg["topic"].startswith("orderbook"):
                    seen.append(book.apply(msg))
                    if len(seen) == 5 and not injected:
                        await emu.inject({"kind": "seq_gap", "count": 1})
                        injected = True
                    if seen[-1] == "gap":
                        break
            assert seen[0] == "snapshot" and seen[1:5] == ["delta"] * 4 and seen[-1] == "gap"
            assert book.best_bid() < book.best_ask()
            # resubscribing yields a fresh snapshot, from which the book is valid again
            await ws.send_json({"op": "unsubscribe", "args": ["orderbook.50.XRPUSDT"]})
            await ws.send_json({"op": "subscribe", "args": ["orderbook.50.XRPUSDT"]})
            for _ in range(20):
                msg = await ws.receive_json(timeout=2)
                if msg.get("topic", "").startswith("orderbook") and book.apply(msg) == "snapshot":
                    break
            assert book.valid
            # bad topic -> refused
            await ws.send_json({"op": "subscribe", "args": ["orderbook.50.NOPEUSDT"]})
            for _ in range(50):
                msg = await ws.receive_json(timeout=2)
                if "op" in msg:
                    assert msg["success"] is False
                    break

    asyncio.run(_with_emulator(fn))


def test_private_stream_needs_valid_auth():
    from mmbot.live.signing import ws_auth_args

    async def fn(emu, http, url):
        wsurl = url.replace("http", "ws") + "/v5/private"
        async with http.ws_connect(wsurl) as ws:
            await ws.send_json(
                {
                    "op": "auth",
                    "args": ws_auth_args(
                        ApiKeys("k-test", "wrong"), int(time.time() * 1000) + 5000
                    ),
                }
            )
            assert (await ws.receive_json(timeout=2))["success"] is False
        async with http.ws_connect(wsurl) as ws:
            await ws.send_json(
                {"op": "auth", "args": ws_auth_args(KEYS, int(time.time() * 1000) + 5000)}
            )
            assert (await ws.receive_json(timeout=2))["success"] is True
            await ws.send_json({"op": "subscribe", "args": ["order", "execution"]})
            assert (await ws.receive_json(timeout=2))["success"] is True
            rest = BybitRest(http, url, KEYS)
            while not emu.matcher.bids:  # the first market message goes out at its receive time
                await asyncio.sleep(0.01)
            await rest.create_order(
                "XRPUSDT", 1, "10", f"{emu.matcher.best_bid() - 30 * TICK_PX:.4f}", "p1"
            )
            msg = await ws.receive_json(timeout=2)
            assert msg["topic"] == "order" and msg["data"][0]["orderLinkId"] == "p1"
            assert msg["data"][0]["orderStatus"] == "New"

    asyncio.run(_with_emulator(fn))


def test_fault_spec_parsing():
    assert parse_fault_spec("seq_gap:2@1.5") == (1.5, {"kind": "seq_gap", "count": 2})
    assert parse_fault_spec("stall_feed:3") == (0.0, {"kind": "stall_feed", "seconds": 3.0})
    from mmbot.errors import UserError

    with pytest.raises(UserError):
        parse_fault_spec("meteor")
    json.dumps(parse_fault_spec("drop_ws@2"))


def test_looped_replay_continues_the_matching_venue_past_the_capture_end():
    """--loop: the second pass of a 1 s capture goes on in the same venue (times shifted past the
    first pass): an order resting since pass 1 is still open, and a new one is accepted."""

    async def fn(emu, http, url):
        rest = BybitRest(http, url, KEYS)
        while not emu.matcher.bids:
            await asyncio.sleep(0.01)
        await rest.create_order(
            "XRPUSDT", 1, "10", f"{emu.matcher.best_bid() - 40 * TICK_PX:.4f}", "pass1"
        )
        first_end_ns = emu._t_last_ns
        t_end = time.monotonic() + 10
        while emu.pass_offset_ns == 0 and time.monotonic() < t_end:
            await asyncio.sleep(0.05)
        assert emu.pass_offset_ns > first_end_ns - emu._t_first_ns  # a second pass started
        await asyncio.sleep(0.3)
        assert emu.matcher.now_capture_ns > first_end_ns  # the venue's clock went on
        await rest.create_order(
            "XRPUSDT", -1, "10", f"{emu.matcher.best_ask() + 40 * TICK_PX:.4f}", "pass2"
        )
        assert sorted(o["orderLinkId"] for o in await rest.open_orders("XRPUSDT")) == [
            "pass1",
            "pass2",
        ]

    async def run():
        emu = Emulator(
            make_market(1.0),
            EmulatorConfig(symbol="XRPUSDT", tick_px=TICK_PX, lot_qty=LOT_QTY, keys=KEYS),
        )
        port = await emu.start()
        try:
            async with aiohttp.ClientSession() as http:
                await asyncio.wait_for(fn(emu, http, f"http://127.0.0.1:{port}"), 20)
        finally:
            await emu.stop()

    asyncio.run(run())


def test_rate_limit_answer_says_when_the_window_frees():
    """Over the order rate limit the answer is retCode 10006 with Bybit's reset time: 1 s after the
    oldest request still in the sliding window (what the bot's pause waits for)."""

    async def fn(emu, http, url):
        rest = BybitRest(http, url, KEYS)
        while not emu.matcher.bids:
            await asyncio.sleep(0.01)
        px = f"{emu.matcher.best_bid() - 40 * TICK_PX:.4f}"
        t_first_ms = time.time_ns() // 1_000_000
        await rest.create_order("XRPUSDT", 1, "10", px, "r1")
        await rest.create_order("XRPUSDT", 1, "10", px, "r2")
        with pytest.raises(RateLimited) as ei:
            await rest.create_order("XRPUSDT", 1, "10", px, "r3")
        assert ei.value.reset_ms is not None
        assert t_first_ms + 1000 <= ei.value.reset_ms <= time.time_ns() // 1_000_000 + 1001
        assert await rest.order_by_link("XRPUSDT", "r3") is None  # refused, not processed

    asyncio.run(_with_emulator(fn, rate_limit_per_s=2))


def test_hardened_emulator_refuses_unbounded_windows_unsigned_control_and_malformed_requests():
    """recv_window is bounded (a 60 s old request with recv_window 1e9 is refused), a websocket
    auth may not claim years of validity, /control/* needs signed headers, and malformed requests
    get a 4xx answer (never a 500)."""
    from mmbot.live.signing import rest_headers, ws_auth_args

    async def fn(emu, http, url):
        got = {}
        now_ms = int(time.time() * 1000)
        old = rest_headers(KEYS, now_ms - 60_000, "category=linear", recv_window_ms=10**9)
        async with http.get(f"{url}/v5/order/realtime?category=linear", headers=old) as r:
            got["recv_window_1e9"] = (await r.json())["retCode"]
        async with http.get(f"{url}/control/state") as r:
            got["control_unsigned"] = r.status
        signed = rest_headers(KEYS, now_ms, "")
        async with http.get(f"{url}/control/state", headers=signed) as r:
            got["control_signed"] = r.status
        for name, body in (("not_json", "{"), ("not_object", "[1]"), ("bad_qty", None)):
            if body is None:
                body = json.dumps(
                    {
                        "category": "linear",
                        "symbol": "XRPUSDT",
                        "side": "Buy",
                        "orderType": "Limit",
                        "qty": "abc",
                        "price": "1",
                        "orderLinkId": "x",
                    }
                )
            h = rest_headers(KEYS, int(time.time() * 1000), body)
            async with http.post(f"{url}/v5/order/create", data=body, headers=h) as r:
                got[name] = (r.status, (await r.json())["retCode"])
        async with http.ws_connect(url.replace("http", "ws") + "/v5/private") as ws:
            await ws.send_str("garbage")
            got["ws_garbage"] = (await ws.receive_json(timeout=2))["success"]
            years = now_ms + 31 * 365 * 86_400_000
            await ws.send_json({"op": "auth", "args": ws_auth_args(KEYS, years)})
            got["ws_auth_31_years"] = (await ws.receive_json(timeout=2))["success"]
        return got

    assert asyncio.run(_with_emulator(fn)) == {
        "recv_window_1e9": 10001,
        "control_unsigned": 401,
        "control_signed": 200,
        "not_json": (400, 10001),
        "not_object": (400, 10001),
        "bad_qty": (200, 10001),  # a parameter error is answered as V5 does: HTTP 200, 10001
        "ws_garbage": False,
        "ws_auth_31_years": False,
    }
