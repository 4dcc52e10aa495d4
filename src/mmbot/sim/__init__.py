"""mmbot.sim: the simulated venue, numba-compiled end to end (hftbacktest-like verbs).

Build it in Python, drive it from a compiled loop, collect records in Python::

    from mmbot import sim
    v = sim.make_venue(events, sim.VenueConfig(tick_px=0.1, lot_qty=0.001, maker_fee_rate=-0.00005,
                                               taker_fee_rate=0.0007, entry_latency_ns=10_000_000,
                                               response_latency_ns=10_000_000, queue_model="power2"))
    run_loop(v)                       # your @njit(cache=True) driver calling the verbs below
    fills, actions, marks, stats = sim.finish(v, events)

Python (not compiled):
- ``make_venue(events, cfg: VenueConfig) -> Venue`` validates (decreasing exch_ts, bad config ->
  UserError) and builds the state (a numba structref; pass it to compiled functions).
- ``prepare_events(events) -> PreparedEvents``: the checks and indices ``make_venue`` needs, done
  once for events run many times (``make_venue`` and ``finish`` take either).
- ``extend_venue(v, events)`` gives a running venue its next block of market events (a live feed
  message by message, a looped capture); books, orders, accounts and records carry over.
- ``finish(v, events=None) -> (fills FILL_DTYPE, actions ACTION_DTYPE, marks MARK_DTYPE, stats)``;
  raises UserError if any verb was called with bad input (qty <= 0, price off the tick grid, ...).
- ``VenueConfig`` (see ``mmbot.sim.config``; a frozen pydantic model, a bad value is one UserError
  line naming the field): tick_px, lot_qty, maker_fee_rate, taker_fee_rate, entry_latency_ns,
  response_latency_ns, latency=(ts_ns, entry_ns, response_ns) | None, queue_model "risk_averse" |
  "power<N>" | "log", partial_fills, rate_limit_per_s, max_orders, ladder_pad_ratio,
  contract_size, inverse, start_position_qty, start_cash. A backtest builds it from its run
  configuration (``mmbot.config.run.RunConfig.venue_config``).

Compiled verbs (``@njit(cache=True)``; call them from ``@njit`` code, or from Python for tests):

time (local clock = the strategy's):
- ``elapse(v, dt_ns) -> int``           OK(0) or END_OF_DATA(3) when no market data is left
- ``goto(v, local_ts) -> int``          same, to an absolute local time
- ``wait_next(v, timeout_ns) -> int``   stop after the next local feed message (all rows sharing its
                                        local_ts; WAIT_FEED=1) or order
                                        response (WAIT_RESPONSE=2); OK on timeout; END_OF_DATA
- ``now_ns(v) -> int``
  At equal times (as hftbacktest): local data, then order responses, then exchange data, then
  order arrivals at the exchange.

local book (updated at local_ts; what a strategy may read; prices NaN / qty 0 when a side is empty):
- ``best_bid_px(v)``, ``best_ask_px(v)``, ``best_bid_qty(v)``, ``best_ask_qty(v)``, ``mid_px(v)``
- ``best_bid_tick(v)``, ``best_ask_tick(v)`` (absolute ticks = px / tick_px; -1 empty), ``tick_px(v)``, ``lot_qty(v)``
- ``qty_at_px(v, side, px)``; ``qty_within_ticks(v, side, n_ticks)`` (touch .. touch -/+ n_ticks)
- ``local_book_version(v, side)``: bumped by every local book row that moves ``side``'s touch or
  changes one of its levels within ``VIEW_BAND_TICKS`` of it (unchanged: that part is the same)
- trades: ``drain_trades(v) -> (buy_qty, sell_qty, buy_n, sell_n)`` since the last drain
  (side = aggressor); ``trades_seen(v)`` + ``local_trades(v)`` ring (TRADE_DTYPE, TRADE_RING rows:
  trade k at [k % TRADE_RING]: local_ts, px, qty, side)
exchange book (updated at exch_ts; matching uses it; for tests/records): ``exch_best_bid_px``,
``exch_best_ask_px``, ``exch_mid_px``, ``exch_qty_at_px(v, side, px)``

own orders and account (local view = what responses have told the strategy so far):
- ``orders(v)`` -> ORDER_DTYPE slots: order_id, side, tif, ord_type, status (ST_*), req (REQ_* in
  flight), px, qty, leaves_qty, exec_qty, create_local_ts, ...; exchange truth: ex_status, ex_px,
  ex_leaves_qty, queue_ahead_qty, live_exch_ts
- ``find_order(v, order_id) -> slot | -1``, ``open_order_count(v, side)`` (0 = both), ``inflight_count(v)``
- ``position_qty(v)``, ``cash(v)``, ``equity(v)`` (cash + position x local mid), ``fill_count(v)``;
  ``exch_position_qty(v)``, ``exch_equity(v)`` (exchange-side truth)

actions (each travels with the entry latency, is processed at its exchange arrival time, answered
with the response latency; one request per order in flight):
- ``submit(v, side, px, qty, tif, ord_type) -> order_id > 0 | ERR_*``  side BUY(+1)/SELL(-1);
  tif TIF_GTC / TIF_GTX (post-only: rejected REASON_POST_ONLY if it would cross) / TIF_IOC;
  ord_type ORD_LIMIT / ORD_MARKET. Crossing GTC/IOC and market orders walk the exchange book
  level by level (one fill row per level, taker fee); IOC/market remainders expire.
- ``cancel(v, order_id) -> 0 | ERR_*``   too late (order already filled) -> REJECTED REASON_UNKNOWN_ORDER
- ``modify(v, order_id, px, qty) -> 0 | ERR_*``  cancel-replace; a new price or a larger qty loses the
  queue position; a post-only replace that would cross removes the order (REJECTED, post_only)
- ``set_targets(v, bid_target_px, ask_target_px)``: copied into each fill's target_px
- ``record_action(v, kind, op, side, order_id, px, qty, reason)``: guards append ACT_INTENDED /
  ACT_BLOCKED rows (local_ts = now) into the same ACTION buffer.
  Exchange rate limit: new + modify requests in a sliding 1 s window; excess REJECTED
  REASON_RATE_LIMIT and counted. Prices outside the ladder: REJECTED REASON_PRICE_BAND.

matching (hftbacktest semantics): a resting order fills when a trade prints through its price, when
the exchange book moves through it (best opposite price reaches it), or when trades at its price
consume the queue ahead (``queue_model``: risk_averse = trades only, level decreases cap the queue;
power<N>/log = hftbacktest ProbQueueModel with PowerProbQueueFunc/LogProbQueueFunc). A trade at
our price fills once it overshoots the queue ahead by half a lot or more (hftbacktest 2.4's
``round(-front / lot)``): without partial fills the whole order, with them those lots. On the USD-M
capture all 374 fills of the bench strategy equal hftbacktest's (bench/vs_hftbacktest.py).
Books: dense price ladders over the traded range +- 2 % (levels beyond are dropped and counted as
``out_of_band_levels``); a crossing level moves the opposite best pointer (hftbacktest
HashMapMarketDepth); DEPTH_BBO (book-ticker) rows set the quoted level and drop better ones
(hftbacktest 2.4 ignores them); DEPTH_CLEAR clears a side from its best down/up to ``px``.
Taker orders do not deplete the simulated book (the feed stays the truth); a GTC remainder that
rests after taking fills by book crossing only when the opposite best moves beyond what it took.

records: FILL_DTYPE per fill, ACTION_DTYPE per order state change (SENT at the strategy; ACKED /
REJECTED / CANCELLED / FILLED / EXPIRED stamped local_ts = when the strategy learns it, exch_ts =
when it happened; ``finish`` returns them in local_ts order), MARK_DTYPE at every exchange-mid
change and every fill. Deterministic, bit for bit.

numba caching: the venue type's name carries a digest of this package's source (and of
mmbot.events / mmbot.records / sim.config), so a caller's ``cache=True`` loop recompiles whenever
the venue changes (numba itself does not notice changed callees).
"""

from . import api, config, venue
from .api import PreparedEvents, check_error, extend_venue, finish, make_venue, prepare_events
from .config import QM_LOG, QM_POWER, QM_RISK_AVERSE, VenueConfig
from .venue import *  # noqa: F403 - the verbs and codes, listed once in venue.__all__

__all__ = [
    *venue.__all__,
    "QM_LOG",
    "QM_POWER",
    "QM_RISK_AVERSE",
    "VenueConfig",
    "check_error",
    "extend_venue",
    "finish",
    "PreparedEvents",
    "prepare_events",
    "make_venue",
    "config",
    "venue",
    "api",
]
