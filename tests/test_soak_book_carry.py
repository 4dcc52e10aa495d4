"""The book carried between soak chunks equals an independent replay of the same events and the
venue's exchange book (one set of depth rules: mmbot.book), and a later chunk of a soak
iteration starts with the book its predecessor left."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import TESTS_DATA
from mmbot.events import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EVENT_DTYPE,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
)
from mmbot.soak.book_carry import BookCarry

TICK = 0.5


NO_BID = -(1 << 62)
NO_ASK = 1 << 62


def reference_book(events: np.ndarray, tick: float) -> tuple[dict[int, float], dict[int, float]]:
    """Plain-Python replay with dicts keyed by tick index, hftbacktest's HashMapMarketDepth
    semantics (the venue's): a level at or through the opposite best moves that best past it and
    leaves the crossed levels where they are; the book is the levels from each best outwards."""
    bids: dict[int, float] = {}
    asks: dict[int, float] = {}
    bb, ba = NO_BID, NO_ASK

    def down(j: int) -> int:
        return max((k for k, q in bids.items() if k <= j and q > 0), default=NO_BID)

    def up(j: int) -> int:
        return min((k for k, q in asks.items() if k >= j and q > 0), default=NO_ASK)

    for e in events:
        ev = int(e["ev"])
        if ev & (EXCH_EVENT | LOCAL_EVENT) == LOCAL_EVENT:
            continue
        kind = ev & 0xFF
        side = 1 if ev & BUY_EVENT else (-1 if ev & SELL_EVENT else 0)
        ix = math.floor(float(e["px"]) / tick + 0.5)
        q = float(e["qty"])
        if kind in (DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, DEPTH_BBO_EVENT) and side > 0:
            if kind == DEPTH_BBO_EVENT and bb > ix:  # better bids go
                for j in [j for j in bids if ix < j <= bb]:
                    del bids[j]
                bb = down(ix)
            bids[ix] = q
            if q > 0 and ix > bb:
                bb = ix
                ba = up(bb + 1) if bb >= ba else ba
            elif q <= 0 and ix == bb:
                bb = down(ix - 1)
        elif kind in (DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, DEPTH_BBO_EVENT) and side < 0:
            if kind == DEPTH_BBO_EVENT and ba < ix:  # better asks go
                for j in [j for j in asks if ba <= j < ix]:
                    del asks[j]
                ba = up(ix)
            asks[ix] = q
            if q > 0 and ix < ba:
                ba = ix
                bb = down(ba - 1) if bb >= ba else bb
            elif q <= 0 and ix == ba:
                ba = up(ix + 1)
        elif kind == DEPTH_CLEAR_EVENT:
            whole = side == 0 or e["px"] <= 0
            if side >= 0:  # from the best bid down to px
                for j in [j for j in bids if j <= bb and (whole or j >= ix)]:
                    del bids[j]
                bb = NO_BID if whole else down(ix - 1)
            if side <= 0:
                for j in [j for j in asks if j >= ba and (whole or j <= ix)]:
                    del asks[j]
                ba = NO_ASK if whole else up(ix + 1)
    return (
        {k: q for k, q in bids.items() if q > 0 and k <= bb},
        {k: q for k, q in asks.items() if q > 0 and k >= ba},
    )


def random_feed(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(n, EVENT_DTYPE)
    mid = 2000.0
    kinds = rng.choice(
        [DEPTH_EVENT, DEPTH_EVENT, DEPTH_EVENT, DEPTH_BBO_EVENT, DEPTH_CLEAR_EVENT],
        size=n,
        p=[0.3, 0.3, 0.25, 0.13, 0.02],
    )
    for i in range(n):
        mid += rng.normal(0, 0.3)
        side = 1 if rng.random() < 0.5 else -1
        off = int(rng.integers(0, 12)) * TICK
        px = round((mid - side * off) / TICK) * TICK
        qty = 0.0 if rng.random() < 0.2 else float(rng.integers(1, 50))
        if kinds[i] == DEPTH_CLEAR_EVENT:
            px = px if rng.random() < 0.5 else 0.0
            qty = 0.0
        flags = EXCH_EVENT | (LOCAL_EVENT if rng.random() < 0.9 else 0)
        out[i] = (
            kinds[i] | flags | (BUY_EVENT if side > 0 else SELL_EVENT),
            i,
            i + 5,
            px,
            qty,
            0,
            0,
            0.0,
        )
    return out


def test_carried_book_equals_an_independent_replay() -> None:
    ev = random_feed(4000, 3)
    carry = BookCarry(TICK, max_levels=10_000)
    for lo, hi in ((0, 1000), (1000, 2500), (2500, 4000)):
        carry.apply(ev[lo:hi])  # chunked application = one pass over the whole stream
        bids, asks = reference_book(ev[:hi], TICK)
        snap = carry.snapshot(123)
        got_b = {
            round(p / TICK): q
            for p, q, e in zip(snap["px"], snap["qty"], snap["ev"], strict=True)
            if int(e) & BUY_EVENT
        }
        got_a = {
            round(p / TICK): q
            for p, q, e in zip(snap["px"], snap["qty"], snap["ev"], strict=True)
            if int(e) & SELL_EVENT
        }
        assert got_b == bids and got_a == asks
        assert (snap["exch_ts"] == 123).all() and (snap["local_ts"] == 123).all()
        assert ((snap["ev"] & 0xFF) == DEPTH_SNAPSHOT_EVENT).all()
        if bids and asks:
            assert max(bids) < min(asks)  # never crossed


def test_snapshot_keeps_the_levels_nearest_the_touch() -> None:
    ev = np.zeros(6, EVENT_DTYPE)
    for i, (side, px) in enumerate(
        [(1, 99.0), (1, 98.0), (1, 97.0), (-1, 101.0), (-1, 102.0), (-1, 103.0)]
    ):
        ev[i] = (
            DEPTH_EVENT | EXCH_EVENT | (BUY_EVENT if side > 0 else SELL_EVENT),
            i,
            i,
            px,
            1.0,
            0,
            0,
            0.0,
        )
    carry = BookCarry(1.0, max_levels=2)
    carry.apply(ev)
    assert sorted(carry.snapshot(0)["px"].tolist()) == [98.0, 99.0, 101.0, 102.0]


def test_second_chunk_of_an_iteration_starts_from_the_carried_book() -> None:
    from mmbot.config import load_profile
    from mmbot.soak.runner import CHUNK_NS, SYNTH_START_NS, resolve_market, run_iteration

    mkt = resolve_market("synthetic")
    prof = load_profile("S1")
    # two chunks: 30 min + 2 min
    res = run_iteration(
        mkt, prof, dict(prof.runtime), 3, 1, SYNTH_START_NS, CHUNK_NS + 120_000_000_000
    )
    assert len(res) == 2
    m0, m1 = res[0].marks, res[1].marks
    assert np.isfinite(m1["mid_px"][0])
    # the second run's first mid is the first run's last mid (the book at the boundary);
    # without the carried book it starts from whatever levels change first (several ticks off)
    assert m1["mid_px"][0] == pytest.approx(m0["mid_px"][-1], rel=1e-12)
    assert m1["exch_ts"][0] <= SYNTH_START_NS + CHUNK_NS + 1_000_000_000


def test_run_chunks_put_the_carried_book_in_front_of_each_window() -> None:
    """`Market.run_chunks` builds each window with its book in one copy; it must equal `chunks`'
    window behind `BookCarry.prefix` of a book replayed over the market before it."""
    from mmbot.backtest import guess_tick_lot
    from mmbot.soak.runner import SYNTH_START_NS, resolve_market

    dur = 4 * 60 * 1_000_000_000
    later = SYNTH_START_NS + dur
    got = list(resolve_market("synthetic").run_chunks(5, later, dur))
    ref = resolve_market("synthetic")
    first = list(ref.chunks(5, 1, SYNTH_START_NS, dur))
    carry = BookCarry(ref.tick_px or guess_tick_lot(first[0])[0])
    for win in first:
        carry.apply(win)
    wins = list(ref.chunks(5, 2, later, dur))
    assert len(got) == len(wins) >= 1
    for (run_events, n_book), win in zip(got, wins, strict=True):
        want = carry.prefix(win)
        assert n_book == len(want) - len(win) > 0
        assert run_events.tobytes() == want.tobytes()
        carry.apply(win)


@pytest.mark.parametrize(
    "market",
    [
        "random_feed",
        "usdm_sample",
        "synthetic",
    ],
)
def test_carried_book_equals_the_venues_exchange_book(market: str) -> None:
    """BookCarry applies the venue's depth rules (mmbot.book: BBO drops better levels, a
    crossing level moves the opposite best, CLEAR): after the same events its book must equal the one
    mmbot.sim matches against (best prices and 40 levels a side), at 50 times through the feed,
    crossed feeds included (random_feed: BBO rows, crossing levels and CLEARs, often)."""
    from mmbot import sim
    from mmbot.data import load_events
    from mmbot.data.synthetic import generate
    from mmbot.soak.runner import SYNTH_START_NS, resolve_market

    if market == "random_feed":  # every rule, often: BBO rows, crossing levels, CLEARs
        ev = random_feed(4000, 3)
        ev["exch_ts"] += 1_000_000  # the venue's clock starts after zero
        ev["local_ts"] += 1_000_000
        tick, lot = TICK, 1.0
    elif market == "usdm_sample":
        ev, st = load_events(TESTS_DATA / "binance_usdm_btcusdt_sample.gz")
        tick, lot = st.tick_px_guess, st.lot_qty_guess
    else:
        mkt = resolve_market("synthetic")
        ev = generate(mkt.calib, 3, SYNTH_START_NS, 120 * 10**9)
        tick, lot = mkt.tick_px, mkt.lot_qty
    cfg = sim.VenueConfig(
        tick_px=tick,
        lot_qty=lot,
        maker_fee_rate=0.0,
        taker_fee_rate=0.0,
        entry_latency_ns=1_000_000,
        response_latency_ns=1_000_000,
        queue_model="power2",
    )
    v = sim.make_venue(ev, cfg)
    carry = BookCarry(tick)
    done = 0
    # the venue's exchange book at time T holds the events with exch_ts <= T
    for t_ns in np.quantile(ev["exch_ts"], np.linspace(0.02, 1.0, 50)).astype(np.int64):
        sim.goto(v, int(t_ns))
        upto = int(np.searchsorted(ev["exch_ts"], t_ns, side="right"))
        carry.apply(ev[done:upto])
        done = upto
        snap = carry.snapshot(0)
        carried = {
            (1 if int(r["ev"]) & BUY_EVENT else -1, round(float(r["px"]) / tick)): float(r["qty"])
            for r in snap
        }
        # an empty side (a whole-side CLEAR in random_feed) is NaN in the venue, None carried
        bests = ((1, sim.exch_best_bid_px(v)), (-1, sim.exch_best_ask_px(v)))
        if market != "random_feed":
            assert all(math.isfinite(px) for _, px in bests)
        best_carried = (
            max((t for sd, t in carried if sd == 1), default=None),
            min((t for sd, t in carried if sd == -1), default=None),
        )
        best_venue = tuple(round(px / tick) if math.isfinite(px) else None for _, px in bests)
        assert best_carried == best_venue, (market, int(t_ns))
        for side, best_px in bests:
            if not math.isfinite(best_px):
                continue
            best = round(best_px / tick)
            for k in range(0, 40):
                t = best - side * k
                assert sim.exch_qty_at_px(v, side, t * tick) == pytest.approx(
                    carried.get((side, t), 0.0), abs=1e-12
                ), (market, int(t_ns), side, k)
