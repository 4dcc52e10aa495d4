"""Where trials run: inline, in local worker processes, or as Ray tasks. One small interface.

``warm(task)`` loads (or compiles) the trial loop where trials will run, before the first trial;
``submit(task)`` hands a ``TrialTask`` over; ``wait(timeout_s)`` returns the outcomes finished
since (at least one unless the timeout passes). The sweep driver is the only process that talks to
the study storage: executors only compute, so K workers or a thousand Ray tasks never contend for
the database.

- ``InlineExecutor``: runs each task in this process when waited on (``--workers 1``).
- ``ProcessExecutor``: ``--workers K`` spawned processes. They share the package's on-disk JIT
  cache (``mmbot.jitcache``: one directory per source digest under ``<package>/__pycache__``, or
  the JIT cache directory the environment names);
  ``warm`` compiles into it in the driver first, so on a cold cache one process compiles, not K.
  Each worker sets the cache up (the pool's initializer) before its first task arrives.
  Each worker loads a fold part from its ``.npy`` once and keeps it (``trial.FOLD_CACHE_BYTES``).
- ``RayExecutor``: ``--ray local|auto|ADDRESS``. Each fold part's array goes into the object store
  once (``ray.put``) and tasks take references, so a cluster's nodes fetch a part once per node
  from the object store instead of needing a shared file system. The JIT cache is per node (each
  node's mmbot install has its own cache directory, keyed by the same source digest): ``warm``
  runs one warm-up task pinned to every node, so each node compiles (or loads its cache) once
  before its workers start trials, instead of every worker of a cold node compiling at once.
  The task functions live in ``mmbot.sweep.remote``, which sets the worker's cache up.
  A trial of several parts is scored by a Ray task too (``submit_combined``: the part tasks'
  outcomes are its arguments), so the parts' records never pass through the driver.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
from collections import deque
from typing import Any, Final, Protocol

import numpy as np

from mmbot.errors import UserError
from mmbot.jitcache import configure as configure_jit_cache
from mmbot.sweep import remote
from mmbot.sweep.trial import WARM_EVENTS, TrialOutcome, TrialTask, run_trial, warm_up

RAY_LOCAL: Final = "local"
LOOPBACK: Final = "127.0.0.1"


def _warm_slice(task: TrialTask) -> np.ndarray:
    """The first WARM_EVENTS events of the task's first part (a private, writable copy: the
    compiled loop is typed for writable arrays)."""
    events = np.load(task.fold.parts[0].path, mmap_mode="r", allow_pickle=False)
    return np.array(events[:WARM_EVENTS])


class Executor(Protocol):
    workers: int

    def warm(self, task: TrialTask) -> float: ...

    def submit(self, task: TrialTask) -> None: ...

    def wait(self, timeout_s: float | None = None) -> list[TrialOutcome]: ...

    def close(self) -> None: ...


class InlineExecutor:
    workers = 1

    def __init__(self) -> None:
        self._queue: deque[TrialTask] = deque()

    def warm(self, task: TrialTask) -> float:
        return 0.0  # the first trial loads the loop here (its compile_s shows the cost)

    def submit(self, task: TrialTask) -> None:
        self._queue.append(task)

    def wait(self, timeout_s: float | None = None) -> list[TrialOutcome]:
        return [run_trial(self._queue.popleft())] if self._queue else []

    def close(self) -> None:
        self._queue.clear()


class ProcessExecutor:
    """``workers`` spawned processes (spawn, not fork: the driver holds threads and a database)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=configure_jit_cache,  # before a task brings the compiled trial loop
        )
        self._futures: set[cf.Future] = set()

    def warm(self, task: TrialTask) -> float:
        """Compile (or load) the loop here, so the workers (same machine, same cache directory)
        find it on disk instead of K of them compiling it at once."""
        return warm_up(task, _warm_slice(task))

    def submit(self, task: TrialTask) -> None:
        self._futures.add(self._pool.submit(run_trial, task))

    def wait(self, timeout_s: float | None = None) -> list[TrialOutcome]:
        if not self._futures:
            return []
        done, _ = cf.wait(self._futures, timeout=timeout_s, return_when=cf.FIRST_COMPLETED)
        self._futures -= done
        return [f.result() for f in done]

    def close(self) -> None:
        for f in self._futures:
            f.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError(
            "--ray: Ray is not installed (it is an optional extra: pip install 'mmbot[ray]')"
        ) from None
    return ray


class RayExecutor:
    """Trials as Ray tasks (one CPU each). ``address``: 'local' starts a private Ray on this
    machine (loopback only, no dashboard: no network), 'auto' joins the cluster this machine
    belongs to (``ray start``), else a cluster address ('ray://HEAD:10001' or 'HEAD:6379')."""

    def __init__(self, address: str, workers: int | None = None) -> None:
        ray = _import_ray()
        self._ray = ray
        kwargs: dict[str, Any] = {
            "ignore_reinit_error": True,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
        }
        if address == RAY_LOCAL:
            kwargs.update(include_dashboard=False, _node_ip_address=LOOPBACK)
            if workers:
                kwargs["num_cpus"] = workers
        else:
            kwargs["address"] = address
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            hint = (
                " (start one with `ray start --head`, or use --ray local)"
                if address == "auto"
                else ""
            )
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"--ray {address}: cannot start or join Ray: {first}{hint}") from None
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._remote = ray.remote(num_cpus=1, max_retries=0)(remote.run_trial_shipped)
        self._combine = ray.remote(num_cpus=1, max_retries=0)(remote.finish_parts_shipped)
        self._refs: dict[Any, str] = {}
        self._parts: dict[Any, list[Any]] = {}  # a combined trial's scoring task -> its parts
        self._part_refs: dict[str, Any] = {}
        self.node_warm_s: dict[str, float] = {}

    def warm(self, task: TrialTask) -> float:
        """One warm-up task pinned to every alive node with CPUs; the slowest node's seconds."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self._ray
        events = ray.put(_warm_slice(task))
        warm = ray.remote(num_cpus=1, max_retries=0)(remote.warm_on_node)
        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU")]
        refs = [
            warm.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=n, soft=False)
            ).remote(task, events)
            for n in nodes
        ]
        self.node_warm_s = dict(ray.get(refs))
        return max(self.node_warm_s.values(), default=0.0)

    def _arrays(self, task: TrialTask) -> list[Any]:
        refs = []
        for i in task.parts:
            path = task.fold.parts[i].path
            ref = self._part_refs.get(path)
            if ref is None:
                ref = self._part_refs[path] = self._ray.put(np.load(path, allow_pickle=False))
            refs.append(ref)
        return refs

    def submit(self, task: TrialTask) -> None:
        ref = self._remote.remote(task, *self._arrays(task))
        self._refs[ref] = task.key

    def submit_combined(self, task: TrialTask, parts: list[TrialTask]) -> None:
        """The part tasks and a task scoring the trial from their outcomes; one outcome (keyed
        ``task.key``) comes back."""
        refs = [self._remote.remote(p, *self._arrays(p)) for p in parts]
        combine = self._combine.remote(task, *refs)
        self._refs[combine] = task.key
        self._parts[combine] = refs

    def busy(self) -> int:
        """CPUs the tasks in flight hold: a combined trial holds one per part still running, then
        one for its scoring task (so a finished part frees its CPU for the next trial)."""
        pending = [r for refs in self._parts.values() for r in refs]
        ready = (
            set(self._ray.wait(pending, num_returns=len(pending), timeout=0)[0])
            if pending
            else set()
        )
        n = sum(1 for r in self._refs if r not in self._parts)
        for combine, refs in self._parts.items():
            self._parts[combine] = left = [r for r in refs if r not in ready]
            n += len(left) or 1
        return n

    def wait(self, timeout_s: float | None = None) -> list[TrialOutcome]:
        if not self._refs:
            return []
        done, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout_s)
        outs = []
        for ref in done:
            key = self._refs.pop(ref)
            self._parts.pop(ref, None)
            try:
                outs.append(self._ray.get(ref))
            except Exception as exc:  # noqa: BLE001 - a lost worker is a failed trial
                outs.append(TrialOutcome(key, ok=False, reason=f"ray: {type(exc).__name__}: {exc}"))
        return outs

    def close(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs.clear()
        self._parts.clear()
        self._part_refs.clear()
        self._ray.shutdown()


def make_executor(workers: int, ray_address: str | None) -> Executor:
    if ray_address:
        return RayExecutor(ray_address, workers if ray_address == RAY_LOCAL else None)
    if workers < 1:
        raise UserError(f"--workers {workers}: must be >= 1")
    return InlineExecutor() if workers == 1 else ProcessExecutor(workers)
