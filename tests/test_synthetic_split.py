"""A deep level printed as several maker orders (``model.deep_print_split``): a sweep's fill at a
level past its first that holds less than the maker order drawn is one order of that level, drawn
from the maker size table below what the level holds (the last the rest), not the whole level;
the level's total and the book rows are what they were; 0 (default) generates the same bytes as
a calibration without the field."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from conftest import still_market
from mmbot.data.synthetic import generate
from mmbot.errors import UserError
from mmbot.events import BUY_EVENT, DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, KIND_MASK, TRADE_EVENT

T0_NS = 1_700_000_000_000_000_000
S_NS = 1_000_000_000
LEVEL_QTY = 5.0  # every level's target
MAKER_QTY = [2.0, 4.0, 8.0, 16.0, 32.0]  # maker orders: median 8, above a level 3/4 of the time
DURATION_S = 300


def _toy(split: float | None) -> dict:
    """A still market at a tick of 0.5 bps, 5 levels of 5 qty a side refilled whole and fast;
    noise takers of 6-18 qty sweep 2-4 levels; maker orders mostly larger than a level."""
    cal = still_market(
        refill_rate_per_s=20000.0,
        refill_whole=1.0,
        noise_base_rate_per_s=2.0,
        jump_size_bps=0.0,
        depth_target_qty=[LEVEL_QTY] * 5,
        maker_size_quantiles_qty=MAKER_QTY,
        maker_size_scale=1.0,
        parent_size_quantiles_qty=[6.0, 12.0, 18.0],
    )
    cal["tick_px"] = float(cal["price0_px"]) * 0.5e-4
    if split is not None:
        cal["model"]["deep_print_split"] = split
    return cal


def _sweeps(ev: np.ndarray, tick: float) -> list[tuple[list[tuple[int, float]], dict, dict]]:
    """Per sweep (the prints at one exchange time, then its book rows): its prints (price in
    ticks, qty) in order, the taken side's book before it and the levels its rows set."""
    kind = ev["ev"] & KIND_MASK
    book: dict[bool, dict[int, float]] = {True: {}, False: {}}
    out = []
    i, n = 0, len(ev)
    while i < n:
        t = int(ev["exch_ts"][i])
        prints: list[tuple[int, float]] = []
        rows: dict[int, float] = {}
        taken = None
        before: dict[int, float] = {}
        while i < n and int(ev["exch_ts"][i]) == t:
            px = int(round(float(ev["px"][i]) / tick))
            qty = float(ev["qty"][i])
            buy = bool(int(ev["ev"][i]) & BUY_EVENT)
            if kind[i] == TRADE_EVENT:
                if taken is None:
                    taken = not buy  # a buy takes the asks
                    before = dict(book[taken])
                prints.append((px, qty))
            elif kind[i] in (DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT):
                book[buy][px] = qty
                if taken is not None and buy == taken:
                    rows[px] = qty
            i += 1
        if prints:
            out.append((prints, before, rows))
    return out


def _deep_prints(sweeps: list) -> tuple[list[float], list[int], int]:
    """The prints at the levels past each sweep's first (qty), the prints per such level that the
    sweep emptied, and the levels whose printed total is not what their book rows took."""
    deep: list[float] = []
    per_level: list[int] = []
    mismatched = 0
    for prints, before, rows in sweeps:
        first = prints[0][0]
        by_px: dict[int, list[float]] = {}
        for px, qty in prints:
            by_px.setdefault(px, []).append(qty)
        for px, qtys in by_px.items():
            taken = before.get(px, 0.0) - rows.get(px, before.get(px, 0.0))
            mismatched += abs(sum(qtys) - taken) > 1e-6
            if px != first:
                deep += qtys
                if rows.get(px, -1.0) == 0.0:
                    per_level.append(len(qtys))
    return deep, per_level, mismatched


def test_a_deep_level_prints_as_several_maker_orders_with_its_total_and_rows_unchanged() -> None:
    tick = float(_toy(None)["tick_px"])
    figures = {}
    for split in (0.0, 1.0):
        ev = generate(_toy(split), 3, T0_NS, DURATION_S * S_NS)
        deep, per_level, mismatched = _deep_prints(_sweeps(ev, tick))
        whole = float(np.mean(np.asarray(per_level) == 1))
        figures[split] = (len(deep), whole, float(np.mean(per_level)), mismatched, deep)
        print(
            f"split {split:g}: deep prints {len(deep)}, emptied deep levels {len(per_level)}, "
            f"printed whole {whole:.4f}, prints per emptied deep level {np.mean(per_level):.3f}, "
            f"levels whose prints differ from their rows {mismatched}"
        )
    n_off, whole_off, per_off, bad_off, _ = figures[0.0]
    n_on, whole_on, per_on, bad_on, _ = figures[1.0]
    assert bad_off == 0 and bad_on == 0  # each level's prints add up to what its rows took
    assert n_off > 200 and n_on > 200
    # off: a maker order larger than the level prints it whole (2/3 of the draws are above 5)
    assert whole_off > 0.5
    assert per_off < 1.6
    # on: the level is several orders drawn below what it holds
    assert whole_on < 0.05
    assert per_on > 2.0
    assert n_on > 1.2 * n_off


def test_the_split_off_is_the_bytes_without_it_and_a_bad_value_is_refused() -> None:
    base = generate(_toy(None), 4, T0_NS, 60 * S_NS).tobytes()
    assert generate(_toy(0.0), 4, T0_NS, 60 * S_NS).tobytes() == base
    assert generate(_toy(1.0), 4, T0_NS, 60 * S_NS).tobytes() != base
    for bad in (0.5, 2.0):
        with pytest.raises(UserError, match="deep_print_split"):
            generate(_toy(bad), 4, T0_NS, S_NS)


def test_a_shipped_market_does_not_list_the_field() -> None:
    from mmbot.data.synthetic import WIDE_TICK_MARKET, load_calibration

    for name in ("binance_coinm_btcusd_perp", WIDE_TICK_MARKET):
        assert "deep_print_split" not in copy.deepcopy(load_calibration(name))["model"]
