"""`mmbot replay-compare`: a recorded session's feed replayed through the backtest and compared
order by order; a directory that is not a recorded session is one exit-2 line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mmbot.live.replay_compare import compare
from mmbot.records import (
    ACT_CANCELLED,
    ACT_FILLED,
    ACT_SENT,
    ACTION_DTYPE,
    FILL_DTYPE,
    MARK_DTYPE,
    OP_NEW,
    RunResult,
)
from mmbot.strategy.registry import resolve

MS = 1_000_000


def _run(orders: list[tuple], fills: list[tuple]) -> RunResult:
    """``orders``: (order id, side, decided ms, px, end kind or None, end ms);
    ``fills``: (order id, exch ms, px, qty)."""
    acts = []
    for oid, side, t_ms, px, end, end_ms in orders:
        acts.append((t_ms * MS, 0, oid, ACT_SENT, side, OP_NEW, 0, px, 1.0, 0))
        if end is not None:
            acts.append((end_ms * MS, 0, oid, end, side, OP_NEW, 0, px, 1.0, 0))
    a = np.array(acts, ACTION_DTYPE)
    f = np.zeros(len(fills), FILL_DTYPE)
    for k, (oid, t_ms, px, qty) in enumerate(fills):
        f[k]["exch_ts"], f[k]["order_id"], f[k]["px"], f[k]["qty"] = t_ms * MS, oid, px, qty
    return RunResult(f, a, np.zeros(0, MARK_DTYPE), {})


def test_compare_pairs_orders_and_names_each_difference_and_its_cause():
    session = _run(
        [
            (1, 1, 0, 100.0, ACT_FILLED, 50),  # filled at 50 ms in both: same
            (2, -1, 10, 101.0, ACT_FILLED, 80),  # filled here; the replay cancelled first
            (3, 1, 200, 99.0, ACT_CANCELLED, 300),  # the replay placed no buy near 200 ms
            (4, -1, 400, 102.0, ACT_FILLED, 500),  # filled 10 ms later than in the replay
        ],
        [(1, 50, 100.0, 1.0), (2, 80, 101.0, 1.0), (4, 500, 102.0, 1.0)],
    )
    replay = _run(
        [
            (11, 1, 2, 100.0, ACT_FILLED, 50),
            (12, -1, 14, 101.0, ACT_CANCELLED, 60),
            (14, -1, 401, 102.0, ACT_FILLED, 490),
            (15, 1, 900, 98.0, None, 0),  # never in the session
        ],
        [(11, 50, 100.0, 1.0), (14, 490, 102.0, 1.0)],
    )
    cmp = compare(session, replay)
    assert (cmp.n_session, cmp.n_replay, cmp.n_matched, cmp.n_same) == (4, 4, 3, 1)
    assert (cmp.fills_session, cmp.fills_replay) == (3, 2)
    kinds = {d.px: d.kind for d in cmp.differences}
    assert kinds == {
        101.0: "replay left first",
        99.0: "session only",
        102.0: "fill time",
        98.0: "replay only",
    }
    by_px = {d.px: d for d in cmp.differences}
    assert "cancelled it 20.0 ms before that fill" in by_px[101.0].cause
    assert "+10.0 ms apart" in by_px[102.0].cause
    assert cmp.decide_lag_p50_ms == pytest.approx(-2.0)  # session decided 2, 4, 1 ms earlier


def test_identical_runs_have_no_differences():
    run = _run([(1, 1, 0, 100.0, ACT_FILLED, 50)], [(1, 50, 100.0, 1.0)])
    cmp = compare(run, run)
    assert cmp.differences == [] and cmp.n_same == 1


def _mmbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mmbot.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "setup, why",
    [
        (lambda d: None, "no session.json"),
        (lambda d: (d / "session.json").write_text("{not json"), "session.json unreadable"),
        (
            lambda d: (d / "session.json").write_text(json.dumps({"mode": "backtest"})),
            "names no paper/live mode",
        ),
        (
            lambda d: (d / "session.json").write_text(
                json.dumps({"mode": "paper", "replay": {"record_path": None}})
            ),
            "run without --record PATH",
        ),
        (
            lambda d: (d / "session.json").write_text(
                json.dumps({"mode": "live", "replay": {"record_path": str(d / "gone.jsonl")}})
            ),
            "gone.jsonl is gone",
        ),
    ],
    ids=["empty", "bad-json", "not-a-session", "not-recorded", "feed-gone"],
)
def test_a_directory_that_is_not_a_recorded_session_is_one_exit_2_line(tmp_path, setup, why):
    d = tmp_path / "run"
    d.mkdir()
    setup(d)
    proc = _mmbot("replay-compare", str(d))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a recorded paper/live session" in lines[0] and why in lines[0]


def test_replay_compare_of_a_recorded_paper_session(tmp_path):
    """Smoke: a 5 s paper session on the emulator with --record, then replay-compare of its run
    directory: exit 0, the session's own fill count, a replay fill count and the order counts."""
    from mmbot.live.testing import EmulatorThread, bot_cmd, bot_env, start_bot

    emu = EmulatorThread()
    out = tmp_path / "p"
    try:
        cmd = bot_cmd("paper", emu.url, out, 5.0, "--record", str(tmp_path / "stream.jsonl"))
        env = {k: v for k, v in bot_env().items() if not k.startswith("BYBIT_")}
        _, err = start_bot(cmd, env, tmp_path).communicate(timeout=90)
    finally:
        emu.close()
    sess = json.loads((out / "session.json").read_text())
    assert sess["replay"]["record_path"] == str((tmp_path / "stream.jsonl").resolve()), err
    # the backtest replays it on the session's wake interval (its RunConfig's: the quoter's own)
    quoter = resolve(sess["replay"]["strategy"])
    assert sess["replay"]["wake_interval_ms"] == quoter.wake_interval_ms, err
    proc = _mmbot("replay-compare", str(out), "--max-rows", "5")
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert f"fills: session {sess['fills']}, replay " in proc.stdout
    assert "orders: session " in proc.stdout and "paired " in proc.stdout
