"""Records on disk: Parquet + meta.json + audit.jsonl round trip, and bad files give clear errors."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from mmbot.audit.records_io import read_run, write_run
from mmbot.audit.synthetic import synthetic_result
from mmbot.errors import UserError
from mmbot.records import ACT_BLOCKED, ACT_INTENDED, REASON_THROTTLE
from test_audit_helpers import run


def _small():
    fills = [
        dict(
            t_s=1,
            side=1,
            maker=1,
            px=99.99,
            qty=1,
            fee=-0.01,
            mid=100.0,
            target=float("nan"),
            pos=1,
        ),
        dict(t_s=2, side=-1, maker=0, px=99.98, qty=1, fee=0.05, mid=100.0, target=99.99, pos=0),
    ]
    acts = [dict(kind=ACT_INTENDED), dict(kind=ACT_BLOCKED, reason=REASON_THROTTLE)]
    return run(fills, [(0, 100.0, 0), (1, 100.0, 1), (2, 100.0, 0)], acts, seed=3)


def test_round_trip_is_exact_including_nan_target(tmp_path):
    r = _small()
    write_run(tmp_path, r, "iter1")
    (back,) = read_run(tmp_path)
    for name in ("fills", "actions", "marks"):
        a, b = getattr(r, name), getattr(back, name)
        assert a.dtype == b.dtype
        for col in a.dtype.names:
            np.testing.assert_array_equal(a[col], b[col])
    assert back.meta["seed"] == 3 and back.meta["run_name"] == "iter1"


def test_audit_jsonl_has_one_sorted_line_per_fill_and_action(tmp_path):
    r = _small()
    d = write_run(tmp_path, r, "iter1")
    lines = (d / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 2 + 2
    objs = [json.loads(x) for x in lines]
    for line, obj in zip(lines, objs, strict=True):
        assert list(obj) == sorted(obj)  # stable key order
        assert json.dumps(obj, separators=(",", ":")) == line
    fills = [o for o in objs if o["type"] == "fill"]
    acts = [o for o in objs if o["type"] == "action"]
    assert [f["side"] for f in fills] == ["buy", "sell"]
    assert fills[0]["target_px"] is None  # NaN target -> null
    assert [a["kind"] for a in acts] == ["intended", "blocked"]
    assert [a["blocked_reason"] for a in acts] == [None, "throttle"]


def test_several_runs_read_back_in_name_order(tmp_path):
    write_run(tmp_path, synthetic_result(30, seed=2), "iter2")
    write_run(tmp_path, synthetic_result(20, seed=1), "iter1")
    runs = read_run(tmp_path)
    assert [len(r.fills) for r in runs] == [20, 30]


def test_missing_column_in_parquet_is_a_user_error(tmp_path):
    d = write_run(tmp_path, _small(), "iter1")
    pl.read_parquet(d / "fills.parquet").drop("mid_px").write_parquet(d / "fills.parquet")
    with pytest.raises(UserError, match="missing column.*mid_px"):
        read_run(tmp_path)


def test_nan_price_on_disk_is_a_user_error(tmp_path):
    d = write_run(tmp_path, _small(), "iter1")
    df = pl.read_parquet(d / "fills.parquet")
    df = df.with_columns(pl.Series("px", [99.99, float("nan")]))
    df.write_parquet(d / "fills.parquet")
    with pytest.raises(UserError, match="px"):
        read_run(tmp_path)


def test_missing_file_and_empty_dir_are_user_errors(tmp_path):
    d = write_run(tmp_path, _small(), "iter1")
    (d / "marks.parquet").unlink()
    with pytest.raises(UserError, match="marks.parquet"):
        read_run(tmp_path)
    with pytest.raises(UserError, match="no run records"):
        read_run(_empty(tmp_path))
    with pytest.raises(UserError, match="not found"):
        read_run(tmp_path / "nope")


def _empty(tmp_path):
    p = tmp_path / "empty"
    p.mkdir()
    return p


def test_audit_jsonl_can_be_skipped_for_large_runs(tmp_path):
    d = write_run(tmp_path, _small(), "iter1", audit_jsonl=False)
    assert not (d / "audit.jsonl").exists()
    assert len(read_run(tmp_path)[0].fills) == 2
