"""The makers pulling the near book on their own (``model.pull_rate_per_s``): at Poisson times one
side's levels within 1 bps of its touch are cancelled down to the depleted targets slow resilience
leaves after a sweep, and come back with its half-life; the touch keeps at least one lot; with the
rate 0 nothing is pulled and the bytes are those of a calibration without the field."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from conftest import still_market
from mmbot.data.synthetic import generate, generate_with_flow, model_arrays
from mmbot.data.synthetic_layout import P_PULL_LEVELS
from mmbot.errors import UserError
from mmbot.events import BUY_EVENT, DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, KIND_MASK

T0_NS = 1_700_000_000_000_000_000
S_NS = 1_000_000_000
LEVEL_QTY = 5.0  # every level's target (5000 lots of 0.001)
NEAR = 2  # levels within 1 bps of the touch at a tick of 0.5 bps
RATE_PER_S = 0.2
HALF_LIFE_S = 1.0
DEPLETION = 0.8
AFTER_S = (0.25, 0.5, 1.0, 2.0)  # when a pulled side's near depth is looked at, after the pull
DURATION_S = 600


def _toy(rate_per_s: float, depletion: float = DEPLETION) -> dict:
    """A still market (no diffusion, informed flow, impact, cancels or takers: nothing but the
    pulls and the refill changes the book; a jump of size 0 once a second keeps the clock going)
    at a tick of 0.5 bps, so two levels are within 1 bps of the touch; makers refill a missing
    level whole and fast (20000/s)."""
    cal = still_market(
        refill_rate_per_s=20000.0,
        refill_whole=1.0,
        noise_base_rate_per_s=0.0,
        jump_size_bps=0.0,
        depth_target_qty=[LEVEL_QTY] * 5,
        maker_size_quantiles_qty=[0.05, 0.1, 0.15],
        maker_size_scale=1.0,
        resilience_half_life_s=HALF_LIFE_S,
        resilience_depletion=depletion,
        pull_rate_per_s=rate_per_s,
    )
    cal["model"]["jump_rate_per_s"] = 1.0
    cal["tick_px"] = float(cal["price0_px"]) * 0.5e-4
    return cal


def _replay(
    ev: np.ndarray, tick: float, keep_qty: float
) -> tuple[list[tuple[int, bool, int]], list]:
    """The book replayed from the rows (exchange time). Returns the pulls (time, bid side?, rows:
    the rows at one time that lower a level to ``keep_qty`` or less; a queue-reactive cancel
    takes a level down only to its full target, when a maker joining it overshot) and, per row
    group, (time, {bid?: {price: qty}}) copies of the book after it."""
    kind = ev["ev"] & KIND_MASK
    assert np.all((kind == DEPTH_EVENT) | (kind == DEPTH_SNAPSHOT_EVENT))  # no trades
    book: dict[bool, dict[int, float]] = {True: {}, False: {}}
    pulls: list[tuple[int, bool, int]] = []
    states: list[tuple[int, dict[bool, dict[int, float]]]] = []
    i, n = 0, len(ev)
    while i < n:
        t = int(ev["exch_ts"][i])
        lowered: dict[bool, int] = {True: 0, False: 0}
        while i < n and int(ev["exch_ts"][i]) == t:
            bid = bool(int(ev["ev"][i]) & BUY_EVENT)
            px = int(round(float(ev["px"][i]) / tick))
            qty = float(ev["qty"][i])
            if kind[i] == DEPTH_EVENT and qty < book[bid].get(px, 0.0) and qty <= keep_qty:
                lowered[bid] += 1
            book[bid][px] = qty
            i += 1
        pulls += [(t, bid, rows) for bid, rows in lowered.items() if rows]
        states.append((t, {b: dict(book[b]) for b in (True, False)}))
    return pulls, states


def _near(side: dict[int, float], bid: bool) -> list[tuple[int, float]]:
    """The side's NEAR best non-empty levels, best first."""
    live = sorted((p for p, q in side.items() if q > 0), reverse=bid)
    return [(p, side[p]) for p in live[:NEAR]]


def _at(states: list, t_ns: int) -> dict[bool, dict[int, float]]:
    """The book after the last row group at or before ``t_ns``."""
    times = [s[0] for s in states]
    return states[int(np.searchsorted(times, t_ns, side="right")) - 1][1]


def test_a_pull_thins_the_near_book_and_it_comes_back_with_the_half_life() -> None:
    cal = _toy(RATE_PER_S)
    assert model_arrays(cal)[0][P_PULL_LEVELS] == NEAR
    ev, flow = generate_with_flow(cal, 5, T0_NS, DURATION_S * S_NS)
    pulls, states = _replay(ev, float(cal["tick_px"]), (1.0 - DEPLETION) * LEVEL_QTY + 1e-9)
    assert len(pulls) == flow["pulls"]  # every simulated pull shows in the rows
    want_n = RATE_PER_S * DURATION_S
    assert abs(len(pulls) - want_n) < 4 * want_n**0.5, len(pulls)
    assert all(rows == NEAR for _, _, rows in pulls)  # one row per near level, no more
    full = NEAR * LEVEL_QTY
    rec: dict[float, list[float]] = {a: [] for a in AFTER_S}
    for t, bid, _ in pulls:
        touch0 = _near(_at(states, t - 1)[bid], bid)[0][0]
        after = _near(_at(states, t)[bid], bid)
        assert after[0][0] == touch0  # the touch did not move
        assert sum(q for _, q in after) / full == pytest.approx(1.0 - DEPLETION, abs=1e-9)
        horizon = t + int(max(AFTER_S) * S_NS)
        if any(t < t2 <= horizon and b2 == bid for t2, b2, _ in pulls):
            continue  # a later pull of the same side cuts the recovery short
        for a in AFTER_S:
            side = _at(states, t + int(a * S_NS))[bid]
            rec[a].append(sum(q for _, q in _near(side, bid)) / full)
    for a, xs in rec.items():
        assert len(xs) >= 40, (a, len(xs))
        want = 1.0 - DEPLETION * 0.5 ** (a / HALF_LIFE_S)
        assert abs(float(np.mean(xs)) - want) < 0.04, (a, float(np.mean(xs)), want)


def test_a_full_depletion_keeps_one_lot_at_the_touch() -> None:
    cal = _toy(RATE_PER_S, depletion=1.0)
    ev = generate(cal, 6, T0_NS, 60 * S_NS)
    pulls, states = _replay(ev, float(cal["tick_px"]), float(cal["lot_qty"]) + 1e-9)
    assert len(pulls) >= 3
    for t, bid, _ in pulls:
        touch0 = _near(_at(states, t - 1)[bid], bid)[0][0]
        after = _near(_at(states, t)[bid], bid)
        assert after[0] == (touch0, pytest.approx(float(cal["lot_qty"])))


def test_with_the_rate_0_nothing_is_pulled() -> None:
    cal = _toy(0.0)
    ev = generate(cal, 5, T0_NS, 200 * S_NS)
    pulls, _ = _replay(ev, float(cal["tick_px"]), LEVEL_QTY)
    assert pulls == []
    without = copy.deepcopy(cal)
    del without["model"]["pull_rate_per_s"]
    assert generate(without, 5, T0_NS, 200 * S_NS).tobytes() == ev.tobytes()
    assert generate(_toy(RATE_PER_S), 5, T0_NS, 200 * S_NS).tobytes() != ev.tobytes()


def test_a_pull_needs_slow_resilience() -> None:
    cal = _toy(RATE_PER_S)
    cal["model"]["resilience_half_life_s"] = 0.0
    with pytest.raises(UserError, match="pull_rate_per_s"):
        generate(cal, 5, T0_NS, S_NS)
