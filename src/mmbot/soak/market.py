"""Where a soak's market comes from: the synthetic stream or a capture, cut into chunks.

Owns the market sources of the soak (DESIGN.md "Soak and auto-tune"): the synthetic market is one
continuous stream over the whole soak from a seed derived from --seed, generated lazily and cut at
the iteration boundaries, so iteration k continues the market where iteration k-1 left it, as on a
real venue; a capture is replayed in consecutive market-time windows. Both are handed out in
chunks of at most `CHUNK_NS` (bounded event memory), with the order book as it stands at a chunk's
start (`mmbot.soak.book_carry`). Also the soak's clock constants and `derive_seed`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from mmbot.errors import UserError
from mmbot.events import EVENT_DTYPE
from mmbot.soak.book_carry import BookCarry

NS_PER_HOUR: Final[int] = 3_600_000_000_000
# Length the synthetic stream is opened for (it is generated lazily, only as far as it is read),
# and the pieces it is generated in (at most this much market is generated past what is read).
STREAM_NS: Final[int] = 100_000 * NS_PER_HOUR
GEN_PIECE_NS: Final[int] = 300_000_000_000
# pieces generated ahead and not yet taken, at most (an hour of market): the background thread
# waits beyond it, so a long iteration's next market is not held whole while the tuner runs
AHEAD_MAX_PIECES: Final[int] = 12
# Market time generated and simulated per backtest call: bounds the event memory of long iterations.
CHUNK_NS: Final[int] = NS_PER_HOUR // 2
# Synthetic market clock start (2024-01-01T00:00:00Z): fixed so artifacts do not depend on the date.
SYNTH_START_NS: Final[int] = 1_704_067_200_000_000_000


class ForkGate:
    """Held while a background thread generates a market piece (`_Ahead`) or while a process
    forks, never both: no child starts with a copy of a generator half-way through a piece (or
    holding a lock, as the JIT compiler's lock) that no thread of the child would ever finish.

    Fair to the forker: a fork waits for the piece in progress only, not for every piece the
    thread would generate after it (a plain lock let the thread take it back at once, and the
    soak's tuner waited for the whole next iteration's market with a core idle)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held = False
        self._forks_waiting = 0

    def locked(self) -> bool:
        """Whether a piece or a fork holds the gate."""
        return self._held

    @contextmanager
    def piece(self) -> Iterator[None]:
        """Held while one piece is generated; waits while a fork waits."""
        with self._cond:
            self._cond.wait_for(lambda: not self._held and not self._forks_waiting)
            self._held = True
        try:
            yield
        finally:
            self._release()

    @contextmanager
    def fork(self) -> Iterator[None]:
        """Held while a process forks: waits for the piece in progress, then goes first."""
        with self._cond:
            self._forks_waiting += 1
            self._cond.wait_for(lambda: not self._held)
            self._forks_waiting -= 1
            self._held = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()


FORK_GATE: Final[ForkGate] = ForkGate()


def derive_seed(seed: int, *path: int) -> int:
    """A 63-bit seed for (seed, iteration, chunk, ...), independent across paths."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, *path])
    return int(ss.generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


class SyntheticStream:
    """One continuous synthetic market (seed ``derive_seed(seed, 1)``, from ``origin_ns``), handed
    out in consecutive time windows (`take`), with the book as it stands at ``pos_ns``.

    Before, every soak iteration was a fresh stream from the initial price and book: the tuner
    then only ever saw the first 30 min of a market, on which the knobs act differently than on
    a market that has run for a while (the fresh market the tuner is judged on), e.g. the grid's
    best knob set gains ~0.03 bps over the start on first half-hours and ~0.1 on later ones."""

    def __init__(self, calib: dict, seed: int, origin_ns: int, tick_px: float | None) -> None:
        from mmbot.data.synthetic import generate_chunks

        self.seed = int(seed)
        self.pos_ns = int(origin_ns)
        self._gen = generate_chunks(
            calib, derive_seed(seed, 1), int(origin_ns), STREAM_NS, chunk_ns=GEN_PIECE_NS
        )
        self._gen_end_ns = int(origin_ns)  # end of the market time generated so far
        self._pending: np.ndarray | None = None  # generated, not handed out yet
        self._ahead: _Ahead | None = None  # pieces being generated in the background
        self.tick_px = tick_px if tick_px is not None and tick_px > 0 else None
        self.carry: BookCarry | None = BookCarry(float(tick_px)) if self.tick_px else None

    def take(self, end_ns: int, ahead_ns: int = 0) -> Iterator[np.ndarray]:
        """The events with exch_ts in [pos_ns, end_ns), in windows of CHUNK_NS from ``pos_ns``
        (as a capture's); the book is advanced over each window before it is handed out.

        ``ahead_ns`` > 0: once the last window is cut, the market up to ``end_ns + ahead_ns`` is
        generated in a background thread (`_Ahead`) while the caller works on the window, for the
        next ``take``; the events are the same, they are only made earlier."""
        for window, _ in self._windows(end_ns, ahead_ns, book_front=False):
            yield window

    def take_with_book(self, end_ns: int, ahead_ns: int = 0) -> Iterator[tuple[np.ndarray, int]]:
        """`take`'s windows, each with the book as the stream had it before the window in front
        (`BookCarry.prefix`: a DEPTH_SNAPSHOT stamped at the window's first event; none before
        the stream's first window, which has its own): (events, rows of book in front). Built
        in the one copy that cuts the window (a window and its prefix copied apart cost ~0.1-0.7 s
        per 30 min of market in page faults)."""
        yield from self._windows(end_ns, ahead_ns, book_front=True)

    def _windows(
        self, end_ns: int, ahead_ns: int, book_front: bool
    ) -> Iterator[tuple[np.ndarray, int]]:
        t = self.pos_ns
        while t < end_ns:
            t_next = min(int(end_ns), t + CHUNK_NS)
            parts: list[np.ndarray] = []
            while True:
                if self._pending is None:
                    if self._gen_end_ns >= t_next:
                        break
                    piece = self._next_piece()
                    if piece is None:
                        break
                    self._pending = piece
                    self._gen_end_ns += GEN_PIECE_NS
                ev = self._pending
                cut = int(np.searchsorted(ev["exch_ts"], t_next, side="left"))
                if cut:
                    parts.append(ev[:cut])
                self._pending = ev[cut:] if cut < len(ev) else None
                if self._pending is not None:  # what is left starts at or after t_next
                    break
            n_book = 0
            if parts and book_front and self.carry is not None:
                window, n_book = self.carry.prefix_parts(parts)
            else:
                window = (
                    parts[0]
                    if len(parts) == 1
                    else np.concatenate(parts)
                    if parts
                    else np.zeros(0, EVENT_DTYPE)
                )
            del parts
            self.pos_ns = t_next
            t = t_next
            if t >= end_ns and ahead_ns > 0:
                self._start_ahead(int(end_ns) + int(ahead_ns))
            if len(window):
                if self.carry is None:
                    from mmbot.backtest import guess_tick_lot

                    self.carry = BookCarry(float(guess_tick_lot(window)[0]))
                self.carry.apply(window[n_book:])
                yield window, n_book
            del window

    def close(self) -> None:
        """Stop generating ahead (the piece in progress is finished first); the stream is not
        read after this."""
        if self._ahead is not None:
            self._ahead.cancel()
            self._ahead = None

    def _next_piece(self) -> np.ndarray | None:
        """The stream's next generated piece (None: the stream ended): the background thread's
        first, in order, else generated here."""
        if self._ahead is not None:
            piece = self._ahead.pop()
            if piece is not None:
                return piece
            self._ahead = None
        return next(self._gen, None)

    def _start_ahead(self, until_ns: int) -> None:
        """Generate the pieces up to ``until_ns`` in a background thread (after those already
        generated or being generated)."""
        if self._ahead is not None and self._ahead.left > 0:
            return  # one at a time: `_next_piece` drains it first
        pieces = -(-(until_ns - self._gen_end_ns) // GEN_PIECE_NS)
        if pieces > 0:
            self._ahead = _Ahead(self._gen, pieces)


class _Ahead:
    """The next ``pieces`` pieces of a market generator, made in a background thread and handed
    out in order (`pop`). The generator's loop (`data.synthetic_core._advance`) runs without the
    GIL, so the piece is made on the second core while the soak runs and audits the window before
    it (single-threaded work). Each piece is generated holding `FORK_GATE`."""

    def __init__(self, gen: Iterator[np.ndarray], pieces: int) -> None:
        self._gen = gen
        self._left = int(pieces)
        self._out: queue.Queue[np.ndarray | BaseException | None] = queue.Queue(AHEAD_MAX_PIECES)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(int(pieces),), name="mmbot-market-ahead", daemon=True
        )
        self._thread.start()

    def cancel(self) -> None:
        """No further piece: waits for the one in progress (at most one piece's time)."""
        self._stop.set()
        self._thread.join()
        self._left = 0

    def _run(self, pieces: int) -> None:
        try:
            for _ in range(pieces):
                if self._stop.is_set():
                    return
                with FORK_GATE.piece():
                    piece = next(self._gen, None)
                if not self._put(piece) or piece is None:
                    return
        except BaseException as exc:  # handed to the reader, raised there
            self._put(exc)

    def _put(self, item: np.ndarray | BaseException | None) -> bool:
        """Queue ``item``, waiting while AHEAD_MAX_PIECES wait untaken; False once cancelled."""
        while not self._stop.is_set():
            try:
                self._out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    @property
    def left(self) -> int:
        """Pieces not handed out yet."""
        return self._left

    def pop(self) -> np.ndarray | None:
        """The next piece (waits for it); None once all were handed out or the stream ended.
        An error of the generator is raised here."""
        if self._left <= 0:
            return None
        item = self._out.get()
        self._left -= 1
        if item is None or isinstance(item, BaseException):
            self._left = 0
        if isinstance(item, BaseException):
            raise item
        return item


@dataclass
class Market:
    """Where iterations get their events from."""

    kind: str  # "synthetic" | "capture"
    label: str  # for the runtime block and reports
    calib: dict | None = None
    events: np.ndarray | None = None  # capture only
    symbol: str = ""
    tick_px: float | None = None
    lot_qty: float | None = None
    notes: list[str] = field(default_factory=list)
    data_format: str = ""  # a capture's reader format: its contract (spot, inverse) is detected
    _stream: SyntheticStream | None = field(default=None, repr=False, compare=False)
    # the synthetic market's funding accrual (data.synthetic_funding), set by run_soak
    funding: Any = field(default=None, repr=False, compare=False)

    def synthetic_at(self, seed: int, start_ns: int) -> SyntheticStream:
        """The soak's synthetic stream for ``seed``, positioned at ``start_ns``: the one already
        open when it has not passed ``start_ns`` (fast-forwarded over any gap), else a new one
        (from SYNTH_START_NS, or ``start_ns`` if earlier), so the events of a window depend only
        on (seed, window), never on what was read before."""
        assert self.calib is not None
        st = self._stream
        if st is None or st.seed != int(seed) or start_ns < st.pos_ns:
            if st is not None:
                st.close()
            st = self._stream = SyntheticStream(
                self.calib, seed, min(SYNTH_START_NS, int(start_ns)), self.tick_px
            )
        if start_ns > st.pos_ns:
            for _ in st.take(start_ns):  # events dropped, the book kept
                pass
        return st

    def close(self) -> None:
        """Stop the synthetic stream's background generation (a soak's end, or its stop)."""
        if self._stream is not None:
            self._stream.close()

    def book_carry(self, start_ns: int, sample: np.ndarray | None = None) -> BookCarry | None:
        """The book a capture's chunks carry from one to the next (`run_chunks`): as the capture
        left it at ``start_ns`` (replayed from its start). None without a tick (none known, no
        ``sample`` to guess it from)."""
        tick = self.tick_px
        if tick is None or not tick > 0:
            if sample is None:
                return None
            from mmbot.backtest import guess_tick_lot

            tick = guess_tick_lot(sample)[0]
        carry = BookCarry(float(tick))
        if self.kind == "capture" and self.events is not None:
            lo = int(np.searchsorted(self.events["exch_ts"], start_ns, side="left"))
            carry.apply(self.events[:lo])
        return carry

    def span_ns(self) -> int | None:
        if self.events is None or len(self.events) == 0:
            return None
        return int(self.events["exch_ts"][-1] - self.events["exch_ts"][0])

    def run_chunks(
        self, seed: int, start_ns: int, duration_ns: int, ahead_ns: int = 0
    ) -> Iterator[tuple[np.ndarray, int]]:
        """`chunks`' windows with the book carried from before each in front, as a run of
        ``run_iteration`` starts them: (events, rows of book in front; 0 when nothing is carried:
        a capture's or a stream's first window has its own snapshot). A capture window's book is
        the capture's as it stood at the window (replayed from its start); a synthetic one's, the
        stream's. The next window's book is advanced over this one when it is asked for."""
        if self.kind == "synthetic":
            st = self.synthetic_at(seed, start_ns)
            yield from st.take_with_book(start_ns + duration_ns, ahead_ns)
            return
        carry = self.book_carry(start_ns)
        for events in self.chunks(seed, 0, start_ns, duration_ns):
            if carry is None:
                carry = self.book_carry(start_ns, sample=events)
            run_events = carry.prefix(events) if carry is not None else events
            yield run_events, len(run_events) - len(events)
            if carry is not None:
                carry.apply(events)

    def chunks(
        self, seed: int, iteration: int, start_ns: int, duration_ns: int, ahead_ns: int = 0
    ) -> Iterator[np.ndarray]:
        """Event arrays covering [start_ns, start_ns + duration_ns) of market time; a synthetic
        market then generates ``ahead_ns`` more in the background (`SyntheticStream.take`)."""
        if self.kind == "synthetic":
            # one continuous market over the soak, cut at the iteration boundaries
            end_ns = start_ns + duration_ns
            yield from self.synthetic_at(seed, start_ns).take(end_ns, ahead_ns)
            return
        assert self.events is not None
        # the same CHUNK_NS windows as the synthetic market, so both run alike
        ts = self.events["exch_ts"]
        end_ns = start_ns + duration_ns
        t = start_ns
        while t < end_ns:
            t_next = min(end_ns, t + CHUNK_NS)
            lo, hi = np.searchsorted(ts, [t, t_next], side="left")
            yield self.events[lo:hi]
            t = t_next


def _calib_meta(calib: Mapping[str, Any]) -> tuple[str, float | None, float | None]:
    def num(*keys: str) -> float | None:
        for k in keys:
            v = calib.get(k)
            if isinstance(v, int | float) and not isinstance(v, bool):
                return float(v)
        return None

    sym = str(calib.get("symbol") or calib.get("name") or "SYNTH")
    return sym, num("tick_px", "tick_size"), num("lot_qty", "lot_size")


def _synthetic_market(calib: dict, label: str) -> Market:
    """A calibration's market; a wide-tick one says so in the soak's notes (its figures are not
    the captured tick's)."""
    sym, tick, lot = _calib_meta(calib)
    notes = []
    if calib.get("variant") == "wide_tick":
        notes.append(
            f"WIDE-TICK market: tick {calib.get('tick_px')} (the capture's dynamics refitted on a "
            "coarser tick; not the captured market: see docs/data.md)"
        )
    return Market(
        "synthetic", label, calib=calib, symbol=sym, tick_px=tick, lot_qty=lot, notes=notes
    )


def resolve_market(market: str) -> Market:
    """``synthetic`` (the default calibration), ``synthetic:NAME``, a calibration JSON, or a capture."""
    m = market.strip()
    if m == "synthetic" or m.startswith("synthetic:"):
        from mmbot.data.synthetic import load_calibration

        name = m.split(":", 1)[1] if ":" in m else "default"
        return _synthetic_market(load_calibration(name), f"synthetic:{name}")
    p = Path(m)
    if not p.exists():
        raise UserError(
            f"--market {market!r}: no such file (use 'synthetic', a calibration JSON or a capture path)"
        )
    if p.is_dir():
        raise UserError(
            f"--market {market!r} is a directory, expected a calibration JSON or a capture file"
        )
    if p.suffix.lower() == ".json":
        from mmbot.data.synthetic import load_calibration

        return _synthetic_market(load_calibration(p), f"calibration:{p}")
    from mmbot.data import load_events

    events, stats = load_events(p)
    if len(events) == 0:
        raise UserError(f"--market {market!r}: the capture holds no events")
    return Market(
        "capture",
        f"capture:{p}",
        events=events,
        symbol=str(getattr(stats, "symbol", "") or ""),
        tick_px=getattr(stats, "tick_px_guess", None),
        lot_qty=getattr(stats, "lot_qty_guess", None),
        data_format=str(getattr(stats, "format", "") or ""),
    )
