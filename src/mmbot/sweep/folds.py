"""Walk-forward folds of a sweep: the market cut into consecutive time windows, stored once on disk.

A fold is what one trial runs on: one event array per capture (several captures -> several runs,
one EDGE_REPORT). Sources:

- ``--market synthetic|CALIBRATION.json --hours H --folds N``: one continuous synthetic market of
  H hours (seeded by ``--seed``) cut into N windows of H/N hours;
- ``--data PATH...``: with ``--folds N`` every capture is cut into N equal time windows and fold i
  holds window i of each capture; without ``--folds``, one fold per capture (e.g. one per day).

A window after the first starts from the book its capture had at the cut (``BookCarry`` prefix), so
no fold starts from an empty book. Each fold's arrays are written as ``.npy`` under ``OUT/folds``
with a manifest (``folds.json``): workers load them by path (once per process), the driver never
ships events, and a resumed sweep reuses them when its inputs are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import numpy as np

from mmbot.errors import UserError

NS_PER_HOUR: Final[int] = 3_600_000_000_000
# Synthetic market clock start (2024-01-01T00:00:00Z), the soak's: artifacts never depend on the date.
SYNTH_START_NS: Final[int] = 1_704_067_200_000_000_000
MANIFEST: Final[str] = "folds.json"


@dataclass(frozen=True)
class FoldPart:
    """One capture's window in a fold: the ``.npy`` file and what a run needs to know about it."""

    path: str
    symbol: str
    tick_px: float | None
    lot_qty: float | None
    start_ns: int
    end_ns: int
    events: int
    data_format: str = ""  # the capture's (mmbot.instruments.detect_spec: linear or inverse)


@dataclass(frozen=True)
class Fold:
    index: int
    parts: tuple[FoldPart, ...]

    @property
    def label(self) -> str:
        return f"fold{self.index}"

    @property
    def hours(self) -> float:
        return sum((p.end_ns - p.start_ns) for p in self.parts) / NS_PER_HOUR


def _cut(events: np.ndarray, n: int, tick_px: float | None) -> list[np.ndarray]:
    """``events`` cut into ``n`` equal exchange-time windows, each after the first with the book
    at its cut in front (so it does not start empty)."""
    from mmbot.backtest import guess_tick_lot
    from mmbot.soak.book_carry import BookCarry

    ts = events["exch_ts"]
    t0, t1 = int(ts[0]), int(ts[-1]) + 1
    edges = [t0 + (t1 - t0) * k // n for k in range(n + 1)]
    tick = tick_px if tick_px and tick_px > 0 else guess_tick_lot(events)[0]
    carry = BookCarry(float(tick))
    out = []
    for k in range(n):
        lo, hi = np.searchsorted(ts, [edges[k], edges[k + 1]], side="left")
        window = events[lo:hi]
        if len(window) == 0:
            raise UserError(f"fold {k}: no events in its window (use fewer --folds)")
        out.append(window if k == 0 else carry.prefix(window))
        carry.apply(window)
    return out


def _digest(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _load_existing(folder: Path, digest: str) -> list[Fold] | None:
    man = folder / MANIFEST
    if not man.exists():
        return None
    try:
        raw = json.loads(man.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if raw.get("digest") != digest:
        return None
    folds = [
        Fold(f["index"], tuple(FoldPart(**p) for p in f["parts"])) for f in raw.get("folds", [])
    ]
    if all(Path(p.path).exists() for f in folds for p in f.parts):
        return folds
    return None


def _write(folder: Path, digest: str, spec: dict, windows: list[list[tuple]]) -> list[Fold]:
    """windows[i] = [(events, symbol, tick, lot[, data format]), ...] for fold i -> .npy files +
    manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    folds = []
    for i, parts in enumerate(windows):
        fparts = []
        for j, (ev, sym, tick, lot, *fmt) in enumerate(parts):
            path = folder / f"fold{i:02d}_part{j:02d}.npy"
            np.save(path, np.ascontiguousarray(ev), allow_pickle=False)
            fparts.append(
                FoldPart(
                    str(path.resolve()),
                    sym,
                    tick,
                    lot,
                    int(ev["exch_ts"][0]),
                    int(ev["exch_ts"][-1]),
                    int(len(ev)),
                    str(fmt[0]) if fmt else "",
                )
            )
        folds.append(Fold(i, tuple(fparts)))
    manifest = {
        "digest": digest,
        "spec": spec,
        "folds": [{"index": f.index, "parts": [asdict(p) for p in f.parts]} for f in folds],
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return folds


def synthetic_folds(
    market: str, hours: float, n_folds: int, seed: int, folder: Path
) -> tuple[list[Fold], str]:
    """Folds of one continuous synthetic market (``market``: 'synthetic', 'synthetic:NAME' or a
    calibration JSON). Returns (folds, market label)."""
    from mmbot.data.synthetic import generate, load_calibration
    from mmbot.soak.runner import derive_seed

    if not (math.isfinite(hours) and hours > 0):
        raise UserError(f"--hours {hours!r}: must be a positive number")
    name = market.split(":", 1)[1] if market.startswith("synthetic:") else market
    calib = load_calibration("default" if name == "synthetic" else name)
    label = f"synthetic:{name}" if market.startswith("synthetic") else f"calibration:{market}"
    spec = {
        "market": label,
        "calib": _digest(calib),
        "hours": hours,
        "folds": n_folds,
        "seed": seed,
    }
    digest = _digest(spec)
    found = _load_existing(folder, digest)
    if found is not None:
        return found, label
    sym = str(calib.get("symbol") or calib.get("name") or "SYNTH")
    tick = calib.get("tick_px")
    lot = calib.get("lot_qty")
    events = generate(calib, derive_seed(seed, 1), SYNTH_START_NS, int(hours * NS_PER_HOUR))
    windows = _cut(events, n_folds, tick)
    del events
    return _write(folder, digest, spec, [[(w, sym, tick, lot)] for w in windows]), label


def capture_folds(
    paths: Sequence[Path], n_folds: int | None, folder: Path
) -> tuple[list[Fold], str]:
    """Folds from captures: each cut into ``n_folds`` windows, or one fold per capture."""
    from mmbot.data import load_events

    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.is_file():
            raise UserError(f"--data {p}: file not found")
    stamps = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    spec = {"data": stamps, "folds": n_folds, "parts": "with data_format"}
    digest = _digest(spec)
    label = "captures:" + ",".join(p.name for p in paths)
    found = _load_existing(folder, digest)
    if found is not None:
        return found, label
    if n_folds is None and len(paths) < 2:
        raise UserError("--data: one capture needs --folds N (>= 2) for walk-forward")
    windows: list[list[tuple]] = [[] for _ in range(n_folds or len(paths))]
    for k, p in enumerate(paths):
        events, stats = load_events(p)
        if len(events) == 0:
            raise UserError(f"--data {p}: the capture holds no events")
        sym = str(stats.symbol or p.stem)
        tick = stats.tick_px_guess if math.isfinite(stats.tick_px_guess) else None
        lot = stats.lot_qty_guess if math.isfinite(stats.lot_qty_guess) else None
        fmt = str(stats.format or "")
        if n_folds is None:
            windows[k].append((events, sym, tick, lot, fmt))
            continue
        for i, w in enumerate(_cut(events, n_folds, tick)):
            windows[i].append((w, sym, tick, lot, fmt))
    return _write(folder, digest, spec, windows), label
