"""The soak's per-chunk audit: every fill's mid cross-checked against a book rebuilt from the chunk's
input (a corrupted mid fails naming the fill), and the synthetic market's funding series charged
on the positions held at its funding times, with the identity exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import glft_profile
from mmbot.audit.decompose import AuditError
from mmbot.config import PROFILES_DIR
from mmbot.knobs import CONSERVATIVE_START
from mmbot.soak.runner import SYNTH_START_NS, resolve_market, run_iteration

MINUTE_NS = 60_000_000_000


def test_a_chunk_whose_fill_carries_a_corrupted_mid_fails_naming_the_fill(monkeypatch):
    import mmbot.backtest as bt

    real_run = bt.run

    def corrupting_run(*a, **kw):
        res = real_run(*a, **kw)
        if len(res.fills) > 2:
            res.fills["mid_px"][2] *= 1.001  # a garbage mid on the third fill
        return res

    mkt = resolve_market("synthetic")
    prof = glft_profile()
    ok = run_iteration(mkt, prof, CONSERVATIVE_START, 3, 1, SYNTH_START_NS, 3 * MINUTE_NS)
    checked = [r.meta["mid_crosscheck"]["fills_checked"] for r in ok]
    assert sum(checked) > 2 and all(r.meta["mid_crosscheck"]["max_rel_err"] <= 1e-9 for r in ok)
    monkeypatch.setattr(bt, "run", corrupting_run)
    with pytest.raises(AuditError, match=r"iter001_chunk000: fill 2 \(exch_ts="):
        run_iteration(
            resolve_market("synthetic"),
            prof,
            CONSERVATIVE_START,
            3,
            1,
            SYNTH_START_NS,
            3 * MINUTE_NS,
        )


def _recompute_funding(
    fills: np.ndarray, marks: np.ndarray, funding: dict, pos0: float = 0.0
) -> float:
    """Σ −rate × position held just before t × mid in force at t, from the records alone
    (``pos0``: the position the run started with, carried in from the previous chunk)."""
    total = 0.0
    ts = fills["exch_ts"].astype(np.int64)
    mk = marks[np.argsort(marks["exch_ts"], kind="stable")]
    for t, rate in zip(funding["times_ns"], funding["rates"], strict=True):
        k = int(np.searchsorted(ts, t, side="left"))
        held = float(fills["position_qty"][k - 1]) if k > 0 else pos0
        j = int(np.searchsorted(mk["exch_ts"], t, side="right")) - 1
        if held != 0.0:
            total += -rate * held * float(mk["mid_px"][j])
    return total


def test_soak_charges_the_synthetic_funding_series_on_held_positions(tmp_path: Path):
    from mmbot.audit.records_io import read_run

    prof = json.loads((PROFILES_DIR / "market_maker_S1.json").read_text())
    prof["funding"] = {"interval_s": 60, "premium_coef": 0.5}  # a funding time every minute
    path = tmp_path / "funding_profile.json"
    path.write_text(json.dumps(prof))
    env = {k: v for k, v in os.environ.items() if k != "MM_RUNTIME_OVERRIDES_JSON"}
    env["MM_PROFILE"] = str(path)
    args = ["soak", "--hours", "0.1", "--iterations", "2", "--seed", "5", "--strategy", "glft"]
    p = subprocess.run(
        [sys.executable, "-m", "mmbot.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode in (0, 1), p.stderr[-3000:]
    assert "funding: the synthetic market's series every 60 s" in p.stdout
    assert "positions: carried across the 30-min chunks and the iterations" in p.stdout
    runs = [
        res for d in sorted((tmp_path / "artifacts/soak/records").iterdir()) for res in read_run(d)
    ]
    times = [t for r in runs for t in r.meta["funding"]["funding_times_ns"]]
    assert len(times) == 6 and len(set(times)) == 6  # 6 minutes, each funding time charged once
    rates = [x for r in runs for x in r.meta["funding"]["rates"]]
    assert len(set(rates)) > 1  # the series follows the path, not a constant
    recomputed = sum(
        _recompute_funding(r.fills, r.marks, r.meta["funding"], r.meta["initial_position_qty"])
        for r in runs
    )
    assert runs[1].meta["initial_position_qty"] == runs[0].fills["position_qty"][-1] != 0.0
    rep = json.loads((tmp_path / "artifacts/reports/EDGE_REPORT.json").read_text())
    cb = rep["totals"]["component_breakdown"]
    assert recomputed != 0.0
    assert cb["funding_quote"] == pytest.approx(recomputed, rel=1e-9, abs=1e-12)
    parts = sum(cb[f"{c}_quote"] for c in ("gross", "slippage", "fees", "inventory", "funding"))
    assert abs(parts - cb["pnl_quote"]) <= 1e-9 * max(1.0, cb["turnover_quote"])
    assert all(r.meta["mid_crosscheck"]["fills_checked"] >= 0 for r in runs)
    md = (tmp_path / "artifacts/reports/SOAK_RESULTS.md").read_text()
    assert "- positions: positions carried across chunks and iterations" in md
    assert "closed at" in md and "with the taker fee" in md
    assert f"- funding: {rep['totals']['funding_bps']:.3f} bps of turnover" in md


@pytest.mark.parametrize(
    ("capture", "kind"), [("SPOT_CAPTURE", "spot"), ("COINM_CAPTURE", "inverse")]
)
def test_a_capture_market_soaks_under_its_own_contract(capture, kind):
    import conftest
    from mmbot.instruments import spec_from_meta

    mkt = resolve_market(str(conftest.need_shared(getattr(conftest, capture))))
    start = int(mkt.events["exch_ts"][0])
    (res,) = run_iteration(mkt, glft_profile(), CONSERVATIVE_START, 3, 1, start, MINUTE_NS)
    assert spec_from_meta(res.meta).kind == kind
