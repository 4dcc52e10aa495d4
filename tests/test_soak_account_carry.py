"""A soak's account (position, cash, funding paid) carries across chunks: chunk k+1 starts from
chunk k's end position, the quoter sees it, the identity holds on every chunk with its carried
position marked from the chunk's start mid, a funding time at a boundary is paid once, and two
chunks give the fills of one continuous run when the seam cuts no working order."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import glft_options, glft_profile
from mmbot.audit import build_edge_report
from mmbot.audit.decompose import check_identity, decompose
from mmbot.events import DEPTH_CLEAR_EVENT, EVENT_DTYPE, EXCH_EVENT, LOCAL_EVENT
from mmbot.knobs import CONSERVATIVE_START
from mmbot.soak import market as soak_market
from mmbot.soak import runner
from mmbot.soak.account_carry import AccountCarry
from mmbot.soak.artifacts import SoakPaths
from mmbot.soak.start import SoakSettings

KNOBS = {k: float(v) for k, v in CONSERVATIVE_START.items()}
SECOND_NS = 1_000_000_000
FILL_COLUMNS_BUT_ORDER_ID = ("exch_ts", "local_ts", "side", "maker", "px", "qty", "fee")


def _market_with_a_quiet_gap(seed: int, gap_s: int = 70) -> tuple[np.ndarray, np.ndarray, int]:
    """(part A, part B, seam time): 60 s of the synthetic market, then both book sides cleared
    (every quoter pulls its orders) and ``gap_s`` of nothing, then the next 60 s of the same
    market preceded by a snapshot of its book (the book A ended with, so the mid is the same)."""
    mkt = runner.resolve_market("synthetic")
    st = runner.SyntheticStream(mkt.calib, seed, runner.SYNTH_START_NS, mkt.tick_px)
    a = next(st.take(runner.SYNTH_START_NS + 60 * SECOND_NS))
    snap_at = runner.SYNTH_START_NS + (60 + gap_s) * SECOND_NS
    snap = st.carry.snapshot(snap_at)
    b = next(st.take(runner.SYNTH_START_NS + 120 * SECOND_NS)).copy()
    b["exch_ts"] += gap_s * SECOND_NS
    b["local_ts"] += gap_s * SECOND_NS
    clear = np.zeros(1, EVENT_DTYPE)
    clear["ev"] = DEPTH_CLEAR_EVENT | EXCH_EVENT | LOCAL_EVENT  # no side flag: both sides
    clear["exch_ts"] = clear["local_ts"] = int(a["local_ts"].max()) + SECOND_NS // 1000
    seam_ns = int(clear["exch_ts"][0]) + (gap_s // 2) * SECOND_NS
    return np.concatenate([a, clear]), np.concatenate([snap, b]), seam_ns


def _settings(strategy: str):

    s = runner.make_settings(glft_profile(), KNOBS, 11)
    return replace(s, strategy=strategy)


@pytest.mark.parametrize("strategy", ["touch", "glft"])
def test_two_chunks_give_the_continuous_runs_fills_when_the_seam_cuts_no_order(
    strategy: str,
) -> None:
    """touch keeps no state: across a seam that cuts no working order its two chunks give exactly
    the continuous run's fills (order ids aside: each venue numbers its own) and PnL. glft's
    estimators restart with the chunk (a fresh quoter state, not carried): its fills agree up to
    the seam and its second chunk starts from the continuous run's position there."""
    from mmbot.backtest import run

    mkt = runner.resolve_market("synthetic")
    part_a, part_b, seam_ns = _market_with_a_quiet_gap(seed=3)
    s = _settings(strategy)
    kw = dict(symbol=mkt.symbol, tick_px=mkt.tick_px, lot_qty=mkt.lot_qty)
    acct = AccountCarry(funded_to_ns=0)
    first = run(part_a, acct.settings(s), **kw)
    acct.begin(first)
    acct.end(first, seam_ns)
    second = run(part_b, acct.settings(s), **kw)
    acct.begin(second)
    assert second.meta["order_qty"] == first.meta["order_qty"]  # sized once, as one run
    # one run over both parts, sized from the same first events as the chunks
    whole = run(np.concatenate([part_a, part_b]), replace(s, ref_px=acct.ref_px), **kw)

    before = whole.fills[whole.fills["exch_ts"] < seam_ns]
    assert len(first.fills) > 10 and len(before) == len(first.fills)
    for col in (*FILL_COLUMNS_BUT_ORDER_ID, "position_qty"):
        assert np.array_equal(before[col], first.fills[col]), col
    pos_at_seam = float(before["position_qty"][-1])
    assert pos_at_seam != 0.0  # the carry is exercised
    assert second.meta["initial_position_qty"] == pos_at_seam
    assert second.meta["carry_in"]["seam_pnl"] == 0.0  # B opens on the book A ended with

    after = whole.fills[whole.fills["exch_ts"] >= seam_ns]
    if strategy == "touch":
        assert len(after) == len(second.fills) > 10
        for col in (*FILL_COLUMNS_BUT_ORDER_ID, "position_qty", "mid_px", "target_px"):
            assert np.array_equal(after[col], second.fills[col], equal_nan=True), col
        chunks = build_edge_report([first, second], {})["totals"]
        one = build_edge_report([whole], {})["totals"]
        assert chunks["pnl"] == pytest.approx(one["pnl"], rel=1e-12, abs=1e-9)
        assert chunks["inventory_bps"] == pytest.approx(one["inventory_bps"], rel=1e-9)
    else:
        # the second chunk's first fill continues from the carried position
        f0 = second.fills[0]
        assert f0["position_qty"] == pytest.approx(pos_at_seam + f0["side"] * f0["qty"])


CHUNK_S = 40  # chunks of this many seconds (the soak's are 30 min) keep these tests fast


@pytest.fixture(scope="module")
def carried_chunks() -> tuple:
    """Three 40-s chunks of one iteration run by the soak's `run_iteration` (its end position not
    closed), with a funding time at every chunk boundary."""
    from mmbot.data.synthetic_funding import FundingAccrual

    mp = pytest.MonkeyPatch()
    mp.setattr(soak_market, "CHUNK_NS", CHUNK_S * SECOND_NS)
    try:
        mkt = runner.resolve_market("synthetic")
        prof = glft_profile()
        accrual = FundingAccrual.from_profile(prof)
        # funding every 40 s: at every chunk boundary; a rate large enough to see
        mkt.funding = replace(accrual, interval_ns=CHUNK_S * SECOND_NS, interest_rate=1e-4)
        start = runner.SYNTH_START_NS
        assert start % (CHUNK_S * SECOND_NS) == 0  # the funding times fall on the boundaries
        acct = AccountCarry(funded_to_ns=start)
        results = runner.run_iteration(
            mkt, prof, KNOBS, 3, 1, start, 3 * CHUNK_S * SECOND_NS, account=acct, close_end=False
        )
    finally:
        mp.undo()
    return results, acct, start


def test_each_chunk_starts_from_the_previous_chunks_end_account(carried_chunks: tuple) -> None:
    results, acct, _ = carried_chunks
    assert len(results) == 3
    assert results[0].meta["initial_position_qty"] == 0.0
    for prev, nxt in zip(results, results[1:], strict=False):
        end_pos = float(prev.fills["position_qty"][-1])
        assert end_pos != 0.0  # a position is carried (the test would prove nothing flat)
        assert nxt.meta["initial_position_qty"] == end_pos
        # bought at the previous chunk's final mid: the chunk's own PnL starts at zero, from the
        # soak's PnL so far (its cash holds it, so the guards see the soak's figure)
        assert nxt.meta["carry_in"]["entry_px"] == prev.meta["final_mid_px"]
        assert nxt.meta["carry_in"]["cash"] == -end_pos * prev.meta["final_mid_px"]
        assert nxt.meta["carry_in"]["seam_pnl"] == 0.0
        assert nxt.meta["carry_in"]["soak_pnl"] == prev.meta["sim_equity"] != 0.0
        assert nxt.meta["initial_equity"] == pytest.approx(prev.meta["sim_equity"], abs=1e-9)
        assert nxt.meta["order_qty"] == results[0].meta["order_qty"]
        # the quoter traded from the carried position: the venue's first fill continues it
        f0 = nxt.fills[0]
        assert f0["position_qty"] == pytest.approx(end_pos + f0["side"] * f0["qty"], abs=1e-12)
    assert acct.position_qty == results[-1].fills["position_qty"][-1]


def test_the_identity_holds_on_every_chunk_with_a_carried_position(carried_chunks: tuple) -> None:
    """The carried position's move from the chunk's start mid is in the chunk's inventory term;
    the audit's PnL is the venue's equity change; the chunks' PnL add up to the venue's equity
    from flat (nothing vanishes at a seam: the seams' unbooked move is 0 on the carried book)."""
    results, acct, _ = carried_chunks
    for i, r in enumerate(results[1:], 2):
        e = decompose(r)
        pos0 = e.initial_position_qty
        assert pos0 != 0.0
        assert e.inventory_initial == pytest.approx(
            pos0 * (e.final_mid_px - e.start_mid_px), rel=1e-12
        )
        assert check_identity(e, f"chunk {i}") <= 1e-9
        assert r.meta["carry_in"]["seam_pnl"] == 0.0
        assert r.meta["start_mid_px"] == r.meta["carry_in"]["previous_final_mid_px"]
    report = build_edge_report(results, {})
    assert all(abs(r["pnl_minus_sim_equity"]) < 1e-6 for r in report["runs"])
    # the chunks' PnL add up to one account's: its cash from every fill plus the end position
    # marked at the final mid (and the funding, which the audit books)
    fills = np.concatenate([r.fills for r in results])
    cash = float(-(fills["side"] * fills["qty"] * fills["px"]).sum() - fills["fee"].sum())
    account_pnl = cash + acct.position_qty * results[-1].meta["final_mid_px"]
    funding = sum(decompose(r).funding for r in results)
    assert report["totals"]["pnl"] == pytest.approx(account_pnl + funding, rel=1e-9, abs=1e-9)
    carry = report["totals"]["position_carry"]
    assert carry["runs"] == 3 and carry["carried"] == 2 and carry["seam_pnl"] == 0.0


def test_a_funding_time_at_a_chunk_boundary_is_charged_once(carried_chunks: tuple) -> None:
    """Each boundary's funding time is in exactly one chunk (the one it ends), paid on the
    position that chunk carries out (held at its last event), at the mid then."""
    from mmbot.audit.decompose import final_mid

    results, _, start = carried_chunks
    times = [t for r in results for t in r.meta["funding"]["funding_times_ns"]]
    step = CHUNK_S * SECOND_NS
    assert times == [start + step, start + 2 * step, start + 3 * step]
    for k, r in enumerate(results):
        f = r.meta["funding"]
        assert f["funding_times_ns"] == [start + (k + 1) * step]
        held = float(r.fills["position_qty"][-1])
        if k + 1 < len(results):
            assert results[k + 1].meta["initial_position_qty"] == held
        (rate,) = f["rates"]
        expected = -rate * held * final_mid(r)
        assert rate != 0.0 and held != 0.0
        assert decompose(r).funding == pytest.approx(expected, rel=1e-12)


def test_a_soak_carries_its_position_through_chunks_and_iterations_and_closes_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the soak's records: every chunk (across the iteration boundary too) starts at the
    previous chunk's end position; only the soak's last chunk is closed at taker cost; the
    report and the console say so."""
    from mmbot.audit.records_io import read_run

    monkeypatch.setattr(soak_market, "CHUNK_NS", CHUNK_S * SECOND_NS)
    monkeypatch.delenv("MM_RUNTIME_OVERRIDES_JSON", raising=False)
    monkeypatch.setenv("MM_SOAK_REPLAY_WORKERS", "1")
    root = tmp_path / "artifacts"
    with open(tmp_path / "out.txt", "w") as fh:
        runner.run_soak(
            SoakSettings(
                hours=3 * CHUNK_S / 3600,
                iterations=2,  # 60 s each: chunks of 40 + 20 s
                auto_tune=True,
                paths=SoakPaths.under(root),
                seed=3,
                strategy_options=glft_options(),
            ),
            say=lambda line: print(line, file=fh),
        )
    runs = sorted(read_run(root / "soak/records"), key=lambda r: r.meta["name"])
    names = [r.meta["name"] for r in runs]
    assert names == [
        "iter001_chunk000",
        "iter001_chunk001",
        "iter002_chunk000",
        "iter002_chunk001",
    ]
    carried = 0
    for prev, nxt in zip(runs, runs[1:], strict=False):
        end_pos = float(prev.fills["position_qty"][-1]) if len(prev.fills) else None
        assert nxt.meta["initial_position_qty"] == (
            end_pos if end_pos is not None else prev.meta["initial_position_qty"]
        )
        carried += nxt.meta["initial_position_qty"] != 0.0
    assert carried >= 2
    closes = [r.meta["close_out"] for r in runs if "close_out" in r.meta]
    assert len(closes) == 1 and runs[-1].meta["close_out"] is closes[0]
    totals = json.loads((root / "reports/EDGE_REPORT.json").read_text())["totals"]
    assert totals["position_carry"]["runs"] == 4
    assert totals["position_carry"]["carried"] == carried
    assert totals["position_close_out"]["runs"] == 1
    md = (root / "reports/SOAK_RESULTS.md").read_text()
    out = (tmp_path / "out.txt").read_text()
    assert "positions carried across chunks and iterations" in md and "| soak | CARRY |" in out
