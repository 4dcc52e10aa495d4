"""The order manager's requote modes: ``replace`` (tolerance + cancel-replace, the default) and
``cancel_new`` (exact quotes: cancel + new in one wake, judged once by the guards), and how the
wake's ``act`` hands a cancel + new to the driver as two op rows of one slot."""

from __future__ import annotations

import numpy as np
import pytest

from mmbot.config import load_profile
from mmbot.engine import wake as wk
from mmbot.errors import UserError
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
)
from mmbot.strategy.contract import (
    REQUOTE_CANCEL_NEW,
    REQUOTE_REPLACE,
    Quoter,
    new_own_orders,
    new_quote,
)
from mmbot.strategy.params import make_params
from mmbot.strategy.registry import check_quoter
from mmbot.strategy.touch import quote as touch_quote
from mmbot.strategy.views import ORD_LIVE, SIDE_ASK, SIDE_BID

T0 = 1_700_000_000_000_000_000
TICK = 0.1


def _params(mode: int, concurrency: int = 100):
    p = make_params(
        dict(CONSERVATIVE_START), load_profile("S1"), tick_px=TICK, lot_qty=0.1, ref_px=100.0,
        order_qty=1.0,
    )  # fmt: skip
    p["requote_mode"] = mode
    p["concurrency_limit"] = concurrency
    p["rate_limit_per_s"] = 0.0
    p["max_position_qty"] = 1e9
    return p


def _live_bid(px=100.0, qty=1.0):
    o = new_own_orders()
    o["status"][SIDE_BID], o["px"][SIDE_BID], o["qty"][SIDE_BID] = ORD_LIVE, px, qty
    o["order_id"][SIDE_BID] = 7
    o["live_since_ns"][SIDE_BID] = T0
    return o


def test_make_params_carries_the_quoters_requote_mode() -> None:
    for strategy, mode in (("glft", REQUOTE_REPLACE), ("glft_ref", REQUOTE_CANCEL_NEW)):
        p = make_params(
            dict(CONSERVATIVE_START), load_profile("S1"), tick_px=TICK, lot_qty=0.1, ref_px=100.0,
            strategy=strategy,
        )  # fmt: skip
        assert int(p["requote_mode"][0]) == mode


def test_one_tick_move_waits_under_replace_and_is_requoted_at_once_under_cancel_new() -> None:
    o = _live_bid()
    young = T0 + 1  # well inside tail_age
    replace = _params(REQUOTE_REPLACE)
    exact = _params(REQUOTE_CANCEL_NEW)
    # replace: a one-tick move is within the reprice tolerance (reprice_min_ticks = 1)
    assert manager.decide(o[SIDE_BID], 100.1, 1.0, np.nan, replace, young) == manager.OP_KEEP
    assert manager.decide(o[SIDE_BID], 100.1, 1.0, np.nan, exact, young) == OP_REPLACE
    assert manager.decide(o[SIDE_BID], 100.0, 1.0, np.nan, exact, young) == manager.OP_KEEP


def test_cancel_new_keeps_a_partly_filled_order_at_the_target_price() -> None:
    exact = _params(REQUOTE_CANCEL_NEW)
    partly = _live_bid(qty=0.4)
    assert manager.decide(partly[SIDE_BID], 100.0, 1.0, np.nan, exact, T0) == manager.OP_KEEP
    bigger = _live_bid(qty=2.0)  # a target below the open size is requoted
    assert manager.decide(bigger[SIDE_BID], 100.0, 1.0, np.nan, exact, T0) == OP_REPLACE


def test_cancel_new_writes_both_intentions_and_counts_two_requests_in_flight() -> None:
    p = _params(REQUOTE_CANCEL_NEW)
    g = guards.new_guard_state(p)
    o = _live_bid()
    acts = np.zeros(8, ACTION_DTYPE)
    n, op, px, qty = manager.manage_side(
        g, p, acts, 0, o[SIDE_BID], SIDE_BID, 100.2, 1.0, np.nan, 0.0, 0.0, T0
    )
    assert op == manager.OP_CANCEL_NEW and (px, qty) == (100.2, 1.0)
    assert n == 2
    assert [int(acts[i]["kind"]) for i in range(2)] == [ACT_INTENDED, ACT_INTENDED]
    assert [int(acts[i]["op"]) for i in range(2)] == [OP_CANCEL, OP_NEW]
    assert acts[0]["px"] == 100.0 and acts[0]["order_id"] == 7
    assert acts[1]["px"] == 100.2
    assert int(g[0]["inflight"]) == 2 and int(g[0]["n_sent"]) == 2


def test_cancel_new_is_blocked_by_concurrency_when_only_one_request_slot_is_free() -> None:
    p = _params(REQUOTE_CANCEL_NEW, concurrency=3)
    g = guards.new_guard_state(p)
    g[0]["inflight"] = 2  # one free: the pair needs two
    acts = np.zeros(8, ACTION_DTYPE)
    n, op, _, _ = manager.manage_side(
        g, p, acts, 0, _live_bid()[SIDE_BID], SIDE_BID, 100.2, 1.0, np.nan, 0.0, 0.0, T0
    )
    assert op == manager.OP_KEEP
    assert [int(acts[i]["kind"]) for i in range(n)] == [ACT_INTENDED, ACT_BLOCKED]
    assert int(acts[1]["reason"]) == REASON_CONCURRENCY
    g[0]["inflight"] = 1  # two free: it goes
    _, op, _, _ = manager.manage_side(
        g, p, acts, 0, _live_bid()[SIDE_BID], SIDE_BID, 100.2, 1.0, np.nan, 0.0, 0.0, T0
    )
    assert op == manager.OP_CANCEL_NEW


def test_act_hands_a_cancel_new_to_the_driver_as_cancel_then_new_of_one_slot() -> None:
    p = _params(REQUOTE_CANCEL_NEW)
    g = guards.new_guard_state(p)
    own = _live_bid(px=100.0)
    out = new_quote()
    q = out[0]
    q["bid_px"][0], q["bid_qty"][0] = 100.2, 1.0
    q["ask_px"][0], q["ask_qty"][0] = 100.5, 1.0  # no ask order yet: a plain new
    acts = np.zeros(wk.ACTION_ROWS_PER_SLOT * wk.N_SLOTS, ACTION_DTYPE)
    ops = np.zeros(wk.N_SLOTS, wk.OP_DTYPE)
    n_act, n_ops = wk.act(p, g, own, out, 1, 0.0, 0.0, T0, acts, 0, ops)
    rows = [(int(r["slot"]), int(r["op"]), float(r["px"]), int(r["rows_end"])) for r in ops[:n_ops]]
    assert rows == [
        (SIDE_BID, OP_CANCEL, 100.0, 1),
        (SIDE_BID, OP_NEW, 100.2, 2),
        (SIDE_ASK, OP_NEW, 100.5, 3),
    ]
    assert n_act == 3


def test_replace_mode_act_is_one_replace_row() -> None:
    p = _params(REQUOTE_REPLACE)
    g = guards.new_guard_state(p)
    own = _live_bid(px=100.0)
    out = new_quote()
    out[0]["bid_px"][0], out[0]["bid_qty"][0] = 101.0, 1.0  # far beyond the tolerance
    acts = np.zeros(wk.ACTION_ROWS_PER_SLOT * wk.N_SLOTS, ACTION_DTYPE)
    ops = np.zeros(wk.N_SLOTS, wk.OP_DTYPE)
    _, n_ops = wk.act(p, g, own, out, 1, 0.0, 0.0, T0, acts, 0, ops)
    assert [(int(r["slot"]), int(r["op"])) for r in ops[:n_ops]] == [
        (SIDE_BID, OP_REPLACE),
        (SIDE_ASK, manager.OP_KEEP),
    ]


@pytest.mark.parametrize(
    ("requote", "levels", "problem"),
    [("amend", 1, "requote 'amend' is not one of"), ("cancel_new", 5, "at most 4 levels")],
)
def test_registry_rejects_an_unknown_requote_or_too_many_cancel_new_levels(
    requote, levels, problem
) -> None:
    q = Quoter(name="t", quote=touch_quote, requote=requote, levels=levels)
    with pytest.raises(UserError, match=problem):
        check_quoter(q, "t.py:Q")
