"""Figures of the frozen stability soak: dispersion, unchanged knobs, drawdown, hard-gate breaches."""

from __future__ import annotations

import numpy as np
import pytest

from mmbot.knobs import CONSERVATIVE_START
from mmbot.soak import stability


def _row(it: int, net: float | None, pnl: float, knobs: dict | None = None, hard=()) -> dict:
    return {
        "iteration": it,
        "knobs": dict(knobs or CONSERVATIVE_START),
        "metrics": {"net_bps": net, "pnl": pnl, "turnover": 1e6},
        "failed_hard": list(hard),
    }


def test_dispersion_is_the_sample_statistics() -> None:
    vals = [0.3, -0.2, 0.9, 0.1]
    d = stability.dispersion(vals)
    assert d["n"] == 4 and d["mean"] == pytest.approx(np.mean(vals))
    assert d["std"] == pytest.approx(np.std(vals, ddof=1))
    assert (d["min"], d["max"]) == (-0.2, 0.9)
    assert stability.dispersion([])["mean"] is None


def test_max_drawdown_spans_peak_to_trough() -> None:
    dd = stability.max_drawdown([1.0, -2.0, 0.5, -1.0, 3.0])
    # cumulative 1, -1, -0.5, -1.5, 1.5: peak 1 after iteration 1, trough -1.5 after iteration 4
    assert dd["quote"] == pytest.approx(2.5)
    assert (dd["from_iteration"], dd["to_iteration"]) == (1, 4)
    assert dd["final_quote"] == pytest.approx(1.5)
    # losing from the start: the peak is the start (iteration 0)
    assert stability.max_drawdown([-1.0, -1.0])["from_iteration"] == 0


def test_report_checks_the_knobs_and_lists_breaches() -> None:
    rows = [_row(1, 0.2, 10.0), _row(2, None, 0.0, hard=["fills"]), _row(3, -0.1, -30.0)]
    s = stability.stability_report(rows)
    assert s["knobs_unchanged"] and s["knobs_moved"] == []
    assert s["iterations_without_net"] == 1
    assert s["net_bps_dispersion"]["n"] == 2
    assert s["iterations_breaching_hard"] == [2]
    assert s["drawdown"]["bps_of_turnover"] == pytest.approx(30.0 / 3e6 * 1e4)
    moved = stability.stability_report(
        [_row(1, 0.1, 0.0), _row(2, 0.1, 0.0, knobs={**CONSERVATIVE_START, "tail_age_ms": 700})]
    )
    assert not moved["knobs_unchanged"] and moved["knobs_moved"] == ["tail_age_ms"]
    assert "unchanged=NO: tail_age_ms" in "\n".join(stability.text_lines(moved))


@pytest.mark.parametrize(("hours", "n"), [(24, 48), (3, 6), (0.2, 1), (0.75, 2)])
def test_freeze_iterations_are_half_hours(hours: float, n: int) -> None:
    assert stability.freeze_iterations(hours) == n
