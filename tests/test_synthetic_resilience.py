"""Slow resilience after a sweep (``model.resilience_half_life_s``): the levels a sweep emptied
come back toward their targets with the configured half-life, and at once with it off; off, the
shipped markets generate the bytes they did before it existed."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import still_market
from mmbot.data.synthetic import generate
from mmbot.events import BUY_EVENT, DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, KIND_MASK, TRADE_EVENT

T0_NS = 1_700_000_000_000_000_000
S_NS = 1_000_000_000
LEVEL_QTY = 5.0  # every level's target
HALF_LIFE_S = 1.0
DEPLETION = 0.8
AFTER_S = (0.25, 0.5, 1.0, 2.0)  # when the emptied level is looked at, after the sweep


def _toy(half_life_s: float) -> dict:
    """A still market (no diffusion, jumps, informed flow or impact: the level ladder never
    moves) whose noise parents of 7 qty always empty the first level (5 qty) and dip into the
    second; makers refill a missing level whole and fast (20000/s), and never cancel."""
    return still_market(
        refill_rate_per_s=20000.0,
        refill_whole=1.0,
        noise_base_rate_per_s=0.3,
        depth_target_qty=[LEVEL_QTY] * 5,
        parent_size_quantiles_qty=[7.0, 7.0],
        maker_size_quantiles_qty=[0.05, 0.1, 0.15],
        maker_size_scale=1.0,
        resilience_half_life_s=half_life_s,
        resilience_depletion=DEPLETION,
    )


def _recovery(ev: np.ndarray, tick: float) -> dict[float, list[float]]:
    """For each sweep with no other sweep in the next max(AFTER_S) s: the queue at the price of
    its first print, over the level's target, AFTER_S after its last print (the book replayed
    from the rows, exchange time)."""
    kind = ev["ev"] & KIND_MASK
    trade_t = ev["exch_ts"][kind == TRADE_EVENT]
    book: dict[tuple[bool, int], float] = {}
    out: dict[float, list[float]] = {a: [] for a in AFTER_S}
    wait: list[tuple[int, float, tuple[bool, int]]] = []  # (time, after, (bid?, price))
    i, n = 0, len(ev)
    while i < n:
        t = int(ev["exch_ts"][i])
        while wait and wait[0][0] < t:
            _, after, key = wait.pop(0)
            out[after].append(book.get(key, 0.0) / LEVEL_QTY)
        k = int(kind[i])
        buy = bool(int(ev["ev"][i]) & BUY_EVENT)
        px = int(round(float(ev["px"][i]) / tick))
        if k in (DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT):
            book[(buy, px)] = float(ev["qty"][i])
        elif k == TRADE_EVENT:
            j = i
            while j + 1 < n and kind[j + 1] == TRADE_EVENT:
                j += 1
            nxt = trade_t[np.searchsorted(trade_t, ev["exch_ts"][j], side="right") :]
            horizon = t + int(max(AFTER_S) * S_NS)
            if len(nxt) == 0 or nxt[0] > horizon:
                # a buy takes the asks: the level is on the ask side (bid? False)
                wait += [(t + int(a * S_NS), a, (not buy, px)) for a in AFTER_S]
                wait.sort()
            i = j
        i += 1
    return out


@pytest.mark.parametrize("half_life_s", [0.0, HALF_LIFE_S])
def test_swept_level_recovers_with_the_half_life(half_life_s: float) -> None:
    cal = _toy(half_life_s)
    rec = _recovery(generate(cal, 3, T0_NS, 400 * S_NS), float(cal["tick_px"]))
    for after, xs in rec.items():
        assert len(xs) >= 25, (after, len(xs))
        got = float(np.mean(xs))
        want = 1.0 - DEPLETION * 0.5 ** (after / half_life_s) if half_life_s > 0 else 1.0
        assert abs(got - want) < 0.06, (half_life_s, after, got, want)
