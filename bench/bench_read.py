"""Reader benchmark: mmbot's Binance read vs hftbacktest's ``binancefutures.convert``, and peak RSS
when streaming a file 20x larger than the capture vs the capture itself.

Usage: .venv/bin/python bench/bench_read.py [capture.gz]
(default ../shared/data/binance-usdm/btcusdt_20240808.gz). Targets: mmbot >= 2x faster than
hftbacktest on the same file (both warm: one untimed run each first, then the best of 3), and
peak RSS on the 20x file <= 2x that on the capture (each measured in a fresh subprocess via
``resource.getrusage(RUSAGE_CHILDREN)``; the reader streams with ``iter_event_chunks``).
The mmbot read is uncached (``use_cache=False``): parse, sequence checks, book repair, ordering.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmbot.jitcache import configure as configure_jit_cache

configure_jit_cache()  # an entry point: before compiled modules are imported (mmbot.jitcache)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CAPTURE = REPO.parent / "shared" / "data" / "binance-usdm" / "btcusdt_20240808.gz"
N_COPIES = 20

_RSS_CHILD = """
import sys
from mmbot.jitcache import configure
configure()  # the child's JIT cache (mmbot.jitcache), before compiled modules
from mmbot.data import iter_event_chunks
n = 0
for c in iter_event_chunks(sys.argv[1]):
    n += len(c)
print(n)
"""

_RSS_WRAPPER = """
import resource, subprocess, sys
r = subprocess.run([sys.executable, "-c", sys.argv[1], sys.argv[2]], capture_output=True, text=True)
if r.returncode != 0:
    sys.stderr.write(r.stderr)
    sys.exit(r.returncode)
print(r.stdout.strip(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss_kb(path: Path) -> tuple[int, int]:
    """(events read, peak RSS in KiB) of a fresh process streaming ``path``."""
    env = dict(os.environ, MMBOT_CACHE_DIR="off")
    out = subprocess.run(
        [sys.executable, "-c", _RSS_WRAPPER, _RSS_CHILD, str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    return int(out[0]), int(out[1])


def make_bigger(src: Path, dst: Path, copies: int) -> None:
    """``copies`` back-to-back copies of ``src`` with local (ns) and exchange (ms, "E"/"T") times
    shifted so each copy starts after the previous one ends, and update ids shifted past the previous
    copy's (so each copy starts with a sequence gap that its own REST snapshot resyncs)."""
    with gzip.open(src, "rb") as f:
        text = f.read()
    first_local = int(text[:19])
    last_line = text.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    span_ns = int(last_line[:19]) - first_local + 1_000_000_000
    span_ms = span_ns // 1_000_000
    span_ns = span_ms * 1_000_000
    ts_re = re.compile(rb'"([ET])":(\d+)')
    id_re = re.compile(rb'"(U|u|pu|lastUpdateId)":(\d+)')
    ids = [int(x) for x in re.findall(rb'"(?:U|u|pu|lastUpdateId)":(\d+)', text)]
    id_span = max(ids) - min(ids) + 1_000_000
    line_re = re.compile(rb"^(\d{19}) ", re.M)
    with gzip.open(dst, "wb", compresslevel=1) as out:
        for k in range(copies):
            if k == 0:
                out.write(text)
                continue
            sh_ms = k * span_ms
            sh_ns = k * span_ns
            body = ts_re.sub(
                lambda m, sh_ms=sh_ms: (
                    b'"' + m.group(1) + b'":' + str(int(m.group(2)) + sh_ms).encode()
                ),
                text,
            )
            sh_id = k * id_span
            body = id_re.sub(
                lambda m, sh_id=sh_id: (
                    b'"' + m.group(1) + b'":' + str(int(m.group(2)) + sh_id).encode()
                ),
                body,
            )
            body = line_re.sub(
                lambda m, sh_ns=sh_ns: str(int(m.group(1)) + sh_ns).encode() + b" ", body
            )
            out.write(body)


def best_of(fn, n: int = 3) -> tuple[float, float]:
    """Best wall time and best CPU time (this process) of ``n`` runs: on a shared machine the CPU
    time is the steadier of the two."""
    best_wall = best_cpu = float("inf")
    for _ in range(n):
        w0 = time.perf_counter()
        c0 = time.process_time()
        fn()
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return best_wall, best_cpu


def main() -> int:
    capture = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CAPTURE
    if not capture.exists():
        print(f"bench_read: capture not found: {capture} (skipped)")
        return 0
    os.environ["MMBOT_CACHE_DIR"] = "off"
    from hftbacktest.data.utils import binancefutures

    from mmbot.data import load_events

    def ours() -> None:
        load_events(capture, use_cache=False)

    def theirs() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            binancefutures.convert(str(capture))

    ev, st = load_events(capture, use_cache=False)  # warm-up (JIT caches)
    theirs()
    t_ours, c_ours = best_of(ours)
    t_theirs, c_theirs = best_of(theirs)
    print(f"capture: {capture} ({st.n_lines:,} lines -> {len(ev):,} events)")
    print(f"mmbot read (no cache):              wall {t_ours:.3f} s  cpu {c_ours:.3f} s")
    print(f"hftbacktest binancefutures.convert: wall {t_theirs:.3f} s  cpu {c_theirs:.3f} s")
    ratio = t_theirs / t_ours
    print(
        f"speed ratio hftbacktest/mmbot:  wall {ratio:.2f}x (target >= 2x) "
        f"{'PASS' if ratio >= 2 else 'FAIL'}; cpu {c_theirs / c_ours:.2f}x"
    )

    with tempfile.TemporaryDirectory() as td:
        big = Path(td) / "big.gz"
        make_bigger(capture, big, N_COPIES)
        n1, rss1 = peak_rss_kb(capture)
        n20, rss20 = peak_rss_kb(big)
    r = rss20 / rss1
    print(f"peak RSS streaming the capture:  {rss1 / 1024:.1f} MiB ({n1:,} events)")
    print(f"peak RSS streaming {N_COPIES}x file:    {rss20 / 1024:.1f} MiB ({n20:,} events)")
    print(
        f"RSS ratio {N_COPIES}x/1x:              {r:.2f} (target <= 2) {'PASS' if r <= 2 else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
