"""`mmbot data inspect|convert` through the real CLI: bad input gives one line on stderr, exit 2,
no traceback; convert -> load round trip is identical; inspect shows every repair count."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, TESTS_DATA
from mmbot.data import load_events
from mmbot.data.core import PARSER_COUNTER_NAMES
from mmbot.data.replay import COUNTER_NAMES
from mmbot.events import EXCH_EVENT, LOCAL_EVENT

MMBOT = REPO / ".venv" / "bin" / "mmbot"
BINANCE_SAMPLE = TESTS_DATA / "binance_usdm_btcusdt_sample.gz"
BYBIT_SAMPLE = TESTS_DATA / "bybit_xrpusdt_ob500_sample.jsonl"


def run_cli(*args: str, cache_dir: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["MMBOT_CACHE_DIR"] = str(cache_dir) if cache_dir else "off"
    env["COLUMNS"] = "200"
    return subprocess.run([str(MMBOT), *args], capture_output=True, text=True, env=env, timeout=300)


def assert_user_error(res: subprocess.CompletedProcess, *must_contain: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    for s in must_contain:
        assert s in lines[0], (s, lines[0])


def _sample_lines() -> list[bytes]:
    with gzip.open(BINANCE_SAMPLE, "rb") as f:
        return f.read().splitlines(keepends=True)


def test_truncated_gzip_is_a_one_line_error_naming_the_file(tmp_path):
    p = tmp_path / "trunc.gz"
    p.write_bytes(BINANCE_SAMPLE.read_bytes()[:200_000])
    assert_user_error(run_cli("data", "inspect", str(p)), "trunc.gz", "truncated", "after line")


def test_file_of_another_format_is_a_one_line_error(tmp_path):
    p = tmp_path / "notes.gz"
    p.write_bytes(gzip.compress(b"this is not market data\nat all\n"))
    assert_user_error(run_cli("data", "inspect", str(p)), "notes.gz", "not a recognised capture")
    q = tmp_path / "table.csv"
    q.write_text("a,b,c\n1,2,3\n")
    assert_user_error(
        run_cli("data", "convert", str(q), "--out", str(tmp_path / "o.npz")), "table.csv"
    )


def test_empty_file_is_a_one_line_error(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_bytes(b"")
    assert_user_error(run_cli("data", "inspect", str(p)), "empty.jsonl", "empty")
    g = tmp_path / "empty.gz"
    g.write_bytes(gzip.compress(b""))
    assert_user_error(run_cli("data", "inspect", str(g)), "empty.gz", "empty")


def test_broken_json_line_names_file_and_line(tmp_path):
    raw = _sample_lines()
    raw.insert(300, b'1723161255088169167 {"stream":"btcusdt@trade","data":{"e":"trade",\n')
    p = tmp_path / "broken.gz"
    p.write_bytes(gzip.compress(b"".join(raw)))
    assert_user_error(run_cli("data", "inspect", str(p)), "broken.gz:301", "broken JSON")
    lines = BYBIT_SAMPLE.read_text().splitlines()
    lines[7] = lines[7][: len(lines[7]) // 2]
    b = tmp_path / "bybit.jsonl"
    b.write_text("\n".join(lines) + "\n")
    assert_user_error(run_cli("data", "inspect", str(b)), "bybit.jsonl:8", "broken JSON")


def test_missing_file_is_a_one_line_error(tmp_path):
    assert_user_error(
        run_cli("data", "inspect", str(tmp_path / "nope.gz")), "nope.gz", "no such file"
    )


def test_nan_price_is_a_counted_repair_shown_by_inspect(tmp_path):
    raw = _sample_lines()
    k = next(i for i, ln in enumerate(raw) if b"@trade" in ln[:80])
    obj = json.loads(raw[k][20:])
    obj["data"]["p"] = "NaN"
    raw[k] = raw[k][:20] + json.dumps(obj).encode() + b"\n"
    p = tmp_path / "nan.gz"
    p.write_bytes(gzip.compress(b"".join(raw)))
    res = run_cli("data", "inspect", str(p))
    assert res.returncode == 0, res.stderr
    row = next(ln for ln in res.stdout.splitlines() if "bad_price_row_dropped" in ln)
    assert row.split()[-2] == "1"


def test_inspect_prints_every_repair_count_the_offset_and_latency(tmp_path):
    res = run_cli("data", "inspect", str(BINANCE_SAMPLE))
    assert res.returncode == 0, res.stderr
    for name in list(COUNTER_NAMES) + list(PARSER_COUNTER_NAMES):
        assert name in res.stdout, name
    assert "local clock offset applied" in res.stdout
    assert "feed latency p50 / p95 / p99" in res.stdout
    assert "tick guess" in res.stdout and "0.1" in res.stdout
    assert "binance-usdm" in res.stdout and "BTCUSDT" in res.stdout


@pytest.mark.parametrize("sample", [BINANCE_SAMPLE, BYBIT_SAMPLE])
def test_convert_then_load_round_trip_is_identical(tmp_path, sample):
    out = tmp_path / "events.npz"
    res = run_cli("data", "convert", str(sample), "--out", str(out))
    assert res.returncode == 0, res.stderr
    direct, direct_stats = load_events(sample, use_cache=False)
    with np.load(out) as z:
        assert list(z.files) == ["data", "symbol"]  # hftbacktest reads `data`
        raw = z["data"]
    again, st = load_events(out, use_cache=False)
    assert st.format == "npz" and st.symbol == direct_stats.symbol != ""
    assert np.array_equal(again, raw)  # loaded exactly as written
    # the written rows are our events: the EXCH rows in our order, the LOCAL rows in local order
    strip = ~np.uint64(EXCH_EVENT | LOCAL_EVENT)
    ex = raw[(raw["ev"] & EXCH_EVENT) != 0]
    lo = raw[(raw["ev"] & LOCAL_EVENT) != 0]
    for f in ("exch_ts", "local_ts", "px", "qty", "ival"):
        assert np.array_equal(ex[f], direct[f]), f
    assert np.array_equal(ex["ev"] & strip, direct["ev"] & strip)
    by_local = direct[np.argsort(direct["local_ts"], kind="stable")]
    for f in ("exch_ts", "local_ts", "px", "qty"):
        assert np.array_equal(lo[f], by_local[f]), f
    # and converting the loaded npz again gives the same rows
    out2 = tmp_path / "again.npz"
    assert run_cli("data", "convert", str(out), "--out", str(out2)).returncode == 0
    with np.load(out2) as z:
        assert np.array_equal(z["data"], raw)


def test_convert_output_passes_hftbacktest_validation(tmp_path):
    pytest.importorskip("hftbacktest")
    from hftbacktest.data.validation import validate_event_order

    out = tmp_path / "events.npz"
    assert run_cli("data", "convert", str(BINANCE_SAMPLE), "--out", str(out)).returncode == 0
    with np.load(out) as z:
        validate_event_order(z["data"])  # raises ValueError when either order is broken
