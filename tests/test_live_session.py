"""End to end: `mmbot live` (a real subprocess) against the emulator on 127.0.0.1, with faults.

After every session: no order left open, the bot's journal position equals the emulator's, and every
emulator fill is in the journal exactly once. Each session lasts a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from mmbot.live.testing import (
    TEST_SECRET,
    EmulatorThread,
    bot_cmd,
    bot_env,
    journal_fills,
    start_bot,
    wait_for,
)

SESSION_S = 5.0


def _free_port() -> int:
    import socket

    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


@pytest.fixture
def emu():
    e = EmulatorThread()
    yield e
    e.close()


def check_consistent(emu: EmulatorThread, out: Path) -> dict:
    st = emu.state()
    assert st["open_orders"] == [], f"orders left open: {st['open_orders']}"
    rows = journal_fills(out / "journal.sqlite")
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(e["exec_id"] for e in st["executions"]), (
        "journal and exchange fills differ"
    )
    pos = sum(side * qty for _, side, qty in rows)
    assert abs(pos - st["position_qty"]) < 1e-9
    sess = json.loads((out / "session.json").read_text())
    assert abs(sess["position_qty"] - st["position_qty"]) < 1e-9
    return sess


def run(
    emu: EmulatorThread,
    out: Path,
    *extra: str,
    duration_s: float = SESSION_S,
    faults=(),
    during=None,
) -> tuple[int, str, dict]:
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = start_bot(bot_cmd("live", emu.url, out, duration_s, *extra), bot_env(), out.parent)
    if (
        faults or during
    ):  # faults go in once the bot is trading (its start-up takes a second or two)
        assert wait_for(lambda: emu.state()["orders_created"] >= 1, 40), "bot never placed an order"
    if during is not None:
        during()
    for at_s, kind, kw in faults:
        time.sleep(at_s)
        emu.inject(kind, **kw)
    try:
        _, err = proc.communicate(timeout=duration_s + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    sess = check_consistent(emu, out)
    return proc.returncode, err, sess


def test_clean_session_trades_writes_records_and_never_the_secret(emu, tmp_path):
    out = tmp_path / "s"
    port = _free_port()
    scraped: list[str] = []

    def scrape() -> None:
        import urllib.request

        time.sleep(1.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            scraped.append(r.read().decode())

    rc, err, sess = run(emu, out, "--metrics-port", str(port), during=scrape)
    assert rc == 0, err
    text = scraped[0]
    for name in (
        "mmbot_actions_total",
        "mmbot_position_qty",
        "mmbot_feed_latency_ms_bucket",
        "mmbot_order_latency_ms_bucket",
        "mmbot_clock_drift_ms",
        "mmbot_edge_rolling_bps",
    ):
        assert name in text, name
    assert TEST_SECRET not in err
    for p in (p for p in tmp_path.rglob("*") if p.is_file()):  # logs, journal, records, reports
        assert TEST_SECRET.encode() not in p.read_bytes(), f"secret found in {p}"
    assert sess["fills"] >= 1, "a session that never fills proves nothing"
    assert emu.state()["orders_created"] >= 2
    rep = json.loads((out / "EDGE_REPORT.json").read_text())
    assert "totals" in rep
    for f in ("fills.parquet", "actions.parquet", "marks.parquet", "meta.json", "audit.jsonl"):
        assert (out / "records" / "live" / f).exists()


FAULTS = {
    # name: (faults [(delay_s, kind, kwargs)], counter that must have moved)
    "drop_ws": ([(0.3, "drop_ws", {})], "ws_reconnects"),
    "stall_feed": ([(0.3, "stall_feed", {"seconds": 1.5})], "stale_pauses"),
    "duplicate": ([(0.3, "duplicate", {"count": 40})], "stale_msgs"),
    "reorder": ([(0.3, "reorder", {"count": 4, "stream": "public"})], "gaps"),
    "seq_gap": ([(0.3, "seq_gap", {"count": 2})], "gaps"),
    "rest_5xx": ([(0.3, "rest_5xx", {"count": 3})], "rest_transport_errors"),
    "rest_timeout": (
        [(0.3, "rest_timeout", {"count": 1, "seconds": 1.5})],
        "rest_transport_errors",
    ),
    "rate_limit": ([(0.3, "rate_limit", {"count": 3})], "rate_limited"),
    "reject": ([(0.3, "reject", {"count": 2})], "rejects"),
    "private_dup_reorder": (
        [
            (0.3, "duplicate", {"count": 30, "stream": "private"}),
            (0.0, "reorder", {"count": 5, "stream": "private"}),
        ],
        None,
    ),
}


def test_market_data_faults_in_one_session(emu, tmp_path):
    """Dropped sockets, a stalled feed, duplicated/reordered messages and sequence gaps, one
    after the other in one session (the fast suite's version of the per-fault sessions below)."""
    names = ["drop_ws", "stall_feed", "duplicate", "reorder", "seq_gap", "private_dup_reorder"]
    faults = [(0.9, kind, kw) for n in names for _, kind, kw in FAULTS[n][0]]
    rc, err, sess = run(emu, tmp_path / "s", "--stale-ms", "700", duration_s=11.0, faults=faults)
    assert rc == 0, err
    c = sess["counters"]
    assert (
        c["ws_reconnects"] >= 2
        and c["stale_pauses"] >= 1
        and c["stale_msgs"] >= 1
        and c["gaps"] >= 2
    ), c
    assert c["reconciles"] >= 3, c  # start + after the private reconnect + shutdown


def test_rest_faults_in_one_session(emu, tmp_path):
    names = ["rest_5xx", "rest_timeout", "rate_limit", "reject"]
    faults = [(0.8, kind, kw) for n in names for _, kind, kw in FAULTS[n][0]]
    rc, err, sess = run(emu, tmp_path / "s", duration_s=9.0, faults=faults)
    assert rc == 0, err
    c = sess["counters"]
    assert c["rest_transport_errors"] >= 2 and c["rest_rate_limited"] >= 1 and c["rejects"] >= 1, c


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_session_stays_consistent(emu, tmp_path, name):
    faults, counter = FAULTS[name]
    out = tmp_path / "s"
    extra = ("--stale-ms", "800") if name == "stall_feed" else ()
    rc, err, sess = run(emu, out, *extra, faults=faults)
    assert rc == 0, err
    if counter is not None:
        assert sess["counters"][counter] >= 1, (counter, sess["counters"])


def test_kill_9_and_restart_recovers_exact_position(emu, tmp_path):
    out = tmp_path / "s"
    env = bot_env()
    proc = start_bot(bot_cmd("live", emu.url, out, 30), env, tmp_path)
    jpath = out / "journal.sqlite"

    def has_fill() -> bool:
        try:
            return jpath.exists() and len(journal_fills(jpath)) >= 2
        except sqlite3.Error:
            return False

    assert wait_for(has_fill, 40), "no fill before the kill"
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(5)
    assert proc.returncode == -signal.SIGKILL
    before = {r[0] for r in journal_fills(jpath)}
    time.sleep(0.5)  # the orders it left behind may fill meanwhile: the restart must pick those up
    proc2 = start_bot(bot_cmd("live", emu.url, out, 3.0), env, tmp_path)
    _, err = proc2.communicate(timeout=60)
    assert proc2.returncode == 0, err
    sess = check_consistent(emu, out)
    after = {r[0] for r in journal_fills(jpath)}
    assert before <= after
    assert sess["counters"]["reconciles"] >= 1


def test_orders_of_a_killed_bot_are_cancelled_by_the_exchange_after_the_dcp_window(emu, tmp_path):
    """The bot arms Bybit's Disconnect Cancel All (10 s) and its private stream subscribes "dcp":
    after a kill -9 its resting orders are gone within the window, not left to fill."""
    from mmbot.live.runner import DCP_WINDOW_S

    out = tmp_path / "s"
    proc = start_bot(bot_cmd("live", emu.url, out, 120), bot_env(), tmp_path)
    # killed once it quotes with DCP armed (window set, private stream subscribed "dcp"): polled
    # with a generous deadline (a loaded machine starts the bot slowly)
    armed = wait_for(lambda: (st := emu.state())["dcp_armed"] and len(st["open_orders"]) >= 1, 120)
    assert armed, "bot never quoted with DCP armed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    left = {o["orderLinkId"] for o in emu.state()["open_orders"]}
    assert left, "no order resting at the kill"
    assert wait_for(lambda: emu.state()["open_orders"] == [], DCP_WINDOW_S + 60)
    st = emu.state()
    filled = {e["link_id"] for e in st["executions"]}
    if not left <= filled:  # some order did not fill: the exchange cancelled it, after the window
        assert st["counters"].get("dcp_cancelled", 0) >= 1
        # the emulator's own times: from the connection's loss to the cancel, at least the window
        (gone_ns, cancelled_ns, n), *_ = st["dcp_log"]
        assert n >= 1 and cancelled_ns - gone_ns >= DCP_WINDOW_S * 1e9 - 5e6  # timer resolution


def test_sigterm_cancels_everything_and_exits_cleanly(emu, tmp_path):
    out = tmp_path / "s"
    proc = start_bot(bot_cmd("live", emu.url, out, 30), bot_env(), tmp_path)
    assert wait_for(lambda: len(emu.state()["open_orders"]) >= 1, 40)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    check_consistent(emu, out)


def test_kill_switch_on_loss_limit(emu, tmp_path):
    out = tmp_path / "loss"
    rc, err, sess = run(emu, out, "--loss-limit", "0.000001", duration_s=8)
    assert rc == 4 and "loss limit" in (sess["kill_reason"] or ""), (rc, err)


def test_kill_switch_on_clock_drift(emu, tmp_path):
    out = tmp_path / "clock"
    rc, err, sess = run(
        emu, out, "--clock-check-s", "0.3", faults=[(0.3, "clock_skew", {"seconds": 3.0})]
    )
    assert rc == 4 and "clock drift" in (sess["kill_reason"] or ""), (rc, err)


def test_paper_session_sends_no_orders_and_fills_locally(emu, tmp_path):
    """...and --record writes the stream it traded on: every market message it handled, once, in
    the capture format the data layer reads back."""
    from mmbot.audit.records_io import read_run
    from mmbot.data import load_events

    out = tmp_path / "p"
    rec = tmp_path / "stream.jsonl"
    cmd = bot_cmd("paper", emu.url, out, SESSION_S, "--record", str(rec))
    env = {k: v for k, v in bot_env().items() if not k.startswith("BYBIT_")}
    proc = start_bot(cmd, env, tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    st = emu.state()
    assert st["orders_created"] == 0 and st["executions"] == []
    sess = json.loads((out / "session.json").read_text())
    assert sess["fills"] >= 1
    rows = journal_fills(out / "journal.sqlite")
    assert abs(sum(s * q for _, s, q in rows) - sess["position_qty"]) < 1e-9
    assert (out / "EDGE_REPORT.json").exists()
    n_lines = len(rec.read_text().splitlines())
    assert n_lines == read_run(out / "records")[0].meta["events"] > 20
    ev, stats = load_events(rec, use_cache=False)
    assert stats.format == "bybit" and stats.repairs.get("sequence_gap", 0) == 0 and len(ev) > 0


def _buy_manually(emu, qty: str, side: int = 1) -> None:
    """The account takes a position before the bot starts: a GTC buy through the ask (``side`` -1:
    a sell through the bid), sent as client order id "manual-1" (not one of the bot's)."""
    import asyncio

    import aiohttp

    from mmbot.live.bybit import BybitRest
    from mmbot.live.signing import ApiKeys
    from mmbot.live.testing import TEST_KEY

    async def take() -> None:
        async with aiohttp.ClientSession() as http:
            rest = BybitRest(http, emu.url, ApiKeys(TEST_KEY, TEST_SECRET))
            await asyncio.sleep(0.5)
            px = emu.state()["mid_px"] + 0.01 * side
            await rest.create_order("XRPUSDT", side, qty, f"{px:.4f}", "manual-1", tif="GTC")

    asyncio.run(take())


def test_inherited_position_is_priced_at_the_start_mid_and_reported_apart(emu, tmp_path):
    """Short 150 before the bot starts: marked from zero cash that is -150 x mid (about -290
    quote), which a 20-quote loss limit would trip at once. Priced at the start mid, the bot's own
    PnL starts at 0, it trades, and the inherited position's PnL is reported on its own."""
    _buy_manually(emu, "150", side=-1)
    assert emu.state()["position_qty"] == -150.0
    out = tmp_path / "s"
    cmd = bot_cmd("live", emu.url, out, SESSION_S, "--loss-limit", "20")
    proc = start_bot(cmd, bot_env(), tmp_path)
    _, err = proc.communicate(timeout=SESSION_S + 60)
    sess = json.loads((out / "session.json").read_text())
    assert proc.returncode == 0 and sess["kill_reason"] is None, err
    assert emu.state()["open_orders"] == []
    assert sess["fills"] >= 1
    assert sess["inherited_position_qty"] == -150.0
    assert sess["inherited_mid_px"] > 0
    assert abs(sess["pnl_quote"]) < 20
    assert sess["inherited_pnl_quote"] == pytest.approx(
        -150.0 * (emu.state()["mid_px"] - sess["inherited_mid_px"]), abs=0.5
    )


def test_kill_switch_on_position_beyond_hard_limit(emu, tmp_path):
    """An account already holding 3x the position limit: the bot adopts it, trips the kill switch
    (exit 4) and leaves nothing open."""
    _buy_manually(emu, "1200")
    assert emu.state()["position_qty"] == 1200.0
    out = tmp_path / "s"
    proc = start_bot(bot_cmd("live", emu.url, out, 6.0), bot_env(), tmp_path)
    _, err = proc.communicate(timeout=60)
    sess = json.loads((out / "session.json").read_text())
    assert proc.returncode == 4 and "hard limit" in (sess["kill_reason"] or ""), err
    st = emu.state()
    assert st["open_orders"] == [] and sess["position_qty"] == st["position_qty"]
    # the journal holds only the bot's own fills (none: it never quoted), plus the adopted start
    assert journal_fills(out / "journal.sqlite") == [] and st["orders_created"] == 1


def _session_report(out: Path) -> tuple[dict, dict]:
    """(EDGE_REPORT, the session's records meta); the identity is checked here independently:
    pnl = cash of the session's fills + final position x final mid - start position x start mid."""
    from mmbot.audit.records_io import read_run

    rep = json.loads((out / "EDGE_REPORT.json").read_text())
    (res,) = read_run(out / "records")
    f, meta = res.fills, res.meta
    pos0, m0, m_t = meta["initial_position_qty"], meta["start_mid_px"], meta["final_mid_px"]
    pos_t = pos0 + float((f["side"] * f["qty"]).sum())
    cash = float((-f["side"] * f["px"] * f["qty"] - f["fee"]).sum())
    pnl = cash + pos_t * m_t - pos0 * m0
    run = rep["runs"][0]
    assert abs(run["pnl"] - pnl) <= 1e-9 * max(1.0, float((f["px"] * f["qty"]).sum()))
    assert abs(run["pnl_minus_sim_equity"]) <= 1e-9 * max(1.0, abs(pnl))
    cb = rep["totals"]["component_breakdown"]
    parts = cb["gross_quote"] + cb["slippage_quote"] + cb["fees_quote"] + cb["inventory_quote"]
    assert abs(parts - cb["pnl_quote"]) <= 1e-9 * max(1.0, cb["turnover_quote"])
    assert abs(meta["position_qty"] - pos_t) < 1e-9
    return rep, meta


def test_restart_from_an_open_position_keeps_the_audit_identity_exact(emu, tmp_path):
    """The account holds 150 before the bot starts: the first session adopts it as its start, the
    restarted one starts from where the first ended; each EDGE_REPORT's identity is exact."""
    _buy_manually(emu, "150")
    assert emu.state()["position_qty"] == 150.0
    out = tmp_path / "s"

    def session() -> dict:
        proc = start_bot(bot_cmd("live", emu.url, out, SESSION_S), bot_env(), tmp_path)
        _, err = proc.communicate(timeout=SESSION_S + 60)
        assert proc.returncode == 0, err
        st = emu.state()  # every bot fill journaled once; the manual one is the adopted start
        bot_execs = sorted(e["exec_id"] for e in st["executions"] if e["link_id"] != "manual-1")
        assert sorted(r[0] for r in journal_fills(out / "journal.sqlite")) == bot_execs
        assert st["open_orders"] == []
        sess = json.loads((out / "session.json").read_text())
        assert abs(sess["position_qty"] - st["position_qty"]) < 1e-9
        return sess

    sess1 = session()
    assert sess1["fills"] >= 1  # the identity is checked on a session that traded
    _, meta1 = _session_report(out)
    assert meta1["initial_position_qty"] == 150.0
    sess2 = session()
    rep2, meta2 = _session_report(out)
    assert abs(meta2["initial_position_qty"] - meta1["position_qty"]) < 1e-9
    # the second session's records hold its own fills only
    n_all = len(journal_fills(out / "journal.sqlite"))
    assert sess1["fills"] + sess2["fills"] == n_all and rep2["totals"]["fills"] == sess2["fills"]


def test_session_applies_only_named_overrides_and_logs_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A soak's artifacts/soak/runtime_overrides.json in the working directory is not applied to
    paper or live trading unless named with --overrides (as in the backtest); the log says which."""
    import logging

    from mmbot.config import load_profile
    from mmbot.live.bybit import Endpoints
    from mmbot.live.runner import RunnerConfig, Session

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MM_RUNTIME_OVERRIDES_JSON", raising=False)
    soak_file = tmp_path / "artifacts" / "soak" / "runtime_overrides.json"
    soak_file.parent.mkdir(parents=True)
    default = load_profile().runtime["base_spread_bps_delta"]
    soak_file.write_text(json.dumps({"base_spread_bps_delta": default + 0.1}))
    nowhere = Endpoints("http://127.0.0.1:9", "ws://127.0.0.1:9", "ws://127.0.0.1:9")
    with caplog.at_level(logging.INFO, logger="mmbot.live"):
        plain = Session(
            RunnerConfig(mode="paper", symbol="BTCUSDT", endpoints=nowhere, out_dir=tmp_path / "a")
        )
        named = Session(
            RunnerConfig(
                mode="paper",
                symbol="BTCUSDT",
                endpoints=nowhere,
                out_dir=tmp_path / "b",
                overrides_file=soak_file,
            )
        )
    assert plain.knobs["base_spread_bps_delta"] == default
    assert named.knobs["base_spread_bps_delta"] == pytest.approx(default + 0.1)
    assert "knobs: the profile's (no overrides)" in caplog.text
    assert f"knobs: overrides from --overrides {soak_file}" in caplog.text
