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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mmbot import sim
from mmbot.config import Profile, effective_knobs, load_profile, with_strategy_options
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
from mmbot.instruments import ContractSpec, detect_spec, spec_from_meta
from mmbot.records import ACT_BLOCKED, ACT_INTENDED, ACTION_DTYPE, REASON_NAMES, RunResult
from mmbot.strategy.contract import (
    FILL_VIEW_DTYPE,
    TRADE_BUFFER,
    TRADE_VIEW_DTYPE,
    new_market_view,
    new_own_orders,
    new_quote,
)
from mmbot.strategy.glft import SWEEP_GAP_NS  # noqa: F401  (re-exported: the live session reads it)
from mmbot.strategy.params import fee_choice, make_params
from mmbot.strategy.registry import DEFAULT_QUOTER, make_qparams, resolve

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
    """Everything a backtest run needs besides the events.

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


def _initial_equity(settings: RunSettings, cspec: ContractSpec, start_mid: float) -> float:
    """The starting account's equity: its cash plus its position marked at the run's start mid (the
    mid the audit marks a carried position from)."""
    pos0, cash0 = float(settings.start_position_qty), float(settings.start_cash)
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


def build_params(
    settings: RunSettings, tick_px: float, lot_qty: float, ref_px: float
) -> tuple[np.ndarray, dict, Profile]:
    profile = settings.profile if settings.profile is not None else load_profile()
    knob_values = effective_knobs(profile, settings.knobs or {})
    rate = (
        settings.rate_limit_per_s
        if settings.rate_limit_per_s is not None
        else int(profile.venue.rate_limit_per_s)
    )
    params = make_params(
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
    )
    return params, knob_values, profile


def run(
    events: np.ndarray,
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
    of market time (the compiled loop returns to Python only then).
    """
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
    params, knob_values, profile = build_params(settings, float(tick_px), float(lot_qty), ref_px)
    p = params[0]
    latency_ns = int(round(settings.latency_ms * 1e6))
    cfg = sim.VenueConfig(
        tick_px=float(tick_px),
        lot_qty=float(lot_qty),
        maker_fee_rate=float(p["maker_fee_rate"]),
        taker_fee_rate=float(p["taker_fee_rate"]),
        entry_latency_ns=latency_ns,
        response_latency_ns=latency_ns,
        queue_model=settings.queue_model,
        partial_fills=settings.partial_fills,
        rate_limit_per_s=int(p["rate_limit_per_s"]),
        max_orders=MAX_ORDER_SLOTS,
        contract_size=cspec.contract_size,
        inverse=cspec.inverse,
        start_position_qty=float(settings.start_position_qty),
        start_cash=float(settings.start_cash),
    )
    initial_equity = _initial_equity(settings, cspec, start_mid)
    spec = strategy_of(settings, profile)
    quoter = resolve(spec)
    qparams = make_qparams(quoter, params_of(settings, profile), spec)
    loop = compiled_loop(spec)
    t_wall = time.perf_counter()
    v = sim.make_venue(events, cfg)
    qstate = quoter.new_state(params, qparams)
    guard_state = guards.new_guard_state(params)
    for name, value in (settings.start_guard or {}).items():
        if name not in GUARD_CARRY_FIELDS:
            raise ValueError(f"start_guard: {name!r} is not one of {GUARD_CARRY_FIELDS}")
        guard_state[name] = value
    view = new_market_view()
    own = new_own_orders()
    oids = np.zeros(len(own), np.int64)
    out = new_quote()
    trades = np.zeros(TRADE_BUFFER, TRADE_VIEW_DTYPE)
    fills_buf = np.zeros(256, FILL_VIEW_DTYPE)
    actions_buf = np.zeros(wk.ACTION_ROWS_PER_SLOT * wk.N_SLOTS, ACTION_DTYPE)
    ops = np.zeros(wk.N_SLOTS, wk.OP_DTYPE)
    counters = np.zeros(wk.N_COUNTERS, np.int64)
    cursors = np.zeros(wk.N_CURSORS, np.int64)
    near_ticks = int(
        min(max(round(p["near_band_bps"] * 1e-4 * ref_px / tick_px), 1), MAX_NEAR_TICKS)
    )
    wake_ms = (
        quoter.wake_interval_ms if settings.wake_interval_ms is None else settings.wake_interval_ms
    )
    wake_ns = max(int(wake_ms * 1e6), 1)
    first_ts = int(events["local_ts"].min())
    last_ts = int(events["local_ts"].max())
    chunk_ns = max(int(chunk_s * 1e9), 1)
    stop = first_ts + chunk_ns
    while True:
        try:
            done = loop.drive(
                v,
                params,
                qparams,
                qstate,
                guard_state,
                view,
                own,
                oids,
                out,
                trades,
                fills_buf,
                actions_buf,
                ops,
                counters,
                cursors,
                quoter.levels,
                quoter.book_levels,
                near_ticks,
                wake_ns,
                quoter.wake_on_market,
                stop,
            )
        except Exception as exc:
            if not loop.drive.signatures and not is_builtin(spec):  # it failed to compile
                raise compile_error(spec, exc) from exc
            raise
        if progress is not None:
            progress(1.0 if done else min(1.0, (stop - first_ts) / max(last_ts - first_ts, 1)))
        if done:
            break
        stop += chunk_ns
    wall_s = time.perf_counter() - t_wall
    final_touch = (float(sim.exch_best_bid_px(v)), float(sim.exch_best_ask_px(v)))
    fills, actions, marks, stats = sim.finish(v, events)
    g = guard_state[0]
    blocked = {
        REASON_NAMES[r]: int(g["n_blocked"][r])
        for r in REASON_NAMES
        if r < len(g["n_blocked"]) and r != 0
    }
    meta: dict[str, Any] = {
        "symbol": symbol,
        "strategy": spec,
        "strategy_params": {k: float(qparams[0][k]) for k in quoter.params},
        "levels": int(quoter.levels),
        "wake_interval_ms": float(wake_ms),
        "profile": profile.name,
        "knobs": {k: knob_values[k] for k in sorted(knob_values)},
        "tick_px": float(tick_px),
        "lot_qty": float(lot_qty),
        "ref_px": ref_px,
        "order_qty": float(p["order_qty"]),
        "max_position_qty": float(p["max_position_qty"]),
        "maker_fee_rate": float(p["maker_fee_rate"]),
        "taker_fee_rate": float(p["taker_fee_rate"]),
        "contract": cspec.to_meta(),
        "fees": fee_choice(
            profile, cspec, settings.fee_tier, settings.maker_fee_rate, settings.taker_fee_rate
        ).to_meta(),
        "latency_ms": float(settings.latency_ms),
        "queue_model": settings.queue_model,
        "seed": int(settings.seed),
        "start_ts": int(events["exch_ts"][0]),
        "end_ts": int(events["exch_ts"][-1]),
        "start_mid_px": start_mid,
        "initial_position_qty": float(settings.start_position_qty),
        "initial_equity": initial_equity,
        "final_mid_px": stats["final_mid_px"],
        "final_bid_px": final_touch[0],
        "final_ask_px": final_touch[1],
        "sim_equity": stats["sim_equity"],
        "ws_lag_p95_ms": stats.get("ws_lag_p95_ms", float("nan")),
        "events": int(len(events)),
        "venue": {k: v_ for k, v_ in stats.items() if k != "ws_lag_p95_ms"},
        "guards": {
            "intended": int(g["n_intended"]),
            "sent": int(g["n_sent"]),
            "blocked": blocked,
            "killed": bool(g["killed"]),
            "drawdown_stops": int(g["n_dd_stops"]),
            "carry_out": {k: g[k].item() for k in GUARD_CARRY_FIELDS},
            "max_loss": float(p["max_loss"]),  # settle coin, as the guards compare them
            "max_drawdown": float(p["max_drawdown"]),
        },
        "loop": {
            "wakes": int(counters[wk.C_WAKES]),
            "feed_wakes": int(counters[wk.C_FEED_WAKES]),
            "steps": int(counters[wk.C_STEPS]),
            "no_quote_steps": int(counters[wk.C_NOQUOTE]),
            "sent": int(counters[wk.C_SENT]),
            "send_errors": int(counters[wk.C_SEND_ERRORS]),
            "trades_seen": int(counters[wk.C_TRADES_SEEN]),
            "fills_seen": int(counters[wk.C_FILLS_SEEN]),
            "wall_s": wall_s,
        },
        "estimates": _estimates(qstate),
    }
    return RunResult(fills, actions, marks, meta)


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


# ---------------------------------------------------------------------------------------------
# summary helpers (used by the command and the bench)
def _run_spec(r: RunResult) -> ContractSpec:
    return spec_from_meta(r.meta)


def summarize(results: Sequence[RunResult]) -> dict:
    """Fills, turnover, PnL (marked at each run's final mid), maker share, blocks by reason.

    Money is in the runs' settle coin (``settle``; turnover and PnL of runs settling in different
    coins are summed in quote currency instead, ``settle`` = "USD"); ``turnover_usd`` and
    ``pnl_usd`` are the quote-currency view (an inverse run's coin PnL x its final mid)."""
    fills = 0
    turnover = 0.0
    turnover_usd = 0.0
    maker_notional = 0.0
    pnl = 0.0
    pnl_usd = 0.0
    fees = 0.0
    rebate = 0.0
    tiers: set[str] = set()
    blocked: dict[str, int] = {}
    intended = 0
    events = 0
    settles = {_run_spec(r).settle for r in results}
    mixed = len(settles) > 1
    for r in results:
        f = r.fills
        spec = _run_spec(r)
        to_usd = float(r.meta.get("final_mid_px") or 0.0) if spec.inverse else 1.0
        if spec.inverse:
            notional = f["qty"] * spec.contract_size / f["px"]
            usd = f["qty"] * spec.contract_size
        else:
            notional = f["px"] * f["qty"] * spec.contract_size
            usd = notional
        run_pnl = float(r.meta.get("sim_equity", 0.0)) - float(r.meta.get("initial_equity", 0.0))
        scale = to_usd if mixed else 1.0
        fills += len(f)
        turnover += float(usd.sum()) if mixed else float(notional.sum())
        turnover_usd += float(usd.sum())
        maker_notional += float(notional[f["maker"] == 1].sum()) * scale
        fees += float(f["fee"].sum()) * scale
        rebate += float(-f["fee"][(f["maker"] == 1) & (f["fee"] < 0)].sum()) * scale
        fm = r.meta.get("fees")
        tiers.add(str(fm.get("tier")) if isinstance(fm, dict) else "unrecorded")
        pnl += run_pnl * scale
        pnl_usd += run_pnl * to_usd
        a = r.actions
        intended += int((a["kind"] == ACT_INTENDED).sum())
        blk = a[a["kind"] == ACT_BLOCKED]
        for code in np.unique(blk["reason"]):
            name = REASON_NAMES.get(int(code), str(int(code)))
            blocked[name] = blocked.get(name, 0) + int((blk["reason"] == code).sum())
        events += int(r.meta.get("events", 0))
    return {
        "runs": len(results),
        "events": events,
        "fills": fills,
        "settle": "USD" if mixed else (settles.pop() if settles else ""),
        "turnover": turnover,
        "turnover_usd": turnover_usd,
        "pnl": pnl,
        "pnl_usd": pnl_usd,
        "fees": fees,
        "net_bps": pnl / turnover * 1e4 if turnover > 0 else float("nan"),
        "net_bps_before_rebates": (pnl - rebate) / turnover * 1e4 if turnover > 0 else float("nan"),
        "fee_tier": " | ".join(sorted(tiers)),
        "maker_share_pct": maker_notional / turnover * 100 if turnover > 0 else float("nan"),
        "intended": intended,
        "blocked": dict(sorted(blocked.items())),
    }


def _run_name(i: int, path: Path) -> str:
    stem = path.name
    for suf in (".gz", ".jsonl", ".json", ".npz", ".csv", ".txt", ".parquet"):
        if stem.endswith(suf):
            stem = stem[: -len(suf)]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "data"
    return f"{i:02d}_{safe}"


def _validate_inputs(
    data: Sequence[Path],
    profile: str | None,
    overrides: Path | None,
    latency_ms: float,
    queue_model: str,
    options: Mapping[str, Any],
) -> tuple[Profile, dict, list[str]]:
    """Every input checked before anything is written (UserError naming the input)."""
    from mmbot.config import load_overrides, overrides_source, with_override_params
    from mmbot.sim.config import parse_queue_model

    if not data:
        raise UserError("--data: at least one capture file is needed")
    for path in data:
        p = Path(path)
        if not p.exists():
            raise UserError(f"--data {p}: file not found")
        if not p.is_file():
            raise UserError(f"--data {p}: not a file")
    if not (math.isfinite(latency_ms) and latency_ms >= 0):
        raise UserError(f"--latency-ms {latency_ms!r}: must be a finite number >= 0")
    parse_queue_model(queue_model)
    prof = check_strategy(with_strategy_options(load_profile(profile), **options))
    # a file an earlier soak left in the working directory is applied only when named (--overrides)
    ovr, messages = load_overrides(overrides, default_file=None)
    # the file's quoter parameters (param.NAME, e.g. a soak's tuned ones); --param wins
    source = overrides_source(overrides, default_file=None) or "overrides"
    prof = with_override_params(prof, ovr, source, keep=options.get("params"))
    return prof, ovr, list(prof.messages) + messages


def check_strategy(prof: Profile) -> Profile:
    """The profile's quoter and its parameters, checked before anything runs (UserError)."""
    spec = prof.strategy.name
    make_qparams(resolve(spec), prof.strategy.params, spec)
    return prof


def strategy_runtime(prof: Profile) -> dict[str, Any]:
    """What the EDGE_REPORT's runtime block records about the quoter and its limits."""
    return {
        "strategy": prof.strategy.name,
        "strategy_params": dict(prof.strategy.params),
        "order_qty": prof.strategy.order_qty,
        "max_position_qty": prof.strategy.max_position_qty,
        # the rates of the profile's tier (base unless named) on the default fee schedule; each
        # run's own market and rates are in its meta["fees"]
        "fee_tier": fee_choice(prof, None).tier,
        "maker_fee_bps": fee_choice(prof, None).maker_fee_rate * 1e4,
        "taker_fee_bps": fee_choice(prof, None).taker_fee_rate * 1e4,
    }


@dataclass(frozen=True)
class BacktestProgress:
    """How far `backtest_files` is, for a progress display."""

    done_files: float | None  # files done (fractional inside the file simulated; None: unchanged)
    total_files: int
    description: str | None = None  # what it is doing now (None: unchanged)


@dataclass
class BacktestOutcome:
    """What `backtest_files` ran and wrote (``out``), for the console to show."""

    out: Path
    summary: dict  # `summarize` over every file, with wall and phase times
    per_file: list[tuple[str, dict]]  # (run name, `summarize` of that file)
    verdict: str | None  # the KPI gate's (None: --no-reports)
    gate: dict | None
    notes: list[str]  # runs without a fill, said plainly (`_stood_aside_lines`)
    phases_line: str  # where the wall time went (`firstrun.PhaseTimes.line`)
    pieces: dict | None = None  # EDGE_REPORT ``pieces`` (``pieces=True`` with reports)


def _quiet(_: object) -> None:
    return None


def backtest_files(
    *,
    data: Sequence[Path],
    out: Path,
    profile: str | None = "S1",
    overrides: Path | None = None,
    latency_ms: float = 10.0,
    queue_model: str = "power2",
    strategy: str | None = None,
    params: Mapping[str, float] | None = None,
    order_qty: float | None = None,
    max_position_qty: float | None = None,
    maker_fee_bps: float | None = None,
    taker_fee_bps: float | None = None,
    seed: int = 0,
    reports: bool = True,
    say: Callable[[str], None] | None = None,
    on_progress: Callable[[BacktestProgress], None] | None = None,
    market: str | None = None,
    contract_size: float | None = None,
    fee_tier: str | None = None,
    funding_rate: float | None = None,
    funding_file: Path | None = None,
    pieces: bool = False,
) -> int:
    """``mmbot backtest``: files one after another (one file's events in memory at a time), records
    to ``out/<NN_name>/``, ``EDGE_REPORT.json``, ``KPI_GATE.json``, Markdown/HTML reports and a
    ``summary.json`` in ``out``; the notes go to ``say`` as they come, the progress to
    ``on_progress``, and the figures to show are returned. ``pieces``: each file is also run once
    per piece of the quoter with that piece switched off (``mmbot.pieces``; EDGE_REPORT ``pieces``). Everything is written into a temporary
    directory beside ``out`` and moved into place at the end: a failure leaves ``out`` untouched."""
    from mmbot import firstrun, jitclock
    from mmbot.audit.crosscheck import check_fill_mids
    from mmbot.audit.edge_report import build_edge_report, dump_json, make_runtime
    from mmbot.audit.records_io import write_audit_jsonl, write_run
    from mmbot.data import load_events
    from mmbot.gate import evaluate
    from mmbot.instruments import resolve_spec

    if market is not None or contract_size is not None:
        resolve_spec("", "", market=market, contract_size=contract_size)  # bad flag -> exit 2 now
    funding = _funding_input(funding_rate, funding_file)
    say = say or _quiet
    progress = on_progress or _quiet
    data = [Path(p) for p in data]
    out = Path(out)
    prof, ovr, messages = _validate_inputs(
        data,
        profile,
        overrides,
        latency_ms,
        queue_model,
        {
            "strategy": strategy,
            "params": params,
            "order_qty": order_qty,
            "max_position_qty": max_position_qty,
            "maker_fee_bps": maker_fee_bps,
            "taker_fee_bps": taker_fee_bps,
        },
    )
    for m in messages:
        say(f"note: {m}")
    knob_values = effective_knobs(prof, ovr)
    for line in firstrun.knob_lines(prof, ovr, overrides):
        say(line)
    settings = RunSettings(
        knobs=knob_values,
        profile=prof,
        latency_ms=latency_ms,
        queue_model=queue_model,
        seed=seed,
        fee_tier=fee_tier,
    )
    from mmbot import staging
    from mmbot.inputs import output_dir
    from mmbot.rundir import place_run

    output_dir("--out", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging.make_staging_dir(out.parent, f".{out.name}.tmp-")
    try:
        results: list[RunResult] = []
        named: list[tuple[str, RunResult]] = []
        per_file: list[tuple[str, dict]] = []
        phases = firstrun.PhaseTimes(cold=not jitclock.is_warm(strategy or DEFAULT_QUOTER))
        if phases.cold:
            say(firstrun.compile_announcement())
        t0 = time.perf_counter()
        n_files = len(data)
        clock = jitclock.CompileClock(
            on_start=lambda fn: progress(BacktestProgress(None, n_files, f"compiling {fn} (once)"))
        )
        switches = _piece_switches(prof) if pieces else ()
        without: dict[str, list[RunResult]] = {label: [] for label, _ in switches}
        progress(BacktestProgress(0.0, n_files, "backtest"))
        for i, path in enumerate(data):
            name = _run_name(i, path)
            progress(BacktestProgress(i, n_files, f"{path.name}: reading"))
            with phases.timed("read", clock):
                events, stats = load_events(path)
            progress(BacktestProgress(i, n_files, f"{path.name}: simulating"))

            def _progress(frac: float, _i: int = i, _n: str = path.name) -> None:
                progress(BacktestProgress(_i + frac, n_files, f"{_n}: simulating"))

            cspec = resolve_spec(
                stats.format, stats.symbol or "", market=market, contract_size=contract_size
            )
            with phases.timed("simulate", clock):
                res = run(
                    events,
                    replace(settings, spec=cspec),
                    symbol=stats.symbol or "",
                    progress=_progress,
                    data_format=stats.format,
                )
            res.meta["name"] = name
            res.meta["data_path"] = str(path)
            if funding is not None:
                res.meta["funding"] = _funding_for(funding, cspec, res.meta, path)
            # every fill's mid against a book rebuilt from the input (AuditError names a fill)
            res.meta["mid_crosscheck"] = check_fill_mids(events, res, name)
            res.meta["read_repairs"] = {k: v for k, v in stats.repairs.items() if v}
            for label, over in switches:
                progress(BacktestProgress(None, n_files, f"{path.name}: without {label}"))
                s_off = replace(settings, spec=cspec, params={**settings.params, **over})
                r_off = run(events, s_off, symbol=stats.symbol or "", data_format=stats.format)
                r_off.meta["name"] = name
                r_off.meta["data_path"] = str(path)
                without[label].append(r_off)
            del events
            write_run(tmp, res, name)
            results.append(res)
            named.append((name, res))
            per_file.append((name, summarize([res])))
            progress(BacktestProgress(i + 1, n_files))
        wall_s = time.perf_counter() - t0
        summary = summarize(results)
        summary["wall_s"] = wall_s
        summary.update(phases.as_dict())
        summary["events_per_s"] = summary["events"] / wall_s if wall_s > 0 else None
        runtime = make_runtime(
            profile=prof.name,
            overrides=ovr,
            seed=seed,
            data_inputs=[str(p) for p in data],
            **strategy_runtime(prof),
            knobs=knob_values,
            latency_ms=latency_ms,
            queue_model=queue_model,
        )
        verdict = None
        gate = None
        edge = {}
        if reports:
            from mmbot.report import write_reports

            edge = build_edge_report(results, runtime)
            if switches:
                from mmbot.pieces import pieces_block

                off = {k: build_edge_report(v, runtime)["totals"] for k, v in without.items()}
                edge["pieces"] = pieces_block(edge["totals"], off, switches)
            gate = evaluate(edge)
            verdict = gate.get("verdict")
            dump_json(edge, tmp / "EDGE_REPORT.json")
            dump_json(gate, tmp / "KPI_GATE.json")
            write_reports(tmp, edge, results, gate, md_name="BACKTEST_RESULTS.md")
        write_audit_jsonl(tmp / "audit.jsonl", named)
        dump_json(
            {"totals": summary, "runs": dict(per_file), "runtime": runtime}, tmp / "summary.json"
        )
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the final directory should not be
        place_run(tmp, out)
    except BaseException:
        staging.release(tmp)
        raise
    staging.release(tmp)
    return BacktestOutcome(
        out=out,
        summary=summary,
        per_file=per_file,
        verdict=verdict,
        gate=gate,
        notes=_stood_aside_lines(results),
        phases_line=phases.line(),
        pieces=edge.get("pieces"),
    )


def _piece_switches(prof: Profile) -> tuple:
    """The run's quoter's pieces (label, switch-off parameters); exit 2 when it declares none."""
    name = prof.strategy.name
    switches = resolve(name).pieces
    if not switches:
        raise UserError(f"--pieces: quoter {name!r} declares no switchable pieces")
    return switches


def _stood_aside_lines(results: Sequence[RunResult]) -> list[str]:
    """One line per run without a fill, saying how often its quoter chose not to quote and why
    that can be (a run with no fills otherwise reads as a broken one)."""
    lines = []
    for r in results:
        loop = r.meta.get("loop") or {}
        steps, idle = int(loop.get("steps", 0)), int(loop.get("no_quote_steps", 0))
        if len(r.fills) or not steps:
            continue
        maker_bps = float(r.meta.get("maker_fee_rate", 0.0)) * 1e4
        lines.append(
            f"note: {r.meta.get('run_name') or r.meta.get('symbol', '')}: no fill; "
            f"{r.meta.get('strategy')} sent {int(loop.get('sent', 0)):,} order(s) and chose not to "
            f"quote on {idle:,} of {steps:,} wakes (warm-up, or no depth expected to pay the maker "
            f"fee of {maker_bps:g} bps): see --fee-tier, or --strategy glft, which always quotes"
        )
    return lines


def _funding_input(rate: float | None, path: Path | None) -> Any:
    """``--funding-rate`` (a float, the schedule built per file) or ``--funding FILE`` (loaded once)."""
    from mmbot.funding import _check_rate, load_funding_csv

    if rate is not None and path is not None:
        raise UserError("--funding-rate and --funding: give one of them")
    if path is not None:
        return load_funding_csv(Path(path))
    return None if rate is None else _check_rate(float(rate), "--funding-rate")


def _funding_for(funding: Any, spec: ContractSpec, meta: dict, path: Path) -> dict:
    from mmbot.funding import schedule_from_rate, within

    if spec.spot:
        raise UserError(f"--funding: {path} is a spot market ({spec.market}); spot has no funding")
    start, end = int(meta["start_ts"]), int(meta["end_ts"])
    if isinstance(funding, float):
        return schedule_from_rate(funding, start, end).to_meta()
    return within(funding, start, end).to_meta()


class _CallableModule(type(os)):
    """``mmbot.backtest(data, ...)`` is the notebook entry point (``mmbot.api.backtest``), and this
    module has the same name: the package attribute is this module, so the module is callable."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import importlib

        # imported by name: the API module is never part of the compiled code (mmbot.jitcache)
        return importlib.import_module("mmbot.api").backtest(*args, **kwargs)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule
