"""On-disk form of a run's records: Parquet (fills, actions, marks) + meta.json + the seed's audit.jsonl.

Layout written by ``write_run(run_dir, result, name)``::

    run_dir/<name>/fills.parquet  actions.parquet  marks.parquet  meta.json  audit.jsonl

fills.parquet holds the ``FILL_DTYPE`` columns and, beside them, each fill's edge components and
markouts (``gross`` … ``net``, ``*_bps``, ``markout_<h>_bps``; ``mmbot.audit.frames``).

(``name == ""`` writes into ``run_dir`` itself). ``read_run(run_dir)`` reads one run directory, or
every sub-directory holding a ``meta.json`` (sorted by name), back into RunResult objects with the
exact ``mmbot.records`` dtypes. audit.jsonl has one JSON line per fill and per action, keys in sorted
order, written vectorised by polars (no per-row Python).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from mmbot.audit.decompose import validate_result
from mmbot.audit.edge_report import dump_json
from mmbot.errors import UserError
from mmbot.frame_io import struct_from_frame
from mmbot.records import (
    ACT_NAMES,
    ACTION_DTYPE,
    FILL_DTYPE,
    MARK_DTYPE,
    OP_NAMES,
    REASON_NAMES,
    RunResult,
)

FILES = {"fills": FILL_DTYPE, "actions": ACTION_DTYPE, "marks": MARK_DTYPE}


def _to_frame(arr: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({n: np.ascontiguousarray(arr[n]) for n in arr.dtype.names})


def _fill_edges(result: RunResult) -> dict[str, np.ndarray]:
    """Per-fill edge components and markouts (``mmbot.audit.frames.edge_columns``) in the records'
    row order: fills.parquet carries them beside the record columns (readers ignore them)."""
    from mmbot.audit.decompose import decompose
    from mmbot.audit.frames import edge_columns

    cols = edge_columns(decompose(result))
    order = np.argsort(result.fills["exch_ts"], kind="stable")
    out = {}
    for k, v in cols.items():
        aligned = np.empty_like(v)
        aligned[order] = v
        out[k] = aligned
    return out


def _names(codes: np.ndarray, names: dict[int, str], prefix: str) -> pl.Series:
    """Map integer codes to their names (vectorised; unknown codes get ``prefix_<code>``)."""
    mapping = {i: names.get(i, f"{prefix}_{i}") for i in range(256)}
    return pl.Series(codes.astype(np.int64)).replace_strict(mapping, return_dtype=pl.String)


def _audit_frames(result: RunResult, name: str) -> list[pl.DataFrame]:
    """The audit.jsonl rows of one run as frames with sorted column names."""
    sym = str(result.meta.get("symbol") or "")
    common = [pl.lit(name).alias("run"), pl.lit(sym).alias("symbol")]
    f = result.fills
    fills = pl.DataFrame(
        {
            "ts_ns": f["exch_ts"].astype(np.int64),
            "local_ts_ns": f["local_ts"].astype(np.int64),
            "order_id": f["order_id"].astype(np.int64),
            "side": pl.Series(f["side"].astype(np.int64)).replace_strict(
                {1: "buy", -1: "sell"}, default="?", return_dtype=pl.String
            ),
            "maker": f["maker"].astype(bool),
            "px": f["px"].astype(np.float64),
            "qty": f["qty"].astype(np.float64),
            "fee": f["fee"].astype(np.float64),
            "fee_rate": f["fee_rate"].astype(np.float64),
            "mid_px": f["mid_px"].astype(np.float64),
            # NaN target (the strategy had none) -> null in JSON
            "target_px": f["target_px"].astype(np.float64),
            "order_age_ms": f["order_age_ns"].astype(np.float64) / 1e6,
            "position_qty": f["position_qty"].astype(np.float64),
        }
    ).with_columns(pl.lit("fill").alias("type"), *common)
    a = result.actions
    reason = _names(a["reason"], REASON_NAMES, "reason")
    actions = pl.DataFrame(
        {
            "ts_ns": a["local_ts"].astype(np.int64),
            "exch_ts_ns": a["exch_ts"].astype(np.int64),
            "order_id": a["order_id"].astype(np.int64),
            "kind": _names(a["kind"], ACT_NAMES, "kind"),
            "side": pl.Series(a["side"].astype(np.int64)).replace_strict(
                {1: "buy", -1: "sell"}, default="", return_dtype=pl.String
            ),
            "op": _names(a["op"], OP_NAMES, "op"),
            "reason": reason,
            "px": a["px"].astype(np.float64),
            "qty": a["qty"].astype(np.float64),
            "order_age_ms": a["order_age_ns"].astype(np.float64) / 1e6,
        }
    ).with_columns(pl.lit("action").alias("type"), *common)
    # the seed's field: the guard/exchange reason, null unless blocked/rejected
    actions = actions.with_columns(
        pl.when(pl.col("reason") != "none")
        .then(pl.col("reason"))
        .otherwise(None)
        .alias("blocked_reason")
    )
    fills = fills.with_columns(pl.col("target_px").fill_nan(None))
    return [fills.select(sorted(fills.columns)), actions.select(sorted(actions.columns))]


def write_audit_jsonl(path: str | Path, results: Sequence[tuple[str, RunResult]]) -> Path:
    """Write the seed's audit.jsonl for (name, result) pairs: fills then actions of each run, one JSON
    object per line with sorted keys. Overwrites ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        for name, r in results:
            for df in _audit_frames(r, name):
                if df.height:
                    df.write_ndjson(fh)
    tmp.replace(path)
    return path


def write_run(
    run_dir: str | Path, result: RunResult, name: str = "", *, audit_jsonl: bool = True
) -> Path:
    """Write one run's records under ``run_dir/name`` (see module docstring); returns that directory.
    ``audit_jsonl=False`` skips the (large: ~270 bytes per fill/action) audit.jsonl."""
    validate_result(result, f"run {name!r}")
    d = Path(run_dir) / name if name else Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    for fname, arr in (
        ("fills", result.fills),
        ("actions", result.actions),
        ("marks", result.marks),
    ):
        tmp = d / f".{fname}.parquet.tmp"
        frame = _to_frame(arr)
        if fname == "fills":
            frame = frame.with_columns(**_fill_edges(result))
        frame.write_parquet(tmp, compression="zstd")
        tmp.replace(d / f"{fname}.parquet")
    meta = dict(result.meta)
    meta.setdefault("run_name", name)
    dump_json(meta, d / "meta.json")
    if audit_jsonl:
        write_audit_jsonl(d / "audit.jsonl", [(name, result)])
    return d


def _read_records(d: Path, fname: str) -> np.ndarray:
    """``d/<fname>.parquet`` (fills, actions or marks) as its ``mmbot.records`` dtype."""
    p = d / f"{fname}.parquet"
    if not p.exists():
        raise UserError(f"run directory {d}: {fname}.parquet not found")
    try:
        df = pl.read_parquet(p)
    except Exception as exc:  # noqa: BLE001 - any parse failure is bad input
        raise UserError(f"{p} is not a readable Parquet file: {exc}") from None
    return struct_from_frame(df, FILES[fname], str(p))


class StoredRun(RunResult):
    """A run whose records `write_run` wrote to ``run_dir``: its meta (the run's own dict) is kept,
    its fills, actions and marks are read from the directory at each access and kept nowhere. A
    long soak hands these to its end-of-soak reports, so that walking every run holds one run's
    records at a time, not all of them."""

    __slots__ = ("run_dir",)

    def __init__(self, run_dir: str | Path, meta: dict):
        self.run_dir = Path(run_dir)
        self.meta = meta

    @property
    def fills(self) -> np.ndarray:  # type: ignore[override]
        return _read_records(self.run_dir, "fills")

    @property
    def actions(self) -> np.ndarray:  # type: ignore[override]
        return _read_records(self.run_dir, "actions")

    @property
    def marks(self) -> np.ndarray:  # type: ignore[override]
        return _read_records(self.run_dir, "marks")

    def n_rows(self, name: str) -> int:
        """From the Parquet file's metadata: the records are not read."""
        p = self.run_dir / f"{name}.parquet"
        try:
            return int(pl.scan_parquet(p).select(pl.len()).collect().item())
        except Exception:  # noqa: BLE001 - a missing or bad file says so where it is read
            return len(_read_records(self.run_dir, name))


def _read_one(d: Path) -> RunResult:
    arrays = {fname: _read_records(d, fname) for fname in FILES}
    mp = d / "meta.json"
    if not mp.exists():
        raise UserError(f"run directory {d}: meta.json not found")
    try:
        meta = orjson.loads(mp.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise UserError(f"{mp} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise UserError(f"{mp} is not a JSON object")
    r = RunResult(arrays["fills"], arrays["actions"], arrays["marks"], meta)
    validate_result(r, str(d))
    return r


def run_dirs(run_dir: str | Path) -> list[Path]:
    """The run directories under ``run_dir``: itself if it holds meta.json, else its sub-directories
    that do (sorted by name)."""
    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(f"run directory not found: {root}")
    if (root / "meta.json").exists() or (root / "fills.parquet").exists():
        return [root]
    subs = sorted(p for p in root.iterdir() if p.is_dir() and (p / "meta.json").exists())
    if not subs:
        raise UserError(f"{root} holds no run records (no meta.json in it or its sub-directories)")
    return subs


def read_run(run_dir: str | Path) -> list[RunResult]:
    """Read every run under ``run_dir`` (see ``run_dirs``); bad or missing files -> UserError."""
    return [_read_one(d) for d in run_dirs(run_dir)]


__all__ = ["StoredRun", "read_run", "run_dirs", "write_audit_jsonl", "write_run"]
