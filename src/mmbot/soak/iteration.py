"""One soak iteration's market run as consecutive chunks, each carrying the previous one's state.

Owns `run_iteration`: each chunk of at most `market.CHUNK_NS` runs through `mmbot.backtest.run` with
the iteration's knobs (`make_settings`), starting from the order book the previous chunk left
(`mmbot.soak.book_carry`) and from the position and cash it ended with
(`mmbot.soak.account_carry`: the quoter sees the carried position from its first wake); every chunk
is audited (`audit_chunk`: fill mids against an independently rebuilt book, the synthetic market's
funding); only the soak's very end position is closed at taker cost (`mmbot.soak.closeout`). Events
are dropped as soon as their chunk ran, except the iteration's last chunk, kept as a `Segment` for
the tuner's counterfactual replays (`mmbot.soak.replay`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmbot import sim
from mmbot.knobs import split_knobs
from mmbot.soak import market as soak_market
from mmbot.soak.account_carry import AccountCarry
from mmbot.soak.market import Market, derive_seed


def make_settings(prof: Any, knobs: Mapping[str, float], seed: int) -> Any:
    """The run settings of a knob set: the runtime knobs, and its quoter knobs (``param.NAME``)
    as the quoter's parameters over the profile's."""
    from mmbot.backtest import RunSettings

    runtime, params = split_knobs(knobs)
    return RunSettings(knobs=runtime, params=params, profile=prof, seed=seed)


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
    ahead_ns: int = 0,
) -> list[Any]:
    """Run ``duration_ns`` of market from ``start_ns`` with ``knobs``; one RunResult per chunk.

    Each chunk starts from the book and the position the previous one left:
    ``account`` (a soak's, advanced here in place; None: flat from ``start_ns``). With
    ``close_end`` the last chunk's end position is closed at taker cost, booked
    (`mmbot.soak.closeout`): a soak does so at its very end only. The guards see the account's
    figures (the soak's PnL, `AccountCarry`): once the kill switch has latched, no further chunk
    runs and the last one's position is closed (the soak stops there, `mmbot.soak.limits`).

    Events of a chunk are dropped as soon as its run is done (only records are kept), except the
    last chunk's when ``segment_out`` is given: it receives that chunk as a `Segment` (events with
    the carried book in front, settings seed, starting account, the run before any close-out), so
    the tuner can replay it with other knobs from exactly the state the real run started from.

    ``ahead_ns``: the market after this window that a synthetic market generates in the
    background meanwhile (the next iteration's; `Market.run_chunks`)."""
    from mmbot.backtest import run as backtest_run
    from mmbot.soak.closeout import close_at_taker

    settings_seed = derive_seed(seed, iteration, 1_000_000)
    settings = make_settings(prof, knobs, settings_seed)
    acct = account if account is not None else AccountCarry(funded_to_ns=int(start_ns))
    results = []
    last_events: sim.PreparedEvents | None = None
    last_start: AccountCarry | None = None
    # a chunk after the first starts from the book the previous one left behind (in front)
    chunks = mkt.run_chunks(seed, start_ns, duration_ns, ahead_ns)
    for chunk_no, (run_events, n_book) in enumerate(chunks):
        if len(run_events) == n_book:
            continue
        # scanned once: the run, and the tuner's replays of the iteration's last chunk, use it
        prep = sim.prepare_events(run_events)
        res = backtest_run(
            prep,
            acct.settings(settings),
            symbol=mkt.symbol,
            tick_px=mkt.tick_px,
            lot_qty=mkt.lot_qty,
            data_format=mkt.data_format,
        )
        res.meta["name"] = f"iter{iteration:03d}_chunk{chunk_no:03d}"
        w0 = start_ns + chunk_no * soak_market.CHUNK_NS  # the chunk's window, as mkt.chunks
        w1 = min(w0 + soak_market.CHUNK_NS, start_ns + duration_ns)
        last_start = copy.copy(acct)
        acct.begin(res)
        audit_chunk(mkt, run_events, res, acct.funding_window(w1))
        last_events = prep if segment_out is not None else None
        acct.end(res, w1)
        results.append(res)
        if on_chunk is not None:
            on_chunk(int(run_events["exch_ts"][-1]))
        del run_events, prep
        if acct.killed:
            break
    if segment_out is not None and last_events is not None and results:
        funding = results[-1].meta.get("funding")
        segment_out.append(
            Segment(iteration, last_events, settings_seed, results[-1], funding, last_start)
        )
    if (close_end or acct.killed) and results:
        results[-1] = close_at_taker(results[-1])
    return results


def audit_chunk(mkt: Market, events: np.ndarray, res: Any, window: tuple[int, int]) -> None:
    """What the soak checks and books on a chunk's run before any close-out: every fill's mid
    against a book rebuilt independently from the chunk's input (``audit.crosscheck``; an
    AuditError names the fill and fails the soak), and on a synthetic market the funding the
    chunk pays over the funding ``window`` (``funding_for_chunk``)."""
    from mmbot.audit.crosscheck import check_fill_mids, rebuild_mids

    mids = None
    tick = res.meta.get("tick_px")
    if (
        mkt.funding is not None
        and isinstance(tick, float | int)
        and math.isfinite(tick)
        and tick > 0
    ):
        mids = rebuild_mids(events, float(tick))  # the book's mid path: read by both checks
    res.meta["mid_crosscheck"] = check_fill_mids(events, res, str(res.meta["name"]), mids)
    if mkt.funding is not None:
        res.meta["funding"] = funding_for_chunk(mkt.funding, events, res.meta, window, mids)


def funding_for_chunk(
    accrual: Any,
    events: np.ndarray,
    meta: dict,
    window: tuple[int, int],
    mids: tuple[np.ndarray, np.ndarray] | None = None,
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

    ts, mid = mids if mids is not None else rebuild_mids(events, float(meta["tick_px"]))
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
    # carried book snapshot + the chunk's events (the real run's input), scanned once
    events: sim.PreparedEvents
    settings_seed: int
    result: Any  # the real run's RunResult on it (before any close-out)
    funding: dict | None = None  # the funding the real run was charged (replays pay the same)
    account: AccountCarry | None = None  # the account the real run started from (None: flat)
