"""What a set of backtest runs adds up to: fills, turnover, PnL, fees, maker share, blocks.

Owns ``summarize`` (used by ``mmbot backtest``'s summary, the soak, the fidelity panel and the
benches); money in the runs' settle coin, or in quote currency when their coins differ.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmbot.instruments import ContractSpec, spec_from_meta
from mmbot.records import ACT_BLOCKED, ACT_INTENDED, REASON_NAMES, RunResult


def _run_spec(r: RunResult) -> ContractSpec:
    return spec_from_meta(r.meta)


def summarize(results: Sequence[RunResult]) -> dict:
    """Fills, turnover, PnL (marked at each run's final mid), maker share, blocks by reason.

    Money is in the runs' settle coin (``settle``; turnover and PnL of runs settling in different
    coins are summed in quote currency instead, ``settle`` = "USD"); ``turnover_usd`` and
    ``pnl_usd`` are the quote-currency view (an inverse run's coin PnL x its final mid)."""
    fills = 0
    turnover = 0.0
    turnover_usd = 0.0
    maker_notional = 0.0
    pnl = 0.0
    pnl_usd = 0.0
    fees = 0.0
    rebate = 0.0
    tiers: set[str] = set()
    blocked: dict[str, int] = {}
    intended = 0
    events = 0
    settles = {_run_spec(r).settle for r in results}
    mixed = len(settles) > 1
    for r in results:
        f = r.fills
        spec = _run_spec(r)
        to_usd = float(r.meta.get("final_mid_px") or 0.0) if spec.inverse else 1.0
        if spec.inverse:
            notional = f["qty"] * spec.contract_size / f["px"]
            usd = f["qty"] * spec.contract_size
        else:
            notional = f["px"] * f["qty"] * spec.contract_size
            usd = notional
        run_pnl = float(r.meta.get("sim_equity", 0.0)) - float(r.meta.get("initial_equity", 0.0))
        scale = to_usd if mixed else 1.0
        fills += len(f)
        turnover += float(usd.sum()) if mixed else float(notional.sum())
        turnover_usd += float(usd.sum())
        maker_notional += float(notional[f["maker"] == 1].sum()) * scale
        fees += float(f["fee"].sum()) * scale
        rebate += float(-f["fee"][(f["maker"] == 1) & (f["fee"] < 0)].sum()) * scale
        fm = r.meta.get("fees")
        tiers.add(str(fm.get("tier")) if isinstance(fm, dict) else "unrecorded")
        pnl += run_pnl * scale
        pnl_usd += run_pnl * to_usd
        a = r.actions
        intended += int((a["kind"] == ACT_INTENDED).sum())
        blk = a[a["kind"] == ACT_BLOCKED]
        for code in np.unique(blk["reason"]):
            name = REASON_NAMES.get(int(code), str(int(code)))
            blocked[name] = blocked.get(name, 0) + int((blk["reason"] == code).sum())
        events += int(r.meta.get("events", 0))
    return {
        "runs": len(results),
        "events": events,
        "fills": fills,
        "settle": "USD" if mixed else (settles.pop() if settles else ""),
        "turnover": turnover,
        "turnover_usd": turnover_usd,
        "pnl": pnl,
        "pnl_usd": pnl_usd,
        "fees": fees,
        "net_bps": pnl / turnover * 1e4 if turnover > 0 else float("nan"),
        "net_bps_before_rebates": (pnl - rebate) / turnover * 1e4 if turnover > 0 else float("nan"),
        "fee_tier": " | ".join(sorted(tiers)),
        "maker_share_pct": maker_notional / turnover * 100 if turnover > 0 else float("nan"),
        "intended": intended,
        "blocked": dict(sorted(blocked.items())),
    }
