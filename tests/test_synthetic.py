"""The embedded market generator: determinism, chunking, book consistency, real adverse selection,
calibration loading, and market_stats on hand-built events (expected values worked out on paper)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import requote_usdm_market
from mmbot.data.calibrate import FINE_TICK_TERMS
from mmbot.data.market_stats import market_stats
from mmbot.data.synthetic import (
    WIDE_TICK_MARKET,
    generate,
    generate_chunks,
    generate_with_flow,
    load_calibration,
)
from mmbot.errors import UserError
from mmbot.events import (
    BUY_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EVENT_DTYPE,
    EXCH_EVENT,
    KIND_MASK,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
)

T0_NS = 1_700_000_000_000_000_000
S_NS = 1_000_000_000


@pytest.fixture(scope="module")
def calib() -> dict:
    # the wide-tick market: these tests were written on it, and it generates ~4x fewer events
    return load_calibration(WIDE_TICK_MARKET)


@pytest.fixture(scope="module")
def market(calib: dict) -> np.ndarray:
    return generate(calib, 7, T0_NS, 120 * S_NS)


def test_default_is_the_captured_tick_and_the_wide_tick_variant_is_labelled(calib: dict) -> None:
    default = load_calibration("default")
    assert default["variant"] == "as_captured" and default["tick_px"] == pytest.approx(0.1)
    assert calib["variant"] == "wide_tick"
    assert "note" in calib and calib["note"]
    tick_bps = calib["tick_px"] / calib["price0_px"] * 1e4
    assert 0.5 < tick_bps < 2.0


def test_same_seed_same_bytes_different_seed_differs(calib: dict) -> None:
    a = generate(calib, 11, T0_NS, 20 * S_NS)
    b = generate(calib, 11, T0_NS, 20 * S_NS)
    c = generate(calib, 12, T0_NS, 20 * S_NS)
    assert a.dtype == EVENT_DTYPE
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_chunked_generation_equals_one_shot(calib: dict) -> None:
    one = generate(calib, 3, T0_NS, 30 * S_NS)
    # a chunk length that does not divide the duration, and a tiny one
    for chunk_ns in (7 * S_NS, S_NS // 3):
        parts = list(generate_chunks(calib, 3, T0_NS, 30 * S_NS, chunk_ns=chunk_ns))
        assert len(parts) == -(-30 * S_NS // chunk_ns)
        assert np.concatenate(parts).tobytes() == one.tobytes()
        # every chunk holds only its own exchange-time window
        for i, p in enumerate(parts[1:], start=1):
            if len(p):
                assert p["exch_ts"].min() >= T0_NS + i * chunk_ns


def test_flow_diagnostics_do_not_change_the_market(calib: dict) -> None:
    ev, flow = generate_with_flow(calib, 3, T0_NS, 30 * S_NS)
    assert ev.tobytes() == generate(calib, 3, T0_NS, 30 * S_NS).tobytes()
    assert flow["noise_orders"] > 0 and 0.0 <= flow["informed_share_of_orders"] <= 1.0


def test_times_ordered_and_local_after_exchange(market: np.ndarray) -> None:
    assert np.all(np.diff(market["exch_ts"]) >= 0)
    assert np.all(np.diff(market["local_ts"]) >= 0)
    assert np.all(market["local_ts"] >= market["exch_ts"])
    assert market["exch_ts"][0] == T0_NS
    assert market["exch_ts"][-1] < T0_NS + 120 * S_NS
    flags = market["ev"] & (EXCH_EVENT | LOCAL_EVENT)
    assert np.all(flags == (EXCH_EVENT | LOCAL_EVENT))


def _replay_check(events: np.ndarray, tick: float) -> dict[str, int]:
    """Independent pure-Python replay: the book must never cross, every trade must hit the
    opposite touch (net of the prints already printed against it) for at most its displayed
    qty, and the depth row that follows a level's prints must show the level reduced by
    exactly the printed qty."""
    bids: dict[int, float] = {}
    asks: dict[int, float] = {}
    counts = {"trades": 0, "depth": 0, "snapshot": 0}
    pending: dict[tuple[int, int], float] = {}  # (side, price) -> qty printed, not yet in depth
    i = 0
    n = len(events)
    while i < n:
        e = events[i]
        kind = int(e["ev"]) & KIND_MASK
        buy = bool(int(e["ev"]) & BUY_EVENT)
        sell = bool(int(e["ev"]) & SELL_EVENT)
        assert buy != sell, f"row {i}: exactly one side flag expected"
        p = int(round(e["px"] / tick))
        assert abs(p * tick - e["px"]) < 1e-6 * tick, f"row {i}: price off the tick grid"
        if kind == DEPTH_SNAPSHOT_EVENT:
            assert counts["depth"] == 0 and counts["trades"] == 0, "snapshot rows must come first"
            (bids if buy else asks)[p] = float(e["qty"])
            counts["snapshot"] += 1
        elif kind == TRADE_EVENT:
            book = asks if buy else bids
            # a sweep's book rows follow its last print: levels its earlier prints emptied
            # still show, so the touch it hits is the best level with qty left after them
            left = [x for x in book if book[x] - pending.get((buy, x), 0.0) > 1e-9]
            best = min(left) if buy else max(left)
            assert p == best, f"row {i}: trade at {p} but opposite touch is {best}"
            done = pending.get((buy, p), 0.0) + float(e["qty"])
            assert done <= book[p] + 1e-9, f"row {i}: prints exceed the displayed qty"
            pending[(buy, p)] = done
            counts["trades"] += 1
        elif kind == DEPTH_EVENT:
            book = bids if buy else asks
            key = (not buy, p)  # a buy trade consumes asks (sell-side book rows)
            if key in pending:
                assert abs(book[p] - pending.pop(key) - float(e["qty"])) < 1e-6, f"row {i}"
            if e["qty"] == 0:
                book.pop(p, None)
            else:
                book[p] = float(e["qty"])
            counts["depth"] += 1
        else:
            raise AssertionError(f"row {i}: unexpected kind {kind}")
        if bids and asks:
            assert max(bids) < min(asks), f"row {i}: crossed book {max(bids)} >= {min(asks)}"
        i += 1
    assert not pending, "prints without the depth row that shows them"
    return counts


def test_book_never_crosses_and_trades_consume_the_touch(calib: dict) -> None:
    ev = generate(calib, 5, T0_NS, 30 * S_NS)
    counts = _replay_check(ev, calib["tick_px"])
    assert counts["snapshot"] > 0 and counts["trades"] > 100 and counts["depth"] > 100


def test_as_captured_market_is_consistent_too() -> None:
    cal = load_calibration("binance_usdm_btcusdt")
    ev = generate(cal, 5, T0_NS, 5 * S_NS)
    counts = _replay_check(ev, cal["tick_px"])
    assert counts["trades"] > 10


def test_informed_flow_creates_adverse_selection(calib: dict) -> None:
    """With informed traders and sweep impact (permanent and transient) switched off, trades
    carry no information (1 s markout near 0); the calibrated market's trades are followed by
    moves in their direction."""
    s_cal = market_stats(generate(calib, 21, T0_NS, 300 * S_NS))
    blind = copy.deepcopy(calib)
    blind["model"]["informed_rate_per_s_per_bps"] = 0.0
    blind["model"]["impact_permanence_ratio"] = 0.0
    blind["model"]["impact_transient_ratio"] = 0.0
    s_blind = market_stats(generate(blind, 21, T0_NS, 300 * S_NS))
    print(
        "markout_1s_bps calibrated",
        s_cal["markout_1s_bps"],
        "uninformed",
        s_blind["markout_1s_bps"],
    )
    assert s_cal["markout_1s_bps"] > 0.3
    assert abs(s_blind["parent_markout_1s_bps"]) < 0.5 * s_cal["markout_1s_bps"]
    assert s_cal["markout_1s_bps"] > s_blind["markout_1s_bps"] + 0.2


def test_load_calibration_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_calibration("no_such_market")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="JSON"):
        load_calibration(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something.else"}))
    with pytest.raises(UserError, match="schema"):
        load_calibration(other)
    broken = tmp_path / "broken.json"
    cal = load_calibration("default")
    cal["model"]["hawkes_branching_ratio"] = 1.5
    broken.write_text(json.dumps(cal))
    with pytest.raises(UserError, match="branching"):
        load_calibration(broken)
    del cal["model"]["sigma_bps_per_sqrt_s"]
    broken.write_text(json.dumps(cal))
    with pytest.raises(UserError, match="sigma_bps_per_sqrt_s"):
        load_calibration(broken)


def test_generate_rejects_bad_duration(calib: dict) -> None:
    with pytest.raises(UserError, match="duration"):
        generate(calib, 1, T0_NS, 0)


def _row(kind: int, side: int, t_s: float, px: float, qty: float, lat_ms: float = 2.0) -> tuple:
    ev = kind | EXCH_EVENT | LOCAL_EVENT | side
    t = T0_NS + int(round(t_s * S_NS))
    return (ev, t, t + int(lat_ms * 1e6), px, qty, 0, 0, 0.0)


def test_market_stats_on_hand_built_events() -> None:
    """Book 100/101 (tick 1) from t=0; at t=4 s a buy print of 2 at 101; at t=4.5 s the ask moves
    to 104 (spread 4 ticks until the end, t=10 s; the grid samples [0, 10) s). On paper: time-weighted spread =
    (4.5 * 1 + 5.5 * 4) / 10 ticks; mid before the trade 100.5, 1 s later 102 -> markout
    1.5 / 100.5 * 1e4 bps; one trade in 10 s."""
    rows = [
        _row(DEPTH_SNAPSHOT_EVENT, BUY_EVENT, 0.0, 100.0, 5.0),
        _row(DEPTH_SNAPSHOT_EVENT, SELL_EVENT, 0.0, 101.0, 5.0),
        _row(TRADE_EVENT, BUY_EVENT, 4.0, 101.0, 2.0),
        _row(DEPTH_EVENT, SELL_EVENT, 4.0, 101.0, 3.0),
        _row(DEPTH_EVENT, SELL_EVENT, 4.5, 104.0, 1.0),
        _row(DEPTH_EVENT, SELL_EVENT, 4.5, 101.0, 0.0),
        _row(DEPTH_EVENT, BUY_EVENT, 10.0, 99.0, 1.0, lat_ms=10.0),
    ]
    ev = np.array(rows, dtype=EVENT_DTYPE)
    s = market_stats(ev, tick_px=1.0)
    assert s["n_trades"] == 1
    assert s["trade_rate_per_s"] == pytest.approx(1 / 10.0)
    assert s["spread_ticks_mean"] == pytest.approx((4.5 * 1 + 5.5 * 4) / 10, abs=0.02)
    assert s["markout_1s_bps"] == pytest.approx(1.5 / 100.5 * 1e4, rel=1e-6)
    assert s["trade_size_mean_qty"] == pytest.approx(2.0)
    # touch depth: bid 5 throughout; ask 5 for 4 s, 3 for 0.5 s, then 1 (at 104) for 5.5 s
    assert s["depth_qty_by_level"][0] == pytest.approx(
        (5.0 + (5 * 4 + 3 * 0.5 + 1 * 5.5) / 10) / 2, abs=0.1
    )
    assert s["feed_latency_ms_p50"] == pytest.approx(2.0)


def test_market_stats_rejects_bad_input() -> None:
    with pytest.raises(UserError):
        market_stats(np.zeros(1, dtype=EVENT_DTYPE))
    ev = np.array(
        [
            _row(DEPTH_EVENT, BUY_EVENT, 1.0, 100.0, 1.0),
            _row(DEPTH_EVENT, SELL_EVENT, 0.0, 101.0, 1.0),
        ],
        dtype=EVENT_DTYPE,
    )
    with pytest.raises(UserError, match="sorted"):
        market_stats(ev, tick_px=1.0)


def _sweeps(ev: np.ndarray) -> list[np.ndarray]:
    """Row indices of each run of same-side trade rows with no other row between them."""
    kind = ev["ev"] & KIND_MASK
    buy = (ev["ev"] & BUY_EVENT) != 0
    runs: list[list[int]] = []
    prev = -2
    for i in np.flatnonzero(kind == TRADE_EVENT):
        if i == prev + 1 and buy[i] == buy[prev]:
            runs[-1].append(int(i))
        else:
            runs.append([int(i)])
        prev = i
    return [np.asarray(r) for r in runs]


def test_long_sweeps_print_over_consecutive_ms_and_book_rows_follow(calib: dict) -> None:
    """With an engine throughput of 2 prints a ms, a sweep of more prints is stamped over
    consecutive ms, 2 prints a ms, no other row between its prints, and the book rows of the
    levels it consumed come after its last print; chunk boundaries inside a sweep change
    nothing."""
    slow = copy.deepcopy(calib)
    slow["model"]["sweep_prints_per_ms"] = 2.0
    one = generate(slow, 4, T0_NS, 20 * S_NS)
    _replay_check(one, slow["tick_px"])
    long_ = [r for r in _sweeps(one) if len(r) > 2]
    assert len(long_) > 20
    for r in long_:
        # every sweep ends with its book rows, so a run of prints is one sweep: full ms of 2
        # prints in consecutive ms, then a last ms of 1 or 2
        counts = np.bincount(one["exch_ts"][r] // 1_000_000 - one["exch_ts"][r[0]] // 1_000_000)
        assert np.all(counts[:-1] == 2) and 1 <= counts[-1] <= 2, counts
    multi = [r for r in long_ if one["exch_ts"][r[-1]] - one["exch_ts"][r[0]] >= 1_000_000]
    assert multi, "no sweep spanned several ms"
    r = multi[0]
    nxt = one[r[-1] + 1]
    assert (nxt["ev"] & KIND_MASK) == DEPTH_EVENT and nxt["exch_ts"] == one["exch_ts"][r[-1]]
    # cut the market half a ms after that sweep's first print: same bytes
    cut_ns = int(one["exch_ts"][r[0]]) + 500_000 - T0_NS
    parts = list(generate_chunks(slow, 4, T0_NS, 20 * S_NS, chunk_ns=cut_ns))
    assert np.concatenate(parts).tobytes() == one.tobytes()


def test_book_stays_two_sided_when_impact_overshoots() -> None:
    """The as-captured market with sweeps that move the efficient price 4x their own touch move
    and v jumps 3x the fitted size: v runs far past the stale opposite touch, and the side
    being rebuilt must still show a book (it once was trimmed away as it was rebuilt, leaving
    one side empty for seconds)."""
    cal = load_calibration("binance_usdm_btcusdt")
    cal["model"]["impact_permanence_ratio"] = 4.0
    cal["model"]["jump_size_bps"] *= 3.0
    s = market_stats(generate(cal, 9, T0_NS, 60 * S_NS), tick_px=cal["tick_px"])
    assert s["two_sided_ratio"] > 0.99, s["two_sided_ratio"]


def test_fine_tick_terms_default_off(calib: dict) -> None:
    """The shipped wide-tick market predates the fine-tick terms: listing them at 0 generates the
    same bytes as leaving them out, and switching them on changes the market."""
    off = copy.deepcopy(calib)
    on = copy.deepcopy(calib)
    for key in FINE_TICK_TERMS:
        assert key not in calib["model"]
        off["model"][key] = 0.0
        on["model"][key] = 1.0
    base = generate(calib, 4, T0_NS, 20 * S_NS).tobytes()
    assert generate(off, 4, T0_NS, 20 * S_NS).tobytes() == base
    assert generate(on, 4, T0_NS, 20 * S_NS).tobytes() != base


def _variance_ratio_60s(ev: np.ndarray, tick_px: float) -> float:
    from mmbot.data.market_stats import GRID_NS, _scan

    g_mid = _scan(ev["ev"], ev["exch_ts"], ev["px"], ev["qty"], tick_px, np.array([1.0]))[0]
    lm = np.log(g_mid[:: S_NS // GRID_NS]) * 1e4
    return float(np.nanvar(lm[60:] - lm[:-60]) / (60 * np.nanvar(np.diff(lm))))


def test_stale_depth_pull_keeps_the_fine_tick_mid_on_v() -> None:
    """On the capture's 0.1 USDT tick the 60 s returns of the capture vary 0.54 x 60 times its 1 s
    ones (its vol_60s / vol_1s). The shipped as-captured market pulls every stale order and
    keeps that ratio within 25 % of the capture's; pulling only the stale touch (the rest as
    fitted) moves it far away: with the fit that predates the re-quote on the print the mid then
    trailed v by seconds (ratio above 1.2, a trend), with the re-quote fit it falls below 0.6x
    the ratio with every stale order pulled (seed 9: 0.21 against 0.43)."""
    cal = requote_usdm_market()
    assert cal["model"]["stale_pull_depth"] == 1.0
    real = cal["target_stats"]
    real_ratio = (real["vol_60s_bps"] / real["vol_bps_per_sqrt_s"]) ** 2 / 60.0
    tracking = _variance_ratio_60s(generate(cal, 9, T0_NS, 600 * S_NS), cal["tick_px"])
    cal["model"]["stale_pull_depth"] = 0.0
    touch_only = _variance_ratio_60s(generate(cal, 9, T0_NS, 600 * S_NS), cal["tick_px"])
    print(
        "60 s variance ratio: capture",
        real_ratio,
        "every stale order",
        tracking,
        "touch only",
        touch_only,
    )
    assert abs(tracking / real_ratio - 1.0) < 0.25
    assert touch_only < 0.6 * tracking


def test_whole_level_stale_pulls_keep_the_mid_on_v_at_the_touch_rate() -> None:
    """Why an as-captured market without the re-quote on the print has mid returns that continue
    each other (USD-M, re-quote off: lag-1 autocorrelation of 100 ms returns 0.151 against the
    capture's +0.02): its stale quotes are pulled order by order at a rate slow enough to match
    the capture's touch updates, so the mid trails v.
    Pulling whole stale levels (synthetic.P_STALE_WHOLE, off by default: same bytes when listed at
    0) at 300 per level per s keeps the mid on v (100 ms autocorrelation within 0.1 of the
    capture's) and the touch update rate within 25 % of the capture's."""
    cal = requote_usdm_market()
    cal["model"]["sweep_requote"] = 0.0  # the shipped market's re-quote does it another way
    real = cal["target_stats"]
    base = generate(cal, 4, T0_NS, 20 * S_NS).tobytes()
    cal["model"]["stale_pull_whole"] = 0.0
    assert generate(cal, 4, T0_NS, 20 * S_NS).tobytes() == base
    per_order = market_stats(generate(cal, 9, T0_NS, 600 * S_NS), tick_px=cal["tick_px"])
    cal["model"]["stale_pull_whole"] = 1.0
    cal["model"]["stale_cancel_rate_per_s"] = 300.0
    whole = market_stats(generate(cal, 9, T0_NS, 600 * S_NS), tick_px=cal["tick_px"])
    key = "autocorr_mid_return_100ms"
    print(f"{key}: capture {real[key]:.3f} per order {per_order[key]:.3f} whole {whole[key]:.3f}")
    touch = "touch_update_rate_per_s"
    print(f"{touch}: capture {real[touch]:.1f} whole {whole[touch]:.1f}")
    assert per_order[key] - real[key] > 0.1
    assert abs(whole[key] - real[key]) < 0.1
    assert abs(whole[touch] / real[touch] - 1.0) < 0.25


def test_sweep_requote_moves_the_mid_with_the_print() -> None:
    """Makers re-quoting on the print (synthetic.P_SWEEP_REQUOTE: after a noise sweep moved v, the
    swept side's levels v passed are pulled at once): on the USD-M market the mid then follows
    a sweep within the ms, so its 100 ms returns no longer continue each other (lag-1
    autocorrelation within 0.1 of the capture's), the 100 ms print markout rises toward the 1 s
    one (the capture's is 1.29x its 1 s markout: the mid jumps with the print, then reverts;
    with order-by-order pulls alone it is ~0.77x), and the spread is one tick at least 95 % of the
    time (the capture: 99.1 %), more than without it. Listing it at
    0 generates the same bytes as leaving it out."""
    cal = requote_usdm_market()
    real = cal["target_stats"]
    cal["model"].pop("sweep_requote", None)
    base = generate(cal, 4, T0_NS, 20 * S_NS).tobytes()
    cal["model"]["sweep_requote"] = 0.0
    assert generate(cal, 4, T0_NS, 20 * S_NS).tobytes() == base
    runs = {}
    for flag in (0.0, 1.0):
        cal["model"]["sweep_requote"] = flag
        runs[flag] = market_stats(generate(cal, 9, T0_NS, 600 * S_NS), tick_px=cal["tick_px"])
    off, on = runs[0.0], runs[1.0]
    ac = "autocorr_mid_return_100ms"
    for name, s in (("capture", real), ("off", off), ("on", on)):
        print(
            f"{name}: {ac} {s[ac]:.3f} markout 100ms {s['markout_100ms_bps']:.3f} "
            f"1s {s['markout_1s_bps']:.3f} one-tick {s['spread_one_tick_ratio']:.4f}"
        )
    assert real["markout_100ms_bps"] > real["markout_1s_bps"]
    assert off[ac] - real[ac] > 0.1
    assert off["markout_100ms_bps"] < off["markout_1s_bps"]
    assert abs(on[ac] - real[ac]) < 0.1
    assert on["markout_100ms_bps"] > 1.2 * off["markout_100ms_bps"]
    on_ratio = on["markout_100ms_bps"] / on["markout_1s_bps"]
    assert on_ratio > off["markout_100ms_bps"] / off["markout_1s_bps"] + 0.15
    assert on["spread_one_tick_ratio"] >= 0.95
    assert on["spread_one_tick_ratio"] > off["spread_one_tick_ratio"]


@pytest.mark.parametrize(
    ("defaults", "on", "bad"),
    [
        (  # slow resilience after a sweep
            {"resilience_half_life_s": 0.0, "resilience_depletion": 0.5},
            ("resilience_half_life_s", 2.0),
            ("resilience_depletion", 1.5),
        ),
        (  # takers that come when the book is thin
            {"taker_thin_exponent": 0.0, "taker_thin_cap_ratio": 3.0},
            ("taker_thin_exponent", 1.0),
            ("taker_thin_cap_ratio", 0.5),
        ),
    ],
)
def test_an_optional_generator_term_is_off_by_default_and_bounded(
    defaults: dict, on: tuple[str, float], bad: tuple[str, float]
) -> None:
    """A shipped market lists none of the term's fields; listing them at their off values
    generates the same bytes as leaving them out, switching it on changes them, and a value
    outside its range is refused, naming the field."""
    cal = load_calibration(WIDE_TICK_MARKET)
    assert not set(defaults) & set(cal["model"])
    off = copy.deepcopy(cal)
    off["model"].update(defaults)
    base = generate(cal, 4, T0_NS, 20 * S_NS).tobytes()
    assert generate(off, 4, T0_NS, 20 * S_NS).tobytes() == base
    switched = copy.deepcopy(off)
    switched["model"][on[0]] = on[1]
    assert generate(switched, 4, T0_NS, 20 * S_NS).tobytes() != base
    wrong = copy.deepcopy(switched)
    wrong["model"][bad[0]] = bad[1]
    with pytest.raises(UserError, match=bad[0]):
        generate(wrong, 4, T0_NS, S_NS)
