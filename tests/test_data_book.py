"""The replay's array hash-table book against a plain dict under random updates (collisions,
backward-shift deletions, growth) and the best-level tracking against max/min of the dict."""

from __future__ import annotations

import numpy as np

from mmbot.data import replay as rp


def _contents(keys: np.ndarray, vals: np.ndarray) -> dict[int, float]:
    m = keys != rp.EMPTY_KEY
    return dict(zip(keys[m].tolist(), vals[m].tolist(), strict=True))


def test_hash_book_matches_a_dict_under_random_updates():
    rng = np.random.default_rng(7)
    st = rp.new_state(0, 0)
    bk, bv, _, _ = rp.new_books(16)
    ref: dict[int, float] = {}
    tick = 10
    for step in range(20_000):
        if 2 * (st[rp.S_NB] + 1) > len(bk):
            bk, bv = rp._rehash(bk, bv, rp._pow2(4 * (st[rp.S_NB] + 1)))
        # a narrow price band forces collisions and deletions of the best level
        key = int(rng.integers(1000, 1400)) * tick
        qty = float(rng.integers(0, 4))  # 0 deletes
        rp._set_level(bk, bv, key, qty, True, st)
        if qty > 0:
            ref[key] = qty
        else:
            ref.pop(key, None)
        if step % 97 == 0:
            assert _contents(bk, bv) == ref
        assert st[rp.S_NB] == len(ref)
        assert st[rp.S_BEST_BID] == (max(ref) if ref else rp.NO_BID)
    assert _contents(bk, bv) == ref
    assert len(bk) >= 2 * len(ref)


def test_clear_upto_removes_from_the_touch_only():
    st = rp.new_state(0, 0)
    _, _, ak, av = rp.new_books(64)
    for k in (100, 105, 110, 120, 130):
        rp._set_level(ak, av, k, 1.0, False, st)
    rp._clear_upto(ak, av, 110, False, st)
    assert sorted(_contents(ak, av)) == [120, 130]
    assert st[rp.S_BEST_ASK] == 120 and st[rp.S_NA] == 2
