"""The sweep driver: walk-forward Optuna studies fed by an executor, resumable from their storage.

Walk-forward over folds 0..N-1: step i tunes on fold i (one Optuna study, ``--trials`` trials,
TPE by default) and then evaluates the step's best parameters on fold i+1, which no trial of the
step has seen (out of sample), beside the profile's own parameters on every fold (baseline). The
chosen parameters are the last step's best (tuned on the most recent data); they are judged by their
out-of-sample figures, and the procedure by the out-of-sample figures of every step.

Steps are independent (step i's tuning never looks at fold j), so they run concurrently: one loop
keeps the executor full with units of work, in this order of preference: the out-of-sample
evaluation of a step whose tuning is done, a trial of the step with the fewest trials in flight
(so each study has as few pending trials as possible, which keeps TPE's constant liar from
spreading its samples blindly), then the baselines (once per fold, shared by the two steps that
use it). ``SweepConfig.steps_in_flight`` caps how many steps tune at once (0: all). A unit on a fold
of several parts (symbols) is one executor task per part; the unit is scored when its last part
is in (``mmbot.sweep.trial.finish_parts``; by the driver, or by a Ray task when the executor can
``submit_combined``). "Full" is one task per worker: the executor's own count of CPUs held
(``busy()``) when it has one, else the parts in flight.

The driver asks Optuna for trials (``study.ask``), hands them to the executor, and tells the
outcomes back: it is the only writer of the storage. A failed check marks the trial FAILED with its
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
from mmbot.sweep.trial import TrialOutcome, TrialRun, TrialTask, finish_parts, split_parts

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
    run: TrialRun = TrialRun()  # every trial's quoter, latency, queue model, seed, min fills
    storage: str | None = None
    study_name: str = "mmbot-sweep"
    sampler: str = "tpe"
    fixed_params: dict[str, float] = field(default_factory=dict)  # --param: every trial's
    steps_in_flight: int = 0  # walk-forward steps tuning at once (0: all)
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
    steps_tuning: int = 1  # steps with trials left or in flight


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
    warm_s: float = 0.0  # the executor's warm-up of the JIT cache before trials start
    tasks_run: int = 0  # executor tasks (one per trial and fold part, and per evaluation part)
    combine_s: float = 0.0  # driver seconds scoring multi-part trials from their parts' records


def _optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def _sampler(cfg: SweepConfig, step: int) -> Any:
    optuna = _optuna()
    seed = cfg.run.seed * 1000 + step
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
        run=cfg.run,
        fault=fault,
    )


def _record(study: Any, trial: Any, out: TrialOutcome) -> None:
    optuna = _optuna()
    keys = ("load_s", "compile_s", "sim_s", "audit_s", "events", "records_bytes")
    timing = {k: getattr(out, k) for k in keys}
    timing["worker"] = out.worker
    trial.set_user_attr(ATTR_TIMING, timing)
    if out.ok:
        trial.set_user_attr(ATTR_KPIS, out.kpis)
        study.tell(trial, out.values)
    else:
        trial.set_user_attr(ATTR_REASON, out.reason)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _eval_dict(out: TrialOutcome) -> dict:
    d = asdict(out)
    d.pop("records", None)
    return d


@dataclass
class _Unit:
    """A trial or an evaluation in flight: its task and its parts' outcomes as they arrive."""

    step: int
    role: str  # ROLE_TRIAL | ROLE_BEST_OOS | ROLE_BASE
    task: TrialTask
    part_keys: list[str]
    trial: Any = None
    fold: int = -1  # the baseline's fold
    slots: int = 1  # executor tasks it holds (one per fold part)
    outcomes: dict[str, TrialOutcome] = field(default_factory=dict)


ROLE_TRIAL: Final = "trial"
ROLE_BEST_OOS: Final = "best_oos"
ROLE_BASE: Final = "base"


class _Walk:
    """The walk-forward loop's state: per step its study, counts and evaluations; the units in
    flight; which unit goes next (see the module docstring)."""

    def __init__(self, cfg: SweepConfig, studies: list[Any], executor: Executor) -> None:
        self.cfg, self.studies, self.executor = cfg, studies, executor
        n = len(studies)
        done = [_finished(s) for s in studies]
        self.finished = [len(d) for d in done]
        self.failed = [sum(1 for t in d if t.state.name == "FAIL") for d in done]
        self.inflight = [0] * n  # trials in flight per step
        self.tuned = [False] * n
        self.best: list[Any] = [None] * n
        self.evals: list[dict] = [dict(s.user_attrs.get(STUDY_ATTR_EVALS) or {}) for s in studies]
        self.base: dict[int, dict] = {}  # fold -> the profile's own parameters' outcome
        for i, ev in enumerate(self.evals):
            if "base_is" in ev:
                self.base[i] = ev["base_is"]
            if "base_oos" in ev:
                self.base[i + 1] = ev["base_oos"]
        self.units: dict[str, _Unit] = {}
        self.owner: dict[str, str] = {}  # task key -> unit key
        self.parts_inflight = 0
        self.ran = self.tasks = 0
        self.combine_s = 0.0
        self.last_trial_t: float | None = None

    # -- what runs next ------------------------------------------------------------------------
    def _mark_tuned(self) -> None:
        for i, study in enumerate(self.studies):
            if self.tuned[i] or self.inflight[i] or self.finished[i] < self.cfg.trials:
                continue
            self.tuned[i] = True
            best = self.best[i] = best_trial(study)
            want = f"best={best.number if best else None}"
            if self.evals[i].get("_for") != want:  # resumed with another best: judge it afresh
                self.evals[i] = {k: v for k, v in self.evals[i].items() if k.startswith("base")}
                self.evals[i]["_for"] = want

    def _next_best_oos(self) -> _Unit | None:
        for i, done in enumerate(self.tuned):
            key = f"s{i}/{ROLE_BEST_OOS}"
            best = self.best[i]
            if done and best and ROLE_BEST_OOS not in self.evals[i] and key not in self.units:
                task = _task(self.cfg, key, self.cfg.folds[i + 1], best.params)
                return self._unit(i, ROLE_BEST_OOS, task)
        return None

    def _trial_step(self) -> int | None:
        open_steps = [i for i, done in enumerate(self.tuned) if not done]
        if self.cfg.steps_in_flight > 0:
            open_steps = open_steps[: self.cfg.steps_in_flight]
        want = [i for i in open_steps if self.cfg.trials - self.finished[i] - self.inflight[i] > 0]
        # fewest in flight first (TPE's liar), then the least advanced (steps progress together)
        return (
            min(want, key=lambda i: (self.inflight[i], self.finished[i] + self.inflight[i], i))
            if want
            else None
        )

    def _next_trial(self) -> _Unit | None:
        while (step := self._trial_step()) is not None:
            study = self.studies[step]
            t_ask = time.perf_counter()
            trial = study.ask()
            values = suggest(trial, self.cfg.space)
            _STORAGE_S[0] += time.perf_counter() - t_ask
            fault = self.cfg.faults.get((step, trial.number))
            if fault:
                trial.set_user_attr(ATTR_FAULT, fault)
            key = f"s{step}/t{trial.number}"
            try:
                task = _task(self.cfg, key, self.cfg.folds[step], values, fault)
            except UserError as exc:  # a profile value the schema refuses: this point fails
                trial.set_user_attr(ATTR_REASON, f"input: {exc}")
                study.tell(trial, state=_optuna().trial.TrialState.FAIL)
                self.finished[step] += 1
                self.failed[step] += 1
                self._mark_tuned()
                continue
            self.inflight[step] += 1
            return self._unit(step, ROLE_TRIAL, task, trial)
        return None

    def _next_base(self) -> _Unit | None:
        for k, fold in enumerate(self.cfg.folds):
            key = f"f{k}/{ROLE_BASE}"
            if k not in self.base and key not in self.units:
                unit = self._unit(max(k - 1, 0), ROLE_BASE, _task(self.cfg, key, fold, {}))
                unit.fold = k
                return unit
        return None

    def _unit(self, step: int, role: str, task: TrialTask, trial: Any = None) -> _Unit:
        parts = split_parts(task)
        combined = getattr(self.executor, "submit_combined", None)
        if combined is not None and len(parts) > 1:  # the executor scores the parts itself
            unit = _Unit(step, role, task, [task.key], trial, slots=len(parts))
            self.owner[task.key] = task.key
            combined(task, parts)
        else:
            unit = _Unit(step, role, task, [p.key for p in parts], trial, slots=len(parts))
            for p in parts:
                self.owner[p.key] = task.key
                self.executor.submit(p)
        self.units[task.key] = unit
        self.parts_inflight += len(parts)
        self.tasks += len(parts)
        return unit

    def fill(self) -> None:
        """Submit units until every worker has a task (or nothing is left to start)."""
        self._mark_tuned()
        busy = getattr(self.executor, "busy", lambda: self.parts_inflight)
        while busy() < self.executor.workers:
            if not (self._next_best_oos() or self._next_trial() or self._next_base()):
                return

    # -- what came back ------------------------------------------------------------------------
    def arrive(self, out: TrialOutcome) -> _Unit | None:
        """File a task's outcome; returns its unit when that unit is complete (and recorded)."""
        unit = self.units[self.owner.pop(out.key)]
        unit.outcomes[out.key] = out
        # a part's task frees its worker; a combined outcome frees all the unit's
        self.parts_inflight -= unit.slots // len(unit.part_keys)
        if len(unit.outcomes) < len(unit.part_keys):
            return None
        del self.units[unit.task.key]
        if unit.task.key in unit.outcomes:  # one task ran the whole fold and scored it
            result = unit.outcomes[unit.task.key]
        else:
            t0 = time.perf_counter()
            result = finish_parts(unit.task, [unit.outcomes[k] for k in unit.part_keys])
            self.combine_s += time.perf_counter() - t0
        if unit.role == ROLE_TRIAL:
            t_tell = time.perf_counter()
            _record(self.studies[unit.step], unit.trial, result)
            _STORAGE_S[0] += time.perf_counter() - t_tell
            self.finished[unit.step] += 1
            self.failed[unit.step] += 0 if result.ok else 1
            self.inflight[unit.step] -= 1
            self.ran += 1
            self.last_trial_t = time.perf_counter()
        elif unit.role == ROLE_BEST_OOS:
            self.evals[unit.step][ROLE_BEST_OOS] = _eval_dict(result)
            self._store(unit.step)
        else:
            self.base[unit.fold] = _eval_dict(result)
            for step, name in ((unit.fold, "base_is"), (unit.fold - 1, "base_oos")):
                if 0 <= step < len(self.studies):
                    self.evals[step][name] = self.base[unit.fold]
                    self._store(step)
        return unit

    def _store(self, step: int) -> None:
        self.studies[step].set_user_attr(STUDY_ATTR_EVALS, self.evals[step])

    def step_result(self, step: int) -> StepResult:
        best, evals = self.best[step], dict(self.evals[step])
        if best is not None:
            evals["best_is"] = {
                "key": f"s{step}/t{best.number}",
                "ok": True,
                "values": list(best.values),
                "kpis": best.user_attrs.get(ATTR_KPIS, {}),
                "reason": "",
            }
        return StepResult(
            step=step,
            is_fold=step,
            oos_fold=step + 1,
            study_name=self.studies[step].study_name,
            best_trial=best.number if best else None,
            best_params=dict(best.params) if best else {},
            evaluations={k: v for k, v in evals.items() if not k.startswith("_")},
        )


def run_sweep(
    cfg: SweepConfig,
    executor: Executor,
    on_progress: Callable[[ProgressInfo], None] | None = None,
) -> SweepResult:
    """Walk forward over ``cfg.folds`` (needs >= 2): every step tuned and judged out of sample."""
    if len(cfg.folds) < 2:
        raise UserError("walk-forward needs at least 2 folds (--folds N with N >= 2)")
    if cfg.trials < 1:
        raise UserError(f"--trials {cfg.trials}: must be >= 1")
    steps = len(cfg.folds) - 1
    total = steps * cfg.trials
    Path(cfg.out).mkdir(parents=True, exist_ok=True)  # the default storage lives there
    t0 = time.perf_counter()
    studies = [open_study(cfg, s) for s in range(steps)]
    for study in studies:
        _requeue_interrupted(study)
    walk = _Walk(cfg, studies, executor)
    done0 = sum(walk.finished)

    def report(step: int) -> None:
        if on_progress is None:
            return
        done = sum(walk.finished)
        failed = sum(walk.failed)
        new = done - done0
        eta = (time.perf_counter() - t0) / new * (total - done) if new > 0 else None
        best = best_trial(studies[step])
        tuning = sum(1 for d in walk.tuned if not d)
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
                phase="tune" if tuning else "evaluate",
                steps_tuning=tuning,
            )
        )

    warm_s = executor.warm(_task(cfg, "warm", cfg.folds[0], {}))
    storage0 = _STORAGE_S[0]
    t_loop = time.perf_counter()
    report(0)
    while True:
        walk.fill()
        if not walk.units:
            break
        for out in executor.wait(POLL_S):
            unit = walk.arrive(out)
            if unit is not None:
                report(unit.step)
    tune_end = walk.last_trial_t if walk.last_trial_t is not None else t_loop
    return SweepResult(
        cfg,
        [walk.step_result(s) for s in range(steps)],
        studies,
        time.perf_counter() - t0,
        walk.ran,
        tune_end - t_loop,
        driver_s=_STORAGE_S[0] - storage0,
        warm_s=warm_s,
        tasks_run=walk.tasks,
        combine_s=walk.combine_s,
    )
