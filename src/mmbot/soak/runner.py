"""The soak runner behind `mmbot soak`: iterations of market time, per-iteration audit, auto-tune.

Owns the orchestration only (DESIGN.md "Soak and auto-tune"): a market source yields each
iteration's events in chunks of at most 30 min (the synthetic market: one continuous stream over
the whole soak from a seed derived from --seed, cut at the iteration boundaries, so iteration k
continues the market where iteration k-1 left it, as on a real venue; a capture: consecutive time
windows of the replay); each chunk runs through
`mmbot.backtest.run` with the current knobs, starting from the order book the previous chunk left
(`mmbot.soak.book_carry`) and from the position and cash it ended with
(`mmbot.soak.account_carry`: the quoter sees the carried position from its first wake; only
the soak's very end position is closed at taker cost, `mmbot.soak.closeout`); the iteration's
EDGE_REPORT (`mmbot.audit.build_edge_report`) feeds the
tuner. With --auto-tune the last chunk of each iteration (carried book in front) is kept (every
iteration's, up to the latest `autotune.MAX_KEPT_SEGMENTS`), and `Replayer` replays them with
candidate knobs, so the tuner validates every change on all the market seen so far
(`mmbot.soak.autotune.counterfactual_tune`; keep-best: `select_best_common`, on every kept
segment); batches of replays run in forked worker processes (`replay_workers`,
``$MM_SOAK_REPLAY_WORKERS``). At the end the
final EDGE_REPORT, KPI gate and reports are written. Only records (fills/actions/marks) are kept
across chunks, never events (except the kept segments), so memory is bounded by the strategy's
activity, not by market hours.

All artifacts are staged in a temporary directory and moved into place when the soak finished
(`mmbot.soak.artifacts.Stage`). Bad input raises `UserError` before anything is written.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from mmbot.errors import UserError
from mmbot.events import EVENT_DTYPE
from mmbot.knobs import KNOB_NAMES, knob_order, quoter_param, split_knobs, tunable_quoter_knobs
from mmbot.soak import autotune
from mmbot.soak import decision as soak_decision
from mmbot.soak import stability as soak_stability
from mmbot.soak import summary as soak_summary
from mmbot.soak.account_carry import AccountCarry
from mmbot.soak.artifacts import SoakPaths, Stage, jsonl_line
from mmbot.soak.book_carry import BookCarry

NS_PER_HOUR: Final[int] = 3_600_000_000_000
# Length the synthetic stream is opened for (it is generated lazily, only as far as it is read),
# and the pieces it is generated in (at most this much market is generated past what is read).
STREAM_NS: Final[int] = 100_000 * NS_PER_HOUR
GEN_PIECE_NS: Final[int] = 300_000_000_000
# Market time generated and simulated per backtest call: bounds the event memory of long iterations.
CHUNK_NS: Final[int] = NS_PER_HOUR // 2
# Synthetic market clock start (2024-01-01T00:00:00Z): fixed so artifacts do not depend on the date.
SYNTH_START_NS: Final[int] = 1_704_067_200_000_000_000

# EDGE_REPORT totals copied into metrics.jsonl / soak_metrics.json per iteration.
METRIC_KEYS: Final[tuple[str, ...]] = (
    "net_bps",
    "gross_bps",
    "fees_eff_bps",
    "slippage_bps",
    "inventory_bps",
    "adverse_bps",
    "adverse_bps_p95",
    "slippage_bps_p95",
    "order_age_p95_ms",
    "ws_lag_p95_ms",
    "cancel_ratio",
    "maker_share_pct",
    "fills",
    "turnover",
    "pnl",
    "orders_placed",
    "intended_actions",
    "blocked_actions",
)


def derive_seed(seed: int, *path: int) -> int:
    """A 63-bit seed for (seed, iteration, chunk, ...), independent across paths."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, *path])
    return int(ss.generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


# ---------------------------------------------------------------------------------------------
# market sources
# ---------------------------------------------------------------------------------------------
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
        self.tick_px = tick_px if tick_px is not None and tick_px > 0 else None
        self.carry: BookCarry | None = BookCarry(float(tick_px)) if self.tick_px else None

    def take(self, end_ns: int) -> Iterator[np.ndarray]:
        """The events with exch_ts in [pos_ns, end_ns), in windows of CHUNK_NS from ``pos_ns``
        (as a capture's); the book is advanced over each window before it is handed out."""
        t = self.pos_ns
        while t < end_ns:
            t_next = min(int(end_ns), t + CHUNK_NS)
            parts: list[np.ndarray] = []
            while True:
                if self._pending is None:
                    if self._gen_end_ns >= t_next:
                        break
                    try:
                        self._pending = next(self._gen)
                    except StopIteration:
                        break
                    self._gen_end_ns += GEN_PIECE_NS
                ev = self._pending
                cut = int(np.searchsorted(ev["exch_ts"], t_next, side="left"))
                if cut:
                    parts.append(ev[:cut])
                self._pending = ev[cut:] if cut < len(ev) else None
                if self._pending is not None:  # what is left starts at or after t_next
                    break
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
            if len(window):
                if self.carry is None:
                    from mmbot.backtest import guess_tick_lot

                    self.carry = BookCarry(float(guess_tick_lot(window)[0]))
                self.carry.apply(window)
                yield window
            del window


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
            st = self._stream = SyntheticStream(
                self.calib, seed, min(SYNTH_START_NS, int(start_ns)), self.tick_px
            )
        if start_ns > st.pos_ns:
            for _ in st.take(start_ns):  # events dropped, the book kept
                pass
        return st

    def book_carry(
        self, start_ns: int, sample: np.ndarray | None = None, seed: int | None = None
    ) -> BookCarry | None:
        """The book carried between the chunks of one run of ``run_iteration``. A capture window
        starts from the book as the capture left it at ``start_ns`` (replayed from its start);
        a synthetic window from the book its stream has at ``start_ns`` (a copy: empty at the
        stream's start, whose first chunk has its own snapshot)."""
        if self.kind == "synthetic" and seed is not None:
            st = self.synthetic_at(seed, start_ns)
            if st.carry is not None:
                return copy.deepcopy(st.carry)
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

    def chunks(
        self, seed: int, iteration: int, start_ns: int, duration_ns: int
    ) -> Iterator[np.ndarray]:
        """Event arrays covering [start_ns, start_ns + duration_ns) of market time."""
        if self.kind == "synthetic":
            # one continuous market over the soak, cut at the iteration boundaries
            yield from self.synthetic_at(seed, start_ns).take(start_ns + duration_ns)
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


def resolve_market(market: str) -> Market:
    """``synthetic`` (the default calibration), ``synthetic:NAME``, a calibration JSON, or a capture."""
    m = market.strip()
    if m == "synthetic" or m.startswith("synthetic:"):
        from mmbot.data.synthetic import load_calibration

        name = m.split(":", 1)[1] if ":" in m else "default"
        calib = load_calibration(name)
        sym, tick, lot = _calib_meta(calib)
        return Market(
            "synthetic", f"synthetic:{name}", calib=calib, symbol=sym, tick_px=tick, lot_qty=lot
        )
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

        calib = load_calibration(p)
        sym, tick, lot = _calib_meta(calib)
        return Market(
            "synthetic", f"calibration:{p}", calib=calib, symbol=sym, tick_px=tick, lot_qty=lot
        )
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


# ---------------------------------------------------------------------------------------------
# validation of the simple arguments (before anything is loaded or written)
# ---------------------------------------------------------------------------------------------
def validate_args(hours: float, iterations: int) -> None:
    if not isinstance(hours, int | float) or not math.isfinite(float(hours)) or hours <= 0:
        raise UserError(f"--hours must be a positive number of market hours, got {hours}")
    if not isinstance(iterations, int) or iterations < 1:
        raise UserError(f"--iterations must be at least 1, got {iterations}")
    if iterations > 10_000:
        raise UserError(f"--iterations {iterations} is too many (at most 10000)")
    iter_ns = float(hours) * NS_PER_HOUR / iterations
    if iter_ns < 1e9:
        raise UserError(
            f"--hours {hours} over --iterations {iterations} gives iterations under 1 s of market time"
        )


def validate_paths(paths: SoakPaths) -> None:
    """Output locations that cannot be written are refused before the soak starts."""
    if paths.root.exists() and not paths.root.is_dir():
        raise UserError(f"--artifacts {paths.root} exists and is not a directory")
    for flag, p in (
        ("--export-json", paths.export_json),
        ("--export-md", paths.export_md),
        ("--gate-summary", paths.gate_summary),
    ):
        if p.exists() and p.is_dir():
            raise UserError(f"{flag} {p} is a directory, expected a file path")
        anc = p.parent
        while not anc.exists():
            anc = anc.parent
        if not anc.is_dir():
            raise UserError(f"{flag} {p}: {anc} is a file, not a directory")


# ---------------------------------------------------------------------------------------------
# per-iteration pieces
# ---------------------------------------------------------------------------------------------
def iteration_metrics(totals: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: totals.get(k) for k in METRIC_KEYS}
    out["block_ratios"] = {
        name: (v or {}).get("ratio")
        for name, v in sorted((totals.get("block_reasons") or {}).items())
    }
    out["neg_edge_drivers"] = list(totals.get("neg_edge_drivers") or [])
    return out


def iteration_artifacts(iteration: int, report: Mapping[str, Any]) -> dict[str, dict]:
    """The seed's three per-iteration files (section F, patch 1), keyed by kind."""
    totals = report.get("totals", {})
    runtime = report.get("runtime", {})
    return {
        "AUDIT_SNAPSHOT": dict(report),
        "BLOCKS_BREAKDOWN": {
            "iteration": iteration,
            "block_reasons": totals.get("block_reasons", {}),
            "runtime": runtime,
        },
        "NEG_EDGE_DRIVERS": {
            "iteration": iteration,
            "neg_edge_drivers": totals.get("neg_edge_drivers", []),
            "neg_edge_drivers_detail": totals.get("neg_edge_drivers_detail", []),
            "net_bps": totals.get("net_bps", 0.0),
            "component_breakdown": totals.get("component_breakdown", {}),
            "runtime": runtime,
        },
    }


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _fmt_knobs(knobs: Mapping[str, float]) -> str:
    return " ".join(f"{k}={autotune.fmt_knob(k, knobs[k])}" for k in knob_order(knobs))


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------
@dataclass
class SoakOutcome:
    verdict: str
    exit_code: int
    paths: SoakPaths
    final_overrides: dict[str, float]
    best_iteration: int | None
    history: list[dict]
    html: Path | None = None
    md: Path | None = None
    decision: dict | None = None  # the decision matrix (`mmbot.soak.decision.decide`)
    stability: dict | None = None  # frozen soaks (`mmbot.soak.stability.stability_report`)


def _load_knobs(
    profile: str | None, overrides_root: Path
) -> tuple[Any, dict[str, float], dict[str, float], list[str]]:
    from mmbot.config import effective_knobs, load_overrides, load_profile

    prof = load_profile(profile)
    overrides, messages = load_overrides(
        None, env=os.environ, default_file=overrides_root / "soak" / "runtime_overrides.json"
    )
    knobs = effective_knobs(prof, overrides)
    return prof, dict(overrides), {k: float(knobs[k]) for k in KNOB_NAMES}, list(messages)


def _knob_source(artifacts: Path, overrides: Mapping[str, float]) -> str:
    """Where the starting knobs came from, said plainly (an earlier soak's file is hidden state)."""
    from mmbot.config import overrides_source

    src = overrides_source(None, default_file=artifacts / "soak" / "runtime_overrides.json")
    if src is None or not overrides:
        return "the profile (no overrides)"
    return f"profile + overrides from {src} ({', '.join(sorted(overrides))})"


def _with_file_params(
    prof: Any,
    artifacts: Path,
    overrides: Mapping[str, float],
    strategy_options: Mapping[str, Any] | None,
) -> Any:
    """``prof`` with the overrides' quoter parameters (``param.NAME``); --param wins."""
    from mmbot.config import overrides_source, with_override_params

    src = overrides_source(None, default_file=artifacts / "soak" / "runtime_overrides.json")
    keep = (strategy_options or {}).get("params")
    return with_override_params(prof, overrides, src or "overrides", keep=keep)


def _make_settings(prof: Any, knobs: Mapping[str, float], seed: int) -> Any:
    """The run settings of a knob set: the runtime knobs, and its quoter knobs (``param.NAME``)
    as the quoter's parameters over the profile's."""
    from mmbot.backtest import RunSettings

    runtime, params = split_knobs(knobs)
    return RunSettings(knobs=runtime, params=params, profile=prof, seed=seed)


def quoter_knobs(prof: Any, tune: bool) -> tuple[dict[str, float], list[str]]:
    """The starting values of the profile's quoter's tunable knobs (``knobs.QUOTER_KNOBS``; the
    quoter's defaults under the profile's, --param's and the overrides' values) and notes. When
    ``tune``, values outside the tuner's limits are clamped (one note each)."""
    from mmbot.strategy.registry import resolve

    spec = prof.strategy.name
    limits = tunable_quoter_knobs(spec)
    if not limits:
        return {}, []
    values = {**resolve(spec).params, **prof.strategy.params}
    out: dict[str, float] = {}
    notes: list[str] = []
    for name, (lo, hi) in limits.items():
        raw = float(values[quoter_param(name)])
        v = autotune.snap(name, raw) if tune else raw
        if v != raw:
            notes.append(
                f"quoter knob {name}={raw:g} outside the tuner's limits [{lo:g}, {hi:g}] or grid: "
                f"the soak starts from {v:g}"
            )
        out[name] = v
    return out, notes


def run_iteration(
    mkt: Market,
    prof: Any,
    knobs: Mapping[str, float],
    seed: int,
    iteration: int,
    start_ns: int,
    duration_ns: int,
    on_chunk: Callable[[int], None] | None = None,
    segment_out: list[Segment] | None = None,
    account: AccountCarry | None = None,
    close_end: bool = True,
) -> list[Any]:
    """Run ``duration_ns`` of market from ``start_ns`` with ``knobs``; one RunResult per chunk.

    Each chunk starts from the book and the position the previous one left:
    ``account`` (a soak's, advanced here in place; None: flat from ``start_ns``). With
    ``close_end`` the last chunk's end position is closed at taker cost, booked
    (`mmbot.soak.closeout`): a soak does so at its very end only.

    Events of a chunk are dropped as soon as its run is done (only records are kept), except the
    last chunk's when ``segment_out`` is given: it receives that chunk as a `Segment` (events with
    the carried book in front, settings seed, starting account, the run before any close-out), so
    the tuner can replay it with other knobs from exactly the state the real run started from."""
    from mmbot.backtest import run as backtest_run
    from mmbot.soak.closeout import close_at_taker

    settings_seed = derive_seed(seed, iteration, 1_000_000)
    settings = _make_settings(prof, knobs, settings_seed)
    acct = account if account is not None else AccountCarry(funded_to_ns=int(start_ns))
    results = []
    carry = mkt.book_carry(start_ns, seed=seed)
    last_events: np.ndarray | None = None
    last_start: AccountCarry | None = None
    for chunk_no, events in enumerate(mkt.chunks(seed, iteration, start_ns, duration_ns)):
        if len(events) == 0:
            continue
        if carry is None:
            carry = mkt.book_carry(start_ns, sample=events)
        # a chunk after the first starts from the book the previous one left behind
        run_events = carry.prefix(events) if carry is not None else events
        res = backtest_run(
            run_events,
            acct.settings(settings),
            symbol=mkt.symbol,
            tick_px=mkt.tick_px,
            lot_qty=mkt.lot_qty,
            data_format=mkt.data_format,
        )
        res.meta["name"] = f"iter{iteration:03d}_chunk{chunk_no:03d}"
        w0 = start_ns + chunk_no * CHUNK_NS  # the chunk's market-time window (as mkt.chunks)
        w1 = min(w0 + CHUNK_NS, start_ns + duration_ns)
        last_start = copy.copy(acct)
        acct.begin(res)
        audit_chunk(mkt, run_events, res, acct.funding_window(w1))
        last_events = run_events if segment_out is not None else None
        del run_events
        if carry is not None:
            carry.apply(events)
        acct.end(res, w1)
        results.append(res)
        if on_chunk is not None:
            on_chunk(int(events["exch_ts"][-1]))
        del events
    if segment_out is not None and last_events is not None and results:
        funding = results[-1].meta.get("funding")
        segment_out.append(
            Segment(iteration, last_events, settings_seed, results[-1], funding, last_start)
        )
    if close_end and results:
        results[-1] = close_at_taker(results[-1])
    return results


def audit_chunk(mkt: Market, events: np.ndarray, res: Any, window: tuple[int, int]) -> None:
    """What the soak checks and books on a chunk's run before any close-out: every fill's mid
    against a book rebuilt independently from the chunk's input (``audit.crosscheck``; an
    AuditError names the fill and fails the soak), and on a synthetic market the funding the
    chunk pays over the funding ``window`` (``funding_for_chunk``)."""
    from mmbot.audit.crosscheck import check_fill_mids

    res.meta["mid_crosscheck"] = check_fill_mids(events, res, str(res.meta["name"]))
    if mkt.funding is not None:
        res.meta["funding"] = funding_for_chunk(mkt.funding, events, res.meta, window)


def funding_for_chunk(
    accrual: Any, events: np.ndarray, meta: dict, window: tuple[int, int]
) -> dict:
    """The synthetic market's funding (``data.synthetic_funding``) over one chunk: its mid path,
    rebuilt from the chunk's events, is fed to the market's accrual, and the chunk is charged the
    funding times in its window (start, end] (`AccountCarry.funding_window`: from where the
    previous chunk's stopped, so each time is paid once). A time after its last event (funding
    times fall on chunk boundaries) is charged at that last event, on the position held then
    (before a close-out; the next chunk carries that position but not that time); one before its
    first event, on the position carried in."""
    from mmbot.audit.crosscheck import rebuild_mids
    from mmbot.funding import FundingSchedule

    ts, mid = rebuild_mids(events, float(meta["tick_px"]))
    accrual.feed(ts, mid)
    first, last = int(meta["start_ts"]), int(meta["end_ts"])
    sched = accrual.schedule(window[0], window[1], "")
    times = np.clip(sched.times_ns, first, last)
    source = (
        "synthetic: the venues' formula on a premium from the mid path (data.synthetic_funding); "
        "a funding time at a chunk's end is charged once, in that chunk, on the position it "
        "carries out"
    )
    return FundingSchedule(times, sched.rates, source).to_meta() | {
        "funding_times_ns": [int(t) for t in sched.times_ns]
    }


@dataclass
class Segment:
    """The last market chunk of an iteration, kept for counterfactual replays."""

    iteration: int
    events: np.ndarray  # carried book snapshot + the chunk's events (the real run's input)
    settings_seed: int
    result: Any  # the real run's RunResult on it (before any close-out)
    funding: dict | None = None  # the funding the real run was charged (replays pay the same)
    account: AccountCarry | None = None  # the account the real run started from (None: flat)


def chunk_net_bps(result: Any) -> float | None:
    """net_bps of one run by the audit (None when it has no fills / no finite number)."""
    from mmbot.audit import build_edge_report

    totals = build_edge_report([result], {})["totals"]
    if not totals.get("fills"):
        # the audit books 0 bps for no fills: as a replay score that would make quoting nothing
        # beat any losing knob set (a quoter knob can stop the fills altogether)
        return None
    v = totals.get("net_bps")
    return float(v) if isinstance(v, int | float) and math.isfinite(float(v)) else None


def chunk_score_bps(result: Any) -> float | None:
    """The tuner's replay score of one run (`autotune.SCORE_NAME`; None when it has no fills):
    net_bps minus ``SCORE_BETA`` x the inventory PnL earned beyond ``SCORE_TAU_S`` after each fill
    (and on the position carried in), in bps of turnover. That part is position x later mid moves:
    zero-mean when the mid is a martingale, and the bulk of the paired noise between knob sets
    (see `autotune.SCORE_TAU_S` for the measurements and the bias it carries)."""
    net = chunk_net_bps(result)
    if net is None or autotune.SCORE_BETA == 0.0:
        return net
    from mmbot.audit.decompose import data_end_ns, decompose, mid_at

    e = decompose(result)
    turnover = float(e.notional.sum())
    if turnover <= 0:
        return net
    marks = result.marks[np.isfinite(result.marks["mid_px"])]
    marks = marks[np.argsort(marks["exch_ts"], kind="stable")]
    end_ns = data_end_ns(result)
    t_h = e.ts_ns + int(round(autotune.SCORE_TAU_S * 1e9))
    # mid tau after each fill (the final mid when the run ends first: nothing beyond)
    m_h = np.where(t_h > end_ns, e.final_mid_px, mid_at(marks, np.minimum(t_h, end_ns)))
    beyond = float((e.side * e.qty * (e.final_mid_px - m_h)).sum()) + e.inventory_initial
    return net - autotune.SCORE_BETA * beyond / turnover * 1e4


# the replayer a forked replay worker inherits (set just before the pool forks)
_FORK_REPLAYER: list[Replayer] = []


def _replay_in_child(task: tuple[int, dict[str, float]]) -> float | None:
    seg_id, knobs = task
    return _FORK_REPLAYER[0].replay(knobs, seg_id)


def replay_workers() -> int:
    """Processes for counterfactual replays: ``$MM_SOAK_REPLAY_WORKERS`` or the usable CPUs (at
    most 2); 1 = replay in this process. Results do not depend on it (replays are pure)."""
    env = os.environ.get("MM_SOAK_REPLAY_WORKERS", "").strip()
    if env:
        try:
            return max(1, min(int(env), 8))
        except ValueError:
            raise UserError(
                f"MM_SOAK_REPLAY_WORKERS={env!r}: expected a whole number of processes"
            ) from None
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 2))


class Replayer:
    """``evaluate(knobs, segment id) -> score_bps`` (`chunk_score_bps`) for the tuner: replays a kept segment through
    `mmbot.backtest.run` with other knobs (cached per (segment, knobs)); holds the latest
    ``keep`` segments only, so memory stays bounded however long the soak.

    ``prefetch`` replays a batch in ``workers`` forked processes (they inherit the segments; the
    pool is re-forked after each new segment), so the tuner's batches use both cores."""

    def __init__(self, mkt: Market, prof: Any, keep: int, workers: int = 1) -> None:
        self.mkt = mkt
        self.prof = prof
        self.keep = keep
        self.workers = workers
        self.segments: dict[int, Segment] = {}
        self.cache: dict[tuple[int, tuple], float | None] = {}
        self.replays = 0
        self._pool: Any = None

    def add(self, seg: Segment, knobs: Mapping[str, float]) -> None:
        self.close()  # a forked pool would not see the new segment
        self.segments[seg.iteration] = seg
        # the real run is the replay of its own knobs: never run it twice
        self.cache[(seg.iteration, autotune.knob_key(knobs))] = chunk_score_bps(seg.result)
        seg.result = None
        for old in sorted(self.segments)[: -self.keep]:
            del self.segments[old]
            self.cache = {k: v for k, v in self.cache.items() if k[0] != old}

    def ids(self) -> list[int]:
        """Segment ids, latest first."""
        return sorted(self.segments, reverse=True)

    def cached(self, knobs: Mapping[str, float], seg_id: int) -> bool:
        """Whether ``self(knobs, seg_id)`` is already known (costs no replay)."""
        return (seg_id, autotune.knob_key(knobs)) in self.cache

    def replay(self, knobs: Mapping[str, float], seg_id: int) -> float | None:
        """One replay, uncached."""
        from mmbot.backtest import run as backtest_run

        seg = self.segments[seg_id]
        settings = _make_settings(self.prof, knobs, seg.settings_seed)
        res = backtest_run(
            seg.events,
            seg.account.settings(settings) if seg.account is not None else settings,
            symbol=self.mkt.symbol,
            tick_px=self.mkt.tick_px,
            lot_qty=self.mkt.lot_qty,
            data_format=self.mkt.data_format,
        )
        if seg.funding is not None:
            res.meta["funding"] = seg.funding
        # scored like the real run's chunk: from the position it carried in, none closed
        return chunk_score_bps(res)

    def __call__(self, knobs: Mapping[str, float], seg_id: int) -> float | None:
        key = (seg_id, autotune.knob_key(knobs))
        if key not in self.cache:
            self.cache[key] = self.replay(knobs, seg_id)
            self.replays += 1
        return self.cache[key]

    def prefetch(self, pairs: Sequence[tuple[Mapping[str, float], int]]) -> None:
        """Replay every (knobs, segment) not cached yet, in parallel when there are workers."""
        todo: list[tuple[int, dict[str, float]]] = []
        seen: set[tuple] = set()
        for knobs, seg_id in pairs:
            key = (seg_id, autotune.knob_key(knobs))
            if key not in self.cache and key not in seen:
                seen.add(key)
                todo.append((seg_id, dict(knobs)))
        pool = self._get_pool() if len(todo) >= 2 else None
        if pool is None:
            for seg_id, knobs in todo:
                self(knobs, seg_id)
            return
        for (seg_id, knobs), net in zip(
            todo, pool.map(_replay_in_child, todo, chunksize=1), strict=True
        ):
            self.cache[(seg_id, autotune.knob_key(knobs))] = net
            self.replays += 1

    def _get_pool(self) -> Any:
        if self.workers < 2:
            return None
        if self._pool is None:
            import multiprocessing as mp

            try:
                ctx = mp.get_context("fork")
                _FORK_REPLAYER[:] = [self]
                self._pool = ctx.Pool(self.workers, initializer=_default_sigterm)
            except (ValueError, OSError, AssertionError):
                # no fork on this platform, or inside a daemonic process: replay here
                self.workers = 1
                return None
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
        _FORK_REPLAYER.clear()


def _default_sigterm() -> None:
    """A replay worker dies quietly when the pool is closed (``terminate`` sends SIGTERM): it must
    not inherit the CLI's SIGTERM-as-Ctrl-C handler, which printed a KeyboardInterrupt traceback."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run_soak(
    *,
    hours: float,
    iterations: int,
    auto_tune: bool,
    export_json: Path,
    export_md: Path,
    gate_summary: Path,
    market: str = "synthetic",
    profile: str | None = None,
    seed: int = 1,
    artifacts: Path = Path("artifacts"),
    console: Any = None,
    progress: bool = True,
    freeze: bool = False,
    strategy_options: Mapping[str, Any] | None = None,
) -> SoakOutcome:
    """Run a soak and write its artifacts; returns the outcome (the CLI maps it to an exit code)."""
    from rich.console import Console

    con = console if console is not None else Console(highlight=False)

    def say(line: str) -> None:
        con.print(line, markup=False, highlight=False, soft_wrap=True)

    validate_args(hours, iterations)
    if freeze and auto_tune:
        raise UserError(
            "--freeze runs the overrides unchanged: it cannot be combined with --auto-tune"
        )
    paths = SoakPaths(Path(artifacts), Path(export_json), Path(export_md), Path(gate_summary))
    validate_paths(paths)
    prof, overrides_in, knobs, messages = _load_knobs(profile, Path(artifacts))
    if strategy_options:  # --strategy, --param and the equal-limit flags (mmbot.config)
        from mmbot.backtest import check_strategy
        from mmbot.config import with_strategy_options

        prof = check_strategy(with_strategy_options(prof, **strategy_options))
    prof = _with_file_params(prof, Path(artifacts), overrides_in, strategy_options)
    q_knobs, q_notes = quoter_knobs(prof, auto_tune)
    knobs.update(q_knobs)  # the quoter's tunable knobs run (and are tuned) beside the six
    messages += q_notes
    mkt = resolve_market(market)
    if mkt.kind == "synthetic":
        from mmbot.data.synthetic_funding import FundingAccrual

        mkt.funding = FundingAccrual.from_profile(prof)
    mkt.notes.append(
        "positions: carried across the 30-min chunks and the iterations (each chunk starts with "
        "the previous one's end position, its PnL and fees from zero; EDGE_REPORT "
        "position_carry); the soak's end "
        "position is closed at its final touch with the taker fee, booked as a taker fill "
        "(EDGE_REPORT position_close_out)"
    )
    if mkt.funding is not None:
        mkt.notes.append(
            f"funding: the synthetic market's series every {prof.funding.interval_s} s "
            "(interest + premium from its mid path; profile 'funding'), charged on the position "
            "held at each funding time (EDGE_REPORT funding_bps)"
        )

    from mmbot.audit import build_edge_report
    from mmbot.audit.edge_report import make_runtime
    from mmbot.audit.records_io import write_audit_jsonl, write_run
    from mmbot.gate import evaluate, load_thresholds

    thresholds = load_thresholds()
    total_ns = int(round(float(hours) * NS_PER_HOUR))
    start_ns = SYNTH_START_NS
    if mkt.kind == "capture":
        span = mkt.span_ns() or 0
        start_ns = int(mkt.events["exch_ts"][0])  # type: ignore[index]
        if total_ns > span + 1:
            mkt.notes.append(
                f"capture spans {span / NS_PER_HOUR:.4f} h of market; soaking that instead of {hours} h"
            )
            total_ns = span + 1
    iter_ns = total_ns // iterations
    for msg in list(getattr(prof, "messages", []) or []) + messages + mkt.notes:
        say(f"| soak | NOTE | {msg} |")
    prof_name = getattr(prof, "name", None) or (profile or os.environ.get("MM_PROFILE") or "S1")
    say(
        f"| soak | START | market={mkt.label} hours={total_ns / NS_PER_HOUR:g} iterations={iterations} "
        f"auto_tune={int(auto_tune)} seed={seed} profile={prof_name} |"
    )
    say(f"| soak | KNOBS | iter=1 {_fmt_knobs(knobs)} |")
    say(f"| soak | KNOBS | source: {_knob_source(Path(artifacts), overrides_in)} |")
    from mmbot import firstrun, jitclock

    phases = firstrun.PhaseTimes(cold=not jitclock.is_warm())
    if phases.cold:
        say(f"| soak | COMPILE | {firstrun.compile_announcement()} |")

    stage = Stage(Path(artifacts), replace_dirs=[paths.iterations, paths.records])
    replayer: Replayer | None = None
    try:
        history: list[dict] = []
        all_results: list[Any] = []
        metrics_lines: list[bytes] = []
        audit_parts: list[Path] = []
        iter_rows: list[dict] = []
        pnl_sum = 0.0
        turnover_sum = 0.0
        fills_sum = 0
        wall0 = time.perf_counter()
        staged_records = stage.dir_for(paths.records)
        # counterfactual replays of the latest iteration segments (auto-tune only)
        replayer = (
            Replayer(mkt, prof, autotune.MAX_KEPT_SEGMENTS, workers=replay_workers())
            if auto_tune
            else None
        )
        keep_best_table: list[dict] = []
        account = AccountCarry(funded_to_ns=start_ns)  # the soak's one account, carried along

        prog_ctx = _progress(con, enabled=progress)
        with prog_ctx as prog, phases.timed("soak", jitclock.CompileClock()):
            task = prog.add_task("soak", total=total_ns) if prog else None
            for it in range(1, iterations + 1):
                t_wall = time.perf_counter()
                it_start = start_ns + (it - 1) * iter_ns
                knobs_used = dict(knobs)

                def on_chunk(last_exch_ns: int, _it: int = it) -> None:
                    if prog is not None:
                        done = min(last_exch_ns - start_ns, _it * iter_ns)
                        prog.update(task, completed=done)

                seg_out: list[Segment] | None = [] if auto_tune else None
                results = run_iteration(
                    mkt,
                    prof,
                    knobs_used,
                    seed,
                    it,
                    it_start,
                    iter_ns,
                    on_chunk=on_chunk,
                    segment_out=seg_out,
                    account=account,
                    close_end=it == iterations,
                )
                if replayer is not None and seg_out:
                    replayer.add(seg_out[0], knobs_used)
                del seg_out
                runtime = make_runtime(
                    profile=prof_name,
                    overrides=knobs_used,
                    seed=seed,
                    data_inputs=[mkt.label],
                    iteration=it,
                    market_start_ns=it_start,
                    market_duration_ns=iter_ns,
                )
                report = build_edge_report(results, runtime)
                totals = report["totals"]
                pnl_sum += float(totals.get("pnl") or 0.0)
                turnover_sum += float(totals.get("turnover") or 0.0)
                fills_sum += int(totals.get("fills") or 0)
                net_so_far = pnl_sum / turnover_sum * 1e4 if turnover_sum > 0 else float("nan")

                for kind, obj in iteration_artifacts(it, report).items():
                    stage.write_json(paths.iteration_file(kind, it), obj)
                say(f"| soak_iter_artifacts | OK | iter={it} |")

                decision = None
                replays_before = replayer.replays if replayer is not None else 0
                if auto_tune and it < iterations:
                    assert replayer is not None
                    decision = autotune.counterfactual_tune(
                        report,
                        knobs_used,
                        history,
                        replayer,
                        replayer.ids(),
                        budget=autotune.replay_budget(knobs_used),
                    )
                    knobs = dict(decision.knobs)
                entry = autotune.history_entry(it, report, knobs_used, decision)
                history.append(entry)
                all_results.extend(results)

                it_gate = evaluate(report, thresholds)
                wall_s = time.perf_counter() - t_wall
                row = {
                    "iteration": it,
                    "market_start_ns": it_start,
                    "market_hours": iter_ns / NS_PER_HOUR,
                    "knobs": knobs_used,
                    "next_knobs": dict(knobs),
                    "metrics": iteration_metrics(totals),
                    "verdict": it_gate.get("verdict"),
                    "failed_hard": list(it_gate.get("failed_hard") or []),
                    "autotune": decision.as_dict() if decision else None,
                    "net_bps_so_far": net_so_far,
                    "replays": (replayer.replays - replays_before) if replayer is not None else 0,
                    "wall_s": wall_s,
                }
                iter_rows.append(row)
                metrics_lines.append(jsonl_line(row))
                # the records, so `mmbot report --run artifacts/soak/records` can rebuild the report
                for r in results:
                    write_run(staged_records, r, str(r.meta.get("name")), audit_jsonl=False)
                # the seed's audit.jsonl (one line per fill and per action), one part per iteration
                part = stage.dir / "audit_parts" / f"iter{it:05d}.jsonl"
                write_audit_jsonl(part, [(str(r.meta.get("name")), r) for r in results])
                audit_parts.append(part)
                say(
                    f"| soak_iter | iter={it}/{iterations} | market_h={it * iter_ns / NS_PER_HOUR:.3f} "
                    f"| fills={totals.get('fills')} | net_bps={_fmt(totals.get('net_bps'))} "
                    f"| net_bps_so_far={_fmt(net_so_far)} | wall_s={wall_s:.2f} |"
                )
                if decision is not None:
                    for m in decision.markers:
                        say(m)
                    if decision.changes:
                        say(f"| soak | KNOBS | iter={it + 1} {_fmt_knobs(knobs)} |")
                if prog is not None:
                    prog.update(
                        task,
                        completed=it * iter_ns,
                        description=(
                            f"iter {it}/{iterations}  market {it * iter_ns / NS_PER_HOUR:.2f} h  "
                            f"fills {fills_sum}  net_bps {_fmt(net_so_far, 2)}"
                        ),
                    )

        # ---- final artifacts ------------------------------------------------------------------
        best_it: int | None
        if auto_tune and replayer is not None and replayer.ids():
            # keep-best on common market: every knob set that ran, replayed on the same segments
            best_it, best_knobs, keep_best_table = autotune.select_best_common(
                history, replayer, replayer.ids()
            )
        elif auto_tune:
            best_it, best_knobs = autotune.select_best(history)
        else:
            best_it, best_knobs = None, dict(history[0]["knobs"])
        final_overrides = best_knobs
        if replayer is not None:
            replayer.close()
        if auto_tune:
            assert best_it is not None
            common = next((r["score_bps"] for r in keep_best_table if r["kept"]), None)
            say(
                f"| autotune | KEEP_BEST | iter={best_it} net_bps={_fmt(history[best_it - 1]['net_bps'])} "
                f"common_segments_score_bps={_fmt(common)} {_fmt_knobs(final_overrides)} |"
            )
        from mmbot.backtest import strategy_runtime

        final_runtime = make_runtime(
            **strategy_runtime(prof),
            profile=prof_name,
            overrides=overrides_in,
            seed=seed,
            data_inputs=[mkt.label],
            hours=total_ns / NS_PER_HOUR,
            iterations=iterations,
            auto_tune=auto_tune,
            final_overrides=final_overrides,
            best_iteration=best_it,
        )
        final_report = build_edge_report(all_results, final_runtime)
        gate = evaluate(final_report, thresholds)
        verdict = str(gate.get("verdict"))
        wall_total = time.perf_counter() - wall0

        stage.write_json(paths.runtime_overrides, final_overrides)
        stage.write_bytes(paths.metrics_jsonl, b"".join(metrics_lines))
        with open(stage.path(paths.audit_jsonl), "wb") as fh:
            for part in audit_parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, fh, 1 << 20)
                part.unlink()
        stage.write_json(paths.edge_report, final_report)
        stage.write_json(paths.kpi_gate, gate)
        soak_metrics = {
            "hours": total_ns / NS_PER_HOUR,
            "iterations": iterations,
            "auto_tune": auto_tune,
            "market": mkt.label,
            "seed": seed,
            "profile": prof_name,
            "start_overrides": overrides_in,
            "final_overrides": final_overrides,
            "best_iteration": best_it,
            "keep_best": keep_best_table,
            "replays": replayer.replays if replayer is not None else 0,
            "per_iteration": iter_rows,
            "final": iteration_metrics(final_report["totals"]),
            "verdict": verdict,
            "rules": autotune.rule_table(),
            "wall_s_total": wall_total,
            "freeze": freeze,
        }
        if freeze:
            soak_metrics["stability"] = soak_stability.stability_report(iter_rows)
        soak_metrics["decision"] = soak_decision.decide(
            final_report,
            gate,
            final_overrides=final_overrides,
            history=history,
            mode="freeze" if freeze else "auto_tune" if auto_tune else "fixed",
            overrides_path=paths.runtime_overrides.as_posix(),
            stability=soak_metrics.get("stability"),
        )
        stage.write_text(
            paths.summary_txt,
            soak_summary.render(soak_metrics, gate, paths.runtime_overrides.as_posix()),
        )
        if soak_metrics["decision"]["next_overrides"] is not None:
            stage.write_json(
                paths.soak / soak_decision.NEXT_OVERRIDES_NAME,
                soak_metrics["decision"]["next_overrides"],
            )
        stage.write_json(paths.export_json, soak_metrics)
        stage.write_json(
            paths.gate_summary,
            {
                "verdict": verdict,
                "gate": gate,
                "per_iteration": [
                    {"iteration": r["iteration"], "verdict": r["verdict"]} for r in iter_rows
                ],
                "net_bps": final_report["totals"].get("net_bps"),
            },
        )
        md_text = soak_markdown(soak_metrics, final_report, gate)
        if freeze:
            md_text += "\n" + soak_stability.markdown(soak_metrics["stability"])
        md_text += "\n" + soak_decision.markdown(soak_metrics["decision"])
        md_path = html_path = None
        try:
            from mmbot.report import write_reports
        except ImportError:
            write_reports = None
        if write_reports is not None:
            # the report module renders EDGE_REPORT + gate + our soak section as one Markdown
            # file (the --export-md file) plus the HTML report beside EDGE_REPORT.json
            scratch = stage.dir / "scratch_reports"
            md_tmp, html_tmp = write_reports(
                scratch,
                final_report,
                all_results,
                gate,
                extra_md=md_text,
                extra_html=soak_decision.html_fragment(soak_metrics["decision"]),
                iterations=iter_rows,
            )
            md_path = paths.export_md
            html_path = paths.reports / Path(html_tmp).name
            stage.write_bytes(md_path, Path(md_tmp).read_bytes())
            stage.write_bytes(html_path, Path(html_tmp).read_bytes())
        else:
            say("| soak | NOTE | mmbot.report unavailable: HTML report skipped |")
            stage.write_text(paths.export_md, md_text)
            md_path = paths.export_md
        stage.commit()
    except BaseException:
        if replayer is not None:
            replayer.close()
        stage.abort()
        raise

    for line in _carry_lines(final_report["totals"]):
        say(f"| soak | CARRY | {line[2:]} |")
    say(
        f"| soak | GATE | verdict={verdict} net_bps={_fmt(final_report['totals'].get('net_bps'))} |"
    )
    from mmbot.gate import failed_check_lines

    for line in failed_check_lines(gate) if verdict != "PASS" else []:
        say(f"| soak | GATE | {verdict}: {line} |")
    say(f"| soak | TIME | {phases.line()} |")
    return SoakOutcome(
        verdict=verdict,
        exit_code=1 if verdict == "FAIL" else 0,
        paths=paths,
        final_overrides=final_overrides,
        best_iteration=best_it,
        history=history,
        html=html_path,
        md=md_path,
        decision=soak_metrics["decision"],
        stability=soak_metrics.get("stability"),
    )


class _NoProgress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _progress(con: Any, enabled: bool) -> Any:
    if not enabled:
        return _NoProgress()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        console=con,
        transient=True,
    )


def _carry_lines(totals: Mapping[str, Any]) -> list[str]:
    """What happens to each chunk's end position and the funding it paid (EDGE_REPORT totals)."""
    out = []
    pc = totals.get("position_carry")
    if isinstance(pc, dict):
        out.append(
            f"- positions: {pc.get('rule')}; {pc.get('carried')} of {pc.get('runs')} chunks "
            f"started with a position (largest {_fmt(pc.get('max_abs_position_qty'), 4)}); "
            f"unbooked move at the seams {_fmt(pc.get('seam_pnl'), 6)}"
        )
    pco = totals.get("position_close_out")
    if isinstance(pco, dict):
        for c in pco.get("closes") or []:
            out.append(
                f"- end position {_fmt(c.get('position_qty'), 4)} closed at {_fmt(c.get('px'), 2)} "
                f"with the taker fee: cost {_fmt(c.get('cost'))} ({_fmt(pco.get('cost_bps'))} bps "
                "of turnover), booked in the totals (marked at the final mid instead, the PnL "
                "would be higher by that cost)"
            )
        if not pco.get("closed"):
            out.append(f"- end position: {pco.get('rule')}; nothing to close")
    if isinstance(totals.get("funding_bps"), int | float):
        out.append(f"- funding: {_fmt(totals.get('funding_bps'))} bps of turnover")
    return out


def soak_markdown(
    sm: Mapping[str, Any], final_report: Mapping[str, Any], gate: Mapping[str, Any]
) -> str:
    """SOAK_RESULTS.md: per-iteration table, tuner changes, final overrides, verdict."""
    t = final_report.get("totals", {})
    lines = [
        "## Soak iterations and auto-tune",
        "",
        f"- market: `{sm['market']}`, {sm['hours']:.4g} h of market time in {sm['iterations']} iterations, "
        f"seed {sm['seed']}, profile {sm['profile']}, auto-tune {'on' if sm['auto_tune'] else 'off'}",
        f"- **verdict: {gate.get('verdict')}**, net_bps {_fmt(t.get('net_bps'))} over {t.get('fills')} fills",
        *_carry_lines(t),
        "",
        "| iter | net_bps | fills | adverse_p95 | slippage_p95 | order_age_p95_ms | cancel_ratio | verdict | changes |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in sm["per_iteration"]:
        m = r["metrics"]
        ch = (r.get("autotune") or {}).get("changes") or []
        ch_txt = ", ".join(
            f"{c['rule']}: {c['field']} {autotune.fmt_knob(c['field'], c['from'])}→"
            f"{autotune.fmt_knob(c['field'], c['to'])}"
            for c in ch
        )
        at = r.get("autotune") or {}
        notes = []
        if at.get("fallback"):
            notes.append("FALLBACK")
        if at.get("calm_down"):
            notes.append("calm-down")
        muted = sorted({s["rule"] for s in at.get("skipped", []) if s.get("why") == "ineffective"})
        if muted:
            notes.append("muted " + ",".join(muted))
        ch_txt = "; ".join(x for x in [" ".join(notes), ch_txt] if x)
        lines.append(
            f"| {r['iteration']} | {_fmt(m.get('net_bps'))} | {m.get('fills')} | {_fmt(m.get('adverse_bps_p95'))} "
            f"| {_fmt(m.get('slippage_bps_p95'))} | {_fmt(m.get('order_age_p95_ms'), 1)} "
            f"| {_fmt(m.get('cancel_ratio'))} | {r.get('verdict')} | {ch_txt or '-'} |"
        )
    trials = [
        (r["iteration"], t)
        for r in sm["per_iteration"]
        for t in ((r.get("autotune") or {}).get("trials") or [])
    ]
    if trials:
        lines += [
            "",
            "## Counterfactual validation",
            "",
            "Every candidate change was replayed on the market of the iterations played so far "
            "(the latest first; the better half of the candidates on more segments, the best on "
            "all of them), from the same book, position and events; it was adopted only when its "
            "mean paired gain over all its segments (in the tuner's replay score "
            f"{autotune.SCORE_NAME}: net_bps minus {autotune.SCORE_BETA:g} x the inventory PnL "
            f"beyond {autotune.SCORE_TAU_S:g} s after each fill) beat the noise floor "
            f"({autotune.NOISE_FLOOR_BPS:g} bps x sqrt(2 / segments), at least "
            f"{autotune.MIN_ADOPT_SEGMENTS} segments).",
            "",
            "| after iter | candidate | segments | gain_bps | adopted |",
            "|---:|---|---|---:|---|",
        ]
        for it, t in trials:
            segs = ",".join(str(x) for x in t["segments"] + t.get("earlier_segments", []))
            lines.append(
                f"| {it} | {t['candidate']} | {segs} | {_fmt(t.get('gain_bps'))} "
                f"| {'yes' if t['adopted'] else 'no'} |"
            )
    lines += ["", "## Final overrides", ""]
    if sm["auto_tune"]:
        kb = [r for r in sm.get("keep_best") or [] if r.get("kept")]
        if kb:
            lines.append(
                f"Kept from iteration {sm['best_iteration']}: keep-best rollback on common market "
                f"(every knob set that ran, replayed on iterations "
                f"{', '.join(str(x) for x in kb[0]['segments'])}; mean score_bps "
                f"{_fmt(kb[0]['score_bps'])}; an earlier set had to beat the latest by "
                f"{autotune.keep_best_margin(len(kb[0]['segments'])):.3f} bps, and no set "
                "scoring below the start is kept)."
            )
        else:
            lines.append(
                f"Kept from iteration {sm['best_iteration']} (best net_bps; keep-best rollback)."
            )
        lines.append("")
    lines += ["| knob | start | final |", "|---|---:|---:|"]
    start_knobs = sm["per_iteration"][0]["knobs"]
    for k in knob_order(start_knobs):
        lines.append(
            f"| {k} | {autotune.fmt_knob(k, start_knobs[k])} | {autotune.fmt_knob(k, sm['final_overrides'][k])} |"
        )
    lines += [
        "",
        "## Auto-tune rules",
        "",
        "H1-H5 are the seed's; H6 is ours. A rule whose last change did not lower the cost in "
        "'judged on' is muted for a few iterations (INEFFECTIVE); 3+ rules at once keep only the "
        "conservative ones at their low end (CALM_DOWN); two negative iterations in a row apply "
        "the fallback package.",
        "",
        "| rule | marker | when | deltas | judged on |",
        "|---|---|---|---|---|",
    ]
    for r in sm["rules"]:
        d = ", ".join(f"{f} {lo:+g}..{hi:+g}" for f, (lo, hi) in r["deltas"].items())
        lines.append(
            f"| {r['name']} | {r['marker']} | {r['when']} | {d} | {r.get('judged_on') or '-'} |"
        )
    return "\n".join(lines) + "\n"


def soak_command(
    *,
    hours: float,
    iterations: int,
    auto_tune: bool,
    export_json: Path,
    export_md: Path,
    gate_summary: Path,
    market: str = "synthetic",
    profile: str | None = None,
    seed: int = 1,
    artifacts: Path = Path("artifacts"),
    strategy_options: Mapping[str, Any] | None = None,
) -> int:
    """`mmbot soak`: exit code 0 on PASS/WARN, 1 on FAIL (UserError -> 2 via the CLI)."""
    out = run_soak(
        hours=hours,
        iterations=iterations,
        auto_tune=auto_tune,
        export_json=export_json,
        export_md=export_md,
        gate_summary=gate_summary,
        market=market,
        profile=profile,
        seed=seed,
        artifacts=artifacts,
        strategy_options=strategy_options,
    )
    return out.exit_code


__all__: Sequence[str] = (
    "SoakOutcome",
    "derive_seed",
    "resolve_market",
    "run_soak",
    "soak_command",
)
