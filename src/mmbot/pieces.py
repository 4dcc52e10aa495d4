"""Owns what each piece of a quoter contributed: the same events re-run with that piece switched
off (the quoter's ``pieces``: a label and the parameters that switch it off), pooled exactly as the
main run is, and the difference in net (and net before rebates) as the piece's contribution.

This is counterfactual attribution, the only kind that is exact for pieces that interact (a floor
and a depth choice both set one price): a fill cannot say which piece placed its order, but a run
without the piece says what the piece was worth on this data. ``EDGE_REPORT.json`` ``pieces``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

PIECES_METHOD = (
    "the same data re-run with one piece switched off (the listed parameters), every other setting "
    "equal; contribution = PnL with the piece - PnL without it (quote currency; bps: net with - "
    "net without, each of its own turnover); pieces interact, so contributions need not add up"
)
_KEYS = ("fills", "pnl", "net_bps", "net_bps_before_rebates", "gross_bps", "inventory_bps")


def pieces_block(
    base: Mapping[str, float],
    without: Mapping[str, Mapping[str, float]],
    switches: Sequence[tuple[str, Mapping[str, float]]],
) -> dict:
    """EDGE_REPORT ``pieces``: ``base`` and each ``without[label]`` are edge-report totals."""
    rows = []
    for label, over in switches:
        w = without[label]
        row: dict = {"piece": label, "switched_off_by": dict(over)}
        row.update({f"{k}_without": w.get(k) for k in _KEYS})
        row["contribution_pnl"] = _diff(base.get("pnl"), w.get("pnl"))
        both_filled = bool(base.get("fills")) and bool(w.get("fills"))  # else no bps to compare
        row["contribution_bps"] = (
            _diff(base.get("net_bps"), w.get("net_bps")) if both_filled else None
        )
        row["contribution_before_rebates_bps"] = (
            _diff(base.get("net_bps_before_rebates"), w.get("net_bps_before_rebates"))
            if both_filled
            else None
        )
        rows.append(row)
    return {
        "method": PIECES_METHOD,
        "with_all": {k: base.get(k) for k in _KEYS},
        "rows": rows,
    }


def _diff(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a != a or b != b:  # no fill: no net in bps
        return None
    return float(a) - float(b)
