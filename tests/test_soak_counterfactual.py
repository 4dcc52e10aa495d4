"""The soak's counterfactual replays: a kept segment replayed with the iteration's own knobs is the
real run (same events, same carried book, same settings seed), so paired comparisons are fair;
and the soak records every candidate the tuner replayed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import glft_options, glft_profile
from mmbot.knobs import CONSERVATIVE_START
from mmbot.soak.account_carry import AccountCarry
from mmbot.soak.runner import (
    NS_PER_HOUR,
    SYNTH_START_NS,
    Replayer,
    Segment,
    chunk_net_bps,
    chunk_score_bps,
    make_settings,
    resolve_market,
    run_iteration,
)

KNOBS = {k: float(v) for k, v in CONSERVATIVE_START.items()}


@pytest.fixture(scope="module")
def second_iteration() -> tuple:

    mkt = resolve_market("synthetic")
    prof = glft_profile()
    dur = int(0.02 * NS_PER_HOUR)
    segs: list[Segment] = []
    # iterations 1 and 2 of a soak: one market stream and one account carried from 1 into 2
    acct = AccountCarry(funded_to_ns=SYNTH_START_NS)
    run_iteration(mkt, prof, KNOBS, 5, 1, SYNTH_START_NS, dur, account=acct, close_end=False)
    results = run_iteration(
        mkt, prof, KNOBS, 5, 2, SYNTH_START_NS + dur, dur, segment_out=segs, account=acct
    )
    return mkt, prof, results, segs


def test_replay_with_the_real_knobs_is_the_real_run(second_iteration: tuple) -> None:
    """The kept segment starts from the account the real chunk started from (a position carried
    in from iteration 1); replayed with the real knobs it is the real run, before the soak's
    final close-out (which replays do not get: the real chunk is scored before it)."""
    mkt, prof, results, segs = second_iteration
    assert len(segs) == 1
    seg = segs[0]
    assert seg.iteration == 2 and seg.result is not results[-1]
    assert seg.account is not None and seg.account.position_qty != 0.0
    assert seg.result.meta["initial_position_qty"] == seg.account.position_qty
    assert results[-1].meta["close_out"]["closed"]  # run_iteration closed the real chunk after
    rp = Replayer(mkt, prof, keep=2)
    rp.segments[seg.iteration] = seg
    assert rp.replay(KNOBS, 2) == chunk_score_bps(seg.result)
    from mmbot.backtest import run as backtest_run

    again = backtest_run(
        seg.events,
        seg.account.settings(make_settings(prof, KNOBS, seg.settings_seed)),
        symbol=mkt.symbol,
        tick_px=mkt.tick_px,
        lot_qty=mkt.lot_qty,
    )
    for k in again.fills.dtype.names:
        a, b = again.fills[k], seg.result.fills[k]
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), k
    assert np.array_equal(again.actions, seg.result.actions)
    assert chunk_net_bps(again) == chunk_net_bps(seg.result)
    assert len(seg.result.fills) > 0
    # a replay from flat is another run: the carried position changes what the quoter does
    flat = backtest_run(
        seg.events,
        make_settings(prof, KNOBS, seg.settings_seed),
        symbol=mkt.symbol,
        tick_px=mkt.tick_px,
        lot_qty=mkt.lot_qty,
    )
    assert not np.array_equal(flat.fills["position_qty"], again.fills["position_qty"])


def test_replayer_caches_the_real_run_and_replays_other_knobs(second_iteration: tuple) -> None:
    mkt, prof, results, segs = second_iteration
    seg = Segment(segs[0].iteration, segs[0].events, segs[0].settings_seed, results[-1])
    rp = Replayer(mkt, prof, keep=2)
    rp.add(seg, KNOBS)
    assert rp(KNOBS, 2) == chunk_score_bps(results[-1]) and rp.replays == 0
    wide = dict(KNOBS, base_spread_bps_delta=0.6)
    v = rp(wide, 2)
    assert rp.replays == 1 and rp(wide, 2) == v and rp.replays == 1  # cached
    # only the latest `keep` segments are held
    for it in (3, 4):
        rp.add(Segment(it, seg.events, seg.settings_seed, results[-1]), KNOBS)
    assert rp.ids() == [4, 3] and 2 not in rp.segments
    assert all(k[0] in (3, 4) for k in rp.cache)


def _auto_soak(tmp: Path, hours: float, seed: int):
    """A 3-iteration auto-tune soak from the conservative start, artifacts under ``tmp``;
    returns (artifacts root, SoakOutcome, console text)."""
    from mmbot.soak.artifacts import SoakPaths, json_bytes
    from mmbot.soak.runner import SoakSettings, run_soak

    root = tmp / "artifacts"
    (root / "soak").mkdir(parents=True)
    (root / "soak" / "runtime_overrides.json").write_bytes(json_bytes(CONSERVATIVE_START))
    out_txt = tmp / "out.txt"
    with open(out_txt, "w") as fh:
        out = run_soak(
            SoakSettings(
                hours=hours,
                iterations=3,
                auto_tune=True,
                paths=SoakPaths.under(root),
                seed=seed,
                strategy_options=glft_options(),
            ),
            say=lambda line: print(line, file=fh),
        )
    return root, out, out_txt.read_text()


def test_soak_records_every_replayed_candidate(tmp_path: Path) -> None:
    root, out, stdout = _auto_soak(tmp_path, 0.06, 3)
    rows = [json.loads(x) for x in (root / "soak/metrics.jsonl").read_text().splitlines()]
    for r in rows[:-1]:
        at = r["autotune"]
        assert at["validated"] and at["trials"], r["iteration"]
        # the latest segment first; every iteration's segment is kept
        assert at["trials"][0]["segments"][0] == r["iteration"]
        adopted = [t for t in at["trials"] if t["adopted"]]
        # adopted changes are exactly the decision's changes, and each gained over the floor
        assert sorted((c["field"], c["to"]) for t in adopted for c in t["changes"]) == sorted(
            (c["field"], c["to"]) for c in at["changes"]
        ) or any(t["origin"] == "COMBINED" for t in adopted)
        for t in adopted:
            assert t["gain_bps"] > 0.0
            # validated on every segment so far
            assert sorted(t["segments"]) == list(range(1, r["iteration"] + 1))
        assert r["knobs"] != r["next_knobs"] or not at["changes"]
        assert stdout.count("| autotune | COUNTERFACTUAL |") >= len(at["trials"])
    sm = json.loads((root / "reports/soak_metrics.json").read_text())
    kept = [row for row in sm["keep_best"] if row["kept"]]
    assert len(kept) == 1 and kept[0]["knobs"] == out.final_overrides
    assert kept[0]["iteration"] == out.best_iteration
    assert "common_segments_score_bps=" in stdout


def _soak_rows(tmp: Path, workers: str, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    from mmbot.soak.artifacts import strip_wall_clock

    monkeypatch.setenv("MM_SOAK_REPLAY_WORKERS", workers)
    monkeypatch.delenv("MM_RUNTIME_OVERRIDES_JSON", raising=False)
    root, _, _ = _auto_soak(tmp, 0.04, 9)
    rows = [json.loads(x) for x in (root / "soak/metrics.jsonl").read_text().splitlines()]
    sm = json.loads((root / "reports/soak_metrics.json").read_text())
    return strip_wall_clock(rows) + [strip_wall_clock(sm["keep_best"])]


def test_parallel_replays_decide_exactly_like_serial_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serial = _soak_rows(tmp_path / "serial", "1", monkeypatch)
    parallel = _soak_rows(tmp_path / "parallel", "2", monkeypatch)
    assert serial == parallel
    assert any(r.get("autotune", {}) and r["autotune"].get("trials") for r in serial[:-1])


def test_bad_replay_workers_setting_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmbot.errors import UserError
    from mmbot.soak.runner import replay_workers

    monkeypatch.setenv("MM_SOAK_REPLAY_WORKERS", "two")
    with pytest.raises(UserError, match="MM_SOAK_REPLAY_WORKERS"):
        replay_workers()
    monkeypatch.setenv("MM_SOAK_REPLAY_WORKERS", "1")
    assert replay_workers() == 1


def test_iterations_continue_one_synthetic_market() -> None:
    """The soak's iterations are consecutive windows of ONE synthetic stream (the tuner's segments
    are the same process as the fresh market it is judged on): the windows of two iterations
    concatenated are the stream generated in one go, and iteration 2 starts from the book
    iteration 1 left (its first chunk is preceded by that book, not a fresh snapshot)."""
    from mmbot.data.synthetic import generate_chunks
    from mmbot.soak.runner import derive_seed

    mkt = resolve_market("synthetic")
    prof = glft_profile()
    dur = int(0.01 * NS_PER_HOUR)
    whole = np.concatenate(
        list(generate_chunks(mkt.calib, derive_seed(4, 1), SYNTH_START_NS, 2 * dur))
    )
    w1 = np.concatenate(list(mkt.chunks(4, 1, SYNTH_START_NS, dur)))
    w2 = np.concatenate(list(mkt.chunks(4, 2, SYNTH_START_NS + dur, dur)))
    assert np.array_equal(np.concatenate([w1, w2]), whole)
    # asked out of order (iteration 2 first), the windows are the same
    fresh = resolve_market("synthetic")
    assert np.array_equal(np.concatenate(list(fresh.chunks(4, 2, SYNTH_START_NS + dur, dur))), w2)
    assert np.array_equal(np.concatenate(list(fresh.chunks(4, 1, SYNTH_START_NS, dur))), w1)
    # a run of iteration 2 starts from the book at the boundary
    segs: list[Segment] = []
    run_iteration(mkt, prof, KNOBS, 4, 1, SYNTH_START_NS, dur)
    run_iteration(mkt, prof, KNOBS, 4, 2, SYNTH_START_NS + dur, dur, segment_out=segs)
    ev = segs[0].events.events  # the segment keeps the scanned events (PreparedEvents)
    n_snap = len(ev) - len(w2)
    assert n_snap > 0 and np.array_equal(ev[n_snap:], w2)
    from mmbot.events import DEPTH_SNAPSHOT_EVENT

    assert np.all((ev["ev"][:n_snap] & 0xFF) == DEPTH_SNAPSHOT_EVENT)
    assert np.all(ev["exch_ts"][:n_snap] == w2["exch_ts"][0])


def test_replay_score_drops_the_inventory_pnl_beyond_tau_on_paper() -> None:
    """One buy of 1 at 99.9 (mid 100, target 99.9, no fee) at t=0; the mid is 100.2 from 0.5 s,
    101 from 1.5 s and 102 at the end (10 s). On paper: gross 0.1, inventory 1 x (102 - 100) = 2,
    turnover 99.9, so net = 2.1 / 99.9 bps x 1e4; the mid SCORE_TAU_S (1 s) after the fill is
    100.2, so the part beyond tau is 1 x (102 - 100.2) = 1.8 and the score is
    net - SCORE_BETA x 1.8 / 99.9 x 1e4."""
    from mmbot.soak import autotune
    from test_audit_helpers import run as hand_run

    assert autotune.SCORE_TAU_S == 1.0  # the paper numbers below assume it
    res = hand_run(
        [
            dict(
                t_s=0.0, side=1, maker=1, px=99.9, qty=1.0, fee=0.0, mid=100.0, target=99.9, pos=1.0
            )
        ],
        [(0.0, 100.0, 1.0), (0.5, 100.2, 1.0), (1.5, 101.0, 1.0), (10.0, 102.0, 1.0)],
    )
    net = 2.1 / 99.9 * 1e4
    assert chunk_net_bps(res) == pytest.approx(net, rel=1e-9)
    assert chunk_score_bps(res) == pytest.approx(
        net - autotune.SCORE_BETA * 1.8 / 99.9 * 1e4, rel=1e-9
    )
