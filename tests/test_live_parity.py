"""Parity (issues 8, 21): a session on the emulator vs `mmbot backtest`'s loop, same quoter and
settings (session.json's replay block, as `mmbot replay-compare` uses), same queue model, same order
latency. Slow (a minute of real time per session). Thresholds: fills within 10 %, net_bps within
0.5 bps; the cases are not expected failures, they fail when parity is not reached.

What is compared with what:
- paper (asserted, PAPER_RUNS = 10 separate sessions: the issue's "10 of 10" is all ten
  ``[paper-k]`` cases passing): the session against the backtest of **the feed it received** (its
  ``--record`` file, every message with its receive stamp). That is the only feed both sides saw:
  the emulator delivers the capture late by a loopback delay that differs from run to run (median
  ~2 ms, tails of seconds at load 10-15), and that delay is part of what the bot received. The
  paper venue (``live.paper``) is built to replay that feed exactly as the backtest does: events at
  their exchange stamps in exchange-time order, requests at ``decided + latency`` with the
  latency fixed for the session, answers and fills one latency later, the session's order state on
  the event clock. Nothing in it depends on when a message was delivered or handled beyond its
  stamps, so the comparison is order by order (``replay_compare.compare``, printed: orders
  paired and the same). The backtest of **the capture window** the emulator replayed is printed
  beside it: it differs from the recorded feed by the emulator's delivery (receive stamps) and
  its message grouping (a Bybit depth message carries one ``ts``), to which this window's fill
  count is chaotic (``test_backtest_fill_count_is_sensitive_to_sub_ms_receive_jitter``).
- live (asserted against the capture, as before): the emulator matches each request when it
  reaches it; the backtest gets, each way, the session's median time from the deciding message's
  receive stamp to sending the request plus half its median order round trip.

Status: see the figures in docs/architecture.md ("Paper = backtest").
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import USDM_CAPTURE, need_shared
from mmbot.instruments import spec_for
from mmbot.live.testing import MECHANICS_QUOTER
from mmbot.strategy.params import fee_choice
from mmbot.strategy.registry import DEFAULT_QUOTER

WINDOW_S = 60.0
PARITY_QUOTER = MECHANICS_QUOTER  # quotes at any fee tier: 40+ fills in the 60 s window
DEFAULT_QUOTER_WINDOW_S = 180.0
PAPER_ENTRY_LATENCY_MS = 6.0
PAPER_RUNS = 10  # the issue asks for parity in 10 of 10 paper sessions


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize(
    "mode, run_idx, quoter",
    [("live", 0, PARITY_QUOTER)]
    + [("paper", k, PARITY_QUOTER) for k in range(PAPER_RUNS)]
    + [("paper", 0, DEFAULT_QUOTER)],
    ids=["live"] + [f"paper-{k}" for k in range(PAPER_RUNS)] + [f"paper-{DEFAULT_QUOTER}"],
)
def test_emulator_session_vs_backtest_parity(tmp_path, mode, run_idx, quoter):
    """live: orders to the emulator, matched by mmbot.sim's venue. paper: the emulator only feeds
    the market; the bot fills against its own mmbot.sim venue fed with the live messages.
    ``paper-adaptive``: the backtest's default quoter, woken on its interval only (the session
    wakes it on the backtest's grid: ``Session.next_wake``), at the rebate tier (at the base
    tier's 2 bps maker fee it quotes almost nothing on this capture) over a longer window (its
    warm-up, then few fills): every order paired besides the fill and net thresholds."""
    from mmbot.audit.edge_report import build_edge_report
    from mmbot.config import load_profile
    from mmbot.data import load_events
    from mmbot.events import DEPTH_BBO_EVENT, KIND_MASK
    from mmbot.live.replay_compare import compare, load_session, replay
    from mmbot.live.testing import EmulatorThread, bot_cmd, bot_env, start_bot

    ev, st = load_events(need_shared(USDM_CAPTURE))
    # the emulator publishes depth diffs and trades (Bybit has no separate ticker stream in our
    # subset), so both sides get the same events: bookTicker rows are left out of both
    ev = ev[(ev["ev"] & KIND_MASK) != DEPTH_BBO_EVENT]
    window_s = WINDOW_S if quoter == PARITY_QUOTER else DEFAULT_QUOTER_WINDOW_S
    ev = ev[ev["exch_ts"] < ev["exch_ts"][0] + int((window_s + 1) * 1e9)]
    prof = load_profile("S1")  # the fee tier and rate limit the session's profile applies
    extra = ["--record", str(tmp_path / "session_stream.jsonl")]
    if quoter != PARITY_QUOTER:
        prof = prof.model_copy(update={"fees": prof.fees.model_copy(update={"tier": "rebate"})})
        prof_path = tmp_path / "profile.json"
        prof_path.write_text(prof.model_dump_json())
        extra += ["--profile", str(prof_path)]
    emu = EmulatorThread(
        ev.copy(),
        loop=False,
        wait_for_subscriber=True,
        symbol="BTCUSDT",
        tick_px=st.tick_px_guess,
        lot_qty=st.lot_qty_guess,
        maker_fee_rate=fee_choice(prof, spec_for("bybit-linear", "XRPUSDT")).maker_fee_rate,
        taker_fee_rate=fee_choice(prof, spec_for("bybit-linear", "XRPUSDT")).taker_fee_rate,
        rate_limit_per_s=prof.venue.rate_limit_per_s,
    )
    out = tmp_path / mode
    rec = tmp_path / "session_stream.jsonl"
    if mode == "paper":
        extra += ["--latency-ms", str(PAPER_ENTRY_LATENCY_MS)]
    try:
        cmd = bot_cmd(
            mode,
            emu.url,
            out,
            window_s,
            *extra,
            symbol="BTCUSDT",
            sizes=None,
            rest_timeout_s=None,
            strategy=quoter,
        )
        proc = start_bot(cmd, bot_env(), tmp_path)
        # generous: a cold numba cache compiles for minutes on a loaded machine
        _, err = proc.communicate(timeout=window_s + 600)
        assert proc.returncode == 0, err
        reached = emu.emu.matcher.now_capture_ns
    finally:
        emu.close()
    sess = json.loads((out / "session.json").read_text())
    live = json.loads((out / "EDGE_REPORT.json").read_text())["totals"]
    if mode == "paper":
        lat_ms = sess["paper_order_latency_ms"]
        assert lat_ms == PAPER_ENTRY_LATENCY_MS  # fixed for the session (live.paper)
    else:
        # the request leaves decide_to_send after the message that decided it and reaches the
        # emulator half a round trip later
        lat_ms = max(
            (sess["decide_to_send_p50_ms"] or 0.0) + (sess["order_rtt_p50_ms"] or 0.0) / 2, 0.1
        )
    # both backtests run the session's own quoter and settings (session.json's replay block, as
    # `mmbot replay-compare` does): the feed the session received (its --record file) and the
    # capture window the emulator replayed
    srun = load_session(out)
    res_rec, _ = replay(srun, lat_ms)
    res_cap, _ = replay(srun, lat_ms, events=ev[ev["exch_ts"] <= reached])
    bt_rec = build_edge_report([res_rec], {})["totals"]
    bt = build_edge_report([res_cap], {})["totals"]
    cmp = compare(srun.result, res_rec)
    ev_rec, _ = load_events(rec, use_cache=False)
    lag_cap_ms = float(np.median(ev["local_ts"] - ev["exch_ts"])) / 1e6
    lag_rec_ms = float(np.median(ev_rec["local_ts"] - ev_rec["exch_ts"])) / 1e6
    keys = ("fills", "turnover", "net_bps", "gross_bps", "slippage_bps", "inventory_bps")
    paper_keys = ("paper_compute_ms", "paper_events_late", "paper_requests_late", "paper_hold_ms")
    print(
        f"\n{mode} session on the emulator: {json.dumps({k: live.get(k) for k in keys}, sort_keys=True)}"
        f"\n  session: {json.dumps({k: sess.get(k) for k in paper_keys if k in sess}, sort_keys=True)}"
        f" feed lag median: capture {lag_cap_ms:.2f} ms, as received {lag_rec_ms:.2f} ms"
        f"\nbacktest of the recorded feed (latency {lat_ms:.2f} ms): "
        f"{json.dumps({k: bt_rec.get(k) for k in keys}, sort_keys=True)}"
        f"\n  order by order: {cmp.n_session} session orders, {cmp.n_replay} replay orders, "
        f"{cmp.n_matched} paired, {cmp.n_same} the same, {len(cmp.differences)} differences"
        f"\nbacktest of the capture (latency {lat_ms:.2f} ms): "
        f"{json.dumps({k: bt.get(k) for k in keys}, sort_keys=True)}"
    )
    ref, ref_name = (bt_rec, "recorded feed") if mode == "paper" else (bt, "capture")
    print(
        f"PARITY {mode} run {run_idx}: fills {live['fills']} vs {bt_rec['fills']} (recorded feed),"
        f" {bt['fills']} (capture); net_bps {live['net_bps']:.3f} vs {bt_rec['net_bps']:.3f}"
        f" (recorded feed), {bt['net_bps']:.3f} (capture); asserted against the {ref_name}"
    )
    if quoter == PARITY_QUOTER:
        assert ref["fills"] >= 20, "too few backtest fills for a fill-count comparison"
    else:  # few fills: every order the session sent is the backtest's, one by one
        assert ref["fills"] >= 5, "too few backtest fills for a comparison"
        assert cmp.n_session == cmp.n_replay == cmp.n_matched, cmp.differences[:5]
    fills_ok = abs(live["fills"] - ref["fills"]) <= 0.10 * ref["fills"]
    net_ok = abs(live["net_bps"] - ref["net_bps"]) <= 0.5
    assert fills_ok and net_ok, (
        f"{mode} run {run_idx}: fills {live['fills']} vs {ref['fills']}, net_bps "
        f"{live['net_bps']:.3f} vs {ref['net_bps']:.3f} (backtest of the {ref_name})"
    )


@pytest.mark.slow
@pytest.mark.shared_data
def test_backtest_fill_count_is_sensitive_to_sub_ms_receive_jitter():
    """Why a real-time session cannot match one backtest's fill count reliably: the backtest itself,
    on the parity window with every message received an exponential(0.6 ms) jitter later (seeded;
    a loopback replay's delivery is ~1 ms), spreads its fill count beyond the 10 % band around
    the unjittered run's, while a 0.1 ms jitter keeps it within. Prints the counts."""
    from mmbot.backtest import RunSettings, run
    from mmbot.data import load_events
    from mmbot.events import DEPTH_BBO_EVENT, KIND_MASK

    ev, st = load_events(need_shared(USDM_CAPTURE))
    ev = ev[(ev["ev"] & KIND_MASK) != DEPTH_BBO_EVENT]
    ev = ev[ev["exch_ts"] <= ev["exch_ts"][0] + int((WINDOW_S + 0.7) * 1e9)]
    settings = RunSettings(
        strategy=PARITY_QUOTER,  # the sessions' parity cases' quoter
        latency_ms=PAPER_ENTRY_LATENCY_MS + 0.5,
        queue_model="risk_averse",
    )
    msg_ts, inv = np.unique(ev["local_ts"], return_inverse=True)

    def fills(jitter_ms: float, seed: int) -> int:
        e = ev.copy()
        if jitter_ms > 0:
            d_ns = np.random.default_rng(seed).exponential(jitter_ms * 1e6, len(msg_ts))
            e["local_ts"] = np.maximum.accumulate(msg_ts + d_ns.astype(np.int64))[inv]
        return len(
            run(
                e, settings, symbol="BTCUSDT", tick_px=st.tick_px_guess, lot_qty=st.lot_qty_guess
            ).fills
        )

    base = fills(0.0, 0)
    small = [fills(0.1, s) for s in range(4)]
    loop = [fills(0.6, s) for s in range(8)]
    print(f"\nbacktest fills: no jitter {base}; 0.1 ms jitter {small}; 0.6 ms jitter {loop}")
    assert all(abs(f - base) <= 0.10 * base for f in small)
    assert max(abs(f - base) for f in loop) > 0.10 * base
