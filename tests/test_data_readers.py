"""Readers on the shipped sample: counts per kind from an independent parse of the raw lines,
ordering and flags, a never-crossed replayed book, gap detection on cut files, streaming = whole."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import TESTS_DATA
from mmbot.data import iter_event_chunks, load_events
from mmbot.data.core import DEFAULT_FEED_LATENCY_NS, ReadStats
from mmbot.data.replay import REPAIR_IVAL
from mmbot.events import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    KIND_MASK,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
)

BINANCE_SAMPLE = TESTS_DATA / "binance_usdm_btcusdt_sample.gz"
BYBIT_SAMPLE = TESTS_DATA / "bybit_xrpusdt_ob500_sample.jsonl"
TARDIS_BOOK = TESTS_DATA / "tardis_binance_futures_incremental_book_L2_sample.csv.gz"
TARDIS_TRADES = TESTS_DATA / "tardis_binance_futures_trades_sample.csv"


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch):
    monkeypatch.setenv("MMBOT_CACHE_DIR", "off")


def binance_raw_lines(path: Path) -> list[tuple[int, dict]]:
    with gzip.open(path, "rt") as f:
        return [(int(ln[:19]), json.loads(ln[20:])) for ln in f if ln.strip()]


def expected_binance_futures(lines: list[tuple[int, dict]]) -> dict:
    """Independent (plain Python) reading of Binance's documented sync rules: diffs with
    u < lastUpdateId are dropped, the first kept one has U <= lastUpdateId <= u, then pu chains."""
    snap = next(obj for _, obj in lines if "lastUpdateId" in obj)
    lui = snap["lastUpdateId"]
    diffs = [o["data"] for _, o in lines if o.get("data", {}).get("e") == "depthUpdate"]
    kept = []
    last_u = None
    gap = 0
    for d in diffs:
        if last_u is None:
            if d["u"] < lui:
                continue
            if d["U"] <= lui <= d["u"]:
                kept.append(d)
                last_u = d["u"]
            continue
        if d["pu"] != last_u:
            gap += 1
            break
        kept.append(d)
        last_u = d["u"]
    trades = [o["data"] for _, o in lines if o.get("data", {}).get("e") == "trade"]
    bbo = [o["data"] for _, o in lines if o.get("data", {}).get("e") == "bookTicker"]
    return {
        "depth_rows": sum(len(d["b"]) + len(d["a"]) for d in kept),
        "diffs_kept": len(kept),
        "diffs_total": len(diffs),
        "trades": sum(1 for t in trades if t["X"] == "MARKET"),
        "bbo_rows": 2 * len(bbo),
        "snapshot_rows": len(snap["bids"]) + len(snap["asks"]),
        "gaps": gap,
    }


def replay_check_uncrossed(events: np.ndarray) -> int:
    """Replay the book the way a consumer would (CLEAR = remove from the touch up to px; depth,
    snapshot and BBO rows set the level) and return the number of timestamps at which it is crossed."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    crossed = 0
    n = len(events)
    ev = events["ev"]
    for k in range(n):
        e = int(ev[k])
        kind = e & KIND_MASK
        px = float(events["px"][k])
        qty = float(events["qty"][k])
        book = bids if e & BUY_EVENT else asks
        if kind == DEPTH_CLEAR_EVENT:
            for p in [p for p in book if (p >= px if book is bids else p <= px)]:
                del book[p]
        elif kind in (DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, DEPTH_BBO_EVENT):
            if qty > 0:
                book[px] = qty
            else:
                book.pop(px, None)
        boundary = k == n - 1 or events["exch_ts"][k + 1] != events["exch_ts"][k]
        if boundary and bids and asks and max(bids) >= min(asks):
            crossed += 1
    return crossed


def check_invariants(events: np.ndarray) -> None:
    assert np.all(np.diff(events["exch_ts"]) >= 0), "not in exchange-time order"
    assert np.all(events["local_ts"] >= events["exch_ts"]), "local before exchange"
    flags = EXCH_EVENT | LOCAL_EVENT
    assert np.all((events["ev"] & flags) == flags)
    kind = events["ev"] & KIND_MASK
    buy = (events["ev"] & BUY_EVENT) != 0
    sell = (events["ev"] & SELL_EVENT) != 0
    sided = np.isin(
        kind, [DEPTH_EVENT, TRADE_EVENT, DEPTH_SNAPSHOT_EVENT, DEPTH_BBO_EVENT, DEPTH_CLEAR_EVENT]
    )
    assert np.all(buy[sided] ^ sell[sided])
    assert np.all(np.isfinite(events["px"])) and np.all(events["px"] > 0)
    assert np.all(events["qty"] >= 0)


def test_binance_sample_counts_match_an_independent_parse_of_the_raw_lines():
    lines = binance_raw_lines(BINANCE_SAMPLE)
    exp = expected_binance_futures(lines)
    events, st = load_events(BINANCE_SAMPLE, use_cache=False)
    kind = events["ev"] & KIND_MASK
    repair = events["ival"] == REPAIR_IVAL
    assert st.format == "binance-usdm" and st.symbol == "BTCUSDT"
    assert st.n_lines == len(lines)
    assert int(((kind == DEPTH_EVENT) & ~repair).sum()) == exp["depth_rows"]
    n_repair_rows = st.repairs["crossed_level_removed"] + st.repairs["stale_level_removed_by_bbo"]
    assert int(repair.sum()) == n_repair_rows
    assert int((kind == DEPTH_EVENT).sum()) == exp["depth_rows"] + n_repair_rows
    assert int((kind == TRADE_EVENT).sum()) == exp["trades"]
    assert int((kind == DEPTH_BBO_EVENT).sum()) == exp["bbo_rows"]
    assert int((kind == DEPTH_SNAPSHOT_EVENT).sum()) == exp["snapshot_rows"]
    assert int((kind == DEPTH_CLEAR_EVENT).sum()) == 2
    assert st.repairs["sequence_gap"] == exp["gaps"] == 0
    dropped = st.repairs["depth_msg_dropped_unsynced"] + st.repairs["depth_msg_dropped_stale"]
    assert dropped == exp["diffs_total"] - exp["diffs_kept"]
    assert st.counts["depth"] == int((kind == DEPTH_EVENT).sum())
    check_invariants(events)


def test_binance_sample_clock_offset_makes_min_feed_latency_the_base_latency():
    lines = binance_raw_lines(BINANCE_SAMPLE)
    lat = []
    for local, obj in lines:
        d = obj.get("data", obj)
        t = d.get("T", d.get("E"))
        lat.append(local - t * 1_000_000)
    min_lat = min(lat)
    assert min_lat < -1_000_000_000  # the capture's local clock is ~1.27 s behind
    events, st = load_events(BINANCE_SAMPLE, use_cache=False)
    assert st.local_offset_ns == st.base_latency_ns - min_lat
    feed = events["local_ts"] - events["exch_ts"]
    assert int(feed.min()) == st.base_latency_ns
    assert st.repairs["local_before_exch_clamped"] == 0


def test_binance_sample_book_is_never_crossed_after_replay():
    events, st = load_events(BINANCE_SAMPLE, use_cache=False)
    # bookTicker runs ahead of the diffs: stale levels are removed, so repairs happen
    assert st.repairs["crossed_book"] + st.repairs["stale_level_removed_by_bbo"] > 0
    assert replay_check_uncrossed(events) == 0
    assert replay_check_uncrossed(events[events["ival"] != REPAIR_IVAL]) > 0  # checker sees them


def test_bybit_sample_counts_and_assumed_latency():
    msgs = [json.loads(x) for x in BYBIT_SAMPLE.read_text().splitlines() if x.strip()]
    snap = [m for m in msgs if m["type"] == "snapshot"]
    deltas = [m for m in msgs if m["type"] == "delta"]
    events, st = load_events(BYBIT_SAMPLE, use_cache=False)
    kind = events["ev"] & KIND_MASK
    assert st.format == "bybit" and st.symbol == "XRPUSDT" and st.n_lines == len(msgs)
    assert int((kind == DEPTH_SNAPSHOT_EVENT).sum()) == sum(
        len(m["data"]["b"]) + len(m["data"]["a"]) for m in snap
    )
    n_delta_rows = sum(len(m["data"]["b"]) + len(m["data"]["a"]) for m in deltas)
    assert int(((kind == DEPTH_EVENT) & (events["ival"] != REPAIR_IVAL)).sum()) == n_delta_rows
    assert int((kind == DEPTH_CLEAR_EVENT).sum()) == 2
    assert st.repairs["sequence_gap"] == 0
    assert st.assumed_feed_latency_ns == DEFAULT_FEED_LATENCY_NS
    assert np.all(events["local_ts"] - events["exch_ts"] == DEFAULT_FEED_LATENCY_NS)
    assert events["exch_ts"][0] == snap[0]["ts"] * 1_000_000
    check_invariants(events)
    assert replay_check_uncrossed(events) == 0


def test_bybit_timestamped_lines_use_the_local_time(tmp_path):
    lines = BYBIT_SAMPLE.read_text().splitlines()
    out = tmp_path / "bybit_ts.txt"
    with open(out, "w") as f:
        for x in lines:
            ts = json.loads(x)["ts"]
            f.write(f"{ts * 1_000_000 + 3_000_000} {x}\n")
    events, st = load_events(out, use_cache=False)
    plain, _ = load_events(BYBIT_SAMPLE, use_cache=False)
    assert st.assumed_feed_latency_ns is None and st.local_offset_ns == 0
    assert np.all(events["local_ts"] - events["exch_ts"] == 3_000_000)
    for f in ("ev", "exch_ts", "px", "qty"):
        assert np.array_equal(events[f], plain[f])


def test_bybit_feed_latency_is_a_parameter():
    events, st = load_events(BYBIT_SAMPLE, use_cache=False, feed_latency_ns=2_500_000)
    assert st.assumed_feed_latency_ns == 2_500_000
    assert np.all(events["local_ts"] - events["exch_ts"] == 2_500_000)


def test_bybit_gap_drops_deltas_until_a_snapshot_resyncs(tmp_path):
    lines = BYBIT_SAMPLE.read_text().splitlines()
    cut_at = 20  # drop one delta: the next delta's u skips one
    cut = lines[:cut_at] + lines[cut_at + 1 :]
    f1 = tmp_path / "cut.jsonl"
    f1.write_text("\n".join(cut) + "\n")
    _, st = load_events(f1, use_cache=False)
    assert st.repairs["sequence_gap"] == 1
    assert st.repairs["depth_msg_dropped_unsynced"] == len(lines) - cut_at - 1
    assert st.repairs["resync_from_snapshot"] == 0
    # a later snapshot (the first one re-stamped after the end, with the next u) resyncs
    first = json.loads(lines[0])
    last = json.loads(lines[-1])
    first["ts"] = last["ts"] + 100
    first["data"]["u"] = last["data"]["u"] + 1
    extra = json.loads(lines[1])
    extra["ts"] = last["ts"] + 200
    extra["data"]["u"] = last["data"]["u"] + 2
    f2 = tmp_path / "cut_resync.jsonl"
    f2.write_text("\n".join(cut + [json.dumps(first), json.dumps(extra)]) + "\n")
    ev2, st2 = load_events(f2, use_cache=False)
    assert st2.repairs["sequence_gap"] == 1
    assert st2.repairs["resync_from_snapshot"] == 1
    tail = ev2[ev2["exch_ts"] == extra["ts"] * 1_000_000]
    assert len(tail) == len(extra["data"]["b"]) + len(
        extra["data"]["a"]
    )  # applied after the resync
    assert replay_check_uncrossed(ev2) == 0


def test_binance_gap_on_a_cut_file_is_detected_and_drops_depth_until_resync(tmp_path):
    with gzip.open(BINANCE_SAMPLE, "rb") as f:
        raw = f.read().splitlines(keepends=True)
    depth_idx = [k for k, ln in enumerate(raw) if b"@depth" in ln[:80]]
    cut_line = depth_idx[len(depth_idx) // 2]
    cut = raw[:cut_line] + raw[cut_line + 1 :]
    p = tmp_path / "cut.gz"
    p.write_bytes(gzip.compress(b"".join(cut)))
    events, st = load_events(p, use_cache=False)
    n_after = sum(1 for k in depth_idx if k > cut_line)
    assert st.repairs["sequence_gap"] == 1
    # the pre-snapshot diffs (4 in the sample) plus every diff after the cut are dropped
    full, st_full = load_events(BINANCE_SAMPLE, use_cache=False)
    assert (
        st.repairs["depth_msg_dropped_unsynced"]
        == st_full.repairs["depth_msg_dropped_unsynced"] + n_after
    )
    # no depth-diff rows with an exchange time after the cut line's (other than crossed-book repairs)
    cut_T = json.loads(raw[cut_line][20:])["data"]["T"] * 1_000_000
    kind = events["ev"] & KIND_MASK
    late_depth = (
        (kind == DEPTH_EVENT) & (events["exch_ts"] > cut_T) & (events["ival"] != REPAIR_IVAL)
    )
    assert int(late_depth.sum()) == 0
    assert replay_check_uncrossed(events) == 0


def test_streaming_chunks_equal_the_whole_read():
    """Small blocks and an early clock-offset decision force the windowed (carry) path; the events
    must equal a single-block read with the same offset sample size."""
    kw = {"offset_sample_rows": 5_000}
    st_whole = ReadStats(path="", format="")
    whole = np.concatenate(list(iter_event_chunks(BINANCE_SAMPLE, 1 << 40, stats=st_whole, **kw)))
    st = ReadStats(path="", format="")
    chunks = list(iter_event_chunks(BINANCE_SAMPLE, 10_000, stats=st, block_bytes=64 << 10, **kw))
    assert len(chunks) == -(-len(whole) // 10_000)
    assert all(len(c) == 10_000 for c in chunks[:-1])
    assert st.repairs["out_of_order_line_dropped"] == 0
    streamed = np.concatenate(chunks)
    for f in ("ev", "exch_ts", "px", "qty", "ival"):
        assert np.array_equal(streamed[f], whole[f]), f
    check_invariants(streamed)
    # the offset decided on the first ~5,000 rows can differ; later lines behind it are clamped
    assert st.local_offset_ns > 1_000_000_000
    full, _ = load_events(BINANCE_SAMPLE, use_cache=False)
    assert np.array_equal(full["exch_ts"], whole["exch_ts"])


def test_tardis_sample_reads_book_and_trades():
    book, st = load_events(TARDIS_BOOK, use_cache=False)
    with gzip.open(TARDIS_BOOK, "rt") as f:
        rows = [ln.rstrip("\n").split(",") for ln in f][1:]
    assert st.format == "tardis-book" and st.symbol == "BTCUSDT"
    kind = book["ev"] & KIND_MASK
    n_snap = sum(1 for r in rows if r[4] == "true")
    assert int((kind == DEPTH_SNAPSHOT_EVENT).sum()) == n_snap
    assert int(((kind == DEPTH_EVENT) & (book["ival"] != REPAIR_IVAL)).sum()) == len(rows) - n_snap
    assert int((kind == DEPTH_CLEAR_EVENT).sum()) == 2
    check_invariants(book)
    trades, st_t = load_events(TARDIS_TRADES, use_cache=False)
    lines = TARDIS_TRADES.read_text().splitlines()[1:]
    assert st_t.format == "tardis-trades" and len(trades) == len(lines)
    buys = sum(1 for ln in lines if ln.split(",")[5] == "buy")
    assert int(((trades["ev"] & BUY_EVENT) != 0).sum()) == buys
    first = lines[0].split(",")
    assert trades["exch_ts"][0] == int(first[2]) * 1000 and trades["px"][0] == float(first[6])


def test_nan_price_and_negative_qty_are_counted_repairs(tmp_path):
    with gzip.open(BINANCE_SAMPLE, "rb") as f:
        raw = f.read().splitlines(keepends=True)
    k_trade = next(k for k, ln in enumerate(raw) if b"@trade" in ln[:80])
    k_bbo = next(k for k, ln in enumerate(raw) if b"@bookTicker" in ln[:80] and k > 100)
    obj = json.loads(raw[k_trade][20:])
    obj["data"]["p"] = "NaN"
    raw[k_trade] = raw[k_trade][:20] + json.dumps(obj).encode() + b"\n"
    obj = json.loads(raw[k_bbo][20:])
    obj["data"]["B"] = "-1.5"
    raw[k_bbo] = raw[k_bbo][:20] + json.dumps(obj).encode() + b"\n"
    p = tmp_path / "nan.gz"
    p.write_bytes(gzip.compress(b"".join(raw)))
    events, st = load_events(p, use_cache=False)
    full, _ = load_events(BINANCE_SAMPLE, use_cache=False)
    assert st.repairs["bad_price_row_dropped"] == 1
    assert st.repairs["bad_qty_row_dropped"] == 1
    kind = events["ev"] & KIND_MASK
    kind_f = full["ev"] & KIND_MASK
    assert int((kind == TRADE_EVENT).sum()) == int((kind_f == TRADE_EVENT).sum()) - 1
    assert int((kind == DEPTH_BBO_EVENT).sum()) == int((kind_f == DEPTH_BBO_EVENT).sum()) - 1
    check_invariants(events)


def test_bybit_public_trade_sides_and_times(tmp_path):
    book = BYBIT_SAMPLE.read_text().splitlines()[:3]
    ts0 = json.loads(book[0])["ts"]
    trades = {
        "topic": "publicTrade.XRPUSDT",
        "type": "snapshot",
        "ts": ts0 + 150,
        "data": [
            {"T": ts0 + 140, "s": "XRPUSDT", "S": "Buy", "v": "120", "p": "1.9532", "i": "a"},
            {"T": ts0 + 145, "s": "XRPUSDT", "S": "Sell", "v": "7", "p": "1.9531", "i": "b"},
        ],
    }
    ack = {"success": True, "ret_msg": "", "op": "subscribe", "conn_id": "x"}
    ticker = {"topic": "tickers.XRPUSDT", "type": "snapshot", "ts": ts0 + 1, "data": {}}
    p = tmp_path / "mixed.jsonl"
    p.write_text(
        "\n".join([json.dumps(ack), book[0], json.dumps(ticker), json.dumps(trades), *book[1:]])
        + "\n"
    )
    events, st = load_events(p, use_cache=False)
    tr = events[(events["ev"] & KIND_MASK) == TRADE_EVENT]
    assert len(tr) == 2
    assert tr["exch_ts"].tolist() == [(ts0 + 140) * 1_000_000, (ts0 + 145) * 1_000_000]
    assert int(tr["ev"][0]) & BUY_EVENT and int(tr["ev"][1]) & SELL_EVENT
    assert tr["px"].tolist() == [1.9532, 1.9531] and tr["qty"].tolist() == [120.0, 7.0]
    assert st.repairs["non_market_line_skipped"] == 1
    assert st.repairs["unsupported_message_skipped"] == 1
    check_invariants(events)


def test_binance_spot_style_lines_use_spot_continuity(tmp_path):
    """Spot diffs (no ``pu``) chain by ``U == previous u + 1``; the snapshot's first diff straddles
    lastUpdateId + 1; bookTicker without times gets an estimated exchange time."""
    lui = 100
    rows = [
        (
            1_000,
            {
                "stream": "x@depth@100ms",
                "data": {
                    "e": "depthUpdate",
                    "E": 1_700_000_000_000 + 5,
                    "s": "XY",
                    "U": 90,
                    "u": 99,
                    "b": [["9.0", "1"]],
                    "a": [],
                },
            },
        ),
        (
            1_500,
            {
                "lastUpdateId": lui,
                "bids": [["9.0", "2"], ["8.9", "1"]],
                "asks": [["9.2", "1"], ["9.3", "4"]],
            },
        ),
        (
            2_000,
            {
                "stream": "x@depth@100ms",
                "data": {
                    "e": "depthUpdate",
                    "E": 1_700_000_000_000 + 6,
                    "s": "XY",
                    "U": 98,
                    "u": 103,
                    "b": [["9.1", "3"]],
                    "a": [],
                },
            },
        ),
        (
            2_500,
            {
                "stream": "x@bookTicker",
                "data": {"u": 103, "s": "XY", "b": "9.1", "B": "3", "a": "9.2", "A": "1"},
            },
        ),
        (
            3_000,
            {
                "stream": "x@depth@100ms",
                "data": {
                    "e": "depthUpdate",
                    "E": 1_700_000_000_000 + 7,
                    "s": "XY",
                    "U": 104,
                    "u": 106,
                    "b": [],
                    "a": [["9.2", "0"]],
                },
            },
        ),
        (
            4_000,
            {
                "stream": "x@depth@100ms",
                "data": {
                    "e": "depthUpdate",
                    "E": 1_700_000_000_000 + 8,
                    "s": "XY",
                    "U": 108,
                    "u": 109,
                    "b": [["9.05", "1"]],
                    "a": [],
                },
            },
        ),
    ]
    base = 1_700_000_000_000_000_000
    p = tmp_path / "spot.txt"
    p.write_text("".join(f"{base + t * 1_000_000} {json.dumps(o)}\n" for t, o in rows))
    events, st = load_events(p, use_cache=False)
    assert st.format == "binance-spot"
    assert st.repairs["depth_msg_dropped_stale"] + st.repairs["depth_msg_dropped_unsynced"] == 2
    assert st.repairs["sequence_gap"] == 1  # 107 is missing before U=108
    assert st.repairs["exch_ts_estimated"] == 2  # the snapshot and the bookTicker
    kind = events["ev"] & KIND_MASK
    depth = events[(kind == DEPTH_EVENT) & (events["ival"] != REPAIR_IVAL)]
    assert sorted(depth["px"].tolist()) == [
        9.1,
        9.2,
    ]  # U=98..103 applied, U=104..106 applied, 108 dropped
    assert replay_check_uncrossed(events) == 0
    check_invariants(events)


def test_binance_levels_given_as_json_numbers_parse_like_strings(tmp_path):
    as_num = (
        '1700000000000000000 {"lastUpdateId":10,"E":1700000000000,"T":1700000000000,'
        '"bids":[[9.0,2],[8.9,1]],"asks":[[9.2,1.5]]}\n'
        '1700000000001000000 {"stream":"x@trade","data":{"e":"trade","E":1700000000001,'
        '"T":1700000000001,"s":"XY","t":1,"p":9.1,"q":0.5,"X":"MARKET","m":true}}\n'
        '1700000000002000000 {"stream":"x@depth","data":{"e":"depthUpdate","E":1700000000002,'
        '"T":1700000000002,"s":"XY","U":9,"u":11,"pu":8,"b":[[9.05,1e-1]],"a":[]}}\n'
    )
    as_str = (
        as_num.replace("[9.0,2]", '["9.0","2"]')
        .replace("[8.9,1]", '["8.9","1"]')
        .replace("[9.2,1.5]", '["9.2","1.5"]')
        .replace('"p":9.1,"q":0.5', '"p":"9.1","q":"0.5"')
        .replace("[9.05,1e-1]", '["9.05","0.1"]')
    )
    (tmp_path / "num.txt").write_text(as_num)
    (tmp_path / "str.txt").write_text(as_str)
    a, st_a = load_events(tmp_path / "num.txt", use_cache=False)
    b, _ = load_events(tmp_path / "str.txt", use_cache=False)
    assert np.array_equal(a, b)
    assert len(a) == 2 + 3 + 1 + 1  # 2 clears, 3 snapshot levels, 1 trade, 1 diff level
    assert st_a.repairs["sequence_gap"] == 0


def test_binance_futures_snapshot_older_than_the_book_is_skipped(tmp_path):
    def diff(t, U, u, pu, px):
        d = {
            "e": "depthUpdate",
            "E": t,
            "T": t,
            "s": "XY",
            "U": U,
            "u": u,
            "pu": pu,
            "b": [[px, "1"]],
            "a": [],
        }
        return t, {"stream": "x@depth", "data": d}

    def snap(t, lui, bid):
        return t, {
            "lastUpdateId": lui,
            "E": t,
            "T": t,
            "bids": [[bid, "5"]],
            "asks": [["20.0", "5"]],
        }

    base_ms = 1_700_000_000_000
    msgs = [
        snap(base_ms + 1, 10, "9.0"),
        diff(base_ms + 2, 9, 11, 8, "9.1"),
        diff(base_ms + 3, 12, 13, 11, "9.2"),
        snap(base_ms + 4, 12, "8.0"),  # older than the book (u = 13 applied): skipped
        diff(base_ms + 5, 14, 15, 13, "9.3"),
        snap(base_ms + 6, 30, "7.0"),  # newer: applied, then the straddling diff continues
        diff(base_ms + 7, 29, 31, 28, "7.1"),
        diff(base_ms + 8, 32, 33, 31, "7.2"),
    ]
    p = tmp_path / "fut.txt"
    p.write_text("".join(f"{t * 1_000_000 + 5_000_000} {json.dumps(o)}\n" for t, o in msgs))
    events, st = load_events(p, use_cache=False)
    assert st.repairs["snapshot_skipped_older_than_book"] == 1
    assert st.repairs["sequence_gap"] == 0
    assert st.repairs["depth_msg_dropped_stale"] + st.repairs["depth_msg_dropped_unsynced"] == 0
    kind = events["ev"] & KIND_MASK
    assert sorted(events["px"][kind == DEPTH_SNAPSHOT_EVENT].tolist()) == [7.0, 9.0, 20.0, 20.0]
    assert events["px"][kind == DEPTH_EVENT].tolist() == [9.1, 9.2, 9.3, 7.1, 7.2]


def test_bybit_parse_message_matches_the_file_reader():
    from mmbot.data.bybit import parse_message

    lines = BYBIT_SAMPLE.read_text().splitlines()
    file_events, _ = load_events(BYBIT_SAMPLE, use_cache=False)
    rows = []
    for x in lines:
        m = json.loads(x)
        rows.append(parse_message(m, m["ts"] * 1_000_000 + DEFAULT_FEED_LATENCY_NS))
    live = np.concatenate(rows)
    assert len(live) == len(file_events)  # this sample needs no repair
    for f in ("ev", "exch_ts", "local_ts", "px", "qty"):
        assert np.array_equal(live[f], file_events[f]), f
    assert len(parse_message({"op": "pong"}, 0)) == 0


def _moved_trade_file(tmp_path: Path, shift_lines: int) -> tuple[Path, int]:
    with gzip.open(BINANCE_SAMPLE, "rb") as f:
        raw = f.read().splitlines(keepends=True)
    k = next(i for i, ln in enumerate(raw) if b"@trade" in ln[:80] and i > 8000)
    line = raw.pop(k)
    # keep the receive time plausible: it takes the local time of its new neighbour
    dest = k + shift_lines
    line = raw[dest - 1][:19] + line[19:]
    raw.insert(dest, line)
    p = tmp_path / f"moved_{shift_lines}.gz"
    p.write_bytes(gzip.compress(b"".join(raw)))
    return p, json.loads(line[20:])["data"]["T"] * 1_000_000


def _read_streaming(path: Path) -> tuple[np.ndarray, ReadStats]:
    st = ReadStats(path="", format="")
    kw = {"block_bytes": 64 << 10, "offset_sample_rows": 5_000, "window_ns": 1_000_000_000}
    return np.concatenate(list(iter_event_chunks(path, 1 << 40, stats=st, **kw))), st


def test_out_of_order_line_within_the_window_is_reordered(tmp_path):
    p, trade_ts = _moved_trade_file(tmp_path, 40)  # received a few hundred ms late
    events, st = _read_streaming(p)
    base, _ = _read_streaming(BINANCE_SAMPLE)
    assert st.repairs["out_of_order_line_dropped"] == 0
    assert st.repairs["out_of_order_line_reordered"] >= 1
    kind = events["ev"] & KIND_MASK
    tr, tr0 = events[kind == TRADE_EVENT], base[(base["ev"] & KIND_MASK) == TRADE_EVENT]
    assert np.array_equal(tr["exch_ts"], tr0["exch_ts"]) and np.array_equal(tr["px"], tr0["px"])
    assert trade_ts in set(tr["exch_ts"].tolist())
    check_invariants(events)


def test_out_of_order_line_beyond_the_window_is_dropped_and_counted(tmp_path):
    p, trade_ts = _moved_trade_file(tmp_path, 3000)  # several seconds late: window is 1 s
    events, st = _read_streaming(p)
    base, _ = _read_streaming(BINANCE_SAMPLE)
    assert st.repairs["out_of_order_line_dropped"] == 1
    n_tr = int(((events["ev"] & KIND_MASK) == TRADE_EVENT).sum())
    assert n_tr == int(((base["ev"] & KIND_MASK) == TRADE_EVENT).sum()) - 1
    check_invariants(events)


def test_tardis_snapshot_is_not_split_across_read_blocks():
    whole, _ = load_events(TARDIS_BOOK, use_cache=False)
    st = ReadStats(path="", format="")
    small = np.concatenate(
        list(iter_event_chunks(TARDIS_BOOK, 1 << 40, stats=st, block_bytes=4096))
    )
    assert np.array_equal(small, whole)
    assert int(((small["ev"] & KIND_MASK) == DEPTH_CLEAR_EVENT).sum()) == 2
