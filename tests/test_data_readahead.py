"""The read-ahead that scans Binance blocks on worker threads changes nothing but speed: same
results in the same order, a source error after the results before it, no thread left behind, and
a Binance read byte-identical to the inline (one-core) read."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from conftest import TESTS_DATA
from mmbot.data import iter_event_chunks, readahead
from mmbot.data.core import ReadStats
from mmbot.errors import UserError

BINANCE = TESTS_DATA / "binance_usdm_btcusdt_sample.gz"


@pytest.fixture
def two_cpus(monkeypatch):
    monkeypatch.setattr(readahead, "usable_cpus", lambda: 2)


def _workers_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("mmbot-read-ahead")]


def test_results_come_in_item_order_from_worker_threads(two_cpus):
    seen: set[str] = set()

    def fn(x: int) -> int:
        seen.add(threading.current_thread().name)
        return x * x

    assert list(readahead.map_ahead(fn, iter(range(200)), depth=3)) == [x * x for x in range(200)]
    assert any(name.startswith("mmbot-read-ahead") for name in seen)
    assert not _workers_alive()


def test_one_usable_cpu_runs_inline(monkeypatch):
    monkeypatch.setattr(readahead, "usable_cpus", lambda: 1)
    names = list(readahead.map_ahead(lambda _: threading.current_thread().name, range(5)))
    assert names == [threading.current_thread().name] * 5


def test_source_error_comes_after_the_results_before_it(two_cpus):
    def source():
        yield from range(5)
        raise ValueError("bad block")

    out = []
    with pytest.raises(ValueError, match="bad block"):
        for r in readahead.map_ahead(lambda x: x + 100, source(), depth=2):
            out.append(r)
    assert out == [100, 101, 102, 103, 104]
    assert not _workers_alive()


def test_abandoned_read_leaves_no_worker_thread(two_cpus):
    it = readahead.map_ahead(lambda x: x, iter(range(1000)), depth=2)
    assert [next(it), next(it)] == [0, 1]
    it.close()
    assert not _workers_alive()


def _read(block_bytes: int) -> tuple[np.ndarray, dict]:
    st = ReadStats(path="", format="")
    chunks = list(iter_event_chunks(BINANCE, 7_000, stats=st, block_bytes=block_bytes))
    return np.concatenate(chunks), st.to_json_dict()


def test_threaded_binance_read_equals_the_inline_read(monkeypatch):
    monkeypatch.setattr(readahead, "usable_cpus", lambda: 1)
    ev_inline, st_inline = _read(64 << 10)
    monkeypatch.setattr(readahead, "usable_cpus", lambda: 2)
    ev_threaded, st_threaded = _read(64 << 10)
    assert ev_threaded.tobytes() == ev_inline.tobytes()
    assert st_threaded == st_inline


def test_threaded_read_of_a_truncated_gzip_names_the_same_line(tmp_path, monkeypatch):
    data = BINANCE.read_bytes()
    p = tmp_path / "trunc.gz"
    p.write_bytes(data[: len(data) * 2 // 3])
    messages = []
    for cpus in (1, 2):
        monkeypatch.setattr(readahead, "usable_cpus", lambda cpus=cpus: cpus)
        with pytest.raises(UserError) as exc:
            list(iter_event_chunks(p, 5_000, block_bytes=32 << 10))
        messages.append(str(exc.value))
    assert messages[0] == messages[1]
    assert "after line" in messages[0]
    assert not _workers_alive()
