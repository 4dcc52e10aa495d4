"""Exact per-fill edge decomposition of one run's records (vectorised numpy, no per-fill Python).

Owns the maths of DESIGN.md "Edge decomposition". For fill i with side s (+1 buy / -1 sell), price p,
quantity q, venue mid at fill m_i, strategy target p* (NaN -> p* = p), quote fee paid f (rebate < 0):

    gross_i     = s·(m_i − p*)·q          the edge the strategy meant to capture
    slippage_i  = s·(p* − p)·q            execution vs intention (stale quote filled worse < 0)
    fees_i      = −f                      a maker rebate is positive
    inventory   = Σ_i s_i·q_i·(m_T − m_i) + pos0·(m_T − m_0)   = Σ position·Δmid over time

    funding     = Σ_t −rate_t·position(t)·m_t   (perpetuals; 0 without a funding schedule)

and gross + slippage + fees + inventory + funding = cash + pos_T·m_T − pos0·m_0 + funding (PnL
marked at the final mid m_T), checked by ``check_identity``. Prices enter through the contract's value function
(``mmbot.instruments``): for a linear contract of size C, V(x) = C·x and the formulas read as above
in quote currency; for an inverse one, V(x) = −C/x and every term (fees included: the venue charges
rate·q·|V(p)|) is in the settle coin, with ``to_usd`` (the final mid) giving the USD view. Markout costs: −s·(m_{t+τ} − m_i)/m_i·1e4 (positive = the price
moved against us), mid at t+τ taken from the marks series; fills whose horizon passes the end of the
data are excluded (NaN) and counted by the report.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from mmbot.errors import UserError
from mmbot.funding import schedule_from_meta
from mmbot.instruments import ContractSpec, spec_from_meta
from mmbot.records import ACTION_DTYPE, FILL_DTYPE, MARK_DTYPE, RunResult

# Markout horizons of the report (label -> ns). 1 s is the gated one (adverse_bps_p95).
MARKOUT_HORIZONS_NS: dict[str, int] = {
    "100ms": 100_000_000,
    "1s": 1_000_000_000,
    "5s": 5_000_000_000,
    "30s": 30_000_000_000,
}
ADVERSE_HORIZON = "1s"
# Relative tolerance of the identity (DESIGN.md: to floating-point precision; the issue: 1e-9).
IDENTITY_REL_TOL = 1e-9


class AuditError(RuntimeError):
    """The records contradict themselves (identity or position bookkeeping violated): a bug upstream,
    never a warning."""


class FillEdges(NamedTuple):
    """Per-fill arrays of one run (time order), plus the run's scalars. Amounts are in quote currency."""

    ts_ns: np.ndarray  # fill exch_ts
    side: np.ndarray  # +1 / -1 (float64)
    maker: np.ndarray  # bool
    px: np.ndarray
    qty: np.ndarray
    notional: np.ndarray  # p·q
    mid_px: np.ndarray  # m_i
    target_px: np.ndarray  # p* after the NaN rule (= px where the strategy had no target)
    no_target: np.ndarray  # bool: target_px was NaN
    gross: np.ndarray
    slippage: np.ndarray
    fees: np.ndarray  # −fee
    inventory: np.ndarray  # s·q·(m_T − m_i): this fill's share of the inventory term
    slippage_cost_bps: np.ndarray  # −slippage_i/(p·q)·1e4 (positive hurts)
    markout_cost_bps: dict[str, np.ndarray]  # horizon label -> per-fill cost, NaN if past the data
    position_qty: np.ndarray  # position after each fill
    final_mid_px: float
    start_mid_px: float
    initial_position_qty: float
    fills_mid_repaired: int  # fills whose NaN mid_px was replaced by the last mark's mid
    marks_nan_dropped: int  # marks with a NaN mid (a book side empty), dropped
    inventory_initial: float  # pos0·(m_T − m_0)
    cash: float  # Σ(−s·V(p)·q) − Σ fee
    pnl: float  # cash + pos_T·V(m_T) − pos0·V(m_0)
    settle: str = ""  # coin of every amount ("" = unknown quote)
    inverse: bool = False
    contract_size: float = 1.0
    to_usd: float = 1.0  # settle coin -> quote currency (the final mid for inverse, else 1)
    notional_usd: np.ndarray | None = None  # quote-currency notional per fill
    funding: float = 0.0  # Σ −rate·position(t)·|V(mark(t))| over the run's funding times
    funding_payments: int = 0


def _require_fields(arr: np.ndarray, dtype: np.dtype, what: str) -> None:
    names = arr.dtype.names or ()
    missing = [n for n in (dtype.names or ()) if n not in names]
    if missing:
        raise UserError(f"{what} records: missing column(s) {', '.join(missing)}")


def validate_result(result: RunResult, label: str = "run") -> None:
    """Check one run's records before the audit uses them; bad input -> UserError naming it."""
    _require_fields(result.fills, FILL_DTYPE, f"{label}: fills")
    _require_fields(result.actions, ACTION_DTYPE, f"{label}: actions")
    _require_fields(result.marks, MARK_DTYPE, f"{label}: marks")
    f = result.fills
    if len(f):
        for col in ("px", "qty", "fee"):
            bad = ~np.isfinite(f[col])
            if bad.any():
                i = int(np.argmax(bad))
                raise UserError(
                    f"{label}: fills column {col} has {int(bad.sum())} non-finite value(s) "
                    f"(first at row {i}, exch_ts={int(f['exch_ts'][i])})"
                )
        # mid_px may be NaN (a book side was empty at the fill): repaired from the marks and counted
        if np.isinf(f["mid_px"]).any():
            raise UserError(f"{label}: fills column mid_px has an infinite value")
        if (f["px"] <= 0).any() or (f["mid_px"] <= 0).any():
            raise UserError(f"{label}: fills have a non-positive px or mid_px")
        if (f["qty"] <= 0).any():
            raise UserError(f"{label}: fills have a non-positive qty")
        side = f["side"]
        if not np.all((side == 1) | (side == -1)):
            raise UserError(f"{label}: fills side must be +1 or -1")
        tgt = f["target_px"]
        if np.isinf(tgt).any():
            raise UserError(f"{label}: fills column target_px has an infinite value")
    m = result.marks
    if len(m):
        # NaN mids (an empty book side) are dropped and counted; inf or <= 0 is bad input
        bad = np.isinf(m["mid_px"]) | (m["mid_px"] <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise UserError(
                f"{label}: marks column mid_px has {int(bad.sum())} infinite/non-positive value(s) "
                f"(first at row {i})"
            )
        if not np.isfinite(m["position_qty"]).all():
            raise UserError(f"{label}: marks column position_qty has a non-finite value")


def _meta_float(meta: dict, key: str) -> float | None:
    v = meta.get(key)
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def final_mid(
    result: RunResult, marks: np.ndarray | None = None, fill_mid: np.ndarray | None = None
) -> float:
    """The mid the run is marked at: meta final_mid_px, else the last valid mark, else the last
    fill's mid. ``marks``/``fill_mid``: the cleaned, time-sorted series when the caller has them."""
    x = _meta_float(result.meta, "final_mid_px")
    if x is not None and x > 0:
        return x
    m = marks if marks is not None else result.marks[np.isfinite(result.marks["mid_px"])]
    if len(m):
        return float(m["mid_px"][np.argmax(m["exch_ts"])])
    fm = fill_mid if fill_mid is not None else result.fills["mid_px"]
    fm = fm[np.isfinite(fm)]
    if len(fm):
        return float(fm[-1])
    return float("nan")


def _sorted(arr: np.ndarray, key: str) -> np.ndarray:
    ts = arr[key]
    if len(ts) > 1 and (np.diff(ts) < 0).any():
        return arr[np.argsort(ts, kind="stable")]
    return arr


def mid_at(marks: np.ndarray, ts_ns: np.ndarray) -> np.ndarray:
    """Mid in force at each time (last mark at or before it); NaN before the first mark.
    ``marks`` must be sorted by exch_ts."""
    idx = np.searchsorted(marks["exch_ts"], ts_ns, side="right") - 1
    out = np.full(len(ts_ns), np.nan)
    ok = idx >= 0
    out[ok] = marks["mid_px"][idx[ok]]
    return out


def data_end_ns(result: RunResult) -> int:
    """Last time the data covers: max of meta end_ts and the last mark/fill time."""
    ends = [0]
    if len(result.marks):
        ends.append(int(result.marks["exch_ts"].max()))
    if len(result.fills):
        ends.append(int(result.fills["exch_ts"].max()))
    e = result.meta.get("end_ts")
    if isinstance(e, (int, float, np.integer, np.floating)) and math.isfinite(float(e)):
        ends.append(int(e))
    return max(ends)


def contract_value(x: np.ndarray | float, spec: ContractSpec) -> np.ndarray | float:
    """Settle-coin value of one contract at price(s) ``x``: C·x linear, −C/x inverse."""
    if spec.inverse:
        return -spec.contract_size / x
    return x * spec.contract_size


def _valid_marks(result: RunResult) -> tuple[np.ndarray, int]:
    """The marks sorted by time without NaN mids; (marks, how many NaN ones were dropped)."""
    marks = _sorted(result.marks, "exch_ts")
    nan_marks = np.isnan(marks["mid_px"])
    dropped = int(nan_marks.sum())
    return (marks[~nan_marks] if dropped else marks), dropped


def _start_end_mids(result: RunResult, marks: np.ndarray, mid: np.ndarray) -> tuple[float, float]:
    """The mids the run starts and ends at (``start_mid_px`` / `final_mid`; the first mark or
    fill mid when the run did not record its start)."""
    n = len(mid)
    m_T = final_mid(result, marks, mid)
    if n == 0 and not math.isfinite(m_T):
        m_T = 0.0  # nothing traded and nothing marked: every term is 0
    m_0 = _meta_float(result.meta, "start_mid_px")
    if m_0 is None:
        m_0 = float(marks["mid_px"][0]) if len(marks) else (float(mid[0]) if n else m_T)
    return m_0, m_T


def _fill_mids(fills: np.ndarray, marks: np.ndarray, label: str) -> tuple[np.ndarray, int]:
    """The fills' mids, a NaN one repaired with the mid in force just before the fill (the last
    valid mark at or before it); (mids, how many were repaired)."""
    mid = fills["mid_px"].astype(np.float64)
    nan_mid = np.isnan(mid)
    mid_repaired = int(nan_mid.sum())
    if mid_repaired:
        mid = np.where(nan_mid, mid_at(marks, fills["exch_ts"].astype(np.int64)), mid)
        if np.isnan(mid).any():
            i = int(np.argmax(np.isnan(mid)))
            raise UserError(
                f"{label}: fills mid_px is NaN at row {i} and no earlier mark has a mid to repair it"
            )
    return mid, mid_repaired


def _check_position(fills: np.ndarray, qty: np.ndarray, position: np.ndarray, label: str) -> None:
    """The venue's own position must agree with the fills (else the records are inconsistent)."""
    if not len(fills):
        return
    scale = max(1.0, float(np.abs(qty).sum()))
    err = np.abs(position - fills["position_qty"])
    if float(err.max()) > 1e-9 * scale:
        i = int(np.argmax(err))
        raise AuditError(
            f"{label}: fills position_qty disagrees with the cumulative fills at row {i} "
            f"(records {fills['position_qty'][i]!r}, cumulative {position[i]!r})"
        )


def _markout_costs(
    ts: np.ndarray, side: np.ndarray, mid: np.ndarray, marks: np.ndarray, end_ns: int
) -> dict[str, np.ndarray]:
    """Per horizon, each fill's markout cost in bps (NaN when the horizon passes the data's end)."""
    markouts: dict[str, np.ndarray] = {}
    for lab, tau in MARKOUT_HORIZONS_NS.items():
        t_h = ts + tau
        m_h = mid_at(marks, t_h) if len(marks) else np.full(len(ts), np.nan)
        m_h = np.where(t_h > end_ns, np.nan, m_h)
        markouts[lab] = -side * (m_h - mid) / mid * 1e4
    return markouts


def decompose(result: RunResult, label: str = "run") -> FillEdges:
    """Per-fill decomposition of one run (see the module docstring). Validates the records first."""
    validate_result(result, label)
    spec = spec_from_meta(result.meta)
    fills = _sorted(result.fills, "exch_ts")
    marks, marks_dropped = _valid_marks(result)
    n = len(fills)
    side = fills["side"].astype(np.float64)
    px = fills["px"].astype(np.float64)
    qty = fills["qty"].astype(np.float64)
    mid, mid_repaired = _fill_mids(fills, marks, label)
    raw_tgt = fills["target_px"].astype(np.float64)
    no_target = np.isnan(raw_tgt)
    tgt = np.where(no_target, px, raw_tgt)
    fee = fills["fee"].astype(np.float64)
    v_px = contract_value(px, spec)
    notional = qty * np.abs(v_px)
    notional_usd = qty * spec.contract_size if spec.inverse else notional
    sq = side * qty

    m_0, m_T = _start_end_mids(result, marks, mid)
    pos0 = _meta_float(result.meta, "initial_position_qty") or 0.0

    v_mid = contract_value(mid, spec)
    v_tgt = contract_value(tgt, spec)
    v_T = contract_value(m_T, spec) if m_T > 0 else 0.0
    v_0 = contract_value(m_0, spec) if m_0 > 0 else 0.0
    gross = sq * (v_mid - v_tgt)
    slippage = sq * (v_tgt - v_px)
    fees = -fee
    inventory = sq * (v_T - v_mid)
    inventory_initial = pos0 * (v_T - v_0) if pos0 else 0.0

    position = pos0 + np.cumsum(sq)
    _check_position(fills, qty, position, label)

    cash = float(-(sq * v_px).sum() - fee.sum())
    pos_T = float(position[-1]) if n else pos0
    funding, n_pay = _funding(result, spec, fills, position, pos0, marks)
    pnl = cash + pos_T * v_T - pos0 * v_0 + funding

    with np.errstate(divide="ignore", invalid="ignore"):
        slippage_cost_bps = -slippage / notional * 1e4

    ts = fills["exch_ts"].astype(np.int64)
    markouts = _markout_costs(ts, side, mid, marks, data_end_ns(result))
    return FillEdges(
        ts_ns=ts,
        side=side,
        maker=fills["maker"].astype(bool),
        px=px,
        qty=qty,
        notional=notional,
        mid_px=mid,
        target_px=tgt,
        no_target=no_target,
        gross=gross,
        slippage=slippage,
        fees=fees,
        inventory=inventory,
        slippage_cost_bps=slippage_cost_bps,
        markout_cost_bps=markouts,
        position_qty=position,
        final_mid_px=m_T,
        start_mid_px=m_0,
        initial_position_qty=pos0,
        fills_mid_repaired=mid_repaired,
        marks_nan_dropped=marks_dropped,
        inventory_initial=inventory_initial,
        cash=cash,
        pnl=pnl,
        settle=spec.settle,
        inverse=spec.inverse,
        contract_size=spec.contract_size,
        to_usd=(m_T if spec.inverse and m_T > 0 else 1.0),
        notional_usd=notional_usd,
        funding=funding,
        funding_payments=n_pay,
    )


def _funding(
    result: RunResult,
    spec: ContractSpec,
    fills: np.ndarray,
    position: np.ndarray,
    pos0: float,
    marks: np.ndarray,
) -> tuple[float, int]:
    """Total funding (settle coin) and the number of payments: at each funding time t the position
    held just before t (fills at t come after) times |V(mid in force at t)|, times −rate."""
    sched = schedule_from_meta(result.meta)
    if sched is None or len(sched.times_ns) == 0:
        return 0.0, 0
    t = sched.times_ns
    k = np.searchsorted(fills["exch_ts"].astype(np.int64), t, side="left")
    held = (
        np.where(k > 0, position[np.maximum(k - 1, 0)], pos0)
        if len(position)
        else np.full(len(t), pos0)
    )
    mark = mid_at(marks, t) if len(marks) else np.full(len(t), np.nan)
    pay = held != 0
    if np.isnan(mark[pay]).any():
        i = int(np.argmax(np.isnan(mark) & pay))
        raise UserError(f"funding at {int(t[i])}: no mid in force to value the position at")
    value = np.abs(contract_value(np.where(pay, mark, 1.0), spec))
    amounts = np.where(pay, -sched.rates * held * value, 0.0)
    return float(amounts.sum()), int(pay.sum())


def component_totals(e: FillEdges) -> dict[str, float]:
    """Quote-amount totals of the four components, pnl and turnover for one run."""
    return {
        "gross": float(e.gross.sum()),
        "slippage": float(e.slippage.sum()),
        "fees": float(e.fees.sum()),
        "inventory": float(e.inventory.sum()) + e.inventory_initial,
        "funding": e.funding,
        "pnl": e.pnl,
        "turnover": float(e.notional.sum()),
    }


def check_identity(e: FillEdges, label: str = "run") -> float:
    """Assert gross + slippage + fees + inventory == pnl to IDENTITY_REL_TOL relative (to the run's
    turnover scale, since pnl itself may be ~0). Returns the relative error; raises AuditError."""
    t = component_totals(e)
    lhs = t["gross"] + t["slippage"] + t["fees"] + t["inventory"] + t["funding"]
    scale = max(1.0, t["turnover"], abs(t["pnl"]), float(np.abs(e.fees).sum()))
    if e.initial_position_qty:
        px_hi = max(e.final_mid_px, e.start_mid_px)
        unit = e.contract_size / min(e.final_mid_px, e.start_mid_px) if e.inverse else px_hi
        scale = max(scale, abs(e.initial_position_qty) * unit)
    rel = abs(lhs - t["pnl"]) / scale
    if not rel <= IDENTITY_REL_TOL:  # also catches NaN
        raise AuditError(
            f"{label}: edge identity violated: gross+slippage+fees+inventory={lhs!r} "
            f"but pnl marked at the final mid={t['pnl']!r} (relative error {rel:.3e} > "
            f"{IDENTITY_REL_TOL:g})"
        )
    return rel


def inventory_by_marks(result: RunResult) -> float:
    """Σ position·Δmid over the marks series (a second route to the inventory term, used as a check
    when the marks carry a row at every fill; see tests)."""
    m = _sorted(result.marks, "exch_ts")
    m = m[np.isfinite(m["mid_px"])]
    if len(m) < 2:
        return 0.0
    return float((m["position_qty"][:-1] * np.diff(m["mid_px"])).sum())
