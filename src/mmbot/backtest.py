"""The backtest: one compiled loop driving the simulated venue with the strategy and guards inside.

Owns ``RunSettings``, ``run`` (events -> ``RunResult``) and ``backtest_files`` (what ``mmbot backtest``
runs; its console is ``mmbot.commands.backtest``'s).

The loop (``_drive``, ``@njit(cache=True)``) wakes on every local feed event, every order response
and at least every ``wake_interval_ms``; on each wake it feeds new local trades to the intensity
estimator and newly learnt own fills to the slippage EWMA, builds the book and own-order views,
calls ``strategy.glft.step`` (targets on every wake, passed to the venue's ``set_targets`` so fills
carry them), and runs the order manager and guards per side (``execution.manager.manage_side``),
copying each INTENDED / BLOCKED row into the venue's action buffer before sending. Knobs travel in a
numeric record (``PARAMS_DTYPE``): new knobs reuse the cached machine code.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mmbot import sim
from mmbot.config import Profile, effective_knobs, load_profile
from mmbot.config.run import RunConfig
from mmbot.engine import wake as wk
from mmbot.engine.build import compile_error, compiled_loop, is_builtin
from mmbot.errors import UserError
from mmbot.events import (
    DEPTH_BBO_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    KIND_MASK,
    TRADE_EVENT,
    opening_prices,
)
from mmbot.execution import guards
from mmbot.instruments import ContractSpec, detect_spec
from mmbot.records import ACTION_DTYPE, REASON_NAMES, RunResult
from mmbot.sim.config import VenueSettings
from mmbot.strategy.contract import new_views
from mmbot.strategy.glft import SWEEP_GAP_NS  # noqa: F401  (re-exported: the live session reads it)
from mmbot.strategy.params import params_record, run_config
from mmbot.strategy.registry import make_qparams, resolve

# the guard state a run can start from and reports at its end (``RunSettings.start_guard``, meta
# ``guards.carry_out``): the kill-switch latch, the drawdown stop's equity peak and its pause
GUARD_CARRY_FIELDS = ("killed", "peak_pnl", "has_peak", "dd_until_ns")

# our working orders (two per level) plus orders whose last responses are still travelling: a few
# spare slots keep the venue's per-slot scans short
MAX_ORDER_SLOTS = 24
# "visible size near the touch" is summed over at most this many ticks (per side, per wake)
MAX_NEAR_TICKS = 100


@dataclass
class RunSettings:
    """Everything a backtest run needs besides the events: the user's input, resolved into the
    run's ``RunConfig`` by ``build_config`` (docs/config.md maps each field onto its section); the
    run reads every resolved value from that, never from here again.

    ``strategy``: a quoter spec (``mmbot.strategy.registry.resolve``; None: the profile's
    ``strategy.name``); ``params``: its parameters over the profile's ``strategy.params`` (unknown
    names are an error). ``order_qty`` / ``max_position_qty`` None: the profile's ``strategy``
    section, else its ``order_notional`` / ``max_position_orders``. ``wake_interval_ms`` None: the quoter's own.
    ``knobs``: the six runtime knobs (missing ones come from the profile; all clamped to limits).
    ``profile``: a loaded ``Profile`` (None -> ``load_profile()``). ``latency_ms``: entry and
    response latency each. Fee rates, order size, position limit and exchange rate limit default to
    the profile's (``order_qty`` None -> ``order_notional / reference price``, rounded to the lot).
    ``seed`` is recorded in meta; nothing in the strategy, guards or venue is random, so a run is
    a pure function of its events and settings.
    ``start_position_qty`` / ``start_cash``: the account the run starts from (a soak chunk
    continuing the previous one's; ``mmbot.sim.VenueConfig``): the quoter and guards see that
    position from the first wake, and the audit marks it at the run's start mid
    (meta ``initial_position_qty``, ``initial_equity``). The guards see the run's equity: cash
    plus the position at mid, so ``start_cash`` also carries PnL made before the run (a soak's).
    ``start_guard``: guard state to start from (`GUARD_CARRY_FIELDS`; a soak chunk continuing the
    previous one's kill-switch latch and drawdown peak; None: fresh).
    """

    strategy: str | None = None
    params: dict = field(default_factory=dict)
    knobs: dict = field(default_factory=dict)
    profile: Profile | None = None
    latency_ms: float = 10.0
    queue_model: str = "power2"
    maker_fee_rate: float | None = None
    taker_fee_rate: float | None = None
    order_qty: float | None = None
    max_position_qty: float | None = None
    rate_limit_per_s: int | None = None
    partial_fills: bool = True
    wake_interval_ms: float | None = None
    seed: int = 0
    # the contract (mmbot.instruments); None -> detected per file from its format and symbol
    spec: ContractSpec | None = None
    # fee tier of the market's shipped schedule (mmbot.fees); None -> the profile's, else base
    fee_tier: str | None = None
    start_position_qty: float = 0.0
    start_cash: float = 0.0
    start_guard: Mapping[str, float] | None = None
    # the price orders are sized from (``order_notional``) and the near band is measured at; None:
    # the median price of the events' first rows (meta ``ref_px``)
    ref_px: float | None = None


# ---------------------------------------------------------------------------------------------
# Python side
def _with_spec(settings: RunSettings, spec: ContractSpec) -> RunSettings:
    return replace(settings, spec=spec)


def _priced_mask(events: np.ndarray) -> np.ndarray:
    """Rows that carry a market price (book levels and trades). A mask, not a copy: copying the
    structured rows cost more than the compiled loop of a 100 ms-wake quoter."""
    kinds = events["ev"] & KIND_MASK
    mask = kinds == DEPTH_EVENT
    for kind in (DEPTH_SNAPSHOT_EVENT, DEPTH_BBO_EVENT, TRADE_EVENT):
        mask |= kinds == kind
    return mask


def _priced(events: np.ndarray) -> np.ndarray:
    return events[_priced_mask(events)]


def guess_tick_lot(events: np.ndarray, sample: int = 200_000) -> tuple[float, float]:
    """(tick_px, lot_qty) guessed from the grid prices and sizes lie on (first ``sample`` rows)."""
    from mmbot.data.core import guess_step

    ev = _priced(events[:sample])
    tick = guess_step(ev["px"]) if len(ev) else math.nan
    lot = guess_step(ev["qty"]) if len(ev) else math.nan
    if not (math.isfinite(tick) and tick > 0):
        raise UserError("events: cannot guess the tick from the prices (pass tick_px)")
    if not (math.isfinite(lot) and lot > 0):
        raise UserError("events: cannot guess the lot from the quantities (pass lot_qty)")
    return float(tick), float(lot)


def _opening(events: np.ndarray) -> tuple[np.ndarray, float]:
    """(finite positive prices of the priced rows, first bid/ask mid) of the first 200,000 rows."""
    ev = events[:200_000]
    px, mid = opening_prices(ev["ev"], ev["px"])
    return px, float(mid)


def _median_px(px: np.ndarray) -> float:
    if len(px) == 0:
        raise UserError("events: no positive prices to size orders from")
    return float(np.median(px))


def _reference_px(events: np.ndarray) -> float:
    return _median_px(_opening(events)[0])


def _initial_equity(venue: VenueSettings, cspec: ContractSpec, start_mid: float) -> float:
    """The starting account's equity: its cash plus its position marked at the run's start mid (the
    mid the audit marks a carried position from)."""
    pos0, cash0 = venue.start_position_qty, venue.start_cash
    if pos0 == 0.0:
        return cash0
    if not (math.isfinite(start_mid) and start_mid > 0):
        raise UserError(
            f"events: a run starting from a position ({pos0:g}) needs a bid and an ask among its "
            "first events to mark it at"
        )
    return cash0 + pos0 * cspec.value(start_mid)


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def strategy_of(settings: RunSettings, profile: Profile) -> str:
    """The quoter a run uses: the settings' or else the profile's."""
    return settings.strategy or profile.strategy.name


def params_of(settings: RunSettings, profile: Profile) -> dict[str, float]:
    """The quoter parameters a run uses: the profile's, then the settings' over them (a profile
    naming another quoter than the settings contributes none)."""
    base = (
        profile.strategy.params if strategy_of(settings, profile) == profile.strategy.name else {}
    )
    return {**base, **settings.params}


def build_config(
    settings: RunSettings, tick_px: float, lot_qty: float, ref_px: float
) -> tuple[RunConfig, dict, Profile]:
    """(the run's ``RunConfig``, the knob values it was built from, the profile): what the run
    resolves from ``settings`` (docs/config.md maps each field onto its section)."""
    profile = settings.profile if settings.profile is not None else load_profile()
    knob_values = effective_knobs(profile, settings.knobs or {})
    rate = (
        settings.rate_limit_per_s
        if settings.rate_limit_per_s is not None
        else int(profile.venue.rate_limit_per_s)
    )
    latency_ns = int(round(settings.latency_ms * 1e6))
    cfg = run_config(
        knob_values,
        profile,
        tick_px=tick_px,
        lot_qty=lot_qty,
        ref_px=ref_px,
        strategy=strategy_of(settings, profile),
        order_qty=_first(settings.order_qty, profile.strategy.order_qty),
        max_position_qty=_first(settings.max_position_qty, profile.strategy.max_position_qty),
        maker_fee_rate=settings.maker_fee_rate,
        taker_fee_rate=settings.taker_fee_rate,
        rate_limit_per_s=float(rate),
        spec=settings.spec,
        fee_tier=settings.fee_tier,
        wake_interval_ms=settings.wake_interval_ms,
        venue={
            "entry_latency_ns": latency_ns,
            "response_latency_ns": latency_ns,
            "queue_model": settings.queue_model,
            "partial_fills": settings.partial_fills,
            "max_orders": MAX_ORDER_SLOTS,
            "start_position_qty": settings.start_position_qty,
            "start_cash": settings.start_cash,
        },
    )
    return cfg, knob_values, profile


@dataclass(frozen=True)
class _Setup:
    """A run's inputs resolved: its configuration and the compiled params record generated from
    it, the contract, the opening mid, the knobs as the profile layer resolved them."""

    settings: RunSettings
    config: RunConfig
    start_mid: float
    cspec: ContractSpec
    params: np.ndarray
    knob_values: dict
    profile: Profile


def _setup(
    events: np.ndarray,
    settings: RunSettings,
    symbol: str,
    tick_px: float | None,
    lot_qty: float | None,
    data_format: str,
) -> _Setup:
    if len(events) == 0:
        raise UserError("events: empty event array")
    if tick_px is None or lot_qty is None:
        g_tick, g_lot = guess_tick_lot(events)
        tick_px = g_tick if tick_px is None else tick_px
        lot_qty = g_lot if lot_qty is None else lot_qty
    opening_px, start_mid = _opening(events)
    ref_px = _median_px(opening_px) if settings.ref_px is None else float(settings.ref_px)
    cspec = settings.spec or detect_spec(data_format, symbol)
    if settings.spec is None:
        settings = _with_spec(settings, cspec)
    cfg, knob_values, profile = build_config(settings, float(tick_px), float(lot_qty), ref_px)
    return _Setup(settings, cfg, start_mid, cspec, params_record(cfg), knob_values, profile)


def _guard_state(s: _Setup) -> np.ndarray:
    """Fresh guard state, or the one ``settings.start_guard`` carries in."""
    guard_state = guards.new_guard_state(s.params)
    for name, value in (s.settings.start_guard or {}).items():
        if name not in GUARD_CARRY_FIELDS:
            raise ValueError(f"start_guard: {name!r} is not one of {GUARD_CARRY_FIELDS}")
        guard_state[name] = value
    return guard_state


def _loop_buffers() -> tuple:
    """The wake loop's views and scratch arrays, in ``drive``'s argument order (after the guard
    state): market view, own orders, their ids, quote, trades, fills, actions, ops, counters,
    cursors."""
    v = new_views()
    return (
        v.market,
        v.own,
        np.zeros(len(v.own), np.int64),
        v.quote,
        v.trades,
        v.fills,
        np.zeros(wk.ACTION_ROWS_PER_SLOT * wk.N_SLOTS, ACTION_DTYPE),
        np.zeros(wk.N_SLOTS, wk.OP_DTYPE),
        np.zeros(wk.N_COUNTERS, np.int64),
        np.zeros(wk.N_CURSORS, np.int64),
    )


_NO_STOP_NS = 1 << 62


def _drive(
    loop: Any,
    spec: str,
    args: tuple,
    tail: tuple,
    local_ts_range: tuple[int, int],
    chunk_s: float,
    progress: Callable[[float], None] | None,
) -> None:
    """The compiled loop to the end of the events (``local_ts_range``: their first and last local
    time), returning to Python every ``chunk_s`` of market time for ``progress``. ``args`` /
    ``tail``: ``drive``'s arguments before / after ``stop``."""
    first_ts, last_ts = local_ts_range
    # without progress to show, one call: the loop stops at the data's end, and where it is
    # stopped and resumed changes nothing (each compiled call costs ~0.25 ms of argument typing)
    chunk_ns = max(int(chunk_s * 1e9), 1) if progress is not None else _NO_STOP_NS
    stop = first_ts + chunk_ns
    while True:
        try:
            done = loop.drive(*args, *tail, stop)
        except Exception as exc:
            if not loop.drive.signatures and not is_builtin(spec):  # it failed to compile
                raise compile_error(spec, exc) from exc
            raise
        if progress is not None:
            progress(1.0 if done else min(1.0, (stop - first_ts) / max(last_ts - first_ts, 1)))
        if done:
            break
        stop += chunk_ns


def run(
    events: np.ndarray | sim.PreparedEvents,
    settings: RunSettings,
    *,
    symbol: str = "",
    tick_px: float | None = None,
    lot_qty: float | None = None,
    progress: Callable[[float], None] | None = None,
    chunk_s: float = 60.0,
    data_format: str = "",
) -> RunResult:
    """Backtest ``settings`` on ``events`` (EVENT_DTYPE) and return the run's records.

    The contract is ``settings.spec``, else detected from ``data_format`` and ``symbol``
    (``mmbot.instruments.detect_spec``): quantities are contracts, money is in its settle coin.

    ``progress`` (optional) is called with the fraction of local time done after each ``chunk_s``
    of market time (the compiled loop returns to Python only then). ``events`` may be
    `sim.PreparedEvents` (`sim.prepare_events`): the same run, without re-scanning events that are
    run many times.
    """
    prepared = sim.prepare_events(events)
    events = prepared.events
    s = _setup(events, settings, symbol, tick_px, lot_qty, data_format)
    rc = s.config
    venue_cfg = rc.venue_config()
    initial_equity = _initial_equity(venue_cfg, s.cspec, s.start_mid)
    spec = rc.run.quoter
    quoter = resolve(spec)
    qparams = make_qparams(quoter, params_of(s.settings, s.profile), spec)
    loop = compiled_loop(spec)
    t_wall = time.perf_counter()
    v = sim.make_venue(prepared, venue_cfg)
    qstate = quoter.new_state(s.params, qparams)
    guard_state = _guard_state(s)
    bufs = _loop_buffers()
    p = s.params[0]
    near_ticks = int(
        min(
            max(round(p["near_band_bps"] * 1e-4 * rc.market.ref_px / rc.market.tick_px), 1),
            MAX_NEAR_TICKS,
        )
    )
    wake_ms = rc.run.wake_interval_ms
    wake_ns = max(int(wake_ms * 1e6), 1)
    args = (v, s.params, qparams, qstate, guard_state, *bufs)
    tail = (quoter.levels, quoter.book_levels, near_ticks, wake_ns, quoter.wake_on_market)
    _drive(loop, spec, args, tail, prepared.local_ts_range, chunk_s, progress)
    wall_s = time.perf_counter() - t_wall
    final_touch = (float(sim.exch_best_bid_px(v)), float(sim.exch_best_ask_px(v)))
    fills, actions, marks, stats = sim.finish(v, prepared)
    meta = _meta(s, events, symbol, spec, quoter, qparams, wake_ms, initial_equity, stats)
    meta["final_bid_px"] = final_touch[0]
    meta["final_ask_px"] = final_touch[1]
    meta["sim_equity"] = stats["sim_equity"]
    meta["ws_lag_p95_ms"] = stats.get("ws_lag_p95_ms", float("nan"))
    meta["events"] = int(len(events))
    meta["venue"] = {k: v_ for k, v_ in stats.items() if k != "ws_lag_p95_ms"}
    meta["guards"] = _guards_meta(guard_state[0], p)
    meta["loop"] = _loop_meta(bufs[8], wall_s)
    meta["estimates"] = _estimates(qstate)
    return RunResult(fills, actions, marks, meta)


def _meta(
    s: _Setup,
    events: np.ndarray,
    symbol: str,
    spec: str,
    quoter: Any,
    qparams: np.ndarray,
    wake_ms: float,
    initial_equity: float,
    stats: dict,
) -> dict[str, Any]:
    """A run's meta up to its final mid (``run`` adds the touch, venue, guards, loop, estimates)."""
    rc = s.config
    venue = rc.venue_config()
    return {
        "symbol": symbol,
        "strategy": spec,
        "strategy_params": {k: float(qparams[0][k]) for k in quoter.params},
        "levels": int(quoter.levels),
        "wake_interval_ms": float(wake_ms),
        "profile": s.profile.name,
        "knobs": {k: s.knob_values[k] for k in sorted(s.knob_values)},
        "tick_px": rc.market.tick_px,
        "lot_qty": rc.market.lot_qty,
        "ref_px": rc.market.ref_px,
        "order_qty": rc.run.order_qty,
        "max_position_qty": rc.run.max_position_qty,
        "maker_fee_rate": rc.fees.maker_fee_rate,
        "taker_fee_rate": rc.fees.taker_fee_rate,
        "contract": s.cspec.to_meta(),
        "fees": rc.fees.model_dump(),
        "latency_ms": venue.entry_latency_ns / 1e6,
        "queue_model": venue.queue_model,
        "seed": int(s.settings.seed),
        "start_ts": int(events["exch_ts"][0]),
        "end_ts": int(events["exch_ts"][-1]),
        "start_mid_px": s.start_mid,
        "initial_position_qty": venue.start_position_qty,
        "initial_equity": initial_equity,
        "final_mid_px": stats["final_mid_px"],
    }


def _guards_meta(g: Any, p: Any) -> dict[str, Any]:
    blocked = {
        REASON_NAMES[r]: int(g["n_blocked"][r])
        for r in REASON_NAMES
        if r < len(g["n_blocked"]) and r != 0
    }
    return {
        "intended": int(g["n_intended"]),
        "sent": int(g["n_sent"]),
        "blocked": blocked,
        "killed": bool(g["killed"]),
        "drawdown_stops": int(g["n_dd_stops"]),
        "carry_out": {k: g[k].item() for k in GUARD_CARRY_FIELDS},
        "max_loss": float(p["max_loss"]),  # settle coin, as the guards compare them
        "max_drawdown": float(p["max_drawdown"]),
    }


def _loop_meta(counters: np.ndarray, wall_s: float) -> dict[str, Any]:
    return {
        "wakes": int(counters[wk.C_WAKES]),
        "feed_wakes": int(counters[wk.C_FEED_WAKES]),
        "steps": int(counters[wk.C_STEPS]),
        "no_quote_steps": int(counters[wk.C_NOQUOTE]),
        "sent": int(counters[wk.C_SENT]),
        "send_errors": int(counters[wk.C_SEND_ERRORS]),
        "trades_seen": int(counters[wk.C_TRADES_SEEN]),
        "fills_seen": int(counters[wk.C_FILLS_SEEN]),
        "wall_s": wall_s,
    }


# the quoter state fields reported as the run's final estimates, where the quoter has them
_ESTIMATE_FIELDS = {
    "sigma_ticks": "sigma_ticks_per_sqrt_s",
    "a_per_s": "a_per_s",
    "k_per_tick": "k_per_tick",
    "slip_cost_bps": "slip_cost_bps",
}


def _estimates(qstate: np.ndarray) -> dict[str, float]:
    names = qstate.dtype.names or ()
    return {out: float(qstate[0][f]) for f, out in _ESTIMATE_FIELDS.items() if f in names}


# moved to modules of their own; still importable from here (the soak, sweep, fidelity and live
# code and the notebooks import them from ``mmbot.backtest``)
_MOVED = {
    "summarize": "mmbot.backtest_summary",
    "backtest_files": "mmbot.backtest_files",
    "BacktestProgress": "mmbot.backtest_files",
    "BacktestOutcome": "mmbot.backtest_files",
    "check_strategy": "mmbot.backtest_files",
    "strategy_runtime": "mmbot.backtest_files",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CallableModule(type(os)):
    """``mmbot.backtest(data, ...)`` is the notebook entry point (``mmbot.api.backtest``), and this
    module has the same name: the package attribute is this module, so the module is callable."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import importlib

        # imported by name: the API module is never part of the compiled code (mmbot.jitcache)
        return importlib.import_module("mmbot.api").backtest(*args, **kwargs)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule
