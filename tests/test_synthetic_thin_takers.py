"""Opportunistic takers (``model.taker_thin_exponent``): the noise parents that take a side arrive
at their rate times min(cap, (near depth / its target) ** -beta). On a still toy market whose
near depth is its touch, the arrival rate per second spent in each touch state follows that
factor; off (beta 0), it does not depend on the touch, and the shipped markets generate the
bytes they did before the field existed."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import still_market
from mmbot.data.synthetic import generate, model_arrays
from mmbot.data.synthetic_layout import P_THIN_LEVELS, P_THIN_TARGET_LOTS
from mmbot.events import BUY_EVENT, DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, KIND_MASK, TRADE_EVENT

T0_NS = 1_700_000_000_000_000_000
S_NS = 1_000_000_000
LEVEL_LOTS = 5  # every level's target (lot 1 qty)
CAP = 10.0


def _toy(beta: float) -> dict:
    """A still market (no diffusion, jumps, informed flow or impact: the level ladder never
    moves) at a tick of 1 bps (the near depth is the touch alone), lots of 1 qty: noise parents
    of 2 lots, makers of 1 lot refilling slowly (0.5/s per missing lot), so the touch spends
    time at every size from 1 to 5 lots."""
    cal = still_market(
        refill_rate_per_s=0.5,
        noise_base_rate_per_s=1.0,
        depth_target_qty=[float(LEVEL_LOTS)] * 3,
        parent_size_quantiles_qty=[2.0, 2.0],
        maker_size_quantiles_qty=[1.0, 1.0],
        maker_size_scale=1.0,
        taker_thin_exponent=beta,
        taker_thin_cap_ratio=CAP,
    )
    cal["lot_qty"] = 1.0
    cal["tick_px"] = float(cal["price0_px"]) * 1e-4
    return cal


def _rates_by_touch(ev: np.ndarray, tick: float) -> dict[int, tuple[int, float]]:
    """Per touch size (lots) of the side an order takes: (orders, seconds spent there, summed
    over both sides), the book replayed from the rows (exchange time). An order is the run of
    prints at one exchange time."""
    kind = ev["ev"] & KIND_MASK
    book: dict[bool, dict[int, int]] = {True: {}, False: {}}  # bid? -> price ticks -> lots
    orders: dict[int, int] = {}
    secs: dict[int, float] = {}

    def touch(bid: bool) -> int:
        side = {p: q for p, q in book[bid].items() if q > 0}
        if not side:
            return 0
        return side[max(side) if bid else min(side)]

    t_prev = int(ev["exch_ts"][0])
    last_trade_t = -1
    for i in range(len(ev)):
        t = int(ev["exch_ts"][i])
        if t > t_prev:
            for bid in (True, False):
                s = touch(bid)
                secs[s] = secs.get(s, 0.0) + (t - t_prev) / S_NS
            t_prev = t
        k = int(kind[i])
        buy = bool(int(ev["ev"][i]) & BUY_EVENT)
        px = int(round(float(ev["px"][i]) / tick))
        if k in (DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT):
            book[buy][px] = int(round(float(ev["qty"][i])))
        elif k == TRADE_EVENT and t != last_trade_t:
            # a buy takes the asks (bid? False); the book rows of the sweep follow its prints
            s = touch(not buy)
            orders[s] = orders.get(s, 0) + 1
            last_trade_t = t
    return {s: (orders.get(s, 0), secs[s]) for s in secs}


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_takers_arrive_when_the_touch_is_thin(beta: float) -> None:
    cal = _toy(beta)
    P = model_arrays(cal)[0]
    assert P[P_THIN_LEVELS] == (1 if beta > 0 else 0)
    if beta > 0:
        assert P[P_THIN_TARGET_LOTS] == LEVEL_LOTS
    by = _rates_by_touch(generate(cal, 5, T0_NS, 3000 * S_NS), float(cal["tick_px"]))
    n_full, s_full = by[LEVEL_LOTS]
    full = n_full / s_full  # per side: half the noise base rate when the touch is at its target
    assert n_full >= 200 and abs(full - 0.5) < 4 * np.sqrt(0.5 / s_full), (n_full, s_full)
    checked = 0
    for lots in range(1, LEVEL_LOTS):
        n, s = by.get(lots, (0, 0.0))
        if n < 100:
            continue
        want = min(CAP, (lots / LEVEL_LOTS) ** -beta)
        got = (n / s) / full
        # Poisson counts: relative sd 1/sqrt(n) on each rate
        tol = 4 * want * np.sqrt(1 / n + 1 / n_full)
        assert abs(got - want) < tol, (beta, lots, n, s, got, want)
        checked += 1
    assert checked >= 2, by
