"""Guards and the order manager: each guard blocks with its reason in a constructed scenario and
lets the action through in the matching one; tail_age_ms and the reprice tolerance; records."""

from __future__ import annotations

import numpy as np
import pytest

from mmbot.config import load_profile
from mmbot.execution import guards, manager
from mmbot.knobs import CONSERVATIVE_START
from mmbot.records import (
    ACT_BLOCKED,
    ACT_INTENDED,
    ACTION_DTYPE,
    OP_CANCEL,
    OP_NEW,
    OP_REPLACE,
    REASON_CONCURRENCY,
    REASON_DRAWDOWN,
    REASON_MIN_INTERVAL,
    REASON_NONE,
    REASON_RISK,
    REASON_SPOT_INVENTORY,
    REASON_THROTTLE,
)
from mmbot.strategy.params import make_params
from mmbot.strategy.views import (
    ORD_LIVE,
    ORD_NONE,
    ORD_PENDING_NEW,
    SIDE_ASK,
    SIDE_BID,
    new_order_view,
)

T0 = 1_700_000_000_000_000_000
MS = 1_000_000


def _params(**over):
    knob_values = dict(CONSERVATIVE_START)
    for k in list(over):
        if k in knob_values:
            knob_values[k] = over.pop(k)
    p = make_params(
        knob_values, load_profile("S1"), tick_px=0.1, lot_qty=0.1, ref_px=100.0, order_qty=1.0
    )
    # generous defaults so that only the guard under test can block
    p["concurrency_limit"] = over.pop("concurrency_limit", 100)
    p["rate_limit_per_s"] = over.pop("rate_limit_per_s", 0.0)
    p["max_position_qty"] = over.pop("max_position_qty", 1e9)
    p["max_notional"] = over.pop("max_notional", 1e12)
    p["max_loss"] = over.pop("max_loss", 1e12)
    for k, v in over.items():
        p[k] = v
    return p


def _check(g, p, side=SIDE_BID, op=OP_NEW, qty=1.0, px=100.0, pos=0.0, pnl=0.0, now=T0):
    return guards.check(g, p, side, op, qty, px, pos, pnl, now)


def _send(g, p, side=SIDE_BID, op=OP_NEW, now=T0, **kw):
    r = _check(g, p, side, op, now=now, **kw)
    if r == REASON_NONE:
        guards.commit(g, p, side, op, now)
    return r


# ---- min_interval ---------------------------------------------------------------------------
@pytest.mark.parametrize("min_interval_ms", [50, 70, 300])
def test_min_interval_blocks_a_second_action_on_the_same_side_inside_the_interval(
    min_interval_ms,
) -> None:
    p = _params(min_interval_ms=min_interval_ms)
    g = guards.new_guard_state(p)
    assert _send(g, p, SIDE_BID, now=T0) == REASON_NONE
    assert (
        _check(g, p, SIDE_BID, OP_REPLACE, now=T0 + min_interval_ms * MS - 1) == REASON_MIN_INTERVAL
    )
    assert (
        _check(g, p, SIDE_BID, OP_CANCEL, now=T0 + min_interval_ms * MS - 1) == REASON_MIN_INTERVAL
    )


def test_min_interval_does_not_block_the_other_side_or_after_the_interval() -> None:
    p = _params(min_interval_ms=70)
    g = guards.new_guard_state(p)
    assert _send(g, p, SIDE_BID, now=T0) == REASON_NONE
    assert _check(g, p, SIDE_ASK, now=T0 + 1) == REASON_NONE
    assert _check(g, p, SIDE_BID, OP_REPLACE, now=T0 + 70 * MS) == REASON_NONE


# ---- concurrency ----------------------------------------------------------------------------
def test_concurrency_blocks_when_limit_actions_are_in_flight_and_frees_on_response() -> None:
    p = _params(concurrency_limit=3, min_interval_ms=50)
    g = guards.new_guard_state(p)
    t = T0
    for _ in range(3):
        assert _send(g, p, SIDE_BID, now=t) == REASON_NONE
        t += 100 * MS
    assert _check(g, p, SIDE_BID, OP_REPLACE, now=t) == REASON_CONCURRENCY
    assert _check(g, p, SIDE_ASK, OP_CANCEL, now=t) == REASON_CONCURRENCY
    guards.on_response(g)
    assert _check(g, p, SIDE_BID, OP_REPLACE, now=t) == REASON_NONE


def test_profile_concurrency_limit_reaches_the_guard() -> None:
    prof = load_profile("S1")
    p = make_params(prof.runtime, prof, tick_px=0.1, lot_qty=0.1, ref_px=100.0)
    # S1: base 4 with a -10% delta -> floor(3.6) = 3 actions in flight at most
    assert int(p["concurrency_limit"][0]) == 3


# ---- throttle -------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [120, 300, 360])
def test_throttle_token_bucket_of_replace_rate_per_min(rate) -> None:
    p = _params(replace_rate_per_min=rate, min_interval_ms=50, throttle_burst_s=2.0)
    g = guards.new_guard_state(p)
    capacity = rate / 60.0 * 2.0  # tokens = burst seconds × rate
    passed = 0
    t = T0
    side = SIDE_BID
    # alternate sides 50 ms apart (min_interval never binds) but faster than the refill
    while _send(g, p, side, OP_REPLACE, now=t) == REASON_NONE:
        passed += 1
        side = 1 - side
        t += 0 if passed % 2 else 50 * MS
        assert passed < 1000
    refilled = (t - T0) * 1e-9 * rate / 60.0
    assert passed == int(np.floor(capacity + refilled))
    assert _check(g, p, side, OP_REPLACE, now=t) == REASON_THROTTLE
    # cancels do not take tokens
    assert _check(g, p, side, OP_CANCEL, now=t) == REASON_NONE
    # one token back after 60/rate seconds
    t_ok = t + int(np.ceil(60.0 / rate * 1e9))
    assert _check(g, p, side, OP_REPLACE, now=t_ok) == REASON_NONE


def test_throttle_respects_the_exchange_rate_limit() -> None:
    p = _params(rate_limit_per_s=2.0, replace_rate_per_min=360, min_interval_ms=50)
    g = guards.new_guard_state(p)
    assert _send(g, p, SIDE_BID, OP_NEW, now=T0) == REASON_NONE
    assert _send(g, p, SIDE_ASK, OP_NEW, now=T0) == REASON_NONE
    assert _check(g, p, SIDE_BID, OP_REPLACE, now=T0 + 100 * MS) == REASON_THROTTLE
    assert _check(g, p, SIDE_BID, OP_REPLACE, now=T0 + 500 * MS) == REASON_NONE


# ---- risk -----------------------------------------------------------------------------------
def test_risk_blocks_orders_that_would_exceed_max_position_but_not_reducing_ones() -> None:
    p = _params(max_position_qty=3.0)
    g = guards.new_guard_state(p)
    assert _check(g, p, SIDE_BID, qty=1.0, pos=2.5) == REASON_RISK  # 3.5 > 3
    assert _check(g, p, SIDE_BID, qty=0.5, pos=2.5) == REASON_NONE  # 3.0 == limit
    assert _check(g, p, SIDE_ASK, qty=1.0, pos=2.5) == REASON_NONE  # reduces
    assert _check(g, p, SIDE_ASK, qty=1.0, pos=-2.5) == REASON_RISK


def test_risk_blocks_orders_that_would_exceed_max_notional() -> None:
    p = _params(max_notional=250.0)
    g = guards.new_guard_state(p)
    assert _check(g, p, SIDE_BID, qty=1.0, px=100.0, pos=1.0) == REASON_NONE  # 200
    assert _check(g, p, SIDE_BID, qty=1.0, px=100.0, pos=2.0) == REASON_RISK  # 300


def test_loss_kill_switch_latches_and_still_lets_cancels_through() -> None:
    p = _params(max_loss=50.0)
    g = guards.new_guard_state(p)
    assert _check(g, p, pnl=-49.0) == REASON_NONE
    assert _check(g, p, pnl=-51.0) == REASON_RISK
    assert _check(g, p, pnl=+10.0) == REASON_RISK  # latched
    assert _check(g, p, op=OP_CANCEL, pnl=+10.0) == REASON_NONE


def test_kill_switch_cancels_a_live_order_through_the_manager() -> None:
    p = _params(max_loss=50.0)
    g = guards.new_guard_state(p)
    o = new_order_view()
    o["status"][SIDE_BID], o["px"][SIDE_BID], o["qty"][SIDE_BID] = ORD_LIVE, 100.0, 1.0
    acts = np.zeros(8, ACTION_DTYPE)
    n, op, _, _ = manager.manage_side(
        g, p, acts, 0, o[SIDE_BID], SIDE_BID, 100.0, 1.0, 1.0, 0.0, -60.0, T0
    )
    assert op == OP_CANCEL
    assert acts[0]["kind"] == ACT_INTENDED and acts[0]["op"] == OP_CANCEL


# ---- order manager: keep / new / replace / cancel, tail_age_ms ---------------------------------
def _live(px=100.0, qty=1.0, since=T0):
    o = new_order_view()
    o["status"][SIDE_BID] = ORD_LIVE
    o["px"][SIDE_BID] = px
    o["qty"][SIDE_BID] = qty
    o["live_since_ns"][SIDE_BID] = since
    return o


def test_decide_new_when_flat_cancel_when_no_target_wait_when_in_flight() -> None:
    p = _params()
    o = new_order_view()
    assert manager.decide(o[SIDE_BID], 100.0, 1.0, 1.0, p, T0) == OP_NEW
    assert manager.decide(o[SIDE_BID], np.nan, 0.0, 1.0, p, T0) == manager.OP_KEEP
    o2 = _live()
    assert manager.decide(o2[SIDE_BID], np.nan, 0.0, 1.0, p, T0) == OP_CANCEL
    o2["status"][SIDE_BID] = ORD_PENDING_NEW
    assert manager.decide(o2[SIDE_BID], 90.0, 1.0, 1.0, p, T0) == manager.OP_KEEP


def test_reprice_tolerance_keeps_small_moves_and_replaces_large_ones() -> None:
    p = _params(reprice_tol_ratio=0.25)
    o = _live(px=100.0)
    half = 2.0  # tolerance 0.5
    assert manager.decide(o[SIDE_BID], 100.4, 1.0, half, p, T0 + MS) == manager.OP_KEEP
    assert manager.decide(o[SIDE_BID], 100.6, 1.0, half, p, T0 + MS) == OP_REPLACE


@pytest.mark.parametrize("tail_age_ms", [400, 650, 1000])
def test_tail_age_ms_refreshes_an_old_order_inside_the_tolerance(tail_age_ms) -> None:
    p = _params(tail_age_ms=tail_age_ms, reprice_tol_ratio=0.25)
    o = _live(px=100.0, since=T0)
    half = 2.0  # target 100.3 is inside the 0.5 tolerance
    young = T0 + (tail_age_ms - 1) * MS
    old = T0 + (tail_age_ms + 1) * MS
    assert manager.decide(o[SIDE_BID], 100.3, 1.0, half, p, young) == manager.OP_KEEP
    assert manager.decide(o[SIDE_BID], 100.3, 1.0, half, p, old) == OP_REPLACE
    # an old order already at its target is not churned
    assert manager.decide(o[SIDE_BID], 100.0, 1.0, half, p, old) == manager.OP_KEEP


# ---- records: every attempt, blocked ones with their reason -----------------------------------
def test_blocked_attempt_recorded_as_intended_and_blocked_with_reason_once_per_intention() -> None:
    p = _params(min_interval_ms=100)
    g = guards.new_guard_state(p)
    acts = np.zeros(32, ACTION_DTYPE)
    o = new_order_view()
    n, op, px, qty = manager.manage_side(
        g, p, acts, 0, o[SIDE_BID], SIDE_BID, 100.0, 1.0, 1.0, 0.0, 0.0, T0
    )
    assert (n, op, px, qty) == (1, OP_NEW, 100.0, 1.0)
    assert acts[0]["kind"] == ACT_INTENDED and acts[0]["side"] == 1
    # the order is live now; the target moves beyond the tolerance 10 ms later: blocked
    o["status"][SIDE_BID], o["px"][SIDE_BID], o["qty"][SIDE_BID] = ORD_LIVE, 100.0, 1.0
    n, op, _, _ = manager.manage_side(
        g, p, acts, n, o[SIDE_BID], SIDE_BID, 99.0, 1.0, 1.0, 0.0, 0.0, T0 + 10 * MS
    )
    assert op == manager.OP_KEEP and n == 3
    assert acts[1]["kind"] == ACT_INTENDED and acts[1]["op"] == OP_REPLACE
    assert acts[2]["kind"] == ACT_BLOCKED and acts[2]["reason"] == REASON_MIN_INTERVAL
    assert acts[2]["px"] == 99.0
    # the same intention on the next event is the same attempt, not a new one
    n2, _, _, _ = manager.manage_side(
        g, p, acts, n, o[SIDE_BID], SIDE_BID, 99.0, 1.0, 1.0, 0.0, 0.0, T0 + 11 * MS
    )
    assert n2 == n
    # a different target is a new attempt
    n3, _, _, _ = manager.manage_side(
        g, p, acts, n, o[SIDE_BID], SIDE_BID, 98.0, 1.0, 1.0, 0.0, 0.0, T0 + 12 * MS
    )
    assert n3 == n + 2
    gs = g[0]
    assert gs["n_blocked"][REASON_MIN_INTERVAL] == 2
    assert gs["n_intended"] == 3
    # after the interval it goes through
    n4, op4, _, _ = manager.manage_side(
        g, p, acts, n3, o[SIDE_BID], SIDE_BID, 98.0, 1.0, 1.0, 0.0, 0.0, T0 + 100 * MS
    )
    assert op4 == OP_REPLACE and n4 == n3 + 1


def test_risk_blocked_replace_falls_back_to_cancel() -> None:
    p = _params(max_position_qty=1.5)
    g = guards.new_guard_state(p)
    acts = np.zeros(32, ACTION_DTYPE)
    o = _live(px=100.0, qty=1.0)
    # long 1.0: a bid of 1.0 would make 2.0 > 1.5
    n, op, _, _ = manager.manage_side(
        g, p, acts, 0, o[SIDE_BID], SIDE_BID, 98.0, 1.0, 1.0, 1.0, 0.0, T0
    )
    assert op == OP_CANCEL
    kinds = [(int(a["kind"]), int(a["op"]), int(a["reason"])) for a in acts[:n]]
    assert kinds == [
        (ACT_INTENDED, OP_REPLACE, REASON_NONE),
        (ACT_BLOCKED, OP_REPLACE, REASON_RISK),
        (ACT_INTENDED, OP_CANCEL, REASON_NONE),
    ]


def test_ensure_room_grows_buffer_keeping_rows() -> None:
    a = np.zeros(4, ACTION_DTYPE)
    a["px"] = [1, 2, 3, 4]
    b = manager.ensure_room(a, 3, 4)
    assert len(b) >= 7 and list(b["px"][:3]) == [1, 2, 3]
    assert ORD_NONE == 0


def test_a_one_tick_move_waits_for_tail_age_a_two_tick_move_does_not() -> None:
    # tick 0.1, a half-spread of one tick: the tolerance is its floor, reprice_min_ticks = 1
    p = _params(tail_age_ms=700, reprice_tol_ratio=0.25)
    assert float(p["reprice_min_ticks"][0]) == 1.0
    o = _live(px=100.0, since=T0)
    young = T0 + 100 * MS
    assert manager.decide(o[SIDE_BID], 100.1, 1.0, 0.1, p, young) == manager.OP_KEEP
    assert manager.decide(o[SIDE_BID], 100.2, 1.0, 0.1, p, young) == OP_REPLACE
    assert manager.decide(o[SIDE_BID], 100.1, 1.0, 0.1, p, T0 + 701 * MS) == OP_REPLACE


# ---- spot inventory and drawdown (issue 18) ------------------------------------------------
def test_spot_inventory_blocks_a_sell_below_the_starting_inventory_and_a_buy_past_the_quote() -> (
    None
):
    p = _params(spot=1, spot_start_inventory_qty=2.0, spot_quote_balance=250.0)
    g = guards.new_guard_state(p)
    assert _check(g, p, SIDE_ASK, qty=1.0, pos=-1.0) == REASON_NONE  # -2 == -start inventory
    assert _check(g, p, SIDE_ASK, qty=1.0, pos=-2.0) == REASON_SPOT_INVENTORY
    assert _check(g, p, SIDE_BID, qty=1.0, px=100.0, pos=1.0) == REASON_NONE  # 200 <= 250
    assert _check(g, p, SIDE_BID, qty=1.0, px=100.0, pos=2.0) == REASON_SPOT_INVENTORY
    assert _check(g, p, SIDE_BID, qty=1.0, px=100.0, pos=2.0, pnl=60.0) == REASON_NONE
    assert _check(g, p, SIDE_ASK, op=OP_CANCEL, qty=1.0, pos=-2.0) == REASON_NONE


def test_spot_inventory_guard_is_off_on_derivatives() -> None:
    p = _params(spot=0, spot_start_inventory_qty=0.0, spot_quote_balance=0.0)
    g = guards.new_guard_state(p)
    assert _check(g, p, SIDE_ASK, qty=5.0, pos=0.0) == REASON_NONE


def test_drawdown_pauses_new_quotes_for_the_cooldown_then_resumes_at_a_new_peak() -> None:
    p = _params(max_drawdown=10.0, drawdown_cooldown_ns=1000 * MS)
    g = guards.new_guard_state(p)
    assert _check(g, p, pnl=5.0, now=T0) == REASON_NONE  # peak 5
    assert _check(g, p, pnl=-4.9, now=T0 + MS) == REASON_NONE  # 9.9 below the peak
    assert _check(g, p, pnl=-5.5, now=T0 + 2 * MS) == REASON_DRAWDOWN  # 10.5 below: stop
    assert g[0]["n_dd_stops"] == 1
    assert _check(g, p, pnl=50.0, now=T0 + 500 * MS) == REASON_DRAWDOWN  # still cooling down
    assert _check(g, p, op=OP_CANCEL, pnl=-5.5, now=T0 + 500 * MS) == REASON_NONE
    assert _check(g, p, pnl=-6.0, now=T0 + 1003 * MS) == REASON_NONE  # resumed, peak -6
    assert _check(g, p, pnl=-15.0, now=T0 + 1004 * MS) == REASON_NONE  # 9 below the new peak
    assert _check(g, p, pnl=-16.5, now=T0 + 1005 * MS) == REASON_DRAWDOWN


def test_drawdown_stop_is_off_by_default() -> None:
    p = _params()
    assert p[0]["max_drawdown"] == 0.0
    g = guards.new_guard_state(p)
    assert _check(g, p, pnl=1e6) == REASON_NONE
    assert _check(g, p, pnl=-1e6 + 1) == REASON_NONE
