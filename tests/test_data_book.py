"""The order book's table storage (``mmbot.book``, the replay's book) against a plain dict under
random updates (collisions, backward-shift deletions, growth) and the best-level tracking against
max/min of the dict; the ring (the generator's sliding ladder) against a dict as it slides; the
crossed-feed repair rule; the published dict book (live and paper)."""

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


def test_dict_book_matches_brute_force_under_random_updates():
    """The published book (``DictBook``: live and paper) against a plain dict read by brute force:
    a quantity that is not > 0 deletes, clear empties a side, and the sorted prices behind the
    touch, the size from a limit and the top levels agree after every update."""
    rng = np.random.default_rng(11)
    b = book.DictBook()
    ref: dict[int, dict[float, float]] = {1: {}, -1: {}}
    for step in range(5_000):
        side = int(rng.choice([1, -1]))
        px = float(rng.integers(90, 130)) * 0.5
        if step % 997 == 996:
            b.clear(side)
            ref[side].clear()
        else:
            qty = float(rng.choice([0.0, -1.0, np.nan, 1.0, 2.5]))
            b.set_level(side, px, qty)
            if qty > 0:
                ref[side][px] = qty
            else:
                ref[side].pop(px, None)
        bids, asks = ref[1], ref[-1]
        assert b.bids == bids and b.asks == asks
        assert b.bid_px == sorted(bids) and b.ask_px == sorted(asks)
        assert b.best_bid() == max(bids) if bids else np.isnan(b.best_bid())
        assert b.best_ask() == min(asks) if asks else np.isnan(b.best_ask())
        lim = px
        assert b.qty_from(1, lim) == sum(q for p, q in bids.items() if p >= lim)
        assert b.qty_from(-1, lim) == sum(q for p, q in asks.items() if p <= lim)
        assert b.top_px(1, 3) == sorted(bids, reverse=True)[:3]
        assert b.top_px(-1, 3) == sorted(asks)[:3]
    b.clear()
    assert not b.bids and not b.asks and np.isnan(b.best_bid()) and np.isnan(b.mid_px())


def _ring_scan_ref(ref: dict[int, int], start: int, stop: int, sgn: int) -> int:
    p = start
    while (p >= stop) if sgn < 0 else (p <= stop):
        if ref.get(p, 0) > 0:
            return p
        p += sgn
    return book.RING_NONE


def test_ring_matches_a_dict_as_it_slides():
    """Levels set, read and pulled through the ring's slots while the live range drifts over many
    ring lengths (slots wrap), the owner trimming what falls out of range as the generator does;
    ``ring_scan`` against a brute-force walk of the dict, both sides."""
    rng = np.random.default_rng(11)
    q = book.new_ring()
    ref: dict[int, int] = {}
    half = book.RING_TICKS // 4
    center = 3 * book.RING_TICKS - 50
    for _ in range(4_000):
        center += int(rng.integers(-2, 9))  # drifts up ~12,000 ticks: ~3 ring lengths
        for p in [p for p in ref if abs(p - center) > half]:  # the owner's trim
            assert book.ring_pull(q, p) == ref.pop(p)
        p = center + int(rng.integers(-half, half + 1))
        if rng.random() < 0.3:
            assert book.ring_pull(q, p) == ref.pop(p, 0)
        else:
            lots = int(rng.integers(1, 9))
            q[book.ring_slot(p)] += lots
            ref[p] = ref.get(p, 0) + lots
        assert book.ring_lots(q, p) == ref.get(p, 0)
        start = center + int(rng.integers(-half, half + 1))
        for sgn, stop in ((-1, center - half), (1, center + half)):
            assert book.ring_scan(q, start, stop, sgn) == _ring_scan_ref(ref, start, stop, sgn)
    assert int(q.sum()) == sum(ref.values())
    assert center > 5 * book.RING_TICKS
    q[book.ring_slot(book.RING_NONE)] += 1
    assert book.ring_lots(q, book.RING_NONE) == 0
    assert (
        book.ring_deeper(5, 6, -1) and book.ring_deeper(6, 5, 1) and not book.ring_deeper(5, 5, 1)
    )


def test_has_better_is_true_exactly_when_the_bbo_rule_deletes_a_level():
    rng = np.random.default_rng(11)
    for trial in range(200):
        st = rp.book_state(rp.new_state(0, 0))
        bk, bv, ak, av = rp.new_books(256)
        for _ in range(int(rng.integers(0, 40))):
            is_bid = bool(rng.integers(0, 2))
            key = int(rng.integers(90, 130)) * 10
            keys, vals = (bk, bv) if is_bid else (ak, av)
            book.table_set(keys, vals, key, float(rng.integers(0, 3)), is_bid, st)
        for is_bid in (True, False):
            key = int(rng.integers(85, 135)) * 10
            keys, vals = (bk, bv) if is_bid else (ak, av)
            expect = book.has_better(st, key, is_bid)
            none = book.NO_BID if is_bid else book.NO_ASK
            s2, k2, v2 = st.copy(), keys.copy(), vals.copy()
            dropped = book.table_drop_better_step(k2, v2, key, is_bid, s2) != none
            side = [k for k in _contents(keys, vals) if (k > key if is_bid else k < key)]
            assert expect == dropped == bool(side), (trial, is_bid, key)
