"""The soak's market names what it is: a wide-tick calibration says so in the soak's notes, the
default market (the captured tick) needs no such note."""

from __future__ import annotations

from mmbot.data.synthetic import WIDE_TICK_MARKET
from mmbot.soak.market import resolve_market


def test_wide_tick_market_is_labelled_and_the_default_is_the_captured_tick() -> None:
    wide = resolve_market(f"synthetic:{WIDE_TICK_MARKET}")
    assert any(note.startswith("WIDE-TICK market: tick 6.2") for note in wide.notes)
    default = resolve_market("synthetic")
    assert default.tick_px == 0.1
    assert not any("WIDE-TICK" in note for note in default.notes)
