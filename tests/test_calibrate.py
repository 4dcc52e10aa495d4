"""Calibration of the embedded market against the real Binance USD-M capture (skipped when
../shared/data is absent): the shipped as-captured market must reproduce the capture's spread,
trade rate, volatility and 1 s markouts (of prints and of aggressor orders) within 25 %, the
wide-tick default all but the spread; the shipped files carry provenance that matches the
capture; sweeps are found in hand-built prints as worked out on paper; calibrate() and the CLI
path run end to end and reject bad input."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import COINM_CAPTURE, SPOT_CAPTURE, USDM_CAPTURE, need_shared
from mmbot.commands.data import calibrate_command
from mmbot.data.calibrate import FitOptions, _parents, calibrate
from mmbot.data.market_stats import market_stats
from mmbot.data.synthetic import WIDE_TICK_MARKET, generate, load_calibration
from mmbot.errors import UserError
from mmbot.events import (
    BUY_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EVENT_DTYPE,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
)

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


AS_CAPTURED_RUNS = 4
AS_CAPTURED_SECONDS = 1200
WIDE_RUNS = 4
WIDE_SECONDS = 5000


def _mean_stats(calib: dict, runs: int, seconds: int) -> dict:
    """market_stats of independent markets (seeds the fit never used), averaged. The capture's
    markouts and volatility are set by a few big sweeps and jumps, so the synthetic side is
    measured over many times the capture's 345 s: what is compared is the market's mean."""
    stats = [
        market_stats(generate(calib, FRESH_SEED + i, T0_NS, seconds * 1_000_000_000))
        for i in range(runs)
    ]
    return {
        k: float(np.mean([r[k] for r in stats])) for k in stats[0] if isinstance(stats[0][k], float)
    }


@pytest.fixture(scope="module")
def as_captured_stats() -> dict:
    return _mean_stats(
        load_calibration("binance_usdm_btcusdt"), AS_CAPTURED_RUNS, AS_CAPTURED_SECONDS
    )


def test_as_captured_market_matches_the_capture_within_25_percent(
    capture_stats: dict, as_captured_stats: dict
) -> None:
    """Spread, trade rate, volatility, the 1 s markout of prints and of aggressor orders, and the
    feed latency's median and 95th percentile."""
    syn = as_captured_stats
    keys = FIDELITY_KEYS + (
        "parent_rate_per_s",
        "parent_markout_1s_bps",
        "feed_latency_ms_p50",
        "feed_latency_ms_p95",
    )
    print("\n" + _table(capture_stats, syn, keys))
    # the feed latency's p50 and p95 too (issue 17: within 25 %)
    checked = FIDELITY_KEYS + (
        "parent_markout_1s_bps",
        "feed_latency_ms_p50",
        "feed_latency_ms_p95",
    )
    bad = [k for k in checked if not abs(syn[k] / capture_stats[k] - 1.0) <= 0.25]
    assert not bad, f"outside 25 %: {bad}\n" + _table(capture_stats, syn, keys)


@pytest.fixture(scope="module")
def wide_stats() -> dict:
    return _mean_stats(load_calibration(WIDE_TICK_MARKET), WIDE_RUNS, WIDE_SECONDS)


def test_wide_tick_market_keeps_the_capture_flow(capture_stats: dict, wide_stats: dict) -> None:
    """The wide-tick variant cannot keep the capture's spread (its tick is ~60x wider): its
    spread is one wide tick. It keeps the fitted flow: trade rate, 1 s and 60 s volatility, the
    1 s markout of aggressor orders and the impact curve of deep sweeps (1 s and 30 s), within
    25 % of the capture's. The 1 s markout of single prints is not kept (the wide tick moves
    the mid in 0.5 bps steps; the capture's is set by sub-tick moves after a few huge sweeps)."""
    syn = wide_stats
    checked = (
        "trade_rate_per_s",
        "vol_bps_per_sqrt_s",
        "vol_60s_bps",
        "parent_markout_1s_bps",
        "deep_sweep_impact_1s_bps",
        "deep_sweep_impact_30s_bps",
    )
    keys = FIDELITY_KEYS + ("tick_bps", "parent_rate_per_s") + checked[2:]
    print("\n" + _table(capture_stats, syn, keys))
    assert 0.5 < syn["tick_bps"] < 1.5
    # the spread is at least one (wide) tick, so far above the capture's
    assert syn["spread_bps_mean"] >= 0.9 * syn["tick_bps"]
    bad = [k for k in checked if not abs(syn[k] / capture_stats[k] - 1.0) <= 0.25]
    assert not bad, f"outside 25 %: {bad}\n" + _table(capture_stats, syn, keys)


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
    assert "wide" in load_calibration(WIDE_TICK_MARKET)["note"]
    assert load_calibration("default")["variant"] == "as_captured"


def test_calibrate_end_to_end_short(capture_events: np.ndarray, tmp_path: Path) -> None:
    """One short fit round through the public entry points: a loadable, generating calibration;
    the wide-tick variant lands on a tick of about the asked size."""
    calib = calibrate(capture_events, FitOptions(rounds=1, fit_seconds=20))
    assert calib["variant"] == "as_captured" and calib["tick_px"] == pytest.approx(0.1)
    assert calib["lot_qty"] == pytest.approx(0.001)
    wide = calibrate(capture_events, FitOptions(tick_bps=1.0, rounds=1, fit_seconds=20))
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
    calibrate_command(
        need_shared(USDM_CAPTURE), out, FitOptions(tick_bps=1.0, rounds=0, fit_seconds=20)
    )
    text = out.read_text()
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert data["provenance"]["source_file"] == USDM_CAPTURE.name
    printed = capsys.readouterr().out
    assert "trade_rate_per_s" in printed and "markout_1s_bps" in printed


def test_calibrate_rejects_bad_input(capture_events: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="tick-bps"):
        calibrate(capture_events, FitOptions(tick_bps=-1.0, rounds=0))
    few = capture_events[:200]  # a fraction of a second: a handful of trades
    with pytest.raises(UserError):
        calibrate(few, FitOptions(rounds=0))
    with pytest.raises(UserError, match="not found"):
        calibrate_command(tmp_path / "missing.gz", tmp_path / "o.json")


def _ev(kind: int, side: int, t_ms: float, px: float, qty: float) -> tuple:
    t = T0_NS + int(round(t_ms * 1_000_000))
    return (kind | EXCH_EVENT | LOCAL_EVENT | side, t, t + 2_000_000, px, qty, 0, 0, 0.0)


def test_sweeps_join_consecutive_ms_without_book_rows_between() -> None:
    """Hand-built prints: a sell sweep printed over ms 10 (3 prints) and ms 11 (2 prints) with no
    book row between is one sweep of 5; buys in ms 12 and 13 with a book row between are two;
    a sell then a buy in consecutive ms are two; 50 lone prints pad the sample. The engine
    throughput is the one full ms seen: 3 prints."""
    rows = [
        _ev(DEPTH_SNAPSHOT_EVENT, BUY_EVENT, 0, 99.0, 5.0),
        _ev(DEPTH_SNAPSHOT_EVENT, SELL_EVENT, 0, 100.0, 5.0),
    ]
    rows += [_ev(TRADE_EVENT, SELL_EVENT, 10.2, 99.0 - k, 1.0) for k in range(3)]
    rows += [_ev(TRADE_EVENT, SELL_EVENT, 11.1, 96.0 - k, 1.0) for k in range(2)]
    rows += [_ev(DEPTH_EVENT, BUY_EVENT, 11.1, 99.0, 0.0)]
    rows += [
        _ev(TRADE_EVENT, BUY_EVENT, 12.0, 100.0, 2.0),
        _ev(DEPTH_EVENT, SELL_EVENT, 12.0, 100.0, 3.0),
    ]
    rows += [_ev(TRADE_EVENT, BUY_EVENT, 13.0, 100.0, 1.0)]
    rows += [
        _ev(TRADE_EVENT, SELL_EVENT, 20.0, 99.0, 1.0),
        _ev(TRADE_EVENT, BUY_EVENT, 21.0, 100.0, 1.0),
    ]
    for k in range(50):
        rows += [_ev(TRADE_EVENT, BUY_EVENT, 100.0 + 10 * k, 100.0, 0.5)]
        rows += [_ev(DEPTH_EVENT, SELL_EVENT, 100.0 + 10 * k, 100.0, 4.5)]
    ev = np.array(rows, dtype=EVENT_DTYPE)
    prints, parents, sweeps, per_ms = _parents(ev)
    assert len(prints) == 5 + 2 + 2 + 50
    assert list(parents[:6]) == [3.0, 2.0, 2.0, 1.0, 1.0, 1.0]
    assert list(sweeps[:5]) == [5.0, 2.0, 1.0, 1.0, 1.0]
    assert len(sweeps) == 5 + 50
    assert per_ms == 3.0


def test_calibrate_reports_each_round_to_the_progress_callback(capture_events: np.ndarray) -> None:
    """The capture's headline (step 0), one FitProgress per simulated round, the feed-latency
    fit on the fitted market, the final check, numbered in order, each saying what it measured."""
    from mmbot.data.calibrate import FitProgress

    seen: list[FitProgress] = []
    calibrate(capture_events, FitOptions(rounds=2, fit_seconds=10), progress=seen.append)
    assert [p.step for p in seen] == [0, 1, 2, 3, 4, 5]
    assert all(p.steps == 5 for p in seen)
    assert seen[0].message.startswith("capture: tick 0.1")
    assert seen[1].message.startswith("round 0: loss") and "lat p50/p95" in seen[1].message
    assert re.match(r"feed latency: 24 rounds x \d+ paths on the fitted market's", seen[4].message)


@pytest.mark.parametrize(
    ("name", "capture"),
    [("binance_spot_btcusdt", SPOT_CAPTURE), ("binance_coinm_btcusd_perp", COINM_CAPTURE)],
)
def test_spot_and_coinm_markets_are_fitted_at_their_captured_tick(name: str, capture: Path) -> None:
    """The spot and COIN-M calibrations come from their own captures (sha256 in the provenance),
    at the capture's tick, with the fine-tick terms on, and generate a market."""
    from mmbot.data.calibrate import FINE_TICK_TERMS
    from mmbot.data.market_stats import guess_tick

    path = need_shared(capture)
    calib = load_calibration(name)
    assert calib["variant"] == "as_captured"
    assert calib["provenance"]["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    from mmbot.data import load_events

    assert calib["tick_px"] == pytest.approx(guess_tick(load_events(path)[0]))
    assert all(calib["model"][k] > 0 for k in FINE_TICK_TERMS)
    assert len(generate(calib, 1, T0_NS, 5 * 1_000_000_000)) > 100


def _opt_in_fit(capture_events: np.ndarray, switch: str, flag: str, field: str) -> dict:
    """The fit with the as-captured-only ``switch`` on (returned): its model has ``field``, its
    provenance command ends with ``flag``; the default fit and the wide-tick one with the switch
    leave ``field`` out."""
    from mmbot.data.calibrate_file import add_provenance

    fitted = calibrate(capture_events, FitOptions(rounds=1, fit_seconds=20, **{switch: True}))
    assert fitted["model"][field] > 0.0
    add_provenance(
        fitted, USDM_CAPTURE, Path("m.json"), symbol="BTCUSDT", log=[], options=FitOptions(rounds=1)
    )
    assert fitted["provenance"]["command"].endswith(flag)
    plain = calibrate(capture_events, FitOptions(rounds=1, fit_seconds=20))
    assert field not in plain["model"]
    wide = calibrate(
        capture_events, FitOptions(tick_bps=1.0, rounds=0, fit_seconds=20, **{switch: True})
    )
    assert field not in wide["model"]
    return fitted


def test_whole_level_pulls_fit_is_opt_in(capture_events: np.ndarray) -> None:
    """--whole-level-pulls switches the generator term on, starts the per-level pull hazard at
    its own scale; the default fit leaves the term out (the shipped markets' model). Both fit
    the feed latency on the fitted market's latency draws."""
    log: list[str] = []
    whole = calibrate(
        capture_events, FitOptions(rounds=1, fit_seconds=20, whole_level_pulls=True), log=log
    )
    assert whole["model"]["stale_pull_whole"] == 1.0
    assert any("the fitted market's" in line for line in log)
    plain = calibrate(capture_events, FitOptions(rounds=1, fit_seconds=20))
    assert "stale_pull_whole" not in plain["model"]
    ev = generate(whole, 1, T0_NS, 10 * 1_000_000_000)
    assert len(ev) > 100


def _branching_after_fano_step(model: dict, parents_x: float, prints_x: float) -> float:
    """The Hawkes branching ratio after one flow step from 0.8, on a market whose parents' and
    prints' 1 s Fano factors are ``parents_x`` and ``prints_x`` times the capture's."""
    from mmbot.data.calibrate_step import _step_flow

    target = {"parent_count_fano_1s": 25.0, "trade_count_fano_1s": 400.0}
    sim = {"parent_count_fano_1s": 25.0 * parents_x, "trade_count_fano_1s": 400.0 * prints_x}
    for key in ("vol_bps_per_sqrt_s", "parent_rate_per_s", "prints_per_parent"):
        sim[key] = target[key] = 1.0
    m = dict(model, hawkes_branching_ratio=0.8)
    _step_flow(m, sim, target)
    return float(m["hawkes_branching_ratio"])


def test_sweep_requote_fit_is_opt_in(capture_events: np.ndarray) -> None:
    """--sweep-requote switches the makers' re-quote on the print on (as captured only), fits the
    transient impact's decay (the default fit keeps its constant) and steps the Hawkes branching
    on the prints' Fano factor too; the provenance command names the flag so the file can be
    reproduced."""
    from mmbot.data.calibrate import IMPACT_DECAY_PER_S, REQUOTE_TERM
    from mmbot.data.calibrate_step import _step_impact

    fitted = _opt_in_fit(capture_events, "sweep_requote", "--sweep-requote", REQUOTE_TERM)
    plain = calibrate(capture_events, FitOptions(rounds=1, fit_seconds=20))
    assert plain["model"]["impact_decay_per_s"] == IMPACT_DECAY_PER_S
    # the decay step: a market that keeps more of its 100 ms print markout at 5 s than the
    # capture (0.9 vs 0.5) decays faster with the re-quote on; without it the decay is constant
    stats = {"markout_100ms_bps": 1.0, "markout_5s_bps": 0.9, "markout_1s_bps": 1.0}
    target = {"markout_100ms_bps": 2.0, "markout_5s_bps": 1.0, "markout_1s_bps": 1.0}
    for key in ("deep_sweep_impact_1s_bps", "deep_sweep_impact_30s_bps"):
        stats[key] = target[key] = 1.0
    for requote, faster in ((1.0, True), (0.0, False)):
        m = dict(fitted["model"], impact_decay_per_s=IMPACT_DECAY_PER_S, sweep_requote=requote)
        _step_impact(m, stats, target, fit_spread=True, whole=False)
        assert (m["impact_decay_per_s"] > IMPACT_DECAY_PER_S) is faster
    # the Hawkes step: parents clustered as on the capture but prints less (Fano 0.7x): with the
    # re-quote the branching ratio grows (the prints' Fano counts half), without it it stays
    for requote, grows in ((1.0, True), (0.0, False)):
        n = _branching_after_fano_step(dict(fitted["model"], sweep_requote=requote), 1.0, 0.7)
        assert (n > 0.8 + 1e-9) is grows
        assert n >= 0.8 - 1e-12


def test_trade_through_fit_is_opt_in(capture_events: np.ndarray) -> None:
    """--fit-trade-through steps the noise flow's Hawkes decay on the trade-through rates: up
    while the market trades through 0.5-5 bps less often than the capture, down while more often,
    unchanged without rates; the default fit keeps the hand-set decay; the provenance command
    names the flag."""
    from mmbot.data.calibrate import HAWKES_DECAY_PER_S
    from mmbot.data.calibrate_file import add_provenance
    from mmbot.data.calibrate_step import _step_trade_through, _update
    from mmbot.data.market_stats import TRADE_THROUGH_BPS

    keys = [f"trade_through_{d:g}bps_per_min" for d in TRADE_THROUGH_BPS]
    target = {k: 10.0 for k in keys}
    # a market that never trades through (rate 0) steps up, as one trading through less does
    for sim_rate, moves in ((5.0, 1), (0.0, 1), (20.0, -1), (10.0, 0), (float("nan"), 0)):
        m = {"hawkes_decay_per_s": HAWKES_DECAY_PER_S}
        _step_trade_through(m, {k: sim_rate for k in keys}, target)
        assert np.sign(round(m["hawkes_decay_per_s"] - HAWKES_DECAY_PER_S, 9)) == moves
    fitted = calibrate(capture_events, FitOptions(rounds=1, fit_seconds=20, fit_trade_through=True))
    assert fitted["model"]["hawkes_decay_per_s"] != pytest.approx(HAWKES_DECAY_PER_S)
    add_provenance(
        fitted,
        USDM_CAPTURE,
        Path("m.json"),
        symbol="BTCUSDT",
        log=[],
        options=FitOptions(fit_trade_through=True),
    )
    assert fitted["provenance"]["command"].endswith("--fit-trade-through")
    # the default step leaves the decay alone, whatever the rates
    m = dict(fitted["model"], hawkes_decay_per_s=HAWKES_DECAY_PER_S)
    stats = dict(fitted["target_stats"], **{k: 1.0 for k in keys})
    _update(m, stats, fitted["target_stats"], fit_spread=True)
    assert m["hawkes_decay_per_s"] == HAWKES_DECAY_PER_S


def test_resilience_fit_is_opt_in(capture_events: np.ndarray) -> None:
    """--fit-resilience switches slow resilience after a sweep on (as captured only) and steps
    its half-life on the deep-sweep share: up while the market sweeps deep less often than the
    capture (a share of 0 too), down while more often, within its range; the default fit leaves
    the term out; the provenance command names the flag."""
    from mmbot.data.calibrate_step import (
        INITIAL_RESIL_HALF_LIFE_S,
        MAX_RESIL_HALF_LIFE_S,
        _step_resilience,
    )

    target = {"deep_sweep_share": 0.03}
    for share, moves in ((0.01, 1), (0.0, 1), (0.09, -1), (0.03, 0), (float("nan"), 0)):
        m = {"resilience_half_life_s": INITIAL_RESIL_HALF_LIFE_S}
        _step_resilience(m, {"deep_sweep_share": share}, target)
        assert np.sign(round(m["resilience_half_life_s"] - INITIAL_RESIL_HALF_LIFE_S, 9)) == moves
    m = {"resilience_half_life_s": MAX_RESIL_HALF_LIFE_S}
    _step_resilience(m, {"deep_sweep_share": 0.0}, target)
    assert m["resilience_half_life_s"] == MAX_RESIL_HALF_LIFE_S
    fitted = _opt_in_fit(
        capture_events, "fit_resilience", "--fit-resilience", "resilience_half_life_s"
    )
    assert fitted["model"]["resilience_half_life_s"] != pytest.approx(INITIAL_RESIL_HALF_LIFE_S)


def test_hold_fit_steps_the_aggressor_size_tail(capture_events: np.ndarray) -> None:
    """--fit-hold steps the aggressor orders' size tail (the quantiles above the median) on the
    mean aggressor order: stretched while the market's orders are smaller than the capture's (a
    held touch splits a sweep), shrunk while larger, left alone at the capture's mean or without
    a figure; the median and below never move; it switches deep_print_split on. The default fit
    leaves the tail alone and the split off."""
    from mmbot.data.calibrate_hold import PARENT_TAIL_FROM, step_parent_tail

    table = [float(x) for x in np.linspace(1.0, 1000.0, 1001)]
    p = np.linspace(0.0, 1.0, len(table))
    target = {"parent_size_mean_qty": 100.0}
    for mean, moves in ((80.0, 1), (120.0, -1), (100.0, 0), (float("nan"), 0)):
        m = {"parent_size_quantiles_qty": list(table)}
        step_parent_tail(m, {"parent_size_mean_qty": mean}, target)
        got = np.asarray(m["parent_size_quantiles_qty"])
        assert np.array_equal(got[p <= PARENT_TAIL_FROM], np.asarray(table)[p <= PARENT_TAIL_FROM])
        assert np.sign(round(got[-1] - table[-1], 9)) == moves
        # a stretch, not a shift: the step grows with the quantile, so the table stays sorted
        assert np.all(np.diff(got) >= 0)
    fit = FitOptions(rounds=1, fit_seconds=20)
    plain_model = calibrate(capture_events, fit)["model"]
    plain = plain_model["parent_size_quantiles_qty"]
    log: list[str] = []
    held = calibrate(capture_events, FitOptions(rounds=1, fit_seconds=20, fit_hold=True), log=log)
    tail = np.asarray(held["model"]["parent_size_quantiles_qty"])
    p = np.linspace(0.0, 1.0, len(tail))
    assert np.array_equal(tail[p <= PARENT_TAIL_FROM], np.asarray(plain)[p <= PARENT_TAIL_FROM])
    assert tail[-1] != pytest.approx(plain[-1])
    assert any("size tail stretched" in line for line in log)
    # and its sweeps print a deep level as several maker orders; the default fit does not
    assert held["model"]["deep_print_split"] == 1.0
    assert "deep_print_split" not in plain_model


def test_slow_impact_fit_is_opt_in(capture_events: np.ndarray) -> None:
    """--slow-impact splits the transient impact in two (as captured only): the fast part at its
    constant decay, its share trading the 100 ms print markout's miss against the 100 ms return
    autocorrelation's (each over its fidelity band); the slow part's decay on the markout kept
    from 1 s to 5 s; the informed intensity and the stale-pull speed each on its own statistic;
    the Hawkes branching on the prints' Fano. The provenance names the flag; the default fit has
    no slow part."""
    from mmbot.data.calibrate_step import (
        FAST_IMPACT_DECAY_PER_S,
        _step_impact,
        _step_race,
    )

    fitted = _opt_in_fit(capture_events, "slow_impact", "--slow-impact", "impact_slow_ratio")
    assert fitted["model"]["impact_decay_per_s"] == pytest.approx(FAST_IMPACT_DECAY_PER_S)

    def stepped(**sim: float) -> dict:
        target = {"markout_100ms_bps": 2.0, "markout_1s_bps": 1.0, "markout_5s_bps": 0.8}
        target["autocorr_mid_return_100ms"] = 0.0
        stats = dict(target, **sim)
        for key in ("deep_sweep_impact_1s_bps", "deep_sweep_impact_30s_bps"):
            stats[key] = target[key] = 1.0
        m = dict(fitted["model"], impact_transient_ratio=1.0, impact_slow_decay_per_s=0.1)
        _step_impact(m, stats, target, fit_spread=True, whole=False)
        return m

    even = stepped()
    assert even["impact_transient_ratio"] == pytest.approx(1.0)
    assert even["impact_slow_decay_per_s"] == pytest.approx(0.1)
    # 100 ms markout short by 10 % of the capture's -> more fast part
    assert stepped(markout_100ms_bps=1.8)["impact_transient_ratio"] > 1.0
    # 100 ms returns reverting (autocorrelation -0.05) -> less fast part
    assert stepped(autocorr_mid_return_100ms=-0.05)["impact_transient_ratio"] < 1.0
    # both misses the same share of their bands (0.25 and 0.1) -> no step
    both = stepped(markout_100ms_bps=1.9, autocorr_mid_return_100ms=-0.02)
    assert both["impact_transient_ratio"] == pytest.approx(1.0)
    # more of the 1 s markout kept at 5 s than the capture -> the slow part decays faster
    assert stepped(markout_5s_bps=0.95)["impact_slow_decay_per_s"] > 0.1
    # the race: the informed intensity on the aggressor-order markout alone, the stale-pull speed
    # on the touch updates (the default fit moves both on the markout, in opposite directions)
    race = {"parent_markout_1s_bps": 0.2, "touch_update_rate_per_s": 150.0}
    race_tgt = {"parent_markout_1s_bps": 0.2, "touch_update_rate_per_s": 200.0}
    for slow, pulls_faster in ((0.5, True), (0.0, False)):
        m = dict(fitted["model"], impact_slow_ratio=slow, stale_cancel_rate_per_s=5.0)
        m["informed_rate_per_s_per_bps"] = 10.0
        _step_race(m, race, race_tgt, whole=False)
        assert (m["stale_cancel_rate_per_s"] > 5.0) is pulls_faster
        assert m["informed_rate_per_s_per_bps"] == pytest.approx(10.0)
    # the informed alone make more aggressor orders than the capture (0.9 x 5 parents/s against
    # 1): the touch updates (2x the capture's) would slow the pulls, but no noise rate can bring
    # the parent rate down then, so the pulls speed up; with the informed at 0.1 of the same
    # orders (0.5/s, the noise step can still reach the capture) the touch updates slow them
    for share, pulls_faster in ((0.9, True), (0.1, False)):
        m = dict(fitted["model"], impact_slow_ratio=0.5, stale_cancel_rate_per_s=5.0)
        m["informed_rate_per_s_per_bps"] = 10.0
        over = {"parent_markout_1s_bps": 0.2, "touch_update_rate_per_s": 400.0}
        over.update(parent_rate_per_s=5.0, informed_share_of_orders=share)
        _step_race(m, over, dict(race_tgt, parent_rate_per_s=1.0), whole=False)
        assert (m["stale_cancel_rate_per_s"] > 5.0) is pulls_faster
    # the Hawkes step: prints clustered less than the capture's (Fano 0.7x), parents more (1.5x):
    # with the slow part the prints' Fano alone, so the branching ratio grows
    for slow, grows in ((0.5, True), (0.0, False)):
        m = dict(fitted["model"], impact_slow_ratio=slow, sweep_requote=1.0)
        assert (_branching_after_fano_step(m, 1.5, 0.7) > 0.8 + 1e-9) is grows


def test_permanence_markout_fit_without_a_deep_sweep_target(capture_events: np.ndarray) -> None:
    """--fit-permanence-markout (with --slow-impact): a capture whose 30 s deep-sweep impact is
    not positive (COIN-M's) gives the permanence no multiplicative target, so it steps on the 5 s
    print markout instead (down when the market's is above the capture's); without the switch,
    without the slow part, or with a positive 30 s target the 5 s markout does not move it. The
    switch needs --slow-impact."""
    from mmbot.data.calibrate_step import MIN_PERMANENCE, _step_impact

    target = {"markout_100ms_bps": 2.0, "markout_1s_bps": 1.5, "markout_5s_bps": 1.0}
    target.update(autocorr_mid_return_100ms=0.0, deep_sweep_impact_1s_bps=1.5)

    def permanence(t30: float, m5: float, slow: float = 0.5, markout: bool = True) -> float:
        tgt = dict(target, deep_sweep_impact_30s_bps=t30)
        sim = dict(tgt, markout_5s_bps=m5, deep_sweep_impact_30s_bps=0.5)
        m = {"impact_permanence_ratio": 1.0, "impact_transient_ratio": 1.0}
        m.update(impact_slow_ratio=slow, impact_slow_decay_per_s=0.1)
        _step_impact(m, sim, tgt, fit_spread=False, whole=False, markout=markout)
        return m["impact_permanence_ratio"]

    assert MIN_PERMANENCE < permanence(-3.0, 2.0) < 1.0  # 5 s markout 2x: less permanent
    assert permanence(-3.0, 0.5) > 1.0  # half the capture's: more permanent
    assert permanence(-3.0, 1.0) == pytest.approx(1.0)
    assert permanence(-3.0, 2.0, markout=False) == pytest.approx(1.0)  # no switch: no target
    assert permanence(-3.0, 2.0, slow=0.0) == pytest.approx(1.0)  # no slow part: no target
    # a positive 30 s target (0.5, met): the 5 s markout does not move it
    assert permanence(0.5, 2.0) == pytest.approx(1.0)
    with pytest.raises(UserError, match="--slow-impact"):
        calibrate(capture_events, FitOptions(rounds=1, fit_seconds=30, fit_permanence_markout=True))


def test_graded_moves_fit_is_opt_in(capture_events: np.ndarray) -> None:
    """--graded-moves (as captured only) starts the fit with v in jumps of about the capture's
    100 ms mid moves, momentum takers and the informed edge of GRADED_MOVES_TERMS; the fit holds
    the momentum rate, the jump size and the edge, steps the jump rate on the capture's count of
    100 ms moves of 0.5 bps, and its vol step scales the diffusion alone (the default fit scales
    the diffusion and the jump size by one factor, the rate held). The provenance names the flag;
    the default fit has no momentum takers."""
    from mmbot.data.calibrate import GRADED_MOVES_TERMS
    from mmbot.data.calibrate_step import _step_flow

    fitted = _opt_in_fit(
        capture_events, "graded_moves", "--graded-moves", "momentum_rate_per_s_per_bps"
    )
    m = fitted["model"]
    for key in ("momentum_rate_per_s_per_bps", "jump_size_bps", "informed_edge_bps"):
        assert m[key] == pytest.approx(GRADED_MOVES_TERMS[key])
    # one step: the capture's moves twice the market's and its volatility 1.5x the market's
    target = {"vol_bps_per_sqrt_s": 1.5, "mid_move_0.5bps_per_min": 20.0}
    sim = {"vol_bps_per_sqrt_s": 1.0, "mid_move_0.5bps_per_min": 10.0}
    for key in ("parent_rate_per_s", "parent_count_fano_1s", "prints_per_parent"):
        target[key] = sim[key] = 2.0
    for graded in (True, False):
        start = dict(m, jump_rate_per_s=1.0, jump_size_bps=0.5, sigma_bps_per_sqrt_s=0.1)
        stepped = dict(start)
        _step_flow(stepped, sim, target, graded_moves=graded)
        assert stepped["sigma_bps_per_sqrt_s"] > 0.1
        # graded: more jumps of the same size; default: the same number of larger jumps
        assert (stepped["jump_rate_per_s"] > 1.0) is graded
        assert (stepped["jump_size_bps"] > 0.5) is not graded
    # the fit measures the mid's 100 ms move profile on the capture and on its markets (the fit
    # log, target_stats, fit_stats); the default fit's files carry none of it
    from mmbot.data.market_stats import MID_MOVE_BPS, market_stats

    stats = market_stats(capture_events, moves=True)
    real = {f"mid_move_{d:g}bps_per_min": stats[f"mid_move_{d:g}bps_per_min"] for d in MID_MOVE_BPS}
    for key, value in real.items():
        assert fitted["target_stats"][key] == pytest.approx(value)
        assert fitted["fit_stats"][key] >= 0.0
    log: list[str] = []
    plain = calibrate(capture_events, FitOptions(rounds=0, fit_seconds=20), log=log)
    assert not any(k.startswith("mid_move_") for k in plain["target_stats"])
    assert not any(k.startswith("mid_move_") for k in plain["fit_stats"])
    assert not any("100ms moves/min" in line for line in log)
