"""The emulator's reference data in Bybit V5's published shapes: the instrument row of
``/v5/market/instruments-info``, the coin rows of ``/v5/asset/coin/query-info``, the key and account
descriptions of ``/v5/user/query-api`` and ``/v5/account/info``, and the order book of
``/v5/market/orderbook``.

Only what a third-party client reads to trade one linear perpetual is given; the values describe
the emulated market (its symbol, tick and lot) and a unified trading account, nothing more.
"""

from __future__ import annotations

from mmbot.live.bybit_msgs import fmt

QUOTE_COINS = ("USDT", "USDC", "USD")
# V5 caps (linear): orderbook depth 1..500 (default 25), instruments page 1..1000 (default 500)
BOOK_LIMIT_MAX = 500
BOOK_LIMIT_DEFAULT = 25
INSTRUMENTS_CATEGORIES = ("spot", "linear", "inverse", "option")
# /v5/account/info unifiedMarginStatus: 5 = unified trading account 2.0
UTA_2_STATUS = 5
MAX_ORDER_LOTS = 1_000_000
MAX_LEVERAGE = "100.00"
LAUNCH_MS = "1585526400000"  # the launch time shown for the emulated contract (2020-03-30)
FUNDING_INTERVAL_MIN = 480


def split_symbol(symbol: str) -> tuple[str, str]:
    """(base coin, quote coin) of a linear symbol such as BTCUSDT."""
    for q in QUOTE_COINS:
        if symbol.endswith(q) and len(symbol) > len(q):
            return symbol[: -len(q)], q
    return symbol, "USDT"


def instrument_row(symbol: str, tick_px: float, lot_qty: float, px_dec: int, qty_dec: int) -> dict:
    base, quote = split_symbol(symbol)
    return {
        "symbol": symbol,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": base,
        "quoteCoin": quote,
        "settleCoin": quote,
        "launchTime": LAUNCH_MS,
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(px_dec),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": MAX_LEVERAGE, "leverageStep": "0.01"},
        "priceFilter": {
            "minPrice": fmt(tick_px, px_dec),
            "maxPrice": fmt(tick_px * 10**9, px_dec),
            "tickSize": fmt(tick_px, px_dec),
        },
        "lotSizeFilter": {
            "maxOrderQty": fmt(lot_qty * MAX_ORDER_LOTS, qty_dec),
            "maxMktOrderQty": fmt(lot_qty * MAX_ORDER_LOTS, qty_dec),
            "minOrderQty": fmt(lot_qty, qty_dec),
            "qtyStep": fmt(lot_qty, qty_dec),
            "postOnlyMaxOrderQty": fmt(lot_qty * MAX_ORDER_LOTS, qty_dec),
            "minNotionalValue": "5",
        },
        "unifiedMarginTrade": True,
        "fundingInterval": FUNDING_INTERVAL_MIN,
        "settleCoinList": [quote],
        "copyTrading": "both",
        "upperFundingRate": "0.00375",
        "lowerFundingRate": "-0.00375",
        "isPreListing": False,
        "preListingInfo": None,
    }


def coin_rows(symbol: str) -> list[dict]:
    """``/v5/asset/coin/query-info``: the two coins of the market, no chains (no transfers here)."""
    return [{"name": c, "coin": c, "remainAmount": "0", "chains": []} for c in split_symbol(symbol)]


def api_key_info(key: str) -> dict:
    """``/v5/user/query-api``: a read-write key of a unified trading account."""
    return {
        "id": "1",
        "note": "emulator",
        "apiKey": key,
        "readOnly": 0,
        "secret": "",
        "permissions": {"ContractTrade": ["Order", "Position"], "Wallet": ["AccountTransfer"]},
        "ips": ["*"],
        "type": 1,
        "deadlineDay": -1,
        "expiredAt": "",
        "createdAt": "",
        "unified": 0,
        "uta": 1,
        "userID": 1,
        "inviterID": 0,
        "vipLevel": "No VIP",
        "mktMakerLevel": "0",
        "affiliateID": 0,
        "rsaPublicKey": "",
        "isMaster": True,
    }


def account_info() -> dict:
    return {
        "unifiedMarginStatus": UTA_2_STATUS,
        "marginMode": "REGULAR_MARGIN",
        "isMasterTrader": False,
        "spotHedgingStatus": "OFF",
        "updatedTime": "0",
        "dcpStatus": "OFF",
        "timeWindow": 10,
        "smpGroup": 0,
    }


def book_levels(
    bids: dict[float, float], asks: dict[float, float], limit: int, px_dec: int, qty_dec: int
) -> tuple[list[list[str]], list[list[str]]]:
    """The best ``limit`` levels each side, best first, as V5 strings."""
    b = sorted(bids.items(), reverse=True)[:limit]
    a = sorted(asks.items())[:limit]
    return (
        [[fmt(p, px_dec), fmt(q, qty_dec)] for p, q in b],
        [[fmt(p, px_dec), fmt(q, qty_dec)] for p, q in a],
    )
