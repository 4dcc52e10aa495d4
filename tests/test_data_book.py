"""The order book's table storage (``mmbot.book``, the replay's book) against a plain dict under
random updates (collisions, backward-shift deletions, growth) and the best-level tracking against
max/min of the dict; the crossed-feed repair rule."""

from __future__ import annotations

import numpy as np

from mmbot import book
from mmbot.data import replay as rp


def _contents(keys: np.ndarray, vals: np.ndarray) -> dict[int, float]:
    m = keys != book.EMPTY_KEY
    return dict(zip(keys[m].tolist(), vals[m].tolist(), strict=True))


def test_hash_book_matches_a_dict_under_random_updates():
    rng = np.random.default_rng(7)
    st = rp.book_state(rp.new_state(0, 0))
    bk, bv, _, _ = rp.new_books(16)
    ref: dict[int, float] = {}
    tick = 10
    for step in range(20_000):
        if 2 * (st[book.B_NB] + 1) > len(bk):
            bk, bv = book.table_rehash(bk, bv, book.table_capacity(4 * (st[book.B_NB] + 1)))
        # a narrow price band forces collisions and deletions of the best level
        key = int(rng.integers(1000, 1400)) * tick
        qty = float(rng.integers(0, 4))  # 0 deletes
        book.table_set(bk, bv, key, qty, True, st)
        if qty > 0:
            ref[key] = qty
        else:
            ref.pop(key, None)
        if step % 97 == 0:
            assert _contents(bk, bv) == ref
        assert st[book.B_NB] == len(ref)
        assert st[book.B_BEST_BID] == (max(ref) if ref else book.NO_BID)
    assert _contents(bk, bv) == ref
    assert len(bk) >= 2 * len(ref)


def test_clear_upto_removes_from_the_touch_only():
    st = rp.book_state(rp.new_state(0, 0))
    _, _, ak, av = rp.new_books(64)
    for k in (100, 105, 110, 120, 130):
        book.table_set(ak, av, k, 1.0, False, st)
    book.table_clear_upto(ak, av, 110, False, st)
    assert sorted(_contents(ak, av)) == [120, 130]
    assert st[book.B_BEST_ASK] == 120 and st[book.B_NA] == 2


def test_stale_sides_keeps_the_level_the_message_set():
    """The crossed-feed repair rule: the touch the message set is fresh, the other one goes;
    both go when the message set neither or both."""
    # the message set the bid at 105 through an ask at 100: the ask is stale
    assert book.stale_sides(105, 100, 105, book.NO_ASK) == (False, True)
    # the message set the ask at 100 under a bid at 105: the bid is stale
    assert book.stale_sides(105, 100, book.NO_BID, 100) == (True, False)
    # neither touch was set by the message (a stale crossed book): both go
    assert book.stale_sides(105, 100, book.NO_BID, book.NO_ASK) == (True, True)
    assert book.stale_sides(105, 100, 105, 100) == (True, True)
