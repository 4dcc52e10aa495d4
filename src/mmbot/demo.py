"""What `make demo` / `mmbot demo` runs: the seed's 3 h mini-soak with auto-tune on the embedded
default market.

Writes the seed's conservative start package (`knobs.CONSERVATIVE_START`) to
``artifacts/soak/runtime_overrides.json`` (section G, step 1) and runs
``mmbot soak --hours 3 --iterations 6 --auto-tune --fee-tier rebate`` with the seed's export
paths (step 2). The
console (the report paths and the KPI verdict) is `mmbot.commands.demo`'s.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmbot import env
from mmbot.knobs import CONSERVATIVE_START

ARTIFACTS = Path("artifacts")
EXPORT_JSON = ARTIFACTS / "reports" / "soak_metrics.json"
EXPORT_MD = ARTIFACTS / "reports" / "SOAK_RESULTS.md"
GATE_SUMMARY = ARTIFACTS / "reports" / "gates_summary.json"
START_OVERRIDES = ARTIFACTS / "soak" / "runtime_overrides.json"
# A market maker on BTCUSDT trades at a venue's market-maker tier, not at the retail (base) fee:
# the demo names the schedule's rebate tier (Binance USD-M Liquidity Provider Program tier 1, maker
# -0.1 bps) and reports net before that rebate beside net. At the base tier (maker +2 bps) the
# default quoter's edge before fees (about 1 bps a fill on this market) does not pay the fee:
# docs/autotune.md has both tiers' figures.
DEMO_FEE_TIER = "rebate"


def write_start_package() -> Path:
    """The seed's conservative start package, where the soak reads its starting overrides."""
    from mmbot.soak.artifacts import json_bytes

    START_OVERRIDES.parent.mkdir(parents=True, exist_ok=True)
    START_OVERRIDES.write_bytes(json_bytes(CONSERVATIVE_START))
    return START_OVERRIDES


def run_demo_soak(
    hours: float = 3.0,
    iterations: int = 6,
    say: Callable[[str], None] | None = None,
    on_progress: Callable[[Any], None] | None = None,
) -> Any:
    """The demo's soak (``hours`` / ``iterations`` only shorten it, e.g. for a smoke test) from the
    start package; returns its `SoakOutcome`."""
    from mmbot.soak.artifacts import SoakPaths
    from mmbot.soak.loop import run_soak
    from mmbot.soak.start import SoakSettings

    # The demo's start package must be the one used, whatever the caller's environment says.
    env.remove("MM_RUNTIME_OVERRIDES_JSON")
    settings = SoakSettings(
        hours=hours,
        iterations=iterations,
        auto_tune=True,
        paths=SoakPaths(ARTIFACTS, EXPORT_JSON, EXPORT_MD, GATE_SUMMARY),
        market="synthetic",
        profile=env.read("MM_PROFILE") or None,
        seed=1,
        strategy_options={"fee_tier": DEMO_FEE_TIER},
    )
    return run_soak(settings, say=say, on_progress=on_progress)


if __name__ == "__main__":
    # the console lives in commands/ (`mmbot demo`); this module only runs the soak, so an old
    # `python -m mmbot.demo` says where the demo went instead of doing nothing
    print("the demo runs as `mmbot demo` (or `make demo`)", file=sys.stderr)
    raise SystemExit(2)
