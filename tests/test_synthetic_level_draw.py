"""The generator's level draw (``synthetic_book._pick_level``): its block-skipping walk picks the
level a plain walk over the running sum of the differences picks, with the same random draw."""

from __future__ import annotations

import numpy as np

from mmbot.book import RING_TICKS, new_ring
from mmbot.data.synthetic_book import _pick_level
from mmbot.data.synthetic_rng import _seed_state, _uniform


def _plain_pick(
    rng: np.ndarray,
    target: np.ndarray,
    q: np.ndarray,
    ref: int,
    sgn: int,
    k0: int,
    k1: int,
    excess: bool,
    g: float,
) -> int:
    """The draw written out level by level in Python: integer differences, one compare each."""
    ds = []
    for k in range(k0, k1):
        qk = int(q[(ref + sgn * k) % RING_TICKS])
        if excess:
            d = qk - int(target[k])
        elif g < 1.0:
            d = int(target[k] * g + 0.5) - qk
        else:
            d = int(target[k]) - qk
        ds.append(d)
    tot = sum(d for d in ds if d > 0)
    if tot <= 0:
        return -1
    y = _uniform(rng) * float(tot)
    c = 0
    for i, d in enumerate(ds):
        if d > 0:
            c += d
            if y < float(c):
                return k0 + i
    return k1 - 1


def test_level_draw_picks_the_level_a_plain_running_sum_walk_picks() -> None:
    gen = np.random.default_rng(5)
    ds = np.zeros(512, np.int64)
    picked = set()
    for case in range(600):
        n_levels = int(gen.integers(1, 320))
        target = np.round(gen.exponential(40.0, n_levels) * (gen.random(n_levels) < 0.8))
        q = new_ring()
        ref = int(gen.integers(-3 * RING_TICKS, 3 * RING_TICKS))
        sgn = -1 if case % 2 else 1
        for k in range(n_levels):
            q[(ref + sgn * k) % RING_TICKS] = int(gen.integers(0, 120))
        k0 = int(gen.integers(0, n_levels))
        k1 = int(gen.integers(k0, n_levels + 1))
        excess = bool(case % 3 == 0)
        g = 1.0 if case % 5 else float(gen.random())
        seed = _seed_state(case)
        got = _pick_level(seed.copy(), target, q, ref, sgn, k0, k1, excess, g, ds)
        want = _plain_pick(seed.copy(), target, q, ref, sgn, k0, k1, excess, g)
        assert got == want, (case, got, want)
        picked.add(got - k0 if got >= 0 else -1)
    # the cases reach past the first blocks of the walk, and include zones with nothing to draw
    assert -1 in picked and max(picked) > 64
