"""A calibration file (``mmbot data calibrate``'s output): the capture it is read from, where it
came from (the provenance: source, date, the command that reproduces it), writing it, and the
rows of its fit check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from mmbot.data.calibrate import FIT_ROUNDS, REQUOTE_TERM, FitOptions
from mmbot.errors import UserError

# the as-captured-only switches, by the model field each sets: the provenance names a switch when
# the fitted model took it (a wide-tick fit with the flag does not)
MODEL_SWITCH_FLAGS: tuple[tuple[str, str], ...] = (
    ("--whole-level-pulls", "stale_pull_whole"),
    ("--sweep-requote", REQUOTE_TERM),
    ("--fit-resilience", "resilience_half_life_s"),
    ("--fit-hold", "pull_hold_s"),
    ("--maker-orders", "maker_front_keep"),
    ("--slow-impact", "impact_slow_ratio"),
    ("--graded-moves", "momentum_rate_per_s_per_bps"),
)


COMPARE_KEYS = (
    "spread_bps_mean",
    "trade_rate_per_s",
    "vol_bps_per_sqrt_s",
    "markout_1s_bps",
    "parent_markout_1s_bps",
    "parent_rate_per_s",
    "parent_size_mean_qty",
    "trade_size_mean_qty",
    "parent_count_fano_1s",
    "parent_same_side_ratio",
    "feed_latency_ms_p50",
    "feed_latency_ms_p95",
    "depth_update_rate_per_s",
)


def load_capture(path: Path) -> tuple[np.ndarray, str]:
    """(events, symbol) of a capture, through the data layer's reader."""
    from mmbot.data import load_events

    path = Path(path)
    if not path.exists():
        raise UserError(f"calibrate: capture not found: {path}")
    events, stats = load_events(path)
    return events, str(getattr(stats, "symbol", "") or "")


def add_provenance(
    calib: dict,
    path: Path,
    out: Path,
    *,
    symbol: str,
    log: list[str],
    options: FitOptions | None = None,
) -> None:
    """Name the calibration after its file and record where it came from: the capture's name and
    sha256, the date, the command that reproduces it (``options``' flags; the as-captured-only
    switches when the model took them) and the fit log."""
    import datetime
    import hashlib

    opt = options if options is not None else FitOptions()
    path = Path(path)
    stem = path.name.split(".")[0]
    calib["name"] = Path(out).stem
    calib["symbol"] = symbol or stem
    calib["provenance"] = {
        "source_file": str(path.name),
        "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
        "command": "mmbot data calibrate "
        + " ".join(
            [str(path.name), "--out", str(Path(out).name)]
            + ([f"--tick-bps {opt.tick_bps:g}"] if opt.tick_bps > 0 else [])
            + ([f"--rounds {opt.rounds}"] if opt.rounds != FIT_ROUNDS else [])
            + ([f"--fit-seconds {opt.fit_seconds}"] if opt.fit_seconds else [])
            + (["--fit-trade-through"] if opt.fit_trade_through else [])
            + (["--fit-permanence-markout"] if opt.fit_permanence_markout else [])
            + [flag for flag, field in MODEL_SWITCH_FLAGS if calib["model"].get(field)]
        ),
        "capture": stem,
        "fit_log": log,
    }


def write_calibration(calib: dict, out: Path) -> None:
    """Sorted-key JSON, written to a temporary file and moved into place."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_bytes(
        orjson.dumps(
            calib, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
        )
        + b"\n"
    )
    tmp.replace(out)


def compare_rows(calib: dict) -> list[tuple[str, float, float]]:
    """(statistic, capture, fitted market) for COMPARE_KEYS: what ``mmbot data calibrate`` shows."""
    return [
        (key, float(calib["target_stats"][key]), float(calib["fit_stats"][key]))
        for key in COMPARE_KEYS
    ]
