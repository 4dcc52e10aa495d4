"""One sweep trial: run a parameter set on one fold, check it, score it. Runs in any process.

``run_trial(task)`` is a pure function of its ``TrialTask`` (picklable: plain values, a Profile and
fold file paths), so the same code runs inline, in a local process pool or as a Ray task. A worker
keeps the folds it has read (``_FOLD_CACHE``) and warms the compiled loop once (``_WARM``), and the
outcome splits the trial's wall time into data loading, compile (cache load or compilation of the
compiled loop, first trial of a process only), simulation and audit.

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
from dataclasses import dataclass, field
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

_FOLD_CACHE: dict[str, np.ndarray] = {}
_WARM: dict[str, bool] = {}


@dataclass(frozen=True)
class TrialTask:
    key: str  # the driver's handle for this task (e.g. "s0/t12", "s0/oos")
    fold: Fold
    knobs: dict[str, float]
    profile: Profile
    quoter_params: dict[str, Any]
    objectives: tuple[str, ...]
    strategy: str = "glft"
    latency_ms: float = 10.0
    queue_model: str = "power2"
    seed: int = 0
    min_fills: int = 10
    fault: str | None = None


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


def _fold_arrays(fold: Fold, arrays: list[np.ndarray] | None) -> list[np.ndarray]:
    if arrays is not None:  # shipped (Ray object store): read-only views -> one private copy
        return [a if a.flags.writeable else np.array(a) for a in arrays]
    out = []
    for part in fold.parts:
        ev = _FOLD_CACHE.get(part.path)
        if ev is None:
            _FOLD_CACHE.clear()  # one fold in memory per worker: a sweep moves fold by fold
            ev = _FOLD_CACHE[part.path] = np.load(part.path, allow_pickle=False)
        out.append(ev)
    return out


def _settings(task: TrialTask) -> Any:
    from mmbot.backtest import RunSettings
    from mmbot.sweep.space import apply_quoter_params

    fees = fee_choice(task.profile, None)  # the profile's tier (base unless named)
    maker = -fees.maker_fee_rate if task.fault == FAULT_FEE_RATE_SIGN else None
    s = RunSettings(
        strategy=task.strategy,
        knobs=dict(task.knobs),
        profile=task.profile,
        latency_ms=task.latency_ms,
        queue_model=task.queue_model,
        maker_fee_rate=maker,
        seed=task.seed,
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


def run_trial_shipped(task: TrialTask, *arrays: np.ndarray) -> TrialOutcome:
    """``run_trial`` with the fold's arrays given (Ray passes object-store arrays as arguments)."""
    return run_trial(task, list(arrays))


def run_trial(task: TrialTask, arrays: list[np.ndarray] | None = None) -> TrialOutcome:
    """Run, check and score ``task``; never raises (a failure is an outcome with its reason)."""
    import os

    from mmbot.backtest import run
    from mmbot.errors import UserError

    out = TrialOutcome(task.key, ok=False, worker=f"pid{os.getpid()}")
    try:
        t0 = time.perf_counter()
        events = _fold_arrays(task.fold, arrays)
        out.load_s = time.perf_counter() - t0
        out.events = int(sum(len(e) for e in events))
        settings = _settings(task)
        out.compile_s = _warm(settings, events[0], task.fold.parts[0])
        t1 = time.perf_counter()
        results = []
        for part, ev in zip(task.fold.parts, events, strict=True):
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
        t2 = time.perf_counter()
        out.sim_s = t2 - t1
        check_mids(events, results)
        runtime = {"sweep_trial": task.key, "knobs": task.knobs, "strategy": task.strategy}
        rates = [fee_rates(task.profile, part) for part in task.fold.parts]
        edge = check_trial(
            results, runtime, [m for m, _ in rates], [t for _, t in rates], task.min_fills
        )
        row = kpis(edge, results)
        values = objective_values(row, task.objectives)
        out.audit_s = time.perf_counter() - t2
        out.kpis = row
        bad = [n for n, v in zip(task.objectives, values, strict=True) if not np.isfinite(v)]
        if bad:
            raise TrialCheckError(f"objective {', '.join(bad)} is not finite")
        out.values = values
        out.ok = True
    except TrialCheckError as exc:
        out.reason = str(exc)
    except UserError as exc:
        out.reason = f"input: {exc}"
    except Exception as exc:  # noqa: BLE001 - a crashing trial is a failed trial, with its cause
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        out.reason = f"crash: {type(exc).__name__}: {exc} ({tb.filename}:{tb.lineno})"
    return out
