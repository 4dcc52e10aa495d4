"""The soak's synthetic stream generates the next iteration's market in a background thread
(`SyntheticStream.take(..., ahead_ns)`): the windows and the carried book are byte-identical to
those generated on demand, a generator error reaches the reader, and every piece is generated
holding `FORK_GATE` (the replay pool forks only between pieces)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from mmbot.data.synthetic import WIDE_TICK_MARKET, load_calibration
from mmbot.soak import market as soak_market
from mmbot.soak.market import FORK_GATE, GEN_PIECE_NS, SYNTH_START_NS, SyntheticStream

SECOND_NS = 1_000_000_000


def _windows(ahead_ns: int, ends_s: list[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Consecutive takes up to each of ``ends_s`` (seconds from the start): their windows and the
    carried book's snapshot after each take."""
    calib = load_calibration(WIDE_TICK_MARKET)
    st = SyntheticStream(calib, 3, SYNTH_START_NS, float(calib["tick_px"]))
    wins, books = [], []
    for end_s in ends_s:
        end_ns = SYNTH_START_NS + end_s * SECOND_NS
        wins.extend(w.copy() for w in st.take(end_ns, ahead_ns))
        assert st.carry is not None
        books.append(st.carry.snapshot(end_ns))
    st.close()
    return wins, books


def test_generating_ahead_gives_the_same_windows_and_book() -> None:
    # windows not aligned with the generator's pieces (300 s), ahead shorter and longer than one
    ends_s = [200, 420, 600, 1000, 1030]
    want_w, want_b = _windows(0, ends_s)
    for ahead_s in (100, 450):
        got_w, got_b = _windows(ahead_s * SECOND_NS, ends_s)
        assert len(got_w) == len(want_w) and len(want_w) >= len(ends_s)
        for a, b in zip(got_w, want_w, strict=True):
            assert a.tobytes() == b.tobytes()
        for a, b in zip(got_b, want_b, strict=True):
            assert a.tobytes() == b.tobytes()


def _gen_checking_the_gate(pieces: int, fail_at: int | None = None) -> Iterator[np.ndarray]:
    ts = SYNTH_START_NS
    for i in range(pieces):
        if i == fail_at:
            raise RuntimeError("generator broke")
        # a piece generated in the background thread holds the gate (the main thread does not)
        locked = FORK_GATE.locked() and threading.current_thread() is not threading.main_thread()
        ev = np.zeros(3, soak_market.EVENT_DTYPE)
        ev["exch_ts"] = ev["local_ts"] = ts + np.arange(3) * (GEN_PIECE_NS // 3)
        ev["fval"] = float(locked)
        ts += GEN_PIECE_NS
        yield ev


def _stream(gen: Iterator[np.ndarray]) -> SyntheticStream:
    calib = load_calibration(WIDE_TICK_MARKET)
    st = SyntheticStream(calib, 1, SYNTH_START_NS, float(calib["tick_px"]))
    st._gen = gen  # the stream's generator replaced by one that reports the gate
    return st


def test_background_pieces_hold_the_fork_gate() -> None:
    st = _stream(_gen_checking_the_gate(8))
    first = np.concatenate(list(st.take(SYNTH_START_NS + 2 * GEN_PIECE_NS, 3 * GEN_PIECE_NS)))
    second = np.concatenate(list(st.take(SYNTH_START_NS + 6 * GEN_PIECE_NS)))
    assert first["fval"].tolist() == [0.0] * 6  # generated on demand
    assert second["fval"].tolist() == [1.0] * 9 + [0.0] * 3  # 3 pieces ahead, then on demand
    assert not FORK_GATE.locked()


def test_an_error_while_generating_ahead_reaches_the_reader() -> None:
    st = _stream(_gen_checking_the_gate(8, fail_at=3))
    list(st.take(SYNTH_START_NS + 2 * GEN_PIECE_NS, 3 * GEN_PIECE_NS))
    with pytest.raises(RuntimeError, match="generator broke"):
        list(st.take(SYNTH_START_NS + 5 * GEN_PIECE_NS))
    assert not FORK_GATE.locked()


def _slow_gen(made: list[int]) -> Iterator[np.ndarray]:
    ts = SYNTH_START_NS
    while True:
        time.sleep(0.01)
        ev = np.zeros(1, soak_market.EVENT_DTYPE)
        ev["exch_ts"] = ev["local_ts"] = ts
        made.append(ts)
        ts += GEN_PIECE_NS
        yield ev


def test_closing_the_market_stops_generating_ahead() -> None:
    """A soak that stops early (kill switch, error) closes its market: the background thread does
    not go on generating the iteration it will never run."""
    made: list[int] = []
    mkt = soak_market.resolve_market(f"synthetic:{WIDE_TICK_MARKET}")
    st = mkt.synthetic_at(1, SYNTH_START_NS)
    st._gen = _slow_gen(made)
    list(st.take(SYNTH_START_NS + GEN_PIECE_NS, 10_000 * GEN_PIECE_NS))
    ahead = st._ahead
    assert ahead is not None
    time.sleep(0.05)
    mkt.close()
    n = len(made)
    time.sleep(0.1)
    assert 1 < n < 100 and len(made) == n
    assert not ahead._thread.is_alive()


def test_generating_ahead_stops_at_the_pieces_it_may_hold() -> None:
    """The background thread holds at most AHEAD_MAX_PIECES untaken pieces (a long iteration's next
    market is not held whole while the tuner runs), hands them all out in order when taken, and a
    close while it waits on a full queue returns."""
    made: list[int] = []
    mkt = soak_market.resolve_market(f"synthetic:{WIDE_TICK_MARKET}")
    st = mkt.synthetic_at(1, SYNTH_START_NS)
    st._gen = _slow_gen(made)
    list(st.take(SYNTH_START_NS + GEN_PIECE_NS, 100 * GEN_PIECE_NS))
    time.sleep(0.05 * soak_market.AHEAD_MAX_PIECES)
    waiting = len(made)
    # the piece taken on demand, the queue's pieces, and the one made and waiting to be queued
    assert waiting <= 2 + soak_market.AHEAD_MAX_PIECES
    assert waiting > soak_market.AHEAD_MAX_PIECES
    later = np.concatenate(list(st.take(SYNTH_START_NS + 8 * GEN_PIECE_NS)))
    assert later["exch_ts"].tolist() == made[1:8]
    ahead = st._ahead
    mkt.close()
    assert ahead is None or not ahead._thread.is_alive()


def test_a_fork_waits_for_the_piece_in_progress_only() -> None:
    """The replay pool's fork goes before the background thread's next piece: it waits for one
    piece at most (a plain lock let the thread take the gate back at once, up to the whole
    AHEAD_MAX_PIECES), and no piece is generated while the fork holds the gate."""
    made: list[int] = []
    mkt = soak_market.resolve_market(f"synthetic:{WIDE_TICK_MARKET}")
    st = mkt.synthetic_at(1, SYNTH_START_NS)
    st._gen = _slow_gen(made)
    list(st.take(SYNTH_START_NS + GEN_PIECE_NS, 100 * GEN_PIECE_NS))
    time.sleep(0.025)  # the thread is generating ahead
    asked = len(made)
    with FORK_GATE.fork():
        got = len(made)
        time.sleep(0.05)
        assert len(made) == got
    assert got - asked <= 1
    assert got < soak_market.AHEAD_MAX_PIECES
    mkt.close()
    assert not FORK_GATE.locked()
