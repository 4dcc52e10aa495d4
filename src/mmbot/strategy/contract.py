"""The quoter contract: what a quoting model is, what it is handed and what it answers.

A quoter says where it wants to be; the engine (``mmbot.engine``) owns orders, latency, guards,
records and the audit. A quoter is a Python module (or any object with these attributes):

``NAME`` (str)
    Its name in records and reports.
``PARAMS`` (dict[str, float])
    Its parameters and their defaults. ``--param NAME=VALUE`` sets one; an unknown name is an error.
    The engine hands them to every function as ``qparams``, a one-element record array of ``f8``
    fields in this order (read ``qparams[0].window_s``).
``WAKE_INTERVAL_MS`` (float)
    The engine wakes the quoter at least this often (ms of local time).
``WAKE_ON_MARKET`` (bool)
    True: also wake on every local market message and order response (as the default ``glft``
    does); False: wake on the interval only (as hftbacktest's ``elapse`` loop).
``LEVELS`` (int, optional, default 1)
    Orders per side, 1..``MAX_LEVELS``.
``BOOK_LEVELS`` (int, optional, default ``DEPTH_LEVELS``)
    How many depth levels per side the quoter reads from the view's ``bid_px``/``bid_qty``/
    ``ask_px``/``ask_qty``, 0..``DEPTH_LEVELS``; the engine fills only those (the rest stay NaN / 0).
    A quoter that reads only the touch and the near-touch sizes says 0 and spares every wake the
    depth scan.
``REQUOTE`` (str, optional, default ``"replace"``)
    How the order manager moves a working order to a new quote. ``"replace"``: one cancel-replace
    once the quote is off by more than the reprice tolerance (or the order is older than
    ``tail_age``). ``"cancel_new"``: any change of price or size cancels the order and sends a new
    one in the same wake, as hftbacktest's tutorials do (order ids by price); the guards judge the
    pair once, its cancel counting as a request in flight (at most ``MAX_LEVELS // 2`` levels).
``runtime_knobs`` (tuple of str, optional, default None: all six)
    Which of the seed's runtime knobs (``mmbot.knobs.KNOB_NAMES``) its own functions read from
    ``params`` (e.g. ``base_spread_bps_delta``); the engine's order manager and guards read
    ``mmbot.knobs.ENGINE_KNOBS`` for every quoter. The soak's tuner moves only those two sets (and
    the quoter's tunable parameters): a knob nothing reads cannot change a run.
``new_state(params, qparams) -> np.ndarray``
    Its whole memory: a one-element structured array of its own dtype (plain Python is fine).
``on_market(state, params, qparams, view, trades, n_trades)`` (numba ``@njit``)
    Market trades seen locally since the last wake are ``trades[:n_trades]`` (``TRADE_VIEW_DTYPE``),
    the book and account as of now in ``view[0]`` (``MARKET_VIEW_DTYPE``).
``on_fill(state, params, qparams, fill)`` (``@njit``)
    One of our fills, learnt now (``fill`` is a ``FILL_VIEW_DTYPE`` record).
``quote(state, params, qparams, view, own, out)`` (``@njit``)
    Fill ``out[0]`` (``QUOTE_DTYPE``): per side and level the desired price and quantity (NaN / 0 =
    no order), the side's target price the audit attributes slippage against, the half-spread the
    order manager scales its reprice tolerance with, and ``no_quote_reason`` (``NOQUOTE_*``) when it
    quotes nothing on purpose (e.g. warming up). ``own`` (``ORDER_VIEW_DTYPE``, row
    ``level * 2 + side``) holds our working orders as the engine knows them.

``params`` is the engine's record (``mmbot.strategy.params.PARAMS_DTYPE``: tick, lot, order size,
position limit, fees, knobs). Every call happens at ``view[0].now_ns``, local time; nothing in a
quoter may read the wall clock or a random source that is not seeded from its parameters, so a
backtest stays a pure function of its inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from mmbot.strategy.views import ORDER_VIEW_DTYPE, SIDE_ASK, SIDE_BID

MAX_LEVELS = 8  # orders per side a quoter may ask for
DEPTH_LEVELS = 10  # non-empty book levels per side in the view
TRADE_BUFFER = 4096  # trades per wake handed to on_market (older ones of a burst are dropped)
FILL_BUFFER = 256  # fills per wake handed to on_fill

# why a quoter quotes nothing (out[0].no_quote_reason); recorded by the engine
NOQUOTE_NONE = 0
NOQUOTE_WARMUP = 1  # estimators do not have enough data yet
NOQUOTE_NO_BOOK = 2  # no two-sided local book
NOQUOTE_PAUSED = 3  # the quoter's own choice (e.g. a signal says stand aside)
# how the order manager requotes a quoter's orders (Quoter.requote; params.requote_mode)
REQUOTE_REPLACE = 0
REQUOTE_CANCEL_NEW = 1
REQUOTE_MODES = {"replace": REQUOTE_REPLACE, "cancel_new": REQUOTE_CANCEL_NEW}

NOQUOTE_NAMES = {
    NOQUOTE_NONE: "none",
    NOQUOTE_WARMUP: "warmup",
    NOQUOTE_NO_BOOK: "no_book",
    NOQUOTE_PAUSED: "paused",
}

MARKET_VIEW_DTYPE = np.dtype(
    [
        ("now_ns", "i8"),  # local time of this wake
        ("best_bid_px", "f8"),
        ("best_bid_qty", "f8"),
        ("best_ask_px", "f8"),
        ("best_ask_qty", "f8"),
        ("bid_near_qty", "f8"),  # visible bid size within near_band_bps of the best bid (own incl.)
        ("ask_near_qty", "f8"),
        # the first DEPTH_LEVELS non-empty levels per side within 64 ticks of the touch, best first
        # (NaN / 0 beyond; the scan is per wake, so it is bounded: sim.venue.DEPTH_SCAN_TICKS)
        ("bid_px", "f8", (DEPTH_LEVELS,)),
        ("bid_qty", "f8", (DEPTH_LEVELS,)),
        ("ask_px", "f8", (DEPTH_LEVELS,)),
        ("ask_qty", "f8", (DEPTH_LEVELS,)),
        ("position_qty", "f8"),  # our position, base units or contracts (+ long)
        ("pnl", "f8"),  # our PnL marked at the local mid, fees included
        ("last_trade_px", "f8"),  # last market trade seen locally (NaN before the first)
    ],
    align=True,
)

TRADE_VIEW_DTYPE = np.dtype(
    [("local_ts", "i8"), ("px", "f8"), ("qty", "f8"), ("side", "i8")],  # side: aggressor +1 buy
    align=True,
)

FILL_VIEW_DTYPE = np.dtype(
    [
        ("local_ts", "i8"),  # when we learnt it
        ("exch_ts", "i8"),
        ("side", "i8"),  # +1 we bought, -1 we sold
        ("px", "f8"),
        ("qty", "f8"),
        ("maker", "i8"),
        ("target_px", "f8"),  # the side's target in force at the fill
        ("position_qty", "f8"),  # after the fill
    ],
    align=True,
)

QUOTE_DTYPE = np.dtype(
    [
        ("bid_px", "f8", (MAX_LEVELS,)),
        ("bid_qty", "f8", (MAX_LEVELS,)),
        ("ask_px", "f8", (MAX_LEVELS,)),
        ("ask_qty", "f8", (MAX_LEVELS,)),
        ("bid_target_px", "f8"),
        ("ask_target_px", "f8"),
        ("half_spread_px", "f8"),  # scales the order manager's reprice tolerance (NaN: ticks only)
        ("no_quote_reason", "i8"),
    ],
    align=True,
)

__all__ = [
    "DEPTH_LEVELS",
    "FILL_VIEW_DTYPE",
    "MARKET_VIEW_DTYPE",
    "MAX_LEVELS",
    "NOQUOTE_NAMES",
    "ORDER_VIEW_DTYPE",
    "QUOTE_DTYPE",
    "REQUOTE_CANCEL_NEW",
    "REQUOTE_MODES",
    "REQUOTE_REPLACE",
    "SIDE_ASK",
    "SIDE_BID",
    "TRADE_BUFFER",
    "TRADE_VIEW_DTYPE",
    "Views",
    "new_views",
    "new_market_view",
    "new_quote",
    "new_own_orders",
    "clear_quote",
    "Quoter",
    "no_market",
    "no_fill",
]


def new_market_view() -> np.ndarray:
    v = np.zeros(1, dtype=MARKET_VIEW_DTYPE)
    for f in ("best_bid_px", "best_ask_px", "bid_px", "ask_px", "last_trade_px"):
        v[f] = np.nan
    return v


def new_quote() -> np.ndarray:
    q = np.zeros(1, dtype=QUOTE_DTYPE)
    for f in ("bid_px", "ask_px", "bid_target_px", "ask_target_px", "half_spread_px"):
        q[f] = np.nan
    return q


def new_own_orders() -> np.ndarray:
    o = np.zeros(2 * MAX_LEVELS, dtype=ORDER_VIEW_DTYPE)
    o["px"] = np.nan
    return o


class Views(NamedTuple):
    """What a quoter reads and writes at a wake, as the backtest and the live session hold them."""

    market: np.ndarray  # MARKET_VIEW_DTYPE, one row
    own: np.ndarray  # ORDER_VIEW_DTYPE, two rows per level
    quote: np.ndarray  # QUOTE_DTYPE, one row (the quoter's answer)
    trades: np.ndarray  # TRADE_VIEW_DTYPE, TRADE_BUFFER rows
    fills: np.ndarray  # FILL_VIEW_DTYPE, FILL_BUFFER rows


def new_views() -> Views:
    """Fresh views: no market yet, no own order, no quote, empty trade and fill buffers."""
    return Views(
        new_market_view(),
        new_own_orders(),
        new_quote(),
        np.zeros(TRADE_BUFFER, TRADE_VIEW_DTYPE),
        np.zeros(FILL_BUFFER, FILL_VIEW_DTYPE),
    )


@njit(cache=True)
def clear_quote(out) -> None:
    """Reset ``out`` to 'no order anywhere' (works compiled and in Python)."""
    q = out[0]
    for j in range(MAX_LEVELS):
        q.bid_px[j] = np.nan
        q.ask_px[j] = np.nan
        q.bid_qty[j] = 0.0
        q.ask_qty[j] = 0.0
    q.bid_target_px = np.nan
    q.ask_target_px = np.nan
    q.half_spread_px = np.nan
    q.no_quote_reason = 0


@njit(cache=True)
def no_market(state, params, qparams, view, trades, n_trades) -> None:
    """``on_market`` of a quoter that keeps no market statistics."""
    return None


@njit(cache=True)
def no_fill(state, params, qparams, fill) -> None:
    """``on_fill`` of a quoter that ignores its fills."""
    return None


def _empty_state(params: np.ndarray, qparams: np.ndarray) -> np.ndarray:
    return np.zeros(1, dtype=np.dtype([("n_wakes", "i8")], align=True))


@dataclass(frozen=True)
class Quoter:
    """A quoter as one object (what ``--strategy FILE.py:NAME`` names): see the module docstring.

    ``quote`` is required; ``on_market``/``on_fill`` default to no-ops and ``new_state`` to a
    one-field record."""

    name: str
    quote: Callable[..., Any]
    params: dict[str, float] = field(default_factory=dict)
    new_state: Callable[..., np.ndarray] = _empty_state
    on_market: Callable[..., Any] = no_market
    on_fill: Callable[..., Any] = no_fill
    wake_interval_ms: float = 100.0
    wake_on_market: bool = False
    levels: int = 1
    requote: str = "replace"
    book_levels: int = DEPTH_LEVELS
    doc: str = ""
    # each switchable piece: its label and the parameters that switch it off, for the measured
    # contribution of each piece (``mmbot backtest --pieces``, ``bench/bench_edge.py``'s ablation)
    pieces: tuple[tuple[str, dict[str, float]], ...] = ()
    # the seed's runtime knobs its functions read (None: undeclared, treated as all six)
    runtime_knobs: tuple[str, ...] | None = None
