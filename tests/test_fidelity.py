"""The fidelity report: rank statistics worked out on paper, the new market_stats figures on
hand-built events, and one quick end-to-end run of `mmbot data fidelity` on the shipped sample
(FIDELITY.json in the issue's shape, with its Markdown and HTML tables)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TESTS_DATA
from mmbot.data.market_stats import _lag1_autocorr, market_stats
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
from mmbot.fidelity.compare import STAT_KEYS, sign_agreement, spearman
from mmbot.fidelity.panel import PANEL

SAMPLE = TESTS_DATA / "binance_usdm_btcusdt_sample.gz"
T0_NS = 1_700_000_000_000_000_000


def test_spearman_and_sign_agreement_on_paper() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks 1,2,3,4 vs 2,1,3,4: d^2 = 2 -> 1 - 6*2/(4*15) = 0.8
    assert spearman([1, 2, 3, 4], [2, 1, 3, 4]) == pytest.approx(0.8)
    # a nan pair is left out
    assert spearman([1, 2, float("nan"), 3], [1, 2, 5, 3]) == pytest.approx(1.0)
    assert math.isnan(spearman([1, 2], [1, 2]))
    assert sign_agreement([-1, -2, 3, 4], [-0.5, 1, 2, -1]) == pytest.approx(0.5)


def test_lag1_autocorr_of_alternating_and_persistent_series() -> None:
    assert _lag1_autocorr(np.array([1.0, -1.0] * 50)) == pytest.approx(-1.0)
    # 99 pairs around a mean of 0: 98 agree, 1 differs -> 97 / 99
    assert _lag1_autocorr(np.array([1.0] * 50 + [-1.0] * 50)) == pytest.approx(97 / 99)
    assert math.isnan(_lag1_autocorr(np.ones(10)))


def _ev(kind: int, side: int, t_ms: float, px: float, qty: float) -> tuple:
    t = T0_NS + int(round(t_ms * 1_000_000))
    return (kind | EXCH_EVENT | LOCAL_EVENT | side, t, t + 1_000_000, px, qty, 0, 0, 0.0)


def test_markouts_at_three_horizons_and_trade_sign_autocorr() -> None:
    """Book 99/101 (mid 100); a buy print at 0.5 s; the ask moves to 103 at 0.55 s (mid 101) and
    the bid to 101 at 3 s (mid 102): markouts +100 bps at 100 ms and 1 s, +200 bps at 5 s. Prints
    alternate buy/sell afterwards: the sign autocorrelation is negative."""
    rows = [
        _ev(DEPTH_SNAPSHOT_EVENT, BUY_EVENT, 0, 99.0, 1.0),
        _ev(DEPTH_SNAPSHOT_EVENT, SELL_EVENT, 0, 101.0, 1.0),
        _ev(TRADE_EVENT, BUY_EVENT, 500, 101.0, 1.0),
        _ev(DEPTH_EVENT, SELL_EVENT, 550, 103.0, 1.0),
        _ev(DEPTH_EVENT, SELL_EVENT, 550, 101.0, 0.0),
        _ev(DEPTH_EVENT, BUY_EVENT, 3000, 101.0, 1.0),
    ]
    rows += [
        _ev(TRADE_EVENT, BUY_EVENT if k % 2 else SELL_EVENT, 7000 + 100 * k, 102.0, 1.0)
        for k in range(10)
    ]
    rows += [_ev(DEPTH_EVENT, BUY_EVENT, 20000, 100.0, 1.0)]
    s = market_stats(np.array(rows, dtype=EVENT_DTYPE), tick_px=1.0)
    # the first print: mid 100 -> 101 at +100 ms and +1 s, 102 at +5 s; the ten later prints
    # see mid 102 throughout (the bid at 100 adds a level behind the touch): markout 0
    assert s["markout_100ms_bps"] == pytest.approx(100.0 / 11)
    assert s["markout_1s_bps"] == pytest.approx(100.0 / 11)
    assert s["markout_5s_bps"] == pytest.approx(200.0 / 11)
    assert s["parent_markout_5s_bps"] == pytest.approx(200.0 / 11)
    assert s["autocorr_trade_sign_lag1"] < -0.5
    assert s["touch_qty"] == s["depth_qty_by_level"][0]
    assert s["depth_qty_within_5bps"] == s["depth_qty_within_bps"][2]


def test_panel_is_at_least_eight_configurations_of_the_built_in_quoters() -> None:
    assert len(PANEL) >= 8
    assert {c.strategy for c in PANEL} >= {"glft", "touch"}
    assert len({c.name for c in PANEL}) == len(PANEL)


def test_fidelity_command_writes_json_markdown_and_html(tmp_path: Path) -> None:
    out = tmp_path / "fid"
    proc = subprocess.run(
        [
            sys.executable, "-m", "mmbot.cli", "data", "fidelity", str(SAMPLE),
            "--calibration", "binance_usdm_btcusdt", "--hours", "0.01", "--seeds", "1",
            "--out", str(out),
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "FIDELITY.json").read_text())
    assert set(res["stats"]) >= set(STAT_KEYS)
    for v in res["stats"].values():
        assert set(v) >= {"real", "synthetic", "ratio", "capture_length_sd", "z"}
    assert "stats_outside_band_beyond_noise" in res["checks"]
    for name in ("mid_return_100ms", "mid_return_1s", "trade_sign_lag1"):
        assert set(res["autocorr"][name]) >= {"real", "synthetic", "diff"}
    rk = res["ranking"]
    assert len(rk["configs"]) == len(PANEL)
    assert set(rk["configs"][0]) >= {"name", "real_net_bps", "synthetic_net_bps"}
    assert "spearman" in rk and "sign_agreement" in rk
    assert "spread_bps_mean" in (out / "FIDELITY.md").read_text()
    assert "<table>" in (out / "FIDELITY.html").read_text()
    assert "spearman" in proc.stdout
    chk = res["checks"]
    beyond = chk["stats_outside_band_beyond_noise"] + chk["autocorr_outside_band_beyond_noise"]
    assert f"own noise (|z| > {chk['noise_z']:g}): {', '.join(beyond) or 'none'}" in proc.stdout


def test_fidelity_command_rejects_a_missing_capture(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mmbot.cli", "data", "fidelity", str(tmp_path / "no.gz"),
         "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "not found" in proc.stderr


def test_deep_sweep_reach_and_impact_on_a_hand_built_book() -> None:
    """Book 9999/10001 (mid 10000, tick 1 = 1 bps): a buy order prints at 10001, 10002 and 10003 in
    one ms (reach 2 bps past its first print); the book then sits at 10002/10004 (mid 10003, +3 bps)
    and at 40 s back at 10000/10002 (mid 10001, +1 bps). A lone sell print at the bid reaches 0 and
    is not a deep sweep: share 1/2, impact +3 bps at 1 s and +3 bps at 30 s (the mid of 30.5 s)."""
    rows = [
        _ev(DEPTH_SNAPSHOT_EVENT, BUY_EVENT, 0, 9999.0, 5.0),
        _ev(DEPTH_SNAPSHOT_EVENT, SELL_EVENT, 0, 10001.0, 1.0),
        _ev(DEPTH_SNAPSHOT_EVENT, SELL_EVENT, 0, 10002.0, 1.0),
        _ev(DEPTH_SNAPSHOT_EVENT, SELL_EVENT, 0, 10003.0, 1.0),
        _ev(DEPTH_SNAPSHOT_EVENT, SELL_EVENT, 0, 10004.0, 1.0),
        _ev(TRADE_EVENT, BUY_EVENT, 500, 10001.0, 1.0),
        _ev(TRADE_EVENT, BUY_EVENT, 500, 10002.0, 1.0),
        _ev(TRADE_EVENT, BUY_EVENT, 500, 10003.0, 1.0),
        _ev(DEPTH_EVENT, SELL_EVENT, 500, 10001.0, 0.0),
        _ev(DEPTH_EVENT, SELL_EVENT, 500, 10002.0, 0.0),
        _ev(DEPTH_EVENT, SELL_EVENT, 500, 10003.0, 0.0),
        _ev(DEPTH_EVENT, BUY_EVENT, 600, 10002.0, 1.0),
        _ev(TRADE_EVENT, SELL_EVENT, 700, 10002.0, 0.5),
        _ev(DEPTH_EVENT, BUY_EVENT, 40000, 10000.0, 1.0),
        _ev(DEPTH_EVENT, BUY_EVENT, 40000, 10002.0, 0.0),
        _ev(DEPTH_EVENT, SELL_EVENT, 40000, 10002.0, 1.0),
        _ev(DEPTH_EVENT, SELL_EVENT, 60000, 10005.0, 1.0),
    ]
    s = market_stats(np.array(rows, dtype=EVENT_DTYPE), tick_px=1.0)
    assert s["deep_sweep_share"] == pytest.approx(0.5)
    assert s["deep_sweep_reach_bps"] == pytest.approx(2.0 / 10001.0 * 1e4)
    assert s["deep_sweep_impact_1s_bps"] == pytest.approx(3.0 / 10000.0 * 1e4)
    assert s["deep_sweep_impact_30s_bps"] == pytest.approx(3.0 / 10000.0 * 1e4)
    assert "deep_sweep_impact_1s_bps" in STAT_KEYS
    # one deep sweep: counted, its impact's standard error undefined (needs two)
    assert s["deep_sweep_count"] == 1.0
    assert math.isnan(s["deep_sweep_impact_1s_se_bps"])


def test_seed_spearman_is_the_mean_over_pairs_of_runs() -> None:
    """Three runs of a 4-configuration panel: runs a and b rank alike (rho 1), c reverses both
    (rho -1 with each): the mean over the three pairs is (1 - 1 - 1) / 3."""
    from mmbot.fidelity.compare import seed_spearman

    a = [1.0, 2.0, 3.0, 4.0]
    b = [10.0, 20.0, 30.0, 40.0]
    c = [4.0, 3.0, 2.0, 1.0]
    mean, pairs = seed_spearman([a, b, c])
    assert pairs == pytest.approx([1.0, -1.0, -1.0])
    assert mean == pytest.approx(-1.0 / 3.0)


def test_capture_like_spearman_compares_each_short_market_with_the_synthetic_mean() -> None:
    """The ceiling the capture is held to: each capture-length market against the mean of the
    long synthetic runs (the real side's comparison). Mean of the long runs ranks 1 < 2 < 3 < 4;
    short market a agrees (rho 1), b swaps the top two (rho 0.8)."""
    from mmbot.fidelity.compare import _ranking, _within_capture_like

    panel = PANEL[:4]
    syn_net = [[1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.5, 4.5]]
    ceiling = {"synthetic_net_bps_seeds": [[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.4, 0.3]]}
    nc = _ranking([1.0, 2.0, 3.0, 4.0], syn_net, panel, ceiling)["noise_ceiling"]
    assert nc["capture_like_spearman"] == pytest.approx([1.0, 0.8])
    assert nc["capture_like_spearman_mean"] == pytest.approx(0.9)
    within = _within_capture_like
    assert within({"spearman": 0.8, "noise_ceiling": nc}) is True
    assert within({"spearman": 0.79, "noise_ceiling": nc}) is False
    assert within({"spearman": 0.5, "noise_ceiling": {}}) is None
    assert "capture_like_spearman" not in _ranking([1.0] * 4, syn_net, panel, {})["noise_ceiling"]


def test_sampling_noise_z_and_which_misses_it_does_not_explain() -> None:
    """Capture-length markets give trade_rate 9, 10, 11 (sd 1 with ddof 1) and vol 1, 1, 1 (sd
    0): a synthetic rate of 13 against a real 10 (ratio 1.3, in band) is z = 3; a synthetic
    spread of 2 against 1 (ratio 2, out) with sd 1 is z = 1, out of band but within the noise;
    vol (out, sd 0) has no z and stays beyond it."""
    from mmbot.fidelity.compare import AUTOCORR_KEYS, _add_noise, _checks

    def stats(rate: float, spread: float, vol: float) -> dict:
        s = {key: 1.0 for key in list(STAT_KEYS.values()) + list(AUTOCORR_KEYS.values())}
        s.update(trade_rate_per_s=rate, spread_bps_mean=spread, vol_bps_per_sqrt_s=vol)
        return s

    noise = [stats(9.0, 1.0, 1.0), stats(10.0, 2.0, 1.0), stats(11.0, 3.0, 1.0)]
    out: dict = {"stats": {}, "autocorr": {}}
    for name in STAT_KEYS:
        out["stats"][name] = {"real": 1.0, "synthetic": 1.0, "ratio": 1.0}
    for name in AUTOCORR_KEYS:
        out["autocorr"][name] = {"real": 0.0, "synthetic": 0.0, "diff": 0.0}
    out["stats"]["trade_rate_per_s"] = {"real": 10.0, "synthetic": 13.0, "ratio": 1.3}
    out["stats"]["spread_bps_mean"] = {"real": 1.0, "synthetic": 2.0, "ratio": 2.0}
    out["stats"]["vol_bps_per_sqrt_s"] = {"real": 1.0, "synthetic": 2.0, "ratio": 2.0}
    _add_noise(out, noise)
    assert out["stats"]["trade_rate_per_s"]["capture_length_sd"] == pytest.approx(1.0)
    assert out["stats"]["trade_rate_per_s"]["z"] == pytest.approx(3.0)
    assert out["stats"]["spread_bps_mean"]["z"] == pytest.approx(1.0)
    assert math.isnan(out["stats"]["vol_bps_per_sqrt_s"]["z"])
    out["ranking"] = {"spearman": 1.0, "sign_agreement": 1.0}
    chk = _checks(out)
    assert chk["stats_outside_band"] == ["spread_bps_mean", "vol_bps_per_sqrt_s"]
    assert chk["stats_outside_band_beyond_noise"] == ["vol_bps_per_sqrt_s"]
    assert chk["autocorr_outside_band_beyond_noise"] == []


def test_mid_moves_per_side_per_second_over_100ms_windows() -> None:
    """Book 9999/10001 (mid 10000, tick 1 = 1 bps) for 60 s. At 10.5 s the mid moves up 1 bps
    (counts at 0.5 bps, up, second 10); at 20.5 s up 3 bps and back at 20.55 s (counts at 0.5 and
    2 bps, up and down, second 20); at 30.5 s up 1 bps and at 30.65 s 1.5 bps more: 2.5 bps over
    150 ms, but no 100 ms window holds both (counts at 0.5 bps only, once: second 30 up)."""

    def touch(t_ms: float, bid: tuple[float, float], ask: tuple[float, float]) -> list[tuple]:
        # (new, old) prices of each side: the new level set, then the old one deleted
        return [
            _ev(DEPTH_EVENT, SELL_EVENT, t_ms, ask[0], 1.0),
            _ev(DEPTH_EVENT, SELL_EVENT, t_ms, ask[1], 0.0),
            _ev(DEPTH_EVENT, BUY_EVENT, t_ms, bid[0], 1.0),
            _ev(DEPTH_EVENT, BUY_EVENT, t_ms, bid[1], 0.0),
        ]

    rows = [
        _ev(DEPTH_SNAPSHOT_EVENT, BUY_EVENT, 0, 9999.0, 5.0),
        _ev(DEPTH_SNAPSHOT_EVENT, SELL_EVENT, 0, 10001.0, 5.0),
        _ev(DEPTH_EVENT, SELL_EVENT, 10500, 10003.0, 1.0),
        _ev(DEPTH_EVENT, SELL_EVENT, 10500, 10001.0, 0.0),  # mid 10001
        *touch(20500, (10002.0, 9999.0), (10006.0, 10003.0)),  # mid 10004
        *touch(20550, (9999.0, 10002.0), (10003.0, 10006.0)),  # mid 10001
        _ev(DEPTH_EVENT, SELL_EVENT, 30500, 10005.0, 1.0),
        _ev(DEPTH_EVENT, SELL_EVENT, 30500, 10003.0, 0.0),  # mid 10002
        _ev(DEPTH_EVENT, BUY_EVENT, 30650, 10002.0, 1.0),
        _ev(DEPTH_EVENT, BUY_EVENT, 30650, 9999.0, 0.0),  # mid 10003.5
        _ev(DEPTH_EVENT, BUY_EVENT, 60000, 9990.0, 1.0),
    ]
    s = market_stats(np.array(rows, dtype=EVENT_DTYPE), tick_px=1.0, moves=True)
    assert s["mid_move_0.5bps_per_min"] == pytest.approx(4.0)
    assert s["mid_move_2bps_per_min"] == pytest.approx(2.0)
    # not a fidelity statistic (market_stats leaves it out, the default fit's files unchanged)
    assert "mid_move_0.5bps_per_min" not in market_stats(np.array(rows, dtype=EVENT_DTYPE))


def test_trade_throughs_per_side_per_second_against_the_mid_100ms_before() -> None:
    """Book 9999/10001 (mid 10000, tick 1 = 1 bps) for 60 s. Second 0: a buy order reaching 10003
    (3 bps) and another reaching 10006 (6 bps) count once per distance on the buy side; a sell
    to 9998 (2 bps) counts on the sell side. Second 1: a sell at 9998.5 (1.5 bps). Second 2: a
    sell at 9999.3 (0.7 bps). A buy at 50 ms has no mid 100 ms before it and is left out. At 2.95 s the book jumps to 10002/10003: the buy
    at 10003 at 3 s is 3 bps past the mid of 100 ms before (0.5 bps past the current one)."""
    book = [
        _ev(DEPTH_SNAPSHOT_EVENT, BUY_EVENT, 0, 9999.0, 5.0),
        _ev(DEPTH_SNAPSHOT_EVENT, SELL_EVENT, 0, 10001.0, 5.0),
    ]
    prints = [
        _ev(TRADE_EVENT, BUY_EVENT, 50, 10009.0, 1.0),
        _ev(TRADE_EVENT, BUY_EVENT, 500, 10001.0, 1.0),
        _ev(TRADE_EVENT, BUY_EVENT, 500, 10003.0, 1.0),
        _ev(TRADE_EVENT, BUY_EVENT, 700, 10006.0, 1.0),
        _ev(TRADE_EVENT, SELL_EVENT, 800, 9998.0, 1.0),
        _ev(TRADE_EVENT, SELL_EVENT, 1500, 9998.5, 1.0),
        _ev(TRADE_EVENT, SELL_EVENT, 2000, 9999.3, 1.0),
    ]
    jump = [
        _ev(DEPTH_EVENT, SELL_EVENT, 2950, 10003.0, 1.0),
        _ev(DEPTH_EVENT, SELL_EVENT, 2950, 10001.0, 0.0),
        _ev(DEPTH_EVENT, BUY_EVENT, 2950, 10002.0, 1.0),
        _ev(TRADE_EVENT, BUY_EVENT, 3000, 10003.0, 1.0),
        _ev(DEPTH_EVENT, BUY_EVENT, 60000, 10001.0, 1.0),
    ]
    s = market_stats(np.array(book + prints + jump, dtype=EVENT_DTYPE), tick_px=1.0)
    assert s["trade_through_0.5bps_per_min"] == pytest.approx(5.0)
    assert s["trade_through_1bps_per_min"] == pytest.approx(4.0)
    assert s["trade_through_2bps_per_min"] == pytest.approx(3.0)
    assert s["trade_through_5bps_per_min"] == pytest.approx(1.0)
    assert {f"trade_through_{d:g}bps_per_min" for d in (0.5, 1, 2, 5)} <= set(STAT_KEYS)
