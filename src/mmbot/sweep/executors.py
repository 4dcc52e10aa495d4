"""Where trials run: inline, in local worker processes, or as Ray tasks. One small interface.

``submit(task)`` hands a ``TrialTask`` over; ``wait(timeout_s)`` returns the outcomes finished
since (at least one unless the timeout passes). The sweep driver is the only process that talks to
the study storage: executors only compute, so K workers or a thousand Ray tasks never contend for
the database.

- ``InlineExecutor``: runs each task in this process when waited on (``--workers 1``).
- ``ProcessExecutor``: ``--workers K`` spawned processes. They share the package's on-disk JIT
  cache (``mmbot.jitcache``), so only the first process ever compiles; each loads a fold from its
  ``.npy`` once and keeps it while the sweep stays on that fold.
- ``RayExecutor``: ``--ray ADDRESS|auto|local``. Each fold's arrays go into the object store once
  (``ray.put``) and tasks take references, so a cluster's nodes fetch a fold once per node from
  the object store instead of needing a shared file system.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections import deque
from typing import Any, Protocol

from mmbot.errors import UserError
from mmbot.sweep.trial import TrialOutcome, TrialTask, run_trial, run_trial_shipped


class Executor(Protocol):
    workers: int

    def submit(self, task: TrialTask) -> None: ...

    def wait(self, timeout_s: float | None = None) -> list[TrialOutcome]: ...

    def close(self) -> None: ...


class InlineExecutor:
    workers = 1

    def __init__(self) -> None:
        self._queue: deque[TrialTask] = deque()

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
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        )
        self._futures: set[cf.Future] = set()

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
    machine (no network), 'auto' joins the cluster this machine belongs to, else a cluster
    address ('ray://HEAD:10001' or 'HEAD:6379')."""

    def __init__(self, address: str, workers: int | None = None) -> None:
        ray = _import_ray()
        self._ray = ray
        kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
        if address == "local":
            kwargs["include_dashboard"] = False
            if workers:
                kwargs["num_cpus"] = workers
        else:
            kwargs["address"] = address
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"--ray {address}: cannot start or join Ray: {exc}") from None
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_trial_shipped)
        self._refs: dict[Any, str] = {}
        self._fold_refs: dict[int, list[Any]] = {}

    def _arrays(self, task: TrialTask) -> list[Any]:
        from mmbot.sweep.folds import load_fold_arrays

        refs = self._fold_refs.get(task.fold.index)
        if refs is None:
            refs = [self._ray.put(a) for a in load_fold_arrays(task.fold)]
            self._fold_refs[task.fold.index] = refs
        return refs

    def submit(self, task: TrialTask) -> None:
        ref = self._remote.remote(task, *self._arrays(task))
        self._refs[ref] = task.key

    def wait(self, timeout_s: float | None = None) -> list[TrialOutcome]:
        if not self._refs:
            return []
        done, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout_s)
        outs = []
        for ref in done:
            key = self._refs.pop(ref)
            try:
                outs.append(self._ray.get(ref))
            except Exception as exc:  # noqa: BLE001 - a lost worker is a failed trial
                outs.append(TrialOutcome(key, ok=False, reason=f"ray: {type(exc).__name__}: {exc}"))
        return outs

    def close(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs.clear()
        self._fold_refs.clear()
        self._ray.shutdown()


def make_executor(workers: int, ray_address: str | None) -> Executor:
    if ray_address:
        return RayExecutor(ray_address, workers if ray_address == "local" else None)
    if workers < 1:
        raise UserError(f"--workers {workers}: must be >= 1")
    return InlineExecutor() if workers == 1 else ProcessExecutor(workers)
