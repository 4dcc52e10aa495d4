"""The notebook API: ``mmbot.backtest(data, strategy=..., order_qty=..., knobs={...})`` -> a
``BacktestResult`` with polars frames of fills (edge components and markouts) and orders, the
EDGE_REPORT, the KPI gate and ``report(dir)``.

``data``: a capture path (any format ``mmbot.data`` reads, Parquet events included), a list of
them (run one after another, like ``mmbot backtest --data A --data B``), or an ``EVENT_DTYPE``
array. ``knobs`` override the profile's runtime knobs; a value outside its limits is clamped with
a ``KnobClampedWarning`` naming the field, the value asked for and the value used. ``strategy`` is
passed to ``RunSettings`` as given (a built-in name such as ``"glft"`` or ``"touch"``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mmbot import knobs as knob_limits
from mmbot.errors import UserError
from mmbot.jitcache import configure as _configure_jit_cache
from mmbot.records import RunResult

_configure_jit_cache()  # an entry point (the notebook's): before compiled modules are imported

from mmbot.strategy.registry import DEFAULT_QUOTER  # noqa: E402


class KnobClampedWarning(UserWarning):
    """A knob asked for outside its limits ran at the nearest limit (or was rounded)."""


def clamp_knobs(asked: Mapping[str, float]) -> dict[str, float]:
    """Knobs clamped to ``mmbot.knobs.RUNTIME_LIMITS``; warns once per changed field."""
    used: dict[str, float] = {}
    for name, raw in asked.items():
        if name not in knob_limits.RUNTIME_LIMITS:
            known = ", ".join(knob_limits.KNOB_NAMES)
            raise UserError(f"knobs: unknown knob {name!r} (known: {known})")
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not np.isfinite(raw):
            raise UserError(f"knobs: {name} must be a finite number, got {raw!r}")
        v = knob_limits.clamp_knob(name, raw)
        if v != float(raw):
            lo, hi = knob_limits.RUNTIME_LIMITS[name]
            warnings.warn(
                f"knob {name}: asked {raw:g}, used {v:g} (limits [{lo:g}, {hi:g}])",
                KnobClampedWarning,
                stacklevel=3,
            )
        used[name] = v
    return used


@dataclass
class BacktestResult:
    """The runs of one ``mmbot.backtest`` call (one per input) and what is derived from them."""

    runs: list[RunResult]
    names: list[str]
    knobs: dict[str, float]
    runtime: dict[str, Any] = field(default_factory=dict)

    def fills_df(self) -> pl.DataFrame:
        """Every fill with its edge components and markouts (``mmbot.audit.frames``)."""
        from mmbot.audit.frames import fills_frame

        return pl.concat([fills_frame(r, n) for n, r in zip(self.names, self.runs, strict=True)])

    def orders_df(self) -> pl.DataFrame:
        """Every order action: intended, blocked (with the guard's reason), sent, acked, …"""
        from mmbot.audit.frames import orders_frame

        return pl.concat([orders_frame(r, n) for n, r in zip(self.names, self.runs, strict=True)])

    @cached_property
    def edge_report(self) -> dict:
        """The EDGE_REPORT (the edge identity is asserted while building it)."""
        from mmbot.audit.edge_report import build_edge_report

        return build_edge_report(self.runs, self.runtime)

    @cached_property
    def gate(self) -> dict:
        """KPI_GATE of the edge report (verdict, every check with value and threshold)."""
        from mmbot.gate import evaluate

        return evaluate(self.edge_report)

    @property
    def net_bps(self) -> float | None:
        return self.edge_report["totals"].get("net_bps")

    def report(self, out_dir: str | Path) -> Path:
        """Write records, EDGE_REPORT.json, KPI_GATE.json, BACKTEST_RESULTS.md and REPORT.html into
        ``out_dir``; returns the HTML report's path."""
        from mmbot.audit.edge_report import dump_json
        from mmbot.audit.records_io import write_run
        from mmbot.report import write_reports

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, r in zip(self.names, self.runs, strict=True):
            write_run(out, r, name, audit_jsonl=False)
        dump_json(self.edge_report, out / "EDGE_REPORT.json")
        dump_json(self.gate, out / "KPI_GATE.json")
        _, html = write_reports(
            out, self.edge_report, self.runs, self.gate, md_name="BACKTEST_RESULTS.md"
        )
        return html

    def __repr__(self) -> str:
        n_fills = sum(len(r.fills) for r in self.runs)
        net = self.net_bps
        net_s = f"{net:.3f}" if isinstance(net, float) else "n/a"
        return (
            f"BacktestResult(runs={len(self.runs)}, fills={n_fills}, net_bps={net_s}, "
            f"verdict={self.gate['verdict']})"
        )


def _inputs(data: Any) -> list[tuple[str, Any]]:
    """(name, path-or-array) per input."""
    if isinstance(data, np.ndarray):
        return [("00_events", data)]
    items = [data] if isinstance(data, str | Path) else list(data)
    if not items:
        raise UserError("data: no input given")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray):
            out.append((f"{i:02d}_events", item))
            continue
        p = Path(item)
        if not p.is_file():
            raise UserError(f"data {p}: file not found")
        stem = p.name.split(".")[0] or "data"
        out.append((f"{i:02d}_{stem}", p))
    return out


def backtest(
    data: str | Path | np.ndarray | Sequence[str | Path | np.ndarray],
    strategy: Any = DEFAULT_QUOTER,
    *,
    knobs: Mapping[str, float] | None = None,
    profile: str | None = None,
    **settings: Any,
) -> BacktestResult:
    """Backtest ``strategy`` on ``data``; see the module docstring. ``knobs`` are clamped (with a
    warning) and ``profile`` is loaded by name; every other ``RunSettings`` field (``order_qty``,
    ``latency_ms``, ``queue_model``, ``seed``, ``max_position_qty``, ``maker_fee_rate``, ...)
    passes through ``settings`` unchanged, with ``RunSettings``'s defaults."""
    from mmbot.audit.edge_report import make_runtime
    from mmbot.backtest import RunSettings, run
    from mmbot.config import effective_knobs, load_profile
    from mmbot.data import load_events

    prof = load_profile(profile)
    asked = clamp_knobs(dict(knobs or {}))
    used = effective_knobs(prof, asked)
    rs = RunSettings(strategy=strategy, knobs=used, profile=prof, **settings)
    runs: list[RunResult] = []
    names: list[str] = []
    for name, src in _inputs(data):
        if isinstance(src, np.ndarray):
            events, symbol = src, ""
        else:
            events, stats = load_events(src)
            symbol = stats.symbol or ""
        r = run(events, rs, symbol=symbol)
        r.meta["name"] = name
        runs.append(r)
        names.append(name)
    runtime = make_runtime(
        profile=prof.name,
        overrides=asked,
        seed=rs.seed,
        data_inputs=[str(s) if not isinstance(s, np.ndarray) else n for n, s in _inputs(data)],
        strategy=strategy if isinstance(strategy, str) else repr(strategy),
        knobs=used,
        latency_ms=rs.latency_ms,
        queue_model=rs.queue_model,
        built_by="mmbot.backtest (Python API)",
    )
    return BacktestResult(runs=runs, names=names, knobs=used, runtime=runtime)


__all__ = ["BacktestResult", "KnobClampedWarning", "backtest", "clamp_knobs"]
