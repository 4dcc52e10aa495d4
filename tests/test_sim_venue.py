"""Hand-built event sequences through the compiled venue; every expectation is worked out here."""

from __future__ import annotations

import numpy as np
import pytest

from mmbot import sim
from mmbot.errors import UserError
from mmbot.events import (
    BUY_EVENT,
    DEPTH_EVENT,
    EVENT_DTYPE,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
)
from mmbot.records import (
    ACT_ACKED,
    ACT_CANCELLED,
    ACT_FILLED,
    ACT_REJECTED,
    ACT_SENT,
    OP_CANCEL,
    OP_NEW,
    REASON_POST_ONLY,
    REASON_RATE_LIMIT,
    REASON_UNKNOWN_ORDER,
)

F = EXCH_EVENT | LOCAL_EVENT
BID = DEPTH_EVENT | BUY_EVENT | F
ASK = DEPTH_EVENT | SELL_EVENT | F
SELL_TRADE = TRADE_EVENT | SELL_EVENT | F  # aggressor sold: hits bids
BUY_TRADE = TRADE_EVENT | BUY_EVENT | F  # aggressor bought: lifts asks

MAKER = -0.0001
TAKER = 0.0005


def events(rows, feed_ns: int = 0) -> np.ndarray:
    """rows: (ev, exch_ts, px, qty); local_ts = exch_ts + feed_ns."""
    out = np.zeros(len(rows), EVENT_DTYPE)
    for i, (ev, ts, px, qty) in enumerate(rows):
        out[i]["ev"] = ev
        out[i]["exch_ts"] = ts
        out[i]["local_ts"] = ts + feed_ns
        out[i]["px"] = px
        out[i]["qty"] = qty
    return out


def venue(rows, feed_ns: int = 0, **kw) -> tuple[sim.Venue, np.ndarray]:
    cfg = dict(
        tick_px=0.1,
        lot_qty=1.0,
        maker_fee_rate=MAKER,
        taker_fee_rate=TAKER,
        entry_latency_ns=100,
        response_latency_ns=100,
        queue_model="risk_averse",
    )
    cfg.update(kw)
    ev = events(rows, feed_ns)
    return sim.make_venue(ev, sim.VenueConfig(**cfg)), ev


BOOK = [(BID, 1000, 100.0, 5.0), (ASK, 1000, 100.1, 5.0)]


def order_of(v, oid):
    return sim.orders(v)[sim.find_order(v, oid)]


def test_queue_ahead_is_consumed_before_our_fill():
    rows = BOOK + [
        (SELL_TRADE, 5000, 100.0, 3.0),  # queue ahead 5 -> 2
        (SELL_TRADE, 6000, 100.0, 2.0),  # -> 0: still no fill (a lot must trade through us)
        (SELL_TRADE, 7000, 100.0, 1.0),  # -> -1: our whole order fills (no partial fills)
    ]
    v, ev = venue(rows)
    sim.elapse(v, 0)
    oid = sim.submit(v, sim.BUY, 100.0, 2.0, sim.TIF_GTX, sim.ORD_LIMIT)
    assert oid > 0
    sim.goto(v, 1100)  # arrives at 1000 + 100
    assert order_of(v, oid)["queue_ahead_qty"] == 5.0
    sim.goto(v, 5500)
    assert order_of(v, oid)["queue_ahead_qty"] == 2.0
    sim.goto(v, 6500)
    assert sim.exch_position_qty(v) == 0.0
    sim.goto(v, 7050)  # filled at 7000 but the response arrives at 7100
    assert sim.exch_position_qty(v) == 2.0 and sim.position_qty(v) == 0.0
    sim.goto(v, 7100)
    assert sim.position_qty(v) == 2.0 and order_of(v, oid)["status"] == sim.ST_FILLED
    fills, actions, marks, stats = sim.finish(v, ev)
    assert len(fills) == 1
    f = fills[0]
    assert (f["exch_ts"], f["local_ts"], f["side"], f["maker"]) == (7000, 7100, 1, 1)
    assert f["px"] == 100.0 and f["qty"] == 2.0
    assert f["fee_rate"] == MAKER and f["fee"] == pytest.approx(MAKER * 100.0 * 2.0, rel=1e-15)
    assert f["order_age_ns"] == 7000 - 1100
    assert f["mid_px"] == pytest.approx(100.05) and f["position_qty"] == 2.0
    kinds = [int(k) for k in actions["kind"]]
    assert kinds == [ACT_SENT, ACT_ACKED, ACT_FILLED]
    assert stats["cash"] == pytest.approx(-200.0 - MAKER * 200.0)


def test_partial_fill_takes_what_trades_through_the_queue():
    rows = BOOK + [
        (SELL_TRADE, 5000, 100.0, 6.0),  # queue 5 -> -1: 1 of our 3 fills
        (SELL_TRADE, 6000, 100.0, 1.0),  # queue 0 -> -1: 1 more
    ]
    v, ev = venue(rows, partial_fills=True)
    sim.elapse(v, 0)
    oid = sim.submit(v, sim.BUY, 100.0, 3.0, sim.TIF_GTX, sim.ORD_LIMIT)
    sim.goto(v, 10_000)
    o = order_of(v, oid)
    assert o["status"] == sim.ST_LIVE and o["leaves_qty"] == 1.0 and o["exec_qty"] == 2.0
    fills, *_ = sim.finish(v, ev)
    assert list(fills["qty"]) == [1.0, 1.0] and list(fills["exch_ts"]) == [5000, 6000]
    assert list(fills["position_qty"]) == [1.0, 2.0]


def test_without_partial_fills_the_same_trades_fill_everything_at_once():
    rows = BOOK + [(SELL_TRADE, 5000, 100.0, 6.0)]
    v, ev = venue(rows, partial_fills=False)
    sim.elapse(v, 0)
    sim.submit(v, sim.BUY, 100.0, 3.0, sim.TIF_GTX, sim.ORD_LIMIT)
    sim.goto(v, 10_000)
    fills, *_ = sim.finish(v, ev)
    assert list(fills["qty"]) == [3.0]


def test_post_only_order_that_would_cross_is_rejected():
    v, ev = venue(BOOK + [(BUY_TRADE, 9000, 100.1, 50.0)])
    sim.elapse(v, 0)
    bad = sim.submit(v, sim.BUY, 100.1, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)  # at the ask: would take
    good = sim.submit(v, sim.SELL, 100.2, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)
    sim.goto(v, 1200)
    assert order_of(v, bad)["status"] == sim.ST_REJECTED
    assert order_of(v, good)["status"] == sim.ST_LIVE
    fills, actions, _, stats = sim.finish(v, ev)
    assert len(fills) == 0  # the 100.1 print does not reach the 100.2 sell
    rej = actions[actions["kind"] == ACT_REJECTED]
    assert len(rej) == 1 and rej[0]["reason"] == REASON_POST_ONLY and rej[0]["order_id"] == bad
    assert (rej[0]["exch_ts"], rej[0]["local_ts"]) == (1100, 1200)
    assert stats["post_only_rejects"] == 1


def _latency_case(entry_ns: int):
    rows = BOOK + [
        (SELL_TRADE, 1500, 100.0, 10.0),  # sweeps the 100.0 bid ...
        (BID, 1500, 100.0, 0.0),
        (BID, 1500, 99.9, 4.0),
        (ASK, 1500, 100.0, 3.0),  # ... and the market moves down a tick
    ]
    v, ev = venue(rows, entry_latency_ns=entry_ns)
    sim.elapse(v, 0)
    oid = sim.submit(v, sim.BUY, 100.0, 2.0, sim.TIF_GTX, sim.ORD_LIMIT)
    sim.goto(v, 5000)
    return v, ev, oid


def test_entry_latency_makes_the_order_miss_a_fill_and_meet_a_moved_book():
    v0, ev0, _ = _latency_case(entry_ns=0)
    fills0, *_ = sim.finish(v0, ev0)
    # without latency: live at 1000 behind 5, the 10-lot print fills us at 100.0
    assert len(fills0) == 1 and fills0[0]["exch_ts"] == 1500 and fills0[0]["px"] == 100.0

    v1, ev1, oid = _latency_case(entry_ns=1000)
    fills1, actions1, *_ = sim.finish(v1, ev1)
    # with 1 us latency it reaches the exchange at 2000: the ask is now 100.0, post-only rejects it
    assert len(fills1) == 0
    rej = actions1[actions1["kind"] == ACT_REJECTED]
    assert len(rej) == 1 and rej[0]["exch_ts"] == 2000 and rej[0]["reason"] == REASON_POST_ONLY
    assert order_of(v1, oid)["status"] == sim.ST_REJECTED


def _cancel_case(cancel_at: int):
    book = [(BID, 1000, 100.0, 5.0), (ASK, 1000, 100.3, 5.0)]
    rows = book + [(SELL_TRADE, 5000, 100.1, 1.0)]  # prints at our (otherwise empty) level
    v, ev = venue(rows)
    sim.elapse(v, 0)
    oid = sim.submit(v, sim.BUY, 100.1, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)  # queue ahead 0
    sim.goto(v, cancel_at)
    assert sim.cancel(v, oid) == 0
    sim.goto(v, 6000)
    return v, ev, oid


def test_cancel_arriving_after_the_fill_is_rejected_and_the_fill_stands():
    v, ev, oid = _cancel_case(cancel_at=4950)  # arrives 5050, the fill happened at 5000
    fills, actions, _, _ = sim.finish(v, ev)
    assert len(fills) == 1 and fills[0]["exch_ts"] == 5000 and fills[0]["px"] == 100.1
    late = actions[(actions["op"] == OP_CANCEL) & (actions["kind"] == ACT_REJECTED)]
    assert (
        len(late) == 1 and late[0]["reason"] == REASON_UNKNOWN_ORDER and late[0]["exch_ts"] == 5050
    )
    assert order_of(v, oid)["status"] == sim.ST_FILLED and sim.position_qty(v) == 1.0


def test_cancel_arriving_before_the_trade_removes_the_order():
    v, ev, oid = _cancel_case(cancel_at=4800)  # arrives 4900
    fills, actions, _, _ = sim.finish(v, ev)
    assert len(fills) == 0
    c = actions[actions["kind"] == ACT_CANCELLED]
    assert len(c) == 1 and c[0]["exch_ts"] == 4900 and c[0]["order_age_ns"] == 4900 - 1100
    assert order_of(v, oid)["status"] == sim.ST_CANCELLED


def test_taker_order_walks_two_levels_with_exact_vwap_and_fees():
    rows = [
        (BID, 1000, 100.0, 5.0),
        (ASK, 1000, 100.1, 2.0),
        (ASK, 1000, 100.2, 3.0),
        (ASK, 1000, 100.5, 9.0),
    ]
    v, ev = venue(rows)
    sim.elapse(v, 0)
    oid = sim.submit(v, sim.BUY, 100.2, 4.0, sim.TIF_IOC, sim.ORD_LIMIT)
    sim.goto(v, 2000)
    fills, actions, _, stats = sim.finish(v, ev)
    assert list(fills["px"]) == [100.1, 100.2] and list(fills["qty"]) == [2.0, 2.0]
    assert list(fills["maker"]) == [0, 0]
    vwap = (100.1 * 2 + 100.2 * 2) / 4
    assert np.sum(fills["px"] * fills["qty"]) / np.sum(fills["qty"]) == pytest.approx(
        vwap, rel=1e-15
    )
    fee = TAKER * 100.1 * 2 + TAKER * 100.2 * 2
    assert fills["fee"].sum() == pytest.approx(fee, rel=1e-14)
    assert stats["cash"] == pytest.approx(-(100.1 * 2 + 100.2 * 2) - fee, rel=1e-14)
    assert sim.position_qty(v) == 4.0 and order_of(v, oid)["status"] == sim.ST_FILLED
    assert ACT_FILLED in set(actions["kind"].tolist())


def test_market_sell_walks_the_bids_and_the_remainder_expires():
    rows = [(BID, 1000, 100.0, 1.0), (BID, 1000, 99.8, 2.0), (ASK, 1000, 100.1, 2.0)]
    v, ev = venue(rows)
    sim.elapse(v, 0)
    oid = sim.submit(v, sim.SELL, 0.0, 5.0, sim.TIF_IOC, sim.ORD_MARKET)
    sim.goto(v, 2000)
    fills, *_ = sim.finish(v, ev)
    assert list(fills["px"]) == [100.0, 99.8] and list(fills["qty"]) == [1.0, 2.0]
    assert list(fills["side"]) == [-1, -1]
    o = order_of(v, oid)
    assert o["status"] == sim.ST_EXPIRED and o["exec_qty"] == 3.0 and sim.position_qty(v) == -3.0


def test_rate_limit_rejects_the_excess_within_one_second():
    v, ev = venue(BOOK + [(BID, 3_000_000_000, 100.0, 6.0)], rate_limit_per_s=3)
    sim.elapse(v, 0)
    oids = [
        sim.submit(v, sim.BUY, 99.0 - 0.1 * k, 1.0, sim.TIF_GTX, sim.ORD_LIMIT) for k in range(5)
    ]
    sim.goto(v, 1000 + 500_000_000)
    late = sim.submit(v, sim.BUY, 98.0, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)  # window still full
    sim.goto(v, 1000 + 1_000_000_000)
    after = sim.submit(v, sim.BUY, 97.9, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)  # first 3 left the window
    sim.goto(v, 2_000_000_000)
    st = [int(order_of(v, o)["status"]) for o in oids]
    assert st == [sim.ST_LIVE] * 3 + [sim.ST_REJECTED] * 2
    assert order_of(v, late)["status"] == sim.ST_REJECTED
    assert order_of(v, after)["status"] == sim.ST_LIVE
    _, actions, _, stats = sim.finish(v, ev)
    rl = actions[(actions["kind"] == ACT_REJECTED) & (actions["reason"] == REASON_RATE_LIMIT)]
    assert len(rl) == 3 and stats["rate_limit_rejects"] == 3


def test_book_moving_through_a_resting_order_fills_it_at_its_price():
    rows = BOOK + [(ASK, 3000, 99.9, 1.0)]  # the ask drops below our 100.0 bid
    v, ev = venue(rows)
    sim.elapse(v, 0)
    sim.submit(v, sim.BUY, 100.0, 2.0, sim.TIF_GTX, sim.ORD_LIMIT)
    sim.goto(v, 4000)
    fills, *_ = sim.finish(v, ev)
    assert (
        len(fills) == 1
        and fills[0]["px"] == 100.0
        and fills[0]["maker"] == 1
        and fills[0]["exch_ts"] == 3000
    )


def test_power2_queue_model_advances_by_the_probability_formula():
    rows = BOOK + [(BID, 2000, 100.0, 8.0), (BID, 3000, 100.0, 6.0)]
    v, ev = venue(rows, queue_model="power2")
    sim.elapse(v, 0)
    oid = sim.submit(v, sim.BUY, 100.0, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)
    sim.goto(v, 2500)  # 3 joined behind us: front 5, back 3
    assert order_of(v, oid)["queue_ahead_qty"] == 5.0
    sim.goto(v, 3500)  # level 8 -> 6: 2 cancelled somewhere
    front, back, chg = 5.0, 3.0, 2.0
    p = back**2 / (back**2 + front**2)
    expected = front - (1 - p) * chg + min(back - p * chg, 0.0)
    assert order_of(v, oid)["queue_ahead_qty"] == pytest.approx(expected, rel=1e-12)
    # risk-averse: a level decrease only caps the queue at the level size
    v2, _ = venue(rows, queue_model="risk_averse")
    sim.elapse(v2, 0)
    oid2 = sim.submit(v2, sim.BUY, 100.0, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)
    sim.goto(v2, 3500)
    assert order_of(v2, oid2)["queue_ahead_qty"] == 5.0


def test_log_queue_model_uses_log1p_weights():
    rows = BOOK + [(BID, 2000, 100.0, 8.0), (BID, 3000, 100.0, 6.0)]
    v, _ = venue(rows, queue_model="log")
    sim.elapse(v, 0)
    oid = sim.submit(v, sim.BUY, 100.0, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)
    sim.goto(v, 3500)
    p = np.log(1 + 3.0) / (np.log(1 + 3.0) + np.log(1 + 5.0))
    assert order_of(v, oid)["queue_ahead_qty"] == pytest.approx(
        5.0 - (1 - p) * 2.0 + min(3.0 - p * 2.0, 0.0)
    )


def test_modify_to_a_new_price_loses_the_queue_but_a_smaller_size_keeps_it():
    rows = BOOK + [(BID, 1000, 99.9, 7.0), (SELL_TRADE, 2000, 100.0, 2.0)]
    v, _ = venue(rows)
    sim.elapse(v, 0)
    oid = sim.submit(v, sim.BUY, 100.0, 3.0, sim.TIF_GTX, sim.ORD_LIMIT)
    sim.goto(v, 2500)
    assert order_of(v, oid)["queue_ahead_qty"] == 3.0  # 5 - 2 traded
    assert sim.modify(v, oid, 100.0, 2.0) == 0
    sim.goto(v, 2700)
    o = order_of(v, oid)
    assert o["queue_ahead_qty"] == 3.0 and o["leaves_qty"] == 2.0
    assert sim.modify(v, oid, 99.9, 2.0) == 0
    sim.goto(v, 2900)
    o = order_of(v, oid)
    assert o["queue_ahead_qty"] == 7.0 and o["px"] == 99.9 and o["live_exch_ts"] == 2800


def test_local_book_lags_the_exchange_book_by_the_feed_latency():
    v, _ = venue(BOOK + [(BID, 5000, 100.0, 0.0), (BID, 5000, 99.9, 2.0)], feed_ns=300)
    sim.goto(v, 5100)
    assert sim.exch_best_bid_px(v) == 99.9 and sim.best_bid_px(v) == 100.0
    sim.goto(v, 5300)
    assert sim.best_bid_px(v) == 99.9 and sim.best_bid_qty(v) == 2.0
    assert sim.mid_px(v) == pytest.approx((99.9 + 100.1) / 2)


def test_latency_array_is_interpolated_in_time():
    lat = (np.array([0, 10_000]), np.array([100.0, 1100.0]), np.array([50.0, 50.0]))
    v, ev = venue(BOOK + [(BID, 20_000, 99.0, 1.0)], latency=lat)
    sim.goto(v, 5000)  # entry latency at t=5000: 100 + 0.5 * 1000 = 600
    sim.submit(v, sim.BUY, 99.5, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)
    sim.goto(v, 7000)
    _, actions, _, _ = sim.finish(v, ev)
    ack = actions[actions["kind"] == ACT_ACKED][0]
    assert (ack["exch_ts"], ack["local_ts"]) == (5600, 5650)


def test_targets_and_guard_actions_land_in_the_records():
    v, ev = venue(BOOK + [(SELL_TRADE, 3000, 100.0, 9.0)])
    sim.elapse(v, 0)
    sim.set_targets(v, 99.95, 100.15)
    sim.record_action(v, 0, OP_NEW, 1, 0, 99.95, 1.0, 0)  # INTENDED
    sim.record_action(v, 1, OP_NEW, -1, 0, 100.15, 1.0, 4)  # BLOCKED (risk)
    sim.submit(v, sim.BUY, 100.0, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)
    sim.goto(v, 4000)
    fills, actions, marks, _ = sim.finish(v, ev)
    assert fills[0]["target_px"] == 99.95
    assert list(actions["kind"][:3]) == [0, 1, ACT_SENT] and actions[1]["reason"] == 4
    # a mark at the first two-sided book and one at the fill
    assert list(marks["exch_ts"]) == [1000, 3000] and marks[1]["position_qty"] == 1.0


def test_same_inputs_give_identical_record_bytes():
    rng = np.random.default_rng(7)
    rows = []
    t = 1000
    mid = 1000
    for _ in range(3000):
        t += int(rng.integers(1, 2000))
        mid += int(rng.integers(-1, 2))
        k = rng.integers(0, 4)
        if k == 0:
            rows.append((SELL_TRADE, t, (mid - 1) / 10, float(rng.integers(1, 5))))
        elif k == 1:
            rows.append((BUY_TRADE, t, (mid + 1) / 10, float(rng.integers(1, 5))))
        else:
            rows.append((BID, t, (mid - 1) / 10, float(rng.integers(0, 9))))
            rows.append((ASK, t, (mid + 1) / 10, float(rng.integers(0, 9))))

    def run() -> list[bytes]:
        v, ev = venue(
            rows, feed_ns=250, queue_model="power3", partial_fills=True, rate_limit_per_s=50
        )
        oids = {1: 0, -1: 0}
        while sim.elapse(v, 20_000) == sim.OK:
            bb, ba = sim.best_bid_px(v), sim.best_ask_px(v)
            if not (bb == bb and ba == ba):
                continue
            for side, px in ((1, bb), (-1, ba)):
                s = sim.find_order(v, oids[side]) if oids[side] else -1
                o = sim.orders(v)[s] if s >= 0 else None
                if o is None or o["status"] >= sim.ST_FILLED:
                    oids[side] = sim.submit(v, side, px, 2.0, sim.TIF_GTX, sim.ORD_LIMIT)
                elif o["status"] == sim.ST_LIVE and o["req"] == sim.REQ_NONE and o["px"] != px:
                    sim.modify(v, oids[side], px, 2.0)
        fills, actions, marks, _ = sim.finish(v, ev)
        assert len(fills) > 10
        return [fills.tobytes(), actions.tobytes(), marks.tobytes()]

    assert run() == run()


def test_wait_next_stops_at_feed_events_and_responses():
    v, _ = venue(BOOK + [(BID, 5000, 100.0, 4.0)], feed_ns=10)
    assert sim.wait_next(v, 100_000) == sim.WAIT_FEED and sim.now_ns(v) == 1010
    # both rows of the message at 1010 are applied before the strategy wakes: no half book
    assert sim.best_bid_px(v) == 100.0 and sim.best_ask_px(v) == 100.1
    sim.submit(v, sim.BUY, 99.0, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)
    assert sim.wait_next(v, 100_000) == sim.WAIT_RESPONSE and sim.now_ns(v) == 1010 + 200
    assert sim.wait_next(v, 100) == sim.OK and sim.now_ns(v) == 1310
    assert sim.wait_next(v, 100_000) == sim.WAIT_FEED and sim.now_ns(v) == 5010
    assert sim.elapse(v, 1000) == sim.END_OF_DATA


def test_crossing_gtc_takes_then_rests_without_refilling_on_the_liquidity_it_took():
    rows = [
        (BID, 1000, 100.0, 5.0),
        (ASK, 1000, 100.1, 2.0),
        (ASK, 3000, 100.1, 2.5),  # the feed still shows (refreshed) asks at our price
        (ASK, 5000, 100.0, 1.0),  # a new, lower ask crosses our resting remainder
    ]
    v, ev = venue(rows)
    sim.elapse(v, 0)
    oid = sim.submit(v, sim.BUY, 100.1, 5.0, sim.TIF_GTC, sim.ORD_LIMIT)
    sim.goto(v, 4000)
    o = order_of(v, oid)
    assert o["status"] == sim.ST_LIVE and o["leaves_qty"] == 3.0 and sim.position_qty(v) == 2.0
    sim.goto(v, 6000)
    fills, *_ = sim.finish(v, ev)
    assert [(int(f["exch_ts"]), f["px"], f["qty"], int(f["maker"])) for f in fills] == [
        (1100, 100.1, 2.0, 0),
        (5000, 100.1, 3.0, 1),
    ]


def test_unknown_time_in_force_is_refused():
    v, ev = venue(BOOK)
    sim.elapse(v, 0)
    assert sim.submit(v, sim.BUY, 100.0, 1.0, 7, sim.ORD_LIMIT) == sim.ERR_BAD_TIF
    with pytest.raises(UserError, match="time in force"):
        sim.finish(v, ev)


def test_local_book_views_and_trade_counters():
    rows = [
        (BID, 1000, 100.0, 5.0),
        (BID, 1000, 99.9, 2.0),
        (BID, 1000, 99.7, 4.0),  # 3 ticks below the touch
        (ASK, 1000, 100.1, 1.0),
        (ASK, 1000, 100.2, 3.0),
        (SELL_TRADE, 2000, 100.0, 0.5),
        (BUY_TRADE, 2000, 100.1, 0.25),
        (SELL_TRADE, 2500, 100.0, 1.5),
    ]
    v, _ = venue(rows, lot_qty=0.25)
    sim.goto(v, 1500)
    assert sim.qty_at_px(v, 1, 99.9) == 2.0 and sim.qty_at_px(v, -1, 100.2) == 3.0
    assert sim.qty_within_ticks(v, 1, 0) == 5.0
    assert sim.qty_within_ticks(v, 1, 2) == 7.0  # 100.0 and 99.9 (99.8 empty)
    assert sim.qty_within_ticks(v, 1, 3) == 11.0
    assert sim.qty_within_ticks(v, -1, 1) == 4.0
    assert sim.best_bid_tick(v) == 1000 and sim.best_ask_tick(v) == 1001
    sim.goto(v, 3000)
    assert sim.drain_trades(v) == (0.25, 2.0, 1, 2)
    assert sim.drain_trades(v) == (0.0, 0.0, 0, 0)
    ring = sim.local_trades(v)[: sim.trades_seen(v)]
    assert list(ring["side"]) == [-1, 1, -1] and list(ring["qty"]) == [0.5, 0.25, 1.5]


def test_book_ticker_row_sets_the_touch_and_drops_better_levels():
    bbo_bid = 5 | BUY_EVENT | F  # DEPTH_BBO_EVENT
    rows = [
        (BID, 1000, 100.0, 5.0),
        (BID, 1000, 99.9, 2.0),
        (ASK, 1000, 100.1, 1.0),
        (bbo_bid, 2000, 99.9, 3.0),
    ]
    v, _ = venue(rows)
    sim.goto(v, 3000)
    assert (
        sim.best_bid_px(v) == 99.9
        and sim.best_bid_qty(v) == 3.0
        and sim.qty_at_px(v, 1, 100.0) == 0.0
    )
    assert sim.exch_best_bid_px(v) == 99.9


def test_snapshot_clear_empties_the_side_up_to_its_last_level():
    clear_bid = 3 | BUY_EVENT | F
    snap_bid = 4 | BUY_EVENT | F
    rows = [
        (BID, 1000, 100.0, 5.0),
        (BID, 1000, 99.5, 2.0),
        (ASK, 1000, 100.1, 1.0),
        (clear_bid, 2000, 99.8, 0.0),  # clears 99.8 .. best (100.0); 99.5 survives
        (snap_bid, 2000, 99.9, 7.0),
        (snap_bid, 2000, 99.8, 1.0),
    ]
    v, _ = venue(rows)
    sim.goto(v, 3000)
    assert (
        sim.best_bid_px(v) == 99.9
        and sim.qty_at_px(v, 1, 100.0) == 0.0
        and sim.qty_at_px(v, 1, 99.5) == 2.0
    )


def test_post_only_replace_that_would_cross_removes_the_order():
    v, ev = venue(BOOK)
    sim.elapse(v, 0)
    oid = sim.submit(v, sim.BUY, 99.5, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)
    sim.goto(v, 1200)
    assert sim.inflight_count(v) == 0 and sim.open_order_count(v, 1) == 1
    assert sim.modify(v, oid, 100.1, 1.0) == 0
    assert sim.inflight_count(v) == 1 and sim.modify(v, oid, 99.6, 1.0) == sim.ERR_PENDING
    sim.goto(v, 1400)
    assert order_of(v, oid)["status"] == sim.ST_REJECTED and sim.open_order_count(v, 0) == 0
    _, actions, _, _ = sim.finish(v, ev)
    assert np.all(np.diff(actions["local_ts"]) >= 0)  # chronological for the strategy
    rej = actions[actions["kind"] == ACT_REJECTED]
    assert len(rej) == 1 and rej[0]["reason"] == REASON_POST_ONLY and rej[0]["exch_ts"] == 1300


def test_requests_arriving_together_are_handled_in_send_order():
    # the first slot is freed and reused by the second order, so slot order != send order
    v, ev = venue(BOOK + [(BID, 9000, 99.0, 1.0)], rate_limit_per_s=1, max_orders=2)
    sim.elapse(v, 0)
    first = sim.submit(v, sim.BUY, 99.0, 1.0, sim.TIF_IOC, sim.ORD_LIMIT)  # expires at once
    sim.goto(v, 1_000_000_000 + 2000)  # its slot is free again and the rate window is empty
    a = sim.submit(v, sim.BUY, 99.1, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)  # takes a new slot (1)
    b = sim.submit(v, sim.BUY, 99.2, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)  # reuses slot 0
    assert sim.find_order(v, b) < sim.find_order(v, a)
    sim.goto(v, 1_000_000_000 + 3000)
    # one order per second: the first sent (a) is accepted, b is rate limited
    assert order_of(v, a)["status"] == sim.ST_LIVE and order_of(v, b)["status"] == sim.ST_REJECTED
    assert sim.find_order(v, first) == -1  # its slot was reused


def test_events_fed_in_blocks_give_the_records_of_one_array():
    """extend_venue: the same market given message by message (a live feed) leaves the venue in the
    state, and with the record bytes, of the whole array given at once."""
    rows = BOOK + [
        (BID, 2000, 99.9, 4.0),
        (SELL_TRADE, 5000, 100.0, 3.0),
        (ASK, 5500, 100.2, 2.0),
        (SELL_TRADE, 7000, 100.0, 4.0),  # through the queue: our order fills
        (BUY_TRADE, 8000, 100.3, 1.0),  # through our ask at 100.2: it fills
    ]

    def drive(v, feed_blocks=None) -> tuple:
        k = 0
        for t in (1000, 1100, 2000, 5000, 5500, 7000, 7100, 8000, 9000):
            if feed_blocks is not None:
                while k < len(feed_blocks) and feed_blocks[k]["exch_ts"][0] <= t:
                    sim.extend_venue(v, feed_blocks[k])
                    k += 1
            sim.goto(v, t)
            if t == 1000:
                sim.submit(v, sim.BUY, 100.0, 2.0, sim.TIF_GTX, sim.ORD_LIMIT)
            if t == 5500:
                sim.submit(v, sim.SELL, 100.2, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)
        return sim.finish(v)

    whole, _ = venue(rows)
    f1, a1, m1, s1 = drive(whole)
    ev = events(rows)
    cfg = dict(tick_px=0.1, lot_qty=1.0, maker_fee_rate=MAKER, taker_fee_rate=TAKER)
    cfg.update(entry_latency_ns=100, response_latency_ns=100, queue_model="risk_averse")
    blocked = sim.make_venue(ev[:2], sim.VenueConfig(**cfg))
    f2, a2, m2, s2 = drive(blocked, [ev[i : i + 1] for i in range(2, len(ev))])
    assert len(f1) == 2  # the buy at 7000, the sell at 8000
    assert f1.tobytes() == f2.tobytes() and a1.tobytes() == a2.tobytes()
    assert m1.tobytes() == m2.tobytes()
    assert s1["events"] == s2["events"] == len(rows)
    assert s1["position_qty"] == s2["position_qty"] == 1.0


def test_extend_venue_refuses_a_block_before_the_clock_or_with_rows_left():
    v, ev = venue(BOOK + [(BID, 5000, 99.9, 1.0)])
    sim.goto(v, 2000)
    with pytest.raises(UserError, match="unprocessed events"):
        sim.extend_venue(v, events([(BID, 6000, 99.8, 1.0)]))
    sim.goto(v, 6000)
    with pytest.raises(UserError, match="before the venue's clock"):
        sim.extend_venue(v, events([(BID, 5999, 99.8, 1.0)]))
    sim.extend_venue(v, events([(BID, 6000, 99.8, 1.0)]))
    sim.goto(v, 6000)
    assert sim.qty_at_px(v, 1, 99.8) == 1.0


def test_ladder_pad_ratio_decides_how_far_the_price_can_move_and_still_match():
    """A book near 100 on a 0.0001 tick, then the market moves 10 % up: with the replay's 2 % pad
    the new levels are out of band (counted, no book there); with a 20 % pad a resting order there
    fills as usual."""
    first = [(BID, 1000, 100.0, 5.0), (ASK, 1000, 100.0001, 5.0)]
    moved = [(BID, 2000, 110.0, 5.0), (ASK, 2000, 110.0001, 5.0)]
    hit = [(SELL_TRADE, 5000, 110.0, 6.0)]  # through the queue of 5 and our 1 at 110.0
    outcome = {}
    for pad in (0.02, 0.20):
        v, _ = venue(first, tick_px=0.0001, ladder_pad_ratio=pad)
        sim.goto(v, 1500)
        sim.extend_venue(v, events(moved))
        sim.goto(v, 2000)
        oid = sim.submit(v, sim.BUY, 110.0, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)
        sim.goto(v, 3000)
        sim.extend_venue(v, events(hit))
        sim.goto(v, 6000)
        fills, _, _, stats = sim.finish(v)
        outcome[pad] = (sim.qty_at_px(v, 1, 110.0), len(fills), stats["out_of_band_levels"], oid)
    assert outcome[0.02][0] == 0.0 and outcome[0.02][1] == 0 and outcome[0.02][2] >= 2
    assert outcome[0.20][0] == 5.0 and outcome[0.20][1] == 1 and outcome[0.20][2] == 0


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
def test_ladder_pad_ratio_out_of_range_is_a_clear_error(bad):
    with pytest.raises(UserError, match="ladder_pad_ratio"):
        venue(BOOK, ladder_pad_ratio=bad)


def test_local_book_version_of_a_side_moves_only_with_rows_that_reach_its_view_band():
    tick = 0.01
    far = (sim.VIEW_BAND_TICKS + 20) * tick
    near = (sim.VIEW_BAND_TICKS - 20) * tick
    rows = [
        (BID, 1000, 100.0, 5.0),
        (ASK, 1000, 100.01, 5.0),
        (SELL_TRADE, 1500, 100.0, 1.0),  # a trade: no book change
        (BID, 2000, round(100.0 - far, 2), 1.0),  # beyond the band below the best bid
        (ASK, 2500, round(100.01 + far, 2), 1.0),  # beyond the band above the best ask
        (BID, 3000, round(100.0 - near, 2), 1.0),  # inside the band
        (ASK, 3500, round(100.01 + near, 2), 1.0),
        (BID, 4000, 100.0, 0.0),  # the best bid leaves: the touch moves
    ]
    v, _ = venue(rows, tick_px=tick, lot_qty=1.0)
    seen = []
    for t in (1000, 1500, 2000, 2500, 3000, 3500, 4000):
        sim.goto(v, t)
        seen.append((sim.local_book_version(v, 1), sim.local_book_version(v, -1)))
    assert sim.qty_at_px(v, 1, round(100.0 - far, 2)) == 1.0  # the far rows were applied
    steps = [tuple(int(x) for x in d) for d in np.diff(np.array(seen), axis=0)]
    assert steps == [(0, 0), (0, 0), (0, 0), (1, 0), (0, 1), (1, 0)], seen


def test_a_bid_crossing_the_best_ask_moves_the_ask_side_version():
    rows = [
        (BID, 1000, 100.0, 5.0),
        (ASK, 1000, 100.1, 5.0),
        (ASK, 1000, 100.3, 5.0),
        (SELL_TRADE, 1500, 100.0, 1.0),
        (BID, 2000, 100.1, 1.0),  # at the best ask: the ask pointer moves up
    ]
    v, _ = venue(rows)
    sim.goto(v, 1500)
    before = sim.local_book_version(v, -1)
    sim.goto(v, 2000)
    assert sim.best_ask_px(v) == pytest.approx(100.3)
    assert sim.local_book_version(v, -1) == before + 1


def test_the_in_flight_count_is_the_orders_awaiting_an_answer():
    v, _ = venue(BOOK + [(SELL_TRADE, 5000, 100.0, 1.0)], feed_ns=0)
    sim.goto(v, 1000)

    def scan() -> int:
        return int((sim.orders(v)["req"] != sim.REQ_NONE).sum())

    a = sim.submit(v, sim.BUY, 99.9, 1.0, sim.TIF_GTC, sim.ORD_LIMIT)
    b = sim.submit(v, sim.SELL, 100.2, 1.0, sim.TIF_GTC, sim.ORD_LIMIT)
    assert sim.inflight_count(v) == scan() == 2
    sim.goto(v, 1300)  # both acknowledged
    assert sim.inflight_count(v) == scan() == 0
    assert sim.modify(v, a, 99.8, 1.0) == 0 and sim.cancel(v, b) == 0
    assert sim.inflight_count(v) == scan() == 2
    assert sim.cancel(v, b) == sim.ERR_PENDING  # refused: nothing more in flight
    assert sim.inflight_count(v) == 2
    sim.goto(v, 1600)
    assert sim.inflight_count(v) == scan() == 0


def test_trades_and_depth_rows_between_our_orders_move_only_the_queues_they_reach():
    book = [(BID, 1000, px, 5.0) for px in (100.0, 99.9, 99.8)]
    book += [(ASK, 1000, px, 5.0) for px in (100.1, 100.2, 100.3, 100.4)]
    rows = book + [
        (BID, 2000, 99.9, 2.0),  # between our bids: no queue moves
        (ASK, 3000, 100.3, 1.0),  # between our asks: no queue moves
        (SELL_TRADE, 4000, 100.1, 4.0),  # above our highest bid: reaches none
        (BUY_TRADE, 5000, 100.1, 4.0),  # below our lowest ask: reaches none
        (BUY_TRADE, 6000, 100.2, 3.0),  # at our lowest ask: its queue 5 -> 2
        (SELL_TRADE, 7000, 100.0, 4.0),  # at our highest bid: its queue 5 -> 1
        (BID, 8000, 99.8, 3.0),  # at our lowest bid: its queue capped at 3 (risk-averse)
    ]
    v, ev = venue(rows)
    sim.elapse(v, 0)
    oids = [
        sim.submit(v, side, px, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)
        for side, px in ((sim.BUY, 100.0), (sim.BUY, 99.8), (sim.SELL, 100.2), (sim.SELL, 100.4))
    ]

    def queues():
        return [order_of(v, oid)["queue_ahead_qty"] for oid in oids]

    sim.goto(v, 5500)
    assert queues() == [5.0, 5.0, 5.0, 5.0]
    sim.goto(v, 6500)
    assert queues() == [5.0, 5.0, 2.0, 5.0]
    sim.goto(v, 7500)
    assert queues() == [1.0, 5.0, 2.0, 5.0]
    sim.goto(v, 8500)
    assert queues() == [1.0, 3.0, 2.0, 5.0]
    fills, *_ = sim.finish(v, ev)
    assert len(fills) == 0


def test_every_touch_move_gets_its_mark_row_past_the_first_mark_buffer():
    n_moves = 5000  # more than the venue's first MARK buffer (4096 rows)
    rows = [(BID, 1000, 99.9, 5.0), (ASK, 1000, 100.1, 5.0)]
    rows += [(BID, 2000 + 10 * k, 100.0, 5.0 if k % 2 == 0 else 0.0) for k in range(n_moves)]
    v, ev = venue(rows)
    sim.goto(v, 2000 + 10 * n_moves)
    _, _, marks, _ = sim.finish(v, ev)
    moves = marks[marks["exch_ts"] >= 2000]
    assert len(moves) == n_moves
    assert list(moves["exch_ts"]) == [2000 + 10 * k for k in range(n_moves)]
    expected = [100.05 if k % 2 == 0 else 100.0 for k in range(n_moves)]
    assert moves["mid_px"] == pytest.approx(expected, rel=1e-15)
