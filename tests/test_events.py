"""The event layout is hftbacktest's, field for field, and its helpers read kinds and flags right."""

from __future__ import annotations

import numpy as np
import pytest

from mmbot.events import (
    BUY_EVENT,
    DEPTH_EVENT,
    EVENT_DTYPE,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
    as_events,
    ev_kind,
    ev_side,
    is_exch,
    is_local,
    kind_counts,
)


def test_event_layout_matches_hftbacktest_when_installed():
    hbt_types = pytest.importorskip("hftbacktest.types")
    assert EVENT_DTYPE == hbt_types.event_dtype
    assert EXCH_EVENT == hbt_types.EXCH_EVENT
    assert LOCAL_EVENT == hbt_types.LOCAL_EVENT
    assert BUY_EVENT == hbt_types.BUY_EVENT
    assert SELL_EVENT == hbt_types.SELL_EVENT
    assert DEPTH_EVENT == hbt_types.DEPTH_EVENT
    assert TRADE_EVENT == hbt_types.TRADE_EVENT


def test_flag_helpers_decode_kind_side_and_origin():
    ev = TRADE_EVENT | EXCH_EVENT | BUY_EVENT
    assert ev_kind(ev) == TRADE_EVENT
    assert ev_side(ev) == 1
    assert ev_side(DEPTH_EVENT | SELL_EVENT) == -1
    assert ev_side(DEPTH_EVENT) == 0
    assert is_exch(ev) and not is_local(ev)
    assert is_local(DEPTH_EVENT | LOCAL_EVENT)


def test_kind_counts_and_as_events_round_trip():
    arr = np.zeros(3, dtype=EVENT_DTYPE)
    arr["ev"] = [DEPTH_EVENT | BUY_EVENT, TRADE_EVENT | SELL_EVENT, DEPTH_EVENT | SELL_EVENT]
    assert kind_counts(arr) == {"depth": 2, "trade": 1}
    unaligned = np.zeros(3, dtype=[(n, EVENT_DTYPE.fields[n][0]) for n in EVENT_DTYPE.names])
    unaligned["px"] = [1.0, 2.0, 3.0]
    converted = as_events(unaligned)
    assert converted.dtype == EVENT_DTYPE
    assert converted["px"].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="not an event array"):
        as_events(np.zeros(2, dtype=[("a", "f8")]))
