"""The sweep driver: walk-forward Optuna studies fed by an executor, resumable from their storage.

Walk-forward over folds 0..N-1: step i tunes on fold i (one Optuna study, ``--trials`` trials,
TPE by default) and then evaluates the step's best parameters on fold i+1, which no trial of the
step has seen (out of sample), beside the profile's own parameters on both folds (baseline). The
chosen parameters are the last step's best (tuned on the most recent data); they are judged by their
out-of-sample figures, and the procedure by the out-of-sample figures of every step.

The driver asks Optuna for trials (``study.ask``), hands them to the executor, and tells the
outcomes back: it is the only writer of the storage. Several trials are in flight at once (TPE with
``constant_liar`` so parallel asks spread out). A failed check marks the trial FAILED with its
reason (``fail_reason`` user attribute), never with a value. Interrupted trials (RUNNING in the
storage when a sweep starts) are marked failed as ``interrupted`` and their parameters re-queued;
finished trials and evaluations are kept, so a sweep resumes where it stopped.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from mmbot.config import Profile
from mmbot.errors import UserError
from mmbot.sweep.executors import Executor
from mmbot.sweep.folds import Fold
from mmbot.sweep.space import Space, apply_values, suggest
from mmbot.sweep.trial import TrialOutcome, TrialTask

ATTR_REASON: Final = "fail_reason"
ATTR_INTERRUPTED: Final = "interrupted"
ATTR_KPIS: Final = "kpis"
ATTR_TIMING: Final = "timing"
ATTR_FAULT: Final = "fault"
STUDY_ATTR_SPACE: Final = "space"
STUDY_ATTR_EVALS: Final = "evaluations"
SAMPLERS: Final = ("tpe", "random")
POLL_S: Final = 0.5
# driver seconds spent in the sampler and the storage (ask + suggest + tell), this process
_STORAGE_S = [0.0]


@dataclass
class SweepConfig:
    out: Path
    folds: list[Fold]
    market_label: str
    space: Space
    profile: Profile
    objectives: tuple[str, ...]
    trials: int
    strategy: str = "glft"
    latency_ms: float = 10.0
    queue_model: str = "power2"
    seed: int = 0
    min_fills: int = 10
    storage: str | None = None
    study_name: str = "mmbot-sweep"
    sampler: str = "tpe"
    fixed_params: dict[str, float] = field(default_factory=dict)  # --param: every trial's
    # (step, trial number) -> fault kind (mmbot.sweep.trial.FAULTS): for the tests that prove a
    # broken accounting is caught
    faults: dict[tuple[int, int], str] = field(default_factory=dict)

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(Path(self.out) / 'sweep.db').resolve()}"


@dataclass
class ProgressInfo:
    step: int
    steps: int
    done: int  # trials finished over all steps (this session and before)
    total: int
    failed: int
    best_value: float | None  # best in-sample value of the first objective, this step
    best_params: dict[str, Any]
    eta_s: float | None
    phase: str  # "tune" | "evaluate"


@dataclass
class StepResult:
    step: int
    is_fold: int
    oos_fold: int
    study_name: str
    best_trial: int | None
    best_params: dict[str, Any]
    evaluations: dict[str, dict]  # "best_is" | "best_oos" | "base_is" | "base_oos" -> outcome


@dataclass
class SweepResult:
    config: SweepConfig
    steps: list[StepResult]
    studies: list[Any]
    wall_s: float
    trials_run: int  # trials run by this session (resumed ones excluded)
    tune_s: float = 0.0  # wall time of the tuning phases (evaluations excluded)
    driver_s: float = 0.0  # of which the driver spent in the sampler and the storage
    warm_s: float = 0.0  # the driver's warm-up of the JIT cache before workers start


def _optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def _sampler(cfg: SweepConfig, step: int) -> Any:
    optuna = _optuna()
    seed = cfg.seed * 1000 + step
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True, multivariate=True)
    raise UserError(f"--sampler {cfg.sampler!r}: expected one of {', '.join(SAMPLERS)}")


def _space_key(space: Space) -> list:
    return [asdict(p) for p in space.params]


def open_study(cfg: SweepConfig, step: int) -> Any:
    """The step's study (created, or loaded from the storage and checked to be the same sweep)."""
    optuna = _optuna()
    name = f"{cfg.study_name}.step{step}"
    try:
        study = optuna.create_study(
            storage=cfg.storage_url,
            study_name=name,
            directions=["maximize"] * len(cfg.objectives),
            sampler=_sampler(cfg, step),
            load_if_exists=True,
        )
    except (ValueError, ImportError) as exc:
        raise UserError(f"--storage {cfg.storage_url}: {exc}") from None
    except Exception as exc:  # sqlalchemy: unreachable / unwritable database
        raise UserError(f"--storage {cfg.storage_url}: {type(exc).__name__}: {exc}") from None
    if len(study.directions) != len(cfg.objectives):
        raise UserError(
            f"--storage: study {name} has {len(study.directions)} objective(s), this sweep "
            f"{len(cfg.objectives)} (use another --out or --study-name)"
        )
    want = {"space": _space_key(cfg.space), "objectives": list(cfg.objectives)}
    stored = study.user_attrs.get(STUDY_ATTR_SPACE)
    if stored is None:
        study.set_user_attr(STUDY_ATTR_SPACE, want)
    elif stored != want:
        raise UserError(
            f"--storage: study {name} was run with another space or objective; "
            "use another --out, --storage or --study-name"
        )
    return study


def _requeue_interrupted(study: Any) -> None:
    optuna = _optuna()
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for t in running:
        storage = study._storage
        storage.set_trial_user_attr(t._trial_id, ATTR_INTERRUPTED, True)
        storage.set_trial_user_attr(t._trial_id, ATTR_REASON, "interrupted (re-queued)")
        storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)


def _finished(study: Any) -> list[Any]:
    optuna = _optuna()
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return [
        t
        for t in study.get_trials(deepcopy=False, states=states)
        if not t.user_attrs.get(ATTR_INTERRUPTED)
    ]


def best_trial(study: Any) -> Any | None:
    """Best complete trial: the first objective decides (on a Pareto front: the front's best)."""
    optuna = _optuna()
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return None
    pool = study.best_trials if len(study.directions) > 1 else done
    return max(pool, key=lambda t: (t.values[0], -t.number))


def _task(cfg: SweepConfig, key: str, fold: Fold, values: Mapping[str, Any], fault=None):
    applied = apply_values(values, cfg.space, cfg.profile)
    return TrialTask(
        key=key,
        fold=fold,
        knobs=applied.knobs,
        profile=applied.profile,
        quoter_params={**cfg.fixed_params, **applied.quoter_params},
        objectives=cfg.objectives,
        strategy=cfg.strategy,
        latency_ms=cfg.latency_ms,
        queue_model=cfg.queue_model,
        seed=cfg.seed,
        min_fills=cfg.min_fills,
        fault=fault,
    )


def _record(study: Any, trial: Any, out: TrialOutcome) -> None:
    optuna = _optuna()
    timing = {k: getattr(out, k) for k in ("load_s", "compile_s", "sim_s", "audit_s", "events")}
    timing["worker"] = out.worker
    trial.set_user_attr(ATTR_TIMING, timing)
    if out.ok:
        trial.set_user_attr(ATTR_KPIS, out.kpis)
        study.tell(trial, out.values)
    else:
        trial.set_user_attr(ATTR_REASON, out.reason)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _tune(
    cfg: SweepConfig,
    step: int,
    study: Any,
    executor: Executor,
    report: Callable[[int, str], None],
) -> int:
    """Run the step's remaining trials; returns how many this session ran."""
    _requeue_interrupted(study)
    fold = cfg.folds[step]
    inflight: dict[str, Any] = {}
    ran = 0
    while True:
        remaining = cfg.trials - len(_finished(study)) - len(inflight)
        while remaining > 0 and len(inflight) < executor.workers:
            t_ask = time.perf_counter()
            trial = study.ask()
            values = suggest(trial, cfg.space)
            _STORAGE_S[0] += time.perf_counter() - t_ask
            fault = cfg.faults.get((step, trial.number))
            if fault:
                trial.set_user_attr(ATTR_FAULT, fault)
            key = f"s{step}/t{trial.number}"
            try:
                executor.submit(_task(cfg, key, fold, values, fault))
            except UserError as exc:  # a profile value the schema refuses: this point fails
                trial.set_user_attr(ATTR_REASON, f"input: {exc}")
                study.tell(trial, state=_optuna().trial.TrialState.FAIL)
                remaining -= 1
                continue
            inflight[key] = trial
            remaining -= 1
        if not inflight:
            return ran
        for out in executor.wait(POLL_S):
            t_tell = time.perf_counter()
            _record(study, inflight.pop(out.key), out)
            _STORAGE_S[0] += time.perf_counter() - t_tell
            ran += 1
        report(step, "tune")


def _evaluate(cfg: SweepConfig, step: int, study: Any, executor: Executor) -> StepResult:
    """The step's best on the next fold (out of sample) and the profile's own parameters on both."""
    best = best_trial(study)
    evals: dict[str, dict] = dict(study.user_attrs.get(STUDY_ATTR_EVALS) or {})
    want_key = f"best={best.number if best else None}"
    if evals.get("_for") != want_key:
        evals = {"_for": want_key}
    is_fold, oos_fold = cfg.folds[step], cfg.folds[step + 1]
    tasks = {
        "base_is": _task(cfg, f"s{step}/base_is", is_fold, {}),
        "base_oos": _task(cfg, f"s{step}/base_oos", oos_fold, {}),
    }
    if best is not None:
        tasks["best_oos"] = _task(cfg, f"s{step}/best_oos", oos_fold, best.params)
    todo = {k: t for k, t in tasks.items() if k not in evals}
    keys = {t.key: k for k, t in todo.items()}
    for t in todo.values():
        executor.submit(t)
    while keys:
        for out in executor.wait(POLL_S):
            evals[keys.pop(out.key)] = asdict(out)
    if best is not None:
        evals["best_is"] = {
            "key": f"s{step}/t{best.number}",
            "ok": True,
            "values": list(best.values),
            "kpis": best.user_attrs.get(ATTR_KPIS, {}),
            "reason": "",
        }
    study.set_user_attr(STUDY_ATTR_EVALS, evals)
    return StepResult(
        step=step,
        is_fold=step,
        oos_fold=step + 1,
        study_name=study.study_name,
        best_trial=best.number if best else None,
        best_params=dict(best.params) if best else {},
        evaluations={k: v for k, v in evals.items() if not k.startswith("_")},
    )


def run_sweep(
    cfg: SweepConfig,
    executor: Executor,
    on_progress: Callable[[ProgressInfo], None] | None = None,
) -> SweepResult:
    """Walk forward over ``cfg.folds`` (needs >= 2): tune, evaluate out of sample, next step."""
    if len(cfg.folds) < 2:
        raise UserError("walk-forward needs at least 2 folds (--folds N with N >= 2)")
    if cfg.trials < 1:
        raise UserError(f"--trials {cfg.trials}: must be >= 1")
    steps = len(cfg.folds) - 1
    total = steps * cfg.trials
    Path(cfg.out).mkdir(parents=True, exist_ok=True)  # the default storage lives there
    t0 = time.perf_counter()
    studies = [open_study(cfg, s) for s in range(steps)]
    done0 = sum(len(_finished(s)) for s in studies)
    ran = 0

    def report(step: int, phase: str) -> None:
        if on_progress is None:
            return
        finished = [t for s in studies for t in _finished(s)]
        done = len(finished)
        failed = sum(1 for t in finished if t.state.name == "FAIL")
        new = done - done0
        elapsed = time.perf_counter() - t0
        eta = elapsed / new * (total - done) if new > 0 else None
        best = best_trial(studies[step])
        on_progress(
            ProgressInfo(
                step=step,
                steps=steps,
                done=done,
                total=total,
                failed=failed,
                best_value=best.values[0] if best else None,
                best_params=dict(best.params) if best else {},
                eta_s=eta,
                phase=phase,
            )
        )

    warm_s = warm_cache(cfg) if executor.workers > 1 else 0.0
    storage0 = _STORAGE_S[0]
    results = []
    tune_s = 0.0
    for step, study in enumerate(studies):
        report(step, "tune")
        t_tune = time.perf_counter()
        ran += _tune(cfg, step, study, executor, report)
        tune_s += time.perf_counter() - t_tune
        report(step, "evaluate")
        results.append(_evaluate(cfg, step, study, executor))
    return SweepResult(
        cfg,
        results,
        studies,
        time.perf_counter() - t0,
        ran,
        tune_s,
        driver_s=_STORAGE_S[0] - storage0,
        warm_s=warm_s,
    )


def warm_cache(cfg: SweepConfig) -> float:
    """Run the trial loop once on a small slice here, so the on-disk JIT cache is written before
    K workers start: otherwise, on a cold cache, every worker compiles the same code at once."""
    from mmbot.sweep.folds import load_fold_arrays
    from mmbot.sweep.trial import warm_up

    part = cfg.folds[0].parts[0]
    events = load_fold_arrays(Fold(0, (part,)))[0]
    return warm_up(_task(cfg, "warm", cfg.folds[0], {}), events)
