"""Our Binance events against hftbacktest's own ``binancefutures.convert`` on the same capture.

Documented differences (see mmbot.data.binance / replay docstrings):
- mmbot drops depth diffs that precede the REST snapshot (Binance's sync rule); hftbacktest keeps them;
- mmbot adds bookTicker as DEPTH_BBO events (hftbacktest leaves them out by default) and qty-0 depth
  rows (``ival == REPAIR_IVAL``) that remove crossed stale levels;
- mmbot includes bookTicker lines in the minimum feed latency, so its clock offset is larger by
  ``min(non-BBO latency) - min(all latency)``; where exchange and local order disagree hftbacktest
  splits a row into exchange-only / local-only copies, mmbot keeps one EXCH|LOCAL row.
Everything else (kinds, side flags, exchange times, prices, quantities) must match row for row.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import TESTS_DATA, USDM_CAPTURE, need_shared
from mmbot.data import load_events
from mmbot.data.replay import REPAIR_IVAL
from mmbot.events import DEPTH_BBO_EVENT, EXCH_EVENT, KIND_MASK, LOCAL_EVENT, TRADE_EVENT

hbt_utils = pytest.importorskip("hftbacktest.data.utils.binancefutures")

BINANCE_SAMPLE = TESTS_DATA / "binance_usdm_btcusdt_sample.gz"
KEY_MASK = np.uint64(0xFF | (1 << 29) | (1 << 28))  # kind + BUY/SELL


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch):
    monkeypatch.setenv("MMBOT_CACHE_DIR", "off")


def _rows(events: np.ndarray) -> Counter:
    return Counter(
        zip(
            (events["ev"] & KEY_MASK).tolist(),
            events["exch_ts"].tolist(),
            events["px"].tolist(),
            events["qty"].tolist(),
            strict=True,
        )
    )


def _pre_snapshot_diff_rows(path: Path) -> Counter:
    """Rows of the diffs mmbot drops by Binance's rule (u < lastUpdateId, before the first kept)."""
    with gzip.open(path, "rt") as f:
        lines = [json.loads(ln[20:]) for ln in f if ln.strip()]
    lui = next(o["lastUpdateId"] for o in lines if "lastUpdateId" in o)
    out: Counter = Counter()
    for o in lines:
        d = o.get("data", {})
        if d.get("e") != "depthUpdate":
            continue
        if d["U"] <= lui <= d["u"]:
            break
        if d["u"] < lui:
            ts = d["T"] * 1_000_000
            for px, q in d["b"]:
                out[(1 | (1 << 29), ts, float(px), float(q))] += 1
            for px, q in d["a"]:
                out[(1 | (1 << 28), ts, float(px), float(q))] += 1
    return out


def compare_with_hftbacktest(path: Path, tmp_path: Path) -> None:
    ours, st = load_events(path, use_cache=False)
    hb = hbt_utils.convert(str(path), base_latency=st.base_latency_ns)
    hb_exch = hb[(hb["ev"] & EXCH_EVENT) != 0]
    kind = ours["ev"] & KIND_MASK
    mine = ours[(kind != DEPTH_BBO_EVENT) & (ours["ival"] != REPAIR_IVAL)]
    ours_rows = _rows(mine)
    hb_rows = _rows(hb_exch)
    assert ours_rows - hb_rows == Counter()  # nothing we emit is unknown to hftbacktest
    dropped = _pre_snapshot_diff_rows(path)
    assert sum(dropped.values()) > 0
    assert hb_rows - ours_rows == dropped  # the only rows we lack: the stale pre-snapshot diffs
    # trades row for row, in the same order, with the same flags
    t_ours = ours[kind == TRADE_EVENT]
    t_hb = hb_exch[(hb_exch["ev"] & KIND_MASK) == TRADE_EVENT]
    for f in ("exch_ts", "px", "qty"):
        assert np.array_equal(t_ours[f], t_hb[f]), f
    assert np.array_equal(t_ours["ev"] & KEY_MASK, t_hb["ev"] & KEY_MASK)
    assert np.all((t_ours["ev"] & (EXCH_EVENT | LOCAL_EVENT)) == (EXCH_EVENT | LOCAL_EVENT))
    # local time: one constant offset difference, from bookTicker lines in our minimum latency
    d = t_ours["local_ts"] - t_hb["local_ts"]
    assert np.all(d == d[0]) and d[0] >= 0
    assert d[0] == st.local_offset_ns - (hb_offset(path) + st.base_latency_ns)


def hb_offset(path: Path) -> int:
    """-min(local - T) over the non-bookTicker lines: what hftbacktest's correction adds (less base)."""
    lat = []
    with gzip.open(path, "rt") as f:
        for ln in f:
            o = json.loads(ln[20:])
            d = o.get("data", o)
            if d.get("e") == "bookTicker":
                continue
            lat.append(int(ln[:19]) - d["T"] * 1_000_000)
    return -min(lat)


def test_sample_matches_hftbacktest_convert(tmp_path):
    compare_with_hftbacktest(BINANCE_SAMPLE, tmp_path)


@pytest.mark.slow
def test_usdm_capture_matches_hftbacktest_convert(tmp_path):
    compare_with_hftbacktest(need_shared(USDM_CAPTURE), tmp_path)


def test_npz_written_by_hftbacktest_loads_identically(tmp_path):
    out = tmp_path / "hb.npz"
    hb = hbt_utils.convert(str(BINANCE_SAMPLE), output_filename=str(out))
    ev, st = load_events(out, use_cache=False)
    with np.load(out) as z:
        raw = z["data"]
    assert np.array_equal(ev, raw)
    assert np.array_equal(ev, hb)
    assert st.format == "npz" and st.n_events == len(raw)
    assert sum(st.counts.values()) == len(raw)
