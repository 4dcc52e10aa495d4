"""The parsed-file cache: stored once, reused while the file is unchanged, reparsed when stale."""

from __future__ import annotations

import os
import shutil

import numpy as np

from conftest import TESTS_DATA
from mmbot.data import cache as cache_mod
from mmbot.data import load_events

BYBIT_SAMPLE = TESTS_DATA / "bybit_xrpusdt_ob500_sample.jsonl"


def test_cache_stores_once_reuses_and_reparses_a_changed_file(tmp_path, monkeypatch):
    cdir = tmp_path / "cache"
    monkeypatch.setenv("MMBOT_CACHE_DIR", str(cdir))
    src = tmp_path / "book.jsonl"
    shutil.copy(BYBIT_SAMPLE, src)
    ev1, st1 = load_events(src)
    assert not st1.from_cache
    files = list(cdir.glob("events-*.npz"))
    assert len(files) == 1
    ev2, st2 = load_events(src)
    assert st2.from_cache
    assert np.array_equal(ev1, ev2)
    assert st2.repairs == st1.repairs and st2.counts == st1.counts
    assert st2.tick_px_guess == st1.tick_px_guess
    # a cache hit must not re-read the file: make the source unreadable-by-parse but keep its key
    mtime = src.stat().st_mtime_ns
    data = src.read_bytes()
    src.write_bytes(b"x" * len(data))
    os.utime(src, ns=(mtime, mtime))
    ev3, st3 = load_events(src)
    assert st3.from_cache and np.array_equal(ev3, ev1)
    # a changed file (size and mtime) is reparsed: drop the last line
    src.write_bytes(b"\n".join(data.splitlines()[:-1]) + b"\n")
    ev4, st4 = load_events(src)
    assert not st4.from_cache
    assert len(ev4) < len(ev1)
    assert len(list(cdir.glob("events-*.npz"))) == 2


def test_cache_off_and_unreadable_entry_are_misses(tmp_path, monkeypatch):
    monkeypatch.setenv("MMBOT_CACHE_DIR", "off")
    assert cache_mod.cache_dir() is None
    _, st = load_events(BYBIT_SAMPLE)
    assert not st.from_cache
    cdir = tmp_path / "c"
    monkeypatch.setenv("MMBOT_CACHE_DIR", str(cdir))
    ev, _ = load_events(BYBIT_SAMPLE)
    (f,) = list(cdir.glob("events-*.npz"))
    f.write_bytes(b"garbage")
    ev2, st2 = load_events(BYBIT_SAMPLE)
    assert not st2.from_cache and np.array_equal(ev, ev2)
    _, st3 = load_events(BYBIT_SAMPLE)
    assert st3.from_cache


def test_use_cache_false_writes_nothing(tmp_path, monkeypatch):
    cdir = tmp_path / "c"
    monkeypatch.setenv("MMBOT_CACHE_DIR", str(cdir))
    load_events(BYBIT_SAMPLE, use_cache=False)
    assert not cdir.exists() or not list(cdir.iterdir())


def test_cache_is_bounded_least_recently_used_out(tmp_path, monkeypatch) -> None:
    import os
    import time

    import numpy as np

    from mmbot.data import cache
    from mmbot.data.core import ReadStats
    from mmbot.events import EVENT_DTYPE

    monkeypatch.setenv("MMBOT_CACHE_DIR", str(tmp_path / "c"))
    ev = np.zeros(20_000, EVENT_DTYPE)  # 1.28 MB per entry
    monkeypatch.setenv("MMBOT_CACHE_MAX_MB", "3")
    srcs = []
    for i in range(3):
        src = tmp_path / f"cap{i}.jsonl"
        src.write_text(str(i))
        srcs.append(src)
    f0 = cache.put(srcs[0], {}, ev, ReadStats(path=str(srcs[0]), format="bybit"))
    f1 = cache.put(srcs[1], {}, ev, ReadStats(path=str(srcs[1]), format="bybit"))
    old = time.time() - 100
    os.utime(f0, (old, old))
    os.utime(f1, (old + 1, old + 1))
    assert cache.get(srcs[0], {}) is not None  # a hit makes cap0 the most recently used
    cache.put(srcs[2], {}, ev, ReadStats(path=str(srcs[2]), format="bybit"))
    assert f0.exists() and not f1.exists()  # cap1 was the least recently used
    i = cache.info()
    assert i["entries"] == 2 and i["bytes"] <= i["max_bytes"] == 3_000_000
    assert cache.clear()[0] == 2 and cache.info()["entries"] == 0


def test_cache_commands_report_and_clear(tmp_path) -> None:
    import subprocess

    from conftest import REPO

    env = {**__import__("os").environ, "MMBOT_CACHE_DIR": str(tmp_path / "c")}
    mmbot = str(REPO / ".venv" / "bin" / "mmbot")
    p = subprocess.run([mmbot, "cache", "info"], env=env, capture_output=True, text=True)
    assert p.returncode == 0 and "0 entries" in p.stdout and "compiled code:" in p.stdout
    p = subprocess.run([mmbot, "cache", "clear"], env=env, capture_output=True, text=True)
    assert p.returncode == 0 and "removed 0 file(s)" in p.stdout
