"""The drawdown stop in a live session against the emulator: a stop cancels every order and says so
(stderr, live.log, the journal's risk_events), no order is placed while it cools down, and quoting
resumes afterwards."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from mmbot.config import PROFILES_DIR
from mmbot.live.testing import EmulatorThread, bot_cmd, bot_env, journal_fills, start_bot

SESSION_S = 10.0
COOLDOWN_S = 1.0


@pytest.fixture
def emu():
    e = EmulatorThread()
    yield e
    e.close()


def _profile(tmp_path: Path, max_drawdown: float) -> Path:
    raw = json.loads((PROFILES_DIR / "market_maker_S1.json").read_text())
    raw["risk"]["max_drawdown"] = max_drawdown
    raw["risk"]["drawdown_cooldown_s"] = COOLDOWN_S
    path = tmp_path / "dd_profile.json"
    path.write_text(json.dumps(raw))
    return path


def _rows(db_path: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(str(db_path))
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_drawdown_stop_cancels_all_says_so_pauses_and_resumes(emu, tmp_path):
    out = tmp_path / "dd"
    profile = _profile(tmp_path, 1e-6)  # the first adverse mark after a fill stops it
    cmd = bot_cmd("live", emu.url, out, SESSION_S, "--profile", str(profile))
    proc = start_bot(cmd, bot_env(), tmp_path)
    _, err = proc.communicate(timeout=SESSION_S + 60)
    assert proc.returncode == 0, err
    sess = json.loads((out / "session.json").read_text())
    st = emu.state()
    assert st["open_orders"] == []
    assert abs(sess["position_qty"] - st["position_qty"]) < 1e-9
    assert len(journal_fills(out / "journal.sqlite")) >= 1
    # it says so: stderr (the console) and the journal
    assert "drawdown stop" in err and "all orders cancelled" in err, err
    db = out / "journal.sqlite"
    events = _rows(db, "SELECT ts_ns, kind, detail FROM risk_events ORDER BY seq")
    kinds = [k for _, k, _ in events]
    assert kinds.count("drawdown_stop") == sess["counters"]["drawdown_stops"] >= 1
    assert kinds.count("drawdown_resume") == sess["counters"]["drawdown_resumes"] >= 1
    assert all("max_drawdown 1e-06" in d for _, k, d in events if k == "drawdown_stop")
    # each stop is followed by a cancel-all for it; nothing new is placed until the resume
    cancelled = _rows(
        db, "SELECT ts_ns FROM order_events WHERE kind='cancel_all' AND detail='drawdown stop'"
    )
    assert cancelled, "no resting order was cancelled by a drawdown stop"
    news = [t for (t,) in _rows(db, "SELECT ts_ns FROM order_events WHERE kind='new'")]
    for i, (t_stop, kind, _) in enumerate(events):
        if kind != "drawdown_stop":
            continue
        t_resume = next((t for t, k, _ in events[i + 1 :] if k == "drawdown_resume"), None)
        end = t_resume if t_resume is not None else float("inf")
        assert not [t for t in news if t_stop < t < end], "an order was placed while paused"
        if t_resume is not None:
            assert (t_resume - t_stop) / 1e9 >= COOLDOWN_S - 0.05
    # quoting resumed: orders were placed after a resume
    t_first_resume = next(t for t, k, _ in events if k == "drawdown_resume")
    assert any(t > t_first_resume for t in news)


def test_drawdown_stop_off_by_default_never_stops(emu, tmp_path):
    out = tmp_path / "nodd"
    proc = start_bot(bot_cmd("live", emu.url, out, 5.0), bot_env(), tmp_path)
    _, err = proc.communicate(timeout=65)
    assert proc.returncode == 0, err
    sess = json.loads((out / "session.json").read_text())
    assert sess["counters"]["drawdown_stops"] == 0 and "drawdown stop" not in err
