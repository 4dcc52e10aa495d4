"""A soak's memory does not grow with its length (issue 22): it keeps what the final EDGE_REPORT
reads of each run (`RunDigest`), not the runs' records, and its end-of-soak reports read the
records back from disk one run at a time (`StoredRun`)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pytest

from mmbot.audit.edge_report import (
    build_edge_report,
    digest_runs,
    dumps_json,
    load_json,
    report_from_digests,
)
from mmbot.audit.records_io import StoredRun, read_run, write_run
from mmbot.soak import loop
from mmbot.soak import market as soak_market
from mmbot.soak.artifacts import SoakPaths
from mmbot.soak.market import NS_PER_HOUR
from mmbot.soak.start import SoakSettings


@pytest.fixture(scope="module")
def soak_art(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 0.3 h soak in 3 iterations of two 3-minute chunks each; returns its artifacts root."""
    tmp = tmp_path_factory.mktemp("soak")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        mp.delenv("MM_RUNTIME_OVERRIDES_JSON", raising=False)
        mp.delenv("MM_PROFILE", raising=False)
        mp.setattr(soak_market, "CHUNK_NS", NS_PER_HOUR // 20)
        loop.run_soak(
            SoakSettings(
                hours=0.3,
                iterations=3,
                auto_tune=False,
                paths=SoakPaths.under(Path("artifacts")),
            ),
        )
    return tmp / "artifacts"


def test_final_edge_report_equals_the_one_built_from_every_run_on_disk(soak_art: Path) -> None:
    art = soak_art
    written = load_json(art / "reports" / "EDGE_REPORT.json")
    results = read_run(art / "soak" / "records")
    assert len(results) == 6  # 3 iterations x 2 chunks, every one in the final report
    assert [r["name"] for r in written["runs"]] == [r.meta["name"] for r in results]
    rebuilt = build_edge_report(results, written["runtime"])
    assert dumps_json(rebuilt) == dumps_json(written)
    # each iteration's own report is the same function over that iteration's runs
    it2 = load_json(art / "soak" / "iterations" / "AUDIT_SNAPSHOT_iter2.json")
    assert dumps_json(build_edge_report(results[2:4], it2["runtime"])) == dumps_json(it2)


def test_report_from_digests_is_build_edge_report_and_order_matters(soak_art: Path) -> None:
    runs = read_run(soak_art / "soak" / "records")[:2]
    digests = digest_runs(runs)
    assert dumps_json(report_from_digests(digests, {})) == dumps_json(build_edge_report(runs, {}))
    # a digest list built wrongly (one run twice, or a run left out) is a different report
    assert report_from_digests(digests[:1], {}) != build_edge_report(runs, {})
    assert (
        report_from_digests([digests[0], digests[0]], {})["totals"]
        != (build_edge_report(runs, {})["totals"])
    )


def test_a_digest_keeps_no_action_or_mark_rows(soak_art: Path) -> None:
    run = max(read_run(soak_art / "soak" / "records"), key=lambda r: len(r.fills))
    assert len(run.fills) and len(run.actions) and len(run.marks)
    actions, marks = weakref.ref(run.actions), weakref.ref(run.marks)
    digest = digest_runs([run])[0]
    del run
    gc.collect()
    assert actions() is None and marks() is None  # only the fills' decomposition is kept
    assert digest.actions.leave_age_ns.dtype == np.float64


def test_stored_run_reads_its_records_back_at_each_access(soak_art: Path, tmp_path: Path) -> None:
    run = max(read_run(soak_art / "soak" / "records"), key=lambda r: len(r.fills))
    d = write_run(tmp_path, run, "r0", audit_jsonl=False)
    stored = StoredRun(d, run.meta)
    assert stored.meta is run.meta
    for kind in ("fills", "actions", "marks"):
        assert stored.__getattribute__(kind).tobytes() == getattr(run, kind).tobytes()
        assert stored.__getattribute__(kind) is not stored.__getattribute__(kind)  # not kept
    assert dumps_json(build_edge_report([stored], {})) == dumps_json(build_edge_report([run], {}))


def test_report_mark_series_hold_one_runs_marks_at_a_time(soak_art: Path, tmp_path: Path) -> None:
    """The HTML report's mid and position lines over a soak's runs equal the thinned concatenation
    of every run's marks, without holding it: peak traced memory stays under half of all the runs'
    marks (a month's captured-tick soak has ~2e8 marks; concatenated, their columns alone were
    gigabytes)."""
    import tracemalloc

    from mmbot.records import MARK_DTYPE, RunResult
    from mmbot.report.series import mid_series, position_series, thin_index

    base = read_run(soak_art / "soak" / "records")[0]
    n = 200_000
    runs = []
    for i in range(10):
        marks = np.zeros(n, MARK_DTYPE)
        marks["exch_ts"] = np.arange(n, dtype=np.int64) + i * n
        marks["mid_px"] = 100.0 + np.sin(np.arange(n) * 1e-3 + i)
        marks["position_qty"] = np.cos(np.arange(n) * 1e-3 + i)
        run = RunResult(base.fills, base.actions, marks, base.meta)
        runs.append(StoredRun(write_run(tmp_path, run, f"r{i}", audit_jsonl=False), base.meta))
    whole = np.concatenate([r.marks for r in runs])
    idx = thin_index(len(whole), 2000)
    ts, mid = mid_series(runs, 2000)
    assert ts.tobytes() == whole["exch_ts"][idx].astype(np.int64).tobytes()
    assert mid.tobytes() == whole["mid_px"][idx].tobytes()
    assert position_series(runs, 2000)[1].tobytes() == whole["position_qty"][idx].tobytes()
    all_bytes = whole.nbytes
    del whole
    tracemalloc.start()
    try:
        mid_series(runs, 2000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * all_bytes, (peak, all_bytes)
