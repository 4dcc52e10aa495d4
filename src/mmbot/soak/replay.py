"""Counterfactual replays for the auto-tuner: a kept market segment run again with other knobs.

Owns the tuner's replay score (`chunk_score_bps`, from `chunk_net_bps`) and `Replayer`, which
replays the latest kept segments (`mmbot.soak.iteration.Segment`: the real run's events with the
carried book in front, its settings seed and starting account) through `mmbot.backtest.run` with
candidate knobs, caches each (segment, knobs) score, and runs batches in forked worker processes
(`replay_workers`, ``$MM_SOAK_REPLAY_WORKERS``). Replays are pure: results never depend on the
number of workers.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mmbot import env, sim
from mmbot.errors import UserError
from mmbot.soak import autotune
from mmbot.soak.account_carry import AccountCarry
from mmbot.soak.iteration import Segment, make_settings
from mmbot.soak.market import FORK_GATE, Market


def _report_totals(result: Any) -> tuple[float, float, int]:
    """(pnl, turnover, fills) of one run as its EDGE_REPORT's totals sum them
    (``build_edge_report([result])["totals"]``, before non-finite amounts are written as null),
    from the run's digest alone (`digest_runs`: its identity and the simulator's equity asserted,
    AuditError otherwise) instead of the whole report (percentiles, markouts, one section per
    symbol), which a replay does not read and which cost about a fifth of a 30-min replay."""
    from mmbot.audit.decompose import component_totals
    from mmbot.audit.edge_report import digest_runs

    (digest,) = digest_runs([result])
    ct = component_totals(digest.edges)
    # the report sums its one run's amounts from 0.0
    return float(0.0 + ct["pnl"]), float(0.0 + ct["turnover"]), int(len(digest.edges.px))


def run_totals(result: Any) -> tuple[float, float, int]:
    """(pnl, turnover, fills) of one run by the audit; a non-finite amount (null in the report)
    is 0."""
    pnl, turnover, fills = _report_totals(result)
    return (
        pnl if math.isfinite(pnl) else 0.0,
        turnover if math.isfinite(turnover) else 0.0,
        fills,
    )


def chunk_net_bps(result: Any) -> float | None:
    """net_bps of one run by the audit (None when it has no fills / no finite number)."""
    from mmbot.audit.edge_report import amount_bps

    pnl, turnover, fills = _report_totals(result)
    if not fills:
        # the audit books 0 bps for no fills: as a replay score that would make quoting nothing
        # beat any losing knob set (a quoter knob can stop the fills altogether)
        return None
    v = amount_bps(pnl, turnover)  # the report's net_bps
    return float(v) if v is not None and math.isfinite(v) else None


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


def _replay_in_child(task: tuple[int, dict[str, float]]) -> tuple[float | None, int]:
    seg_id, knobs = task
    return _FORK_REPLAYER[0].replay_with_fills(knobs, seg_id)


def _chain_in_child(task: tuple[dict[str, float], list[int]]) -> list[tuple[tuple, Any]]:
    knobs, segs = task
    rp = _FORK_REPLAYER[0]
    rp.chain(knobs, segs)
    key = autotune.knob_key(knobs)
    return [((segs[0], s, key), rp.links[(segs[0], s, key)]) for s in segs]


def replay_workers() -> int:
    """Processes for counterfactual replays: ``$MM_SOAK_REPLAY_WORKERS`` or the usable CPUs (at
    most 2); 1 = replay in this process. Results do not depend on it (replays are pure)."""
    raw = (env.read("MM_SOAK_REPLAY_WORKERS") or "").strip()
    if raw:
        try:
            return max(1, min(int(raw), 8))
        except ValueError:
            raise UserError(
                f"MM_SOAK_REPLAY_WORKERS={raw!r}: expected a whole number of processes"
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
        self.prepared: dict[int, sim.PreparedEvents] = {}  # same keys: the segments' events
        self.cache: dict[tuple[int, tuple], float | None] = {}
        self.fill_counts: dict[tuple[int, tuple], int] = {}  # same keys: fills of that replay
        self.replays = 0
        self._pool: Any = None
        # chained replays (`autotune_chained`): (first segment, segment, knobs) -> the segment's
        # (pnl, turnover, fills) run from the chain's own account, and the account it ended with
        self.links: dict[tuple[int, int, tuple], tuple[float, float, int, AccountCarry]] = {}

    def add(self, seg: Segment, knobs: Mapping[str, float]) -> None:
        self.close()  # a forked pool would not see the new segment
        self.segments[seg.iteration] = seg
        # scanned once here, before any fork: every replay of the segment reuses it
        prep = self._events(seg.iteration)
        prep.local_ts_range, prep.ws_lag_p95_ms  # noqa: B018 - computed once, inherited by forks
        # the real run is the replay of its own knobs: never run it twice
        key = (seg.iteration, autotune.knob_key(knobs))
        self.cache[key] = chunk_score_bps(seg.result)
        self.fill_counts[key] = len(seg.result.fills)
        seg.result = None
        for old in sorted(self.segments)[: -self.keep]:
            del self.segments[old]
            self.prepared.pop(old, None)
            self.cache = {k: v for k, v in self.cache.items() if k[0] != old}
            self.fill_counts = {k: v for k, v in self.fill_counts.items() if k[0] != old}
            self.links = {k: v for k, v in self.links.items() if k[0] != old}

    def ids(self) -> list[int]:
        """Segment ids, latest first."""
        return sorted(self.segments, reverse=True)

    def cached(self, knobs: Mapping[str, float], seg_id: int) -> bool:
        """Whether ``self(knobs, seg_id)`` is already known (costs no replay)."""
        return (seg_id, autotune.knob_key(knobs)) in self.cache

    def fills(self, knobs: Mapping[str, float], seg_id: int) -> int | None:
        """How many fills the replay ``self(knobs, seg_id)`` made (None: not replayed yet); the
        tuner trusts a paired difference only on enough fills (`autotune.MIN_PAIR_FILLS`)."""
        return self.fill_counts.get((seg_id, autotune.knob_key(knobs)))

    def replay(self, knobs: Mapping[str, float], seg_id: int) -> float | None:
        """One replay, uncached."""
        return self.replay_with_fills(knobs, seg_id)[0]

    def replay_with_fills(
        self, knobs: Mapping[str, float], seg_id: int
    ) -> tuple[float | None, int]:
        """One replay, uncached: (score, fills)."""
        res = self._run(knobs, seg_id, self.segments[seg_id].account)
        # scored like the real run's chunk: from the position it carried in, none closed
        return chunk_score_bps(res), len(res.fills)

    def _events(self, seg_id: int) -> sim.PreparedEvents:
        """The segment's events as `mmbot.backtest.run` takes them, scanned at the first replay."""
        prep = self.prepared.get(seg_id)
        if prep is None:
            prep = self.prepared[seg_id] = sim.prepare_events(self.segments[seg_id].events)
        return prep

    def _run(self, knobs: Mapping[str, float], seg_id: int, acct: AccountCarry | None) -> Any:
        """The segment ``seg_id`` run with ``knobs`` from the account ``acct`` (None: flat)."""
        from mmbot.backtest import run as backtest_run

        seg = self.segments[seg_id]
        settings = make_settings(self.prof, knobs, seg.settings_seed)
        res = backtest_run(
            self._events(seg_id),
            acct.settings(settings) if acct is not None else settings,
            symbol=self.mkt.symbol,
            tick_px=self.mkt.tick_px,
            lot_qty=self.mkt.lot_qty,
            data_format=self.mkt.data_format,
        )
        if seg.funding is not None:
            res.meta["funding"] = seg.funding
        return res

    def chain_cost(self, knobs: Mapping[str, float], segments: Sequence[int]) -> int:
        """Segment replays `chain` would run (those not cached)."""
        segs = sorted(segments)
        key = autotune.knob_key(knobs)
        return sum(1 for s in segs if (segs[0], s, key) not in self.links)

    def chain(
        self, knobs: Mapping[str, float], segments: Sequence[int]
    ) -> tuple[float | None, int]:
        """``knobs`` replayed over ``segments`` in order (oldest first), each segment starting
        from the account the previous one ended with (the first from the real run's): (net_bps
        over them all, or None without fills; fills). Each link is cached."""
        pnl, turnover, fills = self.chain_totals(knobs, segments)
        net = pnl / turnover * 1e4 if fills and turnover > 0 else None
        return (net if net is not None and math.isfinite(net) else None), fills

    def chain_totals(
        self, knobs: Mapping[str, float], segments: Sequence[int]
    ) -> tuple[float, float, int]:
        """(pnl, turnover, fills) of ``knobs`` chained over ``segments`` (see `chain`)."""
        segs = sorted(segments)
        key = autotune.knob_key(knobs)
        acct = self.segments[segs[0]].account
        pnl = turnover = 0.0
        fills = 0
        for s in segs:
            link_key = (segs[0], s, key)
            if link_key not in self.links:
                self.links[link_key] = self._link(knobs, s, acct)
                self.replays += 1
            p, t, n, acct = self.links[link_key]
            pnl, turnover, fills = pnl + p, turnover + t, fills + n
        return pnl, turnover, fills

    def prefetch_chains(
        self, knob_sets: Sequence[Mapping[str, float]], segments: Sequence[int]
    ) -> None:
        """Chain every knob set not chained yet, in parallel when there are workers (each chain
        in one worker: its links depend on each other)."""
        segs = sorted(segments)
        todo = list(
            {
                autotune.knob_key(k): dict(k) for k in knob_sets if self.chain_cost(k, segs) > 0
            }.values()
        )
        pool = self._get_pool() if len(todo) >= 2 else None
        if pool is None:
            for k in todo:
                self.chain(k, segs)
            return
        # longest chains first: the workers then finish together (the links are cached by key,
        # so the order changes nothing else)
        todo.sort(key=lambda k: -self.chain_cost(k, segs))
        for links in pool.map(_chain_in_child, [(k, segs) for k in todo], chunksize=1):
            for key, link in links:
                if key not in self.links:
                    self.links[key] = link
                    self.replays += 1

    def _link(
        self, knobs: Mapping[str, float], seg_id: int, acct: AccountCarry | None
    ) -> tuple[float, float, int, AccountCarry]:
        res = self._run(knobs, seg_id, acct)
        pnl, turnover, n = run_totals(res)
        end = copy.deepcopy(acct) if acct is not None else AccountCarry(funded_to_ns=0)
        end.end(res, end.funded_to_ns)
        return pnl, turnover, n, end

    def __call__(self, knobs: Mapping[str, float], seg_id: int) -> float | None:
        key = (seg_id, autotune.knob_key(knobs))
        if key not in self.cache:
            self.cache[key], self.fill_counts[key] = self.replay_with_fills(knobs, seg_id)
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
        for (seg_id, knobs), (net, n_fills) in zip(
            todo, pool.map(_replay_in_child, todo, chunksize=1), strict=True
        ):
            key = (seg_id, autotune.knob_key(knobs))
            self.cache[key], self.fill_counts[key] = net, n_fills
            self.replays += 1

    def _get_pool(self) -> Any:
        if self.workers < 2:
            return None
        if self._pool is None:
            import multiprocessing as mp

            try:
                ctx = mp.get_context("fork")
                _FORK_REPLAYER[:] = [self]
                with FORK_GATE.fork():  # not while a market piece is being generated in a thread
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
