"""Benchmark: build EDGE_REPORT for 1,000,000 synthetic fills (+ 4,000,000 marks); target < 5 s.

Reference measured in the same run: a plain per-fill Python loop doing the same decomposition and
markout lookups (bisect) on a 50,000-fill slice, scaled to 1M fills; the ratio is printed.
"""

from __future__ import annotations

import bisect
import time

from mmbot.jitcache import configure as configure_jit_cache

configure_jit_cache()  # an entry point: before compiled modules are imported (mmbot.jitcache)

from mmbot.audit import build_edge_report  # noqa: E402
from mmbot.audit.decompose import MARKOUT_HORIZONS_NS  # noqa: E402
from mmbot.audit.synthetic import synthetic_result  # noqa: E402

N_FILLS = 1_000_000
N_REF = 50_000
TARGET_S = 5.0


def python_reference(result, n: int) -> float:
    """Per-fill Python loop over the first n fills (components + markouts); returns the pnl."""
    f = result.fills[:n].tolist()
    names = result.fills.dtype.names
    ix = {k: i for i, k in enumerate(names)}
    mts = result.marks["exch_ts"].tolist()
    mmid = result.marks["mid_px"].tolist()
    m_T = mmid[-1]
    tot = 0.0
    for row in f:
        s, p, q, m, tgt, fee = (
            row[ix[k]] for k in ("side", "px", "qty", "mid_px", "target_px", "fee")
        )
        tgt = p if tgt != tgt else tgt
        tot += s * (m - tgt) * q + s * (tgt - p) * q - fee + s * q * (m_T - m)
        for tau in MARKOUT_HORIZONS_NS.values():
            j = bisect.bisect_right(mts, row[ix["exch_ts"]] + tau) - 1
            _ = -s * (mmid[j] - m) / m * 1e4
    return tot


def main() -> None:
    t = time.perf_counter()
    r = synthetic_result(N_FILLS, seed=42)
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    rep = build_edge_report([r], {"bench": "audit"})
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    python_reference(r, N_REF)
    ref_s = (time.perf_counter() - t) * (N_FILLS / N_REF)
    tot = rep["totals"]
    print(f"bench_audit: {N_FILLS:,} fills, {len(r.marks):,} marks, {len(r.actions):,} actions")
    print(f"  synthetic records generated in {gen_s:.3f} s (not timed below)")
    print(
        f"  build_edge_report: {build_s:.3f} s  (target < {TARGET_S:.1f} s: {'OK' if build_s < TARGET_S else 'SLOW'})"
    )
    print(f"  python per-fill loop reference (scaled from {N_REF:,}): {ref_s:.3f} s")
    print(f"  ratio reference / vectorised: {ref_s / build_s:.1f}x")
    print(
        f"  identity max rel err: {rep['identity']['max_rel_err']:.3e}, net_bps {tot['net_bps']:.4f}"
    )


if __name__ == "__main__":
    main()
