"""Python entry points of the venue: validate inputs and build it (`make_venue`, from an array or
from `PreparedEvents`), collect results (`finish`). Everything per-event is compiled in
`mmbot.sim.venue`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from mmbot.errors import UserError
from mmbot.events import (
    DEPTH_BBO_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EVENT_DTYPE,
    KIND_MASK,
    as_events,
)

from . import venue as _v
from .config import VenueConfig, parse_queue_model, price_decimals, validate_config
from .verbs import set_account

# a dense price ladder is used for both books; beyond this many ticks we centre a window on the
# data's median price and count levels outside it (``out_of_band_levels``) instead of allocating more
MAX_LADDER_TICKS = 4_000_000

ERROR_TEXT = {
    _v.ERR_BAD_QTY: "order quantity must be a positive finite number",
    _v.ERR_OFF_LOT: "order quantity is not a multiple of lot_qty",
    _v.ERR_OFF_TICK: "order price is off the tick grid",
    _v.ERR_BAD_PX: "order price must be a positive finite number",
    _v.ERR_BAD_SIDE: "order side must be +1 (buy) or -1 (sell)",
    _v.ERR_BAD_TIF: "unknown time in force / order type (value = 10 x tif + ord_type)",
}


def _ladder(
    events: np.ndarray,
    tick_px: float,
    trade_lo_px: float,
    trade_hi_px: float,
    pad_ratio: float = 0.02,
) -> tuple[int, int]:
    """(first tick, number of ticks) of the dense price ladder both books use.

    It spans the traded price range (or, without trades, the middle half of the book levels) plus
    ``pad_ratio`` of the price (2 % by default; at least 2000 ticks) on each side, so far-away snapshot levels do not blow up memory and
    scans; depth levels outside it are dropped and counted (``out_of_band_levels``): they cannot be
    the touch of a normal book."""
    if trade_lo_px <= trade_hi_px:
        lo_px, hi_px = trade_lo_px, trade_hi_px
    else:
        kinds = events["ev"] & KIND_MASK
        priced = np.isin(kinds, (DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, DEPTH_BBO_EVENT))
        px = events["px"][priced]
        px = px[np.isfinite(px) & (px > 0)]
        if len(px) == 0:
            return 0, 4096
        lo_px, hi_px = np.percentile(px, [25, 75])
    lo, hi = int(np.floor(lo_px / tick_px)), int(np.ceil(hi_px / tick_px))
    pad = max(2000, int(pad_ratio * hi))
    lo, hi = max(lo - pad, 0), hi + pad
    if hi - lo + 1 > MAX_LADDER_TICKS:
        mid = (lo + hi) // 2
        lo = max(mid - MAX_LADDER_TICKS // 2, 0)
        hi = lo + MAX_LADDER_TICKS - 1
    return lo, hi - lo + 1


@dataclass(frozen=True)
class PreparedEvents:
    """Market events checked and indexed for `make_venue` once (`prepare_events`): a backtest run
    many times on the same events (the soak's counterfactual replays) skips the scan, the local-time
    range and the feed-lag percentile after the first. The arrays must not be changed after."""

    events: np.ndarray  # EVENT_DTYPE, C-contiguous
    exch_idx: np.ndarray
    local_idx: np.ndarray  # in local_ts order
    trade_lo_px: float
    trade_hi_px: float

    @cached_property
    def local_ts_range(self) -> tuple[int, int]:
        """(min, max) ``local_ts`` over every row."""
        ts = self.events["local_ts"]
        return int(ts.min()), int(ts.max())

    @cached_property
    def ws_lag_p95_ms(self) -> float:
        """p95 feed lag (local_ts - exch_ts, ms) over every local row: `finish`'s figure for a
        venue that processed them all."""
        return _ws_lag_p95_ms(self.events, self.local_idx)


def prepare_events(events: np.ndarray | PreparedEvents) -> PreparedEvents:
    """``events`` (EVENT_DTYPE or an hftbacktest array) checked and indexed for `make_venue`
    (UserError on bad input); a `PreparedEvents` is returned as it is."""
    if isinstance(events, PreparedEvents):
        return events
    return PreparedEvents(*_prepare(events))


def _ws_lag_p95_ms(ev: np.ndarray, local_rows: np.ndarray) -> float:
    lag = (ev["local_ts"][local_rows] - ev["exch_ts"][local_rows]) / 1e6
    return float(np.percentile(lag, 95)) if len(lag) else float("nan")


def make_venue(events: np.ndarray | PreparedEvents, cfg: VenueConfig) -> _v.Venue:
    """Validate ``events`` (EVENT_DTYPE or an hftbacktest array, or `PreparedEvents`) and ``cfg``
    and build a venue.

    Rows flagged EXCH_EVENT drive the exchange book (in array order: their ``exch_ts`` must not
    decrease); rows flagged LOCAL_EVENT drive the local book in ``local_ts`` order (stable-sorted
    here when needed); rows with neither flag count as both. Raises UserError on bad input.
    """
    validate_config(cfg)
    prep = prepare_events(events)
    ev, exch_idx, local_idx = prep.events, prep.exch_idx, prep.local_idx
    trade_lo_px, trade_hi_px = prep.trade_lo_px, prep.trade_hi_px
    tick_lo, n_ticks = _ladder(ev, cfg.tick_px, trade_lo_px, trade_hi_px, cfg.ladder_pad_ratio)
    qmodel, qpow = parse_queue_model(cfg.queue_model)
    if cfg.latency is not None:
        lat_ts = np.ascontiguousarray(cfg.latency[0], dtype=np.int64)
        lat_en = np.ascontiguousarray(cfg.latency[1], dtype=np.float64)
        lat_rs = np.ascontiguousarray(cfg.latency[2], dtype=np.float64)
    else:
        lat_ts = np.zeros(0, np.int64)
        lat_en = np.zeros(0, np.float64)
        lat_rs = np.zeros(0, np.float64)
    firsts = []
    if len(exch_idx):
        firsts.append(int(ev["exch_ts"][exch_idx[0]]))
    if len(local_idx):
        firsts.append(int(ev["local_ts"][local_idx[0]]))
    start_ts = min(firsts) if firsts else 0
    v = _v.new_venue(
        ev,
        exch_idx,
        local_idx,
        float(cfg.tick_px),
        float(cfg.lot_qty),
        price_decimals(cfg.tick_px),
        float(cfg.maker_fee_rate),
        float(cfg.taker_fee_rate),
        int(cfg.entry_latency_ns),
        int(cfg.response_latency_ns),
        lat_ts,
        lat_en,
        lat_rs,
        qmodel,
        float(qpow),
        int(bool(cfg.partial_fills)),
        int(cfg.rate_limit_per_s),
        tick_lo,
        n_ticks,
        int(cfg.max_orders),
        start_ts,
        float(cfg.contract_size),
        int(bool(cfg.inverse)),
    )
    if cfg.start_position_qty != 0.0 or cfg.start_cash != 0.0:
        set_account(v, float(cfg.start_position_qty), float(cfg.start_cash))
    return v


def _prepare(events: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """(events as EVENT_DTYPE, exch_idx, local_idx, min and max traded px) after the checks both
    ``make_venue`` and ``extend_venue`` need (UserError on bad input)."""
    try:
        ev = np.require(as_events(np.asarray(events)), requirements=["C", "W"])
    except ValueError as exc:
        raise UserError(f"events: {exc}") from exc
    if ev.ndim != 1:
        raise UserError("events: expected a 1-D event array")
    if (
        ev.dtype.isalignedstruct is not EVENT_DTYPE.isalignedstruct
        or ev.dtype.descr != EVENT_DTYPE.descr
    ):
        # hftbacktest's dtype has the same fields and offsets but is not flagged aligned: a view
        # gives numba the one record type the compiled venue is built for
        ev = ev.view(EVENT_DTYPE)
    exch_idx, local_idx, bad_row, local_sorted, trade_lo_px, trade_hi_px = _v.scan_events(ev)
    if bad_row >= 0:
        prev = int(ev["exch_ts"][exch_idx[np.searchsorted(exch_idx, bad_row) - 1]])
        raise UserError(
            f"events: exchange time decreases at row {bad_row} "
            f"(exch_ts {int(ev['exch_ts'][bad_row])} < previous {prev}); sort the events by exch_ts"
        )
    if not local_sorted:
        local_idx = local_idx[np.argsort(ev["local_ts"][local_idx], kind="stable")]
    return ev, exch_idx, np.ascontiguousarray(local_idx), trade_lo_px, trade_hi_px


def extend_venue(v: _v.Venue, events: np.ndarray) -> None:
    """Give a venue the next block of market events (a live feed fed message by message, or a
    capture replayed again with shifted times): books, orders, accounts and records carry over.
    The venue must have processed every row of its current block (``goto`` past its last time),
    and the new block must not start before the venue's clock; UserError otherwise. The price
    ladder stays the one ``make_venue`` sized (levels beyond it are counted as out of band)."""
    ev, exch_idx, local_idx, _, _ = _prepare(events)
    rc = int(_v.feed(v, ev, exch_idx, local_idx))
    if rc == _v.ERR_PENDING:
        raise UserError("extend_venue: the venue has unprocessed events (goto past them first)")
    if rc == _v.ERR_PAST:
        raise UserError(
            f"extend_venue: the new events start before the venue's clock ({int(_v.now_ns(v))} ns)"
        )


def check_error(v: _v.Venue) -> None:
    """Raise UserError if a verb was called with bad input (the first such call is reported)."""
    ints, flts = _v._stats(v)
    code = int(ints[8])
    if code != 0:
        raise UserError(
            f"{ERROR_TEXT.get(code, f'venue error {code}')} (value {float(flts[5])!r} at local_ts {int(ints[9])})"
        )


def finish(
    v: _v.Venue, events: np.ndarray | PreparedEvents | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Trimmed (fills, actions, marks) and a stats dict; raises UserError if a verb got bad input.

    ``actions`` are in local_ts order (ties: the order they were written). Stats: events
    (exchange-side events processed), local_events, rate_limit_rejects,
    post_only_rejects, out_of_band_levels, no_slot, fills, final_mid_px, sim_equity (exchange-side
    cash + position x final exchange mid), position_qty, cash, local_* views, and ws_lag_p95_ms when
    ``events`` (the same array given to make_venue) is passed.
    """
    check_error(v)
    fills, actions, marks = _v._records(v)
    # exchange-side rows are written when they happen at the exchange, stamped with the later time
    # the strategy learns of them: a stable sort by local_ts gives the strategy's chronology
    # (reordered as raw rows: numpy's structured take leaves the padding bytes uninitialised,
    # which would break byte-for-byte determinism)
    order = np.argsort(actions["local_ts"], kind="stable")
    rows = actions.view(np.uint8).reshape(len(actions), actions.dtype.itemsize)[order]
    actions = rows.reshape(-1).view(actions.dtype)
    ints, flts = _v._stats(v)
    final_mid = float(flts[0])
    stats = {
        "events": int(ints[0]),
        "local_events": int(ints[1]),
        "rate_limit_rejects": int(ints[2]),
        "post_only_rejects": int(ints[3]),
        "out_of_band_levels": int(ints[4]),
        "no_slot": int(ints[5]),
        "fills": int(ints[6]),
        "local_fills": int(ints[7]),
        "end_local_ts": int(ints[10]),
        "end_exch_ts": int(ints[11]),
        "final_mid_px": final_mid,
        "cash": float(flts[1]),
        "position_qty": float(flts[2]),
        "sim_equity": float(flts[7]),
        "local_cash": float(flts[3]),
        "local_position_qty": float(flts[4]),
    }
    n_local = int(ints[12])
    if isinstance(events, PreparedEvents) and 0 < n_local == len(events.local_idx):
        stats["ws_lag_p95_ms"] = events.ws_lag_p95_ms  # every local row: computed once
    elif events is not None and n_local > 0:
        ev = events.events if isinstance(events, PreparedEvents) else np.asarray(events)
        if ev.dtype == EVENT_DTYPE or ev.dtype.names == EVENT_DTYPE.names:
            stats["ws_lag_p95_ms"] = _ws_lag_p95_ms(ev, _v.local_indices(v)[:n_local])
    return fills, actions, marks, stats
