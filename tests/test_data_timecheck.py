"""Timestamps are validated on import: one bad line is dropped and counted (or stops the read with
a message naming file:line), never stretches the span, sets the clock offset or exhausts memory."""

from __future__ import annotations

import gzip
import json
import time

import numpy as np
import pytest

from conftest import TESTS_DATA
from mmbot.data import core as data_core
from mmbot.data import iter_event_chunks, load_events, timecheck
from mmbot.data.timecheck import TIME_REPAIR_NAMES, TimeFilter
from mmbot.errors import UserError

BYBIT = TESTS_DATA / "bybit_xrpusdt_ob500_sample.jsonl"
BINANCE = TESTS_DATA / "binance_usdm_btcusdt_sample.gz"
YEAR_MS = 365 * 86_400_000


def _bybit_with(tmp_path, line_no: int, ts) -> object:
    lines = BYBIT.read_text().splitlines()
    obj = json.loads(lines[line_no])
    obj["ts"] = ts
    lines[line_no] = json.dumps(obj)
    p = tmp_path / "bybit.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


def _binance_with(tmp_path, line_no: int, local) -> object:
    lines = gzip.decompress(BINANCE.read_bytes()).split(b"\n")
    _, body = lines[line_no].split(b" ", 1)
    lines[line_no] = str(local).encode() + b" " + body
    p = tmp_path / "binance.gz"
    p.write_bytes(gzip.compress(b"\n".join(lines)))
    return p


def _time_repairs(st) -> dict[str, int]:
    return {k: st.repairs[k] for k in TIME_REPAIR_NAMES if st.repairs[k]}


@pytest.mark.parametrize(
    ("ts", "repair"),
    [
        (-5, "exch_ts_invalid_dropped"),
        (0, "exch_ts_invalid_dropped"),
        (1e30, "exch_ts_invalid_dropped"),
        ("year-ahead", "exch_ts_invalid_dropped"),
        (1733011200691 + 3 * 86_400_000, "exch_ts_outlier_dropped"),
        (1733011200691 - 3 * 86_400_000, "exch_ts_outlier_dropped"),
    ],
)
def test_bybit_bad_exchange_time_is_dropped_and_counted(tmp_path, ts, repair):
    if ts == "year-ahead":
        ts = int(time.time() * 1000) + YEAR_MS
    clean, st0 = load_events(BYBIT, use_cache=False)
    t0 = time.perf_counter()
    events, st = load_events(_bybit_with(tmp_path, 20, ts), use_cache=False)
    assert time.perf_counter() - t0 < 10
    assert _time_repairs(st) == {repair: 1}
    # the span never grows; the dropped delta leaves a sequence gap (the book waits for a snapshot)
    assert st0.first_exch_ts <= st.first_exch_ts <= st.last_exch_ts <= st0.last_exch_ts
    assert st.repairs["sequence_gap"] == st0.repairs["sequence_gap"] + 1
    assert np.all(np.diff(events["exch_ts"]) >= 0)


def test_binance_absurd_local_time_cannot_set_the_clock_offset(tmp_path):
    _, st0 = load_events(BINANCE, use_cache=False)
    _, st = load_events(_binance_with(tmp_path, 700, 1000), use_cache=False)
    assert _time_repairs(st) == {"local_ts_invalid_dropped": 1}
    assert st.local_offset_ns == st0.local_offset_ns


@pytest.mark.parametrize("shift_s", [-3600, 3600, -86_400 * 30])
def test_binance_single_local_time_outlier_is_dropped(tmp_path, shift_s):
    lines = gzip.decompress(BINANCE.read_bytes()).split(b"\n")
    local = int(lines[900].split(b" ", 1)[0]) + shift_s * 1_000_000_000
    _, st0 = load_events(BINANCE, use_cache=False)
    _, st = load_events(_binance_with(tmp_path, 900, local), use_cache=False)
    assert _time_repairs(st) == {"local_ts_outlier_dropped": 1}
    assert st.local_offset_ns == st0.local_offset_ns
    assert (st.first_exch_ts, st.last_exch_ts) == (st0.first_exch_ts, st0.last_exch_ts)


def test_clean_captures_have_no_time_repairs():
    for path in (BYBIT, BINANCE):
        _, st = load_events(path, use_cache=False)
        assert _time_repairs(st) == {}, path


def test_overflowing_local_prefix_stops_naming_file_and_line(tmp_path):
    p = _binance_with(tmp_path, 50, "1e30")
    with pytest.raises(UserError, match=r"binance\.gz:51: "):
        load_events(p, use_cache=False)


def test_one_endless_line_is_refused_with_bounded_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(data_core, "MAX_LINE_BYTES", 1 << 20)
    p = tmp_path / "long.jsonl"
    p.write_bytes(BYBIT.read_bytes().split(b"\n")[0] + b"\n" + b"x" * (3 << 20))
    with pytest.raises(UserError, match=r"long\.jsonl:2: line longer than"):
        list(iter_event_chunks(p, block_bytes=64 << 10))


def test_a_genuine_gap_in_time_is_kept():
    """A capture that jumps by an hour and stays there is not an outlier (centred median)."""
    base = 1_733_011_200_000_000_000
    exch = base + np.arange(40, dtype=np.int64) * 100_000_000
    exch[20:] += 3600 * 10**9
    filt = TimeFilter(has_local_time=True)
    keep = filt.keep(exch, exch + 5_000_000)
    assert keep.all()
    assert sum(filt.counts.values()) == 0


def test_filter_carries_context_across_blocks():
    """An outlier at the start of a block is judged against the previous block's messages."""
    base = 1_733_011_200_000_000_000
    exch = base + np.arange(20, dtype=np.int64) * 100_000_000
    filt = TimeFilter(has_local_time=False)
    assert filt.keep(exch[:10], exch[:10]).all()
    second = exch[10:].copy()
    second[0] += 86_400 * 10**9
    keep = filt.keep(second, second)
    assert keep.tolist() == [False] + [True] * 9


def test_rolling_median_equals_numpy_nanmedian_of_the_padded_window():
    h = timecheck.HALF_WINDOW
    rng = np.random.default_rng(3)
    for trial in range(400):
        n = int(rng.integers(1, 3 * h + 3))
        base = 1_723_075_200_000_000_000 if trial % 2 else 0
        spread = 10 ** int(rng.integers(1, 16))
        x = base + rng.integers(-spread, spread, n)
        if trial % 3 == 0:  # ties, and even counts whose two middle values differ
            x = base + rng.integers(0, 3, n) * 257
        left = base + rng.integers(-spread, spread, int(rng.integers(0, h + 1)))
        full = np.concatenate((left, x)).astype(np.float64)
        pad = np.concatenate((np.full(h - len(left), np.nan), full, np.full(h, np.nan)))
        win = np.lib.stride_tricks.sliding_window_view(pad, 2 * h + 1)
        want = np.nanmedian(win, axis=1)
        got = timecheck._rolling_median(x, left)
        assert got.tobytes() == want.tobytes(), (x, left)
