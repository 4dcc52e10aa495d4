"""Bad input to the venue: a clear UserError naming the input, never a wrong fill."""

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

F = EXCH_EVENT | LOCAL_EVENT


def _events(rows) -> np.ndarray:
    out = np.zeros(len(rows), EVENT_DTYPE)
    for i, (ev, ts, px, qty) in enumerate(rows):
        out[i] = (ev, ts, ts, px, qty, 0, 0, 0.0)
    return out


ROWS = [
    (DEPTH_EVENT | BUY_EVENT | F, 1000, 100.0, 5.0),
    (DEPTH_EVENT | SELL_EVENT | F, 1000, 100.1, 5.0),
    (TRADE_EVENT | SELL_EVENT | F, 3000, 99.0, 50.0),  # would fill any bid at or above 99.0
]
CFG = dict(tick_px=0.1, lot_qty=1.0, entry_latency_ns=10, response_latency_ns=10)


def test_decreasing_exchange_time_is_a_user_error_naming_the_row():
    rows = ROWS[:2] + [(TRADE_EVENT | SELL_EVENT | F, 900, 100.0, 1.0)]
    with pytest.raises(UserError, match=r"exchange time decreases at row 2"):
        sim.make_venue(_events(rows), sim.VenueConfig(**CFG))


@pytest.mark.parametrize("qty", [0.0, -1.0, float("nan")])
def test_non_positive_quantity_is_refused_and_reported(qty):
    v = sim.make_venue(_events(ROWS), sim.VenueConfig(**CFG))
    sim.elapse(v, 0)
    assert sim.submit(v, sim.BUY, 100.0, qty, sim.TIF_GTX, sim.ORD_LIMIT) == sim.ERR_BAD_QTY
    sim.elapse(v, 10_000)
    assert sim.exch_position_qty(v) == 0.0  # nothing was sent, nothing filled
    with pytest.raises(UserError, match="quantity must be a positive"):
        sim.finish(v)


def test_price_off_the_tick_grid_is_refused_and_reported():
    v = sim.make_venue(_events(ROWS), sim.VenueConfig(**CFG))
    sim.elapse(v, 0)
    assert sim.submit(v, sim.BUY, 100.03, 1.0, sim.TIF_GTX, sim.ORD_LIMIT) == sim.ERR_OFF_TICK
    sim.elapse(v, 10_000)
    assert sim.exch_position_qty(v) == 0.0
    with pytest.raises(UserError, match="off the tick grid.*100.03"):
        sim.finish(v)


def test_modify_to_an_off_grid_price_is_refused():
    v = sim.make_venue(_events(ROWS), sim.VenueConfig(**CFG))
    sim.elapse(v, 0)
    oid = sim.submit(v, sim.BUY, 99.5, 1.0, sim.TIF_GTX, sim.ORD_LIMIT)
    sim.elapse(v, 100)
    assert sim.modify(v, oid, 99.55, 1.0) == sim.ERR_OFF_TICK
    with pytest.raises(UserError, match="off the tick grid"):
        sim.finish(v)


@pytest.mark.parametrize(
    ("field", "value", "msg"),
    [
        ("tick_px", 0.0, "tick_px"),
        ("lot_qty", -1.0, "lot_qty"),
        ("queue_model", "fifo", "queue_model"),
        ("entry_latency_ns", -5, "entry_latency_ns"),
        ("rate_limit_per_s", -1, "rate_limit_per_s"),
    ],
)
def test_bad_config_names_the_field(field, value, msg):
    cfg = dict(CFG, **{field: value})
    with pytest.raises(UserError, match=msg):
        sim.make_venue(_events(ROWS), sim.VenueConfig(**cfg))


def test_not_an_event_array_is_a_user_error():
    with pytest.raises(UserError, match="events"):
        sim.make_venue(np.zeros(3, dtype=[("a", "f8")]), sim.VenueConfig(**CFG))


def test_queue_model_names_parse():
    assert sim.config.parse_queue_model("power2") == (sim.QM_POWER, 2.0)
    assert sim.config.parse_queue_model("power1.5") == (sim.QM_POWER, 1.5)
    assert sim.config.parse_queue_model("log") == (sim.QM_LOG, 0.0)
    assert sim.config.parse_queue_model("risk_averse") == (sim.QM_RISK_AVERSE, 0.0)
