"""Journal: write-ahead order ids, fills counted once, exact position after a real kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from mmbot.live.journal import FillRow, Journal


def _fill(exec_id: str, side: int, qty: float, px: float = 2.0, link_id: str = "x") -> FillRow:
    return FillRow(
        exec_id, link_id, "o1", "XRPUSDT", side, px, qty, 0.0002 * px * qty, 0.0002, True, 1, 2
    )


def test_fill_counted_once_and_position_is_the_sum(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    assert j.record_fill(_fill("e1", 1, 10.0)) == (True, 10.0)
    assert j.record_fill(_fill("e1", 1, 10.0)) == (False, 10.0)  # same execId again: ignored
    assert j.record_fill(_fill("e2", -1, 4.0)) == (True, 6.0)
    assert j.position_qty("XRPUSDT") == 6.0
    cash, fees = j.cash_and_fees("XRPUSDT")
    assert abs(fees - 0.0002 * 2.0 * 14.0) < 1e-12
    assert abs(cash - (-(2.0 * 10) + 2.0 * 4 - fees)) < 1e-12


def test_client_order_ids_never_reused_across_reopen(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    a = j.new_order("XRPUSDT", 1, 2.0, 10.0)
    b = j.new_order("XRPUSDT", -1, 2.1, 10.0)
    j.close()
    j2 = Journal(tmp_path / "j.sqlite")
    c = j2.new_order("XRPUSDT", 1, 2.0, 10.0)
    assert len({a, b, c}) == 3 and all(j2.is_ours(x) for x in (a, b, c))
    assert {o["link_id"] for o in j2.open_orders()} == {a, b, c}  # PendingNew until resolved
    assert len(c) <= 36  # Bybit's orderLinkId limit


def test_wal_and_full_sync(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    assert j.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert j.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


WRITER = r"""
import sys, time
from mmbot.live.journal import FillRow, Journal
j = Journal(sys.argv[1])
i = 0
while True:
    i += 1
    side = 1 if i % 3 else -1
    link = j.new_order("XRPUSDT", side, 2.0, 1.0)
    new, pos = j.record_fill(FillRow(f"e{i}", link, "o", "XRPUSDT", side, 2.0, 1.0, 0.0, 0.0, True, i, i))
    print(f"{i} {side}", flush=True)  # printed only after the commit returned
"""


def test_kill_9_loses_no_committed_fill(tmp_path):
    path = tmp_path / "j.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    acked: list[tuple[int, int]] = []
    t_end = time.monotonic() + 20
    while len(acked) < 150 and time.monotonic() < t_end:
        line = proc.stdout.readline()
        if line:
            i, side = line.split()
            acked.append((int(i), int(side)))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(5)
    rest = proc.stdout.read().split("\n")
    acked += [(int(x.split()[0]), int(x.split()[1])) for x in rest if x.strip()]
    assert proc.returncode == -signal.SIGKILL and len(acked) >= 150
    j = Journal(path)  # recovery: reopen as-is
    rows = j.db.execute("SELECT exec_id, side FROM fills").fetchall()
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids))
    got = {int(e[1:]) for e in ids}
    # every fill whose commit returned is there; at most the one in flight beyond
    assert {i for i, _ in acked} <= got and len(got) - len(acked) <= 1
    assert got == set(range(1, len(got) + 1))  # no hole
    expect_pos = sum(1 if i % 3 else -1 for i in got)
    assert j.position_qty("XRPUSDT") == expect_pos
    assert sqlite3.connect(str(path)).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # the id counter continues past every id handed out before the crash
    nxt = j.new_order("XRPUSDT", 1, 2.0, 1.0)
    used = {r[0] for r in j.db.execute("SELECT link_id FROM orders WHERE link_id != ?", (nxt,))}
    assert nxt not in used
