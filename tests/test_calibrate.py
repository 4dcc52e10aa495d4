"""Calibration of the embedded market against the real Binance USD-M capture (skipped when
../shared/data is absent): the shipped as-captured market must reproduce the capture's spread,
trade rate, volatility and 1 s trade markout within 25 %; the shipped files carry provenance
that matches the capture; calibrate() and the CLI path run end to end and reject bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import USDM_CAPTURE, need_shared
from mmbot.data.calibrate import calibrate, calibrate_command
from mmbot.data.market_stats import market_stats
from mmbot.data.synthetic import generate, load_calibration
from mmbot.errors import UserError

T0_NS = 1_800_000_000_000_000_000
FIDELITY_KEYS = ("spread_bps_mean", "trade_rate_per_s", "vol_bps_per_sqrt_s", "markout_1s_bps")
# seeds the fit never used (it uses 12345 + round and 13345 for its own check)
FRESH_SEED = 987_654


@pytest.fixture(scope="module")
def capture_events() -> np.ndarray:
    from mmbot.data import load_events

    events, _ = load_events(need_shared(USDM_CAPTURE))
    return events


@pytest.fixture(scope="module")
def capture_stats(capture_events: np.ndarray) -> dict:
    return market_stats(capture_events)


def _table(real: dict, syn: dict, keys: tuple[str, ...]) -> str:
    lines = [f"{'statistic':<24}{'capture':>12}{'synthetic':>12}{'ratio':>8}"]
    for k in keys:
        lines.append(f"{k:<24}{real[k]:>12.4f}{syn[k]:>12.4f}{syn[k] / real[k]:>8.2f}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def as_captured_stats() -> dict:
    """Three independent 400 s markets of the shipped as-captured calibration (seeds the fit
    never used), statistics averaged: one short market is dominated by a few bursts, as the
    345 s capture itself is."""
    calib = load_calibration("binance_usdm_btcusdt")
    runs = [
        market_stats(generate(calib, FRESH_SEED + i, T0_NS, 400 * 1_000_000_000)) for i in range(3)
    ]
    return {
        k: float(np.mean([r[k] for r in runs])) for k in runs[0] if isinstance(runs[0][k], float)
    }


def test_as_captured_market_matches_the_capture_within_25_percent(
    capture_stats: dict, as_captured_stats: dict
) -> None:
    syn = as_captured_stats
    keys = FIDELITY_KEYS + (
        "parent_rate_per_s",
        "parent_markout_1s_bps",
        "feed_latency_ms_p50",
        "feed_latency_ms_p95",
    )
    print("\n" + _table(capture_stats, syn, keys))
    checked = ("spread_bps_mean", "trade_rate_per_s", "vol_bps_per_sqrt_s", "parent_markout_1s_bps")
    bad = [k for k in checked if not abs(syn[k] / capture_stats[k] - 1.0) <= 0.25]
    assert not bad, f"outside 25 %: {bad}\n" + _table(capture_stats, syn, keys)


@pytest.mark.xfail(
    strict=True,
    reason="known gap: the synthetic print-level 1 s markout is ~0.45-0.65x the capture's "
    "(the capture's prints concentrate in big sweeps through many small maker orders; the "
    "model's maker orders are fewer and larger). The per-order markout matches (test above).",
)
def test_as_captured_print_markout_within_25_percent(
    capture_stats: dict, as_captured_stats: dict
) -> None:
    ratio = as_captured_stats["markout_1s_bps"] / capture_stats["markout_1s_bps"]
    assert abs(ratio - 1.0) <= 0.25, ratio


@pytest.fixture(scope="module")
def wide_stats() -> dict:
    """Two independent 1200 s markets of the default (wide-tick) calibration, averaged."""
    calib = load_calibration("default")
    runs = [
        market_stats(generate(calib, FRESH_SEED + i, T0_NS, 1200 * 1_000_000_000)) for i in range(2)
    ]
    return {
        k: float(np.mean([r[k] for r in runs])) for k in runs[0] if isinstance(runs[0][k], float)
    }


def test_wide_tick_market_keeps_the_capture_flow(capture_stats: dict, wide_stats: dict) -> None:
    """The wide-tick variant cannot keep the capture's spread (its tick is ~60x wider); it keeps
    the fitted flow: trade rate and volatility within 25 %, and trades are followed by moves
    their way (adverse selection present). Its markouts fall short: see the xfail below."""
    syn = wide_stats
    keys = FIDELITY_KEYS + ("tick_bps", "parent_rate_per_s", "parent_markout_1s_bps")
    print("\n" + _table(capture_stats, syn, keys))
    assert 0.5 < syn["tick_bps"] < 1.5
    # the spread is at least one (wide) tick, so far above the capture's
    assert syn["spread_bps_mean"] >= 0.9 * syn["tick_bps"]
    for k in ("trade_rate_per_s", "vol_bps_per_sqrt_s"):
        assert abs(syn[k] / capture_stats[k] - 1.0) <= 0.25, k
    assert syn["markout_1s_bps"] > 0.3 and syn["parent_markout_1s_bps"] > 0.05


@pytest.mark.xfail(
    strict=True,
    reason="known gap: on the 1 bps tick the 1 s markouts are ~0.5x (prints) and ~0.5-0.8x "
    "(aggressor orders) the capture's: the same orders rarely move a 1 bps touch, and the "
    "permanence of sweep impact is capped at 2x to keep the market stable",
)
def test_wide_tick_markouts_within_25_percent(capture_stats: dict, wide_stats: dict) -> None:
    for k in ("markout_1s_bps", "parent_markout_1s_bps"):
        assert abs(wide_stats[k] / capture_stats[k] - 1.0) <= 0.25, k


def test_shipped_calibrations_name_their_source() -> None:
    path = need_shared(USDM_CAPTURE)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    for name, variant in (
        ("binance_usdm_btcusdt", "as_captured"),
        ("binance_usdm_btcusdt_wide_tick", "wide_tick"),
    ):
        calib = load_calibration(name)
        prov = calib["provenance"]
        assert calib["variant"] == variant
        assert prov["source_file"] == path.name
        assert prov["source_sha256"] == sha
        assert prov["command"].startswith("mmbot data calibrate")
        assert prov["date"]
    assert "wide" in load_calibration("default")["note"]


def test_calibrate_end_to_end_short(capture_events: np.ndarray, tmp_path: Path) -> None:
    """One short fit round through the public entry points: a loadable, generating calibration;
    the wide-tick variant lands on a tick of about the asked size."""
    calib = calibrate(capture_events, rounds=1, fit_seconds=20)
    assert calib["variant"] == "as_captured" and calib["tick_px"] == pytest.approx(0.1)
    assert calib["lot_qty"] == pytest.approx(0.001)
    wide = calibrate(capture_events, tick_bps=1.0, rounds=1, fit_seconds=20)
    tick_bps = wide["tick_px"] / wide["price0_px"] * 1e4
    assert wide["variant"] == "wide_tick" and 0.8 < tick_bps < 1.2
    assert "note" in wide
    out = tmp_path / "m.json"
    out.write_bytes(json.dumps(wide).encode())
    ev = generate(load_calibration(out), 1, T0_NS, 10 * 1_000_000_000)
    assert len(ev) > 100


def test_calibrate_command_writes_sorted_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sub" / "m.json"
    calibrate_command(need_shared(USDM_CAPTURE), out, tick_bps=1.0, rounds=0, fit_seconds=20)
    text = out.read_text()
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert data["provenance"]["source_file"] == USDM_CAPTURE.name
    printed = capsys.readouterr().out
    assert "trade_rate_per_s" in printed and "markout_1s_bps" in printed


def test_calibrate_rejects_bad_input(capture_events: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="tick-bps"):
        calibrate(capture_events, tick_bps=-1.0, rounds=0)
    few = capture_events[:200]  # a fraction of a second: a handful of trades
    with pytest.raises(UserError):
        calibrate(few, rounds=0)
    with pytest.raises(UserError, match="not found"):
        calibrate_command(tmp_path / "missing.gz", tmp_path / "o.json")
