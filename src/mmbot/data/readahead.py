"""Read-ahead: apply a pure per-item function to the next items on worker threads while the
consumer works on the current one, yielding the results in order.

The Binance reader maps its numba block scan (which releases the GIL) this way, so blocks are
scanned on both cores while the main thread inflates the next block and orders and replays the
previous one. The consumer gets the same results in the same order, and an exception raised by the
item source after the results of the items before it, as without threads; with one usable core
everything runs inline (threads would only add switches). At most ``depth`` items are in flight
(bounded memory).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


def map_ahead(fn: Callable[[T], R], items: Iterable[T], depth: int = 2) -> Iterator[R]:
    """``fn(item)`` for each item of ``items`` in order, up to ``depth`` computed ahead on
    ``min(depth, usable_cpus())`` worker threads (inline when that is below 2)."""
    workers = min(depth, usable_cpus())
    if workers < 2:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmbot-read-ahead")
    in_flight: deque[Future] = deque()
    source = iter(items)
    source_error: Exception | None = None
    try:
        while True:
            try:
                item = next(source)
            except StopIteration:
                break
            except Exception as exc:  # the results of the items before it come out first
                source_error = exc
                break
            in_flight.append(pool.submit(fn, item))
            if len(in_flight) > depth:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
        if source_error is not None:
            raise source_error
    finally:
        # done, failed or abandoned by the consumer: no thread outlives the read
        pool.shutdown(wait=True, cancel_futures=True)
