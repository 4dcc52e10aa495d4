"""A run's records as polars DataFrames with names instead of codes: fills with their exact edge
components and markouts, and order actions.

``fills_frame`` columns (one row per fill, time order; amounts in quote currency):
``ts`` (UTC datetime, ns), ``exch_ts_ns``, ``local_ts_ns``, ``order_id``, ``side`` ("buy"/"sell"),
``maker``, ``px``, ``qty``, ``notional``, ``fee``, ``fee_rate``, ``mid_px``, ``target_px`` (null
when the strategy had none), ``order_age_ms``, ``position_qty``, then the edge identity per fill
``gross + slippage + fees + inventory = net`` and each over the fill's notional × 1e4
(``gross_bps`` … ``net_bps``: contributions, positive helps), then ``markout_<h>_bps`` for each
horizon of ``mmbot.audit.decompose.MARKOUT_HORIZONS_NS`` (cost: positive = the price moved against
us; null when the horizon passes the end of the data). Summed over a run, ``net`` plus the
initial position's inventory term equals the run's PnL marked at its final mid (asserted by
``check_identity``).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from mmbot.audit.decompose import FillEdges, decompose
from mmbot.enums import SIDE_LABELS
from mmbot.records import ACT_NAMES, OP_NAMES, REASON_NAMES, RunResult

SIDE_DTYPE = pl.Enum(["buy", "sell"])
EDGE_COLUMNS = ("gross", "slippage", "fees", "inventory", "net")


def _labels(codes: np.ndarray, table: dict[int, str], prefix: str) -> pl.Series:
    mapping = {int(c): table.get(int(c), f"{prefix}_{int(c)}") for c in np.unique(codes)}
    return pl.Series(codes.astype(np.int64)).replace_strict(mapping, return_dtype=pl.String)


def edge_columns(e: FillEdges) -> dict[str, np.ndarray]:
    """The per-fill edge and markout columns of ``e`` (time order), see the module docstring."""
    net = e.gross + e.slippage + e.fees + e.inventory
    cols: dict[str, np.ndarray] = {
        "gross": e.gross,
        "slippage": e.slippage,
        "fees": e.fees,
        "inventory": e.inventory,
        "net": net,
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in EDGE_COLUMNS:
            cols[f"{k}_bps"] = cols[k] / e.notional * 1e4
    for h, v in e.markout_cost_bps.items():
        cols[f"markout_{h}_bps"] = v
    return cols


def fills_frame(result: RunResult, run: str = "") -> pl.DataFrame:
    """One run's fills with their edge components and markouts (module docstring)."""
    order = np.argsort(result.fills["exch_ts"], kind="stable")
    f = result.fills[order]
    e = decompose(result, run or "run")
    base = pl.DataFrame(
        {
            "run": np.full(len(f), run, dtype=object).astype(str),
            "exch_ts_ns": f["exch_ts"].astype(np.int64),
            "local_ts_ns": f["local_ts"].astype(np.int64),
            "order_id": f["order_id"].astype(np.int64),
            "side": _labels(f["side"], SIDE_LABELS, "side").cast(SIDE_DTYPE),
            "maker": f["maker"].astype(bool),
            "px": f["px"].astype(np.float64),
            "qty": f["qty"].astype(np.float64),
            "notional": e.notional,
            "fee": f["fee"].astype(np.float64),
            "fee_rate": f["fee_rate"].astype(np.float64),
            "mid_px": e.mid_px,
            "target_px": f["target_px"].astype(np.float64),
            "order_age_ms": f["order_age_ns"].astype(np.float64) / 1e6,
            "position_qty": f["position_qty"].astype(np.float64),
        },
        schema_overrides={"run": pl.String},
    )
    edges = pl.DataFrame(edge_columns(e))
    out = pl.concat([base, edges], how="horizontal")
    ts = pl.from_epoch(pl.col("exch_ts_ns"), time_unit="ns").dt.replace_time_zone("UTC")
    return out.with_columns(
        ts.alias("ts"), pl.col("target_px").fill_nan(None), pl.col("^markout_.*$").fill_nan(None)
    ).select(["run", "ts", *[c for c in out.columns if c != "run"]])


def orders_frame(result: RunResult, run: str = "") -> pl.DataFrame:
    """One run's order actions (intended, blocked, sent, acked, …) with named kind/op/side/reason."""
    a = result.actions
    df = pl.DataFrame(
        {
            "run": [run] * len(a),
            "local_ts_ns": a["local_ts"].astype(np.int64),
            "exch_ts_ns": a["exch_ts"].astype(np.int64),
            "order_id": a["order_id"].astype(np.int64),
            "kind": _labels(a["kind"], ACT_NAMES, "kind"),
            "op": _labels(a["op"], OP_NAMES, "op"),
            "side": _labels(a["side"], SIDE_LABELS, "side"),
            "reason": _labels(a["reason"], REASON_NAMES, "reason"),
            "px": a["px"].astype(np.float64),
            "qty": a["qty"].astype(np.float64),
            "order_age_ms": a["order_age_ns"].astype(np.float64) / 1e6,
        },
        schema_overrides={"run": pl.String},
    )
    ts = pl.from_epoch(pl.col("local_ts_ns"), time_unit="ns").dt.replace_time_zone("UTC")
    return df.with_columns(ts.alias("ts")).select(["run", "ts", *df.columns[1:]])


__all__ = ["EDGE_COLUMNS", "edge_columns", "fills_frame", "orders_frame"]
