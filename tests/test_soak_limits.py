"""The soak's loss limits see the soak's figures, not a chunk's: a cumulative loss past max_loss
that no single chunk reaches stops the soak, and a drawdown from an equity peak reached in an
earlier chunk trips the drawdown stop. Each limit is set from a run without it, between what one
chunk alone would show and what the soak shows, so only the carried figures can trip it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import glft_options
from mmbot.audit.records_io import read_run
from mmbot.config import PROFILES_DIR
from mmbot.soak import market as soak_market
from mmbot.soak.account_carry import AccountCarry
from mmbot.soak.limits import equity_path

SECOND_NS = 1_000_000_000
CHUNK_S = 60  # 4 chunks of 60 s in 2 iterations: glft loses steadily at the base tier's fees


def _soak(tmp: Path, name: str, risk: dict | None = None) -> tuple[list, dict, list[str]]:
    """A 4-min fixed-knob glft soak (S1 with ``risk`` over its limits): (the chunks' records,
    soak_metrics, marker lines)."""
    from mmbot.soak.artifacts import SoakPaths
    from mmbot.soak.loop import run_soak
    from mmbot.soak.start import SoakSettings

    profile = None
    if risk:
        raw = json.loads((PROFILES_DIR / "market_maker_S1.json").read_text())
        raw["risk"].update(risk)
        raw["name"] = f"S1-{name}"
        profile = tmp / f"{name}.json"
        profile.write_text(json.dumps(raw))
    root = tmp / name
    lines: list[str] = []
    run_soak(
        SoakSettings(
            hours=4 * CHUNK_S / 3600,
            iterations=2,
            auto_tune=False,
            paths=SoakPaths.under(root),
            profile=str(profile) if profile else None,
            seed=3,
            strategy_options=glft_options(),
        ),
        say=lines.append,
    )
    runs = sorted(read_run(root / "soak/records"), key=lambda r: r.meta["name"])
    sm = json.loads((root / "reports/soak_metrics.json").read_text())
    return runs, sm, lines


@pytest.fixture(scope="module")
def free_run(tmp_path_factory) -> list:
    """The soak with limits it never reaches (S1's max_loss 3000, no drawdown stop)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(soak_market, "CHUNK_NS", CHUNK_S * SECOND_NS)
    mp.delenv("MM_RUNTIME_OVERRIDES_JSON", raising=False)
    try:
        runs, sm, _ = _soak(tmp_path_factory.mktemp("free"), "free")
    finally:
        mp.undo()
    assert len(runs) == 4 and "stop" not in sm
    assert not any(r.meta["guards"]["killed"] or r.meta["guards"]["drawdown_stops"] for r in runs)
    return runs


def _paths(runs: list) -> list[tuple[np.ndarray, float]]:
    """Per chunk: the soak's equity at its marks, and the equity it started from."""
    out = []
    for r in runs:
        _, eq = equity_path(r)
        out.append((eq, float(r.meta["initial_equity"])))
    return out


def test_a_cumulative_loss_past_max_loss_that_no_chunk_reaches_stops_the_soak(
    free_run: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _paths(free_run)
    worst_chunk_loss = max(start - eq.min() for eq, start in paths)  # a chunk on its own
    worst_soak_pnl = min(eq.min() for eq, _ in paths)  # the soak's
    assert worst_chunk_loss < -worst_soak_pnl / 1.5, "the market gives no cross-chunk loss"
    limit = round((worst_chunk_loss - worst_soak_pnl) / 2)  # between the two
    first = next(i for i, (eq, _) in enumerate(paths) if eq.min() < -limit)
    assert first >= 1

    monkeypatch.setattr(soak_market, "CHUNK_NS", CHUNK_S * SECOND_NS)
    monkeypatch.delenv("MM_RUNTIME_OVERRIDES_JSON", raising=False)
    runs, sm, lines = _soak(tmp_path, "kill", {"max_loss": float(limit)})
    stop = sm["stop"]
    # the guards latched in the chunk where the soak's PnL first fell below -max_loss ...
    assert (stop["iteration"] - 1) * 2 + stop["chunk"] == first
    assert stop["max_loss"] == limit and stop["soak_pnl_then"] < -limit
    assert runs[first].meta["guards"]["killed"] and not runs[first - 1].meta["guards"]["killed"]
    # ... and the soak stopped there: no later chunk ran, its position was closed at taker cost
    assert len(runs) == first + 1
    assert len(sm["per_iteration"]) == stop["iteration"]
    assert runs[-1].meta["close_out"]["closed"] or runs[-1].meta["close_out"]["why"] == "flat"
    assert any(ln.startswith("| soak | STOP | kill switch:") for ln in lines)
    assert f"| soak | STOPPED | by the kill switch in iter={stop['iteration']} " in "\n".join(lines)
    assert (
        f"first at {stop['first_below_utc']}"
        in (tmp_path / "kill/reports/SOAK_RESULTS.md").read_text()
    )


def test_a_drawdown_from_a_peak_reached_in_an_earlier_chunk_trips_the_stop(
    free_run: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _paths(free_run)
    # the largest drawdown within one chunk (from its own start), and the soak's from its peak
    in_chunk = max(
        float(
            (
                np.maximum.accumulate(np.concatenate([[start], eq])) - np.concatenate([[start], eq])
            ).max()
        )
        for eq, start in paths
    )
    soak_eq = np.concatenate([eq for eq, _ in paths])
    across = float((np.maximum.accumulate(soak_eq) - soak_eq).max())
    assert in_chunk < across / 1.5, "the market gives no cross-chunk drawdown"
    limit = round((in_chunk + across) / 2)

    monkeypatch.setattr(soak_market, "CHUNK_NS", CHUNK_S * SECOND_NS)
    monkeypatch.delenv("MM_RUNTIME_OVERRIDES_JSON", raising=False)
    runs, sm, lines = _soak(tmp_path, "dd", {"max_drawdown": float(limit), "max_loss": 1e9})
    stops = [int(r.meta["guards"]["drawdown_stops"]) for r in runs]
    assert sum(stops) >= 1, stops
    first = next(i for i, n in enumerate(stops) if n)
    assert first >= 1  # no chunk's own drawdown reaches the limit: the peak came from before
    peak_in = runs[first].meta["carry_in"]["guards"]
    assert peak_in["has_peak"] and peak_in["peak_pnl"] - soak_eq.min() > limit
    assert any(ln.startswith("| soak | DRAWDOWN |") for ln in lines)
    assert sum(r.get("drawdown", {}).get("stops", 0) for r in sm["per_iteration"]) == sum(stops)


def test_a_chunk_starts_from_the_soaks_pnl_and_guard_state() -> None:
    """The account hands the next chunk the soak's PnL (in its cash, beside the position's cost)
    and the guard state, so the guards' equity continues where the previous chunk's ended."""
    from mmbot.backtest import RunSettings

    acct = AccountCarry(funded_to_ns=0, position_qty=0.5, mark_px=100.0, mark_value=100.0)
    acct.equity = -250.0
    acct.guards = {"killed": 0, "peak_pnl": 12.5, "has_peak": 1, "dd_until_ns": 0}
    s = acct.settings(RunSettings())
    assert s.start_cash == -250.0 - 0.5 * 100.0
    assert s.start_guard == acct.guards
    assert AccountCarry(funded_to_ns=0).settings(RunSettings()).start_guard is None
