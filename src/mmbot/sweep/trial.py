"""One sweep trial: run a parameter set on one fold, check it, score it. Runs in any process.

``run_trial(task)`` is a pure function of its ``TrialTask`` (picklable: plain values, a Profile and
fold file paths), so the same code runs inline, in a local process pool or as a Ray task. A worker
keeps the fold parts it has read (``_FOLD_CACHE``, up to ``FOLD_CACHE_BYTES``) and warms the
compiled loop once (``_WARM``), and the outcome splits the trial's wall time into data loading,
compile (cache load or compilation of the compiled loop, first trial of a process only),
simulation and audit.

A fold with several parts (one per symbol, or per capture) is run as one task per part
(``TrialTask.part``): each part task simulates its part, runs the per-run checks (the fills' mids
against the rebuilt book, the fees, the edge identity of its run) and returns its records; the
driver then scores the trial once all parts are in (``finish_parts``: one EDGE_REPORT over every
part's records, so the trial is checked and scored exactly as if one task had run them all).

Fault injection (``TrialTask.fault``) exists for the tests that prove a broken accounting is caught:
``FAULT_FEE_RECORD_SIGN`` flips the sign of every fill's fee in the records after the run (the
records disagree with the simulator's equity); ``FAULT_FEE_RATE_SIGN`` runs the venue with the
maker fee rate's sign flipped (venue and records agree; the configured rate does not);
``FAULT_MID_RECORD`` moves one fill's mid by 0.1 % in the records (the edge identity still holds;
only the cross-check against the rebuilt book can see it).
"""

from __future__ import annotations

import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np

from mmbot.config import Profile
from mmbot.strategy.params import fee_choice
from mmbot.sweep.checks import TrialCheckError, check_trial
from mmbot.sweep.folds import Fold, FoldPart
from mmbot.sweep.objective import kpis, objective_values

FAULT_FEE_RECORD_SIGN: Final = "fee_record_sign"
FAULT_FEE_RATE_SIGN: Final = "fee_rate_sign"
FAULT_MID_RECORD: Final = "mid_record"
FAULTS: Final = (FAULT_FEE_RECORD_SIGN, FAULT_FEE_RATE_SIGN, FAULT_MID_RECORD)
WARM_EVENTS: Final[int] = 5_000
PART_SEP: Final = "#p"
# fold parts a worker keeps in memory (least recently used dropped first): with walk-forward steps
# running concurrently a worker moves between folds, and re-reading a part costs its whole size
FOLD_CACHE_BYTES: Final[int] = 2 << 30

_FOLD_CACHE: OrderedDict[str, np.ndarray] = OrderedDict()
_WARM: dict[str, bool] = {}


@dataclass(frozen=True)
class TrialRun:
    """How every trial of a sweep runs: the quoter, the venue's latency and queue model, the seed,
    and the fills a fold needs before its score counts."""

    strategy: str = "glft"
    latency_ms: float = 10.0
    queue_model: str = "power2"
    seed: int = 0
    min_fills: int = 10


@dataclass(frozen=True)
class TrialTask:
    key: str  # the driver's handle for this task (e.g. "s0/t12", "s0/oos")
    fold: Fold
    knobs: dict[str, float]
    profile: Profile
    quoter_params: dict[str, Any]
    objectives: tuple[str, ...]
    run: TrialRun = TrialRun()
    fault: str | None = None
    part: int | None = None  # None: every part of the fold in this task; else this part only

    @property
    def parts(self) -> tuple[int, ...]:
        """Indices of the fold parts this task runs."""
        return tuple(range(len(self.fold.parts))) if self.part is None else (self.part,)


@dataclass
class TrialOutcome:
    key: str
    ok: bool
    values: list[float] = field(default_factory=list)
    kpis: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    load_s: float = 0.0
    compile_s: float = 0.0
    sim_s: float = 0.0
    audit_s: float = 0.0
    events: int = 0
    worker: str = ""
    records: list[Any] = field(
        default_factory=list
    )  # a part task's RunResult (scored by the driver)
    records_bytes: int = 0


def _cached_part(path: str) -> np.ndarray:
    ev = _FOLD_CACHE.get(path)
    if ev is not None:
        _FOLD_CACHE.move_to_end(path)
        return ev
    ev = np.load(path, allow_pickle=False)
    _FOLD_CACHE[path] = ev
    while len(_FOLD_CACHE) > 1 and sum(a.nbytes for a in _FOLD_CACHE.values()) > FOLD_CACHE_BYTES:
        _FOLD_CACHE.popitem(last=False)
    return ev


def _fold_arrays(task: TrialTask, arrays: list[np.ndarray] | None) -> list[np.ndarray]:
    """The arrays of the task's parts: shipped ones (Ray's object store hands read-only views; the
    compiled loop is typed for writable arrays, so one private copy), else from the part files."""
    if arrays is not None:
        return [a if a.flags.writeable else np.array(a) for a in arrays]
    return [_cached_part(task.fold.parts[i].path) for i in task.parts]


def _settings(task: TrialTask) -> Any:
    from mmbot.backtest import RunSettings
    from mmbot.sweep.space import apply_quoter_params

    fees = fee_choice(task.profile, None)  # the profile's tier (base unless named)
    maker = -fees.maker_fee_rate if task.fault == FAULT_FEE_RATE_SIGN else None
    s = RunSettings(
        strategy=task.run.strategy,
        knobs=dict(task.knobs),
        profile=task.profile,
        latency_ms=task.run.latency_ms,
        queue_model=task.run.queue_model,
        maker_fee_rate=maker,
        seed=task.run.seed,
    )
    return apply_quoter_params(s, task.quoter_params)


def fee_rates(profile: Profile, part: FoldPart) -> tuple[float, float]:
    """(maker, taker) the part's run uses: the profile's tier of its market's schedule."""
    from mmbot.instruments import detect_spec

    fees = fee_choice(profile, detect_spec(part.data_format, part.symbol))
    return fees.maker_fee_rate, fees.taker_fee_rate


def check_mids(events: list[np.ndarray], results: list[Any]) -> None:
    """Every fill's mid against a book rebuilt independently from the fold's events
    (``audit.crosscheck``): a mismatch fails the trial naming the fill."""
    from mmbot.audit import AuditError
    from mmbot.audit.crosscheck import check_fill_mids

    for ev, res in zip(events, results, strict=True):
        try:
            res.meta["mid_crosscheck"] = check_fill_mids(ev, res, str(res.meta["name"]))
        except AuditError as exc:
            raise TrialCheckError(f"audit: {exc}") from None


def _warm(settings: Any, events: np.ndarray, part: Any) -> float:
    """Load (or compile) the compiled loop on a small slice: the process's one-off compile cost."""
    from mmbot.backtest import run

    if _WARM.get(settings.strategy):
        return 0.0
    t = time.perf_counter()
    run(events[:WARM_EVENTS], settings, tick_px=part.tick_px, lot_qty=part.lot_qty)
    _WARM[settings.strategy] = True
    return time.perf_counter() - t


def warm_up(task: TrialTask, events: np.ndarray) -> float:
    """Compile or load the task's trial loop in this process (seconds; 0 when already warm)."""
    return _warm(_settings(task), events, task.fold.parts[0])


def split_parts(task: TrialTask) -> list[TrialTask]:
    """``task`` as one task per fold part (keys ``KEY#pI``); a one-part fold stays one task, scored
    in the worker (nothing to combine, no records shipped back)."""
    if len(task.fold.parts) <= 1:
        return [task]
    return [
        replace(task, key=f"{task.key}{PART_SEP}{i}", part=i) for i in range(len(task.fold.parts))
    ]


def finish_parts_shipped(task: TrialTask, *parts: TrialOutcome) -> TrialOutcome:
    """``finish_parts`` as a Ray task: the parts' outcomes arrive as its arguments, so their
    records move between workers and never through the driver."""
    return finish_parts(task, list(parts))


def run_trial_shipped(task: TrialTask, *arrays: np.ndarray) -> TrialOutcome:
    """``run_trial`` with the task's part arrays given (Ray passes object-store arrays as arguments)."""
    return run_trial(task, list(arrays))


def _simulate(task: TrialTask, events: list[np.ndarray], settings: Any) -> list[Any]:
    """One run per part of the task (faults injected into the records here), each named."""
    from mmbot.backtest import run

    results = []
    for i, ev in zip(task.parts, events, strict=True):
        part = task.fold.parts[i]
        res = run(
            ev,
            settings,
            symbol=part.symbol,
            tick_px=part.tick_px,
            lot_qty=part.lot_qty,
            data_format=part.data_format,
        )
        res.meta["name"] = f"{task.fold.label}_{part.symbol}"
        if task.fault == FAULT_FEE_RECORD_SIGN:
            res.fills["fee"] = -res.fills["fee"]
        if task.fault == FAULT_MID_RECORD and len(res.fills):
            res.fills["mid_px"][len(res.fills) // 2] *= 1.001
        results.append(res)
    return results


def _check(task: TrialTask, results: list[Any], parts: tuple[int, ...], min_fills: int) -> dict:
    runtime = {"sweep_trial": task.key, "knobs": task.knobs, "strategy": task.run.strategy}
    rates = [fee_rates(task.profile, task.fold.parts[i]) for i in parts]
    return check_trial(results, runtime, [m for m, _ in rates], [t for _, t in rates], min_fills)


def _score(task: TrialTask, results: list[Any], out: TrialOutcome) -> None:
    """Check the trial's runs together (every part), score it and mark ``out`` ok."""
    edge = _check(task, results, tuple(range(len(task.fold.parts))), task.run.min_fills)
    row = kpis(edge, results)
    values = objective_values(row, task.objectives)
    out.kpis = row
    bad = [n for n, v in zip(task.objectives, values, strict=True) if not np.isfinite(v)]
    if bad:
        raise TrialCheckError(f"objective {', '.join(bad)} is not finite")
    out.values = values
    out.ok = True


def _guarded(out: TrialOutcome, body: Any) -> TrialOutcome:
    """Run ``body()``; any failure becomes ``out.reason`` (never raises)."""
    from mmbot.errors import UserError

    try:
        body()
    except TrialCheckError as exc:
        out.reason = str(exc)
    except UserError as exc:
        out.reason = f"input: {exc}"
    except Exception as exc:  # noqa: BLE001 - a crashing trial is a failed trial, with its cause
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        out.reason = f"crash: {type(exc).__name__}: {exc} ({tb.filename}:{tb.lineno})"
    return out


def run_trial(task: TrialTask, arrays: list[np.ndarray] | None = None) -> TrialOutcome:
    """Run, check and score ``task``; never raises (a failure is an outcome with its reason).
    A part task (``task.part`` set) is checked on its own run and returns its records unscored."""
    import os

    out = TrialOutcome(task.key, ok=False, worker=f"pid{os.getpid()}")

    def body() -> None:
        t0 = time.perf_counter()
        events = _fold_arrays(task, arrays)
        out.load_s = time.perf_counter() - t0
        out.events = int(sum(len(e) for e in events))
        settings = _settings(task)
        out.compile_s = _warm(settings, events[0], task.fold.parts[task.parts[0]])
        t1 = time.perf_counter()
        results = _simulate(task, events, settings)
        t2 = time.perf_counter()
        out.sim_s = t2 - t1
        check_mids(events, results)
        if task.part is None:
            _score(task, results, out)
        else:
            _check(task, results, task.parts, 0)
            out.records = results
            out.records_bytes = sum(
                r.fills.nbytes + r.actions.nbytes + r.marks.nbytes for r in results
            )
            out.ok = True
        out.audit_s = time.perf_counter() - t2

    return _guarded(out, body)


def finish_parts(task: TrialTask, parts: list[TrialOutcome]) -> TrialOutcome:
    """The trial's outcome from its part tasks' outcomes (``parts`` in part order): the first
    failed part's reason, or every part's records checked together and scored here (the driver).
    Timings are the parts' sums (``audit_s`` includes this scoring)."""
    out = TrialOutcome(task.key, ok=False, worker=",".join(sorted({p.worker for p in parts})))
    for k in ("load_s", "compile_s", "sim_s", "audit_s", "events", "records_bytes"):
        setattr(out, k, sum(getattr(p, k) for p in parts))
    bad = next((i for i, p in enumerate(parts) if not p.ok), None)
    if bad is not None:
        out.reason = f"part {task.fold.parts[bad].symbol}: {parts[bad].reason}"
        return out
    t0 = time.perf_counter()
    results = [r for p in parts for r in p.records]
    _guarded(out, lambda: _score(task, results, out))
    out.audit_s += time.perf_counter() - t0
    return out
