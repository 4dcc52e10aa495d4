"""A pull that holds (``model.pull_hold_s``): the pulled side's near book stays at (1 -
``pull_depletion``) of its target for an exponential time, nothing rebuilt meanwhile, and then
comes back at once; slow resilience may be off; with the rate 0 or the hold 0 the bytes are those
of a calibration without the fields."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from mmbot.data.synthetic import generate, generate_with_flow
from mmbot.errors import UserError
from test_synthetic_pulls import LEVEL_QTY, NEAR, S_NS, T0_NS, _near, _replay, _toy

RATE_PER_S = 0.1  # both sides: 0.05 a side
HOLD_S = 1.0
PULL_DEPLETION = 0.6  # not the toy's resilience_depletion (0.8): the pull's own field
DURATION_S = 1200
BACK_MS = 1  # the refill (20000/s, whole) brings a side back within this


def _held(rate_per_s: float = RATE_PER_S, hold_s: float = HOLD_S) -> dict:
    """The pulls' still toy market with slow resilience off and the pulls held."""
    cal = _toy(rate_per_s)
    cal["model"].update(
        resilience_half_life_s=0.0, pull_hold_s=hold_s, pull_depletion=PULL_DEPLETION
    )
    return cal


def _episodes(ev: np.ndarray, tick: float) -> list[tuple[int, bool, list[float], int, int]]:
    """Per detected pull (rows lowering a near level to the held depth): its time, side, the
    side's near depth over its target at every row group until a row raises it, and the times of
    that first raising row and of the one that makes it whole (-1: never)."""
    held_qty = (1.0 - PULL_DEPLETION) * LEVEL_QTY
    pulls, states = _replay(ev, tick, held_qty + 1e-9)
    full = NEAR * LEVEL_QTY
    out = []
    times = [s[0] for s in states]
    for t, bid, _ in pulls:
        i = int(np.searchsorted(times, t, side="right"))
        seen: list[float] = []
        first_up, back = -1, -1
        for t2, book in states[i - 1 :]:
            x = sum(q for _, q in _near(book[bid], bid)) / full
            if t2 > t and first_up < 0 and x > seen[-1] + 1e-9:
                first_up = t2
            if t2 > t and x >= 1.0 - 1e-9:
                back = t2
                break
            if first_up < 0:
                seen.append(x)
        out.append((t, bid, seen, first_up, back))
    return out


def test_a_held_side_stays_thin_for_an_exponential_time_and_comes_back_at_once() -> None:
    cal = _held()
    ev, flow = generate_with_flow(cal, 5, T0_NS, DURATION_S * S_NS)
    eps = _episodes(ev, float(cal["tick_px"]))
    # a pull during its side's hold lowers nothing (the side is held already): not in the rows
    assert 0 < len(eps) <= flow["pulls"]
    want_n = RATE_PER_S * DURATION_S
    assert abs(flow["pulls"] - want_n) < 4 * want_n**0.5, flow["pulls"]
    durations_s = []
    for t, _, seen, first_up, back in eps:
        if t > T0_NS + (DURATION_S - 30) * S_NS:
            continue  # may still be held when the market ends
        assert back > 0
        # while held the near depth stays at (1 - D) of its target: no rebuilding row
        assert seen == pytest.approx([1.0 - PULL_DEPLETION] * len(seen), abs=1e-9)
        assert back - first_up <= BACK_MS * 1_000_000  # back at once
        durations_s.append((first_up - t) / S_NS)
    # a side is held from a pull until the last of the holds then running ends (an M/M/inf busy
    # period, lambda = a side's pull rate): mean (e^(lambda h) - 1) / lambda, h for lambda h -> 0
    lam = RATE_PER_S / 2
    want_mean_s = (math.exp(lam * HOLD_S) - 1.0) / lam
    n = len(durations_s)
    mean_s = float(np.mean(durations_s))
    assert n >= 80, n
    assert abs(mean_s - want_mean_s) < 4 * want_mean_s / n**0.5, (mean_s, want_mean_s)
    # exponential, not fixed: about e^-1 of them last longer than the mean hold
    longer = float(np.mean(np.array(durations_s) > HOLD_S))
    p = math.exp(-1.0)
    assert abs(longer - p) < 4 * (p * (1 - p) / n) ** 0.5, longer
    # the share of time a side is held: 1 - exp(-lambda h)
    share = sum(durations_s) / (2 * DURATION_S)
    assert abs(share - (1.0 - math.exp(-lam * HOLD_S))) < 4 * want_mean_s * n**0.5 / (
        2 * DURATION_S
    )


def test_with_the_rate_0_or_the_hold_0_nothing_changes() -> None:
    base = _toy(RATE_PER_S)
    ev = generate(base, 5, T0_NS, 200 * S_NS)
    # the hold 0: the slow-resilience pull as before, pull_depletion defaulting to its depletion
    same = copy.deepcopy(base)
    same["model"].update(pull_hold_s=0.0, pull_depletion=base["model"]["resilience_depletion"])
    assert generate(same, 5, T0_NS, 200 * S_NS).tobytes() == ev.tobytes()
    # the rate 0: no pulls, nothing held, the bytes of a market without the fields
    still = _held(rate_per_s=0.0)
    without = copy.deepcopy(still)
    for key in ("pull_rate_per_s", "pull_hold_s", "pull_depletion"):
        del without["model"][key]
    ev0 = generate(without, 5, T0_NS, 200 * S_NS)
    assert generate(still, 5, T0_NS, 200 * S_NS).tobytes() == ev0.tobytes()
    assert generate(_held(), 5, T0_NS, 200 * S_NS).tobytes() != ev0.tobytes()


def test_a_bad_pull_depletion_is_refused() -> None:
    cal = _held()
    cal["model"]["pull_depletion"] = 1.5
    with pytest.raises(UserError, match="pull_depletion"):
        generate(cal, 5, T0_NS, S_NS)
    cal = _held(hold_s=0.0)  # no hold and no slow resilience: nothing would bring the side back
    with pytest.raises(UserError, match="pull_hold_s"):
        generate(cal, 5, T0_NS, S_NS)


def test_fit_hold_terms_give_the_capture_s_thin_share() -> None:
    """``calibrate_hold``: the pull rate `hold_terms` sets for a thin share holds a side that
    share of the time, and `thin_share` (100 ms samples within 1 bps of the mid below 0.1x their
    mean) measures it on the still market: 0 without pulls."""
    from mmbot.data.calibrate_hold import HOLD_DEPLETION, HOLD_S, hold_terms, thin_share

    want = 0.1
    terms = hold_terms(want)
    assert 1.0 - math.exp(-terms["pull_rate_per_s"] / 2 * HOLD_S) == pytest.approx(want, rel=1e-12)
    cal = _toy(0.0)
    cal["model"]["resilience_half_life_s"] = 0.0
    tick = float(cal["tick_px"])
    assert thin_share(generate(cal, 5, T0_NS, 300 * S_NS), tick) == 0.0
    cal["model"].update(terms, taker_thin_exponent=0.0)
    assert cal["model"]["pull_depletion"] == HOLD_DEPLETION
    got = thin_share(generate(cal, 5, T0_NS, DURATION_S * S_NS), tick)
    assert abs(got - want) < 0.03, got
