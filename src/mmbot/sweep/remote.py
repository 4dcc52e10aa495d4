"""The functions the sweep's Ray workers run. A Ray worker imports this module to load a task's
function before it unpacks the task's arguments (a ``TrialTask`` brings the compiled trial loop
with it), so this module is the worker's entry point: it sets up the JIT cache
(``mmbot.jitcache.configure``, one directory per source digest on each node) and imports the trial
code only inside the functions. The spawned local workers do the same through their pool's
initializer (``mmbot.sweep.executors.ProcessExecutor``)."""

from __future__ import annotations

import time
from typing import Any

from mmbot.jitcache import configure

configure()


def run_trial_shipped(task: Any, *arrays: Any) -> Any:
    """``mmbot.sweep.trial.run_trial_shipped`` (a trial with its part arrays given)."""
    from mmbot.sweep.trial import run_trial_shipped as run

    return run(task, *arrays)


def finish_parts_shipped(task: Any, *parts: Any) -> Any:
    """``mmbot.sweep.trial.finish_parts_shipped`` (score a trial from its parts' outcomes)."""
    from mmbot.sweep.trial import finish_parts_shipped as finish

    return finish(task, *parts)


def warm_on_node(task: Any, events: Any) -> tuple[str, float]:
    """Warm the trial loop in this node's cache; (node id, seconds)."""
    import numpy as np
    import ray

    from mmbot.sweep.trial import warm_up

    t0 = time.perf_counter()
    warm_up(task, np.array(events))
    return ray.get_runtime_context().get_node_id(), time.perf_counter() - t0
