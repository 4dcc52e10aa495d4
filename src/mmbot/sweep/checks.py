"""Every sweep trial checked before it is scored: a trial that fails is marked failed with the
reason and never gets an objective value.

Checks, in order (the first failure is the reason):

1. the EDGE_REPORT builds: per run the identity gross + slippage + fees + inventory = pnl holds and
   the audit's pnl equals the simulator's own equity (``mmbot.audit.build_edge_report``);
2. fees cross-checked against the trial's configuration: each fill's ``fee_rate`` is the configured
   maker or taker rate (per its ``maker`` flag; the run's meta must state the same rates) and its
   ``fee`` is ``fee_rate x px x qty``; a fee sign flipped anywhere between the profile and the
   records fails here even when the venue and the records agree with each other;
3. enough fills to mean anything (``min_fills``), and finite objective values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np

from mmbot.records import RunResult

FEE_REL_TOL: Final[float] = 1e-9


class TrialCheckError(Exception):
    """A trial's records fail a check: the message is the reason recorded on the trial."""


def _per_run(rate: float | Sequence[float], n: int) -> list[float]:
    return [float(rate)] * n if isinstance(rate, int | float) else [float(x) for x in rate]


def check_fees(
    results: Sequence[RunResult],
    maker_fee_rate: float | Sequence[float],
    taker_fee_rate: float | Sequence[float],
) -> None:
    """Fills' fee rates and amounts against the configured rates (TrialCheckError naming the run).
    Rates are one for every run or one per run (each market has its own schedule)."""
    makers = _per_run(maker_fee_rate, len(results))
    takers = _per_run(taker_fee_rate, len(results))
    for i, r in enumerate(results):
        maker_fee_rate, taker_fee_rate = makers[i], takers[i]
        label = f"run {i}" + (f" ({r.meta.get('symbol')})" if r.meta.get("symbol") else "")
        for key, want in (("maker_fee_rate", maker_fee_rate), ("taker_fee_rate", taker_fee_rate)):
            got = r.meta.get(key)
            if got is None or not math.isclose(float(got), want, rel_tol=0, abs_tol=1e-15):
                raise TrialCheckError(f"{label}: {key} {got!r} in the run, configured {want!r}")
        f = r.fills
        if len(f) == 0:
            continue
        want_rate = np.where(f["maker"] == 1, maker_fee_rate, taker_fee_rate)
        bad = np.abs(f["fee_rate"] - want_rate) > 1e-15
        if bad.any():
            k = int(np.argmax(bad))
            raise TrialCheckError(
                f"{label}: fill {k} fee_rate {f['fee_rate'][k]!r}, configured {want_rate[k]!r} "
                f"({'maker' if f['maker'][k] else 'taker'})"
            )
        from mmbot.audit.decompose import contract_value
        from mmbot.instruments import spec_from_meta

        # notional in the settle coin: px x qty linear, contracts x size / px inverse
        notional = f["qty"] * np.abs(contract_value(f["px"], spec_from_meta(r.meta)))
        expect = f["fee_rate"] * notional
        err = np.abs(f["fee"] - expect)
        tol = FEE_REL_TOL * np.maximum(np.abs(notional), 1.0)
        if (err > tol).any():
            k = int(np.argmax(err - tol))
            raise TrialCheckError(
                f"{label}: fill {k} fee {f['fee'][k]!r} != fee_rate x notional {expect[k]!r}"
            )


def check_trial(
    results: Sequence[RunResult],
    runtime: dict,
    maker_fee_rate: float | Sequence[float],
    taker_fee_rate: float | Sequence[float],
    min_fills: int,
) -> dict:
    """Build the EDGE_REPORT and run every check; returns the report or raises TrialCheckError."""
    from mmbot.audit import AuditError, build_edge_report
    from mmbot.errors import UserError

    try:
        edge = build_edge_report(results, runtime)
    except (AuditError, UserError) as exc:
        raise TrialCheckError(f"audit: {exc}") from None
    check_fees(results, maker_fee_rate, taker_fee_rate)
    fills = int(edge["totals"].get("fills") or 0)
    if fills < min_fills:
        raise TrialCheckError(f"{fills} fills < --min-fills {min_fills}: too few to score")
    return edge
